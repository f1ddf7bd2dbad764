"""A CPU stand-in for CuPy, to test the cupy backend's logic on machines without a GPU.

``module`` and ``extras`` play ``cupy`` and ``cupyx``.  Arrays are
``StandinArray`` objects wrapping NumPy arrays, strict where CuPy is strict,
so that the backend's mistakes show up on a CPU:

- implicit conversion to NumPy raises ``TypeError`` (``np.asarray(x)``), as
  CuPy's ``__array__`` does;
- module functions, operators and ufuncs reject NumPy arrays (CuPy raises
  ``TypeError: Unsupported type``); only ``asarray``/``array`` take them;
- reductions and integer indexing give 0-d arrays, never scalars;
- ``argsort``/``sort`` are stable (CuPy's only kind);
- ``cupyx.scatter_add``/``scatter_max``/``scatter_min`` accept only the
  dtypes CuPy's atomics support;
- ``ElementwiseKernel`` checks argument dtypes as CuPy does, and compiles its
  C body with the host C++ compiler (so generated CUDA C is compiled and run).

What it cannot show: CuPy's own numerics, its type promotion of scalars,
device memory, and anything CUDA-only.  The GPU run of
``tests/backends/test_cupy.py`` checks those.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import types

import numpy as np

from funcnet.backends.cupy_kernels import C_TYPES

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
             "construct a NumPy array explicitly.")


def compiler() -> str | None:
    """The host C++ compiler, or None."""
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")


def _reject(x):
    raise TypeError(f"Unsupported type {type(x)} (the CuPy stand-in, like CuPy, takes no "
                    "NumPy arrays here)")


def _unwrap(x):
    t = type(x)
    if t is StandinArray:
        return x._a
    if isinstance(x, np.ndarray):
        _reject(x)
    if t is tuple or t is list:
        return t(_unwrap(v) for v in x)
    if t is dict:
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return StandinArray(x)
    if isinstance(x, np.generic):
        return StandinArray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _function(fn):
    def call(*args, **kwargs):
        out = kwargs.get("out")
        result = fn(*_unwrap(args), **_unwrap(kwargs))
        if out is not None:
            return out
        return _wrap(result)

    call.__name__ = getattr(fn, "__name__", "function")
    return call


def _defers(other) -> bool:
    """CuPy's rule: an operand of higher ``__array_priority__`` (a funcnet tracer)
    handles the operator."""
    return (type(other) is not StandinArray
            and getattr(other, "__array_priority__", 0) > StandinArray.__array_priority__)


def _binary(ufunc, reflected=False):
    def op(self, other):
        if _defers(other):
            return NotImplemented
        a, b = self._a, _unwrap(other)
        return _wrap(ufunc(b, a) if reflected else ufunc(a, b))

    return op


def _inplace(ufunc):
    def op(self, other):
        ufunc(self._a, _unwrap(other), out=self._a)
        return self

    return op


class StandinArray:
    """A NumPy array dressed as a ``cupy.ndarray`` (strict about host conversion)."""

    __slots__ = ("_a",)
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, a: np.ndarray):
        self._a = a

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: StandinArray(self._a.T))

    @property
    def real(self):
        return _wrap(self._a.real)

    @real.setter
    def real(self, value):
        self._a.real = _unwrap(value)

    @property
    def imag(self):
        return _wrap(self._a.imag)

    @imag.setter
    def imag(self, value):
        self._a.imag = _unwrap(value)

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ / __array_struct__: no host view
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            return _function(attr)
        return _wrap(attr)

    def get(self):
        return self._a.copy()

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (StandinArray(np.asarray(self._a[i])) for i in range(len(self._a)))

    def __bool__(self):
        return bool(self._a)

    def __int__(self):
        return int(self._a)

    def __float__(self):
        return float(self._a)

    def __complex__(self):
        return complex(self._a)

    def __index__(self):
        return self._a.__index__()

    def __repr__(self):
        return f"standin.array({self._a!r})"

    def __neg__(self):
        return _wrap(-self._a)

    def __pos__(self):
        return _wrap(+self._a)

    def __abs__(self):
        return _wrap(abs(self._a))

    def __invert__(self):
        return _wrap(~self._a)


for _name, _uf in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                   ("truediv", np.true_divide), ("floordiv", np.floor_divide),
                   ("mod", np.remainder), ("pow", np.power), ("matmul", np.matmul),
                   ("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor),
                   ("lshift", np.left_shift), ("rshift", np.right_shift)]:
    setattr(StandinArray, f"__{_name}__", _binary(_uf))
    setattr(StandinArray, f"__r{_name}__", _binary(_uf, reflected=True))
    setattr(StandinArray, f"__i{_name}__", _inplace(_uf))
for _name, _uf in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less),
                   ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal)]:
    setattr(StandinArray, f"__{_name}__", _binary(_uf))


class _Namespace(types.SimpleNamespace):
    """A module whose functions are NumPy's (``source``), wrapped, plus overrides."""

    def __init__(self, source, **overrides):
        super().__init__(**overrides)
        self._source = source

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._source, name)
        if isinstance(attr, types.ModuleType):
            value = _Namespace(attr)
        elif isinstance(attr, (type, np.dtype)) or not callable(attr):
            value = attr
        else:
            value = _function(attr)
        setattr(self, name, value)
        return value


