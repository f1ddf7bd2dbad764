"""custom_jvp, custom_vjp and checkpoint."""

import functools

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.testing import check_grads


def make_log1pexp():
    @fn.custom_jvp
    def log1pexp(x):
        return fnp.log1p(fnp.exp(x))

    @log1pexp.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return log1pexp(x), t * (1 - 1 / (1 + fnp.exp(x)))

    return log1pexp


def test_custom_jvp_used_by_grad_and_stable():
    f = make_log1pexp()
    g = fn.grad(f)(np.float64(100.0))
    assert np.isfinite(g) and np.isclose(g, 1.0)
    check_grads(f, (np.array([0.5, -1.0, 2.0]),), order=2)


def test_custom_jvp_nondiff_argnums():
    @functools.partial(fn.custom_jvp, nondiff_argnums=(0,))
    def scale(k, x):
        return k * x

    @scale.defjvp
    def _(k, primals, tangents):
        return scale(k, primals[0]), k * tangents[0] * 10.0  # marked: 10x
    assert float(fn.grad(lambda x: scale(2.0, x))(1.0)) == 20.0


def make_clip_grad():
    @fn.custom_vjp
    def clip_grad(x):
        return x

    def fwd(x):
        return x, None

    def bwd(_, g):
        return (fnp.clip(g, -1.0, 1.0),)

    clip_grad.defvjp(fwd, bwd)
    return clip_grad


def test_custom_vjp_bwd_is_used():
    f = make_clip_grad()
    assert float(fn.grad(lambda x: 5.0 * f(x))(2.0)) == 1.0
    assert float(fn.grad(lambda x: -0.5 * f(x))(2.0)) == -0.5


def make_sin_vjp(with_jvp: bool):
    @fn.custom_vjp
    def s(x):
        return fnp.sin(x)

    def fwd(x):
        return s(x), fnp.cos(x)

    def bwd(c, g):
        return (c * g,)

    s.defvjp(fwd, bwd)
    if with_jvp:
        @s.defjvp
        def _(primals, tangents):
            return s(primals[0]), fnp.cos(primals[0]) * tangents[0]
    return s


def test_custom_vjp_forward_mode_needs_jvp_rule():
    s = make_sin_vjp(with_jvp=False)
    x = np.array([0.2, 0.4])
    with pytest.raises(TypeError, match=r"custom_vjp function s needs a forward rule.*defjvp"):
        fn.jvp(s, (x,), (np.ones(2),))
    with pytest.raises(TypeError, match="defjvp"):
        fn.jacfwd(s)(x)
    # reverse mode and hessian (forward-over-reverse differentiates bwd) work without it
    np.testing.assert_allclose(fn.grad(lambda x: fnp.sum(s(x)))(x), np.cos(x))
    np.testing.assert_allclose(fn.hessian(lambda x: fnp.sum(s(x)))(x), np.diag(-np.sin(x)))


def test_custom_vjp_with_jvp_rule_supports_every_mode():
    s = make_sin_vjp(with_jvp=True)
    x = np.array([0.2, 0.4])
    np.testing.assert_allclose(fn.jacfwd(s)(x), np.diag(np.cos(x)))
    np.testing.assert_allclose(fn.jacrev(fn.jacfwd(lambda x: fnp.sum(s(x))))(x),
                               np.diag(-np.sin(x)))
    check_grads(lambda x: fnp.sum(s(x) ** 2), (x,), order=2)


def test_checkpoint_matches_plain_and_keeps_only_inputs():
    def block(x):
        return fnp.tanh(fnp.sin(x) * fnp.exp(x))

    x = np.array([0.1, -0.3, 0.7])
    ck = fn.checkpoint(block)
    np.testing.assert_allclose(fn.grad(lambda x: fnp.sum(ck(x)))(x),
                               fn.grad(lambda x: fnp.sum(block(x)))(x))
    check_grads(lambda x: fnp.sum(ck(x)), (x,), order=2)
    # the linearized graph of the checkpointed function holds one equation
    from funcnet.transforms import ad

    _, graph = ad.linearize_flat(lambda x: [fnp.sum(ck(x))], [x])
    names = [e.prim.name for e in graph.eqns]
    assert names.count("checkpoint_lin") == 1 and "tanh" not in names
    assert fn.remat is fn.checkpoint


