"""Per-example gradients with vmap, against a Python loop.

`fx.grad(loss)` is the gradient for one example; `fx.vmap(..., in_axes=(None, 0, 0))`
maps it over the rows of X and y while sharing the parameters, giving one gradient per
example in a single batched computation (matrix products instead of a loop of
matrix-vector products). Per-example gradients are what differentially private SGD
clips, and what gradient-variance diagnostics need. We check the result against a
Python loop calling `fx.grad` once per example, and that their mean is the gradient
of the mean loss.

Run: python examples/per_example_grads.py
"""
import time

import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp


def example_loss(params, x, y):
    """Softplus-margin loss of one example (x: (d,), y: +1 or -1) for a 2-layer net."""
    h = fnp.tanh(fnp.dot(params["W"], x))
    return fnp.logaddexp(0.0, -y * fnp.dot(params["v"], h))


def mean_loss(params, X, Y):
    return fnp.mean(fx.vmap(example_loss, in_axes=(None, 0, 0))(params, X, Y))


def loop_grads(params, X, Y):
    grads = [fx.grad(example_loss)(params, x, y) for x, y in zip(X, Y)]
    return {name: np.stack([g[name] for g in grads]) for name in params}


def main():
    rng = np.random.default_rng(0)
    n, d, hidden = 32, 5, 8
    params = {"W": rng.standard_normal((hidden, d)) / np.sqrt(d), "v": rng.standard_normal(hidden)}
    X, Y = rng.standard_normal((n, d)), np.sign(rng.standard_normal(n))

    per_example = fx.vmap(fx.grad(example_loss), in_axes=(None, 0, 0))
    start = time.perf_counter()
    batched = per_example(params, X, Y)
    batched_time = time.perf_counter() - start
    start = time.perf_counter()
    looped = loop_grads(params, X, Y)
    loop_time = time.perf_counter() - start
    print({name: g.shape for name, g in batched.items()}, "per-example gradient shapes")
    print(f"vmap: {batched_time * 1e3:.1f} ms, Python loop of {n} grads: {loop_time * 1e3:.1f} ms")
    for name in params:
        assert np.allclose(batched[name], looped[name]), name
    print("vmap(grad) matches the loop for every example")

    full = fx.grad(mean_loss)(params, X, Y)
    assert all(np.allclose(batched[k].mean(axis=0), full[k]) for k in params)
    norms = np.sqrt(sum(np.sum(g.reshape(n, -1) ** 2, axis=1) for g in batched.values()))
    print("mean of per-example gradients = gradient of the mean loss;",
          f"per-example gradient norms range {norms.min():.3f} .. {norms.max():.3f}")


if __name__ == "__main__":
    main()
