"""A short tour of fxgrad: each line prints a result next to the value it should have.

Run: python examples/demo.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def show(title, value, expected):
    print(f"{title}\n  got      {np.array2string(np.asarray(value), precision=6)}"
          f"\n  expected {np.array2string(np.asarray(expected), precision=6)}")
    assert np.allclose(value, expected), title


def logistic_sum(x):
    return fnp.sum(1 / (1 + fnp.exp(-x)))


def rnn_loss(W, xs, h0):
    """A tiny recurrent net h <- tanh(W h + x), unrolled over xs by fx.scan."""
    def step(h, x):
        h = fnp.tanh(fnp.dot(W, h) + x)
        return h, fnp.sum(h)

    h_last, outputs = fx.scan(step, h0, xs)
    return fnp.sum(outputs) + fnp.sum(h_last ** 2)


def rnn_loss_numpy(W, xs, h0):
    """The same loss in plain numpy, for finite differences."""
    h, total = h0, 0.0
    for x in xs:
        h = np.tanh(W @ h + x)
        total += h.sum()
    return total + (h ** 2).sum()


def finite_difference_grad(f, W, eps=1e-6):
    g = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[idx] = eps
        g[idx] = (f(W + step) - f(W - step)) / (2 * eps)
    return g


def main():
    show("grad(x ** 2) at 4.0", fx.grad(lambda x: x ** 2)(4.0), 8.0)

    x = np.array([[0.0, 1.0], [-1.0, -2.0]])
    s = 1 / (1 + np.exp(-x))
    show("grad of sum(logistic(x)) at [[0, 1], [-1, -2]]", fx.grad(logistic_sum)(x), s * (1 - s))

    show("jacfwd(x ** 2) at [4, 4]", fx.jacfwd(lambda x: x ** 2)(np.array([4.0, 4.0])),
         [[8.0, 0.0], [0.0, 8.0]])
    show("hessian(sum(x ** 3)) at [1, 2]", fx.hessian(lambda x: fnp.sum(x ** 3))(np.array([1.0, 2.0])),
         [[6.0, 0.0], [0.0, 12.0]])

    t = np.tanh(0.5)
    third = fx.grad(fx.grad(fx.grad(fnp.tanh)))(0.5)
    show("grad(grad(grad(tanh))) at 0.5", third, (1 - t ** 2) * (6 * t ** 2 - 2))

    program = fx.make_jaxpr(fx.grad(lambda x: fnp.sum(fnp.sin(x) * x)))(np.zeros(3))
    print("make_jaxpr(grad(lambda x: sum(sin(x) * x))) on f64[3]:")
    print(program)
    z = np.array([0.1, 0.2, 0.3])
    show("that program evaluated at [0.1, 0.2, 0.3]", program(z)[0], np.cos(z) * z + np.sin(z))

    rng = np.random.default_rng(0)
    W, xs, h0 = 0.5 * rng.standard_normal((3, 3)), rng.standard_normal((5, 3)), np.zeros(3)
    expected = finite_difference_grad(lambda W: rnn_loss_numpy(W, xs, h0), W)
    show("grad of a scan-based RNN loss w.r.t. W (expected: finite differences)",
         fx.grad(rnn_loss)(W, xs, h0), expected)
    print("\nall demo results match")


if __name__ == "__main__":
    main()
