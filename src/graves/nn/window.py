"""The soft window into the text for handwriting synthesis (Section 5.1, eqs. 46–51; gradients eqs. 56–60).

At each time step the first hidden layer's output h^1_t gives 3K window parameters (eq. 48),
laid out as ``[α̂ (K) | β̂ (K) | κ̂ (K)]``. They define a mixture of K Gaussian bumps over the text
positions u = 1..U (eq. 46), and the window vector w_t is the φ-weighted sum of the one-hot
characters c_u (eq. 47). κ_t moves only forwards (eq. 51). κ_0 = 0 (SPEC §5).

Shapes: B batch, K window components, U text length, V alphabet size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SoftWindow", "window_grad_analytic", "window_params", "window_phi", "window_vector"]


def window_params(p_hat: Tensor, kappa_prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Window parameters α, β, κ from the raw outputs (α̂, β̂, κ̂) (eqs. 48–51).

    Args:
        p_hat: ``(B, 3K)``, laid out ``[α̂ | β̂ | κ̂]`` (eq. 48).
        kappa_prev: κ_{t−1}, ``(B, K)``.

    Returns:
        (alpha, beta, kappa), each ``(B, K)``; alpha > 0, beta > 0, kappa > kappa_prev.
    """
    alpha_hat, beta_hat, kappa_hat = p_hat.chunk(3, dim=-1)  # 3 × (B, K)  (eq. 48)
    alpha = torch.exp(alpha_hat)  # (eq. 49)
    beta = torch.exp(beta_hat)  # (eq. 50)
    kappa = kappa_prev + torch.exp(kappa_hat)  # (eq. 51)
    return alpha, beta, kappa


def window_phi(alpha: Tensor, beta: Tensor, kappa: Tensor, U: int) -> Tensor:
    """Window weights φ(t, u) = Σ_k α^k exp(−β^k (κ^k − u)²) for u = 1..U (eq. 46).

    Ask for U + 1 positions to apply the end-of-text rule (Section 5.3).

    Args:
        alpha, beta, kappa: ``(B, K)`` (any leading shape works).
        U: number of text positions.

    Returns:
        phi, ``(B, U)``.
    """
    u = torch.arange(1, U + 1, device=kappa.device, dtype=kappa.dtype)  # (U,)
    bumps = alpha.unsqueeze(-1) * torch.exp(-beta.unsqueeze(-1) * (kappa.unsqueeze(-1) - u) ** 2)  # (B, K, U)
    return bumps.sum(dim=-2)  # (B, U)  (eq. 46)


def window_vector(phi: Tensor, c: Tensor) -> Tensor:
    """Window vector w_t = Σ_u φ(t, u) c_u (eq. 47).

    Args:
        phi: ``(B, U)``.
        c: one-hot text, ``(B, U, V)``; padding positions are zero rows and add nothing.

    Returns:
        w, ``(B, V)``.
    """
    return (phi.unsqueeze(-2) @ c).squeeze(-2)  # (B, 1, U) @ (B, U, V) -> (B, V)  (eq. 47)


