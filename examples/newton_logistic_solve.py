"""Newton's method for logistic regression, the linear solve done by fxgrad.

We maximise the L2-penalised logistic log-likelihood
    l(w) = sum(y_i x_i·w - log(1 + exp(x_i·w))) - lam/2 |w|²
with Newton steps w <- w - H⁻¹ g, where g = fx.grad(l), H = fx.hessian(l) is exact
(forward over reverse) and the step solves H d = g with `fnp.linalg.solve` (LU with
partial pivoting), so the whole step is one differentiable fxgrad function. Checks:
the step equals numpy's solve, the gradient vanishes to 1e-10 within eight steps with
quadratic convergence, and -H is the closed form XᵀDX + lam I.

Run: python examples/newton_logistic_solve.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp

LAM = 0.5


def make_data(n=200, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = np.hstack([np.ones((n, 1)), rng.standard_normal((n, d - 1))])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X @ rng.standard_normal(d)))).astype(float)
    return X, y


def log_likelihood(w, X, y):
    z = fnp.dot(X, w)
    return fnp.sum(y * z - fnp.logaddexp(0.0, z)) - 0.5 * LAM * fnp.sum(w * w)


grad, hessian = fx.grad(log_likelihood), fx.hessian(log_likelihood)


def newton_step(w, X, y):
    return w - fnp.linalg.solve(hessian(w, X, y), grad(w, X, y))


def main():
    X, y = make_data()
    w = np.full(X.shape[1], 0.1)
    H = hessian(w, X, y)
    step = newton_step(w, X, y)
    assert np.allclose(step, w - np.linalg.solve(H, grad(w, X, y)), rtol=1e-12)
    p = 1 / (1 + np.exp(-X @ w))
    assert np.allclose(-H, (X.T * (p * (1 - p))) @ X + LAM * np.eye(len(w)))
    norms = []
    for k in range(8):
        norms.append(np.linalg.norm(grad(w, X, y)))
        print(f"step {k}: log-likelihood {log_likelihood(w, X, y):.10f}, |grad| {norms[-1]:.2e}")
        if norms[-1] < 1e-10:
            break
        w = newton_step(w, X, y)
    print("w* =", np.round(w, 4))
    assert norms[-1] < 1e-10, "Newton did not converge"
    big = np.array([n for n in norms if n > 1e-6])
    print("|g_{k+1}| / |g_k|^2 =", big[1:] / big[:-1] ** 2)
    assert np.all(big[1:] / big[:-1] ** 2 < 1.0), "convergence is not quadratic"


if __name__ == "__main__":
    main()
