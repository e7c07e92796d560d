"""Computing gradients: the first section of the tutorial "Derivatives in Theano".

Theano builds a symbolic expression `gy = T.grad(x ** 2, x)`, prints it with `pp`
and compiles it with `theano.function`. In fxgrad the gradient is a function,
`fx.grad(f)`, that you call on numbers; `fx.make_jaxpr` prints the program it runs,
which plays the part of `pp(gy)`, and `fx.simplify` shows it after optimization.

Run: python examples/computing_gradients.py
"""
import numpy as np

import fxgrad as fx


def square(x):
    return x ** 2


def main():
    d_square = fx.grad(square)
    # Theano's f(4) accepted an int; grad needs a float input, so we pass 4.0.
    print("grad(x ** 2)(4.0)  =", d_square(4.0), "  (expected 8.0)")
    assert np.allclose(d_square(4.0), 8.0)
    print("grad(x ** 2)(94.2) =", d_square(94.2), "  (expected 188.4)")
    assert np.allclose(d_square(94.2), 188.4)

    program = fx.make_jaxpr(d_square)(4.0)
    print("\nThe program that grad(x ** 2) runs (the counterpart of pp(gy)):")
    print(program)
    (value,) = program(np.float64(94.2))
    print("evaluating that program at 94.2 gives", value)
    assert np.allclose(value, 188.4)

    # Theano's optimizer left one node, (2.0 * x); fxgrad's simplifier does the same.
    optimized = fx.simplify(program)
    print("\nAfter simplification (the counterpart of pp(f.maker.fgraph.outputs[0])):")
    print(optimized)
    assert len(optimized.eqns) == 1
    assert np.allclose(optimized(np.float64(94.2))[0], 188.4)


if __name__ == "__main__":
    main()
