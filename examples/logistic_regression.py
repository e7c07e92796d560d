"""Logistic regression trained by gradient descent with a compiled value-and-gradient.

The loss is the mean negative log-likelihood of labels y in {0, 1} under
p = logistic(X w + b), written stably as mean(logaddexp(0, z) - y z) with z = X w + b.
`fx.jit(fx.value_and_grad(loss))` compiles the loss and its gradient into one native
kernel; each step is then one call. We check the gradient against the closed form
Xᵀ(p - y) / n, that the loss decreases at every step, and that the trained model
classifies the (nearly separable) training data well.

Run: python examples/logistic_regression.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def loss(params, X, y):
    w, b = params
    z = fnp.dot(X, w) + b
    return fnp.mean(fnp.logaddexp(0.0, z) - y * z)


def make_data(n=200, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w_true = np.array([2.0, -1.0, 0.5])[:d]
    y = (X @ w_true + 0.3 + 0.3 * rng.standard_normal(n) > 0).astype(np.float64)
    return X, y


def closed_form_grad(params, X, y):
    w, b = params
    p = 1 / (1 + np.exp(-(X @ w + b)))
    return X.T @ (p - y) / len(y), np.mean(p - y)


def train(X, y, steps=100, lr=1.0):
    value_and_grad = fx.jit(fx.value_and_grad(loss))
    params = (np.zeros(X.shape[1]), np.float64(0.0))
    losses = []
    for _ in range(steps):
        value, (g_w, g_b) = value_and_grad(params, X, y)
        losses.append(float(value))
        params = (params[0] - lr * g_w, params[1] - lr * g_b)
    return params, np.array(losses)


def main():
    X, y = make_data()
    params0 = (np.array([0.1, 0.2, -0.3]), np.float64(0.05))
    g_w, g_b = fx.grad(loss)(params0, X, y)
    expected_w, expected_b = closed_form_grad(params0, X, y)
    print("gradient w.r.t. w:", g_w, "\n  closed form Xᵀ(p - y)/n:", expected_w)
    assert np.allclose(g_w, expected_w) and np.allclose(g_b, expected_b)

    params, losses = train(X, y)
    print(f"loss: step 0 {losses[0]:.4f}, step 10 {losses[10]:.4f}, final {losses[-1]:.4f}")
    assert np.all(np.diff(losses) < 0), "loss must decrease at every step"
    accuracy = np.mean(((X @ params[0] + params[1]) > 0) == (y > 0.5))
    print("learned w:", params[0], "b:", float(params[1]), f"training accuracy {accuracy:.3f}")
    assert losses[-1] < 0.5 * losses[0] and accuracy > 0.9


if __name__ == "__main__":
    main()
