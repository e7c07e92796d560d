"""The benchmark workloads of the jit issue, each in three versions.

Every workload returns a `Workload`: zero-argument callables for fxgrad (jitted),
hand-written numpy and JAX (None when JAX is not installed), and the results the
fxgrad version must agree with (checked before timing, so a fast wrong answer fails).
Sizes follow the issue; `quick=True` shrinks them for CI.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:   # JAX is optional
    jax = None


class Workload(NamedTuple):
    name: str
    what: str
    fxgrad: Callable[[], Any]
    numpy: Callable[[], Any]
    jax: Callable[[], Any] | None


def _jax(make: Callable[[], Callable[[], Any]]) -> Callable[[], Any] | None:
    return make() if jax is not None else None


def p1_tiny(quick: bool) -> Workload:
    x = np.array([0.1, 0.2, 0.3])
    f = fx.jit(fx.grad(lambda x: fnp.sum(fnp.sin(x) ** 2 + x * x)))

    def hand(): return 2 * np.sin(x) * np.cos(x) + 2 * x

    def make_jax():
        g = jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(x) ** 2 + x * x)))
        xj = jnp.asarray(x)
        return lambda: g(xj)
    return Workload("P1", "grad, 3-vector, per call", lambda: f(x), hand, _jax(make_jax))


def p2_elementwise(quick: bool) -> Workload:
    x = np.random.default_rng(0).standard_normal(10_000 if quick else 1_000_000)
    loss = lambda x: fnp.sum(fnp.tanh(x) * fnp.sin(x) ** 2 + fnp.exp(-x * x))  # noqa: E731
    f = fx.jit(fx.grad(loss))

    def hand():
        t, s, c = np.tanh(x), np.sin(x), np.cos(x)
        return (1 - t * t) * s * s + 2 * t * s * c - 2 * x * np.exp(-x * x)

    def make_jax():
        g = jax.jit(jax.grad(lambda x: jnp.sum(jnp.tanh(x) * jnp.sin(x) ** 2 + jnp.exp(-x * x))))
        xj = jnp.asarray(x)
        return lambda: g(xj)
    return Workload("P2", f"elementwise grad, n={x.size}", lambda: f(x), hand, _jax(make_jax))


def p2v_value_and_grad(quick: bool) -> Workload:
    """Not an issue workload: P2's loss and gradient together, the usual training call
    (the loss is a sum over the array, a reduction in the fused loop)."""
    x = np.random.default_rng(0).standard_normal(10_000 if quick else 1_000_000)
    loss = lambda x: fnp.sum(fnp.tanh(x) * fnp.sin(x) ** 2 + fnp.exp(-x * x))  # noqa: E731
    f = fx.jit(fx.value_and_grad(loss))

    def hand():
        t, s, c, e = np.tanh(x), np.sin(x), np.cos(x), np.exp(-x * x)
        return np.sum(t * s * s + e), (1 - t * t) * s * s + 2 * t * s * c - 2 * x * e

    def make_jax():
        g = jax.jit(jax.value_and_grad(
            lambda x: jnp.sum(jnp.tanh(x) * jnp.sin(x) ** 2 + jnp.exp(-x * x))))
        xj = jnp.asarray(x)
        return lambda: g(xj)
    return Workload("P2v", f"value_and_grad of P2's loss, n={x.size}", lambda: f(x), hand,
                    _jax(make_jax))


def _mlp_data(quick: bool) -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    n_in, n_hidden, batch = (64, 32, 16) if quick else (784, 512, 128)
    params = {"W1": rng.standard_normal((n_in, n_hidden)) * 0.05, "b1": np.zeros(n_hidden),
              "W2": rng.standard_normal((n_hidden, 10)) * 0.05, "b2": np.zeros(10)}
    return params, rng.standard_normal((batch, n_in)), rng.standard_normal((batch, 10))


def mlp_loss(p: dict, X: Any, Y: Any, np_: Any = fnp) -> Any:
    hidden = np_.tanh(X @ p["W1"] + p["b1"])
    return np_.mean((hidden @ p["W2"] + p["b2"] - Y) ** 2)


def p3_mlp(quick: bool) -> Workload:
    params, X, Y = _mlp_data(quick)
    f = fx.jit(fx.grad(mlp_loss))

    def hand():
        h = np.tanh(X @ params["W1"] + params["b1"])
        d_out = 2 * (h @ params["W2"] + params["b2"] - Y) / Y.size
        d_h = (d_out @ params["W2"].T) * (1 - h * h)
        return {"W1": X.T @ d_h, "b1": d_h.sum(0), "W2": h.T @ d_out, "b2": d_out.sum(0)}

    def make_jax():
        g = jax.jit(jax.grad(lambda p, X, Y: mlp_loss(p, X, Y, jnp)))
        pj = jax.tree_util.tree_map(jnp.asarray, params)
        return lambda: g(pj, X, Y)
    shape = f"{X.shape[1]}-{params['W1'].shape[1]}-10, batch {X.shape[0]}"
    return Workload("P3", f"MLP grad {shape}", lambda: f(params, X, Y), hand, _jax(make_jax))


def rnn_loss(W: Any, xs: Any, scan: Any = fx.scan, np_: Any = fnp) -> Any:
    h, _ = scan(lambda h, x: (np_.tanh(W @ h + x), None), np_.zeros(W.shape[0]), xs)
    return np_.sum(h ** 2)


def p4_rnn(quick: bool) -> Workload:
    rng = np.random.default_rng(2)
    steps = 500 if quick else 10_000
    W, xs = rng.standard_normal((8, 8)) * 0.3, rng.standard_normal((steps, 8)) * 0.5
    f = fx.jit(fx.grad(rnn_loss))

    def hand():
        hs = [np.zeros(8)]
        for x in xs:
            hs.append(np.tanh(W @ hs[-1] + x))
        d_h, d_W = 2 * hs[-1], np.zeros_like(W)
        for t in range(steps, 0, -1):
            d_pre = d_h * (1 - hs[t] ** 2)
            d_W += np.outer(d_pre, hs[t - 1])
            d_h = W.T @ d_pre
        return d_W

    def make_jax():
        g = jax.jit(jax.grad(lambda W, xs: rnn_loss(W, xs, jax.lax.scan, jnp)))
        return lambda: g(W, xs)
    return Workload("P4", f"RNN scan grad, state 8, {steps} steps", lambda: f(W, xs), hand,
                    _jax(make_jax))


def lorenz(s: Any, p: Any, np_: Any = fnp) -> Any:
    sigma, rho, beta = p[0], p[1], p[2]
    return np_.stack([sigma * (s[1] - s[0]), s[0] * (rho - s[2]) - s[1], s[0] * s[1] - beta * s[2]])


def rk4_loss(p: Any, steps: int, scan: Any = fx.scan, np_: Any = fnp, dt: float = 1e-3) -> Any:
    def step(s: Any, _: Any) -> Any:
        k1 = lorenz(s, p, np_)
        k2 = lorenz(s + 0.5 * dt * k1, p, np_)
        k3 = lorenz(s + 0.5 * dt * k2, p, np_)
        k4 = lorenz(s + dt * k3, p, np_)
        return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None
    s, _ = scan(step, np_.ones(3), None, length=steps)
    return np_.sum(s ** 2)


def _lorenz_sensitivity(s: np.ndarray, S: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sigma, rho, beta = p
    f = np.array([sigma * (s[1] - s[0]), s[0] * (rho - s[2]) - s[1], s[0] * s[1] - beta * s[2]])
    J_s = np.array([[-sigma, sigma, 0.0], [rho - s[2], -1.0, -s[0]], [s[1], s[0], -beta]])
    J_p = np.array([[s[1] - s[0], 0.0, 0.0], [0.0, s[0], 0.0], [0.0, 0.0, -s[2]]])
    return f, J_s @ S + J_p


def p5_ode(quick: bool) -> Workload:
    steps, dt = (200 if quick else 5_000), 1e-3
    p = np.array([10.0, 28.0, 8.0 / 3.0])
    f = fx.jit(fx.grad(rk4_loss), static_argnums=1)

    def hand():   # forward sensitivities dS/dp through each RK4 stage
        s, S = np.ones(3), np.zeros((3, 3))
        for _ in range(steps):
            k1, K1 = _lorenz_sensitivity(s, S, p)
            k2, K2 = _lorenz_sensitivity(s + 0.5 * dt * k1, S + 0.5 * dt * K1, p)
            k3, K3 = _lorenz_sensitivity(s + 0.5 * dt * k2, S + 0.5 * dt * K2, p)
            k4, K4 = _lorenz_sensitivity(s + dt * k3, S + dt * K3, p)
            s, S = s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), S + dt / 6 * (K1 + 2 * K2 + 2 * K3 + K4)
        return 2 * s @ S

    def make_jax():
        g = jax.jit(jax.grad(lambda p: rk4_loss(p, steps, jax.lax.scan, jnp)))
        return lambda: g(p)
    return Workload("P5", f"RK4 Lorenz grad, {steps} steps", lambda: f(p, steps), hand,
                    _jax(make_jax))


def hessian_f(x: Any, A: Any, np_: Any = fnp) -> Any:
    return np_.sum(np_.sin(x) * x) + x @ A @ x + np_.sum(np_.exp(-x * x)) ** 2


def p6_hessian(quick: bool) -> Workload:
    n = 20 if quick else 200
    rng = np.random.default_rng(3)
    x, A = rng.standard_normal(n) * 0.5, rng.standard_normal((n, n)) / n
    f = fx.jit(fx.hessian(hessian_f))

    def hand():
        e = np.exp(-x * x)
        g = -2 * x * e
        diag = 2 * np.cos(x) - x * np.sin(x) + 2 * e.sum() * (4 * x * x - 2) * e
        return np.diag(diag) + A + A.T + 2 * np.outer(g, g)

    def make_jax():
        h = jax.jit(jax.hessian(lambda x, A: hessian_f(x, A, jnp)))
        return lambda: h(x, A)
    return Workload("P6", f"Hessian, n={n}", lambda: f(x, A), hand, _jax(make_jax))


ALL = [p1_tiny, p2_elementwise, p2v_value_and_grad, p3_mlp, p4_rnn, p5_ode, p6_hessian]

# First-call code for C1, run in fresh processes: P2 and P5 at full size.
FIRST_CALL = {
    "P2": ("import numpy as np, fxgrad as fx, fxgrad.numpy as fnp\n"
           "x = np.random.default_rng(0).standard_normal(1_000_000)\n"
           "f = fx.jit(fx.grad(lambda x: fnp.sum(fnp.tanh(x) * fnp.sin(x) ** 2 + fnp.exp(-x * x))))\n"
           "def run(): f(x)\n"),
    "P5": ("import numpy as np, fxgrad as fx\nfrom benchmarks.workloads import rk4_loss\n"
           "f = fx.jit(fx.grad(rk4_loss), static_argnums=1)\np = np.array([10.0, 28.0, 8.0 / 3.0])\n"
           "def run(): f(p, 5000)\n"),
}
FIRST_CALL_JAX = {
    "P2": ("import numpy as np, jax, jax.numpy as jnp\njax.config.update('jax_enable_x64', True)\n"
           "x = np.random.default_rng(0).standard_normal(1_000_000)\n"
           "f = jax.jit(jax.grad(lambda x: jnp.sum(jnp.tanh(x) * jnp.sin(x) ** 2 + jnp.exp(-x * x))))\n"
           "def run(): f(x).block_until_ready()\n"),
    "P5": ("import numpy as np, jax, jax.numpy as jnp\njax.config.update('jax_enable_x64', True)\n"
           "from benchmarks.workloads import rk4_loss\np = np.array([10.0, 28.0, 8.0 / 3.0])\n"
           "f = jax.jit(jax.grad(lambda p: rk4_loss(p, 5000, jax.lax.scan, jnp)))\n"
           "def run(): f(p).block_until_ready()\n"),
}
