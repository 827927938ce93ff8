"""The handwriting networks: the prediction net (Section 4) and the synthesis net (Section 5).

Both are deep peephole LSTMs with skip connections (eqs. 1–3, 7–11) whose output layer parameterises
a mixture density over the next pen offset (eq. 17, read by :mod:`graves.nn.mixture`, eqs. 18–26).
The derivatives of the loss with respect to the outputs ŷ_t are clipped to [−output_clip, output_clip]
and those reaching the LSTM gate pre-activations to [−lstm_clip, lstm_clip] (Sections 2.1, 4.2).

Shapes (see ``docs/internals.md``): T time steps, B batch, U characters, V alphabet size, H cells per
layer, N layers, M mixture components, K window components. The inputs ``x (T, B, 3)`` are pen offsets
(dx, dy, eos) with the null first input x_1 = 0 already in place (the task builds them); ``ŷ_t`` is the
prediction of x_{t+1}.

The models hold no recurrent state: it is passed in and returned, so training, sampling (``step``),
priming and evaluation share one definition. ``step`` gives the same outputs as ``forward`` run over
the same inputs (tested).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graves.config import ModelConfig
from graves.nn.clip import clip_gradient
from graves.nn.lstm import DeepLSTM, LSTMState, clip_preactivation, matmul_dtype_for
from graves.nn.window import SoftWindow, window_params, window_phi, window_vector

__all__ = [
    "HandwritingPredictor",
    "HandwritingSynthesizer",
    "INPUT_SIZE",
    "Layer1Weights",
    "SynthState",
    "layer1_window_fused",
    "layer1_window_reference",
    "layer1_window_step",
]

INPUT_SIZE = 3  # (dx, dy, eos)


def _output_size(M: int) -> int:
    return 1 + 6 * M  # ê, π̂ (M), μ̂ (2M), σ̂ (2M), ρ̂ (M)  (eq. 17)


class HandwritingPredictor(nn.Module):
    """Handwriting prediction network (Section 4): ``DeepLSTM(3, H, N)`` + ``Linear(N·H, 1 + 6M)``.

    Args:
        cfg: ``hidden_size`` H, ``num_layers`` N, ``mixtures`` M, ``lstm_clip``, ``output_clip``, ``fused``.

    3 × 400 cells with M = 20: 3,368,121 weights; 1 × 900: 3,366,121 (the paper: "≈3.4M" each).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        H, N, M = cfg.hidden_size, cfg.num_layers, cfg.mixtures
        self.lstm = DeepLSTM(INPUT_SIZE, H, N, clip=cfg.lstm_clip, fused=cfg.fused)  # (eqs. 1–2)
        self.output = nn.Linear(N * H, _output_size(M))  # b_y + Σ_n W_{hn y} h^n_t  (eq. 3)

    def zero_state(self, batch_size: int, device=None, dtype=None) -> list[LSTMState]:
        """One zero ``LSTMState`` per layer, each tensor ``(B, H)``."""
        return self.lstm.zero_state(batch_size, device, dtype)

    def forward(self, x: Tensor, state: list[LSTMState] | None = None) -> tuple[Tensor, list[LSTMState]]:
        """Run the net over a sequence.

        Args:
            x: ``(T, B, 3)`` inputs x_1..x_T (x_1 = 0 at the start of a line).
            state: one ``LSTMState`` per layer, or None for zeros.

        Returns:
            ``y_hat (T, B, 1 + 6M)`` (ŷ_t predicts x_{t+1}) and the final state.
        """
        h_all, state = self.lstm(x, state)  # (T, B, N·H)  (eqs. 1–2)
        y_hat = self.output(h_all)  # (T, B, 1 + 6M)  (eq. 3)
        return clip_gradient(y_hat, self.cfg.output_clip), state  # dL/dŷ clipped (Section 4.2)

    def step(self, x_t: Tensor, state: list[LSTMState] | None = None) -> tuple[Tensor, list[LSTMState]]:
        """One time step: ``x_t (B, 3)`` → ``(y_hat_t (B, 1 + 6M), state)``."""
        h_all, state = self.lstm.step(x_t, state)  # (B, N·H)
        y_hat = self.output(h_all)  # (B, 1 + 6M)  (eq. 3)
        return clip_gradient(y_hat, self.cfg.output_clip), state