def test_custom_rules_survive_jit_in_every_order():
    @fn.custom_jvp
    def f(x):
        return fnp.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), 2.0 * t[0]))
    for g in (fn.grad(f), fn.jit(fn.grad(f)), fn.grad(fn.jit(f)), fn.jit(fn.grad(fn.jit(f)))):
        assert float(g(0.0)) == 2.0
    c = make_clip_grad()
    for g in (fn.grad(lambda x: 5.0 * c(x)), fn.grad(fn.jit(lambda x: 5.0 * c(x)))):
        assert float(g(2.0)) == 1.0
    graph = fn.jit(lambda x: f(x) * 2.0).lower(1.0)
    assert [e.prim.name for e in graph.eqns][0] == "custom_call"
    np.testing.assert_allclose(fn.vmap(fn.jit(f))(np.array([0.0, 1.0])), np.sin([0.0, 1.0]))


def _compositions_with_vmap(f, in_axes=0):
    """Gradients of ``sum(vmap(f)(x))`` in every order of grad, vmap and jit."""
    loss = lambda g: lambda x: fnp.sum(g(x))  # noqa: E731
    v = lambda g: fn.vmap(g, in_axes=in_axes)  # noqa: E731
    return {
        "grad(vmap(f))": fn.grad(loss(v(f))),
        "grad(vmap(jit(f)))": fn.grad(loss(v(fn.jit(f)))),
        "grad(jit(vmap(f)))": fn.grad(loss(fn.jit(v(f)))),
        "jit(grad(vmap(f)))": fn.jit(fn.grad(loss(v(f)))),
        "vmap(grad(f))": v(fn.grad(loss(f))),
    }


def test_custom_rules_survive_vmap_in_every_order():
    # both rules differ from the function's own derivative, so inlining would show
    @fn.custom_jvp
    def f(x):
        return fnp.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), 2.0 * t[0]))
    c = make_clip_grad()
    x = np.array([[0.5, -2.0], [3.0, 0.1], [-0.2, 0.3]])
    for name, g in _compositions_with_vmap(f).items():
        np.testing.assert_allclose(g(x), np.full(x.shape, 2.0), err_msg=name)
    for name, g in _compositions_with_vmap(lambda r: 5.0 * c(r)).items():
        np.testing.assert_allclose(g(x), np.ones(x.shape), err_msg=name)
    # forward mode through vmap uses the rule too
    tangent = fn.jvp(fn.vmap(f), (x,), (np.ones_like(x),))[1]
    np.testing.assert_allclose(tangent, 2.0 * np.ones_like(x))
    s = make_sin_vjp(with_jvp=True)
    np.testing.assert_allclose(fn.jacfwd(lambda x: fnp.sum(fn.vmap(s)(x)))(x[0]), np.cos(x[0]))


def test_custom_vjp_under_vmap_with_unbatched_and_nondiff_arguments():
    @functools.partial(fn.custom_vjp, nondiff_argnums=(2,))
    def scaled(x, w, k):
        return x * w * k

    def fwd(x, w, k):
        return scaled(x, w, k), (x, w)

    def bwd(k, res, g):
        x, w = res
        return (g * w * k * 10.0, g * x * k)  # the x-cotangent is marked: 10x

    scaled.defvjp(fwd, bwd)
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    w = np.array([0.5, -1.0])

    def loss(x, w):
        return fnp.sum(fn.vmap(lambda r: scaled(r, w, 3.0))(x))

    gx, gw = fn.grad(loss, argnums=(0, 1))(x, w)
    np.testing.assert_allclose(gx, 10.0 * 3.0 * np.broadcast_to(w, x.shape))
    np.testing.assert_allclose(gw, 3.0 * x.sum(axis=0))  # w is shared: summed over the batch
    # batched along another axis, and through jit
    by_column = fn.jit(fn.vmap(lambda r: scaled(r, w, 3.0), in_axes=1))
    gx_t = fn.grad(lambda xt: fnp.sum(by_column(xt)))(x.T)
    np.testing.assert_allclose(gx_t, gx.T)
    check_grads(lambda w: loss(x, w), (w,), order=1, modes=("rev",))
