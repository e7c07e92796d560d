"""The R-operator: the Jacobian of y = x . W with respect to W, times V.

Theano's `T.Rop(y, W, V)` is fxgrad's `fx.Rop(f, (W,), (V,))`: a forward-mode
Jacobian-vector product that never forms the Jacobian (`fx.jvp` gives the same
tangent together with the value). The result has the shape of the output y.

Run: python examples/r_operator.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def main():
    W = np.array([[1.0, 1.0], [1.0, 1.0]])
    V = np.array([[2.0, 2.0], [2.0, 2.0]])
    x = np.array([0.0, 1.0])

    def y(W):
        return fnp.dot(x, W)

    JV = fx.Rop(y, (W,), (V,))
    print("Rop(x . W, W, V) =", JV, "  (expected [2. 2.])")
    assert np.allclose(JV, [2.0, 2.0])

    value, tangent = fx.jvp(y, (W,), (V,))
    print("jvp gives the value", value, "and the same tangent", tangent)
    assert np.allclose(value, x @ W) and np.allclose(tangent, JV)


if __name__ == "__main__":
    main()
