"""Peephole LSTM (eqs. 7–11) with derivative clipping (Section 2.1), and the deep stack with skip
connections (eqs. 1–2).

Two implementations of one layer live side by side and are proven equal by ``tests/test_lstm.py``:

* the **reference** path, :func:`lstm_cell` stepped over time with plain autograd: a literal
  transcription of eqs. 7–11, with clipping applied by :func:`clip_preactivation` (identity in the
  forward pass, clamps the gradient in the backward pass) to every gate pre-activation;
* the **fused** path, :class:`_FusedPeepholeLSTM`, one ``torch.autograd.Function`` over the whole
  sequence: the input projection for all steps in one matmul, the recurrence run without autograd,
  and a hand-written backpropagation through time that clamps the gate pre-activation gradients as
  it goes and builds every weight gradient with one matmul (or one sum) at the end.

Shapes: T time steps, B batch, I input size, H cells, N layers, E extra input size (see
``docs/internals.md``). Gate order in every weight is i, f, g (= c̃), o, as in ``torch.nn.LSTM``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from graves.nn.clip import clip_gradient

__all__ = [
    "LSTMState",
    "matmul_dtype",
    "matmul_dtype_for",
    "MATMUL_DTYPES",
    "PeepholeLSTM",
    "DeepLSTM",
    "clip_preactivation",
    "lstm_cell",
    "lstm_reference",
    "lstm_fused",
]


class LSTMState(NamedTuple):
    """Recurrent state of one LSTM layer: hidden output ``h (B, H)`` and cell ``c (B, H)``."""

    h: Tensor
    c: Tensor


# --------------------------------------------------------------------------------------------------
# Lower-precision matrix products (a speed option of the fused path; a deviation, off by default)
# --------------------------------------------------------------------------------------------------

#: The dtype the fused paths multiply matrices in, or None for the tensors' own dtype. Set it with
#: :func:`matmul_dtype`; read at each forward, and kept for its backward. A context variable, like
#: ``torch.autocast``'s state, so that a thread (the web page serves from threads) sees only its own.
_MATMUL_DTYPE: contextvars.ContextVar[torch.dtype | None] = contextvars.ContextVar("graves_matmul_dtype",
                                                                                  default=None)

#: What :func:`matmul_dtype` accepts (None and float32 leave float32 work unrounded).
MATMUL_DTYPES: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}


@contextlib.contextmanager
def matmul_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    """Within the block, the fused LSTM paths multiply their matrices in ``dtype`` (``torch.bfloat16``).

    deviation (``train.matmul_dtype``): the operands of the matrix products are rounded (the weights,
    h_{t−1}, the inputs and, in the backward pass, the gate derivatives δ); on the CPU the BLAS (oneDNN)
    accumulates each product in float32 and returns it rounded once to ``dtype`` (on CUDA, cuBLAS may
    reduce partly in bfloat16 unless ``torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction``
    is off), and it is added to float32 pre-activations or gradients. The gates, the cell state, the
    clipping and the weight updates stay in the tensors' own dtype. The speed-up depends on the CPU and
    the sizes (``bench/step_speed.py``, ``bench/lstm_speed.py``; measured in docs/results.md); each
    gradient's relative error was at most 0.5 % in the tests. The reference path (``fused=False``)
    ignores the setting. ``None`` (or ``torch.float32``) restores full precision.
    """
    if dtype not in (None, torch.float32, torch.bfloat16):
        raise ValueError(f"matmul_dtype: expected torch.bfloat16, torch.float32 or None, got {dtype!r}")
    token = _MATMUL_DTYPE.set(None if dtype is torch.float32 else dtype)
    try:
        yield
    finally:
        _MATMUL_DTYPE.reset(token)


def matmul_dtype_for(x: Tensor) -> torch.dtype | None:
    """The dtype a fused path multiplies in for inputs like ``x`` now, or None when it is ``x``'s own."""
    dtype = _MATMUL_DTYPE.get()
    return None if dtype is None or dtype == x.dtype else dtype


