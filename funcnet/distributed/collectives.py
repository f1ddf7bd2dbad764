"""``allreduce`` and ``broadcast`` of whole pytrees, one collective per dtype.

A tree's leaves are grouped by dtype; each group is packed into one
contiguous buffer, which travels in a single collective (see
:mod:`funcnet.distributed.transports`), and the results are views of the
reduced buffer, reshaped back into the tree.  A 100-leaf float32 gradient
is therefore one ``MPI_Allreduce``, not a hundred.

``allreduce`` is a primitive (``allreduce_p``), so it works inside ``jit``
(the compiled step calls it at run time), under ``grad`` (sums and means are
linear: their JVP is the same collective on the tangents, and the transpose
of a mean over processes is the same mean on the cotangents) and under
``vmap`` (the batch axis is reduced element by element like every other).

Before the data moves, the processes compare a hash of their trees' paths,
shapes and dtypes (one two-integer collective); if they differ, every rank
raises :class:`~funcnet.distributed.DistributedError` naming the paths that
differ and the ranks, instead of reducing mismatched buffers or hanging.

>>> import numpy as np
>>> from funcnet import distributed
>>> grads = {"w": np.ones((2, 2), np.float32), "b": None, "n": np.int32(3)}
>>> out = distributed.allreduce(grads, op="sum")   # one process: the tree itself
>>> out["w"].sum(), out["b"], int(out["n"])
(np.float32(4.0), None, 3)
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.core.primitive import Primitive
from funcnet.core.trace import Tracer
from funcnet.distributed.runtime import DistributedError, World, init
from funcnet.distributed.transports import OPS, is_cupy_array, transport_for
from funcnet.transforms import ad

__all__ = ["allreduce", "broadcast", "broadcast_object", "allreduce_p", "reduce_arrays"]

_transports: dict = {}


# ---------------------------------------------------------------------------
# the tree's description, compared across ranks


_paths: dict = {}


def _tree_paths(treedef, pairs) -> tuple[str, ...]:
    """The leaves' paths as strings, remembered per tree structure (a few hundred at most)."""
    try:
        return _paths[treedef]
    except KeyError:
        pass
    except TypeError:  # an unhashable node type: not remembered
        return tuple(fn.tree.keystr(p) for p, _ in pairs)
    if len(_paths) >= 256:
        _paths.clear()
    paths = _paths[treedef] = tuple(fn.tree.keystr(p) for p, _ in pairs)
    return paths


def _signature(paths, arrays) -> tuple:
    return tuple((p, np.dtype(a.dtype).name, tuple(int(d) for d in a.shape))
                 for p, a in zip(paths, arrays))


