"""Training a tiny recurrent network whose loop is an fx.scan, with a compiled gradient.

The RNN reads a noisy sine wave one value at a time, h <- tanh(W h + u x_t + c), and
predicts the next value as v·h. The loop over time is one `fx.scan`, so
`fx.jit(fx.value_and_grad(loss))` differentiates the whole unrolled sequence
(backpropagation through time) and compiles forward and backward loops into one
native kernel. We check the gradient against central finite differences of a plain
numpy version of the loss, then train with gradient descent and check the loss falls.

Run: python examples/rnn_scan.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def loss(params, xs, targets):
    W, u, c, v = params

    def step(h, x):
        h = fnp.tanh(fnp.dot(W, h) + u * x + c)
        return h, fnp.dot(v, h)

    _, predictions = fx.scan(step, fnp.zeros(W.shape[0]), xs)
    return fnp.mean((predictions - targets) ** 2)


def loss_numpy(params, xs, targets):
    W, u, c, v = params
    h, errors = np.zeros(W.shape[0]), []
    for x, target in zip(xs, targets):
        h = np.tanh(W @ h + u * x + c)
        errors.append((v @ h - target) ** 2)
    return np.mean(errors)


def finite_difference(params, xs, targets, which, eps=1e-6):
    base, g = params[which], np.zeros_like(params[which])
    for idx in np.ndindex(base.shape):
        bump = np.zeros_like(base)
        bump[idx] = eps
        plus, minus = list(params), list(params)
        plus[which], minus[which] = base + bump, base - bump
        g[idx] = (loss_numpy(plus, xs, targets) - loss_numpy(minus, xs, targets)) / (2 * eps)
    return g


def main():
    rng = np.random.default_rng(0)
    hidden, T = 4, 40
    t = np.arange(T + 1) * 0.3
    series = np.sin(t) + 0.05 * rng.standard_normal(T + 1)
    xs, targets = series[:-1], series[1:]
    params = (0.3 * rng.standard_normal((hidden, hidden)), rng.standard_normal(hidden),
              np.zeros(hidden), 0.3 * rng.standard_normal(hidden))

    value_and_grad = fx.jit(fx.value_and_grad(loss))
    value, grads = value_and_grad(params, xs, targets)
    assert np.isclose(value, loss_numpy(params, xs, targets))
    for which, name in enumerate("Wucv"):
        assert np.allclose(grads[which], finite_difference(params, xs, targets, which),
                           rtol=1e-5, atol=1e-8), name
    print("BPTT gradient through fx.scan matches finite differences for W, u, c, v")

    losses = []
    for _ in range(300):
        value, grads = value_and_grad(params, xs, targets)
        losses.append(float(value))
        params = tuple(p - 0.2 * g for p, g in zip(params, grads))
    print(f"next-value MSE: step 0 {losses[0]:.4f}, step 100 {losses[100]:.4f}, "
          f"step 299 {losses[-1]:.4f}")
    assert losses[-1] < 0.1 * losses[0] and losses[-1] < losses[100] < losses[0]


if __name__ == "__main__":
    main()