# --------------------------------------------------------------------------------------------------
# Derivative clipping (Section 2.1)
# --------------------------------------------------------------------------------------------------


def clip_preactivation(a: Tensor, clip: float | None) -> Tensor:
    """Derivative clipping of a gate pre-activation (Section 2.1).

    Returns ``a`` unchanged; in the backward pass the gradient with respect to ``a`` is clamped
    elementwise to ``[-clip, clip]``. ``clip=None`` is the identity in both passes.
    """
    return clip_gradient(a, clip)


# --------------------------------------------------------------------------------------------------
# Reference path: eqs. 7–11 transcribed, stepped with autograd
# --------------------------------------------------------------------------------------------------


def lstm_cell(
    x_t: Tensor,
    state: LSTMState,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
    clip: float | None = None,
) -> LSTMState:
    """One step of the peephole LSTM (eqs. 7–11), plain autograd.

    Args:
        x_t: ``(B, I)`` input at time t.
        state: ``(h_{t-1}, c_{t-1})``, each ``(B, H)``.
        weight_ih ``(4H, I)``, weight_hh ``(4H, H)``, bias ``(4H)``: gate order i, f, g, o.
        w_ci, w_cf, w_co: ``(H)`` peephole (diagonal) weights.
        clip: derivative clipping bound for the gate pre-activations (Section 2.1), or None.

    Returns:
        ``LSTMState(h_t, c_t)``, each ``(B, H)``.
    """
    h_prev, c_prev = state
    z = torch.addmm(bias, x_t, weight_ih.t()) + h_prev @ weight_hh.t()  # (B, 4H)
    z_i, z_f, z_g, z_o = z.chunk(4, dim=1)  # each (B, H)
    i = torch.sigmoid(clip_preactivation(z_i + w_ci * c_prev, clip))  # (eq. 7)
    f = torch.sigmoid(clip_preactivation(z_f + w_cf * c_prev, clip))  # (eq. 8)
    g = torch.tanh(clip_preactivation(z_g, clip))
    c = f * c_prev + i * g  # (eq. 9)
    o = torch.sigmoid(clip_preactivation(z_o + w_co * c, clip))  # (eq. 10): peephole on the new c_t
    h = o * torch.tanh(c)  # (eq. 11)
    return LSTMState(h, c)


def lstm_reference(
    x: Tensor,
    state: LSTMState,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
    clip: float | None = None,
    x_proj: Tensor | None = None,
) -> tuple[Tensor, LSTMState]:
    """The peephole LSTM over a sequence (eqs. 7–11) by stepping :func:`lstm_cell`.

    Args:
        x: ``(T, B, I)``; state: ``(h_0, c_0)`` each ``(B, H)``; parameters as in :func:`lstm_cell`.
        x_proj: optional ``(T, B, 4H)`` added to the gate pre-activations of each step: an input
            projection computed elsewhere (the text net's one-hot inputs as a column lookup).

    Returns:
        ``h (T, B, H)`` and the final ``LSTMState``.
    """
    outputs = []
    biases = [bias] * x.shape[0] if x_proj is None else (x_proj + bias).unbind(0)  # T × (B, 4H) or (4H)
    for x_t, b_t in zip(x.unbind(0), biases):
        state = lstm_cell(x_t, state, weight_ih, weight_hh, b_t, w_ci, w_cf, w_co, clip)
        outputs.append(state.h)
    if not outputs:
        return x.new_zeros(0, x.shape[1], weight_hh.shape[1]), state
    return torch.stack(outputs), state  # (T, B, H)


# --------------------------------------------------------------------------------------------------
# Fused path: one autograd.Function over the whole sequence with a hand-written BPTT
# --------------------------------------------------------------------------------------------------


