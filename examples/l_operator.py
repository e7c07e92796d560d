"""The L-operator: a row vector v times the Jacobian of y = x . W with respect to W.

Theano's `T.Lop(y, W, v)` is fxgrad's `fx.Lop(f, (W,), v)`: a reverse-mode
vector-Jacobian product, returned as a tuple with one entry per primal. v has the
shape of the output; the result has the shape of W. Theano's compiled function took
only v and x because y is linear in W; fxgrad's Lop is evaluated at a point, so we
pass some W (its value does not change the result here).

Run: python examples/l_operator.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def main():
    v = np.array([2.0, 2.0])
    x = np.array([0.0, 1.0])
    W = np.ones((2, 2))

    def y(W):
        return fnp.dot(x, W)

    (VJ,) = fx.Lop(y, (W,), v)
    expected = np.array([[0.0, 0.0], [2.0, 2.0]])
    print("Lop(x . W, W, v) =")
    print(VJ)
    print("expected:")
    print(expected)
    assert np.allclose(VJ, expected)

    value, pullback = fx.vjp(y, W)
    (same,) = pullback(v)
    print("fx.vjp's pullback gives the same:", np.allclose(same, VJ))
    assert np.allclose(same, VJ)


if __name__ == "__main__":
    main()
