"""Checkpoints: save and load pytrees of arrays safely, without pickle.

``save(path, tree)`` writes one ``.npz`` file: every array leaf is an ``.npy``
entry, and a JSON description of the tree (containers, dict keys, Python
scalars, strings, each array's shape and dtype, the format version) is the
entry ``__funcnet__``.  The file is written to a temporary file in the same
directory, flushed to disk and then renamed over ``path``, so a crash or a
full disk never leaves a half-written checkpoint behind: ``path`` holds
either the old checkpoint or the new one.  Nothing is ever pickled, so
loading a file cannot run code, and ``numpy.load(path, allow_pickle=False)``
reads it too.

``load(path)`` rebuilds the tree from plain containers (``dict``, ``list``,
``tuple``, ``None``; namedtuples such as optimizer states and other
registered classes come back as plain tuples).  ``load(path, like=template)``
checks the file against a template pytree -- same leaves at the same key
paths, same shapes and dtypes -- and rebuilds the template's own container
types (namedtuples, dataclasses, ...).  Arrays come back on the active
backend (``fn.device_put``).

A file that is truncated, corrupt, not a funcnet checkpoint, written by an
incompatible version or not matching ``like`` raises :class:`CheckpointError`
(a ``ValueError``) saying what is wrong and where.

>>> import os, tempfile
>>> import numpy as np
>>> from funcnet import checkpoint_io
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
>>> state = {"params": {"w": np.ones((2, 3), np.float32)}, "epoch": 3}
>>> _ = checkpoint_io.save(path, state)
>>> back = checkpoint_io.load(path, like=state)
>>> back["epoch"], back["params"]["w"].shape
(3, (2, 3))
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from funcnet.core import pytree
from funcnet.errors import FuncnetError

__all__ = ["save", "load", "CheckpointError", "FORMAT_VERSION"]

#: Version of the checkpoint file layout; files of another version are refused.
FORMAT_VERSION = 1
FORMAT = "funcnet.checkpoint"

#: Name of the JSON entry inside the ``.npz`` (shared with ``funcnet.export``).
META_ENTRY = "__funcnet__"
_FORMAT_NAMES = {"funcnet.checkpoint": ("a funcnet checkpoint", "fn.checkpoint_io.load"),
                 "funcnet.export": ("an exported funcnet model", "fn.export.load")}
# dtype kinds an .npy entry stores without pickle and funcnet can use
_STORABLE_KINDS = "biufcSU"


class CheckpointError(FuncnetError, ValueError):
    """A checkpoint (or exported model) file that cannot be read as asked.

    The message names the file and what is wrong: truncated or corrupt data,
    not a funcnet file, an incompatible format version, or (for ``like=``)
    the key path and the expected and found structure, shape or dtype.

    >>> issubclass(CheckpointError, ValueError)
    True
    """


def _funcnet_version() -> str:
    import funcnet

    return getattr(funcnet, "__version__", "unknown")


# ===========================================================================
# Tagged JSON values (dict keys, scalars; extended by funcnet.export for graphs)


class UnencodableValue(TypeError):
    """A value that the tagged JSON encoding cannot represent (carries the value)."""

    def __init__(self, value):
        super().__init__(f"cannot encode a value of type {type(value).__name__}: {value!r:.80}")
        self.value = value


_PY_TYPES = {"bool": bool, "int": int, "float": float, "complex": complex, "str": str}


def dtype_name(dt) -> str:
    """A string that ``np.dtype`` turns back into ``dt`` (``'float32'``, ``'<U5'``)."""
    dt = np.dtype(dt)
    try:
        if np.dtype(dt.name) == dt:
            return dt.name
    except TypeError:
        pass
    return dt.str


def encode_value(v, extra: Callable | None = None):
    """Encode a parameter-like value as JSON: tuples, dtypes, numpy scalars, non-finite
    floats and non-string dict keys get ``{"$tag": ...}`` objects.

    ``extra(v)`` may encode further types (return ``NotImplemented`` to decline).

    >>> encode_value((1, 2.5, None, "a"))
    {'$tuple': [1, 2.5, None, 'a']}
    >>> decode_value(encode_value({0: float("inf")}))
    {0: inf}
    """
    t = type(v)
    if v is None or t is bool or t is str or t is int:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$float": repr(v)}
    if t is tuple:
        return {"$tuple": [encode_value(x, extra) for x in v]}
    if t is list:
        return [encode_value(x, extra) for x in v]
    if t is dict:
        return {"$dict": [[encode_value(k, extra), encode_value(x, extra)] for k, x in v.items()]}
    if t is frozenset:
        items = [encode_value(x, extra) for x in v]
        return {"$frozenset": sorted(items, key=lambda j: json.dumps(j, sort_keys=True))}
    if t is complex:
        return {"$complex": [encode_value(v.real), encode_value(v.imag)]}
    if t is slice:
        return {"$slice": [encode_value(v.start), encode_value(v.stop), encode_value(v.step)]}
    if isinstance(v, np.dtype):
        return {"$dtype": dtype_name(v)}
    if isinstance(v, np.generic):
        return {"$scalar": [dtype_name(v.dtype), encode_value(v.item())]}
    if isinstance(v, type):
        if v in (bool, int, float, complex, str):
            return {"$type": v.__name__}
        if issubclass(v, np.generic):
            return {"$nptype": dtype_name(np.dtype(v))}
    if extra is not None:
        out = extra(v)
        if out is not NotImplemented:
            return out
    raise UnencodableValue(v)


def decode_value(j, extra: Callable | None = None):
    """Invert :func:`encode_value` (``extra(tag, payload)`` decodes further tags).

    >>> decode_value({"$tuple": [1, {"$dtype": "float16"}]})
    (1, dtype('float16'))
    """
    if type(j) is list:
        return [decode_value(x, extra) for x in j]
    if type(j) is not dict:
        return j
    if len(j) != 1:
        raise ValueError(f"malformed tagged value {j!r:.80}")
    (tag, p), = j.items()
    if tag == "$tuple":
        return tuple(decode_value(x, extra) for x in p)
    if tag == "$dict":
        return {decode_value(k, extra): decode_value(x, extra) for k, x in p}
    if tag == "$frozenset":
        return frozenset(decode_value(x, extra) for x in p)
    if tag == "$float":
        return float(p)
    if tag == "$complex":
        return complex(decode_value(p[0]), decode_value(p[1]))
    if tag == "$slice":
        return slice(*(decode_value(x) for x in p))
    if tag == "$dtype":
        return np.dtype(p)
    if tag == "$scalar":
        return np.dtype(p[0]).type(decode_value(p[1]))
    if tag == "$type":
        return _PY_TYPES[p]
    if tag == "$nptype":
        return np.dtype(p).type
    if extra is not None:
        return extra(tag, p)
    raise ValueError(f"unknown tag {tag!r}")


# ===========================================================================
# Tree descriptions


def _one_level(x):
    """``(type, [(key, child), ...])`` for a container, ``None`` for a leaf."""
    pairs, td = pytree.flatten_with_path(x, is_leaf=lambda y: y is not x)
    data = td.node_data()
    if data is None:
        return None
    return data[0], [(p[0], c) for p, c in pairs]


def _is_namedtuple_type(t) -> bool:
    return issubclass(t, tuple) and isinstance(getattr(t, "_fields", None), tuple)


def describe_tree(tree, leaf_fn: Callable, path: tuple = ()) -> dict:
    """A JSON description of ``tree``; ``leaf_fn(path, leaf)`` describes each leaf.

    Leaves are visited in ``fn.tree.flatten`` order.

    >>> describe_tree({"b": None, "a": [1]}, lambda p, x: {"t": "*"})
    {'t': 'dict', 'k': ['a', 'b'], 'c': [{'t': 'list', 'c': [{'t': '*'}]}, {'t': 'none'}]}
    """
    level = _one_level(tree)
    if level is None:
        return leaf_fn(path, tree)
    typ, kids = level
    children = [describe_tree(c, leaf_fn, path + (k,)) for k, c in kids]
    if typ is type(None):
        return {"t": "none"}
    if typ is list:
        return {"t": "list", "c": children}
    if typ is tuple:
        return {"t": "tuple", "c": children}
    if typ in (dict, collections.defaultdict, collections.OrderedDict):
        kind = "odict" if typ is collections.OrderedDict else "dict"
        return {"t": kind, "k": [encode_value(k.key) for k, _ in kids], "c": children}
    if _is_namedtuple_type(typ):
        return {"t": "namedtuple", "name": typ.__name__, "fields": list(typ._fields),
                "c": children}
    return {"t": "node", "name": f"{typ.__module__}.{typ.__qualname__}",
            "keys": [str(k) for k, _ in kids], "c": children}


_NAMEDTUPLE_CLASSES: dict[tuple, type] = {}


def _namedtuple_class(name: str, fields: tuple):
    """One class per (name, fields), so rebuilt treedefs compare equal; None if invalid."""
    key = (name, fields)
    if key not in _NAMEDTUPLE_CLASSES:
        try:
            _NAMEDTUPLE_CLASSES[key] = collections.namedtuple(name, fields)
        except (ValueError, TypeError):
            _NAMEDTUPLE_CLASSES[key] = None
    return _NAMEDTUPLE_CLASSES[key]


def build_tree(desc: dict, leaf_fn: Callable, namedtuples: bool = False, path: str = ""):
    """Rebuild a tree from :func:`describe_tree`'s output; ``leaf_fn(path_str, desc)``.

    Dicts, lists, tuples and ``None`` come back as themselves; namedtuples as
    plain tuples, or with ``namedtuples=True`` as namedtuples of a class made
    from the recorded name and fields; other registered classes as tuples.

    >>> build_tree({"t": "tuple", "c": [{"t": "*"}, {"t": "none"}]}, lambda p, d: p)
    ('[0]', None)
    """
    t = desc.get("t")
    kids = desc.get("c", ())
    if t == "none":
        return None
    if t in ("list", "tuple"):
        out = [build_tree(c, leaf_fn, namedtuples, f"{path}[{i}]") for i, c in enumerate(kids)]
        return out if t == "list" else tuple(out)
    if t in ("dict", "odict"):
        keys = [_hashable(decode_value(k)) for k in desc["k"]]
        vals = [build_tree(c, leaf_fn, namedtuples, f"{path}[{k!r}]") for k, c in zip(keys, kids)]
        d = dict(zip(keys, vals))
        return collections.OrderedDict(d) if t == "odict" else d
    if t == "namedtuple":
        fields = tuple(desc["fields"])
        vals = [build_tree(c, leaf_fn, namedtuples, f"{path}.{f}") for f, c in zip(fields, kids)]
        cls = _namedtuple_class(desc["name"], fields) if namedtuples else None
        return cls(*vals) if cls is not None else tuple(vals)
    if t == "node":
        return tuple(build_tree(c, leaf_fn, namedtuples, f"{path}{k}")
                     for k, c in zip(desc["keys"], kids))
    return leaf_fn(path, desc)


def _hashable(k):
    return tuple(_hashable(x) for x in k) if type(k) is list else k


# ===========================================================================
# The container: an .npz with a JSON entry, written atomically


def _file_mode(path: str) -> int:
    """The permission bits the new file should get: the old file's, else the umask's."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, write: Callable) -> str:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, fsync it, rename it
    over ``path``.  On any error the temporary file is removed and ``path`` is untouched.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "x.bin")
    >>> atomic_write(p, lambda f: f.write(b"hello")) == p, open(p, "rb").read()
    (True, b'hello')
    """
    import tempfile  # only needed when writing; keeps ``import funcnet`` light

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # not supported on this platform / file system
    return path


def _write_entry(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zf.compression
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, arr, allow_pickle=False)


def _write_zip(f, meta: dict, arrays: dict, compress: bool) -> None:
    payload = json.dumps(meta, allow_nan=False, ensure_ascii=False,
                         separators=(",", ":")).encode("utf-8")
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, "w", compression=method, allowZip64=True) as zf:
        _write_entry(zf, META_ENTRY, np.frombuffer(payload, np.uint8))
        for name, arr in arrays.items():
            _write_entry(zf, name, arr)


def write_container(path, meta: dict, arrays: dict, compress: bool = False) -> str:
    """Atomically write ``arrays`` (name -> ndarray) and the JSON ``meta`` as one ``.npz``.

    >>> import os, tempfile, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "c.npz")
    >>> _ = write_container(p, {"format": "demo"}, {"a0": np.arange(3)})
    >>> sorted(np.load(p, allow_pickle=False).files)
    ['__funcnet__', 'a0']
    """
    return atomic_write(path, lambda f: _write_zip(f, meta, arrays, compress))


def container_bytes(meta: dict, arrays: dict, compress: bool = False) -> bytes:
    """The bytes :func:`write_container` would write (for sending over a network).

    >>> container_bytes({"format": "demo"}, {})[:2]
    b'PK'
    """
    buf = io.BytesIO()
    _write_zip(buf, meta, arrays, compress)
    return buf.getvalue()


_READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError,
                UnicodeDecodeError, KeyError)


def read_entry(zf: zipfile.ZipFile, name: str, where: str, what: str,
               error: type = CheckpointError) -> np.ndarray:
    """Read the array entry ``name``; a CRC/format problem raises ``error``.

    >>> import io, zipfile, numpy as np
    >>> b = container_bytes({"format": "demo"}, {"x": np.arange(2)})
    >>> read_entry(zipfile.ZipFile(io.BytesIO(b)), "x", "demo", "x")
    array([0, 1])
    """
    try:
        with zf.open(name + ".npy") as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
            if f.read(1):  # reading to the end also checks the entry's CRC-32
                raise ValueError("unexpected bytes after the array data")
    except _READ_ERRORS as e:
        reason = "the entry is missing" if isinstance(e, KeyError) else str(e)
        raise error(f"{where}: the file is truncated or corrupt: cannot read {what} "
                    f"({reason})") from None
    return arr


def _describe_format(fmt) -> str:
    return _FORMAT_NAMES.get(fmt, (f"a file of format {fmt!r}", ""))[0]


def open_container(source, fmt: str, readable: tuple, where: str,
                   error: type = CheckpointError) -> tuple[dict, zipfile.ZipFile]:
    """Open a funcnet ``.npz`` (a path or bytes) of format ``fmt``; return ``(meta, zipfile)``.

    ``readable`` lists the format versions the caller can read.  Raises
    ``error`` (:class:`CheckpointError` or a subclass) for empty, truncated,
    corrupt or foreign files, files of the other funcnet format, and other
    format versions.  The caller closes the zip file.

    >>> meta, zf = open_container(container_bytes(
    ...     {"format": "funcnet.checkpoint", "format_version": 1}, {}),
    ...     "funcnet.checkpoint", (1,), "demo")
    >>> meta["format_version"]
    1
    """
    kind = _FORMAT_NAMES[fmt][0]
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:4])
        opener = lambda: zipfile.ZipFile(io.BytesIO(bytes(source)))  # noqa: E731
    else:
        with open(source, "rb") as f:
            head = f.read(4)
        opener = lambda: zipfile.ZipFile(source)  # noqa: E731
    if not head:
        raise error(f"{where}: the file is empty (truncated: was it written completely?)")
    if head != b"PK\x03\x04":
        what = ("it is a single .npy array (numpy.save)" if head == b"\x93NUM"
                else "it is not an .npz (zip) file")
        raise error(f"{where} is not {kind}: {what}")
    try:
        zf = opener()
    except _READ_ERRORS as e:
        raise error(f"{where}: the file is truncated or corrupt: its zip directory cannot be "
                    f"read ({e})") from None
    try:
        meta = _read_meta(zf, where, kind, error)
        found = meta.get("format")
        if found != fmt:
            hint = ""
            if found in _FORMAT_NAMES:
                hint = f"; load it with {_FORMAT_NAMES[found][1]}"
            raise error(f"{where} is not {kind}: it is {_describe_format(found)}{hint}")
        version = meta.get("format_version")
        if version not in readable:
            written = meta.get("funcnet_version", "an unknown version")
            newer = isinstance(version, int) and version > max(readable)
            advice = ("upgrade funcnet to read it" if newer else
                      "re-create it with this funcnet version")
            known = " or ".join(map(str, readable))
            raise error(
                f"{where} was written in {fmt} format version {version!r} (by funcnet "
                f"{written}); this funcnet ({_funcnet_version()}) reads format version "
                f"{known} only: {advice}, or load it with funcnet {written}")
    except BaseException:
        zf.close()
        raise
    return meta, zf


def _read_meta(zf: zipfile.ZipFile, where: str, kind: str, error: type) -> dict:
    names = zf.namelist()
    if META_ENTRY + ".npy" not in names:
        shown = ", ".join(n[:-4] if n.endswith(".npy") else n for n in names[:8])
        more = f", ... ({len(names)} entries)" if len(names) > 8 else ""
        raise error(f"{where} is not {kind}: it has no {META_ENTRY!r} entry (an .npz written "
                    f"by numpy.savez?); its entries are: {shown or 'none'}{more}")
    raw = read_entry(zf, META_ENTRY, where, "the JSON description", error)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"{where}: the file is corrupt: its JSON description does not parse "
                    f"({e})") from None
    if not isinstance(meta, dict):
        raise error(f"{where}: the file is corrupt: its description is not a JSON object")
    return meta


# ===========================================================================
# save


def _leaf_record(path, x, arrays: dict) -> dict:
    from funcnet.backends import to_numpy
    from funcnet.core.trace import Tracer

    where = pytree.keystr(path) or "the root"
    t = type(x)
    if t in (bool, int, float, complex):
        return {"t": t.__name__, "v": encode_value(x)}
    if t is str:
        return {"t": "str", "v": x}
    if isinstance(x, Tracer):
        raise TypeError(f"checkpoint_io.save: the leaf at {where} is a traced value; save "
                        "concrete arrays outside jit/grad/vmap")
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        raise TypeError(f"checkpoint_io.save: the leaf at {where} is a {t.__name__} "
                        f"({x!r:.60}); a checkpoint holds arrays, Python scalars, strings and "
                        "None in dicts, lists, tuples and namedtuples (never pickled objects)")
    arr = np.asarray(to_numpy(x))
    if arr.dtype.kind not in _STORABLE_KINDS or arr.dtype.fields is not None:
        raise TypeError(f"checkpoint_io.save: the array at {where} has dtype {arr.dtype}, "
                        "which cannot be stored without pickle")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    key = f"a{len(arrays)}"
    arrays[key] = arr
    return {"t": "array", "key": key, "shape": list(arr.shape), "dtype": dtype_name(arr.dtype)}


def save(path, tree: Any, *, compress: bool = False) -> str:
    """Write the pytree ``tree`` to ``path`` (an ``.npz``) atomically; returns the path.

    Leaves may be arrays of any backend (stored as NumPy arrays), Python
    ``bool``/``int``/``float``/``complex`` scalars (epoch counters, learning
    rates: they come back as the same Python type) and strings; containers may
    be dicts (any JSON-able keys: strings, ints, ...), lists, tuples,
    namedtuples (optimizer states), ``None`` and registered classes.  The path
    is used as given.  ``compress=True`` deflates the entries (smaller, slower).
    Nothing is pickled: object arrays and arbitrary objects raise ``TypeError``
    naming the key path.

    >>> import os, tempfile, numpy as np
    >>> from funcnet import checkpoint_io
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> checkpoint_io.save(path, {"w": np.zeros(3), "step": 10}) == path
    True
    """
    arrays: dict[str, np.ndarray] = {}
    desc = describe_tree(tree, lambda p, x: _leaf_record(p, x, arrays))
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "funcnet_version": _funcnet_version(), "tree": desc}
    return write_container(path, meta, arrays, compress=compress)


# ===========================================================================
# load


def _load_leaf(zf, path, rec: dict, where: str, place: bool):
    from funcnet.backends import device_put

    t = rec.get("t")
    if t in _PY_TYPES:
        v = decode_value(rec.get("v"))
        if type(v) is not _PY_TYPES[t] and not (t == "float" and type(v) is int) \
                and not (t == "complex" and type(v) in (int, float)):
            raise CheckpointError(f"{where}: the file is corrupt: the {t} at "
                                  f"{path or 'the root'} is recorded as {v!r:.40}")
        return _PY_TYPES[t](v)
    if t != "array":
        raise CheckpointError(f"{where}: the file is corrupt: unknown leaf kind {t!r} at "
                              f"{path or 'the root'}")
    arr = read_entry(zf, rec["key"], where, f"the array at {path or 'the root'}")
    shape, dtype = tuple(rec["shape"]), np.dtype(rec["dtype"])
    if arr.shape != shape or arr.dtype != dtype:
        raise CheckpointError(
            f"{where}: the file is corrupt: the array at {path or 'the root'} is described as "
            f"{dtype.name}{list(shape)} but stored as {arr.dtype.name}{list(arr.shape)}")
    return device_put(arr) if place else arr


def _leaf_summary(rec: dict) -> str:
    if rec.get("t") == "array":
        return f"{np.dtype(rec['dtype']).name}[{','.join(map(str, rec['shape']))}]"
    return f"a Python {rec.get('t')} ({decode_value(rec.get('v'))!r:.30})"


def _like_summary(x) -> str:
    if type(x) in (bool, int, float, complex, str):
        return f"a Python {type(x).__name__} ({x!r:.30})"
    return f"{np.dtype(x.dtype).name}[{','.join(map(str, x.shape))}]"


def _check_leaf_against(path: str, rec: dict, tmpl, where: str) -> None:
    t = type(tmpl)
    if t in (bool, int, float, complex, str):
        ok = rec.get("t") == t.__name__
    elif hasattr(tmpl, "shape") and hasattr(tmpl, "dtype"):
        ok = (rec.get("t") == "array" and tuple(rec["shape"]) == tuple(tmpl.shape)
              and np.dtype(rec["dtype"]) == np.dtype(tmpl.dtype))
    else:
        raise TypeError(f"checkpoint_io.load: like's leaf at {path or 'the root'} is a "
                        f"{t.__name__}; like must be a pytree of arrays, ShapeDtypeStructs, "
                        "Python scalars and strings")
    if not ok:
        raise CheckpointError(f"{where} does not match like at {path or 'the root'}: expected "
                              f"{_like_summary(tmpl)} (from like), found {_leaf_summary(rec)} "
                              "in the file")


def _match_like(file_leaves: list, like, where: str):
    """Check the file's (path, record) leaves against ``like``; return like's treedef."""
    pairs, treedef = pytree.flatten_with_path(like)
    like_paths = [pytree.keystr(p) for p, _ in pairs]
    file_paths = [p for p, _ in file_leaves]
    if like_paths != file_paths:
        missing = [p for p in like_paths if p not in set(file_paths)]
        extra = [p for p in file_paths if p not in set(like_paths)]

        def listing(ps):
            shown = ", ".join(p or "the root" for p in ps[:5])
            return shown + (f" (and {len(ps) - 5} more)" if len(ps) > 5 else "")

        parts = []
        if missing:
            parts.append(f"in like but not in the file: {listing(missing)}")
        if extra:
            parts.append(f"in the file but not in like: {listing(extra)}")
        if not parts:
            i = next(i for i, (a, b) in enumerate(zip(like_paths, file_paths)) if a != b)
            parts.append(f"the leaves come in another order (leaf {i} is {file_paths[i]} in "
                         f"the file, {like_paths[i]} in like)")
        raise CheckpointError(f"{where} does not match the structure of like: "
                              + "; ".join(parts))
    for (path, rec), (_, tmpl) in zip(file_leaves, pairs):
        _check_leaf_against(path, rec, tmpl, where)
    return treedef


def load(path, like: Any = None) -> Any:
    """Read a checkpoint written by :func:`save`.

    Without ``like`` the tree is rebuilt from plain containers: dicts, lists,
    tuples and ``None`` as saved, but namedtuples (optimizer states) and other
    registered classes come back as plain tuples.  With ``like`` -- a pytree
    of the same structure whose leaves are arrays, ``fn.ShapeDtypeStruct``\\ s
    (e.g. from ``fn.eval_shape``), Python scalars or strings -- every leaf is
    checked (same key path, same shape and dtype, same Python type) and the
    result has ``like``'s container types, so an optimizer state comes back
    as its NamedTuple.  Arrays are placed on the active backend
    (``fn.device_put``).  Problems raise :class:`CheckpointError`.

    >>> import os, tempfile, collections, numpy as np
    >>> from funcnet import checkpoint_io
    >>> State = collections.namedtuple("State", "count mu")
    >>> path = os.path.join(tempfile.mkdtemp(), "opt.npz")
    >>> _ = checkpoint_io.save(path, State(np.int32(5), np.zeros(2)))
    >>> checkpoint_io.load(path)
    (array(5, dtype=int32), array([0., 0.]))
    >>> checkpoint_io.load(path, like=State(np.int32(0), np.ones(2))).count
    array(5, dtype=int32)
    """
    where = os.fspath(path)
    meta, zf = open_container(path, FORMAT, (FORMAT_VERSION,), where)
    with zf:
        desc = meta.get("tree")
        if not isinstance(desc, dict):
            raise CheckpointError(f"{where}: the file is corrupt: it has no tree description")
        if like is None:
            try:
                return build_tree(desc, lambda p, rec: _load_leaf(zf, p, rec, where, True))
            except (KeyError, TypeError, ValueError) as e:
                if isinstance(e, CheckpointError):
                    raise
                raise CheckpointError(f"{where}: the file is corrupt: its tree description "
                                      f"is malformed ({type(e).__name__}: {e})") from None
        file_leaves: list = []
        try:
            build_tree(desc, lambda p, rec: file_leaves.append((p, rec)))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: the file is corrupt: its tree description is "
                                  f"malformed ({type(e).__name__}: {e})") from None
        treedef = _match_like(file_leaves, like, where)
        leaves = [_load_leaf(zf, p, rec, where, True) for p, rec in file_leaves]
    return treedef.unflatten(leaves)
