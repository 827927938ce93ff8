"""Graves' RMSprop (eqs. 38–45) and the optimiser factory."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from graves.optim import GravesRMSprop, build_optimizer


def literal_rmsprop(w0, grads, lr=1e-4, aleph=0.95, beth=0.9, daleth=1e-4):
    """Eqs. 38–41 element by element with Python floats; ``grads`` is a list over steps of lists."""
    w = list(w0)
    n = [0.0] * len(w)
    g = [0.0] * len(w)
    delta = [0.0] * len(w)
    for eps_step in grads:
        for i, eps in enumerate(eps_step):
            n[i] = aleph * n[i] + (1 - aleph) * eps**2  # (eq. 38)
            g[i] = aleph * g[i] + (1 - aleph) * eps  # (eq. 39)
            delta[i] = beth * delta[i] - lr * eps / math.sqrt(n[i] - g[i] ** 2 + daleth)  # (eq. 40)
            w[i] = w[i] + delta[i]  # (eq. 41)
    return w


def _run(opt_factory, params, grads_per_step):
    opt = opt_factory(params)
    for grads in grads_per_step:
        for p, gr in zip(params, grads):
            p.grad = gr.clone()
        opt.step()
    return opt


@pytest.mark.parametrize("hyper", [{}, dict(lr=0.05, alpha=0.8, momentum=0.5, eps=1e-3)])
def test_equals_literal_eqs_38_to_45(hyper):
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3), (4,)]
    params = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]
    w0 = torch.cat([p.detach().reshape(-1) for p in params]).tolist()
    steps = 6
    grads_per_step = [
        [torch.randn(s, generator=g, dtype=torch.float64) * (1 + k) for s in shapes] for k in range(steps)
    ]
    _run(lambda ps: GravesRMSprop(ps, **hyper), params, grads_per_step)
    flat_grads = [torch.cat([gr.reshape(-1) for gr in grads]).tolist() for grads in grads_per_step]
    names = dict(lr="lr", alpha="aleph", momentum="beth", eps="daleth")
    ref = literal_rmsprop(w0, flat_grads, **{names[k]: v for k, v in hyper.items()})
    got = torch.cat([p.detach().reshape(-1) for p in params])
    assert torch.allclose(got, torch.tensor(ref, dtype=torch.float64), rtol=1e-12, atol=1e-14)
    assert not torch.allclose(got, torch.tensor(w0, dtype=torch.float64))


def test_defaults_are_the_papers():
    opt = GravesRMSprop([torch.zeros(1, requires_grad=True)])
    assert opt.defaults == dict(lr=1e-4, alpha=0.95, momentum=0.9, eps=1e-4)


def test_state_dict_round_trip():
    g = torch.Generator().manual_seed(1)
    params_a = [torch.randn(3, 2, generator=g, requires_grad=True), torch.randn(5, generator=g, requires_grad=True)]
    grads = [[torch.randn(p.shape, generator=g) for p in params_a] for _ in range(6)]
    opt_a = _run(lambda ps: GravesRMSprop(ps, lr=0.01), params_a, grads[:3])
    saved = copy.deepcopy(opt_a.state_dict())
    assert {"n", "g", "delta", "step"} <= set(saved["state"][0])
    params_b = [p.detach().clone().requires_grad_(True) for p in params_a]
    opt_b = GravesRMSprop(params_b, lr=0.5)  # hyperparameters come back from the state dict too
    opt_b.load_state_dict(saved)
    for opt, ps in ((opt_a, params_a), (opt_b, params_b)):
        for grads_k in grads[3:]:
            for p, gr in zip(ps, grads_k):
                p.grad = gr.clone()
            opt.step()
    for a, b in zip(params_a, params_b):
        assert torch.equal(a, b)


def test_param_groups_use_their_own_lr():
    a = torch.ones(2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    opt = GravesRMSprop([{"params": [a], "lr": 0.1}, {"params": [b]}], lr=0.01)
    a.grad = torch.ones(2)
    b.grad = torch.ones(2)
    opt.step()
    assert torch.allclose(1 - a.detach(), 10 * (1 - b.detach()))


def test_build_optimizer():
    p = [torch.zeros(3, requires_grad=True)]
    sgd = build_optimizer("sgd", p, momentum=0.99)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["lr"] == 1e-4 and sgd.defaults["momentum"] == 0.99
    rms = build_optimizer("RMSprop", p, lr=1e-3)
    assert isinstance(rms, GravesRMSprop) and rms.defaults["lr"] == 1e-3
    assert isinstance(build_optimizer("adam", p, lr=1e-3), torch.optim.Adam)
    with pytest.raises(ValueError):
        build_optimizer("adagrad", p)


def test_optimizer_from_config_passes_every_setting_of_the_optim_table():
    from graves.config import Config
    from graves.optim import optimizer_from_config

    p = [torch.zeros(3, requires_grad=True)]
    sets = ["optim.lr=0.01", "optim.alpha=0.8", "optim.momentum=0.5", "optim.eps=1e-3"]
    rms = optimizer_from_config(Config().override(sets).optim, p)
    assert isinstance(rms, GravesRMSprop)
    assert {k: rms.defaults[k] for k in ("lr", "alpha", "momentum", "eps")} == dict(lr=0.01, alpha=0.8, momentum=0.5,
                                                                                   eps=1e-3)
    sgd = optimizer_from_config(Config().override(sets + ['optim.name="sgd"']).optim, p)
    assert isinstance(sgd, torch.optim.SGD) and (sgd.defaults["lr"], sgd.defaults["momentum"]) == (0.01, 0.5)
    adam = optimizer_from_config(Config().override(sets + ['optim.name="adam"']).optim, p)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 0.01


def test_sgd_momentum_matches_the_delta_form():
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = build_optimizer("sgd", [w], lr=0.1, momentum=0.9)
    ref_w, delta = [1.0, -2.0], [0.0, 0.0]
    for k in range(5):
        grad = [0.5 * (k + 1), -0.3 * k]
        w.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
        for i in range(2):
            delta[i] = 0.9 * delta[i] - 0.1 * grad[i]  # Δ ← μΔ − lr ε
            ref_w[i] += delta[i]
    assert torch.allclose(w.detach(), torch.tensor(ref_w, dtype=torch.float64), rtol=1e-12)
