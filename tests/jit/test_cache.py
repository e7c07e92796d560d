"""The on-disk compile cache: reuse across processes, recovery from corruption and
unwritable locations, and concurrent use."""
import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent("""
    import warnings, numpy as np, fxgrad as fx, fxgrad.numpy as fnp
    warnings.simplefilter("always")
    f = fx.jit(lambda x: fnp.sum(fnp.tanh(x) * x + 1.5))
    x = np.linspace(-1, 1, 7)
    print(repr(float(f(x))))
    kernel = f.lower(x).entry.kernel
    stats = getattr(kernel, "stats", None)
    print(sum(stats.cache_hits.values()) if stats else -1)
""")
EXPECTED = float(np.sum(np.tanh(np.linspace(-1, 1, 7)) * np.linspace(-1, 1, 7) + 1.5))


def run(cache_dir, background=False):
    env = {**os.environ, "FXGRAD_CACHE_DIR": str(cache_dir)}
    cmd = [sys.executable, "-c", SCRIPT]
    if background:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def value_and_hits(proc):
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    return float(lines[0]), int(lines[1])


def test_second_process_hits_the_cache(tmp_path):
    first = run(tmp_path)
    assert value_and_hits(first) == (EXPECTED, 0)
    assert list((tmp_path / "kernels").glob("fx_*.py"))
    second = run(tmp_path)
    value, hits = value_and_hits(second)
    assert value == EXPECTED and hits == 1


def test_corrupted_cache_recovers(tmp_path):
    value_and_hits(run(tmp_path))
    for path in (tmp_path / "kernels").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\x00garbage\xff" * 3)
    proc = run(tmp_path)
    assert value_and_hits(proc)[0] == EXPECTED
    again = run(tmp_path)
    assert value_and_hits(again)[0] == EXPECTED


def test_unwritable_cache_warns_and_compiles(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    proc = run(blocker / "sub")
    assert value_and_hits(proc)[0] == EXPECTED
    assert "compiling in memory" in proc.stderr


def test_two_processes_share_a_cache_concurrently(tmp_path):
    procs = [run(tmp_path, background=True) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert float(out.split()[0]) == EXPECTED
    assert value_and_hits(run(tmp_path)) == (EXPECTED, 1)
