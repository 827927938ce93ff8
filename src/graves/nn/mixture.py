"""Mixture density outputs for pen offsets (Section 4.1, eqs. 17–37; biased sampling, eqs. 61–62).

The output vector ŷ_t (eq. 17) has 1 + 6M entries, laid out as

    [ ê | π̂ (M) | μ̂1 (M) | μ̂2 (M) | σ̂1 (M) | σ̂2 (M) | ρ̂ (M) ]

and is turned into an end-of-stroke probability e, mixture weights π, means μ, standard deviations σ
and correlations ρ (eqs. 18–22). The loss of one point is eq. 26, computed here in log space with
log-sum-exp over the M components.

Shapes: ``...`` is any leading shape, typically ``(T, B)`` in training and ``(B,)`` in sampling.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MixtureParams",
    "ONE_MINUS_RHO2_FLOOR",
    "mixture_grad_analytic",
    "mixture_log_density",
    "mixture_mean",
    "mixture_nll",
    "mixture_params",
    "num_components",
    "sample_mixture",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)

#: Numerical guard in the loss: 1 − ρ² is kept ≥ this floor (it binds only where |ρ̂| > ~7.6, i.e.
#: |ρ| > 1 − 5e-7, which float32 cannot tell from |ρ| = 1). Not a modelling change; see `mixture_nll`.
ONE_MINUS_RHO2_FLOOR = 1e-6
_LOG_FLOOR = math.log(ONE_MINUS_RHO2_FLOOR)


class MixtureParams(NamedTuple):
    """The mixture's parameters for one or more time steps (eqs. 18–22).

    Attributes:
        e: end-of-stroke probability, ``(...)``, in (0, 1) (eq. 18).
        log_pi: log mixture weights, ``(..., M)`` (eq. 19, or eq. 62 with a bias).
        mu: means, ``(..., M, 2)`` (eq. 20).
        sigma: standard deviations, ``(..., M, 2)``, > 0 (eq. 21, or eq. 61 with a bias).
        rho: correlations, ``(..., M)``, in (−1, 1) (eq. 22).
    """

    e: Tensor
    log_pi: Tensor
    mu: Tensor
    sigma: Tensor
    rho: Tensor

    @property
    def pi(self) -> Tensor:
        """Mixture weights π, ``(..., M)``, summing to 1 over M (eq. 19)."""
        return self.log_pi.exp()


def num_components(y_hat: Tensor) -> int:
    """M, the number of mixture components of an output vector of size 1 + 6M."""
    size = y_hat.shape[-1]
    if size < 7 or (size - 1) % 6:
        raise ValueError(f"mixture output size must be 1 + 6M, got {size}")
    return (size - 1) // 6


def _split(y_hat: Tensor) -> tuple[Tensor, ...]:
    """Split ŷ (..., 1 + 6M) into ê (...) and π̂, μ̂1, μ̂2, σ̂1, σ̂2, ρ̂, each (..., M) (eq. 17)."""
    M = num_components(y_hat)
    e_hat = y_hat[..., 0]  # (...)
    pi_hat, mu1, mu2, sigma1_hat, sigma2_hat, rho_hat = y_hat[..., 1:].split(M, dim=-1)  # 6 × (..., M)
    return e_hat, pi_hat, mu1, mu2, sigma1_hat, sigma2_hat, rho_hat


def _as_trailing(bias: float | Tensor, extra_dims: int) -> float | Tensor:
    """A bias of shape (...) with ``extra_dims`` singleton dims appended, so it broadcasts."""
    if isinstance(bias, Tensor):
        return bias.reshape(bias.shape + (1,) * extra_dims)
    return float(bias)


def mixture_params(y_hat: Tensor, bias: float | Tensor = 0.0) -> MixtureParams:
    """Mixture parameters from the network outputs (eqs. 18–22), optionally biased (eqs. 61–62).

    Args:
        y_hat: network outputs ŷ, ``(..., 1 + 6M)``.
        bias: the sampling bias b ≥ 0, a float or a tensor of shape ``(...)``; 0 is unbiased.

    Returns:
        `MixtureParams` with e ``(...)``, log_pi ``(..., M)``, mu ``(..., M, 2)``, sigma ``(..., M, 2)``,
        rho ``(..., M)``.
    """
    e_hat, pi_hat, mu1, mu2, sigma1_hat, sigma2_hat, rho_hat = _split(y_hat)
    b1 = _as_trailing(bias, 1)  # (..., 1) or float
    b2 = _as_trailing(bias, 2)  # (..., 1, 1) or float
    e = torch.sigmoid(-e_hat)  # e = 1 / (1 + exp(ê))  (eq. 18)
    log_pi = F.log_softmax(pi_hat * (1 + b1), dim=-1)  # (..., M)  (eq. 19; eq. 62)
    mu = torch.stack((mu1, mu2), dim=-1)  # (..., M, 2)  (eq. 20)
    sigma = torch.exp(torch.stack((sigma1_hat, sigma2_hat), dim=-1) - b2)  # (..., M, 2)  (eq. 21; eq. 61)
    rho = torch.tanh(rho_hat)  # (..., M)  (eq. 22)
    return MixtureParams(e=e, log_pi=log_pi, mu=mu, sigma=sigma, rho=rho)


def _log_one_minus_tanh2(rho_hat: Tensor) -> Tensor:
    """log(1 − tanh²(ρ̂)) = 2 log sech(ρ̂), exact for every ρ̂ (no cancellation in 1 − ρ²)."""
    a = rho_hat.abs()
    return 2.0 * (_LOG_2 - a - F.softplus(-2.0 * a))


def mixture_log_density(y_hat: Tensor, xy: Tensor) -> Tensor:
    """log Σ_j π^j N(xy | μ^j, σ^j, ρ^j): the offset part of eq. 23, in log space.

    The bivariate normal (eqs. 24–25) is written as a log-density, and the sum over components is a
    log-sum-exp. 1 − ρ² is computed as sech²(ρ̂) in log space and floored at `ONE_MINUS_RHO2_FLOOR`
    (a numerical guard, inactive for |ρ̂| < 7.6).

    Args:
        y_hat: network outputs ŷ, ``(..., 1 + 6M)``.
        xy: pen offsets (x1, x2), ``(..., 2)``.

    Returns:
        log-density, ``(...)``.
    """
    _, pi_hat, mu1, mu2, sigma1_hat, sigma2_hat, rho_hat = _split(y_hat)
    x1 = xy[..., 0:1]  # (..., 1)
    x2 = xy[..., 1:2]  # (..., 1)
    d1 = (x1 - mu1) * torch.exp(-sigma1_hat)  # (x1 − μ1) / σ1, (..., M)  (eqs. 20–21)
    d2 = (x2 - mu2) * torch.exp(-sigma2_hat)  # (x2 − μ2) / σ2, (..., M)
    rho = torch.tanh(rho_hat)  # (..., M)  (eq. 22)
    log_one_minus_rho2 = _log_one_minus_tanh2(rho_hat).clamp(min=_LOG_FLOOR)  # log(1 − ρ²), (..., M)
    Z = d1 * d1 + d2 * d2 - 2.0 * rho * d1 * d2  # (..., M)  (eq. 25)
    log_N = (  # log N(x | μ, σ, ρ), (..., M)  (eq. 24)
        -0.5 * Z * torch.exp(-log_one_minus_rho2)
        - sigma1_hat
        - sigma2_hat
        - 0.5 * log_one_minus_rho2
        - _LOG_2PI
    )
    log_pi = F.log_softmax(pi_hat, dim=-1)  # (..., M)  (eq. 19)
    return torch.logsumexp(log_pi + log_N, dim=-1)  # (...)  (eq. 23)


def mixture_nll(y_hat: Tensor, x_next: Tensor, mask: Tensor | None = None) -> Tensor:
    """Per-point loss −log Pr(x_{t+1} | y_t) (eq. 26), computed stably in log space.

    The offset density uses `mixture_log_density` (log-sum-exp over components); the end-of-stroke
    term uses log e = logsigmoid(−ê) and log(1 − e) = logsigmoid(ê) (eq. 18). Callers sum over time
    for the sequence loss L(x).

    Args:
        y_hat: network outputs ŷ_t, ``(..., 1 + 6M)``.
        x_next: targets x_{t+1} = (dx, dy, eos), ``(..., 3)``, eos ∈ {0, 1}.
        mask: ``(...)``; where it is 0 the loss is exactly 0 (and so is its gradient). ``None``: no mask.

    Returns:
        the loss of each point in nats, ``(...)``.
    """
    if mask is not None:
        # Padded outputs are replaced by zeros before the loss, so that an overflow there (an infinite
        # exp(−σ̂)) cannot put NaN into the gradient through the unselected branch of the `where` below.
        y_hat = torch.where((mask != 0).unsqueeze(-1), y_hat, y_hat.new_zeros(()))  # on y_hat's device
    e_hat = y_hat[..., 0]  # (...)
    log_mix = mixture_log_density(y_hat, x_next[..., :2])  # (...)  (eqs. 23–25)
    eos = x_next[..., 2] > 0.5  # (x_{t+1})_3 = 1, (...)
    log_eos = torch.where(eos, F.logsigmoid(-e_hat), F.logsigmoid(e_hat))  # log e or log(1 − e)  (eq. 18)
    nll = -log_mix - log_eos  # (...)  (eq. 26)
    if mask is not None:
        nll = torch.where(mask != 0, nll, torch.zeros_like(nll))
    return nll


def mixture_mean(params: MixtureParams) -> Tensor:
    """The mixture's expected offset Σ_j π^j μ^j, ``(..., 2)`` (used for the SSE metric)."""
    return (params.pi.unsqueeze(-1) * params.mu).sum(dim=-2)  # (..., M, 2) -> (..., 2)


