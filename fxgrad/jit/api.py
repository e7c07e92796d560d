"""`fx.jit`: trace once per signature, lower to numba, call native code.

A call flattens the arguments, looks up the entry for their signature (pytree
structure, shapes, dtypes, static argument values) and calls its compiled kernel.
A missing entry is made by tracing the function abstractly, simplifying the program
(unless `config.jit_simplify` is off), lowering it to source and compiling that
through the cache. Under another transformation (tracer arguments) the cached program
is *inlined*: evaluated on the tracers, so `grad(jit(f))` differentiates the same
program the kernel runs, and `jit(jit(f))` simply traces through the inner one.

Threads may share jitted functions: tracing happens outside any lock (so a function
that calls other jitted functions cannot deadlock), and a short lock per function
makes every thread use the first entry stored for a signature. Each function keeps
at most `config.jit_cache_size` signatures, dropping the least recently used.
"""
from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.api_util import as_input, normalize_argnums, trace_flat
from fxgrad.config import config
from fxgrad.core.errors import FxTypeError, FxValueError, api_boundary
from fxgrad.core.ir import ClosedProgram, Program
from fxgrad.core.trace import Tracer
from fxgrad.interpreters.evaluation import eval_program
from fxgrad.jit import dispatch, runtime, signatures
from fxgrad.jit.cache import load_kernel, recompile_in_memory
from fxgrad.jit.lowering import lower_program
from fxgrad.tree_util import PyTreeDef, tree_flatten, tree_unflatten

log = logging.getLogger("fxgrad.jit")
_clock = itertools.count()   # use times, for least-recently-used eviction
_live: "weakref.WeakSet[JitFunction]" = weakref.WeakSet()   # for clear_caches
_live_lock = threading.Lock()


