"""Newton's method with exact Hessians, converging quadratically.

We minimise an L2-regularised logistic loss
    f(w) = mean(log(1 + exp(x_i·w)) - y_i x_i·w) + lam/2 |w|²,
which is smooth and strongly convex, in four dimensions. Each Newton step solves
H(w) d = -g(w) with g = fx.grad(f) and H = fx.hessian(f) (forward over reverse).
We check the Hessian against its closed form XᵀDX/n + lam I with D = diag(p(1 - p)),
and that convergence is quadratic: near the optimum |g_{k+1}| <= C |g_k|², so the
number of correct digits roughly doubles each step.

Run: python examples/newton.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp

LAM = 0.1


def make_data(n=100, d=4, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + rng.standard_normal(n) > 0).astype(np.float64)
    return X, y


def loss(w, X, y):
    z = fnp.dot(X, w)
    return fnp.mean(fnp.logaddexp(0.0, z) - y * z) + 0.5 * LAM * fnp.sum(w ** 2)


def closed_form_hessian(w, X):
    p = 1 / (1 + np.exp(-X @ w))
    return (X.T * (p * (1 - p))) @ X / len(X) + LAM * np.eye(len(w))


def newton(w, X, y, steps=6):
    grad, hessian = fx.grad(loss), fx.hessian(loss)
    norms = []
    for _ in range(steps):
        g = grad(w, X, y)
        norms.append(np.linalg.norm(g))
        w = w - np.linalg.solve(hessian(w, X, y), g)
    return w, np.array(norms)


def main():
    X, y = make_data()
    w0 = np.array([0.5, -0.5, 0.25, 1.0])
    H = fx.hessian(loss)(w0, X, y)
    print("Hessian at w0:\n", H)
    assert np.allclose(H, closed_form_hessian(w0, X)), "Hessian != XᵀDX/n + lam I"

    w, norms = newton(w0, X, y)
    for k, norm in enumerate(norms):
        print(f"step {k}: |grad| = {norm:.3e}")
    final = np.linalg.norm(fx.grad(loss)(w, X, y))
    print(f"final |grad| = {final:.3e}, minimiser w* = {w}")
    assert final < 1e-12
    # quadratic convergence: |g_{k+1}| / |g_k|² stays bounded while |g| is far above rounding
    big = norms[norms > 1e-7]
    ratios = big[1:] / big[:-1] ** 2
    print("|g_{k+1}| / |g_k|^2 =", ratios)
    assert len(ratios) >= 2 and np.all(ratios < 10.0)


if __name__ == "__main__":
    main()
