"""`python -m benchmarks [--quick] [--only P1,P3] [--no-compile] [--plot FILE]`.

Prints one row per workload: fxgrad's time, hand-written numpy's and JAX's (when
installed), measured in the same run, and the ratios fxgrad/numpy and fxgrad/JAX.
C1 rows give first-call times in fresh processes with a cold and a warm cache.
A second table (T1, T2) compares Taylor mode with nested differentiation.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from typing import Any

import numpy as np

from benchmarks import taylor, timing, workloads
from fxgrad.tree_util import tree_flatten


def _agree(a: Any, b: Any, name: str) -> None:
    for x, y in zip(tree_flatten(a)[0], tree_flatten(b)[0]):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-9,
                                   err_msg=f"{name}: fxgrad disagrees with the numpy version")


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.3g}"


def run_workloads(quick: bool, only: set[str] | None) -> list[dict]:
    rows: list[dict] = []
    for make in workloads.ALL:
        w = make(quick)
        if only and w.name not in only:
            continue
        _agree(w.fxgrad(), w.numpy(), w.name)
        min_time = 0.05 if quick else 0.3
        t_fx = timing.time_call(w.fxgrad, min_time)
        t_np = timing.time_call(w.numpy, min_time)
        t_jax = timing.time_call(w.jax, min_time, sync=True) if w.jax else None
        rows.append({"name": w.name, "what": w.what, "fxgrad": t_fx, "numpy": t_np, "jax": t_jax})
        print_row(rows[-1])
    return rows


def run_first_calls(only: set[str] | None) -> list[dict]:
    rows = []
    for name, code in workloads.FIRST_CALL.items():
        if only and f"C1-{name}" not in only and "C1" not in only:
            continue
        with tempfile.TemporaryDirectory() as cache:
            cold = timing.first_call_in_fresh_process(code, cache)
            warm = timing.first_call_in_fresh_process(code, cache)
        jax_code = workloads.FIRST_CALL_JAX[name]
        t_jax = timing.first_call_in_fresh_process(jax_code, None) if workloads.jax else None
        rows.append({"name": f"C1-{name} cold", "what": "first call, empty cache",
                     "fxgrad": cold, "numpy": None, "jax": t_jax})
        rows.append({"name": f"C1-{name} warm", "what": "first call, warm cache",
                     "fxgrad": warm, "numpy": None, "jax": t_jax})
        print_row(rows[-2])
        print_row(rows[-1])
    return rows


def print_header() -> None:
    import numba
    jax_version = workloads.jax.__version__ if workloads.jax else "not installed"
    print(f"# {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"numpy {np.__version__}, numba {numba.__version__}, jax {jax_version}")
    header = (f"{'workload':<10} {'what':<38} {'fxgrad':>10} {'numpy':>10} {'jax':>10} "
              f"{'fx/np':>7} {'fx/jax':>7}")
    print(header)
    print("-" * len(header), flush=True)


def print_row(r: dict) -> None:
    print(f"{r['name']:<10} {r['what']:<38} {_fmt(r['fxgrad']):>10} {_fmt(r['numpy']):>10} "
          f"{_fmt(r['jax']):>10} {_ratio(r['fxgrad'], r['numpy']):>7} "
          f"{_ratio(r['fxgrad'], r['jax']):>7}", flush=True)


def plot(rows: list[dict], path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("--plot needs matplotlib: pip install 'fxgrad[plot]'")
    names = [r["name"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = np.arange(len(rows))
    for i, key in enumerate(("fxgrad", "numpy", "jax")):
        vals = [r[key] if r[key] else np.nan for r in rows]
        ax.bar(xs + (i - 1) * 0.27, vals, 0.27, label=key)
    ax.set_xticks(xs, names, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--only", help="comma-separated workload names, e.g. P1,P4,C1")
    parser.add_argument("--no-compile", action="store_true", help="skip the C1 first-call rows")
    parser.add_argument("--plot", help="write a bar chart to this file (needs matplotlib)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    print_header()
    rows = run_workloads(args.quick, only)
    if not args.no_compile and not args.quick:
        rows += run_first_calls(only)
    if only is None or only & {"T", "T1", "T2"}:
        taylor.print_rows(taylor.run(args.quick), _fmt)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
