"""`check_grads`: numerical verification of derivatives, as in autograd and JAX.

Forward mode is checked against central finite differences along a random
direction; reverse mode by the dot-product test ⟨u, J v⟩ = ⟨uᵀJ, v⟩ against the
numerical J v. With `order=2` the same checks run on the derivative functions
themselves, so second derivatives are verified in every mode combination.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.api import jvp, vjp
from fxgrad.tree_util import tree_flatten, tree_map

_DEFAULT_EPS = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-2}
_DEFAULT_TOL = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 2e-2}


def _rng_like(rng: np.random.Generator, x: Any) -> Any:
    x = np.asarray(x)
    if x.dtype.kind not in "fc":
        return np.zeros(x.shape, x.dtype)
    return rng.standard_normal(x.shape).astype(x.dtype)


def _inner(xs: Any, ys: Any) -> float:
    a, _ = tree_flatten(xs)
    b, _ = tree_flatten(ys)
    return float(sum(np.vdot(np.asarray(u, np.float64), np.asarray(v, np.float64))
                     for u, v in zip(a, b) if np.asarray(u).dtype.kind in "fc"))


def _axpy(a: float, xs: Any, ys: Any) -> Any:
    return tree_map(lambda x, y: x + a * np.asarray(y, np.asarray(x).dtype)
                    if np.asarray(x).dtype.kind in "fc" else x, xs, ys)


def numerical_jvp(f: Callable[..., Any], args: Sequence[Any], tangents: Sequence[Any],
                  eps: float) -> Any:
    """Central-difference approximation of `J @ tangents`, J the Jacobian of `f` at `args`.

    >>> import numpy as np
    >>> round(float(numerical_jvp(np.sin, (0.0,), (2.0,), eps=1e-6)), 6)     # cos(0) * 2
    2.0
    """
    plus = f(*_axpy(eps, tuple(args), tuple(tangents)))
    minus = f(*_axpy(-eps, tuple(args), tuple(tangents)))
    return tree_map(lambda p, m: (np.asarray(p, np.float64) - np.asarray(m, np.float64)) / (2 * eps),
                    plus, minus)


def _assert_close(actual: Any, expected: Any, tol: float, what: str) -> None:
    a_leaves, a_tree = tree_flatten(actual)
    e_leaves, e_tree = tree_flatten(expected)
    assert a_tree == e_tree, f"{what}: structure {a_tree} != {e_tree}"
    for a, e in zip(a_leaves, e_leaves):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64),
                                   rtol=tol, atol=tol, err_msg=what)


def _tolerances(args: Sequence[Any], eps: float | None, tol: float | None) -> tuple[float, float]:
    dtypes = [np.asarray(x).dtype for x in tree_flatten(tuple(args))[0]]
    low = np.dtype(np.float32) if np.dtype(np.float32) in dtypes else np.dtype(np.float64)
    return (eps or _DEFAULT_EPS[low]), (tol or _DEFAULT_TOL[low])


def check_jvp(f: Callable[..., Any], args: Sequence[Any], rng: np.random.Generator,
              eps: float, tol: float) -> None:
    """Check `jvp(f)` at `args` along a random direction against central differences.

    >>> import numpy as np, fxgrad.numpy as fnp
    >>> check_jvp(fnp.sin, (0.5,), np.random.default_rng(0), eps=1e-5, tol=1e-6)
    """
    tangents = tree_map(lambda x: _rng_like(rng, x), tuple(args))
    _, t_out = jvp(f, tuple(args), tangents)
    _assert_close(t_out, numerical_jvp(f, args, tangents, eps), tol, "jvp vs finite differences")


def check_vjp(f: Callable[..., Any], args: Sequence[Any], rng: np.random.Generator,
              eps: float, tol: float) -> None:
    """Check `vjp(f)` at `args` by the dot-product test ⟨u, J v⟩ = ⟨uᵀJ, v⟩ for random
    u and v, with J v from central differences.

    >>> import numpy as np, fxgrad.numpy as fnp
    >>> check_vjp(fnp.sin, (0.5,), np.random.default_rng(0), eps=1e-5, tol=1e-6)
    """
    tangents = tree_map(lambda x: _rng_like(rng, x), tuple(args))
    out, pullback = vjp(f, *args)
    ct = tree_map(lambda y: _rng_like(rng, y), out)
    ct_in = pullback(ct)
    lhs = _inner(ct_in, tangents)
    rhs = _inner(ct, numerical_jvp(f, args, tangents, eps))
    scale = max(1.0, abs(lhs), abs(rhs))
    assert abs(lhs - rhs) <= tol * scale, f"vjp dot-product test: {lhs} != {rhs}"


def check_grads(f: Callable[..., Any], args: Sequence[Any], order: int = 2,
                modes: Sequence[str] = ("fwd", "rev"), eps: float | None = None,
                tol: float | None = None, seed: int = 0) -> None:
    """Check derivatives of `f` at `args` up to `order` in the given modes.

    >>> import fxgrad.numpy as fnp
    >>> check_grads(lambda x: fnp.sin(x) * x, (0.7,), order=2)
    """
    args = tree_map(lambda a: a if hasattr(a, "aval") else np.asarray(a), tuple(args))
    eps, tol = _tolerances(args, eps, tol)
    rng = np.random.default_rng(seed)
    for mode in modes:
        if mode not in ("fwd", "rev"):
            raise ValueError(f"unknown mode {mode!r}; use 'fwd' and/or 'rev'")
        check = check_jvp if mode == "fwd" else check_vjp
        check(f, args, rng, eps, tol)
        if order > 1:
            check_grads(_derivative_fun(f, args, mode, rng), args, order - 1, modes,
                        eps, tol, seed + 1)


def _derivative_fun(f: Callable[..., Any], args: Sequence[Any], mode: str,
                    rng: np.random.Generator) -> Callable[..., Any]:
    """A function of the same args whose value is a first derivative of f."""
    if mode == "fwd":
        tangents = tree_map(lambda x: _rng_like(rng, x), tuple(args))
        return lambda *xs: jvp(f, xs, tangents)[1]
    ct = tree_map(lambda y: _rng_like(rng, y), f(*args))
    return lambda *xs: vjp(f, *xs)[1](ct)


def check_jit(f: Callable[..., Any], args: Sequence[Any], rtol: float = 1e-12,
              atol: float = 0.0) -> None:
    """Check that `jit(f)` agrees with eager `f` at `args` (values, dtypes, structure).

    When `f` returns a dict (a table of named cases), a mismatch names its case.

    >>> import fxgrad.numpy as fnp
    >>> check_jit(lambda x: fnp.sin(x) * x, (fnp.arange(3.0),))
    """
    from fxgrad.jit import jit
    expected = f(*args)
    actual = jit(f)(*args)
    e_leaves, e_tree = tree_flatten(expected)
    a_leaves, a_tree = tree_flatten(actual)
    assert a_tree == e_tree, f"jit changed the output structure: {a_tree} != {e_tree}"
    names = _leaf_names(expected)
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.dtype == e.dtype and a.shape == e.shape, \
            f"{names[i]}: jit gave {a.dtype}{a.shape}, eager {e.dtype}{e.shape}"
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"{names[i]}: jit differs from eager")


def _leaf_names(out: Any) -> list[str]:
    """'case <key>' per leaf of a dict output (keys sorted, as flattening does), else
    'output <i>'."""
    if isinstance(out, dict):
        return [f"case {key}" for key in sorted(out) for _ in tree_flatten(out[key])[0]]
    return [f"output {i}" for i in range(len(tree_flatten(out)[0]))]


def _in_axes_choices(ranks: Sequence[int]) -> Any:
    """in_axes for each subset of mapped operands, at axis 0, the last and a negative axis."""
    import itertools
    for k in range(1, len(ranks) + 1):
        for mapped in itertools.combinations(range(len(ranks)), k):
            for axis_of in (lambda r: 0, lambda r: r, lambda r: -min(2, r + 1)):
                yield tuple(axis_of(r) if i in mapped else None for i, r in enumerate(ranks))


def _batch_of(make_args: Callable[[int], Sequence[Any]], in_axes: Sequence[Any],
              size: int) -> tuple[list[Any], list[list[Any]]]:
    """`size` examples (unmapped operands shared) and them stacked along their in_axes."""
    first = make_args(0)
    examples = [[x if a is not None else x0 for x, x0, a in zip(make_args(seed), first, in_axes)]
                for seed in range(size)]
    batched = [np.stack([ex[i] for ex in examples], a) if a is not None else first[i]
               for i, a in enumerate(in_axes)]
    return batched, examples


def check_vmap(fn: Callable[..., Any], make_args: Callable[[int], Sequence[Any]],
               rtol: float = 1e-12) -> None:
    """Check `vmap(fn)` against a Python loop over examples `make_args(seed)`, for every
    non-empty subset of mapped operands along the first, the last and a negative axis
    (`rtol=0`: exact), and that the batched program does not grow with the batch size.

    >>> import fxgrad.numpy as fnp
    >>> check_vmap(lambda x, y: x * fnp.sin(y), lambda seed: (np.full(3, seed + 1.0), np.ones(3)))
    """
    from fxgrad.batching_api import vmap
    from fxgrad.api import make_jaxpr
    for in_axes in _in_axes_choices([np.ndim(a) for a in make_args(0)]):
        batched, examples = _batch_of(make_args, in_axes, 5)
        out = vmap(fn, in_axes=in_axes)(*batched)
        expected = np.stack([fn(*ex) for ex in examples])
        assert out.dtype == expected.dtype and out.shape == expected.shape, f"in_axes={in_axes}"
        np.testing.assert_allclose(out, expected, rtol=rtol, atol=0, equal_nan=True,
                                   err_msg=f"in_axes={in_axes}")
        lengths = [len(make_jaxpr(vmap(fn, in_axes=in_axes))(*b).eqns)
                   for b in (_batch_of(make_args, in_axes, 2)[0], batched)]
        assert lengths[0] == lengths[1], f"in_axes={in_axes}: the program grows with the batch"
