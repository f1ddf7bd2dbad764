"""Recurrent layers: the cells ``SimpleRNNCell``, ``LSTMCell``, ``GRUCell`` and the
``RNN`` layer that runs a cell over a sequence with ``lax.scan``.

Inputs are batch-major ``(N, T, F)``.  The input projection ``x @ w_i + b``
of every time step is one matrix product before the loop; the loop body only
multiplies the carried state by ``w_h``.

``GRUCell`` runs with a hand-written backward pass (a ``custom_vjp``; see
``_gru_scan``) that gives the same gradients as differentiating the loop, in
about half the operations.

**Masking.**  ``RNN.apply(..., mask=m)`` takes a boolean ``(N, T)`` mask,
true at real time steps.  At a masked step the carry is left unchanged and
the output is zero, so padded sequences (at either end) give the same final
state and the same outputs at real steps as the unpadded sequence.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> rnn = nn.RNN(nn.GRUCell(8), return_sequences=False)
>>> shape, params = rnn.init(random.key(0), (-1, 5, 3))
>>> shape, sorted(params)
((-1, 8), ['b_h', 'b_i', 'w_h', 'w_i'])
>>> rnn.apply(params, fnp.ones((2, 5, 3))).shape
(2, 8)
"""

from __future__ import annotations

from collections.abc import Callable

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax, random, tree
from funcnet.nn import initializers
from funcnet.nn.layers.base import Layer, check_ndim, known, shape_tuple
from funcnet.nn.layers.core import matmul_last

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "RNN"]


def _gate(x):
    """The logistic function as ``0.5 tanh(x / 2) + 0.5``: three cheap operations, with
    absolute error ~1e-8 and gradients finite everywhere (fine for gates, whose
    values, not their tiny tails, matter)."""
    return 0.5 * fnp.tanh(0.5 * x) + 0.5


class _Cell:
    """Shared parts of the cells: parameters ``w_i`` (F, G*H), ``w_h`` (H, G*H), ``b_i``."""

    num_gates = 1
    name = "cell"

    def __init__(self, hidden_size: int, *, w_init: Callable | None = None,
                 recurrent_init: Callable | None = None,
                 b_init: Callable = initializers.zeros):
        self.hidden_size = int(hidden_size)
        self.w_init = initializers.lecun_normal() if w_init is None else w_init
        self.recurrent_init = (initializers.orthogonal() if recurrent_init is None
                               else recurrent_init)
        self.b_init = b_init

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden_size})"

    def init(self, key, input_size: int) -> dict:
        """The cell's params for inputs with ``input_size`` features."""
        g, h = self.num_gates, self.hidden_size
        k_i, k_h, k_b = random.split(key, 3)
        # one recurrent matrix per gate, so that each is orthogonal
        w_h = fnp.concatenate([self.recurrent_init(k, (h, h)) for k in random.split(k_h, g)],
                              axis=1)
        return {"w_i": self.w_init(k_i, (int(input_size), g * h)), "w_h": w_h,
                "b_i": self.b_init(k_b, (g * h,))}

    def initial_carry(self, batch_shape: tuple, dtype=None):
        """The zero state for a batch of shape ``batch_shape``."""
        return fnp.zeros(tuple(batch_shape) + (self.hidden_size,), dtype)

    def project(self, params, x):
        """The input part of every gate, ``x @ w_i + b_i``, for all time steps at once
        (any leading axes; a pytree of arrays for cells that split it)."""
        return matmul_last(x, params["w_i"]) + params["b_i"]

    def step(self, params, carry, x_proj):
        """One time step from the projected input (one step of :meth:`project`'s
        output): ``(new_carry, output)``."""
        raise NotImplementedError

    def __call__(self, params, carry, x):
        """One time step from a raw input ``x`` of shape ``(N, F)``: ``(new_carry, output)``."""
        return self.step(params, carry, self.project(params, x))

    @staticmethod
    def output(carry):
        """The hidden state ``h`` in a carry."""
        return carry

    def recurrence(self, params, xs, keep, carry, *, reverse: bool = False,
                   return_sequences: bool = True, unroll: int = 1):
        """Run the cell over time-major projected inputs ``xs`` (``T`` first).

        ``keep`` is ``None`` or a boolean ``(T, N, 1)`` mask.  Returns
        ``(final_carry, ys)`` with ``ys`` of shape ``(T, N, H)`` (``None``
        unless ``return_sequences``).  Differentiated by ``lax.scan``'s rules;
        a cell may override it with a faster equivalent.
        """
        if keep is None:
            def body(c, xp):
                new, y = self.step(params, c, xp)
                return new, (y if return_sequences else None)

            return lax.scan(body, carry, xs, reverse=reverse, unroll=unroll)

        def masked_body(c, inputs):
            xp, k = inputs
            new, y = self.step(params, c, xp)
            new = tree.map(lambda a, b: fnp.where(k, a, b), new, c)
            return new, (fnp.where(k, y, 0) if return_sequences else None)

        return lax.scan(masked_body, carry, (xs, keep), reverse=reverse, unroll=unroll)


