"""Weight noise and adaptive weight noise (Section 3.1; Graves 2011)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from graves.nn.noise import S_GRADIENTS, AdaptiveWeightNoise, WeightNoise, awn_kl, noisy_backward


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def batch(B=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, generator=g, dtype=torch.float64), torch.randn(B, 2, generator=g, dtype=torch.float64)


def loss_of(model_or_params, model, x, y):
    """Summed squared error; with a dict, evaluated at those weights through functional_call."""
    out = model(x) if model_or_params is model else functional_call(model, model_or_params, (x,))
    return ((out - y) ** 2).sum()


def draws(model, generator, n):
    """ξ for n consecutive samples, in the order the noise classes draw them (parameter order)."""
    return [{name: torch.randn(p.shape, generator=generator, dtype=p.dtype) for name, p in model.named_parameters()}
            for _ in range(n)]


# ---------------------------------------------------------------- fixed weight noise


def test_weight_noise_has_the_stated_std_and_restores_clean_weights():
    layer = nn.Linear(400, 500)
    clean = [p.detach().clone() for p in layer.parameters()]
    noise = WeightNoise(layer, std=0.075)
    with noise.sample(torch.Generator().manual_seed(0)):
        diff = layer.weight.detach() - clean[0]
        assert abs(diff.std().item() - 0.075) < 0.075 * 0.01  # 200k draws: relative s.e. ≈ 0.16 %
        assert abs(diff.mean().item()) < 5 * 0.075 / math.sqrt(diff.numel())
        assert not torch.equal(layer.bias.detach(), clean[1])  # biases are weights too
        assert torch.equal(noise.clean_parameters()[0], clean[0])
    for p, c in zip(layer.parameters(), clean):
        assert torch.equal(p.detach(), c)  # exactly the clean values


def test_gradient_at_noisy_weights_is_applied_to_clean_weights():
    model = tiny_model()
    x, y = batch()
    clean = {n: p.detach().clone() for n, p in model.named_parameters()}
    noise = WeightNoise(model, std=0.075, per_sequence=False)
    with noise.sample(torch.Generator().manual_seed(3)):
        noisy = {n: p.detach().clone() for n, p in model.named_parameters()}
        loss_of(model, model, x, y).backward()
    # reference: autograd at the noisy weights
    noisy_leaf = {n: v.clone().requires_grad_(True) for n, v in noisy.items()}
    ref = torch.autograd.grad(loss_of(noisy_leaf, model, x, y), list(noisy_leaf.values()))
    clean_leaf = {n: v.clone().requires_grad_(True) for n, v in clean.items()}
    at_clean = torch.autograd.grad(loss_of(clean_leaf, model, x, y), list(clean_leaf.values()))
    for (n, p), r, c in zip(model.named_parameters(), ref, at_clean):
        assert torch.allclose(p.grad, r)
        assert not torch.allclose(p.grad, c)  # it really is the noisy-weight gradient
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.step()
    for (n, p), r in zip(model.named_parameters(), ref):
        assert torch.allclose(p.detach(), clean[n] - 0.1 * r)


def test_weight_noise_seed_reproduces():
    model = tiny_model()
    noise = WeightNoise(model)
    seen = []
    for seed in (7, 7, 8):
        with noise.sample(torch.Generator().manual_seed(seed)):
            seen.append(model[0].weight.detach().clone())
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])


def test_optimizer_step_inside_sample_is_an_error():
    model = tiny_model()
    clean = model[0].weight.detach().clone()
    x, y = batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for noise in (WeightNoise(model), AdaptiveWeightNoise(model)):
        with pytest.raises(RuntimeError, match="optimizer.step"):
            with noise.sample(torch.Generator().manual_seed(0)):
                loss_of(model, model, x, y).backward()
                opt.step()
        assert torch.equal(model[0].weight.detach(), clean)
        opt.zero_grad()


@pytest.mark.parametrize("kwargs,slices", [
    (dict(per_sequence=True), [slice(0, 1), slice(1, 2), slice(2, 3), slice(3, 4), slice(4, 5)]),
    (dict(per_sequence=False), [slice(0, 5)]),
    (dict(group_size=2), [slice(0, 2), slice(2, 4), slice(4, 5)]),  # the last group is short
    (dict(per_sequence=False, group_size=1), [slice(i, i + 1) for i in range(5)]),  # group_size wins
    (dict(group_size=8), [slice(0, 5)]),
])
def test_noisy_backward_draws_per_sequence_per_group_or_per_batch(kwargs, slices):
    model = tiny_model()
    x, y = batch(B=5)
    noise = WeightNoise(model, std=0.075, **kwargs)
    assert noise.per_sequence == (len(slices) == 5)
    gen = torch.Generator().manual_seed(5)
    seen = []

    def loss_fn(idx):
        seen.append(idx)
        return loss_of(model, model, x[idx], y[idx])

    total = noisy_backward(noise, loss_fn, 5, gen)
    assert seen == slices
    clean = dict(model.named_parameters())
    xis = draws(model, torch.Generator().manual_seed(5), len(slices))
    ref_grads = {n: torch.zeros_like(p) for n, p in clean.items()}
    ref_total = 0.0
    for idx, xi in zip(slices, xis):
        w = {n: (p.detach() + 0.075 * xi[n]).requires_grad_(True) for n, p in clean.items()}
        loss = loss_of(w, model, x[idx], y[idx])
        for n, gr in zip(w, torch.autograd.grad(loss, list(w.values()))):
            ref_grads[n] += gr
        ref_total += loss.item()
    assert math.isclose(total.item(), ref_total, rel_tol=1e-12)
    for n, p in clean.items():
        assert torch.allclose(p.grad, ref_grads[n])


@pytest.mark.parametrize("group_size", [0, -1, 1.5, True, "2"])
def test_group_size_must_be_a_positive_integer(group_size):
    with pytest.raises(ValueError, match="group_size must be an integer ≥ 1"):
        WeightNoise(tiny_model(), group_size=group_size)
    with pytest.raises(ValueError, match="group_size must be an integer ≥ 1"):
        AdaptiveWeightNoise(tiny_model(), group_size=group_size)


# ---------------------------------------------------------------- adaptive weight noise


def test_awn_samples_have_the_stated_mean_and_std():
    layer = nn.Linear(400, 500)
    mu = layer.weight.detach().clone()
    awn = AdaptiveWeightNoise(layer, init_std=0.075)
    assert all(torch.allclose(s, torch.full_like(s, 0.075)) for s in awn.s())
    with torch.no_grad():
        awn.log_s[0][:200].fill_(math.log(0.2))  # two different learned stds
    with awn.sample(torch.Generator().manual_seed(0)):
        diff = layer.weight.detach() - mu
    for rows, s in ((slice(0, 200), 0.2), (slice(200, 400), 0.075)):
        d = diff[rows]
        assert abs(d.std().item() - s) < 0.015 * s
        assert abs(d.mean().item()) < 5 * s / math.sqrt(d.numel())
    assert torch.equal(layer.weight.detach(), mu)


def test_awn_kl_equals_direct_formula_and_prior_is_optimal():
    g = torch.Generator().manual_seed(0)
    mu = [torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64) + 1]
    s = [torch.rand(shape, generator=g, dtype=torch.float64) + 0.05 for shape in ((3, 4), (5,))]
    flat_mu, flat_s = torch.cat([m.reshape(-1) for m in mu]), torch.cat([t.reshape(-1) for t in s])
    mu_p = flat_mu.mean()
    s_p = (flat_s**2 + (flat_mu - mu_p) ** 2).mean().sqrt()

    def kl_to(m_p, sd_p):
        q = torch.distributions.Normal(flat_mu, flat_s)
        return torch.distributions.kl_divergence(q, torch.distributions.Normal(m_p, sd_p)).sum()

    kl = awn_kl(mu, s)
    assert torch.allclose(kl, kl_to(mu_p, s_p), rtol=1e-12)
    at_optimum = 0.5 * flat_mu.numel() * torch.log(s_p**2) - flat_s.log().sum()  # Σ log(s_p / s_i)
    assert math.isclose(kl.item(), at_optimum.item(), rel_tol=1e-12)
    for dm, ds in ((0.05, 0.0), (-0.05, 0.0), (0.0, 0.05), (0.0, -0.05)):
        assert kl_to(mu_p + dm, s_p + ds) > kl  # any other Gaussian prior costs more


def test_awn_gradients_reach_mu_and_s_and_equal_reparameterised_autograd():
    model = tiny_model()
    x, y = batch(B=2)
    mu0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    awn = AdaptiveWeightNoise(model, init_std=0.075)
    with torch.no_grad():
        for ls in awn.log_s:
            ls.add_(0.3 * torch.randn(ls.shape, dtype=ls.dtype))
    log_s0 = {n: ls.detach().clone() for n, ls in zip(awn.names, awn.log_s)}
    S = 100  # training sequences
    total = noisy_backward(awn, lambda idx: loss_of(model, model, x[idx], y[idx]), 2, torch.Generator().manual_seed(9))
    (awn.kl() * (2 / S)).backward()
    # reference: autograd through w = μ + exp(log s) ξ with the same ξ, plus the KL term
    mu = {n: v.clone().requires_grad_(True) for n, v in mu0.items()}
    log_s = {n: v.clone().requires_grad_(True) for n, v in log_s0.items()}
    xis = draws(model, torch.Generator().manual_seed(9), 2)
    ref_loss = 0.0
    for i, xi in enumerate(xis):
        w = {n: mu[n] + log_s[n].exp() * xi[n] for n in mu}
        ref_loss = ref_loss + loss_of(w, model, x[i : i + 1], y[i : i + 1])
    objective = ref_loss + awn_kl(mu.values(), [v.exp() for v in log_s.values()]) * (2 / S)
    grads = torch.autograd.grad(objective, [*mu.values(), *log_s.values()])
    n_params = len(mu)
    assert math.isclose(total.item(), ref_loss.item(), rel_tol=1e-12)
    for k, (name, p) in enumerate(model.named_parameters()):
        assert torch.equal(p.detach(), mu0[name])  # back at μ after sampling
        assert p.grad.abs().sum() > 0 and awn.log_s[k].grad.abs().sum() > 0
        assert torch.allclose(p.grad, grads[k], rtol=1e-10, atol=1e-12)
        assert torch.allclose(awn.log_s[k].grad, grads[n_params + k], rtol=1e-10, atol=1e-12)


def test_awn_fisher_s_gradient_is_s_squared_times_each_sequences_squared_gradient():
    """s_gradient="fisher" (Graves 2011): ∂L/∂log s = Σ_x s² (∂L_x/∂w)² at each sequence's own draw, plus the KL
    term's; ∂L/∂μ is the same as with the reparameterised estimate."""
    model = tiny_model()
    x, y = batch(B=3)
    mu0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    awn = AdaptiveWeightNoise(model, init_std=0.075, s_gradient="fisher")
    with torch.no_grad():
        for ls in awn.log_s:
            ls.add_(0.3 * torch.randn(ls.shape, dtype=ls.dtype))
    log_s0 = {n: ls.detach().clone() for n, ls in zip(awn.names, awn.log_s)}
    S = 100
    noisy_backward(awn, lambda idx: loss_of(model, model, x[idx], y[idx]), 3, torch.Generator().manual_seed(4))
    (awn.kl() * (3 / S)).backward()
    xis = draws(model, torch.Generator().manual_seed(4), 3)
    mu = {n: v.clone().requires_grad_(True) for n, v in mu0.items()}
    log_s = {n: v.clone().requires_grad_(True) for n, v in log_s0.items()}
    kl_grads = torch.autograd.grad(awn_kl(mu.values(), [v.exp() for v in log_s.values()]) * (3 / S),
                                   [*mu.values(), *log_s.values()])
    want_mu = [g.clone() for g in kl_grads[: len(mu)]]
    want_s = [g.clone() for g in kl_grads[len(mu):]]
    for i, xi in enumerate(xis):
        w = {n: (mu0[n] + log_s0[n].exp() * xi[n]).requires_grad_(True) for n in mu0}
        g = torch.autograd.grad(loss_of(w, model, x[i : i + 1], y[i : i + 1]), list(w.values()))
        for k, name in enumerate(w):
            want_mu[k] += g[k]
            want_s[k] += log_s0[name].exp() ** 2 * g[k] ** 2
    for k, p in enumerate(model.parameters()):
        assert torch.allclose(p.grad, want_mu[k], rtol=1e-10, atol=1e-12)
        assert torch.allclose(awn.log_s[k].grad, want_s[k], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="s_gradient"):
        AdaptiveWeightNoise(model, s_gradient="score")
    from graves.config import Config, check_config
    with pytest.raises(ValueError, match="noise.s_gradient"):
        check_config(Config().override(["noise.s_gradient='score'"]))
    for name in S_GRADIENTS:  # the config accepts exactly the estimates the noise class knows
        assert check_config(Config().override([f"noise.s_gradient='{name}'"])).noise.s_gradient == name


