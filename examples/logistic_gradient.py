"""The gradient of the logistic function, summed over a matrix.

Seed: `s = T.sum(1 / (1 + T.exp(-x)))`, `gs = T.grad(s, x)` evaluated at
[[0, 1], [-1, -2]]. The derivative of the logistic s(x) is s(x) * (1 - s(x)),
which we also compute directly to check the result.

Run: python examples/logistic_gradient.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def summed_logistic(x):
    return fnp.sum(1 / (1 + fnp.exp(-x)))


def main():
    x = np.array([[0.0, 1.0], [-1.0, -2.0]])
    dlogistic = fx.grad(summed_logistic)
    gs = dlogistic(x)
    expected = np.array([[0.25, 0.19661193], [0.19661193, 0.10499359]])
    print("dlogistic([[0, 1], [-1, -2]]) =")
    print(gs)
    print("expected (from the tutorial):")
    print(expected)
    assert np.allclose(gs, expected)

    s = 1 / (1 + np.exp(-x))
    assert np.allclose(gs, s * (1 - s))
    print("matches s(x) * (1 - s(x)) computed with plain numpy")


if __name__ == "__main__":
    main()
