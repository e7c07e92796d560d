"""Hessian times a vector, without forming the Hessian, three ways.

For y = sum(x ** 2) at x = [4, 4] and v = [2, 2] (the Hessian is 2 I, so H v = 2 v):

1. reverse over reverse, as in the tutorial's first form: the gradient of
   sum(grad(y)(x) * v), i.e. v^T H (equal to H v because H is symmetric);
2. the R-operator applied to the gradient (forward over reverse): Rop(grad(y), x, v);
3. `fx.hvp(y, (x,), (v,))`, which is the second form packaged.

Run: python examples/hessian_vector.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def y(x):
    return fnp.sum(x ** 2)


def main():
    x = np.array([4.0, 4.0])
    v = np.array([2.0, 2.0])
    gy = fx.grad(y)

    vH = fx.grad(lambda x: fnp.sum(gy(x) * v))(x)
    Hv = fx.Rop(gy, (x,), (v,))
    packaged = fx.hvp(y, (x,), (v,))
    for name, result in [("grad(sum(grad(y) * v))", vH), ("Rop(grad(y), x, v)", Hv),
                         ("fx.hvp(y, (x,), (v,))", packaged)]:
        print(f"{name:24} = {result}   (expected [4. 4.])")
        assert np.allclose(result, [4.0, 4.0])


if __name__ == "__main__":
    main()