@pytest.mark.parametrize("per,B", [("sequence", 2), ("group", 4)])
def test_a_training_step_with_the_fisher_estimate_averages_each_draws_squared_summed_gradient(per, B):
    """Through the config and `training_step`: the log s gradient is (1/B) Σ_draws s² (Σ_{x in the draw} ∂L_x/∂w)²
    plus the KL term's, with L_x each sequence's own unscaled loss: per sequence, the squares of single
    sequences (Graves 2011); per group of 2, the square of the pair's summed gradient (the cross terms kept)."""
    from graves.config import Config, check_config
    from graves.train import build_noise, training_step

    class Task:  # per-sequence loss: summed squared error; task.loss returns the mean over idx and the count
        num_train_sequences = 50

        def batch_size(self, b):
            return b[0].shape[0]

        def loss(self, model, b, idx=slice(None)):
            xs, ys = b[0][idx], b[1][idx]
            return ((model(xs) - ys) ** 2).sum(1).mean(), xs.shape[0]

    model = tiny_model()
    cfg = check_config(Config().override(['noise.kind="adaptive"', 'noise.s_gradient="fisher"', f'noise.per="{per}"',
                                          "noise.group_size=2"]))
    awn = build_noise(cfg, model)
    assert isinstance(awn, AdaptiveWeightNoise) and awn.s_gradient == "fisher"
    with torch.no_grad():
        for ls in awn.log_s:
            ls.add_(0.3 * torch.randn(ls.shape, dtype=ls.dtype))
    mu0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    log_s0 = {n: ls.detach().clone() for n, ls in zip(awn.names, awn.log_s)}
    x, y = batch(B=B)
    opt = torch.optim.SGD([*model.parameters(), *awn.parameters()], lr=0.0)  # a step that moves nothing
    training_step(Task(), model, (x, y), opt, awn, torch.Generator().manual_seed(5))
    G = 1 if per == "sequence" else 2
    xis = draws(model, torch.Generator().manual_seed(5), B // G)
    mu = {n: v.clone().requires_grad_(True) for n, v in mu0.items()}
    log_s = {n: v.clone().requires_grad_(True) for n, v in log_s0.items()}
    want = list(torch.autograd.grad(awn_kl(mu.values(), [v.exp() for v in log_s.values()]) / 50, list(log_s.values())))
    for d, xi in enumerate(xis):
        w = {n: (mu0[n] + log_s0[n].exp() * xi[n]).requires_grad_(True) for n in mu0}
        g = torch.autograd.grad(loss_of(w, model, x[d * G : (d + 1) * G], y[d * G : (d + 1) * G]), list(w.values()))
        for k, name in enumerate(w):
            want[k] = want[k] + log_s0[name].exp() ** 2 * g[k] ** 2 / B
    for k, ls in enumerate(awn.log_s):
        assert torch.allclose(ls.grad, want[k], rtol=1e-10, atol=1e-13)


def test_awn_keeps_gradients_from_before_the_sample():
    model = tiny_model()
    x, y = batch(B=1)
    awn = AdaptiveWeightNoise(model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    with awn.sample(torch.Generator().manual_seed(0)):
        loss_of(model, model, x, y).backward()
        inner = [p.grad.clone() for p in model.parameters()]
    for p, g in zip(model.parameters(), inner):
        assert torch.allclose(p.grad, g + 1)


def test_awn_starts_from_previous_weights_and_saves_means():
    previous = tiny_model(seed=3).state_dict()
    model = tiny_model(seed=4)
    model.load_state_dict(previous)
    awn = AdaptiveWeightNoise(model, init_std=0.075)
    for n, p in zip(awn.names, awn.mu):
        assert torch.equal(p.detach(), previous[n])
    with awn.sample(torch.Generator().manual_seed(0)):
        means = awn.mean_state_dict()
        assert not torch.equal(model[0].weight.detach(), previous["0.weight"])
        with pytest.raises(RuntimeError):
            awn.kl()
    for n, v in previous.items():
        assert torch.equal(means[n], v)
    # log s round-trips through a plain dict of tensors
    with torch.no_grad():
        awn.log_s[0].add_(1.0)
    saved = {n: v.clone() for n, v in awn.state_dict().items()}
    other = AdaptiveWeightNoise(model)
    other.load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(other.log_s, awn.log_s))
    with pytest.raises(KeyError):
        other.load_state_dict({"nope": torch.zeros(1)})


def test_awn_max_std_bounds_s_after_steps_and_on_load():
    """max_std projects s onto [0, max_std]: after `bound_`, and when loading a state saved without the bound."""
    model = nn.Linear(4, 3)
    awn = AdaptiveWeightNoise(model, init_std=0.075, max_std=0.5)
    with torch.no_grad():
        awn.log_s[0].fill_(math.log(0.075))
        awn.log_s[0][0, 0] = math.log(28.0)  # the run that broke: one s of 28
        awn.log_s[1].fill_(math.log(0.3))
    awn.bound_()
    s = [t.detach() for t in awn.s()]
    assert float(s[0][0, 0]) == pytest.approx(0.5)
    assert float(s[0][0, 1]) == pytest.approx(0.075) and torch.allclose(s[1], torch.full((3,), 0.3))
    unbounded = AdaptiveWeightNoise(model, init_std=0.075)
    with torch.no_grad():
        unbounded.log_s[1].fill_(math.log(4.0))
    unbounded.bound_()
    assert float(unbounded.s()[1].detach().max()) == pytest.approx(4.0)
    awn.load_state_dict(unbounded.state_dict())
    assert float(awn.s()[1].detach().max()) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="max_std"):
        AdaptiveWeightNoise(model, init_std=0.075, max_std=0.05)
    with pytest.raises(ValueError, match="max_std"):
        AdaptiveWeightNoise(model, init_std=0.075, max_std=math.inf)
