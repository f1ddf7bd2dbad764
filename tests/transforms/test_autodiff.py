"""Autodiff transforms: correctness, pytrees, compositions to any depth, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.testing import check_grads
from funcnet.testing.strategies import arrays, shapes


def f_scalar(x):
    return fnp.sum(fnp.sin(x) * fnp.exp(0.3 * x) + x ** 3)


def df_scalar(x):
    return np.cos(x) * np.exp(0.3 * x) + 0.3 * np.sin(x) * np.exp(0.3 * x) + 3 * x ** 2


X = np.array([0.3, -1.2, 2.0])


def test_grad_matches_analytic():
    np.testing.assert_allclose(fn.grad(f_scalar)(X), df_scalar(X), rtol=1e-12)


def test_grad_keeps_dtype_and_returns_arrays():
    g = fn.grad(f_scalar)(X.astype(np.float32))
    assert isinstance(g, np.ndarray) and g.dtype == np.float32
    g0 = fn.grad(lambda x: x * x)(3.0)
    assert isinstance(g0, np.ndarray) and g0.dtype == np.float32 and float(g0) == 6.0


def test_value_and_grad_pytrees_argnums_has_aux():
    params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": (np.array([0.5, -0.5]), None)}
    x = np.array([1.0, -1.0])

    def loss(p, x):
        y = p["w"] @ x + p["b"][0]
        return fnp.sum(y ** 2), {"y": y}

    (val, aux), g = fn.value_and_grad(loss, has_aux=True)(params, x)
    y = params["w"] @ x + params["b"][0]
    assert np.isclose(val, np.sum(y ** 2))
    np.testing.assert_allclose(aux["y"], y)
    np.testing.assert_allclose(g["w"], 2 * np.outer(y, x))
    np.testing.assert_allclose(g["b"][0], 2 * y)
    assert g["b"][1] is None
    gw, gx = fn.grad(lambda p, x: loss(p, x)[0], argnums=(0, 1))(params, x)
    np.testing.assert_allclose(gx, 2 * params["w"].T @ y)
    np.testing.assert_allclose(gw["w"], g["w"])


def test_vjp_jvp_linearize_agree():
    def f(x, y):
        return {"a": fnp.sin(x) * y, "b": fnp.sum(x * y)}

    x, y = np.array([0.1, 0.2]), np.array([2.0, 3.0])
    tx, ty = np.array([1.0, -1.0]), np.array([0.5, 0.25])
    out, tout = fn.jvp(f, (x, y), (tx, ty))
    out2, f_jvp = fn.linearize(f, x, y)
    lin = f_jvp(tx, ty)
    np.testing.assert_allclose(tout["a"], lin["a"])
    np.testing.assert_allclose(tout["b"], lin["b"])
    _, f_vjp = fn.vjp(f, x, y)
    u = {"a": np.array([0.7, -0.3]), "b": np.array(2.0)}
    cx, cy = f_vjp(u)
    lhs = np.sum(cx * tx) + np.sum(cy * ty)
    rhs = np.sum(u["a"] * tout["a"]) + np.sum(u["b"] * tout["b"])
    assert np.isclose(lhs, rhs)


def test_jacobians_and_hessian():
    def f(x):
        return fnp.stack([x[0] * x[1], fnp.sin(x[2]), x[0] ** 2])

    x = np.array([1.0, 2.0, 0.5])
    expected = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, np.cos(0.5)], [2.0, 0.0, 0.0]])
    np.testing.assert_allclose(fn.jacfwd(f)(x), expected)
    np.testing.assert_allclose(fn.jacrev(f)(x), expected)
    h = fn.hessian(lambda x: fnp.sum(x ** 3) + x[0] * x[1])(x)
    np.testing.assert_allclose(h, np.diag(6 * x) + np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))


def test_jacobian_pytree_structure():
    def f(p):
        return {"out": p["a"] * 2.0, "s": fnp.sum(p["b"])}

    p = {"a": np.ones(2), "b": np.ones((2, 3))}
    for jac in (fn.jacfwd, fn.jacrev):
        j = jac(f)(p)
        assert j["out"]["a"].shape == (2, 2) and j["out"]["b"].shape == (2, 2, 3)
        assert j["s"]["a"].shape == (2,) and j["s"]["b"].shape == (2, 3)
        np.testing.assert_allclose(j["out"]["a"], 2 * np.eye(2))
        np.testing.assert_allclose(j["s"]["b"], np.ones((2, 3)))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_higher_order_grad_of_sin(order):
    f = fnp.sin
    for _ in range(order):
        f = fn.grad(f)
    expected = [np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x), np.sin][order - 1]
    assert np.isclose(f(np.float64(0.7)), expected(0.7))


COMPOSITIONS = {
    "jvp(grad)": lambda f: lambda x: fn.jvp(fn.grad(f), (x,), (np.ones_like(x),))[1],
    "grad(jvp)": lambda f: fn.grad(lambda x: fn.jvp(f, (x,), (np.ones_like(x),))[1]),
    "jacfwd(grad)": lambda f: lambda x: fn.jacfwd(fn.grad(f))(x) @ np.ones_like(x),
    "jacrev(grad)": lambda f: lambda x: fn.jacrev(fn.grad(f))(x) @ np.ones_like(x),
    "vjp(grad)": lambda f: lambda x: fn.vjp(fn.grad(f), x)[1](np.ones_like(x))[0],
    "linearize(grad)": lambda f: lambda x: fn.linearize(fn.grad(f), x)[1](np.ones_like(x)),
    "hessian": lambda f: lambda x: fn.hessian(f)(x) @ np.ones_like(x),
}


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_second_order_compositions_agree(name):
    """Every route to the Hessian-vector product H @ 1 gives the same answer."""
    x = np.array([0.3, -0.8, 1.1])
    expected = fn.hessian(f_scalar)(x) @ np.ones(3)
    got = COMPOSITIONS[name](f_scalar)(x)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_third_order_mixed_modes():
    f = lambda x: fnp.sin(x) * fnp.exp(x)  # noqa: E731
    d3 = fn.grad(fn.grad(fn.grad(f)))
    mixed = lambda x: fn.jvp(fn.grad(lambda y: fn.jvp(f, (y,), (1.0,))[1]),  # noqa: E731
                             (x,), (1.0,))[1]
    x = np.float64(0.4)
    exact = np.exp(x) * (2 * np.cos(x) - 2 * np.sin(x))
    assert np.isclose(d3(x), exact)
    assert np.isclose(mixed(x), exact)


def test_perturbation_confusion_is_avoided():
    # d/dx [ x * d/dy (x + y) ] = d/dx [x * 1] = 1, not 2
    f = lambda x: x * fn.grad(lambda y: x + y)(1.0)  # noqa: E731
    assert float(fn.grad(f)(np.float64(3.0))) == 1.0


def test_python_control_flow_under_grad():
    f = lambda x: x * x if x > 0 else -x  # noqa: E731
    assert float(fn.grad(f)(3.0)) == 6.0
    assert float(fn.grad(f)(-3.0)) == -1.0


def test_stop_gradient():
    g = fn.grad(lambda x: fnp.sum(x * fn.stop_gradient(x)))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [1.0, 2.0])


@settings(max_examples=20, deadline=None)
@given(arrays(shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), np.float64,
              elements=st.floats(-2, 2)))
def test_property_grad_composite_matches_finite_differences(x):
    def f(x):
        return fnp.tanh(x) * fnp.cos(x) + fnp.log1p(x * x)

    check_grads(f, (x,), order=2, modes=("fwd", "rev"))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4))
def test_property_mlp_gradients(batch, din, dout):
    rng = np.random.default_rng(batch * 100 + din * 10 + dout)
    p = {"w": rng.standard_normal((din, dout)), "b": rng.standard_normal(dout)}
    x = rng.standard_normal((batch, din))

    def loss(p, x):
        return fnp.mean(fnp.tanh(x @ p["w"] + p["b"]) ** 2)

    check_grads(loss, (p, x), order=2, modes=("fwd", "rev"))


# --- errors ------------------------------------------------------------------


def test_grad_of_non_scalar_names_shape_and_alternatives():
    with pytest.raises(TypeError, match=r"shape \(3,\).*jacrev or vjp.*\.sum\(\)"):
        fn.grad(lambda x: x * 2)(np.ones(3))


def test_grad_of_integer_input_names_path():
    with pytest.raises(TypeError, match=r"argument 0\['w'\] has dtype int64"):
        fn.grad(lambda p: fnp.sum(p["w"] * 1.0))({"w": np.arange(3)})
    with pytest.raises(TypeError, match="argument 1 has dtype bool"):
        fn.grad(lambda x, m: fnp.sum(x), argnums=1)(np.ones(2), np.ones(2, bool))


def test_argnums_out_of_range():
    with pytest.raises(ValueError, match="argnums"):
        fn.grad(lambda x: x, argnums=3)(1.0)


def test_concretization_error_names_fix_and_line():
    def f(x):
        if x > 0:  # the line the message must point at
            return x
        return -x

    with pytest.raises(fn.errors.ConcretizationError) as info:
        fn.make_graph(f)(1.0)
    msg = str(info.value)
    assert "lax.cond" in msg and "static_argnums" in msg and "test_autodiff.py" in msg
    assert "if x > 0" in msg


def test_escaped_tracer_raises_unexpected_tracer_error():
    leaked = []

    def f(x):
        leaked.append(x)
        return fnp.sum(x)

    fn.grad(f)(np.ones(2))
    with pytest.raises(fn.errors.UnexpectedTracerError, match="leaked"):
        fnp.sin(leaked[0])
    with pytest.raises(fn.errors.UnexpectedTracerError):
        leaked[0] + 1.0


def test_shape_error_names_primitive_shapes_and_user_line():
    def model(x):
        return fnp.add(x, fnp.ones(3))

    for run in (lambda: model(np.ones(2)), lambda: fn.grad(lambda x: fnp.sum(model(x)))(np.ones(2)),
                lambda: fn.make_graph(model)(np.ones(2))):
        with pytest.raises(ValueError) as info:
            run()
        msg = str(info.value)
        assert "add of float64[2], float32[3]" in msg
        assert "cannot be broadcast" in msg and "return fnp.add(x, fnp.ones(3))" in msg


def test_vjp_cotangent_shape_checked():
    _, f_vjp = fn.vjp(lambda x: x * 2, np.ones(3))
    with pytest.raises(ValueError, match=r"cotangent leaf 0 has shape \(2,\).*\(3,\)"):
        f_vjp(np.ones(2))


def test_aux_outputs_are_values_not_tracers():
    f = lambda w: (fnp.sum(w * 2), {"y": w * 3})  # noqa: E731
    (v, aux), g = fn.value_and_grad(f, has_aux=True)(np.ones(3))
    assert type(aux["y"]) is np.ndarray and np.allclose(aux["y"], 3.0)
    (v2, aux2), g2 = fn.jit(lambda w: fn.value_and_grad(f, has_aux=True)(w))(np.ones(3))
    assert np.allclose(aux2["y"], 3.0) and np.allclose(g2, 2.0)
    out, f_vjp, aux3 = fn.vjp(f, np.ones(3), has_aux=True)
    assert type(aux3["y"]) is np.ndarray
