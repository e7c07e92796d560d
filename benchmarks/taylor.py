"""Taylor-mode workloads of the Taylor issue: order-K derivatives in one pass vs nesting.

T1: the 10th derivative of f(x) = sin(x) exp(x) / (1 + x^2) at a point, by
`fx.derivatives` vs ten nested `fx.grad`. T2: the Taylor coefficients to order 10
of the solution of the Lorenz system through a point, by `fx.taylor_coefficients` vs
nested `fx.jvp` (Lie derivatives, x^(k+1) = dx^(k)[f]). Both fxgrad versions run
eagerly (each call traces, as a user's first call would); the one-pass versions are
also timed under `fx.jit` (per call, and the first call that compiles). JAX's rows use
`jax.experimental.jet` and nested `jax.grad`/`jax.jvp`, jitted, per call after
compiling; their compile times are printed too, since nesting is what makes those
grow. `quick=True` uses order 6 so CI can run it.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp
from benchmarks import timing
from benchmarks.workloads import jax

if jax is not None:
    import jax.numpy as jnp
    from jax.experimental.jet import jet as jax_jet


def scalar_f(x: Any, np_: Any = fnp) -> Any:
    return np_.sin(x) * np_.exp(x) / (1.0 + x * x)


def lorenz(s: Any, np_: Any = fnp) -> Any:
    return np_.stack([10.0 * (s[1] - s[0]), s[0] * (28.0 - s[2]) - s[1],
                      s[0] * s[1] - 8.0 / 3.0 * s[2]])


def nested_grad(f: Callable[..., Any], order: int, grad: Callable[..., Any] = fx.grad) -> Any:
    for _ in range(order):
        f = grad(f)
    return f


def lie_coefficients(f: Callable[..., Any], order: int, jvp: Callable[..., Any] = fx.jvp,
                     stack: Callable[..., Any] = np.stack) -> Callable[..., Any]:
    """x -> [x_0, ..., x_order] of x' = f(x) by nesting jvp (exponential in order)."""
    def coefficients(x0: Any) -> Any:
        out, g = [x0], f
        for k in range(1, order + 1):
            out.append(g(x0) / math.factorial(k))
            g = (lambda h: lambda x: jvp(h, (x,), (f(x),))[1])(g)
        return stack(out)
    return coefficients


def _jax_rows(order: int) -> dict[str, Callable[[], Any]]:
    def jet_derivative(x: Any) -> Any:
        _, terms = jax_jet(lambda y: scalar_f(y, jnp), (x,), ((1.0,) + (0.0,) * (order - 1),))
        return terms[-1]

    def jet_taylor(x0: Any) -> Any:   # the recursion of JAX's ODE example
        xs = [x0]
        for k in range(order):
            if k == 0:
                y0, ys = lorenz(x0, jnp), []
            else:
                y0, ys = jax_jet(lambda s: lorenz(s, jnp), (x0,),
                                 ([xs[j + 1] * math.factorial(j + 1) for j in range(k)],))
                ys = [y / math.factorial(j + 1) for j, y in enumerate(ys)]
            xs.append(([y0] + list(ys))[k] / (k + 1))
        return jnp.stack(xs)

    x, s0 = jnp.asarray(0.3), jnp.asarray([1.0, 2.0, 3.0])
    fns = {"T1 jet": (jax.jit(jet_derivative), x),
           "T1 nested": (jax.jit(nested_grad(lambda y: scalar_f(y, jnp), order, jax.grad)), x),
           "T2 jet": (jax.jit(jet_taylor), s0),
           "T2 nested": (jax.jit(lie_coefficients(lambda s: lorenz(s, jnp), order, jax.jvp,
                                                  jnp.stack)), s0)}
    return {name: (lambda f=f, a=a: f(a)) for name, (f, a) in fns.items()}


def _first_call(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    timing.block(fn())
    return time.perf_counter() - start


def run(quick: bool) -> list[dict]:
    """Time both workloads; check the one-pass results against nesting first."""
    order = 6 if quick else 10
    x, s0 = 0.3, np.array([1.0, 2.0, 3.0])
    fx_rows = {"T1 jet": lambda: fx.derivatives(scalar_f, order)(x)[order],
               "T1 nested": lambda: nested_grad(scalar_f, order)(x),
               "T2 jet": lambda: fx.taylor_coefficients(lorenz, order)(s0),
               "T2 nested": lambda: lie_coefficients(lorenz, order)(s0)}
    jax_rows = _jax_rows(order) if jax is not None else {}
    results, rows = {}, []
    fx_jit = {"T1 jet": (fx.jit(fx.derivatives(scalar_f, order)), x),
              "T2 jet": (fx.jit(fx.taylor_coefficients(lorenz, order)), s0)}
    for name, fn in fx_rows.items():
        results[name] = fn()
        min_time = 0.0 if "nested" in name else (0.05 if quick else 0.3)
        row = {"name": name, "order": order, "fxgrad": _first_call(fn) if min_time == 0.0
               else timing.time_call(fn, min_time)}
        if name in fx_jit:
            jitted = (lambda f, a: lambda: f(a))(*fx_jit[name])
            row["fx_compile"] = _first_call(jitted)
            row["fx_jit"] = timing.time_call(jitted, 0.05)
        if name in jax_rows:
            row["jax_compile"] = _first_call(jax_rows[name])
            row["jax"] = timing.time_call(jax_rows[name], 0.05, sync=True)
        rows.append(row)
    for task in ("T1", "T2"):
        np.testing.assert_allclose(results[f"{task} jet"], results[f"{task} nested"],
                                   rtol=1e-9, err_msg=f"{task}: jet disagrees with nesting")
    return rows


def print_rows(rows: list[dict], fmt: Callable[[float | None], str]) -> None:
    by_name = {r["name"]: r for r in rows}
    print(f"\n{'taylor':<10} {'order':>5} {'fxgrad':>10} {'speedup':>8} {'fx jit':>10} "
          f"{'fx compile':>11} {'jax (jit)':>10} {'jax compile':>12}")
    for r in rows:
        task = r["name"].split()[0]
        speedup = by_name[f"{task} nested"]["fxgrad"] / r["fxgrad"] if "jet" in r["name"] else None
        print(f"{r['name']:<10} {r['order']:>5} {fmt(r['fxgrad']):>10} "
              f"{(f'{speedup:.0f}x' if speedup else '-'):>8} {fmt(r.get('fx_jit')):>10} "
              f"{fmt(r.get('fx_compile')):>11} {fmt(r.get('jax')):>10} "
              f"{fmt(r.get('jax_compile')):>12}", flush=True)