class _FusedPeepholeLSTM(torch.autograd.Function):
    """Eqs. 7–11 over a whole sequence; backward is BPTT with derivative clipping (Section 2.1).

    Forward saves the gate activations ``i, f, g, o`` (T, B, 4H), the cells ``c_0..c_T``
    (T+1, B, H), ``tanh(c_t)`` (T, B, H) and the outputs ``h_1..h_T`` (T, B, H).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias, w_ci, w_cf, w_co, clip):  # type: ignore[override]
        T, B, _ = x.shape
        H = weight_hh.shape[1]
        lp = ctx.lp = matmul_dtype_for(x)  # None: full precision
        # The input projection of every step in one matmul: W_x· x_t + b of eqs. 7–10.
        # ``bias`` is (4H), or (T, B, 4H) when a per-step input projection was added to it (x_proj).
        if lp is None:
            G = torch.addmm(bias.reshape(-1, 4 * H), x.reshape(T * B, -1), weight_ih.t()).view(T, B, 4 * H)
        else:  # deviation: train.matmul_dtype, rounded operands, the product added to full-precision b
            G = torch.mm(x.reshape(T * B, -1).to(lp), weight_ih.to(lp).t()).to(x.dtype).add_(bias.reshape(-1, 4 * H))
            G = G.view(T, B, 4 * H)  # (T, B, 4H)
        ctx.bias_shape = bias.shape
        C = x.new_empty(T + 1, B, H)  # (T+1, B, H): c_0 .. c_T
        C[0] = c0
        TC = x.new_empty(T, B, H)  # (T, B, H): tanh(c_t)
        Y = x.new_empty(T, B, H)  # (T, B, H): h_t

        # tanh z is computed as 2σ(2z) − 1, the same function: on CPU torch.tanh costs ~4 sigmoids.
        # So the c̃ pre-activation is carried doubled: its rows of W_hh (a copy) and its slot of G
        # are scaled by 2, and one sigmoid then covers i, f and c̃ together.
        G4 = G.view(T, B, 4, H)
        G4[:, :, 2].mul_(2)
        W_hh2 = weight_hh.clone()  # (4H, H)
        W_hh2[2 * H : 3 * H].mul_(2)
        W_hh2_T = W_hh2.t() if lp is None else W_hh2.t().to(lp)  # (H, 4H)
        w_cif = torch.stack([w_ci, w_cf])  # (2, H): the peepholes into i and f, split once
        m1 = x.new_full((), -1.0)  # 0-dim −1 for the one-op "2s − 1"

        steps = zip(
            G.unbind(0),  # (B, 4H) pre-activations, overwritten in place by the activations
            G[:, :, : 2 * H].view(T, B, 2, H).unbind(0),  # (B, 2, H) the i and f gates
            G[:, :, : 3 * H].unbind(0),  # (B, 3H) i, f, c̃
            G4[:, :, 0].unbind(0),  # (B, H) i
            G4[:, :, 1].unbind(0),  # (B, H) f
            G4[:, :, 2].unbind(0),  # (B, H) c̃
            G4[:, :, 3].unbind(0),  # (B, H) o
            C[:-1].unbind(0),  # (B, H) c_{t-1}
            C[1:].unbind(0),  # (B, H) c_t
            TC.unbind(0),  # (B, H) tanh c_t
            Y.unbind(0),  # (B, H) h_t
        )
        h_prev = h0
        for G_t, IF_t, IFG_t, I_t, F_t, Gg_t, O_t, c_prev, c_t, tc_t, h_t in steps:
            if lp is None:
                G_t.addmm_(h_prev, W_hh2_T)  # + W_h· h_{t-1}                  (eqs. 7–10)
            else:
                G_t.add_(torch.mm(h_prev.to(lp), W_hh2_T))  # deviation: train.matmul_dtype, operands rounded
            IF_t.addcmul_(w_cif, c_prev.unsqueeze(1))  # + w_ci ⊙ c_{t-1}, w_cf ⊙ c_{t-1} (eqs. 7–8)
            IFG_t.sigmoid_()  # i_t, f_t (eqs. 7–8) and σ(2 z_c)
            torch.add(m1, Gg_t, alpha=2, out=Gg_t)  # c̃_t = tanh z_c = 2σ(2 z_c) − 1
            torch.mul(F_t, c_prev, out=c_t).addcmul_(I_t, Gg_t)  # c_t            (eq. 9)
            O_t.addcmul_(w_co, c_t).sigmoid_()  # o_t, peephole on the new c_t (eq. 10)
            torch.add(c_t, c_t, out=tc_t).sigmoid_()
            torch.add(m1, tc_t, alpha=2, out=tc_t)  # tanh c_t
            torch.mul(O_t, tc_t, out=h_t)  # h_t                          (eq. 11)
            h_prev = h_t

        ctx.clip = clip
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, w_ci, w_cf, w_co, G, C, TC, Y)
        c_T = C[T].clone()  # (B, H)
        return Y, c_T

    @staticmethod
    @once_differentiable
    def backward(ctx, dY, dc_T):  # type: ignore[override]
        x, h0, weight_ih, weight_hh, w_ci, w_cf, w_co, G, C, TC, Y = ctx.saved_tensors
        clip = ctx.clip
        T, B, I = x.shape
        H = weight_hh.shape[1]
        if dY is None:
            dY = torch.zeros_like(Y)
        dc = torch.zeros_like(h0) if dc_T is None else dc_T.clone()  # (B, H): ∂L/∂c_t flowing back
        dc_prev = torch.empty_like(dc)  # (B, H)

        D = torch.empty_like(G)  # (T, B, 4H): δ_t = ∂L/∂(gate pre-activations at t), after the clamp
        D4, G4 = D.view(T, B, 4, H), G.view(T, B, 4, H)
        u = torch.empty_like(h0)  # (B, H) scratch
        v = torch.empty_like(h0)  # (B, H) scratch
        s = h0.new_empty(B, 2 * H)  # (B, 2H) scratch: σ' of i and f
        s2 = s.view(B, 2, H)
        ones = torch.ones_like(h0)  # (B, H)

        steps = zip(
            reversed(D.unbind(0)),  # (B, 4H) δ_t
            reversed(D[:, :, : 2 * H].view(T, B, 2, H).unbind(0)),  # (B, 2, H) δi, δf
            reversed(D[:, :, : 3 * H].unbind(0)),  # (B, 3H) δi, δf, δc̃
            reversed(D4[:, :, 0].unbind(0)),  # (B, H) δi
            reversed(D4[:, :, 1].unbind(0)),  # (B, H) δf
            reversed(D4[:, :, 2].unbind(0)),  # (B, H) δc̃
            reversed(D4[:, :, 3].unbind(0)),  # (B, H) δo
            reversed(G[:, :, : 2 * H].unbind(0)),  # (B, 2H) i, f
            reversed(G4[:, :, 0].unbind(0)),  # (B, H) i
            reversed(G4[:, :, 1].unbind(0)),  # (B, H) f
            reversed(G4[:, :, 2].unbind(0)),  # (B, H) c̃
            reversed(G4[:, :, 3].unbind(0)),  # (B, H) o
            reversed(C[:-1].unbind(0)),  # (B, H) c_{t-1}
            reversed(TC.unbind(0)),  # (B, H) tanh c_t
            reversed(Y.unbind(0)),  # (B, H) h_t
            reversed(dY.unbind(0)),  # (B, H) ∂L/∂h_t from above
        )
        lp = ctx.lp
        W_hh_lp = None if lp is None else weight_hh.to(lp)
        delta_next = None  # δ_{t+1}, (B, 4H)
        for delta, d_if, d_ifg, d_i, d_f, d_g, d_o, IF_t, i, f, g, o, c_prev, tc, h, dY_t in steps:
            # ∂L/∂h_t = output gradient + recurrent gradient W_hh^T δ_{t+1}
            if delta_next is None:
                dh = dY_t
            elif lp is None:
                dh = torch.addmm(dY_t, delta_next, weight_hh)  # (B, H)
            else:
                dh = torch.add(dY_t, torch.mm(delta_next.to(lp), W_hh_lp))  # deviation: train.matmul_dtype; float32 sum
            # o gate (eqs. 10–11): δo = ∂L/∂h_t ⊙ tanh c_t ⊙ o(1 − o), clamped (Section 2.1)
            torch.addcmul(o, o, o, value=-1, out=u)  # σ'(o) = o(1 − o)
            torch.mul(dh, tc, out=d_o).mul_(u)
            if clip is not None:
                d_o.clamp_(-clip, clip)
            # ∂L/∂c_t += ∂L/∂h_t ⊙ o(1 − tanh² c_t) + w_co ⊙ δo   (eqs. 10–11)
            torch.addcmul(o, h, tc, value=-1, out=v)  # o − h tanh c_t = o(1 − tanh² c_t)
            dc.addcmul_(dh, v).addcmul_(d_o, w_co)
            # i, f, c̃ (eqs. 7–9): δ = ∂L/∂c_t ⊙ (c̃_t, c_{t-1}, i_t) ⊙ activation derivative
            torch.addcmul(IF_t, IF_t, IF_t, value=-1, out=s)  # σ' = s(1 − s) for i and f
            torch.mul(s2, dc.unsqueeze(1), out=d_if)  # ∂L/∂c_t ⊙ σ' for i and f
            d_i.mul_(g)  # δi
            d_f.mul_(c_prev)  # δf
            torch.addcmul(ones, g, g, value=-1, out=u)  # tanh' = 1 − c̃²
            torch.mul(dc, i, out=d_g).mul_(u)  # δc̃
            if clip is not None:
                d_ifg.clamp_(-clip, clip)
            # ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ f_t + w_ci ⊙ δi + w_cf ⊙ δf   (eqs. 7–8)
            torch.mul(dc, f, out=dc_prev).addcmul_(d_i, w_ci).addcmul_(d_f, w_cf)
            dc, dc_prev = dc_prev, dc
            delta_next = delta

        dG = D.view(T * B, 4 * H)  # (T·B, 4H): every δ_t
        needs = ctx.needs_input_grad
        dx = dh0 = dc0 = dW_ih = dW_hh = db = dw_ci = dw_cf = dw_co = None
        if lp is None:
            if needs[0]:
                dx = (dG @ weight_ih).view(T, B, I)  # (T, B, I)
            if needs[3]:
                dW_ih = (x.reshape(T * B, I).t() @ dG).t()  # (4H, I); this operand order is much faster for small I
            if needs[4]:
                # Σ_t δ_t h_{t-1}^T with h_0 at t = 1, then the outputs h_1..h_{T-1}
                dW_hh = torch.mm(D[0].t(), h0)  # (4H, H)
                if T > 1:
                    dW_hh.addmm_(D[1:].reshape(-1, 4 * H).t(), Y[:-1].reshape(-1, H))
        else:  # the same products with operands rounded to lp, the results back in x's dtype
            dG_lp = dG.to(lp) if needs[0] or needs[3] or needs[4] else None
            if needs[0]:
                dx = (dG_lp @ weight_ih.to(lp)).view(T, B, I).to(x.dtype)
            if needs[3]:
                dW_ih = (x.reshape(T * B, I).to(lp).t() @ dG_lp).t().to(x.dtype)
            if needs[4]:
                Hprev = torch.cat([h0.unsqueeze(0).to(lp), Y[:-1].to(lp)]).reshape(-1, H)  # h_0..h_{T-1}
                dW_hh = torch.mm(dG_lp.t(), Hprev).to(x.dtype)
        if needs[1]:
            dh0 = delta_next @ weight_hh  # (B, H)
        if needs[2]:
            dc0 = dc
        if needs[5]:
            db = dG.sum(0) if len(ctx.bias_shape) == 1 else dG.view(ctx.bias_shape).clone()  # (4H) or (T, B, 4H)
        # peephole grads Σ_{t,b} δ ⊙ c; D is not needed any more, so the products overwrite it
        if needs[6]:
            dw_ci = D4[:, :, 0].mul_(C[:-1]).sum((0, 1))  # (H)
        if needs[7]:
            dw_cf = D4[:, :, 1].mul_(C[:-1]).sum((0, 1))  # (H)
        if needs[8]:
            dw_co = D4[:, :, 3].mul_(C[1:]).sum((0, 1))  # (H)
        return dx, dh0, dc0, dW_ih, dW_hh, db, dw_ci, dw_cf, dw_co, None


def lstm_fused(
    x: Tensor,
    state: LSTMState,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
    clip: float | None = None,
    x_proj: Tensor | None = None,
) -> tuple[Tensor, LSTMState]:
    """Same maths and signature as :func:`lstm_reference`, computed by the fused BPTT Function."""
    if x.shape[0] == 0:
        return x.new_zeros(0, x.shape[1], weight_hh.shape[1]), state
    if x_proj is not None:
        bias = x_proj + bias  # (T, B, 4H): autograd splits the gradient between the two
    h0, c0 = state
    Y, c_T = _FusedPeepholeLSTM.apply(
        x, h0, c0, weight_ih, weight_hh, bias, w_ci, w_cf, w_co, None if clip is None else float(clip)
    )
    return Y, LSTMState(Y[-1], c_T)


# --------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------


class PeepholeLSTM(nn.Module):
    """One layer of peephole LSTM cells (eqs. 7–11) with derivative clipping (Section 2.1).

    Args:
        input_size: I.
        hidden_size: H.
        clip: bound a for the gate pre-activation gradients, clamped to [-a, a] at every step of
            the backward pass; None disables.
        fused: run :meth:`forward` through the fused BPTT Function (True) or the autograd
            reference loop (False). Both compute the same values and gradients.

    Parameters: ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias (4H)`` (gate order i, f, g, o)
    and the peephole vectors ``w_ci, w_cf, w_co (H)``. All are initialised uniform on
    ``[-1/sqrt(H), 1/sqrt(H)]``, as ``torch.nn.LSTM`` does (the paper gives no initialisation).
    """

    def __init__(self, input_size: int, hidden_size: int, clip: float | None = None, fused: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.clip = clip
        self.fused = fused
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        self.bias = nn.Parameter(torch.empty(4 * H))
        self.w_ci = nn.Parameter(torch.empty(H))
        self.w_cf = nn.Parameter(torch.empty(H))
        self.w_co = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, clip={self.clip}, fused={self.fused}"

    def zero_state(self, batch_size: int, device=None, dtype=None) -> LSTMState:
        """``LSTMState`` of zeros, each ``(B, H)``, on the parameters' device/dtype by default."""
        device = self.weight_hh.device if device is None else device
        dtype = self.weight_hh.dtype if dtype is None else dtype
        z = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return LSTMState(z, z.clone())

    def _params(self) -> tuple[Tensor, ...]:
        return (self.weight_ih, self.weight_hh, self.bias, self.w_ci, self.w_cf, self.w_co)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """Run the layer over a sequence.

        Args:
            x: ``(T, B, I)``.
            state: ``LSTMState(h_0, c_0)`` each ``(B, H)``, or None for zeros. Gradients flow into it.

        Returns:
            ``h (T, B, H)`` (h_1..h_T) and the final ``LSTMState(h_T, c_T)``.
        """
        if state is None:
            state = self.zero_state(x.shape[1], x.device, x.dtype)
        run = lstm_fused if self.fused else lstm_reference
        return run(x, LSTMState(*state), *self._params(), self.clip)

    def step(self, x_t: Tensor, state: LSTMState | None = None) -> LSTMState:
        """One time step (eqs. 7–11) with plain autograd: ``x_t (B, I)`` → ``LSTMState`` each (B, H)."""
        if state is None:
            state = self.zero_state(x_t.shape[0], x_t.device, x_t.dtype)
        return lstm_cell(x_t, LSTMState(*state), *self._params(), self.clip)


