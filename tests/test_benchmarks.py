"""The benchmark command runs in its quick mode (small sizes), so it cannot rot: every
workload's fxgrad result is checked against the hand-written numpy version."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_quick_mode_runs_and_agrees():
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("P1", "P2", "P3", "P4", "P5", "P6", "T1 jet", "T2 nested"):
        assert f"\n{name} " in out.stdout, out.stdout
