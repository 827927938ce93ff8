"""Soft window (eqs. 46–51) and its gradients (eqs. 56–60)."""

from __future__ import annotations

import math

import torch

from graves.nn.window import SoftWindow, window_grad_analytic, window_params, window_phi, window_vector


def one_hot_text(B, U, V, lengths=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, V, (B, U), generator=g)
    c = torch.nn.functional.one_hot(idx, V).double()  # (B, U, V)
    if lengths is not None:
        for b, n in enumerate(lengths):
            c[b, n:] = 0  # padding rows
    return c


def run_window(p_hat, c, kappa_0):
    """Steps the window over p̂_1..p̂_T (T, B, 3K); returns w (T, B, V), kappa (T, B, K), phi (T, B, U)."""
    kappa = kappa_0
    ws, kappas, phis = [], [], []
    for t in range(p_hat.shape[0]):
        alpha, beta, kappa = window_params(p_hat[t], kappa)
        phi = window_phi(alpha, beta, kappa, c.shape[1])
        ws.append(window_vector(phi, c))
        kappas.append(kappa)
        phis.append(phi)
    return torch.stack(ws), torch.stack(kappas), torch.stack(phis)


def test_window_params_eqs_49_to_51():
    K = 4
    p_hat = torch.randn(3, 3 * K, dtype=torch.float64)
    kappa_prev = torch.rand(3, K, dtype=torch.float64) * 5
    alpha, beta, kappa = window_params(p_hat, kappa_prev)
    assert torch.allclose(alpha, torch.exp(p_hat[:, :K]))
    assert torch.allclose(beta, torch.exp(p_hat[:, K : 2 * K]))
    assert torch.allclose(kappa, kappa_prev + torch.exp(p_hat[:, 2 * K :]))  # no softplus, no scaling


def test_kappa_never_decreases():
    T, B, K = 30, 4, 3
    p_hat = torch.randn(T, B, 3 * K) * 10  # includes very negative κ̂ (tiny steps) and large ones
    c = one_hot_text(B, 7, 5).float()
    _, kappa, _ = run_window(p_hat, c, torch.zeros(B, K))
    steps = kappa.diff(dim=0, prepend=torch.zeros(1, B, K))
    assert (steps >= 0).all()  # even where float32 rounding swallows tiny steps
    p_hat = p_hat.double() * 0.3
    _, kappa, _ = run_window(p_hat, c.double(), torch.zeros(B, K, dtype=torch.float64))
    assert (kappa.diff(dim=0, prepend=torch.zeros(1, B, K, dtype=torch.float64)) > 0).all()


def test_phi_equals_literal_eq_46():
    B, K, U = 2, 3, 5
    alpha = torch.rand(B, K, dtype=torch.float64) + 0.1
    beta = torch.rand(B, K, dtype=torch.float64) + 0.1
    kappa = torch.rand(B, K, dtype=torch.float64) * U
    phi = window_phi(alpha, beta, kappa, U)
    assert phi.shape == (B, U)
    for b in range(B):
        for u in range(1, U + 1):  # u = 1..U
            ref = sum(alpha[b, k] * math.exp(-beta[b, k] * (kappa[b, k] - u) ** 2) for k in range(K))
            assert math.isclose(phi[b, u - 1].item(), ref, rel_tol=1e-12)


def test_window_vector_eq_47_and_padding():
    B, U, V = 3, 6, 4
    c = one_hot_text(B, U, V, lengths=[6, 4, 2], seed=1)
    phi = torch.rand(B, U, dtype=torch.float64)
    w = window_vector(phi, c)
    assert w.shape == (B, V)
    for b in range(B):
        ref = sum(phi[b, u] * c[b, u] for u in range(U))
        assert torch.allclose(w[b], ref)
    phi_garbage = phi.clone()
    phi_garbage[1, 4:] = 1e6  # weights on padding positions add nothing
    assert torch.allclose(window_vector(phi_garbage, c), w)


def test_soft_window_module_and_end_of_text_padding():
    B, H, K, U, V = 2, 5, 3, 4, 6
    win = SoftWindow(H, K, V).double()
    h1 = torch.randn(B, H, dtype=torch.float64)
    kappa_prev = torch.rand(B, K, dtype=torch.float64)
    c = one_hot_text(B, U, V, seed=2)
    w, kappa, phi = win(h1, kappa_prev, c)
    assert w.shape == (B, V) and kappa.shape == (B, K) and phi.shape == (B, U)
    alpha, beta, kappa_ref = window_params(win.linear(h1), kappa_prev)
    assert torch.allclose(kappa, kappa_ref)
    assert torch.allclose(phi, window_phi(alpha, beta, kappa_ref, U))
    assert torch.allclose(w, window_vector(phi, c))
    # one appended zero row gives φ(t, U+1) for the end-of-text rule without changing w
    c_plus = torch.cat([c, torch.zeros(B, 1, V, dtype=c.dtype)], dim=1)
    w2, _, phi2 = win(h1, kappa_prev, c_plus)
    assert phi2.shape == (B, U + 1)
    assert torch.allclose(w2, w) and torch.allclose(phi2[:, :U], phi)
    assert torch.allclose(phi2[:, U], window_phi(alpha, beta, kappa_ref, U + 1)[:, U])


def test_soft_window_gradcheck_over_steps():
    B, H, K, U, V, T = 2, 3, 2, 4, 3, 3
    win = SoftWindow(H, K, V).double()
    c = one_hot_text(B, U, V, seed=3)
    h = torch.randn(T, B, H, dtype=torch.float64, requires_grad=True)
    kappa_0 = torch.rand(B, K, dtype=torch.float64, requires_grad=True)
    weight = win.linear.weight

    def f(h, kappa_0, weight):
        kappa, out = kappa_0, []
        for t in range(T):
            p_hat = torch.nn.functional.linear(h[t], weight, win.linear.bias)
            alpha, beta, kappa = window_params(p_hat, kappa)
            out.append(window_vector(window_phi(alpha, beta, kappa, U), c))
        return torch.stack(out), kappa

    assert torch.autograd.gradcheck(f, (h, kappa_0, weight.detach().clone().requires_grad_(True)))
    # the module itself, through its parameters
    assert torch.autograd.gradcheck(lambda h1, k: win(h1, k, c), (h[0].detach().requires_grad_(True), kappa_0))


def test_autograd_equals_analytic_eqs_56_to_60():
    T, B, K, U, V = 6, 3, 3, 7, 5
    g = torch.Generator().manual_seed(4)
    p_hat = torch.randn(T, B, 3 * K, generator=g, dtype=torch.float64) * 0.5
    p_hat[..., 2 * K :] += math.log(0.8)  # the window travels about 5 characters over T = 6 steps
    p_hat.requires_grad_(True)
    c = one_hot_text(B, U, V, lengths=[7, 5, 3], seed=5)
    kappa_0 = torch.rand(B, K, dtype=torch.float64)
    dL_dw = torch.randn(T, B, V, generator=g, dtype=torch.float64)
    w, _, _ = run_window(p_hat, c, kappa_0)
    (grad,) = torch.autograd.grad((w * dL_dw).sum(), p_hat)  # L = Σ_t ⟨∂L/∂w_t, w_t⟩
    analytic = window_grad_analytic(p_hat.detach(), c, dL_dw, kappa_0)
    assert analytic.shape == p_hat.shape
    assert grad[..., 2 * K :].abs().max() > 1e-3  # the κ path is exercised
    assert torch.allclose(grad, analytic, rtol=1e-10, atol=1e-12)