class Entry:
    """One signature: its program and, once run on arrays, its compiled kernel.

    Lowering is deferred to the first concrete call, so a jitted function used only
    under other transformations (inlined) never compiles."""

    def __init__(self, program: Program, consts: list[Any], out_tree: PyTreeDef,
                 donated: list[int]):
        self.program = program
        self.consts = consts
        self.out_tree = out_tree
        self.donated = donated
        self.num_args = -1                # set when calls may skip flattening (jit.dispatch)
        self.signature: dict[str, Any] = {}   # see JitFunction._signature
        self.key: Any = None                  # this entry's key in JitFunction._entries
        self.kernel: Callable[..., Any] | None = None
        self.out_param = False            # the kernel writes its output into a last argument
        self.compiled = False             # has the kernel run (been compiled) once?
        # its inline caches (see jit.dispatch), by the arguments' dispatch.fast_key
        self.hots: dict[Any, Callable[..., Any] | None] = {}
        self.last_used = next(_clock)
        self._lock = threading.Lock()
        self.out_dtypes = tuple(v.aval.dtype for v in program.outvars)
        self.scalar_outs = tuple(i for i, v in enumerate(program.outvars) if v.aval.ndim == 0)
        self.single_leaf = out_tree.num_leaves == 1 and out_tree.node_type is None

    def lower(self) -> None:
        if self.kernel is not None:
            return
        with self._lock:
            if self.kernel is None:
                self._lower()

    def _lower(self) -> None:
        start = time.perf_counter()
        runtime.tune_malloc()
        lowered = lower_program(self.program, self.donated, out_param=self.single_leaf)
        self.source, self.out_param = lowered.source, lowered.out_param
        self.before = tuple(_prepare(c) for c in self.consts)   # kernel args before inputs
        # and after them; float64 ones as Python floats, which numba's dispatcher types
        # faster (the same float64 signature)
        self.after = tuple(float(v) if np.asarray(v).dtype == np.float64 else v
                           for v in lowered.literals)
        self.kernel = load_kernel(lowered.source)
        if config.log_compiles:
            log.warning("fxgrad.jit: lowered a program of %d equations in %.3f s",
                        len(self.program.eqns), time.perf_counter() - start)

    def _first_run(self, flat: Sequence[Any]) -> Any:
        """Lower, then time the first kernel call: numba compiles (or loads) it there.
        One thread at a time; an interrupted first call leaves the entry to retry."""
        self.lower()
        start = time.perf_counter()
        with self._lock:
            if not self.compiled:   # asked again: the kernel may have left the cache
                self.kernel = load_kernel(self.source)
            outs = self._call_kernel(flat)
            self.compiled = True
        if config.log_compiles:
            log.warning("fxgrad.jit: compiled (or loaded from a cache) and ran the "
                        "kernel in %.3f s", time.perf_counter() - start)
        return outs

    def run(self, flat: Sequence[Any]) -> Any:
        """Call the kernel on prepared flat inputs; the outputs as the user's pytree."""
        if not self.compiled:
            return self._first_run(flat)
        self.last_used = next(_clock)
        return self._call_kernel(flat)

    def make_hot(self, arguments: dispatch.CallArgs,
                 miss: Callable[..., Any]) -> Callable[..., Any] | None:
        """This entry's inline cache for calls like `arguments` (see fxgrad.jit.dispatch);
        None for donated inputs, whose buffers the general path hands over."""
        if self.donated or self.kernel is None:
            return None
        out = self._new_out() if self.out_param else None
        call_args = [*self.before, *dispatch.kernel_arguments(arguments), *self.after,
                     *([out] if out is not None else [])]
        call = dispatch.native_entry(self.kernel, call_args)
        return dispatch.hot_call(call, arguments, self.before, self.after, out, miss,
                                 self.kernel, None if out is not None else self._finish)

    def _call_kernel(self, flat: Sequence[Any]) -> Any:
        out = [self._new_out()] if self.out_param else []
        try:
            outs = self.kernel(*self.before, *flat, *self.after, *out)  # type: ignore[misc]
        except Exception as err:
            runtime.reset()   # the kernel's exit, which restores the caller's MXCSR, was skipped
            if not _is_cache_failure(err):
                raise
            self.kernel = recompile_in_memory(self.source)
            outs = self.kernel(*self.before, *flat, *self.after, *out)
        return out[0] if out else self._finish(outs)

    def _new_out(self) -> np.ndarray:
        """An array for the kernel's `out` parameter (see lowering.lower_program)."""
        return np.empty(self.program.outvars[0].aval.shape, self.out_dtypes[0])

    def _finish(self, outs: Sequence[Any]) -> Any:
        """The kernel's returned tuple as the user's outputs: scalars as 0-d arrays."""
        if self.scalar_outs:
            outs = list(outs)
            for i in self.scalar_outs:
                outs[i] = np.asarray(outs[i], self.out_dtypes[i])
        return outs[0] if self.single_leaf else tree_unflatten(self.out_tree, outs)


def _prepare(x: Any) -> Any:
    arr = np.asarray(x)
    return arr[()] if arr.ndim == 0 else np.ascontiguousarray(arr)


class Lowered:
    """What `jit(f).lower(*args)` returns: the program and the generated source."""

    def __init__(self, entry: Entry):
        self.entry = entry

    @property
    def program(self) -> ClosedProgram:
        return ClosedProgram(self.entry.program, self.entry.consts)

    def as_text(self) -> str:
        self.entry.lower()
        return self.entry.source