# --------------------------------------------------------------------------------------------------
# Layer 1 and the soft window, stepped together (eqs. 52, 7–11, 46–51)
#
# Two implementations, proven equal in tests/test_handwriting_models.py (values and gradients):
#
# * the reference, :func:`layer1_window_step` applied step by step with plain autograd (also used by
#   ``HandwritingSynthesizer.step``);
# * the fused path, :class:`_FusedLayer1Window`: one autograd Function over the whole sequence. Its
#   forward runs without building a graph; its backward is a hand-written BPTT through the LSTM cell
#   (with the gate-derivative clipping of Section 2.1) and the window (the gradients of eqs. 56–60),
#   and builds every weight gradient with one matmul at the end.
#
# Both take layer 1's input projection of x for every step precomputed in one matmul,
# gx_t = W_{i h1} x_t + b^1, so a step only adds the recurrent terms W_{h1 h1} h_{t−1} + W_{w h1} w_{t−1}.
# --------------------------------------------------------------------------------------------------


#: Numerical guard in the fused window: a bump's exponent β(κ − u)² is capped at 80 (e^−80 ≈ 1.8e−35), so
#: a far-away bump contributes at most α·1.8e−35 instead of underflowing to (nearly) 0. Not a modelling
#: change, but float32 exp of arguments below −87 takes a slow path on x86 CPUs (measured 10–30× slower),
#: and most of a long text is that far from the window.
_MAX_EXP_ARG = 80.0


class Layer1Weights(NamedTuple):
    """Layer 1's recurrent weights and the window layer's, split once per call (not per step).

    ``W_hh (4H, H)`` = W_{h1 h1}; ``W_w (4H, V)`` = W_{w h1}; ``w_ci, w_cf, w_co (H)`` peepholes;
    ``W_p (3K, H)``, ``b_p (3K)`` the window parameters' layer (eq. 48).
    """

    W_hh: Tensor
    W_w: Tensor
    w_ci: Tensor
    w_cf: Tensor
    w_co: Tensor
    W_p: Tensor
    b_p: Tensor