class SoftWindow(nn.Module):
    """The soft window layer (eqs. 46–51): h^1_t, κ_{t−1}, c  →  w_t, κ_t, φ(t, ·).

    Holds W_{h1 p} and b_p (eq. 48) as one ``nn.Linear(hidden_size, 3K)`` with PyTorch's default
    initialisation. No recurrent state lives on the module: κ is passed in and returned (κ_0 = 0).

    For the end-of-text rule (φ(t, U+1) > φ(t, u) for all u ≤ U, Section 5.3), pass ``c`` with one extra
    zero row appended: w is unchanged and ``phi`` then has U + 1 positions.
    """

    def __init__(self, hidden_size: int, K: int, vocab_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.K = K
        self.vocab_size = vocab_size
        self.linear = nn.Linear(hidden_size, 3 * K)  # W_{h1 p}, b_p  (eq. 48)

    def forward(self, h1: Tensor, kappa_prev: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One time step of the window (eqs. 46–51).

        Args:
            h1: first hidden layer's output h^1_t, ``(B, H)``.
            kappa_prev: κ_{t−1}, ``(B, K)`` (zeros at t = 1).
            c: one-hot text, ``(B, U, V)``.

        Returns:
            (w ``(B, V)``, kappa ``(B, K)``, phi ``(B, U)``).
        """
        if c.shape[-1] != self.vocab_size:
            raise ValueError(f"text has {c.shape[-1]} classes, window expects {self.vocab_size}")
        p_hat = self.linear(h1)  # (B, 3K)  (eq. 48)
        alpha, beta, kappa = window_params(p_hat, kappa_prev)  # 3 × (B, K)  (eqs. 49–51)
        phi = window_phi(alpha, beta, kappa, c.shape[-2])  # (B, U)  (eq. 46)
        w = window_vector(phi, c)  # (B, V)  (eq. 47)
        return w, kappa, phi

    def extra_repr(self) -> str:  # noqa: D102
        return f"hidden_size={self.hidden_size}, K={self.K}, vocab_size={self.vocab_size}"


def window_grad_analytic(
    p_hat: Tensor, c: Tensor, dL_dw: Tensor, kappa_0: Tensor | None = None
) -> Tensor:
    """The paper's window gradients ∂L/∂(α̂, β̂, κ̂) over a sequence: a literal transcription of eqs. 56–60.

    The window is run over T steps from the given raw parameters p̂_1..p̂_T (κ carried by eq. 51);
    ``dL_dw`` holds ∂L/∂w_t from the rest of the graph. As in the paper, ∂L/∂κ_t collects its own
    contribution plus ∂L/∂κ_{t+1} (eq. 59). For tests against autograd.

    Args:
        p_hat: ``(T, B, 3K)``, each step laid out ``[α̂ | β̂ | κ̂]``.
        c: one-hot text, ``(B, U, V)``.
        dL_dw: ``(T, B, V)``.
        kappa_0: κ_0, ``(B, K)``; zeros when ``None``.

    Returns:
        ∂L/∂p̂, ``(T, B, 3K)`` in the layout of ``p_hat``.
    """
    T = p_hat.shape[0]
    U = c.shape[-2]
    alpha_hat, beta_hat, kappa_hat = p_hat.chunk(3, dim=-1)  # 3 × (T, B, K)
    alpha = torch.exp(alpha_hat)  # (eq. 49)
    beta = torch.exp(beta_hat)  # (eq. 50)
    if kappa_0 is None:
        kappa_0 = torch.zeros_like(kappa_hat[0])
    kappa = kappa_0 + torch.cumsum(torch.exp(kappa_hat), dim=0)  # (T, B, K)  (eq. 51)
    u = torch.arange(1, U + 1, device=p_hat.device, dtype=p_hat.dtype)  # (U,)

    dL_dw_c = torch.einsum("tbv,buv->tbu", dL_dw, c)  # Σ_j ∂L/∂w^j_t c^j_u, (T, B, U)
    eps = (  # ϵ(k, t, u), (T, B, K, U)  (eq. 56)
        alpha.unsqueeze(-1) * torch.exp(-beta.unsqueeze(-1) * (kappa.unsqueeze(-1) - u) ** 2) * dL_dw_c.unsqueeze(2)
    )
    d_alpha_hat = eps.sum(dim=-1)  # (T, B, K)  (eq. 57)
    d_beta_hat = -beta * (eps * (kappa.unsqueeze(-1) - u) ** 2).sum(dim=-1)  # (T, B, K)  (eq. 58)
    d_kappa_own = 2 * beta * (eps * (u - kappa.unsqueeze(-1))).sum(dim=-1)  # (T, B, K)
    d_kappa = torch.zeros_like(d_kappa_own)  # ∂L/∂κ_t, (T, B, K)
    for t in reversed(range(T)):
        d_kappa_next = d_kappa[t + 1] if t + 1 < T else torch.zeros_like(d_kappa_own[t])
        d_kappa[t] = d_kappa_next + d_kappa_own[t]  # (eq. 59)
    d_kappa_hat = torch.exp(kappa_hat) * d_kappa  # (eq. 60)
    return torch.cat([d_alpha_hat, d_beta_hat, d_kappa_hat], dim=-1)  # (T, B, 3K)
