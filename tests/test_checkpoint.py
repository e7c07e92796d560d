"""checkpoint/remat: same values and derivatives (every order, every mode) as without
it, under jit, vmap and scan; and the residual memory it saves on a long scan."""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.api_util import linearize_program
from fxgrad.test_util import check_grads, check_jit

RNG = np.random.default_rng(0)


def mlp(weights, h):
    for w in weights:
        h = fnp.tanh(w @ h)
    return h


def scan_loss(weights, h0, remat, length):
    layer = fx.checkpoint(mlp) if remat else mlp
    h, _ = fx.scan(lambda h, _: (layer(weights, h), None), h0, None, length=length)
    return fnp.sum(h)


def residual_bytes(fun, args):
    """Bytes of the constants of the linear program reverse mode stores for `fun`."""
    closed = fx.make_jaxpr(fun)(*args)
    flat = fx.tree_util.tree_leaves(args)
    _, linear_map = linearize_program(closed.program, closed.consts, flat, 1)
    return sum(np.asarray(c).nbytes for c in linear_map.consts)


def test_values_and_derivatives_match():
    f = lambda x, y: fnp.sin(x * y) * fnp.exp(x) + y ** 3  # noqa: E731
    g = fx.checkpoint(f)
    args = (0.7, np.array([0.2, -0.4]))
    assert np.allclose(g(*args), f(*args))
    assert np.allclose(fx.grad(lambda x, y: fnp.sum(g(x, y)))(*args),
                       fx.grad(lambda x, y: fnp.sum(f(x, y)))(*args))
    check_grads(g, args, order=2)
    check_grads(lambda x: fnp.sum(fx.remat(fnp.tanh)(x) ** 2), (np.array([0.1, 0.9]),),
                order=2)


def test_checkpointed_scan_gradients():
    weights = tuple(RNG.standard_normal((3, 3)) / 2 for _ in range(2))
    h0 = RNG.standard_normal(3)
    plain = fx.grad(scan_loss, argnums=(0, 1))(weights, h0, False, 4)
    remat = fx.grad(scan_loss, argnums=(0, 1))(weights, h0, True, 4)
    for a, b in zip(fx.tree_util.tree_leaves(plain), fx.tree_util.tree_leaves(remat)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    check_grads(lambda w0, h: scan_loss((w0, weights[1]), h, True, 3), (weights[0], h0),
                order=2)


def test_checkpoint_under_jit_and_vmap():
    f = fx.checkpoint(lambda x: fnp.sin(fnp.cos(x)) * x)
    xs = np.array([0.1, 0.5, -1.3])
    expected = fx.vmap(fx.grad(lambda x: fnp.sin(fnp.cos(x)) * x))(xs)
    assert np.allclose(fx.vmap(fx.grad(f))(xs), expected)
    assert np.allclose(fx.jit(fx.vmap(fx.grad(f)))(xs), expected)
    assert np.allclose(fx.grad(lambda x: fnp.sum(fx.vmap(f)(x)))(xs), expected)
    check_grads(lambda x: fnp.sum(fx.vmap(f)(x)), (xs,), order=2)
    check_jit(fx.vmap(f), (xs,))
    check_jit(lambda x: fx.jvp(f, (x,), (fnp.ones_like(x),)), (xs,))


def test_checkpoint_static_argnums_and_pytrees():
    f = fx.checkpoint(lambda params, n: params["w"] * params["x"] ** n, static_argnums=1)
    params = {"w": 2.0, "x": 1.5}
    grads = fx.grad(f)(params, 3)
    assert np.allclose(grads["w"], 1.5 ** 3) and np.allclose(grads["x"], 2 * 3 * 1.5 ** 2)
    assert f({"w": np.float32(2.0), "x": np.float32(1.5)}, 2).dtype == np.float32


def test_checkpoint_saves_residual_memory_on_a_long_scan():
    weights = tuple(RNG.standard_normal((64, 64)) / 8 for _ in range(5))
    h0 = RNG.standard_normal(64)
    plain = residual_bytes(lambda w, h: scan_loss(w, h, False, 1000), (weights, h0))
    remat = residual_bytes(lambda w, h: scan_loss(w, h, True, 1000), (weights, h0))
    # checkpointed: the weights, and one carry per step (the layers are recomputed);
    # plain: also every layer's input and tanh derivative per step (10 x 64 floats)
    assert remat == 5 * 64 * 64 * 8 + 1000 * 64 * 8 == 675_840
    assert plain > 7 * remat
