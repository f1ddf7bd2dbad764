"""debug_nans and debug.print."""

import subprocess
import sys

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax


def forward_nan(x):
    y = fnp.log(x - 2.0)  # FORWARD-NAN-LINE
    return fnp.sum(y)


def backward_inf(x):
    y = fnp.sqrt(x)  # BACKWARD-INF-LINE
    return fnp.sum(y)


@pytest.mark.parametrize("wrap", ["eager", "jit", "vmap"])
def test_forward_nan_names_primitive_shapes_and_line(wrap):
    x = np.array([1.0, 3.0])
    f = {"eager": forward_nan, "jit": fn.jit(forward_nan),
         "vmap": lambda x: fn.vmap(forward_nan)(x[None])}[wrap]
    with fn.debug_nans(), pytest.raises(FloatingPointError) as info:
        f(x)
    msg = str(info.value)
    assert "'log' produced nan" in msg and "float64[" in msg
    assert "FORWARD-NAN-LINE" in msg and "backward pass" not in msg


@pytest.mark.parametrize("wrap", ["grad", "jit(grad)", "grad(jit)"])
def test_backward_inf_blames_the_forward_operation(wrap):
    x = np.array([1.0, 0.0])
    g = {"grad": fn.grad(backward_inf), "jit(grad)": fn.jit(fn.grad(backward_inf)),
         "grad(jit)": fn.grad(fn.jit(backward_inf))}[wrap]
    with fn.debug_nans(), pytest.raises(FloatingPointError) as info:
        g(x)
    msg = str(info.value)
    assert "produced inf" in msg and "BACKWARD-INF-LINE" in msg
    assert "backward pass" in msg


def test_nan_inside_scan_body_is_found():
    def f(x):
        return lax.scan(lambda c, v: (c + fnp.log(v), None), 0.0, x)[0]

    with fn.debug_nans(), pytest.raises(FloatingPointError, match="'log' produced nan"):
        f(np.array([1.0, -1.0]))


def test_propagated_nans_are_not_blamed_and_clean_runs_pass():
    with fn.debug_nans():
        assert float(fn.grad(lambda x: fnp.sqrt(x))(4.0)) == 0.25
        out = fnp.add(np.array([np.nan]), 1.0)  # the input was already NaN: not the origin
        assert np.isnan(out).all()
    # off again: no checking, NumPy's own behaviour
    with np.errstate(all="ignore"):
        assert np.isnan(fnp.log(np.array([-1.0]))).all()


def test_environment_variable_switches_it_on():
    code = ("import numpy as np, funcnet.numpy as fnp\n"
            "try:\n    fnp.log(np.array([-1.0]))\nexcept FloatingPointError:\n    print('CAUGHT')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"FUNCNET_DEBUG_NANS": "1", "PATH": "/usr/bin:/bin"}, cwd=".")
    assert "CAUGHT" in out.stdout, out.stderr


def test_debug_print_under_every_transform(capsys):
    def f(x):
        fn.debug.print("x={x}", x=x)
        return fnp.sum(x * x)

    x = np.array([1.0, 2.0])
    f(x)
    fn.jit(f)(x)
    fn.jit(f)(x)  # printed on every call, not only while tracing
    fn.grad(f)(x)
    fn.vmap(f)(np.stack([x, x]))
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == ["x=[1. 2.]"] * 4
    assert out[4].startswith("x=[[1. 2.]")
    graph = fn.jit(f).lower(x)
    assert any(e.prim.name == "debug_print" for e in graph.eqns)  # kept by dead-code elimination