def sample_mixture(params: MixtureParams, generator: torch.Generator) -> Tensor:
    """Draw x_{t+1} ~ Pr(x_{t+1} | y_t) (eq. 23): a component, a correlated normal offset, a Bernoulli eos.

    Every random draw takes ``generator`` (which must live on the parameters' device), in a fixed order:
    the component j ~ Categorical(π), then two standard normals z1, z2, then eos ~ Bernoulli(e). The
    offset is x1 = μ1 + σ1 z1, x2 = μ2 + σ2 (ρ z1 + √(1 − ρ²) z2), a draw from N(μ^j, σ^j, ρ^j)
    (eq. 24). A bias enters through ``params`` (see `mixture_params`, eqs. 61–62). The inputs are not
    modified.

    Args:
        params: `MixtureParams` with leading shape ``(B,)`` (any leading shape works).
        generator: the `torch.Generator` for every draw.

    Returns:
        samples (dx, dy, eos), ``(B, 3)``, eos ∈ {0., 1.}.
    """
    lead = params.e.shape  # (B,)
    M = params.log_pi.shape[-1]
    pi = params.pi.reshape(-1, M)  # (B, M)
    j = torch.multinomial(pi, 1, generator=generator)  # (B, 1) component indices
    mu = params.mu.reshape(-1, M, 2).gather(1, j[:, :, None].expand(-1, 1, 2)).squeeze(1)  # (B, 2)
    sigma = params.sigma.reshape(-1, M, 2).gather(1, j[:, :, None].expand(-1, 1, 2)).squeeze(1)  # (B, 2)
    rho = params.rho.reshape(-1, M).gather(1, j).squeeze(1)  # (B,)
    z = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)  # (B, 2)
    x1 = mu[:, 0] + sigma[:, 0] * z[:, 0]  # (B,)
    x2 = mu[:, 1] + sigma[:, 1] * (rho * z[:, 0] + torch.sqrt((1.0 - rho * rho).clamp(min=0.0)) * z[:, 1])
    eos = torch.bernoulli(params.e.reshape(-1), generator=generator)  # (B,)  (eq. 23)
    return torch.stack((x1, x2, eos), dim=-1).reshape(*lead, 3)  # (B, 3)