class SimpleRNNCell(_Cell):
    """Elman cell: ``h' = tanh(x w_i + b_i + h w_h)``.

    Params ``{"w_i": (F, H), "w_h": (H, H), "b_i": (H,)}``; ``w_h`` is
    orthogonal at initialisation.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> cell = nn.SimpleRNNCell(4)
    >>> params = cell.init(random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry((2,)), fnp.ones((2, 3)))
    >>> h.shape
    (2, 4)
    """

    num_gates = 1
    name = "simple_rnn"

    def step(self, params, carry, x_proj):
        h = fnp.tanh(x_proj + carry @ params["w_h"])
        return h, h


class LSTMCell(_Cell):
    """Long short-term memory cell (Hochreiter & Schmidhuber, 1997); carry ``(h, c)``.

    Gates in the order input, forget, output, candidate:
    ``i, f, o = sigmoid(.)``, ``g = tanh(.)``, ``c' = f c + i g``,
    ``h' = o tanh(c')``.  Params ``{"w_i": (F, 4H), "w_h": (H, 4H), "b_i":
    (4H,)}``; the forget gate's bias starts at ``forget_bias`` (1.0).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> cell = nn.LSTMCell(4)
    >>> params = cell.init(random.key(0), 3)
    >>> (h, c), out = cell(params, cell.initial_carry((2,)), fnp.ones((2, 3)))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    num_gates = 4
    name = "lstm"

    def __init__(self, hidden_size: int, *, forget_bias: float = 1.0, **kwargs):
        super().__init__(hidden_size, **kwargs)
        self.forget_bias = float(forget_bias)

    def init(self, key, input_size: int) -> dict:
        params = super().init(key, input_size)
        h = self.hidden_size
        if self.forget_bias:
            params["b_i"] = fnp.at(params["b_i"])[h:2 * h].add(self.forget_bias)
        return params

    def initial_carry(self, batch_shape: tuple, dtype=None):
        zeros = super().initial_carry(batch_shape, dtype)
        return (zeros, zeros)

    def step(self, params, carry, x_proj):
        h, c = carry
        n = self.hidden_size
        gates = x_proj + h @ params["w_h"]
        ifo = _gate(gates[..., :3 * n])
        g = fnp.tanh(gates[..., 3 * n:])
        c = ifo[..., n:2 * n] * c + ifo[..., :n] * g
        h = ifo[..., 2 * n:] * fnp.tanh(c)
        return (h, c), h

    @staticmethod
    def output(carry):
        return carry[0]


class GRUCell(_Cell):
    """Gated recurrent unit (Cho et al., 2014), in the form PyTorch and cuDNN use.

    ``r = sigmoid(x_r + h w_hr + b_hr)``, ``z = sigmoid(x_z + h w_hz + b_hz)``,
    ``n = tanh(x_n + r (h w_hn + b_hn))``, ``h' = (1 - z) n + z h``, with
    ``x_* = x w_i* + b_i*``.  Params ``{"w_i": (F, 3H), "w_h": (H, 3H), "b_i":
    (3H,), "b_h": (3H,)}`` (gates in the order r, z, n).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> cell = nn.GRUCell(4)
    >>> params = cell.init(random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry((2,)), fnp.ones((2, 3)))
    >>> h.shape
    (2, 4)
    """

    num_gates = 3
    name = "gru"

    def init(self, key, input_size: int) -> dict:
        k, k_b = random.split(key)
        params = super().init(k, input_size)
        params["b_h"] = self.b_init(k_b, (3 * self.hidden_size,))
        return params

    def step(self, params, h, x_proj):
        n = self.hidden_size
        hp = h @ params["w_h"] + params["b_h"]
        rz = _gate(x_proj[..., :2 * n] + hp[..., :2 * n])
        cand = fnp.tanh(x_proj[..., 2 * n:] + rz[..., :n] * hp[..., 2 * n:])
        h = cand + rz[..., n:] * (h - cand)
        return h, h

    def recurrence(self, params, xs, keep, carry, *, reverse: bool = False,
                   return_sequences: bool = True, unroll: int = 1):
        """The GRU over time with a hand-written backward pass (see :func:`_gru_scan`)."""
        if reverse:
            xs = fnp.flip(xs, 0)
            keep = None if keep is None else fnp.flip(keep, 0)
        h, ys = _gru_scan(bool(return_sequences), params["w_h"], params["b_h"], xs, carry,
                          () if keep is None else (keep,))
        if reverse and return_sequences:
            ys = fnp.flip(ys, 0)
        return h, (ys if return_sequences else None)


# ---------------------------------------------------------------------------
# GRU with a hand-written backward pass
#
# Differentiating lax.scan automatically re-runs each step's forward pass inside the
# backward loop and computes the recurrent weight gradient one time step at a time.  The
# GRU is the recurrent layer of the ready-made models, so it gets a custom VJP: the
# forward loop keeps each step's gates as residuals; the backward loop does about half
# the operations of the automatic one; the weight gradients are one matrix product over
# all time steps after the loop.  Forward mode (jvp) differentiates the plain loop.


def _gru_forward(with_outputs, w_h, b_h, xp, h0, keep):
    """The GRU loop over projected inputs ``xp`` (T, N, 3H): ``(h_final, ys)`` and the
    per-step residuals ``(h, rz, cand, hpn)``."""
    n = fnp.shape(w_h)[0]
    x_rz = xp[..., :2 * n] + b_h[:2 * n]  # b_hr, b_hz fold into the inputs; only b_hn
    x_n = xp[..., 2 * n:]                 # is multiplied by r, so it stays in the loop
    b_hn = b_h[2 * n:]

    def body(h, inputs):
        xr, xn = inputs[0], inputs[1]
        hp = h @ w_h
        rz = _gate(xr + hp[:, :2 * n])
        hpn = hp[:, 2 * n:] + b_hn
        cand = fnp.tanh(xn + rz[:, :n] * hpn)
        new = cand + rz[:, n:] * (h - cand)
        y = new if with_outputs else None
        if keep:
            k = inputs[2]
            if with_outputs:
                y = fnp.where(k, new, 0)
            new = fnp.where(k, new, h)
        return new, (y, (h, rz, cand, hpn))

    h, (ys, residuals) = lax.scan(body, h0, (x_rz, x_n) + tuple(keep))
    return h, ys, residuals


def _gru_plain(with_outputs, w_h, b_h, xp, h0, keep):
    h, ys, _ = _gru_forward(with_outputs, w_h, b_h, xp, h0, keep)
    return h, ys


_gru_scan = fn.custom_vjp(_gru_plain, nondiff_argnums=(0,))


def _gru_scan_fwd(with_outputs, w_h, b_h, xp, h0, keep):
    h, ys, residuals = _gru_forward(with_outputs, w_h, b_h, xp, h0, keep)
    return (h, ys), (w_h, residuals, keep)


def _gru_scan_bwd(with_outputs, saved, cotangents):
    w_h, (hs, rzs, cands, hpns), keep = saved
    dh_final, dys = cotangents
    n = fnp.shape(w_h)[0]
    w_t = fnp.transpose(w_h)

    def body(dh, inputs):
        h, rz, cand, hpn = inputs[:4]
        rest = list(inputs[4:])
        d = dh
        if with_outputs:
            d = d + rest.pop(0)
        if keep:
            k = rest.pop(0)
            d_new = fnp.where(k, d, 0)      # y and the new carry are h' only where k holds
        else:
            d_new = d
        r, z = rz[:, :n], rz[:, n:]
        d_cand = d_new - d_new * z          # h' = cand + z (h - cand)
        da = d_cand * (1 - cand * cand)     # cand = tanh(a), a = x_n + r * hpn
        d_rz = fnp.concatenate([da * hpn, d_new * (h - cand)], axis=1) * (rz * (1 - rz))
        d_hp = fnp.concatenate([d_rz, da * r], axis=1)   # d(h @ w_h + b_h)
        dh_prev = d_new * z + d_hp @ w_t
        if keep:
            dh_prev = fnp.where(k, dh_prev, dh)  # where k fails the carry passed h through
        return dh_prev, (d_hp, da)

    xs = (hs, rzs, cands, hpns) + ((dys,) if with_outputs else ()) + tuple(keep)
    dh0, (d_hps, d_xn) = lax.scan(body, dh_final, xs, reverse=True)
    t, b = fnp.shape(hs)[:2]
    dw_h = fnp.reshape(hs, (t * b, n)).T @ fnp.reshape(d_hps, (t * b, 3 * n))
    db_h = fnp.sum(d_hps, axis=(0, 1))
    d_xp = fnp.concatenate([d_hps[..., :2 * n], d_xn], axis=2)
    return dw_h, db_h, d_xp, dh0, tuple(None for _ in keep)


def _gru_scan_jvp(with_outputs, primals, tangents):
    w_h, b_h, xp, h0, keep = primals

    def plain(w_h, b_h, xp, h0):
        return _gru_plain(with_outputs, w_h, b_h, xp, h0, keep)

    return fn.jvp(plain, primals[:4], tangents[:4])


_gru_scan.defvjp(_gru_scan_fwd, _gru_scan_bwd)
_gru_scan.defjvp(_gru_scan_jvp)


def RNN(cell: _Cell, *, return_sequences: bool = True, reverse: bool = False,
        unroll: int = 1) -> Layer:
    """Run ``cell`` over the time axis of ``(N, T, F)`` inputs with ``lax.scan``.

    Output ``(N, T, H)`` (every step's hidden state) or, with
    ``return_sequences=False``, the final hidden state ``(N, H)``.
    ``reverse=True`` runs from the last step to the first (outputs stay in
    time order).  ``unroll`` steps run per loop iteration (less loop overhead).

    ``apply(params, x, *, key=None, train=False, mask=None,
    initial_carry=None)``: ``mask`` is a boolean ``(N, T)`` array, true at
    real (not padding) steps; see the module docstring.  Params are the
    cell's.  Differentiable (back-propagation through time), batchable and
    jittable.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> rnn = nn.RNN(nn.LSTMCell(6))
    >>> shape, params = rnn.init(random.key(0), (-1, 10, 4))
    >>> x = fnp.ones((3, 10, 4))
    >>> mask = fnp.arange(10) < fnp.array([[10], [7], [2]])    # lengths 10, 7, 2
    >>> y = rnn.apply(params, x, mask=mask)
    >>> y.shape, float(abs(y[2, 2:]).max())
    ((3, 10, 6), 0.0)
    """
    if not isinstance(cell, _Cell):
        raise TypeError(f"RNN needs a cell (nn.SimpleRNNCell, nn.LSTMCell or nn.GRUCell), got "
                        f"{cell!r}")

    def init(key, input_shape):
        shape = shape_tuple(input_shape, "RNN", ndim=3)
        if not known(shape[-1]):
            raise ValueError(f"RNN: the number of input features must be known, got "
                             f"input_shape {shape}")
        h = cell.hidden_size
        out = shape[:2] + (h,) if return_sequences else (shape[0], h)
        return out, cell.init(key, shape[-1])

    def apply(params, x, *, key=None, train=False, mask=None, initial_carry=None):
        check_ndim(x, 3, "RNN", "(N, T, F)")
        x = fnp.asarray(x)
        n = fnp.shape(x)[0]
        xs = tree.map(lambda a: fnp.swapaxes(a, 0, 1), cell.project(params, x))  # (T, N, .)
        carry = initial_carry
        if carry is None:
            carry = cell.initial_carry((n,), tree.leaves(xs)[0].dtype)
        keep = None
        if mask is not None:
            m = fnp.asarray(mask)
            if tuple(fnp.shape(m)) != tuple(fnp.shape(x)[:2]):
                raise ValueError(f"RNN: mask must have shape (N, T) = {tuple(x.shape[:2])}, "
                                 f"got {tuple(fnp.shape(m))}")
            keep = fnp.expand_dims(fnp.swapaxes(m.astype(bool), 0, 1), -1)  # (T, N, 1)
        carry, ys = cell.recurrence(params, xs, keep, carry, reverse=reverse,
                                    return_sequences=return_sequences, unroll=unroll)
        if not return_sequences:
            return cell.output(carry)
        return fnp.swapaxes(ys, 0, 1)

    return Layer(init, apply, name=cell.name,
                 description=f"RNN({cell!r}{', reverse' if reverse else ''})")