class DeepLSTM(nn.Module):
    """N stacked peephole LSTM layers with skip connections (eqs. 1–2, Fig. 1).

    Layer 1 reads ``[x_t, extra_t]`` (eq. 1); layer n > 1 reads ``[x_t, h^{n-1}_t, extra_t]`` (eq. 2),
    so the input feeds every layer. The output ``h_all`` concatenates every layer's ``h^n_t``, ready
    for the single output layer of eq. 3.

    Args:
        input_size: I.  hidden_size: H.  num_layers: N.
        extra_size: E, an extra input given to every layer (e.g. the soft window w_t of §5), or 0.
        clip, fused: as in :class:`PeepholeLSTM`, for every layer.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        extra_size: int = 0,
        clip: float | None = None,
        fused: bool = True,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.extra_size = extra_size
        self.layers = nn.ModuleList(
            PeepholeLSTM(input_size + (hidden_size if n > 0 else 0) + extra_size, hidden_size, clip, fused)
            for n in range(num_layers)
        )

    def zero_state(self, batch_size: int, device=None, dtype=None) -> list[LSTMState]:
        """One zero ``LSTMState`` per layer, each tensor ``(B, H)``."""
        return [layer.zero_state(batch_size, device, dtype) for layer in self.layers]

    def _check(self, x: Tensor, state: list[LSTMState] | None, extra: Tensor | None) -> list[LSTMState]:
        """Validate the arguments of forward/step; return the state (zeros when None)."""
        if (extra is None) != (self.extra_size == 0):
            raise ValueError(f"an extra input is required iff extra_size > 0 (extra_size={self.extra_size})")
        batch = x.shape[-2]
        if state is None:
            return self.zero_state(batch, x.device, x.dtype)
        if len(state) != self.num_layers:
            raise ValueError(f"expected a state for each of {self.num_layers} layers, got {len(state)}")
        return [LSTMState(*s) for s in state]

    def forward(
        self, x: Tensor, state: list[LSTMState] | None = None, extra: Tensor | None = None
    ) -> tuple[Tensor, list[LSTMState]]:
        """Run the stack over a sequence.

        Args:
            x: ``(T, B, I)``.
            state: one ``LSTMState`` per layer, or None for zeros.
            extra: ``(T, B, E)`` when ``extra_size > 0``, else None.

        Returns:
            ``h_all (T, B, N·H)`` (layer 1 first) and the final state of each layer.
        """
        state = self._check(x, state, extra)
        outputs, new_state = [], []
        for n, (layer, s) in enumerate(zip(self.layers, state)):
            parts = [x] + ([outputs[-1]] if n > 0 else []) + ([extra] if extra is not None else [])
            inp = torch.cat(parts, dim=2) if len(parts) > 1 else x  # (T, B, I [+ H] [+ E])
            h, s_new = layer(inp, s)  # (T, B, H)   (eqs. 1–2)
            outputs.append(h)
            new_state.append(s_new)
        return torch.cat(outputs, dim=2), new_state  # (T, B, N·H)

    def step(
        self, x_t: Tensor, state: list[LSTMState] | None = None, extra_t: Tensor | None = None
    ) -> tuple[Tensor, list[LSTMState]]:
        """One time step of the stack: ``x_t (B, I)``, ``extra_t (B, E)`` → ``(h_all_t (B, N·H), state)``."""
        state = self._check(x_t, state, extra_t)
        outputs, new_state = [], []
        for n, (layer, s) in enumerate(zip(self.layers, state)):
            parts = [x_t] + ([outputs[-1]] if n > 0 else []) + ([extra_t] if extra_t is not None else [])
            inp = torch.cat(parts, dim=1) if len(parts) > 1 else x_t  # (B, I [+ H] [+ E])
            s_new = layer.step(inp, s)  # (eqs. 1–2, 7–11)
            outputs.append(s_new.h)  # (B, H)
            new_state.append(s_new)
        return torch.cat(outputs, dim=1), new_state  # (B, N·H)
