"""Timing helpers: best-of-repeats wall time per call, and first-call time in a fresh process."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable


def block(x: Any) -> Any:
    """Wait for asynchronous results (JAX) so timings measure the computation."""
    for leaf in x if isinstance(x, (tuple, list)) else [x]:
        ready = getattr(leaf, "block_until_ready", None)
        if ready is not None:
            ready()
    return x


def time_call(fn: Callable[[], Any], min_time: float = 0.2, repeats: int = 5,
              sync: bool = False) -> float:
    """Best per-call seconds over `repeats` batches, each running at least `min_time`.

    `sync` waits for each result (JAX dispatches asynchronously); fxgrad and numpy
    return finished arrays, so they are timed without that wrapper's cost (~0.2 us)."""
    call = (lambda: block(fn())) if sync else fn
    call()   # warm up (compiles)
    number, elapsed = 1, 0.0
    while True:
        elapsed = _batch(call, number)
        if elapsed >= min_time / repeats or number >= 1 << 20:
            break
        number *= 4
    best = elapsed / number
    for _ in range(repeats - 1):
        best = min(best, _batch(call, number) / number)
    return best


def _batch(call: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        call()
    return time.perf_counter() - start


def first_call_in_fresh_process(code: str, cache_dir: str | None) -> float:
    """Seconds the first call takes in a new interpreter (import excluded).

    `code` must define `run()`; the process prints the time of its first call."""
    script = code + (
        "\nimport time as _t\n_s = _t.perf_counter()\nrun()\n"
        "print('FIRST_CALL', _t.perf_counter() - _s)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    if cache_dir is not None:
        env["FXGRAD_CACHE_DIR"] = cache_dir
        env["JAX_COMPILATION_CACHE_DIR"] = cache_dir
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run([sys.executable, f.name], capture_output=True, text=True,
                             env=env, check=True, cwd=os.getcwd()).stdout
    finally:
        os.unlink(f.name)
    return float(next(line.split()[1] for line in out.splitlines()
                      if line.startswith("FIRST_CALL")))
