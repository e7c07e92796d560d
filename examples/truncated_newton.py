"""Truncated Newton (Newton-CG): Newton steps from Hessian-vector products only.

For f(x) = sum(log cosh(A x - b)) + lam/2 |x|² in 40 dimensions (smooth, strongly
convex), each outer step solves H d = -g approximately with a hand-written conjugate
gradient that only ever asks for products H v. `fx.hvp(f, (x,), (v,))` computes
H v as the forward-mode derivative of the gradient (forward over reverse), at the
cost of a few gradient evaluations and without forming H; we compile it with
`fx.jit`. A backtracking line search keeps the early steps, far from the optimum
where log cosh is nearly linear, from overshooting. CG stops when
|H d + g| <= eta |g| with eta = min(0.5, sqrt|g|), which makes the outer iteration
superlinear. We check H v against a central finite
difference of the gradient, and that the gradient norm reaches 1e-10.

Run: python examples/truncated_newton.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp

LAM = 0.05


def make_problem(m=60, n=40, seed=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)) / np.sqrt(n), rng.standard_normal(m)


def objective(x, A, b):
    z = fnp.dot(A, x) - b
    return fnp.sum(fnp.logaddexp(z, -z) - np.log(2.0)) + 0.5 * LAM * fnp.sum(x ** 2)


def hessian_vector_product(x, v, A, b):
    return fx.hvp(lambda x: objective(x, A, b), (x,), (v,))


def hessian_at(hvp, x, A, b):
    """The linear map v -> H(x) v, for conjugate gradient."""
    return lambda v: hvp(x, v, A, b)


def conjugate_gradient(hvp, g, tol, max_iter):
    """Solve H d = -g given only v -> H v; returns d and the number of products."""
    d, r = np.zeros_like(g), -g
    p, rr = r.copy(), r @ r
    for k in range(max_iter):
        Hp = hvp(p)
        alpha = rr / (p @ Hp)
        d, r = d + alpha * p, r - alpha * Hp
        rr_new = r @ r
        if np.sqrt(rr_new) <= tol:
            return d, k + 1
        p, rr = r + (rr_new / rr) * p, rr_new
    return d, max_iter


def backtrack(f, x, d, g):
    """Halve the step until the Armijo condition f(x + t d) <= f(x) + t/4 gᵀd holds."""
    t, fx0 = 1.0, f(x)
    while f(x + t * d) > fx0 + 0.25 * t * (g @ d):
        t *= 0.5
    return t


def newton_cg(x, A, b, grad, hvp, outer_steps=20):
    history = []
    for _ in range(outer_steps):
        g = grad(x, A, b)
        norm = np.linalg.norm(g)
        if norm < 1e-10:
            break
        eta = min(0.5, np.sqrt(norm))
        d, products = conjugate_gradient(hessian_at(hvp, x, A, b), g, eta * norm, len(x))
        t = backtrack(lambda x: float(objective(x, A, b)), x, d, g)
        history.append((norm, products, t))
        x = x + t * d
    return x, history


def check_hvp(x, v, A, b, grad, hvp, eps=1e-5):
    fd = (grad(x + eps * v, A, b) - grad(x - eps * v, A, b)) / (2 * eps)
    Hv = hvp(x, v, A, b)
    print(f"|H v - finite difference of grad| = {np.linalg.norm(Hv - fd):.2e}")
    assert np.allclose(Hv, fd, rtol=1e-6, atol=1e-7)


def main():
    A, b = make_problem()
    grad = fx.jit(fx.grad(objective))
    hvp = fx.jit(hessian_vector_product)
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(A.shape[1])
    check_hvp(x0, rng.standard_normal(A.shape[1]), A, b, grad, hvp)

    x, history = newton_cg(x0, A, b, grad, hvp)
    for k, (norm, products, t) in enumerate(history):
        print(f"outer step {k}: |grad| = {norm:.3e}, {products:2d} Hessian-vector products"
              f" in CG, step length {t}")
    final = np.linalg.norm(grad(x, A, b))
    print(f"final |grad| = {final:.3e} after {len(history)} Newton-CG steps")
    assert final < 1e-10 and len(history) <= 15
    norms = np.array([norm for norm, _, _ in history] + [final])
    ratios = norms[1:] / norms[:-1]
    print("last |g_{k+1}| / |g_k| ratios (shrinking: superlinear):", ratios[-4:])
    assert np.all(ratios[-4:] < 0.05) and np.all(np.diff(ratios[-4:]) < 0)


if __name__ == "__main__":
    main()