def _asarray(x, dtype=None, order=None):
    if type(x) is StandinArray:
        return x if dtype is None or x.dtype == np.dtype(dtype) else x.astype(dtype)
    if isinstance(x, (list, tuple)) and any(type(v) is StandinArray for v in x):
        raise TypeError("the CuPy stand-in does not build arrays from lists of arrays")
    return StandinArray(np.array(x, dtype=dtype, copy=True))


def _array(x, dtype=None, copy=True, **kwargs):
    if type(x) is StandinArray:
        return x.astype(dtype or x.dtype, copy=copy)
    return _asarray(x, dtype)


def _stable(fn):
    def sort(a, axis=-1, kind=None):
        return _wrap(fn(_unwrap(a), axis=axis, kind="stable"))

    return sort


def _as_strided(x, shape=None, strides=None):
    return StandinArray(np.lib.stride_tricks.as_strided(_unwrap(x), shape=shape,
                                                        strides=strides))


# ---------------------------------------------------------------------------
# ElementwiseKernel, compiled by the host C++ compiler

_LIBS: dict[str, ctypes.CDLL] = {}
_DIR: list[str] = []
_PARAM = re.compile(r"^\s*(?P<type>[\w]+)\s+(?P<name>[A-Za-z_]\w*)\s*$")


def _parse_params(text: str):
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _PARAM.match(part)
        if not m:
            raise ValueError(f"stand-in ElementwiseKernel: cannot parse parameter {part!r}")
        out.append((np.dtype(m.group("type")), m.group("name")))
    return out


