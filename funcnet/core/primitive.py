"""``Primitive``: one operation and the table of rules that give it meaning.

Each primitive is defined once (in ``funcnet/ops/``) with its shape/dtype rule
(``abstract_eval``), its JVP rule, its transpose rule if it is linear, and its
batching rule.  Backends only supply a kernel per primitive name.

>>> from funcnet.ops.elementwise import sin_p
>>> sin_p.name, sin_p.jvp is not None
('sin', True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from funcnet.core import trace as _trace

_state = _trace.state  # one object for the whole process (its fields change, never itself)

#: Every primitive ever created, by name (the support matrix enumerates it).
registry: dict[str, Primitive] = {}


class Primitive:
    """A named operation with rule tables.

    Rules (all optional until a transform needs them):

    - ``abstract_eval(*avals, **params) -> aval`` (a list for multi-output ops);
    - ``jvp(primals, tangents, **params) -> (primal_out, tangent_out)``;
    - ``transpose(ct, *args, **params) -> list`` for linear primitives, where
      linear arguments arrive as ``UndefinedPrimal``;
    - ``batch(args, dims, **params) -> (out, out_dim)``;
    - ``impl``: a generic implementation used when no backend kernel exists
      (for primitives that carry graphs, such as calls and loops).
    """

    def __init__(self, name: str, *, multiple_results: bool = False, linear: bool = False):
        if name in registry:
            raise ValueError(f"primitive {name!r} is defined twice")
        self.name = name
        self.multiple_results = multiple_results
        self.linear = linear
        self.abstract_eval: Callable | None = None
        self.jvp: Callable | None = None
        self.transpose: Callable | None = None
        self.batch: Callable | None = None
        self.impl: Callable | None = None
        self.differentiable = True
        #: has a side effect (printing): never removed, merged or folded by graph passes
        self.effectful = False
        #: its kernel works on its operands as one flat buffer per dtype (a collective):
        #: compiled code may have the operands' producers write straight into such a buffer
        #: and then calls the kernel with ``packed=True`` (see ``backends/codegen.py``)
        self.packs_operands = False
        registry[name] = self

    def bind(self, *args: Any, **params: Any):
        """Apply the primitive under the innermost active transform (or eagerly)."""
        if _state.eager:
            try:
                if params:
                    return _state.kernels[self](*args, **params)
                return _state.kernels[self](*args)  # (no empty keyword dict to pass on)
            except Exception as e:
                _trace.kernel_failed(self, args, params, e)
        return _trace.bind_slow(self, args, params)

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        return (registry.__getitem__, (self.name,))
