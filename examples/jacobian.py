"""The Jacobian of y = x ** 2: with fx.jacfwd / fx.jacrev, and by hand with scan.

Theano computes the Jacobian "manually" by scanning over i = 0..n-1 and taking
`T.grad(y[i], x)` at each step; scan stacks the rows. fxgrad's `fx.scan` plays the
same role: the body differentiates the function `x -> f(x)[i]` for the step's i.
(The tutorial warns that scanning over the *values* y_i loses their dependence on
x; in fxgrad you differentiate functions, not values, so that pitfall cannot arise.)

Run: python examples/jacobian.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def square(x):
    return x ** 2


def jacobian_by_scan(f, x):
    """Row i of the Jacobian is the gradient of f(x)[i]; scan stacks the rows."""
    def row(carry, i):
        return carry, fx.grad(lambda x: f(x)[i])(x)

    _, rows = fx.scan(row, None, fnp.arange(x.shape[0]))
    return rows


def main():
    x = np.array([4.0, 4.0])
    expected = np.array([[8.0, 0.0], [0.0, 8.0]])
    for name, jac in [("jacfwd", fx.jacfwd(square)(x)), ("jacrev", fx.jacrev(square)(x)),
                      ("scan", jacobian_by_scan(square, x))]:
        print(f"Jacobian of x ** 2 at [4, 4] by {name}:")
        print(jac)
        assert np.allclose(jac, expected)
    print("expected:")
    print(expected)


if __name__ == "__main__":
    main()