def _compile(source: str) -> ctypes.CDLL:
    key = hashlib.sha1(source.encode()).hexdigest()
    lib = _LIBS.get(key)
    if lib is not None:
        return lib
    if not _DIR:
        _DIR.append(tempfile.mkdtemp(prefix="funcnet-cupy-standin-"))
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("the CuPy stand-in needs a C++ compiler for ElementwiseKernel")
    src = os.path.join(_DIR[0], f"k{key}.cpp")
    so = os.path.join(_DIR[0], f"k{key}.so")
    with open(src, "w") as f:
        f.write(source)
    proc = subprocess.run([cxx, "-std=c++17", "-O0", "-shared", "-fPIC", "-w", "-o", so, src],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the generated kernel does not compile:\n{source}\n{proc.stderr}")
    lib = _LIBS[key] = ctypes.CDLL(so)
    return lib


class ElementwiseKernel:
    """``cupy.ElementwiseKernel`` for fixed-dtype parameters, run on the CPU."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, **kwargs):
        if not re.match(r"^[A-Za-z_]\w*$", name):
            raise ValueError(f'Invalid kernel name: "{name}"')
        self.ins = _parse_params(in_params)
        self.outs = _parse_params(out_params)
        names = [n for _, n in self.ins + self.outs]
        if "i" in names:
            raise ValueError("Can not use 'i' as a parameter name")
        for dt, _ in self.ins + self.outs:
            if dt not in C_TYPES:
                raise TypeError(f"the stand-in has no C type for {dt}")
        self.return_tuple = return_tuple
        self.no_return = no_return
        lines = ["#include <cmath>", "#include <cstdint>", "using namespace std;", preamble,
                 'extern "C" void funcnet_kernel(long long n, void** p) {',
                 "  for (long long _i = 0; _i < n; ++_i) {"]
        for k, (dt, nm) in enumerate(self.ins):
            c = C_TYPES[dt]
            lines.append(f"    const {c} &{nm} = ((const {c}*)p[{k}])[_i];")
        for k, (dt, nm) in enumerate(self.outs, len(self.ins)):
            c = C_TYPES[dt]
            lines.append(f"    {c} &{nm} = (({c}*)p[{k}])[_i];")
        lines += ["    " + line for line in operation.splitlines()]
        lines += ["  }", "}"]
        self.source = "\n".join(lines) + "\n"

    def __call__(self, *args, **kwargs):
        nin, nout = len(self.ins), len(self.outs)
        if len(args) not in (nin, nin + nout):
            raise TypeError(f"Wrong number of arguments: {len(args)}")
        given_outs = list(args[nin:])
        shapes = []
        for (dt, nm), a in zip(self.ins + self.outs, args):
            if isinstance(a, np.ndarray):
                _reject(a)
            if type(a) is StandinArray:
                if a.dtype != dt:
                    raise TypeError(f"Type is mismatched. {nm} {a.dtype.type} {dt.type}")
                shapes.append(a.shape)
        if not shapes:
            raise ValueError("Loop size is undecided.")
        shape = np.broadcast_shapes(*shapes)
        for o in given_outs:
            if type(o) is not StandinArray:
                raise TypeError("Output arguments type must be cupy.ndarray")
            if o.shape != shape:
                raise ValueError("Out shape is mismatched")
        bufs = []
        for (dt, _), a in zip(self.ins, args):
            v = a._a if type(a) is StandinArray else np.asarray(dt.type(a))
            bufs.append(np.ascontiguousarray(np.broadcast_to(v, shape)))
        outs = [np.empty(shape, dt) for dt, _ in self.outs]
        n = int(np.prod(shape, dtype=np.int64))
        if n:
            lib = _compile(self.source)
            ptrs = (ctypes.c_void_p * (nin + nout))(*[b.ctypes.data for b in bufs + outs])
            lib.funcnet_kernel(ctypes.c_longlong(n), ptrs)
        if given_outs:
            for o, b in zip(given_outs, outs):
                o._a[...] = b
            results = given_outs
        else:
            results = [StandinArray(b) for b in outs]
        if self.no_return:
            return None
        if self.return_tuple or nout > 1:
            return tuple(results)
        return results[0]


# ---------------------------------------------------------------------------
# cupyx: scatter with CuPy's dtype limits

_ADD_DTYPES = {np.dtype(t) for t in "iILQefd"}
_MINMAX_DTYPES = {np.dtype(t) for t in "iILQfd"}


def _scatter(ufunc, allowed):
    def scatter(a, slices, value):
        if type(a) is not StandinArray:
            raise TypeError("scatter target must be a cupy.ndarray")
        if a.dtype not in allowed:
            raise TypeError(f"CuPy's atomics do not support {a.dtype} (stand-in check)")
        ufunc.at(a._a, _unwrap(slices), _unwrap(value))

    return scatter


class _Device:
    def __init__(self, *args):
        pass

    def synchronize(self):
        pass


module = _Namespace(
    np,
    ndarray=StandinArray,
    asarray=_asarray,
    array=_array,
    asnumpy=lambda x: x.get() if type(x) is StandinArray else np.asarray(x),
    argsort=_stable(np.argsort),
    sort=_stable(np.sort),
    ElementwiseKernel=ElementwiseKernel,
    lib=types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided)),
    cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                               Device=_Device),
    __version__="stand-in",
)
extras = types.SimpleNamespace(scatter_add=_scatter(np.add, _ADD_DTYPES),
                               scatter_max=_scatter(np.maximum, _MINMAX_DTYPES),
                               scatter_min=_scatter(np.minimum, _MINMAX_DTYPES))
