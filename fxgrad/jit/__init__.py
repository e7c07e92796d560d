"""Compilation of programs to native code through numba (see `api` and `lowering`)."""
from fxgrad.jit.api import JitFunction, Lowered, jit

__all__ = ["JitFunction", "Lowered", "jit"]
