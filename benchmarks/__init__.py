"""Benchmarks of fxgrad's jit against hand-written numpy and (when installed) JAX.

Run them all with `python -m benchmarks` (add `--quick` for small sizes, `--plot FILE`
for a chart). Each workload is defined once in `workloads.py` in its three versions.
"""