class JitFunction:
    """A function compiled to native code per argument signature."""

    def __init__(self, fun: Callable[..., Any], static_argnums: Sequence[int],
                 static_argnames: Sequence[str], donate_argnums: Sequence[int]):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums, self.static_argnames = signatures.infer_statics(
            fun, static_argnums, static_argnames)
        self.donate_argnums = tuple(donate_argnums)
        self._entries: dict[Any, Entry] = {}
        self._fast: dict[Any, Entry] = {}
        self._lock = threading.Lock()     # guards changes to _entries and _fast
        self._hot: Callable[[tuple[Any, ...], dict[str, Any]], Any] = self._dispatch
        self._hot_entry: Entry | None = None   # whose inline cache `_hot` is (jit.dispatch)
        self._statics: dict[int, tuple[int, ...]] = {}   # static positions by number of args
        with _live_lock:
            _live.add(self)

    def _split(self, args: tuple[Any, ...], kwargs: dict) -> tuple[Any, list[Any], PyTreeDef, tuple[Any, ...]]:
        statics = signatures.static_positions(self.static_argnums, len(args))
        static_vals = _hashable(tuple(args[i] for i in statics))
        static_kw = _hashable(tuple(sorted((k, v) for k, v in kwargs.items()
                                           if k in self.static_argnames)))
        dyn_args = tuple(a for i, a in enumerate(args) if i not in statics)
        dyn_kw = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        flat, tree = tree_flatten((dyn_args, dyn_kw))
        _check_aux_hashable(tree)
        flat = [as_input(x, "a jit argument") for x in flat]
        avals = tuple((x.shape, x.dtype) for x in flat)
        # static values with their types: 2, 2.0 and True are equal, but need not trace alike
        key = (tree, avals, tuple((type(v), v) for v in static_vals),
               tuple((k, type(v), v) for k, v in static_kw), statics)
        return key, flat, tree, statics

    def _trace(self, flat: list[Any], tree: PyTreeDef, args: tuple[Any, ...], kwargs: dict,
               statics: tuple[int, ...]) -> tuple[Program, list[Any], PyTreeDef]:
        def dyn_fun(dyn_args: tuple[Any, ...], dyn_kw: dict) -> Any:
            it = iter(dyn_args)
            full = [args[i] if i in statics else next(it) for i in range(len(args))]
            static_kw = {k: v for k, v in kwargs.items() if k in self.static_argnames}
            return self.fun(*full, **dyn_kw, **static_kw)

        program, consts, store = trace_flat(dyn_fun, flat, tree, concrete=False)
        if config.jit_simplify:
            from fxgrad.simplify import simplify_program
            program, consts = simplify_program(program, consts)
        return program, consts, store.tree

    def _entry(self, args: tuple[Any, ...], kwargs: dict) -> tuple[Entry, list[Any]]:
        key, flat, tree, statics = self._split(args, kwargs)
        entry = self._entries.get(key)
        if entry is None:
            signature = self._signature(args, kwargs, statics)
            cause = signatures.miss_cause(signature, [e.signature for e in list(self._entries.values())])
            entry = self._compile(flat, tree, args, kwargs, statics, cause)
            entry.signature, entry.key = signature, key
            with self._lock:   # another thread may have stored this signature meanwhile
                entry = self._entries.setdefault(key, entry)
                self._evict(entry)
        return entry, flat

    def _evict(self, newest: Entry) -> None:
        """Drop the least recently used entries beyond `config.jit_cache_size`, never
        `newest`. The hot entry's hits do not record their time: it counts as used now
        (and an entry that stops being hot is stamped then, see `_make_hot`)."""
        if len(self._entries) <= max(int(config.jit_cache_size), 1):
            return
        if self._hot_entry is not None:
            self._hot_entry.last_used = next(_clock)
        newest.last_used = next(_clock)
        while len(self._entries) > max(int(config.jit_cache_size), 1):
            key = min(self._entries, key=lambda k: self._entries[k].last_used)
            old = self._entries.pop(key)
            if old is self._hot_entry:
                self._reset_hot()
            for fast_key in [k for k, e in self._fast.items() if e is old]:
                del self._fast[fast_key]

    def clear_cache(self) -> None:
        """Forget every traced signature of this function (compiled kernels stay in
        the kernel cache, so retracing a signature does not compile again).

        >>> import fxgrad as fx, numpy as np
        >>> f = fx.jit(lambda x: x + 1.0)
        >>> _ = f(np.ones(2)); f.clear_cache(); f(np.ones(2))
        array([2., 2.])
        """
        with self._lock:
            self._entries.clear()
            self._fast.clear()
            self._reset_hot()

    def _signature(self, args: tuple[Any, ...], kwargs: dict,
                   statics: tuple[int, ...]) -> dict[str, Any]:
        return signatures.describe(self.fun, args, kwargs, statics, self.static_argnames)

    def _compile(self, flat: list[Any], tree: PyTreeDef, args: tuple[Any, ...], kwargs: dict,
                 statics: tuple[int, ...], cause: str = "") -> Entry:
        start = time.perf_counter()
        program, consts, out_tree = self._trace(flat, tree, args, kwargs, statics)
        if config.log_compiles:
            log.warning("fxgrad.jit: traced %s for new signature %s in %.3f s; cause: %s",
                        getattr(self.fun, "__name__", "fun"),
                        [f"{x.dtype}{list(x.shape)}" for x in flat],
                        time.perf_counter() - start, cause)
        return Entry(program, consts, out_tree,
                     self._donated_leaves(args, statics, len(consts)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._hot(args, kwargs)

    def _dispatch(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Calls the hot call did not take: a signature seen before with `passable`
        arguments (see jit.dispatch; the key holds shapes, strides, dtypes, containers
        and static values) becomes the hot one; anything else takes `_call`."""
        arguments = self._arguments(args, kwargs)
        if not config.disable_jit:
            try:
                entry = self._fast.get(key := dispatch.fast_key(arguments))
            except TypeError:   # unsortable dict keys, unhashable statics: `_call` reports them
                entry = None
            if entry is not None and entry.num_args == len(args):
                entry.last_used = next(_clock)
                self._make_hot(entry, arguments, key)
                return entry.run(dispatch.kernel_arguments(arguments))
        return self._call(args, kwargs)

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dispatch.CallArgs:
        """The call with its static arguments marked."""
        if not self.static_argnums:
            return dispatch.CallArgs(args, kwargs, (), self.static_argnames)
        n = len(args)
        if n not in self._statics:
            self._statics[n] = signatures.static_positions(self.static_argnums, n)
        return dispatch.CallArgs(args, kwargs, self._statics[n], self.static_argnames)

    def _make_hot(self, entry: Entry, arguments: dispatch.CallArgs, key: Any) -> None:
        if key not in entry.hots and entry.compiled:
            entry.hots[key] = entry.make_hot(arguments, self._dispatch)
        hot = entry.hots.get(key)
        if hot is not None:
            if self._hot_entry is not None and self._hot_entry is not entry:
                self._hot_entry.last_used = next(_clock)   # used until now
            self._hot, self._hot_entry = hot, entry

    def _reset_hot(self) -> None:
        if self._hot_entry is not None:
            self._hot_entry.last_used = next(_clock)
        self._hot, self._hot_entry = self._dispatch, None

    @api_boundary
    def _call(self, args: tuple[Any, ...], kwargs: dict) -> Any:
        if config.disable_jit:
            return self.fun(*args, **kwargs)
        entry, flat = self._entry(args, kwargs)
        if any(isinstance(x, Tracer) for x in flat):
            outs = eval_program(entry.program, [*entry.consts, *flat])
            return tree_unflatten(entry.out_tree, outs)
        # later calls like this one may skip flattening (see jit.dispatch.passable)
        arguments = self._arguments(args, kwargs)
        leaves = dispatch.raw_leaves(arguments)
        fast = leaves is not None and len(leaves) == len(flat) and all(
            dispatch.passable(x, a) for x, a in zip(flat, leaves))
        if fast:
            key = dispatch.fast_key(arguments)
            with self._lock:
                fast = self._entries.get(entry.key) is entry   # not evicted meanwhile
                if fast:
                    entry.num_args = len(args)
                    self._fast[key] = entry
        outs = entry.run([_prepare(x) for x in flat])
        if fast:
            self._make_hot(entry, arguments, key)
        return outs

    def _donated_leaves(self, args: tuple[Any, ...], statics: tuple[int, ...],
                        offset: int) -> list[int]:
        """Program input indices of the leaves of the donated arguments."""
        donated = set(normalize_argnums(self.donate_argnums, len(args), "jit")
                      if self.donate_argnums else ())
        indices: list[int] = []
        position = offset
        for i, arg in enumerate(args):
            if i in statics:
                continue
            count = len(tree_flatten(arg)[0])
            if i in donated:
                indices.extend(range(position, position + count))
            position += count
        return indices

    @api_boundary
    def lower(self, *args: Any, **kwargs: Any) -> Lowered:
        """The program and generated source this function runs for these arguments."""
        return Lowered(self._entry(args, kwargs)[0])


def _is_cache_failure(err: Exception) -> bool:
    """Did `err` come from loading numba's cached machine code (a corrupted cache)?"""
    import warnings
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(os.path.join("numba", "core", "caching.py")):
            warnings.warn(f"fxgrad: cached machine code failed to load ({err!r}); recompiling",
                          RuntimeWarning, stacklevel=4)
            return True
        tb = tb.tb_next
    return False


def _check_aux_hashable(tree: PyTreeDef) -> None:
    """jit keys its signatures by the pytree structure, custom nodes' aux data included."""
    try:
        hash(tree)
    except TypeError:
        node = _unhashable_node(tree)
        raise FxTypeError(
            f"jit: pytree node {node.node_type.__name__} has aux data {node.aux!r}, which is "
            "not hashable; jit keys compiled code by the arguments' tree structure, so the "
            "flatten function registered for it must return hashable aux data (a tuple "
            "rather than a list, say)") from None


def _unhashable_node(tree: PyTreeDef) -> PyTreeDef:
    for child in tree.children:
        try:
            hash(child)
        except TypeError:
            return _unhashable_node(child)
    return tree


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        raise FxValueError(f"jit: static arguments must be hashable, got {value!r}; "
                           "pass tuples instead of lists, or make it a dynamic argument") from None
    return value


@api_boundary
def explain_cache_miss(jitted: Any, /, *args: Any, **kwargs: Any) -> str:
    """Would `jitted(*args, **kwargs)` compile anew, and why? Compares the call's
    signature with the cached ones; calls nothing and compiles nothing.

    >>> import fxgrad as fx, numpy as np
    >>> f = fx.jit(lambda x: x * 2.0)
    >>> _ = f(np.ones(3))
    >>> print(fx.explain_cache_miss(f, np.ones(4)))
    <lambda>: this call would compile a new signature: argument 0 (x) changed shape from (3,) to (4,)
    """
    if not isinstance(jitted, JitFunction):
        raise FxValueError("explain_cache_miss expects a function made by fx.jit, "
                           f"got {type(jitted).__name__}")
    key, _, _, statics = jitted._split(args, kwargs)
    name = getattr(jitted, "__name__", "function")
    cached = [e.signature for e in list(jitted._entries.values())]
    if key in jitted._entries:
        return (f"{name}: this call would hit the cache (its signature is one of the "
                f"{len(cached)} compiled)")
    cause = signatures.miss_cause(jitted._signature(args, kwargs, statics), cached)
    return f"{name}: this call would compile a new signature: {cause}"


def clear_caches() -> None:
    """Forget every traced signature of every jitted function and every compiled
    kernel held in memory (as `jax.clear_caches`). The disk cache stays, so the next
    calls retrace and reload machine code rather than compile it.

    >>> import fxgrad as fx, numpy as np
    >>> f = fx.jit(lambda x: x * 3.0)
    >>> _ = f(np.ones(2)); fx.clear_caches(); f(np.ones(2))
    array([3., 3.])
    """
    from fxgrad.jit.cache import clear_memory_cache
    from fxgrad.primitives.custom import tangent_program
    with _live_lock:
        functions = list(_live)
    for fun in functions:
        fun.clear_cache()
    clear_memory_cache()
    tangent_program.cache_clear()


def _reset_hot_calls() -> None:
    """Drop every function's inline cache: `config.disable_jit` is checked off it."""
    with _live_lock:
        functions = list(_live)
    for fun in functions:
        fun._reset_hot()


config.watch("disable_jit", _reset_hot_calls)


def jit(fun: Callable[..., Any] | None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (), donate_argnums: int | Sequence[int] = ()) -> Any:
    """Compile `fun` to native code with numba, once per argument signature.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> f = fx.jit(lambda x: fnp.sum(fnp.sin(x) ** 2))
    >>> float(f(fnp.zeros(3)))
    0.0
    """
    as_tuple = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (  # noqa: E731
        () if v is None else (v,))
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames, donate_argnums=donate_argnums)
    if not callable(fun):
        raise FxValueError(f"jit expects a function, got {type(fun).__name__}")
    return JitFunction(fun, as_tuple(static_argnums), as_tuple(static_argnames),
                       as_tuple(donate_argnums))