@functools.lru_cache(maxsize=1024)
def _hash(signature: tuple) -> int:
    digest = hashlib.blake2b(repr(signature).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2  # fits an int64 and its negation


def _describe(entry) -> str:
    _, dtype, shape = entry
    return f"{dtype}[{','.join(map(str, shape))}]"


def mismatch_message(what: str, signatures: list, ranks: list | None = None) -> str:
    """The error text for ranks whose trees differ: the differing paths, rank by rank.

    ``signatures[k]`` is the tree of rank ``ranks[k]`` (default ``k``); the
    first one is the reference.

    >>> from funcnet.distributed.collectives import mismatch_message
    >>> a = (("['w']", "float32", (3, 4)), ("['b']", "float32", (4,)))
    >>> b = (("['w']", "float32", (4, 4)),)
    >>> print(mismatch_message("allreduce", [a, b]))
    allreduce: the 2 processes passed different trees:
      ['w']: float32[3,4] on rank 0, float32[4,4] on rank 1
      ['b']: on rank 0, missing on rank 1
    (every process must pass the same structure, shapes and dtypes)
    """
    ranks = list(range(len(signatures))) if ranks is None else ranks
    r0 = ranks[0]
    lines = []
    ref = {e[0]: e for e in signatures[0]}
    for r, sig in zip(ranks[1:], signatures[1:]):
        mine = {e[0]: e for e in sig}
        found = len(lines)
        for path, entry in ref.items():
            if path not in mine:
                lines.append(f"  {path}: on rank {r0}, missing on rank {r}")
            elif mine[path] != entry:
                lines.append(f"  {path}: {_describe(entry)} on rank {r0}, "
                             f"{_describe(mine[path])} on rank {r}")
        lines += [f"  {path}: on rank {r}, missing on rank {r0}" for path in mine
                  if path not in ref]
        if sig != signatures[0] and len(lines) == found:
            lines.append(f"  rank {r} has the same leaves as rank {r0} in a different order")
    if len(lines) > 20:
        lines = lines[:20] + [f"  ... and {len(lines) - 20} more"]
    return (f"{what}: the {len(signatures)} processes passed different trees:\n"
            + "\n".join(lines) + "\n(every process must pass the same structure, shapes and "
            "dtypes)")


def _check_same(w: World, what: str, signature: tuple) -> None:
    h = _hash(signature)
    both = np.array([h, -h], dtype=np.int64)
    with w.collective(f"{what} (comparing the trees)"):
        w.comm.Allreduce(_mpi().IN_PLACE, both, op=_mpi().MAX)
    if both[0] != -both[1]:  # the largest and the smallest hash differ
        with w.collective(f"{what} (gathering the trees)"):
            signatures = w.comm.allgather(signature)  # paths and shapes only
        raise DistributedError(mismatch_message(what, signatures))


def _mpi():
    from mpi4py import MPI

    return MPI


# ---------------------------------------------------------------------------
# packing a group of arrays into one buffer


def _groups(arrays, paths, op: str, what: str) -> dict:
    """Indices of the arrays by dtype (first appearance first), refusing what MPI cannot
    reduce."""
    groups: dict[np.dtype, list[int]] = {}
    for i, a in enumerate(arrays):
        dt = np.dtype(a.dtype)
        if dt.kind not in "iufc" or (dt.kind == "c" and op in ("max", "min")):
            raise TypeError(f"{what}: cannot {op}-reduce {paths[i]} of dtype {dt} across "
                            f"processes; cast it to a number type first")
        groups.setdefault(dt, []).append(i)
    return groups


def _wire_dtype(dt: np.dtype) -> np.dtype:
    # MPI has no 16-bit float: such leaves travel as float32 and come back rounded once
    return np.dtype(np.float32) if dt == np.float16 else dt


def _pack(xp, arrays, idx, dtype):
    parts = [xp.ravel(arrays[i]).astype(dtype, copy=False) for i in idx]
    return xp.concatenate(parts) if len(parts) > 1 else parts[0].copy()


def _unpack(buf, arrays, idx, dtype, out: list) -> None:
    offset = 0
    for i in idx:
        a = arrays[i]
        n = int(a.size)
        out[i] = buf[offset:offset + n].reshape(a.shape).astype(dtype, copy=False)
        offset += n


def _divide(xp, buf, count: int):
    if buf.dtype.kind in "fc":
        buf /= count
        return buf
    # integers: the mean keeps the dtype and rounds toward zero (as integer division in C)
    return (xp.sign(buf) * (xp.abs(buf) // count)).astype(buf.dtype)


def _packed_buffer(arrays, idx, dtype):
    """The one buffer whose consecutive slices the arrays ``idx`` are, or None."""
    base = arrays[idx[0]].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or base.dtype != dtype \
            or not base.flags.c_contiguous or not base.flags.writeable:
        return None
    address = base.__array_interface__["data"][0]
    for i in idx:
        a = arrays[i]
        if a.base is not base or not a.flags.c_contiguous \
                or a.__array_interface__["data"][0] != address:
            return None
        address += a.nbytes
    return base if address == base.__array_interface__["data"][0] + base.nbytes else None


def reduce_arrays(w: World, arrays: list, op: str, paths: tuple, check: bool = True,
                  packed: bool = False) -> list:
    """``allreduce`` of a flat list of arrays in world ``w`` (the kernel of ``allreduce_p``).

    One collective per dtype; ``paths`` name the arrays in error messages.
    Returns new arrays (never the inputs) -- except with ``packed=True``,
    which compiled code passes when it has made the arrays of a dtype
    consecutive slices of one buffer that nothing else uses: that buffer is
    then reduced in place, without a copy.

    >>> import numpy as np
    >>> from funcnet.distributed import World
    >>> from funcnet.distributed.collectives import reduce_arrays
    >>> [a.tolist() for a in reduce_arrays(World(), [np.arange(3)], "sum", ("x",))]
    [[0, 1, 2]]
    """
    device = any(is_cupy_array(a) for a in arrays)
    if device:
        import cupy as xp
    else:
        xp = np
    arrays = [xp.asarray(a) for a in arrays]
    if w.size == 1 and w.comm is None:
        return [a.copy() for a in arrays]
    what = f"allreduce(op={op!r})"
    if check:
        _check_same(w, what, _signature(paths, arrays))
    transport = transport_for(w, device, _transports)
    out: list[Any] = [None] * len(arrays)
    for dtype, idx in _groups(arrays, paths, op, what).items():
        wire = _wire_dtype(dtype)
        buf = _packed_buffer(arrays, idx, wire) if packed and xp is np else None
        if buf is None:
            buf = _pack(xp, arrays, idx, wire)
        if buf.size:
            with w.collective(f"{what} of {len(idx)} {dtype} arrays ({buf.size} values)"):
                transport.allreduce(buf, op)
            if op == "mean":
                buf = _divide(xp, buf, w.size)
        _unpack(buf, arrays, idx, dtype, out)
    return out


# ---------------------------------------------------------------------------
# the primitive

allreduce_p = Primitive("allreduce", multiple_results=True)
allreduce_p.effectful = True  # a collective: never removed, merged or folded by graph passes
allreduce_p.packs_operands = True  # compiled code may hand it one buffer per dtype
allreduce_p.abstract_eval = lambda *avals, op, paths, check: list(avals)
allreduce_p.impl = lambda *arrays, op, paths, check, packed=False: reduce_arrays(
    init(), list(arrays), op, paths, check, packed)


def _allreduce_jvp(primals, tangents, *, op, paths, check):
    if op not in ("sum", "mean"):
        raise TypeError(f"allreduce(op={op!r}) has no derivative; differentiate through "
                        f"op='sum' or op='mean' only")
    out = allreduce_p.bind(*primals, op=op, paths=paths, check=check)
    touts = allreduce_p.bind(*[ad.instantiate(t) for t in tangents], op=op,
                             paths=paths, check=False)
    return out, touts


def _allreduce_transpose(cts, *args, op, paths, check):
    # a sum (or mean) over processes is its own transpose
    return allreduce_p.bind(*[ad.instantiate(c) for c in cts], op=op, paths=paths, check=False)


allreduce_p.jvp = _allreduce_jvp
allreduce_p.transpose = _allreduce_transpose
allreduce_p.linear = True
allreduce_p.batch = lambda vals, dims, *, op, paths, check: (
    allreduce_p.bind(*vals, op=op, paths=paths, check=check), list(dims))


# ---------------------------------------------------------------------------
# the public functions


def _leaf_array(x):
    return x if isinstance(x, Tracer) or hasattr(x, "shape") else fnp.asarray(x)


def allreduce(tree: Any, op: str = "mean", *, check: bool = True) -> Any:
    """Reduce every leaf of ``tree`` across the processes: ``op`` is ``"mean"``
    (default), ``"sum"``, ``"max"`` or ``"min"``; every process gets the result.

    The leaves are packed into one buffer per dtype and each buffer is reduced
    in one collective (MPI for NumPy/Numba arrays, NCCL for CuPy arrays).
    ``None`` leaves stay ``None``; integer means round toward zero; booleans
    are refused.  Works eagerly and inside ``jit``, ``grad`` (for sum and
    mean) and ``vmap``.  ``check=True`` first compares the processes' trees
    (paths, shapes, dtypes) and raises ``DistributedError`` naming the
    differences.  With one process the tree comes back as it is.

    >>> import numpy as np
    >>> from funcnet import distributed
    >>> distributed.allreduce({"g": np.array([1.0, 3.0])})["g"]
    array([1., 3.])
    """
    if op not in OPS:
        raise ValueError(f"allreduce: op must be one of {', '.join(OPS)}; got {op!r}")
    if init().size == 1:
        return tree
    pairs, treedef = fn.tree.flatten_with_path(tree)
    if not pairs:
        return tree
    leaves = [_leaf_array(x) for _, x in pairs]
    outs = allreduce_p.bind(*leaves, op=op, paths=_tree_paths(treedef, pairs), check=check)
    return fn.tree.unflatten(treedef, list(outs))


def broadcast(tree: Any, root: int = 0) -> Any:
    """Every process gets ``root``'s ``tree`` (typically the initial parameters).

    All array leaves travel as the bytes of one buffer in a single collective
    (MPI ``Bcast``, or NCCL for CuPy arrays), never pickled; other leaves
    (Python numbers, strings) are sent with the tree's description.  Every
    process must pass a tree of the same structure, shapes and dtypes --
    otherwise all raise ``DistributedError`` naming the differing paths.
    With one process the tree comes back as it is.

    >>> import numpy as np
    >>> from funcnet import distributed
    >>> distributed.broadcast({"w": np.zeros(2), "epoch": 3})["epoch"]
    3
    """
    w = init()
    if w.size == 1:
        return tree
    if not 0 <= root < w.size:
        raise ValueError(f"broadcast: root must be a rank 0 ... {w.size - 1}, got {root}")
    pairs, treedef = fn.tree.flatten_with_path(tree)
    if any(isinstance(x, Tracer) for _, x in pairs):
        raise TypeError("broadcast: called on traced values (inside jit, grad or vmap); "
                        "broadcast concrete arrays, before the compiled step")
    paths = _tree_paths(treedef, pairs)
    device = any(is_cupy_array(x) for _, x in pairs)
    if device:
        import cupy as xp
    else:
        xp = np
    arrays = {i: xp.asarray(x) for i, (_, x) in enumerate(pairs)
              if hasattr(x, "shape") and hasattr(x, "dtype")}
    values = {i: x for i, (_, x) in enumerate(pairs) if i not in arrays}
    # arrays by dtype and shape; other leaves (sent with this description) by their type
    described = tuple(_signature([paths[i]], [arrays[i]])[0] if i in arrays
                      else (paths[i], type(values[i]).__name__, ()) for i in range(len(pairs)))
    what = f"broadcast(root={root})"
    with w.collective(what):
        root_described, root_values = w.comm.bcast(
            (described, values) if w.rank == root else None, root=root)
    differs = np.array([int(root_described != described)], dtype=np.int64)
    with w.collective(what):
        w.comm.Allreduce(_mpi().IN_PLACE, differs, op=_mpi().MAX)
    if differs[0]:
        with w.collective(what):
            every = w.comm.allgather(described)
        ranks = [root] + [r for r in range(w.size) if r != root]
        raise DistributedError(mismatch_message(what, [every[r] for r in ranks], ranks))
    leaves = [root_values.get(i) for i in range(len(pairs))]
    # largest items first, so that every array starts aligned inside the byte buffer
    order = sorted(arrays, key=lambda i: -arrays[i].dtype.itemsize)
    nbytes = [int(arrays[i].nbytes) for i in order]
    if sum(nbytes):
        buf = xp.concatenate([xp.ascontiguousarray(arrays[i]).reshape(-1).view(xp.uint8)
                              for i in order])
        with w.collective(f"{what} of {len(order)} arrays ({buf.size} bytes)"):
            transport_for(w, device, _transports).broadcast(buf, root)
    offset = 0
    for i, n in zip(order, nbytes):
        a = arrays[i]
        leaves[i] = buf[offset:offset + n].view(a.dtype).reshape(a.shape) if n else a.copy()
        offset += n
    return fn.tree.unflatten(treedef, leaves)


def broadcast_object(obj: Any, root: int = 0) -> Any:
    """``root``'s ``obj`` on every process: a small picklable Python object (a
    configuration, a path, a message) that only ``root`` computed -- the other
    processes may pass anything (``None``).  Arrays belong in :func:`broadcast`.

    >>> from funcnet import distributed
    >>> distributed.broadcast_object({"run_dir": "runs/a"})
    {'run_dir': 'runs/a'}
    """
    w = init()
    if w.size == 1:
        return obj
    with w.collective(f"broadcast_object(root={root})"):
        return w.comm.bcast(obj if w.rank == root else None, root=root)