def layer1_window_step(
    gx_t: Tensor,
    h_prev: Tensor,
    c_prev: Tensor,
    kappa_prev: Tensor,
    w_prev: Tensor,
    c: Tensor,
    p: Layer1Weights,
    clip: float | None,
    U_phi: int | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One step of layer 1 and the soft window with plain autograd (the reference path).

    Args:
        gx_t: ``(B, 4H)`` W_{i h1} x_t + b^1.
        h_prev, c_prev: ``(B, H)`` layer 1's state; kappa_prev ``(B, K)`` κ_{t−1}; w_prev ``(B, V)`` w_{t−1}.
        c: ``(B, U, V)`` the one-hot text.
        p: the weights; clip: the gate-derivative clipping bound (Section 2.1) or None.
        U_phi: positions at which φ is returned (default U; U + 1 for the end-of-text rule).

    Returns:
        h^1_t ``(B, H)``, c^1_t ``(B, H)``, κ_t ``(B, K)``, w_t ``(B, V)``, φ(t, ·) ``(B, U_phi)``.
    """
    z = torch.addmm(torch.addmm(gx_t, w_prev, p.W_w.t()), h_prev, p.W_hh.t())  # (B, 4H)  (eq. 52)
    z_i, z_f, z_g, z_o = z.chunk(4, dim=1)  # each (B, H)
    i = torch.sigmoid(clip_preactivation(torch.addcmul(z_i, p.w_ci, c_prev), clip))  # (eq. 7)
    f = torch.sigmoid(clip_preactivation(torch.addcmul(z_f, p.w_cf, c_prev), clip))  # (eq. 8)
    g = torch.tanh(clip_preactivation(z_g, clip))
    cell = torch.addcmul(f * c_prev, i, g)  # (eq. 9)
    o = torch.sigmoid(clip_preactivation(torch.addcmul(z_o, p.w_co, cell), clip))  # (eq. 10): new c_t
    h = o * torch.tanh(cell)  # (eq. 11)
    p_hat = F.linear(h, p.W_p, p.b_p)  # (B, 3K)  (eq. 48)
    alpha, beta, kappa = window_params(p_hat, kappa_prev)  # each (B, K)  (eqs. 49–51)
    U = c.shape[1]
    phi = window_phi(alpha, beta, kappa, U if U_phi is None else U_phi)  # (B, U_phi)  (eq. 46)
    w = window_vector(phi[:, :U], c)  # (B, V)  (eq. 47)
    return h, cell, kappa, w, phi


def layer1_window_reference(
    gx: Tensor, h0: Tensor, c0: Tensor, kappa0: Tensor, w0: Tensor, c: Tensor, p: Layer1Weights,
    clip: float | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Layer 1 and the window over a sequence by stepping :func:`layer1_window_step`.

    Args:
        gx: ``(T, B, 4H)``; h0, c0 ``(B, H)``; kappa0 ``(B, K)``; w0 ``(B, V)``; c ``(B, U, V)``.

    Returns:
        ``h (T, B, H)`` h^1_1..h^1_T, ``w (T, B, V)`` w_1..w_T, ``phi (T, B, U)``, c^1_T ``(B, H)``, κ_T ``(B, K)``.
    """
    h, cell, kappa, w = h0, c0, kappa0, w0
    hs, ws, phis = [], [], []
    for gx_t in gx.unbind(0):
        h, cell, kappa, w, phi = layer1_window_step(gx_t, h, cell, kappa, w, c, p, clip)
        hs.append(h)
        ws.append(w)
        phis.append(phi)
    return torch.stack(hs), torch.stack(ws), torch.stack(phis), cell, kappa


class _FusedLayer1Window(torch.autograd.Function):
    """Layer 1 (eqs. 52, 7–11) and the soft window (eqs. 46–51) over a sequence, with a hand-written BPTT.

    Saved for backward: the gate activations i, f, c̃, o ``(T, B, 4H)``; c_0..c_T ``(T+1, B, H)``;
    tanh(c_t) ``(T, B, H)``; h_1..h_T ``(T, B, H)``; exp(p̂_t) = (α_t, β_t, exp(κ̂_t)) ``(T, B, 3K)``;
    κ_0..κ_T ``(T+1, B, K)``; w_0..w_T ``(T+1, B, V)``. The Gaussian bumps of eq. 46 are recomputed in
    backward rather than stored (they are (T, B, K, U)).
    """

    @staticmethod
    def forward(ctx, gx, h0, c0, kappa0, w0, c, W_hh, W_w, w_ci, w_cf, w_co, W_p, b_p, clip):  # type: ignore[override]
        T, B, _ = gx.shape
        H = W_hh.shape[1]
        K = kappa0.shape[1]
        U, V = c.shape[1], c.shape[2]
        u = torch.arange(1, U + 1, device=gx.device, dtype=gx.dtype)  # (U,) text positions (eq. 46)
        G = gx.clone()  # (T, B, 4H): pre-activations, overwritten in place by the activations
        C = gx.new_empty(T + 1, B, H)  # c_0..c_T
        C[0] = c0
        TC = gx.new_empty(T, B, H)  # tanh(c_t)
        Hs = gx.new_empty(T, B, H)  # h_1..h_T
        P = gx.new_empty(T, B, 3 * K)  # exp(p̂_t) = α_t | β_t | exp(κ̂_t)
        Kap = gx.new_empty(T + 1, B, K)  # κ_0..κ_T
        Kap[0] = kappa0
        Ws = gx.new_empty(T + 1, B, V)  # w_0..w_T
        Ws[0] = w0
        Phi = gx.new_empty(T, B, U)  # φ(t, u)
        W_hh_T, W_w_T, W_p_T = W_hh.t(), W_w.t(), W_p.t()
        # deviation: train.matmul_dtype (graves.nn.lstm.matmul_dtype): the recurrent product h_{t−1}·W_hh, the largest,
        # on operands rounded to lp; the small window products stay in full precision
        lp = ctx.lp = matmul_dtype_for(gx)
        W_hh_lp_T = None if lp is None else W_hh_T.to(lp)
        G4 = G.view(T, B, 4, H)
        P3 = P.view(T, B, 3, K)
        steps = zip(
            G.unbind(0), G[:, :, : 2 * H].unbind(0), G4[:, :, 0].unbind(0), G4[:, :, 1].unbind(0),
            G4[:, :, 2].unbind(0), G4[:, :, 3].unbind(0), C[:-1].unbind(0), C[1:].unbind(0), TC.unbind(0),
            Hs.unbind(0), P.unbind(0), P3[:, :, 0].unbind(0), P3[:, :, 1].unbind(0), P3[:, :, 2].unbind(0),
            Kap[:-1].unbind(0), Kap[1:].unbind(0), Ws[:-1].unbind(0), Ws[1:].unbind(0), Phi.unbind(0),
        )
        h_prev = h0
        for (G_t, IF_t, I_t, F_t, Gg_t, O_t, c_prev, c_t, tc_t, h_t, P_t, alpha, beta, dk,
             kappa_prev, kappa_t, w_prev, w_t, phi_t) in steps:
            if lp is None:
                G_t.addmm_(h_prev, W_hh_T)  # + W_{h1 h1} h_{t−1}  (eq. 52)
            else:
                G_t.add_(torch.mm(h_prev.to(lp), W_hh_lp_T))  # the same, operands rounded to lp
            G_t.addmm_(w_prev, W_w_T)  # + W_{w h1} w_{t−1}  (eq. 52)
            I_t.addcmul_(w_ci, c_prev)  # (eq. 7)
            F_t.addcmul_(w_cf, c_prev)  # (eq. 8)
            IF_t.sigmoid_()  # i_t, f_t
            Gg_t.tanh_()  # c̃_t
            torch.mul(F_t, c_prev, out=c_t)
            c_t.addcmul_(I_t, Gg_t)  # (eq. 9)
            O_t.addcmul_(w_co, c_t).sigmoid_()  # (eq. 10): peephole on the new c_t
            torch.tanh(c_t, out=tc_t)
            torch.mul(O_t, tc_t, out=h_t)  # (eq. 11)
            torch.addmm(b_p, h_t, W_p_T, out=P_t).exp_()  # α, β, exp(κ̂) (eqs. 48–50)
            torch.add(kappa_prev, dk, out=kappa_t)  # κ_t = κ_{t−1} + exp(κ̂_t)  (eq. 51)
            d = kappa_t.unsqueeze(2) - u  # (B, K, U)  κ − u
            e_arg = d.square_().mul_(beta.unsqueeze(2)).clamp_(max=_MAX_EXP_ARG).neg_()  # β(κ − u)², guarded
            bump = torch.exp(e_arg).mul_(alpha.unsqueeze(2))  # α exp(−β(κ − u)²), (B, K, U)
            torch.sum(bump, dim=1, out=phi_t)  # φ(t, u)  (eq. 46)
            torch.bmm(phi_t.unsqueeze(1), c, out=w_t.unsqueeze(1))  # w_t = Σ_u φ(t, u) c_u  (eq. 47)
            h_prev = h_t

        ctx.clip = clip
        ctx.save_for_backward(h0, c, W_hh, W_w, w_ci, w_cf, w_co, W_p, G, C, TC, Hs, P, Kap, Ws, u)
        return Hs, Ws[1:], Phi, C[T].clone(), Kap[T].clone()

    @staticmethod
    def backward(ctx, dHs, dWs, dPhi, dc_T, dkappa_T):  # type: ignore[override]
        h0, c, W_hh, W_w, w_ci, w_cf, w_co, W_p, G, C, TC, Hs, P, Kap, Ws, u = ctx.saved_tensors
        clip = ctx.clip
        T, B, H4 = G.shape
        H = H4 // 4
        K = P.shape[2] // 3
        dc = torch.zeros_like(h0) if dc_T is None else dc_T.clone()  # ∂L/∂c_t, (B, H)
        dkappa = torch.zeros_like(Kap[0]) if dkappa_T is None else dkappa_T.clone()  # ∂L/∂κ_t, (B, K)
        dG = torch.empty_like(G)  # (T, B, 4H): ∂L/∂(gate pre-activations), clamped
        dP = torch.empty_like(P)  # (T, B, 3K): ∂L/∂p̂_t
        G4, dG4 = G.view(T, B, 4, H), dG.view(T, B, 4, H)
        P3, dP3 = P.view(T, B, 3, K), dP.view(T, B, 3, K)
        zeros_w = Ws.new_zeros(Ws.shape[1:])
        c_vu = c.transpose(1, 2).contiguous()  # (B, V, U): row-vector products below are fast bmm's
        s = h0.new_empty(B, 2 * H)
        tmp = torch.empty_like(h0)
        ones = torch.ones_like(h0)
        lp = ctx.lp
        W_hh_lp = None if lp is None else W_hh.to(lp)
        rev = lambda t: reversed(t.unbind(0))  # noqa: E731
        steps = zip(
            rev(dG), rev(dG[:, :, : 2 * H]), rev(dG[:, :, : 3 * H]), rev(dG4[:, :, 0]), rev(dG4[:, :, 1]),
            rev(dG4[:, :, 2]), rev(dG4[:, :, 3]), rev(G[:, :, : 2 * H]), rev(G4[:, :, 0]), rev(G4[:, :, 1]),
            rev(G4[:, :, 2]), rev(G4[:, :, 3]), rev(C[:-1]), rev(TC), rev(Hs), rev(P3[:, :, 0]),
            rev(P3[:, :, 1]), rev(P3[:, :, 2]), rev(Kap[1:]), rev(dP), rev(dP3[:, :, 0]), rev(dP3[:, :, 1]),
            rev(dP3[:, :, 2]),
            reversed(dHs.unbind(0)) if dHs is not None else iter(lambda: None, 0),
            reversed(dWs.unbind(0)) if dWs is not None else iter(lambda: None, 0),
            reversed(dPhi.unbind(0)) if dPhi is not None else iter(lambda: None, 0),
        )
        dG_next = None  # ∂L/∂(pre-activations) at t + 1
        for (dG_t, dIF_t, dIFG_t, dI_t, dF_t, dGg_t, dO_t, IF_t, i, f, g, o, c_prev, tc, h, alpha, beta, dk,
             kappa_t, dP_t, dalpha_hat, dbeta_hat, dkappa_hat, dH_t, dW_t, dPhi_t) in steps:
            # ∂L/∂w_t: layers 2..N at t (outside) + layer 1 at t + 1 (eq. 52)
            dw = zeros_w if dW_t is None else dW_t
            if dG_next is not None:
                dw = torch.addmm(dw, dG_next, W_w)  # (B, V)
            # the window (eqs. 46–47, gradients eqs. 56–60)
            dphi = torch.bmm(dw.unsqueeze(1), c_vu).squeeze(1)  # Σ_v c_{u v} ∂L/∂w_v, (B, U)
            if dPhi_t is not None:
                dphi = dphi + dPhi_t
            d = kappa_t.unsqueeze(2) - u  # (B, K, U)
            d2 = d * d
            e_arg = torch.mul(d2, beta.unsqueeze(2)).clamp_(max=_MAX_EXP_ARG).neg_()  # as in forward
            eps = torch.exp(e_arg).mul_(alpha.unsqueeze(2)).mul_(dphi.unsqueeze(1))  # (B, K, U)  (eq. 56)
            torch.sum(eps, dim=2, out=dalpha_hat)  # (eq. 57)
            torch.sum(eps * d2, dim=2, out=dbeta_hat).mul_(beta).neg_()  # (eq. 58)
            dkappa.addcmul_(torch.sum(eps * d, dim=2), beta, value=-2.0)  # (eq. 59): own term + κ_{t+1}'s
            torch.mul(dkappa, dk, out=dkappa_hat)  # (eq. 60)
            # ∂L/∂h_t = outside + window (eq. 48) + recurrence into t + 1
            dh = torch.mm(dP_t, W_p) if dH_t is None else torch.addmm(dH_t, dP_t, W_p)  # (B, H)
            if dG_next is not None:
                if lp is None:
                    dh.addmm_(dG_next, W_hh)
                else:
                    dh.add_(torch.mm(dG_next.to(lp), W_hh_lp))  # the same, operands rounded to lp
            # the LSTM cell (eqs. 7–11), gate derivatives clipped (Section 2.1)
            torch.mul(dh, tc, out=dO_t)
            torch.addcmul(o, o, o, value=-1, out=tmp)  # o(1 − o)
            dO_t.mul_(tmp)
            if clip is not None:
                dO_t.clamp_(-clip, clip)
            torch.addcmul(o, h, tc, value=-1, out=tmp)  # o − h tanh c = o(1 − tanh² c)
            dc.addcmul_(dh, tmp).addcmul_(dO_t, w_co)
            torch.mul(dc, g, out=dI_t)
            torch.mul(dc, c_prev, out=dF_t)
            torch.mul(dc, i, out=dGg_t)
            torch.addcmul(IF_t, IF_t, IF_t, value=-1, out=s)  # σ' for i and f
            dIF_t.mul_(s)
            torch.addcmul(ones, g, g, value=-1, out=tmp)  # tanh' = 1 − c̃²
            dGg_t.mul_(tmp)
            if clip is not None:
                dIFG_t.clamp_(-clip, clip)
            dc.mul_(f).addcmul_(dI_t, w_ci).addcmul_(dF_t, w_cf)  # ∂L/∂c_{t−1}
            dG_next = dG_t

        needs = ctx.needs_input_grad
        dG2 = dG.view(T * B, H4)
        dgx = dG if needs[0] else None
        dh0 = dG_next @ W_hh if needs[1] else None
        dc0 = dc if needs[2] else None
        dkappa0 = dkappa if needs[3] else None
        dw0 = dG_next @ W_w if needs[4] else None
        dW_hh = dW_w = dw_ci = dw_cf = dw_co = dW_p = db_p = None
        if needs[6] and lp is None:
            dW_hh = torch.mm(dG[0].t(), h0)  # Σ_t δ_t h_{t−1}ᵀ
            if T > 1:
                dW_hh.addmm_(dG[1:].reshape(-1, H4).t(), Hs[:-1].reshape(-1, H))
        elif needs[6]:  # the same product, operands rounded to lp
            Hprev = torch.cat([h0.unsqueeze(0).to(lp), Hs[:-1].to(lp)]).reshape(-1, H)  # h_0..h_{T−1}
            dW_hh = torch.mm(dG2.t().to(lp), Hprev).to(G.dtype)
        if needs[7]:
            dW_w = dG2.t() @ Ws[:-1].reshape(T * B, -1)  # Σ_t δ_t w_{t−1}ᵀ, (4H, V)
        if needs[8]:
            dw_ci = (dG4[:, :, 0] * C[:-1]).sum((0, 1))
        if needs[9]:
            dw_cf = (dG4[:, :, 1] * C[:-1]).sum((0, 1))
        if needs[10]:
            dw_co = (dG4[:, :, 3] * C[1:]).sum((0, 1))
        dP2 = dP.view(T * B, 3 * K)
        if needs[11]:
            dW_p = dP2.t() @ Hs.reshape(T * B, H)  # (3K, H)
        if needs[12]:
            db_p = dP2.sum(0)
        return dgx, dh0, dc0, dkappa0, dw0, None, dW_hh, dW_w, dw_ci, dw_cf, dw_co, dW_p, db_p, None


def layer1_window_fused(
    gx: Tensor, h0: Tensor, c0: Tensor, kappa0: Tensor, w0: Tensor, c: Tensor, p: Layer1Weights,
    clip: float | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Same maths, arguments and results as :func:`layer1_window_reference`, by the fused Function."""
    if c.requires_grad:
        raise ValueError("the fused synthesis path takes no gradient for the text c; use fused=False")
    return _FusedLayer1Window.apply(gx, h0, c0, kappa0, w0, c.contiguous(), *p, None if clip is None else float(clip))


# --------------------------------------------------------------------------------------------------
# The synthesis network
# --------------------------------------------------------------------------------------------------


class SynthState(NamedTuple):
    """Recurrent state of the synthesis net.

    Attributes:
        lstm: one ``LSTMState`` per layer, each tensor ``(B, H)``.
        kappa: window positions κ_{t−1}, ``(B, K)`` (κ_0 = 0).
        w: the previous window vector w_{t−1}, ``(B, V)`` (layer 1's extra input, eq. 52; w_0 = 0).
    """

    lstm: list[LSTMState]
    kappa: Tensor
    w: Tensor


class HandwritingSynthesizer(nn.Module):
    """Handwriting synthesis network (Section 5): the prediction net conditioned on text by a soft window.

    Layer 1 reads ``[x_t, w_{t−1}]`` (eq. 52); the window (eqs. 46–51) reads h^1_t and gives w_t;
    layers n = 2..N read ``[x_t, h^{n−1}_t, w_t]`` (eq. 53); the output layer reads every h^n_t (eq. 3).
    The LSTM stack is a ``DeepLSTM(3, H, N, extra_size=V)``, whose layer n's input is exactly that
    concatenation. Layer 1 and the window are stepped together one step at a time (with ``cfg.fused``,
    by :class:`_FusedLayer1Window`); layers 2..N then run over the whole sequence at once.

    Args:
        cfg: ``hidden_size`` H, ``num_layers`` N, ``mixtures`` M, ``window_mixtures`` K, ``lstm_clip``,
            ``output_clip``, ``fused``.
        vocab_size: V, the width of the one-hot text (``len(Alphabet)``).

    3 × 400 cells, M = 20, K = 10: 3,658,551 weights with the paper's 57 classes (V = 58 with padding);
    3,773,751 with the 80 characters of the paper's training split (V = 82, the default "full" alphabet);
    3,792,951 with all 84 IAM characters (V = 86); the paper: "≈3.7M".
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        H, N, M, K = cfg.hidden_size, cfg.num_layers, cfg.mixtures, cfg.window_mixtures
        self.lstm = DeepLSTM(INPUT_SIZE, H, N, extra_size=vocab_size, clip=cfg.lstm_clip, fused=cfg.fused)
        self.window = SoftWindow(H, K, vocab_size)  # W_{h1 p}, b_p  (eq. 48)
        if cfg.window_kappa_bias is not None:
            with torch.no_grad():  # initialisation only (the paper gives none): κ̂'s biases
                self.window.linear.bias[2 * K:].fill_(cfg.window_kappa_bias)
        self.output = nn.Linear(N * H, _output_size(M))  # (eq. 3)

    def zero_state(self, batch_size: int, device=None, dtype=None) -> SynthState:
        """Zero LSTM states, κ_0 = 0 ``(B, K)`` and w_0 = 0 ``(B, V)``."""
        p = self.output.weight
        device = p.device if device is None else device
        dtype = p.dtype if dtype is None else dtype
        return SynthState(
            lstm=self.lstm.zero_state(batch_size, device, dtype),
            kappa=torch.zeros(batch_size, self.cfg.window_mixtures, device=device, dtype=dtype),
            w=torch.zeros(batch_size, self.vocab_size, device=device, dtype=dtype),
        )

    def _layer1(self) -> tuple[Tensor, Tensor, Layer1Weights]:
        """W_{i h1} ``(4H, 3)``, b^1 ``(4H)`` and the recurrent/window weights, sliced once per call."""
        l1 = self.lstm.layers[0]
        W_x = l1.weight_ih[:, :INPUT_SIZE]  # (4H, 3)   W_{i h1}
        W_w = l1.weight_ih[:, INPUT_SIZE:]  # (4H, V)   W_{w h1}
        p = Layer1Weights(l1.weight_hh, W_w, l1.w_ci, l1.w_cf, l1.w_co, self.window.linear.weight,
                          self.window.linear.bias)
        return W_x, l1.bias, p

    def _check_text(self, c: Tensor) -> None:
        if c.dim() != 3 or c.shape[-1] != self.vocab_size:
            raise ValueError(f"text must be (B, U, V) with V = {self.vocab_size} classes, got {tuple(c.shape)}")

    def forward(
        self, x: Tensor, c: Tensor, state: SynthState | None = None
    ) -> tuple[Tensor, SynthState, Tensor]:
        """Run the net over a sequence.

        Args:
            x: ``(T, B, 3)`` inputs x_1..x_T (x_1 = 0 at the start of a line).
            c: ``(B, U, V)`` one-hot text, padding rows zero.
            state: a ``SynthState``, or None for zeros (κ_0 = 0, w_0 = 0).

        Returns:
            ``y_hat (T, B, 1 + 6M)``, the final ``SynthState``, and the window weights ``phi (T, B, U)``.
        """
        self._check_text(c)
        T, B, _ = x.shape
        if state is None:
            state = self.zero_state(B, x.device, x.dtype)
        if T == 0:
            return x.new_zeros(0, B, self.output.out_features), state, x.new_zeros(0, B, c.shape[1])
        W_x, b1, p = self._layer1()
        # Layer 1's input projection for every step in one matmul: W_{i h1} x_t + b^1  (eq. 52)
        gx = torch.addmm(b1, x.reshape(T * B, INPUT_SIZE), W_x.t()).view(T, B, -1)  # (T, B, 4H)
        run = layer1_window_fused if self.cfg.fused else layer1_window_reference
        h0, c0 = state.lstm[0]
        h, w_seq, phi, c_T, kappa = run(gx, h0, c0, state.kappa, state.w, c, p, self.cfg.lstm_clip)
        # h (T, B, H), w_seq (T, B, V), phi (T, B, U)
        new_lstm = [LSTMState(h[-1], c_T)]
        outputs = [h]
        for layer, s in zip(self.lstm.layers[1:], state.lstm[1:]):
            h, s_new = layer(torch.cat([x, h, w_seq], dim=2), s)  # (T, B, H)  (eq. 53)
            outputs.append(h)
            new_lstm.append(s_new)
        h_all = torch.cat(outputs, dim=2) if len(outputs) > 1 else outputs[0]  # (T, B, N·H)
        y_hat = self.output(h_all)  # (T, B, 1 + 6M)  (eq. 3)
        y_hat = clip_gradient(y_hat, self.cfg.output_clip)  # dL/dŷ clipped (Section 4.2)
        return y_hat, SynthState(new_lstm, kappa, w_seq[-1]), phi

    def step(
        self, x_t: Tensor, c: Tensor, state: SynthState | None = None
    ) -> tuple[Tensor, SynthState, Tensor]:
        """One time step (plain autograd; the same maths as ``forward``).

        Args:
            x_t: ``(B, 3)``; c: ``(B, U, V)``; state: a ``SynthState`` or None for zeros.

        Returns:
            ``y_hat_t (B, 1 + 6M)``, the new ``SynthState``, and ``phi_t (B, U + 1)``: φ(t, u) for
            u = 1..U+1, for the end-of-text rule (Section 5.3).
        """
        self._check_text(c)
        if state is None:
            state = self.zero_state(x_t.shape[0], x_t.device, x_t.dtype)
        W_x, b1, p = self._layer1()
        gx_t = torch.addmm(b1, x_t, W_x.t())  # (B, 4H)
        h0, c0 = state.lstm[0]
        h, cell, kappa, w, phi = layer1_window_step(gx_t, h0, c0, state.kappa, state.w, c, p,
                                                    self.cfg.lstm_clip, U_phi=c.shape[1] + 1)
        outputs, new_lstm = [h], [LSTMState(h, cell)]
        for layer, s in zip(self.lstm.layers[1:], state.lstm[1:]):
            s_new = layer.step(torch.cat([x_t, h, w], dim=1), s)  # (eq. 53)
            h = s_new.h  # (B, H)
            outputs.append(h)
            new_lstm.append(s_new)
        y_hat = self.output(torch.cat(outputs, dim=1))  # (B, 1 + 6M)  (eq. 3)
        return clip_gradient(y_hat, self.cfg.output_clip), SynthState(new_lstm, kappa, w), phi