def mixture_grad_analytic(y_hat: Tensor, x_next: Tensor) -> Tensor:
    """The paper's gradient of the per-point loss (eq. 26) w.r.t. ŷ: a literal transcription of eqs. 27–37.

    Straightforward (not log-space) arithmetic; meant for tests against autograd on moderate inputs.

    Args:
        y_hat: network outputs ŷ_t, ``(..., 1 + 6M)``.
        x_next: targets x_{t+1}, ``(..., 3)``.

    Returns:
        ∂L/∂ŷ_t, ``(..., 1 + 6M)`` in the layout of ``y_hat``.
    """
    p = mixture_params(y_hat)
    e, pi, rho = p.e, p.pi, p.rho  # (...), (..., M), (..., M)
    mu1, mu2 = p.mu[..., 0], p.mu[..., 1]  # (..., M)
    sigma1, sigma2 = p.sigma[..., 0], p.sigma[..., 1]  # (..., M)
    x1, x2, x3 = x_next[..., 0:1], x_next[..., 1:2], x_next[..., 2]  # (..., 1), (..., 1), (...)

    d_e_hat = x3 - e  # (eq. 27)
    Z = (  # (eq. 25)
        (x1 - mu1) ** 2 / sigma1**2
        + (x2 - mu2) ** 2 / sigma2**2
        - 2 * rho * (x1 - mu1) * (x2 - mu2) / (sigma1 * sigma2)
    )
    N = 1 / (2 * math.pi * sigma1 * sigma2 * torch.sqrt(1 - rho**2)) * torch.exp(-Z / (2 * (1 - rho**2)))  # (eq. 24)
    gamma_hat = pi * N  # (eq. 28)
    gamma = gamma_hat / gamma_hat.sum(dim=-1, keepdim=True)  # (eq. 29)
    d_pi_hat = pi - gamma  # (eq. 30)
    C = 1 / (1 - rho**2)  # (eq. 37)
    dlogN_dmu1 = C / sigma1 * ((x1 - mu1) / sigma1 - rho * (x2 - mu2) / sigma2)  # (eq. 32)
    dlogN_dmu2 = C / sigma2 * ((x2 - mu2) / sigma2 - rho * (x1 - mu1) / sigma1)  # (eq. 33)
    dlogN_dsigma1 = C * (x1 - mu1) / sigma1 * ((x1 - mu1) / sigma1 - rho * (x2 - mu2) / sigma2) - 1  # (eq. 34)
    dlogN_dsigma2 = C * (x2 - mu2) / sigma2 * ((x2 - mu2) / sigma2 - rho * (x1 - mu1) / sigma1) - 1  # (eq. 35)
    dlogN_drho = (x1 - mu1) * (x2 - mu2) / (sigma1 * sigma2) + rho * (1 - C * Z)  # (eq. 36)
    return torch.cat(  # (eq. 31): ∂L/∂(μ̂, σ̂, ρ̂) = −γ ∂ log N / ∂(μ̂, σ̂, ρ̂)
        [
            d_e_hat.unsqueeze(-1),
            d_pi_hat,
            -gamma * dlogN_dmu1,
            -gamma * dlogN_dmu2,
            -gamma * dlogN_dsigma1,
            -gamma * dlogN_dsigma2,
            -gamma * dlogN_drho,
        ],
        dim=-1,
    )
