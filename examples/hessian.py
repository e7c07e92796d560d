"""The Hessian of cost = sum(x ** 2): with fx.hessian, and by hand with scan.

As in the tutorial, the manual Hessian is the Jacobian of the gradient: scan over
i and take the gradient of the i-th component of grad(cost).

Run: python examples/hessian.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def cost(x):
    return fnp.sum(x ** 2)


def hessian_by_scan(f, x):
    """Row i of the Hessian is the gradient of grad(f)(x)[i]; scan stacks the rows."""
    gy = fx.grad(f)

    def row(carry, i):
        return carry, fx.grad(lambda x: gy(x)[i])(x)

    _, rows = fx.scan(row, None, fnp.arange(x.shape[0]))
    return rows


def main():
    x = np.array([4.0, 4.0])
    expected = np.array([[2.0, 0.0], [0.0, 2.0]])
    for name, hess in [("fx.hessian", fx.hessian(cost)(x)), ("scan", hessian_by_scan(cost, x))]:
        print(f"Hessian of sum(x ** 2) at [4, 4] by {name}:")
        print(hess)
        assert np.allclose(hess, expected)
    print("expected:")
    print(expected)


if __name__ == "__main__":
    main()
