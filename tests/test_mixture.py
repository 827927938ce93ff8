"""Mixture density outputs (eqs. 18–37, 61–62) and output-derivative clipping."""

from __future__ import annotations

import math

import pytest
import torch

from graves.nn.clip import clip_gradient
from graves.nn.mixture import (
    MixtureParams,
    mixture_grad_analytic,
    mixture_mean,
    mixture_nll,
    mixture_params,
    num_components,
    sample_mixture,
)


def random_inputs(shape=(5, 3), M=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y_hat = torch.randn(*shape, 1 + 6 * M, generator=g, dtype=dtype)
    xy = torch.randn(*shape, 2, generator=g, dtype=dtype)
    eos = torch.randint(0, 2, shape, generator=g).to(dtype)
    return y_hat, torch.cat([xy, eos.unsqueeze(-1)], dim=-1)


def literal_nll(y_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Eqs. 18–26 transcribed point by point with plain floats (no log space)."""
    M = (y_hat.shape[-1] - 1) // 6
    flat_y = y_hat.reshape(-1, y_hat.shape[-1]).tolist()
    flat_x = x.reshape(-1, 3).tolist()
    out = []
    for y, (x1, x2, x3) in zip(flat_y, flat_x):
        e = 1 / (1 + math.exp(y[0]))
        pi_hat = y[1 : 1 + M]
        denom = sum(math.exp(v) for v in pi_hat)
        total = 0.0
        for j in range(M):
            pi = math.exp(pi_hat[j]) / denom
            mu1, mu2 = y[1 + M + j], y[1 + 2 * M + j]
            s1, s2 = math.exp(y[1 + 3 * M + j]), math.exp(y[1 + 4 * M + j])
            rho = math.tanh(y[1 + 5 * M + j])
            Z = (x1 - mu1) ** 2 / s1**2 + (x2 - mu2) ** 2 / s2**2 - 2 * rho * (x1 - mu1) * (x2 - mu2) / (s1 * s2)
            N = 1 / (2 * math.pi * s1 * s2 * math.sqrt(1 - rho**2)) * math.exp(-Z / (2 * (1 - rho**2)))
            total += pi * N
        eos_term = e if x3 == 1 else 1 - e
        out.append(-math.log(total) - math.log(eos_term))
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape[:-1])


def test_layout_and_num_components():
    M = 3
    y_hat = torch.arange(1 + 6 * M, dtype=torch.float64)
    p = mixture_params(y_hat)
    assert num_components(y_hat) == M
    assert torch.allclose(p.e, torch.sigmoid(-y_hat[0]))
    assert torch.equal(p.mu[:, 0], y_hat[1 + M : 1 + 2 * M])  # μ̂1 block
    assert torch.equal(p.mu[:, 1], y_hat[1 + 2 * M : 1 + 3 * M])  # μ̂2 block
    assert torch.allclose(p.sigma[:, 0].log(), y_hat[1 + 3 * M : 1 + 4 * M])
    assert torch.allclose(p.sigma[:, 1].log(), y_hat[1 + 4 * M : 1 + 5 * M])
    assert torch.allclose(p.rho, torch.tanh(y_hat[1 + 5 * M :]))
    with pytest.raises(ValueError):
        num_components(torch.zeros(10))


def test_e_sign_follows_eq_18():
    y_hat = torch.zeros(2, 7)
    y_hat[0, 0], y_hat[1, 0] = 10.0, -10.0
    e = mixture_params(y_hat).e
    assert e[0] < 1e-4 and e[1] > 1 - 1e-4  # e = 1 / (1 + exp(ê)): large ê → e ≈ 0


def test_invariants():
    y_hat, _ = random_inputs(shape=(50, 4), M=5, dtype=torch.float64, seed=1)
    y_hat = y_hat * 3
    p = mixture_params(y_hat)
    assert torch.allclose(p.pi.sum(-1), torch.ones(50, 4, dtype=torch.float64))
    assert (p.pi >= 0).all()
    assert (p.rho.abs() < 1).all()
    assert ((p.e > 0) & (p.e < 1)).all()
    assert (p.sigma > 0).all()
    assert p.mu.shape == (50, 4, 5, 2) and p.sigma.shape == (50, 4, 5, 2)
    assert p.log_pi.shape == p.rho.shape == (50, 4, 5) and p.e.shape == (50, 4)


def test_nll_equals_literal_eqs_23_to_26():
    y_hat, x = random_inputs(shape=(6, 3), M=4, seed=2)
    assert torch.allclose(mixture_nll(y_hat, x), literal_nll(y_hat, x), rtol=1e-10, atol=1e-10)


def test_nll_float32_matches_float64():
    y_hat, x = random_inputs(shape=(8, 4), M=20, seed=3)
    ref = mixture_nll(y_hat, x)
    assert torch.allclose(mixture_nll(y_hat.float(), x.float()).double(), ref, rtol=1e-5, atol=1e-4)


def test_nll_gradcheck():
    y_hat, x = random_inputs(shape=(3, 2), M=3, seed=4)
    y_hat.requires_grad_(True)
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda y: mixture_nll(y, x), (y_hat,))
    assert torch.autograd.gradcheck(lambda y: mixture_nll(y, x, mask), (y_hat,))


def test_autograd_equals_analytic_eqs_27_to_37():
    y_hat, x = random_inputs(shape=(7, 3), M=5, seed=5)
    y_hat.requires_grad_(True)
    (grad,) = torch.autograd.grad(mixture_nll(y_hat, x).sum(), y_hat)
    analytic = mixture_grad_analytic(y_hat.detach(), x)
    assert analytic.shape == y_hat.shape
    assert torch.allclose(grad, analytic, rtol=1e-9, atol=1e-10)


def test_masked_points_contribute_zero():
    y_hat, x = random_inputs(shape=(4, 3), M=3, seed=6)
    y_hat[0, 0] = 1e4  # garbage in a padded position
    y_hat.requires_grad_(True)
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[0, 0] = False
    mask[3, 1] = False
    nll = mixture_nll(y_hat, x, mask)
    assert nll[0, 0] == 0 and nll[3, 1] == 0
    assert torch.equal(nll[mask], mixture_nll(y_hat, x)[mask])
    nll.sum().backward()
    assert (y_hat.grad[0, 0] == 0).all() and (y_hat.grad[3, 1] == 0).all()
    assert (y_hat.grad[1, 1] != 0).any()


def test_overflowing_outputs_at_masked_points_leave_loss_and_gradient_finite():
    y_hat, x = random_inputs(shape=(4, 3), M=3, dtype=torch.float32, seed=16)
    M = 3
    y_hat[0, 0, 1 + 3 * M : 1 + 5 * M] = -100.0  # exp(−σ̂) overflows float32
    y_hat[2, 1, 1 + M : 1 + 3 * M] = 1e30  # (x − μ)² overflows
    y_hat.requires_grad_(True)
    mask = torch.ones(4, 3)
    mask[0, 0] = mask[2, 1] = 0
    nll = mixture_nll(y_hat, x, mask)
    assert nll[0, 0] == 0 and nll[2, 1] == 0 and torch.isfinite(nll).all()
    nll.sum().backward()
    assert torch.isfinite(y_hat.grad).all()
    assert (y_hat.grad[0, 0] == 0).all() and (y_hat.grad[2, 1] == 0).all()


@pytest.mark.parametrize("rho_hat", [3.5, -5.0, 7.0])
def test_nll_and_gradient_exact_for_near_singular_correlation(rho_hat):
    # |ρ| up to 1 − 3e-6: the floor on 1 − ρ² must not bind here. The target lies on the ridge of the
    # correlated component, (x2 − μ2)/σ2 = sign(ρ)(x1 − μ1)/σ1, so that component dominates the density.
    y_hat, x = random_inputs(shape=(3, 2), M=3, seed=17)
    M = 3
    j = 1
    y_hat[..., 1 + 5 * M + j] = rho_hat
    y_hat[..., 1 + j] = 3.0  # π̂ of that component
    mu1, mu2 = y_hat[..., 1 + M + j], y_hat[..., 1 + 2 * M + j]
    s1, s2 = y_hat[..., 1 + 3 * M + j].exp(), y_hat[..., 1 + 4 * M + j].exp()
    d = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)[:, None]
    x[..., 0] = mu1 + d * s1
    x[..., 1] = mu2 + math.copysign(1.0, rho_hat) * d * s2
    assert torch.allclose(mixture_nll(y_hat, x), literal_nll(y_hat, x), rtol=1e-8, atol=1e-8)
    y_hat.requires_grad_(True)
    (grad,) = torch.autograd.grad(mixture_nll(y_hat, x).sum(), y_hat)
    assert torch.allclose(grad, mixture_grad_analytic(y_hat.detach(), x), rtol=1e-6, atol=1e-8)


def test_nll_finite_for_extreme_outputs():
    y_hat, x = random_inputs(shape=(4, 3), M=3, dtype=torch.float32, seed=7)
    M = 3
    y_hat[..., 1 + 5 * M :] = torch.tensor([40.0, -40.0, 9.0])  # ρ̂ far beyond where tanh saturates
    y_hat[..., 1 + 3 * M : 1 + 5 * M] = -6.0  # small σ
    y_hat[..., 0] = 60.0  # e ≈ 0
    y_hat.requires_grad_(True)
    nll = mixture_nll(y_hat, x)
    nll.sum().backward()
    assert torch.isfinite(nll).all() and torch.isfinite(y_hat.grad).all()


def test_bias_eqs_61_62():
    y_hat, _ = random_inputs(shape=(2,), M=4, seed=8)
    M = 4
    p = mixture_params(y_hat, bias=0.5)
    pi_hat = y_hat[:, 1 : 1 + M]
    assert torch.allclose(p.pi, torch.softmax(pi_hat * 1.5, dim=-1))
    assert torch.allclose(p.sigma[..., 0], torch.exp(y_hat[:, 1 + 3 * M : 1 + 4 * M] - 0.5))
    assert torch.allclose(p.e, mixture_params(y_hat).e)  # the bias leaves e alone
    # a per-row tensor bias equals separate calls
    pb = mixture_params(y_hat, bias=torch.tensor([0.0, 2.0], dtype=torch.float64))
    for i, b in enumerate([0.0, 2.0]):
        pi_ = mixture_params(y_hat[i], bias=b)
        for a, c in zip(pb, pi_):
            assert torch.allclose(a[i], c)


def test_mixture_mean():
    y_hat, _ = random_inputs(shape=(3,), M=4, seed=9)
    p = mixture_params(y_hat)
    expected = torch.stack([sum(p.pi[b, j] * p.mu[b, j] for j in range(4)) for b in range(3)])
    assert torch.allclose(mixture_mean(p), expected)


def _mixture_moments(p: MixtureParams):
    pi, mu, sigma, rho = p.pi, p.mu, p.sigma, p.rho  # (M,), (M, 2), (M, 2), (M,)
    mean = (pi[:, None] * mu).sum(0)
    cov = torch.zeros(2, 2, dtype=mu.dtype)
    for j in range(len(pi)):
        s1, s2 = sigma[j]
        S = torch.tensor([[s1**2, rho[j] * s1 * s2], [rho[j] * s1 * s2, s2**2]], dtype=mu.dtype)
        cov += pi[j] * (S + torch.outer(mu[j], mu[j]))
    return mean, cov - torch.outer(mean, mean)


def test_unbiased_samples_match_mixture_moments():
    M = 3
    y_hat = torch.zeros(1 + 6 * M, dtype=torch.float64)
    y_hat[0] = 0.7  # e ≈ 0.33
    y_hat[1 : 1 + M] = torch.tensor([0.0, 0.5, -0.3])
    y_hat[1 + M : 1 + 3 * M] = torch.tensor([-2.0, 0.0, 2.0, 1.0, -1.0, 0.5])
    y_hat[1 + 3 * M : 1 + 5 * M] = torch.tensor([-0.5, 0.0, 0.3, -0.2, 0.4, 0.1])
    y_hat[1 + 5 * M :] = torch.tensor([0.8, -1.2, 0.0])
    n = 200_000
    p = mixture_params(y_hat.expand(n, -1))
    x = sample_mixture(p, torch.Generator().manual_seed(1234))
    assert x.shape == (n, 3)
    mean, cov = _mixture_moments(mixture_params(y_hat))
    xy = x[:, :2]
    se_mean = (cov.diagonal() / n).sqrt()
    assert ((xy.mean(0) - mean).abs() < 5 * se_mean).all()
    centred = xy - mean
    prods = centred[:, :, None] * centred[:, None, :]  # (n, 2, 2)
    se_cov = prods.std(0) / math.sqrt(n)
    assert ((prods.mean(0) - cov).abs() < 5 * se_cov).all()
    e = mixture_params(y_hat).e
    assert set(x[:, 2].unique().tolist()) <= {0.0, 1.0}
    assert abs(x[:, 2].mean() - e) < 5 * math.sqrt(e * (1 - e) / n)


def test_large_bias_returns_mode_of_most_probable_component():
    y_hat, _ = random_inputs(shape=(64,), M=5, seed=10)
    p = mixture_params(y_hat, bias=60.0)
    x = sample_mixture(p, torch.Generator().manual_seed(0))
    M = 5
    best = y_hat[:, 1 : 1 + M].argmax(-1)
    mu = mixture_params(y_hat).mu[torch.arange(64), best]  # (64, 2)
    assert torch.allclose(x[:, :2], mu, atol=1e-9)


def test_seed_reproduces_samples_and_inputs_untouched():
    y_hat, _ = random_inputs(shape=(16,), M=4, dtype=torch.float32, seed=11)
    p = mixture_params(y_hat, bias=0.15)
    before = [t.clone() for t in p]
    a = sample_mixture(p, torch.Generator().manual_seed(42))
    b = sample_mixture(p, torch.Generator().manual_seed(42))
    c = sample_mixture(p, torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    for t, u in zip(before, p):
        assert torch.equal(t, u)


def test_sampling_ignores_global_rng():
    y_hat, _ = random_inputs(shape=(8,), M=2, dtype=torch.float32, seed=12)
    p = mixture_params(y_hat)
    torch.manual_seed(0)
    a = sample_mixture(p, torch.Generator().manual_seed(5))
    torch.manual_seed(1)
    b = sample_mixture(p, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_clip_gradient_changes_grads_only_beyond_bound():
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    g = torch.linspace(-3, 3, 1000, dtype=torch.float64)
    y = clip_gradient(x, 1.0)
    assert torch.equal(y, x)
    (y * g).sum().backward()
    inside = g.abs() <= 1
    assert torch.equal(x.grad[inside], g[inside])
    assert torch.equal(x.grad[~inside], g[~inside].sign())
    x.grad = None
    (clip_gradient(x, None) * g).sum().backward()
    assert torch.equal(x.grad, g)
    with pytest.raises(ValueError):
        clip_gradient(x, 0.0)


def test_output_clip_on_mixture_loss():
    y_hat, x = random_inputs(shape=(4, 2), M=3, seed=13)
    y_hat[..., 1 + 3 * 3 : 1 + 5 * 3] = -4.0  # small σ → large gradients
    y_hat.requires_grad_(True)
    (raw,) = torch.autograd.grad(mixture_nll(y_hat, x).sum(), y_hat)
    (clipped,) = torch.autograd.grad(mixture_nll(clip_gradient(y_hat, 100.0), x).sum(), y_hat)
    assert raw.abs().max() > 100
    assert torch.equal(clipped, raw.clamp(-100, 100))
