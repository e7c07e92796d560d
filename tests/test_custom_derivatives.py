"""custom_jvp and custom_vjp: values and derivatives against closed forms and finite
differences, eager, under jit and vmap, nested; nondiff_argnums; errors."""
import functools

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.test_util import check_grads, check_jit

# log1pexp(x) itself overflows to inf for large x; its gradient is what is tested there
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp")


@fx.custom_jvp
def log1pexp(x):
    return fnp.log(1.0 + fnp.exp(x))


@log1pexp.defjvp
def log1pexp_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return log1pexp(x), x_dot * (1.0 - 1.0 / (1.0 + fnp.exp(x)))


@fx.custom_vjp
def clip_gradient(lo, hi, x):
    return x


def clip_gradient_fwd(lo, hi, x):
    return x, (lo, hi)


def clip_gradient_bwd(res, ct):
    lo, hi = res
    return None, None, fnp.clip(ct, lo, hi)


clip_gradient.defvjp(clip_gradient_fwd, clip_gradient_bwd)


@fx.custom_vjp
def sin_vjp(x):
    return fnp.sin(x)


sin_vjp.defvjp(lambda x: (sin_vjp(x), fnp.cos(x)), lambda cos_x, ct: (cos_x * ct,))


def softplus_grad(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------- custom_jvp

def test_log1pexp_value_and_stable_grad():
    assert np.allclose(log1pexp(3.0), np.log1p(np.exp(3.0)))
    assert fx.grad(log1pexp)(1000.0) == 1.0          # the naive derivative gives nan
    with np.errstate(invalid="ignore"):
        assert np.isnan(fx.grad(lambda x: fnp.log(1.0 + fnp.exp(x)))(1000.0))
    assert np.allclose(fx.grad(log1pexp)(0.3), softplus_grad(0.3))


def test_log1pexp_second_derivative_differentiates_the_rule():
    s = softplus_grad(0.5)
    assert np.allclose(fx.grad(fx.grad(log1pexp))(0.5), s * (1 - s))
    check_grads(log1pexp, (0.7,), order=2)
    check_grads(lambda x: fnp.sum(log1pexp(x) * x), (np.array([0.3, -1.2, 2.0]),), order=2)


def test_custom_jvp_rule_is_used_not_the_function():
    @fx.custom_jvp
    def f(x):
        return fnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (x_dot,) = primals, tangents
        return f(x), 3.0 * x_dot

    assert fx.grad(f)(0.4) == 3.0
    assert fx.jvp(f, (0.4,), (2.0,))[1] == 6.0
    assert np.allclose(fx.jacrev(lambda x: f(x))(np.ones(2)), 3.0 * np.eye(2))


def test_custom_jvp_under_jit_and_vmap():
    xs = np.array([-3.0, 0.2, 50.0, 800.0])
    expected = softplus_grad(xs)
    assert np.allclose(fx.vmap(fx.grad(log1pexp))(xs), expected)
    assert np.allclose(fx.jit(fx.vmap(fx.grad(log1pexp)))(xs), expected)
    assert np.allclose(fx.grad(lambda x: fnp.sum(fx.vmap(log1pexp)(x)))(xs), expected)
    assert np.allclose(fx.grad(fx.jit(log1pexp))(0.2), softplus_grad(0.2))
    check_jit(fx.vmap(log1pexp), (xs[:3],))


def test_custom_jvp_nested_in_scan_and_float32():
    def f(x):
        carry, _ = fx.scan(lambda c, _: (log1pexp(c) * 0.5, None), x, None, length=3)
        return carry

    check_grads(f, (0.4,), order=2)
    x32 = np.float32(0.4)
    assert fx.grad(log1pexp)(x32).dtype == np.float32
    assert log1pexp(x32).dtype == np.float32


def test_custom_jvp_pytrees_and_nondiff_argnums():
    @functools.partial(fx.custom_jvp, nondiff_argnums=(0,))
    def apply(fn, xy):
        return {"out": fn(xy[0]) * xy[1]}

    @apply.defjvp
    def apply_jvp(fn, primals, tangents):
        ((x, y),), ((x_dot, y_dot),) = primals, tangents
        # the rule ignores fn's derivative on purpose: d/dx is taken as y
        return apply(fn, (x, y)), {"out": y * x_dot + fn(x) * y_dot}

    grads = fx.grad(lambda x, y: apply(fnp.exp, (x, y))["out"], argnums=(0, 1))(1.0, 2.0)
    assert np.allclose(grads, (2.0, np.e))


def test_custom_jvp_keyword_arguments():
    @fx.custom_jvp
    def scale(x, factor=2.0):
        return x * factor

    scale.defjvp(lambda p, t: (scale(*p), t[0] * p[1] + p[0] * t[1]))
    assert fx.grad(lambda x: scale(x, factor=3.0))(1.0) == 3.0


# ---------------------------------------------------------------- custom_vjp

def test_clip_gradient():
    f = lambda x: clip_gradient(-0.75, 0.75, fnp.sin(x) * 3.0)  # noqa: E731
    assert np.allclose(f(0.1), np.sin(0.1) * 3)
    assert np.allclose(fx.grad(f)(0.1), 0.75 * 3 * np.cos(0.1))
    xs = np.array([0.1, -0.2, 2.0])
    expected = np.clip(1.0, -0.75, 0.75) * 3 * np.cos(xs)
    assert np.allclose(fx.vmap(fx.grad(f))(xs), expected)
    assert np.allclose(fx.grad(lambda x: fnp.sum(fx.vmap(f)(x)))(xs), expected)
    assert np.allclose(fx.jit(fx.grad(f))(0.1), 0.75 * 3 * np.cos(0.1))
    assert np.allclose(fx.jit(fx.vmap(fx.grad(f)))(xs), expected)
    check_jit(fx.vmap(f), (xs,))


def test_custom_vjp_gradients_vs_finite_differences():
    check_grads(sin_vjp, (0.6,), order=2, modes=("rev",))
    check_grads(lambda x: fnp.sum(sin_vjp(x) ** 2), (np.array([0.3, 1.0]),), order=2,
                modes=("rev",))
    assert np.allclose(fx.jacrev(sin_vjp)(np.array([0.1, 0.5])), np.diag(np.cos([0.1, 0.5])))


def test_custom_vjp_under_grad_of_vmap_with_batched_residuals():
    f = lambda x, w: fnp.sum(fx.vmap(lambda xi: sin_vjp(xi * w))(x))  # noqa: E731
    x = np.array([0.2, 0.4, 0.9])
    check_grads(f, (x, 1.3), order=1, modes=("rev",))


def test_custom_vjp_nondiff_argnums_and_pytree_residuals():
    @functools.partial(fx.custom_vjp, nondiff_argnums=(1,))
    def power(x, n):
        return x ** n

    def power_fwd(x, n):
        return power(x, n), {"x": x}

    def power_bwd(n, res, ct):
        return (n * res["x"] ** (n - 1) * ct,)

    power.defvjp(power_fwd, power_bwd)
    assert fx.grad(power)(2.0, 3) == 12.0
    check_grads(lambda x: power(x, 3), (1.5,), order=2, modes=("rev",))


def test_custom_vjp_float32():
    x = np.float32(0.3)
    assert fx.grad(sin_vjp)(x).dtype == np.float32
    assert sin_vjp(x).dtype == np.float32


# ---------------------------------------------------------------- errors

def test_jvp_of_custom_vjp_is_a_clear_error():
    with pytest.raises(fx.FxTypeError, match="can't apply forward-mode .* use custom_jvp"):
        fx.jvp(sin_vjp, (0.3,), (1.0,))
    with pytest.raises(fx.FxTypeError, match="forward-mode"):
        fx.jacfwd(sin_vjp)(np.array([0.1, 0.2]))


def test_bwd_with_wrong_structure_or_shape():
    @fx.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (f(x, y), (x, y)), lambda res, ct: (ct * res[1],))
    with pytest.raises(fx.FxTypeError, match="one cotangent per differentiable argument"):
        fx.grad(f)(1.0, 2.0)

    @fx.custom_vjp
    def g(x):
        return fnp.sum(x)

    g.defvjp(lambda x: (g(x), None), lambda res, ct: (fnp.ones(3) * ct,))
    with pytest.raises(fx.FxTypeError, match=r"shape \(3,\), but it must have shape \(2,\)"):
        fx.grad(g)(np.ones(2))


def test_missing_rules():
    @fx.custom_jvp
    def f(x):
        return x

    with pytest.raises(fx.FxTypeError, match=r"no derivative rule; define it with @f.defjvp"):
        f(1.0)

    @fx.custom_vjp
    def g(x):
        return x

    with pytest.raises(fx.FxTypeError, match=r"g.defvjp\(fwd, bwd\)"):
        g(1.0)


def test_jvp_rule_with_wrong_output():
    @fx.custom_jvp
    def f(x):
        return x

    f.defjvp(lambda p, t: (p[0], fnp.ones(3)))
    with pytest.raises(fx.FxTypeError, match="tangent output of the JVP rule of 'f'"):
        fx.grad(f)(1.0)


def test_differentiating_a_closed_over_value_is_an_error():
    def outer(w):
        @fx.custom_jvp
        def f(x):
            return x * w

        f.defjvp(lambda p, t: (f(*p), t[0] * w))
        return f(2.0)

    with pytest.raises(fx.FxTypeError, match="closes over"):
        fx.grad(outer)(3.0)
