"""``einsum``: Einstein summation lowered to funcnet's primitives.

The subscripts are parsed as NumPy does (explicit ``->`` output or the
implicit alphabetical one, ``...`` broadcasting, repeated labels within an
operand taking a diagonal, labels missing from the output summed out).  The
computation is then written with existing primitives only — ``gather`` for
diagonals, ``broadcast_in_dim`` for size-1 broadcasting, ``reduce_sum`` for
labels no one needs any more, and one ``dot_general`` per operand, pairwise
from left to right, followed by a final ``transpose`` — so ``einsum`` is
differentiable, batchable and jittable with no rules of its own.

>>> import numpy as np
>>> from funcnet.numpy.einsum import einsum
>>> einsum("ij,jk->ik", np.ones((2, 3)), np.ones((3, 4))).shape
(2, 4)
>>> einsum("ii", np.array([[1.0, 2.0], [3.0, 4.0]]))
array(5.)
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import get_aval, result_dtype
from funcnet.numpy.conversion import as_array
from funcnet.ops import elementwise as ew
from funcnet.ops import indexing as ix
from funcnet.ops import reductions as red
from funcnet.ops import shape as sh
from funcnet.ops.contraction import dot_general

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


# ---------------------------------------------------------------------------
# Parsing: labels are letters (str); the axes covered by "..." get the labels
# 0, 1, ... (int), numbered so that they align on the right across operands.


def _sublist_to_str(sub) -> str:
    out = []
    for s in sub:
        if s is Ellipsis:
            out.append("...")
        elif isinstance(s, (int, np.integer)) and 0 <= s < len(_LETTERS):
            out.append(_LETTERS[int(s)])
        else:
            raise ValueError(f"einsum: subscript list entries must be Ellipsis or integers in "
                             f"[0, {len(_LETTERS)}), got {s!r}")
    return "".join(out)


def _interleaved_to_str(args) -> tuple[str, list]:
    """``einsum(op0, sub0, op1, sub1, ..., [sub_out])`` → ``("...,...->...", ops)``."""
    args = list(args)
    out_sub = args.pop() if len(args) % 2 == 1 else None
    ops = args[0::2]
    subs = [_sublist_to_str(s) for s in args[1::2]]
    spec = ",".join(subs)
    if out_sub is not None:
        spec += "->" + _sublist_to_str(out_sub)
    return spec, ops


def _split_term(term: str, where: str) -> tuple[list[str], bool]:
    """The letters of one term and whether it holds an ellipsis (at its position)."""
    if term.count("...") > 1:
        raise ValueError(f"einsum: more than one ellipsis in {where} '{term}'")
    letters = []
    for part_i, part in enumerate(term.split("...")):
        if part_i == 1:
            letters.append("...")
        for ch in part:
            if ch not in _LETTERS:
                raise ValueError(f"einsum: invalid subscript {ch!r} in {where} '{term}' "
                                 "(use letters a-z, A-Z and '...')")
            letters.append(ch)
    return letters, "..." in term


def parse_subscripts(subscripts: str, shapes: list[tuple]) -> tuple[list[list], list]:
    """Per-operand label lists and the output label list for ``subscripts``.

    >>> parse_subscripts("ij,...j->...i", [(2, 3), (5, 3)])
    ([['i', 'j'], [0, 'j']], [0, 'i'])
    """
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, out_term = spec.split("->", 1)
        if "->" in out_term or "-" in out_term.replace("->", "") or ">" in out_term:
            raise ValueError(f"einsum: the subscripts '{subscripts}' have more than one '->'")
    else:
        if "-" in spec or ">" in spec:
            raise ValueError(f"einsum: malformed output marker in '{subscripts}' (use '->')")
        lhs, out_term = spec, None
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: the subscripts '{subscripts}' name {len(terms)} operand(s) "
                         f"but {len(shapes)} were given")
    parsed = [_split_term(t, "operand subscript") for t in terms]
    n_ell = 0
    for (letters, has_ell), shape, term in zip(parsed, shapes, terms):
        named = len(letters) - (1 if has_ell else 0)
        if (len(shape) < named) or (not has_ell and len(shape) != named):
            raise ValueError(f"einsum: operand subscript '{term}' names {named} axes but the "
                             f"operand has shape {tuple(shape)}")
        if has_ell:
            n_ell = max(n_ell, len(shape) - named)
    inputs = []
    for (letters, _), shape in zip(parsed, shapes):
        labels = []
        for lab in letters:
            if lab == "...":
                k = len(shape) - (len(letters) - 1)
                labels.extend(range(n_ell - k, n_ell))
            else:
                labels.append(lab)
        inputs.append(labels)
    if out_term is None:
        counts: dict = {}
        for labels in inputs:
            for lab in labels:
                if isinstance(lab, str):
                    counts[lab] = counts.get(lab, 0) + 1
        output = list(range(n_ell)) + sorted(lab for lab, c in counts.items() if c == 1)
    else:
        out_letters, out_ell = _split_term(out_term, "output subscript")
        seen = set()
        output = []
        every = {lab for labels in inputs for lab in labels}
        for lab in out_letters:
            if lab == "...":
                output.extend(range(n_ell))
                continue
            if lab in seen:
                raise ValueError(f"einsum: output subscript '{lab}' appears more than once")
            if lab not in every:
                raise ValueError(f"einsum: output subscript '{lab}' does not appear in the "
                                 "operands' subscripts")
            seen.add(lab)
            output.append(lab)
        if not out_ell and n_ell:
            raise ValueError("einsum: the operands have axes covered by '...' but the output "
                             "subscript has no '...' to hold them")
    return inputs, output


# ---------------------------------------------------------------------------
# Lowering


def _take_diagonals(x, labels: list):
    """Collapse repeated labels of one operand onto their diagonal (via gather)."""
    while True:
        repeated = next((lab for lab in labels if labels.count(lab) > 1), None)
        if repeated is None:
            return x, labels
        axes = [i for i, lab in enumerate(labels) if lab == repeated]
        rest = [i for i in range(len(labels)) if i not in axes]
        x = sh.transpose(x, tuple(axes + rest))
        n = x.shape[0]
        ar = np.arange(n)
        spec = tuple(("array", k) for k in range(len(axes))) + tuple(
            ("slice", None, None, None) for _ in rest)
        x = ix.gather(x, [ar] * len(axes), spec)
        labels = [repeated] + [labels[i] for i in rest]


def _sum_out(x, labels: list, keep) -> tuple:
    axes = tuple(i for i, lab in enumerate(labels) if lab not in keep)
    if not axes:
        return x, labels
    return red.reduce_sum(x, axes), [lab for lab in labels if lab in keep]


def _contract(x, xl: list, y, yl: list, keep) -> tuple:
    """``dot_general`` of two labelled operands, keeping the labels in ``keep``."""
    shared = [lab for lab in xl if lab in yl]
    batch = [lab for lab in shared if lab in keep]
    contract = [lab for lab in shared if lab not in keep]
    dn = ((tuple(xl.index(lab) for lab in contract), tuple(yl.index(lab) for lab in contract)),
          (tuple(xl.index(lab) for lab in batch), tuple(yl.index(lab) for lab in batch)))
    out = dot_general(x, y, dn)
    labels = (batch + [lab for lab in xl if lab not in shared]
              + [lab for lab in yl if lab not in shared])
    return out, labels


def einsum(subscripts, *operands, optimize=False):
    """Einstein summation over the operands, following ``numpy.einsum``.

    Accepts the string form (``"ij,jk->ik"``, implicit output ``"ij,jk"``,
    ``"...ij,...jk->...ik"``, diagonals ``"ii->i"``) and NumPy's interleaved
    form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.  Contractions run pairwise
    from left to right; ``optimize`` is accepted for compatibility and
    ignored.

    >>> import numpy as np
    >>> from funcnet.numpy.einsum import einsum
    >>> einsum("i,i", np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    array(11.)
    >>> einsum("bij,bjk->bik", np.ones((2, 3, 4)), np.ones((2, 4, 5))).shape
    (2, 3, 5)
    >>> einsum("ij->ji", np.arange(6).reshape(2, 3)).shape
    (3, 2)
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _interleaved_to_str((subscripts,) + operands)
    if not operands:
        raise ValueError("einsum: at least one operand is needed")
    ops = [as_array(x) for x in operands]
    inputs, output = parse_subscripts(subscripts, [tuple(x.shape) for x in ops])
    dtype, _ = result_dtype(*[get_aval(x) for x in ops])
    ops = [ew.convert_element_type(x, dtype) for x in ops]

    # The size of every label; size-1 axes broadcast against larger ones.
    sizes: dict = {}
    for x, labels in zip(ops, inputs):
        for lab in set(labels):
            own = {d for d, other in zip(x.shape, labels) if other == lab}
            if len(own) > 1:
                raise ValueError(f"einsum: the repeated subscript {_show(lab)} labels axes of "
                                 f"different sizes {sorted(own)} in the operand of shape "
                                 f"{tuple(x.shape)}")
        for d, lab in zip(x.shape, labels):
            prev = sizes.get(lab, 1)
            if d != 1 and prev != 1 and d != prev:
                raise ValueError(f"einsum: subscript {_show(lab)} has size {d} in one operand "
                                 f"and {prev} in another (shapes "
                                 + ", ".join(str(tuple(o.shape)) for o in ops) + ")")
            sizes[lab] = max(prev, d) if d != 1 else prev
    # Diagonals first; then broadcast size-1 axes to their label's size.
    prepared = []
    for x, labels in zip(ops, inputs):
        x, labels = _take_diagonals(x, list(labels))
        target = tuple(sizes[lab] for lab in labels)
        if tuple(x.shape) != target:
            x = sh.broadcast_in_dim(x, target, tuple(range(len(labels))))
        prepared.append((x, labels))

    def needed_after(k):
        """Labels used by the output or by any operand after the k-th."""
        keep = set(output)
        for _, labels in prepared[k + 1:]:
            keep.update(labels)
        return keep

    x, xl = prepared[0]
    x, xl = _sum_out(x, xl, needed_after(0))
    for k in range(1, len(prepared)):
        y, yl = prepared[k]
        keep = needed_after(k)
        # Labels only this operand has and no one needs are summed before the product.
        y, yl = _sum_out(y, yl, keep | set(xl))
        x, xl = _sum_out(x, xl, keep | set(yl))
        x, xl = _contract(x, xl, y, yl, keep)
    x, xl = _sum_out(x, xl, set(output))
    return sh.transpose(x, tuple(xl.index(lab) for lab in output))


def _show(lab) -> str:
    return f"'{lab}'" if isinstance(lab, str) else "'...'"


__all__ = ["einsum", "parse_subscripts"]
