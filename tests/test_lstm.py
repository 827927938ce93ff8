"""Tests of graves.nn.lstm: peephole LSTM (eqs. 7–11), derivative clipping (Section 2.1) and the deep
stack with skip connections (eqs. 1–2). The fused BPTT path is proven equal to the autograd reference."""

from __future__ import annotations

import pytest
import torch

import graves.nn.lstm as lstm_mod
from graves.nn.lstm import DeepLSTM, LSTMState, PeepholeLSTM, lstm_fused, lstm_reference, matmul_dtype

F64 = torch.float64


def _randomise(module: torch.nn.Module, scale: float = 0.5) -> None:
    """Non-trivial parameters, peepholes included (the default init is small)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * scale)


def _run(layer: PeepholeLSTM, x, state, fused: bool, w_y, w_h, w_c):
    """Outputs, final state and the gradients of a loss touching h_1..h_T, h_T and c_T."""
    layer.fused = fused
    y, (h_T, c_T) = layer(x, state)
    loss = (y * w_y).sum() + (h_T * w_h).sum() + (c_T * w_c).sum()
    inputs = [x, *layer.parameters()] + ([state.h, state.c] if state is not None else [])
    grads = torch.autograd.grad(loss, inputs)
    return [y, h_T, c_T, *grads]


def _assert_all_close(a, b, **kw):
    assert len(a) == len(b)
    for k, (u, v) in enumerate(zip(a, b)):
        torch.testing.assert_close(u, v, msg=lambda m, k=k: f"tensor {k}: {m}", **kw)


# ------------------------------------------------------------------------------------------------
# fused == reference
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T,B,I,H", [(1, 1, 1, 1), (7, 3, 4, 5), (12, 2, 6, 8), (5, 4, 3, 16)])
@pytest.mark.parametrize("clip", [None, 0.05])
@pytest.mark.parametrize("carry_state", [False, True])
def test_fused_equals_reference_float64(T, B, I, H, clip, carry_state):
    layer = PeepholeLSTM(I, H, clip=clip).to(F64)
    _randomise(layer)
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    state = None
    if carry_state:
        state = LSTMState(torch.randn(B, H, dtype=F64, requires_grad=True), torch.randn(B, H, dtype=F64, requires_grad=True))
    # a large loss scale so that clip=0.05 really clamps
    w = [torch.randn(T, B, H, dtype=F64) * 3, torch.randn(B, H, dtype=F64) * 3, torch.randn(B, H, dtype=F64) * 3]
    fused = _run(layer, x, state, True, *w)
    ref = _run(layer, x, state, False, *w)
    _assert_all_close(fused, ref, rtol=1e-10, atol=1e-12)


def test_fused_equals_reference_when_clipping_is_active():
    """The clip=0.05 case above is not vacuous: there the clamp changes the gradients."""
    torch.manual_seed(1)
    T, B, I, H = 12, 2, 6, 8
    layer = PeepholeLSTM(I, H).to(F64)
    _randomise(layer)
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    w = [torch.randn(T, B, H, dtype=F64) * 3, torch.randn(B, H, dtype=F64) * 3, torch.randn(B, H, dtype=F64) * 3]
    unclipped = _run(layer, x, None, True, *w)
    layer.clip = 0.05
    clipped_fused = _run(layer, x, None, True, *w)
    clipped_ref = _run(layer, x, None, False, *w)
    _assert_all_close(clipped_fused, clipped_ref, rtol=1e-10, atol=1e-12)
    for g_clip, g_free in zip(clipped_fused[3:], unclipped[3:]):
        assert not torch.allclose(g_clip, g_free)


def test_fused_float32_close_to_reference():
    T, B, I, H = 20, 4, 5, 12
    layer = PeepholeLSTM(I, H, clip=1.0)
    x = torch.randn(T, B, I, requires_grad=True)
    state = LSTMState(torch.randn(B, H, requires_grad=True), torch.randn(B, H, requires_grad=True))
    w = [torch.randn(T, B, H), torch.randn(B, H), torch.randn(B, H)]
    fused = _run(layer, x, state, True, *w)
    ref = _run(layer, x, state, False, *w)
    assert all(t.dtype == torch.float32 for t in fused)
    _assert_all_close(fused, ref, rtol=1e-4, atol=1e-5)


def test_fused_gradients_when_input_needs_none():
    """Layer 1 of a net sees data: x needs no gradient, the parameters still get the right ones."""
    layer = PeepholeLSTM(3, 6).to(F64)
    x = torch.randn(9, 2, 3, dtype=F64)
    grads = {}
    for fused in (True, False):
        layer.fused = fused
        layer.zero_grad()
        layer(x)[0].square().sum().backward()
        grads[fused] = [p.grad.clone() for p in layer.parameters()]
    _assert_all_close(grads[True], grads[False], rtol=1e-10, atol=1e-12)


def test_fused_backward_twice_with_retain_graph():
    layer = PeepholeLSTM(2, 3, clip=0.1)
    y, _ = layer(torch.randn(4, 1, 2))
    loss = y.square().sum()
    first = torch.autograd.grad(loss, list(layer.parameters()), retain_graph=True)
    second = torch.autograd.grad(loss, list(layer.parameters()))
    _assert_all_close(first, second, rtol=0, atol=0)


def test_empty_sequence_returns_state_unchanged():
    layer = PeepholeLSTM(2, 3)
    state = layer.zero_state(4)
    y, new = layer(torch.randn(0, 4, 2), state)
    assert y.shape == (0, 4, 3)
    assert new.h is state.h and new.c is state.c


# ------------------------------------------------------------------------------------------------
# gradcheck
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", [lstm_reference, lstm_fused], ids=["reference", "fused"])
def test_gradcheck(run):
    T, B, I, H = 3, 2, 2, 3
    g = torch.Generator().manual_seed(0)
    args = [
        torch.randn(T, B, I, dtype=F64, generator=g),  # x
        torch.randn(B, H, dtype=F64, generator=g),  # h0
        torch.randn(B, H, dtype=F64, generator=g),  # c0
        torch.randn(4 * H, I, dtype=F64, generator=g) * 0.5,  # weight_ih
        torch.randn(4 * H, H, dtype=F64, generator=g) * 0.5,  # weight_hh
        torch.randn(4 * H, dtype=F64, generator=g) * 0.5,  # bias
        torch.randn(H, dtype=F64, generator=g) * 0.5,  # w_ci
        torch.randn(H, dtype=F64, generator=g) * 0.5,  # w_cf
        torch.randn(H, dtype=F64, generator=g) * 0.5,  # w_co
    ]
    args = [a.requires_grad_() for a in args]

    def f(x, h0, c0, *params):
        y, (h_T, c_T) = run(x, LSTMState(h0, c0), *params, clip=None)
        return y, c_T

    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------------
# equal to torch.nn.LSTM without peepholes
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False])
def test_equals_torch_lstm_without_peepholes(fused):
    T, B, I, H = 10, 3, 4, 6
    ours = PeepholeLSTM(I, H, fused=fused).to(F64)
    ref = torch.nn.LSTM(I, H).to(F64)
    with torch.no_grad():
        ours.weight_ih.copy_(ref.weight_ih_l0)
        ours.weight_hh.copy_(ref.weight_hh_l0)
        ours.bias.copy_(ref.bias_ih_l0 + ref.bias_hh_l0)  # torch has two biases
        for w in (ours.w_ci, ours.w_cf, ours.w_co):
            w.zero_()
    x = torch.randn(T, B, I, dtype=F64)
    h0, c0 = torch.randn(B, H, dtype=F64), torch.randn(B, H, dtype=F64)
    y, (h_T, c_T) = ours(x, LSTMState(h0, c0))
    y_ref, (h_ref, c_ref) = ref(x, (h0[None], c0[None]))
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h_T, h_ref[0])
    torch.testing.assert_close(c_T, c_ref[0])
    w_y = torch.randn(T, B, H, dtype=F64)
    (y * w_y).sum().backward()
    (y_ref * w_y).sum().backward()
    torch.testing.assert_close(ours.weight_ih.grad, ref.weight_ih_l0.grad)
    torch.testing.assert_close(ours.weight_hh.grad, ref.weight_hh_l0.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias_ih_l0.grad)


# ------------------------------------------------------------------------------------------------
# derivative clipping (Section 2.1)
# ------------------------------------------------------------------------------------------------


def _grads(layer, x, w_y, fused):
    layer.fused = fused
    y, _ = layer(x)
    return torch.autograd.grad((y * w_y).sum(), [x, *layer.parameters()])


@pytest.mark.parametrize("fused", [True, False])
def test_clip_large_bound_changes_nothing(fused):
    layer = PeepholeLSTM(3, 5).to(F64)
    _randomise(layer)
    x = torch.randn(8, 2, 3, dtype=F64, requires_grad=True)
    w_y = torch.randn(8, 2, 5, dtype=F64) * 10
    free = _grads(layer, x, w_y, fused)
    layer.clip = 1e6
    bounded = _grads(layer, x, w_y, fused)
    for a, b in zip(free, bounded):
        assert torch.equal(a, b)  # exactly: a clamp that never bites is the identity
    layer.clip = 0.01
    tight = _grads(layer, x, w_y, fused)
    for a, b in zip(free, tight):
        assert not torch.allclose(a, b)


def test_clip_bounds_the_preactivation_gradients(monkeypatch):
    """Spy on every clipped pre-activation of the reference: the gradient reaching it (after the
    clamp) is within the bound, equals the clamped incoming gradient, and the incoming gradient did
    exceed the bound somewhere (so the check is not vacuous)."""
    clip = 0.02
    seen: list[dict] = []  # one per clipped pre-activation: the gradient into the clamp and after it
    original = lstm_mod.clip_preactivation

    def spy(a, bound):
        assert bound == clip
        record: dict = {}
        seen.append(record)
        a.register_hook(lambda g: record.__setitem__("after", g))  # w.r.t. the pre-activation itself
        out = original(a, bound)
        out.register_hook(lambda g: record.__setitem__("into", g))  # arriving from the activation
        return out

    monkeypatch.setattr(lstm_mod, "clip_preactivation", spy)
    layer = PeepholeLSTM(3, 4, clip=clip, fused=False).to(F64)
    _randomise(layer)
    y, _ = layer(torch.randn(6, 2, 3, dtype=F64))
    (y * torch.randn_like(y) * 10).sum().backward()
    assert len(seen) == 6 * 4  # four gates, every step
    for record in seen:
        assert record["after"].abs().max() <= clip
        torch.testing.assert_close(record["after"], record["into"].clamp(-clip, clip), rtol=0, atol=0)
    assert max(r["into"].abs().max().item() for r in seen) > 10 * clip


def test_fused_clip_bounds_the_preactivation_gradient():
    """With T = B = 1 the bias gradient is the pre-activation gradient itself; for the o gate it
    is exactly the clamped unclipped one (no other clamp feeds it)."""
    H, clip = 6, 0.05
    layer = PeepholeLSTM(2, H).to(F64)
    _randomise(layer, 1.0)
    x = torch.randn(1, 1, 2, dtype=F64)
    w_y = torch.randn(1, 1, H, dtype=F64) * 20
    (layer(x)[0] * w_y).sum().backward()
    free = layer.bias.grad.clone()
    layer.zero_grad()
    layer.clip = clip
    (layer(x)[0] * w_y).sum().backward()
    clipped = layer.bias.grad
    assert free.abs().max() > 3 * clip
    assert clipped.abs().max() <= clip
    torch.testing.assert_close(clipped[3 * H :], free[3 * H :].clamp(-clip, clip), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------
# step() equals forward()
# ------------------------------------------------------------------------------------------------


def test_layer_step_equals_forward():
    T, B, I, H = 6, 3, 4, 5
    layer = PeepholeLSTM(I, H, clip=0.5).to(F64)
    _randomise(layer)
    x = torch.randn(T, B, I, dtype=F64)
    state0 = LSTMState(torch.randn(B, H, dtype=F64), torch.randn(B, H, dtype=F64))
    y, final = layer(x, state0)
    state, hs = state0, []
    for x_t in x:
        state = layer.step(x_t, state)
        hs.append(state.h)
    torch.testing.assert_close(torch.stack(hs), y)
    torch.testing.assert_close(state.c, final.c)
    assert layer.step(x[0]).h.shape == (B, H)  # None state means zeros


# ------------------------------------------------------------------------------------------------
# DeepLSTM (eqs. 1–2)
# ------------------------------------------------------------------------------------------------


def test_deep_lstm_shapes_and_zero_state():
    net = DeepLSTM(3, 7, 3, extra_size=2)
    assert [l.input_size for l in net.layers] == [3 + 2, 3 + 7 + 2, 3 + 7 + 2]
    assert isinstance(net.layers, torch.nn.ModuleList)
    state = net.zero_state(4, dtype=F64)
    assert len(state) == 3 and all(s.h.shape == (4, 7) and s.c.dtype == F64 for s in state)
    h_all, new = net(torch.randn(5, 4, 3), extra=torch.randn(5, 4, 2))
    assert h_all.shape == (5, 4, 3 * 7)
    assert len(new) == 3 and all(isinstance(s, LSTMState) for s in new)
    with pytest.raises(ValueError):
        net(torch.randn(5, 4, 3))  # extra missing


@pytest.mark.parametrize("fused", [True, False])
def test_deep_lstm_is_the_skip_connected_stack(fused):
    """Layer 1 reads [x, extra] (eq. 1); layer n > 1 reads [x, h^{n-1}, extra] (eq. 2); the output
    concatenates every layer."""
    T, B, I, H, E = 5, 2, 3, 4, 2
    net = DeepLSTM(I, H, 3, extra_size=E, fused=fused).to(F64)
    _randomise(net)
    x, extra = torch.randn(T, B, I, dtype=F64), torch.randn(T, B, E, dtype=F64)
    state = [LSTMState(torch.randn(B, H, dtype=F64), torch.randn(B, H, dtype=F64)) for _ in range(3)]
    h_all, final = net(x, state, extra)
    h1, s1 = net.layers[0](torch.cat([x, extra], 2), state[0])
    h2, s2 = net.layers[1](torch.cat([x, h1, extra], 2), state[1])
    h3, s3 = net.layers[2](torch.cat([x, h2, extra], 2), state[2])
    torch.testing.assert_close(h_all, torch.cat([h1, h2, h3], 2))
    for a, b in zip(final, [s1, s2, s3]):
        torch.testing.assert_close(a.h, b.h)
        torch.testing.assert_close(a.c, b.c)


@pytest.mark.parametrize("fused", [True, False])
def test_deep_lstm_input_reaches_every_layer_directly(fused):
    """Cut the layer-to-layer paths (the weight columns reading h^{n-1}): every layer's output still
    depends on x (the skip connection of eq. 2) and no longer on the layer below; restore them and
    it depends on the layer below again."""
    T, B, I, H, N = 4, 2, 3, 5, 3
    net = DeepLSTM(I, H, N, fused=fused).to(F64)
    _randomise(net)
    with torch.no_grad():
        for layer in net.layers[1:]:
            layer.weight_ih[:, I : I + H] = 0  # the columns reading h^{n-1}
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    h_all, _ = net(x)
    for n in range(N):
        h_n = h_all[:, :, n * H : (n + 1) * H]  # (T, B, H)
        wrt = [x] + ([net.layers[n - 1].weight_ih] if n > 0 else [])
        grads = torch.autograd.grad(h_n.sum(), wrt, retain_graph=True)
        assert grads[0].abs().min() > 0  # every x_t reaches layer n
        if n > 0:
            assert torch.count_nonzero(grads[1]) == 0  # but not through layer n − 1
    with torch.no_grad():
        net.layers[1].weight_ih[:, I : I + H] = torch.randn(4 * H, H, dtype=F64)
    h_all, _ = net(x)
    (g,) = torch.autograd.grad(h_all[:, :, H : 2 * H].sum(), net.layers[0].weight_ih)
    assert g.abs().sum() > 0


@pytest.mark.parametrize("fused", [True, False])
def test_deep_lstm_two_chunks_equal_one_pass(fused):
    """Carrying the state from one chunk into the next equals one pass: values and gradients
    (gradients flow through the carried state into the first chunk)."""
    T, B, I, H, E = 10, 2, 3, 4, 2
    net = DeepLSTM(I, H, 2, extra_size=E, clip=0.3, fused=fused).to(F64)
    _randomise(net)
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    extra = torch.randn(T, B, E, dtype=F64, requires_grad=True)
    w_y = torch.randn(T, B, 2 * H, dtype=F64) * 5
    params = list(net.parameters())

    h_all, final = net(x, None, extra)
    g_one = torch.autograd.grad((h_all * w_y).sum() + final[1].c.sum(), [x, extra, *params])

    h_a, mid = net(x[:4], None, extra[:4])
    h_b, final2 = net(x[4:], mid, extra[4:])
    h_two = torch.cat([h_a, h_b])
    torch.testing.assert_close(h_two, h_all, rtol=1e-12, atol=1e-12)
    g_two = torch.autograd.grad((h_two * w_y).sum() + final2[1].c.sum(), [x, extra, *params])
    _assert_all_close(g_two, g_one, rtol=1e-10, atol=1e-12)


def test_deep_lstm_fused_equals_reference():
    T, B, I, H, E = 8, 3, 2, 5, 3
    net = DeepLSTM(I, H, 3, extra_size=E, clip=0.1).to(F64)
    _randomise(net)
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    extra = torch.randn(T, B, E, dtype=F64, requires_grad=True)
    state = [LSTMState(torch.randn(B, H, dtype=F64, requires_grad=True), torch.randn(B, H, dtype=F64, requires_grad=True)) for _ in range(3)]
    w_y = torch.randn(T, B, 3 * H, dtype=F64) * 5
    out = {}
    for fused in (True, False):
        for layer in net.layers:
            layer.fused = fused
        h_all, final = net(x, state, extra)
        leaves = [x, extra, *net.parameters(), *(t for s in state for t in s)]
        out[fused] = [h_all, *torch.autograd.grad((h_all * w_y).sum() + sum(s.c.sum() for s in final), leaves)]
    _assert_all_close(out[True], out[False], rtol=1e-10, atol=1e-12)


def test_deep_lstm_step_equals_forward():
    T, B, I, H, E = 6, 2, 3, 4, 2
    net = DeepLSTM(I, H, 3, extra_size=E, clip=1.0).to(F64)
    _randomise(net)
    x, extra = torch.randn(T, B, I, dtype=F64), torch.randn(T, B, E, dtype=F64)
    h_all, final = net(x, None, extra)
    state, outs = None, []
    for x_t, e_t in zip(x, extra):
        h_t, state = net.step(x_t, state, e_t)
        outs.append(h_t)
    torch.testing.assert_close(torch.stack(outs), h_all)
    for a, b in zip(state, final):
        torch.testing.assert_close(a.h, b.h)
        torch.testing.assert_close(a.c, b.c)


@pytest.mark.parametrize("fused", [True, False])
def test_matches_hand_computed_peephole_cell(fused):
    """Two steps of one cell computed with scalar math from eqs. 7–11: the input and forget gates
    peep at c_{t-1}, the output gate at the new c_t."""
    import math

    sig = lambda a: 1 / (1 + math.exp(-a))  # noqa: E731
    layer = PeepholeLSTM(1, 1, fused=fused).to(F64)
    W_x, W_h, b = [0.3, -0.2, 0.5, 0.7], [0.4, 0.1, -0.6, 0.2], [0.1, 0.2, -0.1, 0.05]
    w_ci, w_cf, w_co = 0.5, -0.4, 0.9
    with torch.no_grad():
        layer.weight_ih.copy_(torch.tensor(W_x).view(4, 1))
        layer.weight_hh.copy_(torch.tensor(W_h).view(4, 1))
        layer.bias.copy_(torch.tensor(b))
        layer.w_ci.fill_(w_ci)
        layer.w_cf.fill_(w_cf)
        layer.w_co.fill_(w_co)
    xs, h, c, hs = [0.8, -1.3], 0.25, -0.6, []
    for x in xs:
        i = sig(W_x[0] * x + W_h[0] * h + w_ci * c + b[0])
        f = sig(W_x[1] * x + W_h[1] * h + w_cf * c + b[1])
        c = f * c + i * math.tanh(W_x[2] * x + W_h[2] * h + b[2])
        o = sig(W_x[3] * x + W_h[3] * h + w_co * c + b[3])
        h = o * math.tanh(c)
        hs.append(h)
    state = LSTMState(torch.full((1, 1), 0.25, dtype=F64), torch.full((1, 1), -0.6, dtype=F64))
    y, (h_T, c_T) = layer(torch.tensor(xs, dtype=F64).view(2, 1, 1), state)
    torch.testing.assert_close(y.flatten(), torch.tensor(hs, dtype=F64))
    torch.testing.assert_close(c_T.item(), c)


@pytest.mark.parametrize("I", [0, 3])
def test_x_proj_is_an_added_input_projection_fused_equals_reference(I):
    """x_proj (T, B, 4H) added to the pre-activations = an input [x | e] through weights [W_ih | I]."""
    torch.manual_seed(0)
    T, B, H = 5, 2, 3
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    e = torch.randn(T, B, 4 * H, dtype=F64, requires_grad=True)
    p = [torch.randn(*s, dtype=F64, requires_grad=True) for s in [(4 * H, I), (4 * H, H), (4 * H,), (H,), (H,), (H,)]]
    state = LSTMState(torch.randn(B, H, dtype=F64), torch.randn(B, H, dtype=F64))
    results = []
    for run in (lstm_fused, lstm_reference):
        h, s = run(x, state, *p, clip=0.05, x_proj=e)
        loss = (h ** 2).sum() + s.c.sum()
        results.append([h, s.c, *torch.autograd.grad(loss, [x, e, *p])])
    # the same layer written with the projection as extra input columns through an identity block
    W = torch.cat([p[0], torch.eye(4 * H, dtype=F64)], dim=1)
    h, s = lstm_reference(torch.cat([x, e], dim=2), state, W, *p[1:], clip=0.05)
    loss = (h ** 2).sum() + s.c.sum()
    gx_e = torch.autograd.grad(loss, [x, e, *p[1:]])
    for a, b in zip(results[0], results[1]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(results[1][0], h)
    for a, b in zip(results[1][2:4] + results[1][5:], gx_e):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------------------------
# matmul_dtype: bfloat16 matrix products in the fused path (train.matmul_dtype, a deviation)
# ------------------------------------------------------------------------------------------------


def _float32_case(seed: int = 0):
    torch.manual_seed(seed)
    T, B, I, H = 20, 4, 5, 12
    layer = PeepholeLSTM(I, H, clip=1.0)
    _randomise(layer, 0.3)
    x = torch.randn(T, B, I, requires_grad=True)
    state = LSTMState(torch.randn(B, H, requires_grad=True), torch.randn(B, H, requires_grad=True))
    w = [torch.randn(T, B, H), torch.randn(B, H), torch.randn(B, H)]
    return layer, x, state, w


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


def test_bf16_matmuls_stay_close_to_the_float32_reference_and_really_round():
    """Outputs, final state and every gradient (x, the six parameters, h_0, c_0) within a few 1e-3 of the
    float32 reference, all float32 tensors; and the setting is applied: each of them differs from the
    float32 fused result."""
    layer, x, state, w = _float32_case()
    full = _run(layer, x, state, True, *w)
    ref = _run(layer, x, state, False, *w)
    with matmul_dtype(torch.bfloat16):
        low = _run(layer, x, state, True, *w)
    assert len(low) == 3 + 1 + 6 + 2
    for k, (a, b, f) in enumerate(zip(low, ref, full)):
        assert a.dtype == torch.float32, k
        assert _rel_err(a, b) < 1e-2, (k, _rel_err(a, b))
        assert _rel_err(f, b) < 1e-5, k  # float32 fused = reference, so the gap above is bf16's rounding
        assert not torch.equal(a, f), k


def test_bf16_matmuls_with_an_input_projection_and_in_the_deep_stack():
    """The text nets' path (x_proj, I = 0) and the skip-connected stack under bfloat16 products."""
    torch.manual_seed(3)
    T, B, H = 9, 3, 8
    e = torch.randn(T, B, 4 * H, requires_grad=True)
    x = torch.zeros(T, B, 0)
    p = [(torch.randn(*s) * 0.4).requires_grad_() for s in [(4 * H, 0), (4 * H, H), (4 * H,), (H,), (H,), (H,)]]
    state = LSTMState(torch.zeros(B, H), torch.zeros(B, H))
    results = []
    for dtype in (None, torch.bfloat16):
        with matmul_dtype(dtype):
            h, s = lstm_fused(x, state, *p, clip=1.0, x_proj=e)
            results.append([h, s.c, *torch.autograd.grad((h ** 2).sum() + s.c.sum(), [e, *p[1:]])])
    for a, b in zip(results[1], results[0]):
        assert _rel_err(a, b) < 1e-2
        assert not torch.equal(a, b)
    net = DeepLSTM(3, 10, 3, clip=10.0)
    xs = torch.randn(15, 2, 3)
    grads = []
    for dtype in (None, torch.bfloat16):
        net.zero_grad()
        with matmul_dtype(dtype):
            out, _ = net(xs)
            out.square().sum().backward()
        grads.append([out.detach()] + [q.grad.clone() for q in net.parameters()])
    for a, b in zip(grads[1], grads[0]):
        assert _rel_err(a, b) < 1e-2
        assert not torch.equal(a, b)


def test_matmul_dtype_leaves_the_reference_path_and_full_precision_alone():
    layer, x, state, w = _float32_case(1)
    full = _run(layer, x, state, True, *w)
    ref = _run(layer, x, state, False, *w)
    with matmul_dtype(torch.bfloat16):
        ref_under = _run(layer, x, state, False, *w)  # the reference path ignores the setting
    with matmul_dtype(torch.float32):  # the tensors' own dtype: no rounding at all
        full_under = _run(layer, x, state, True, *w)
    _assert_all_close(ref_under, ref, rtol=0, atol=0)
    _assert_all_close(full_under, full, rtol=0, atol=0)


def test_matmul_dtype_is_scoped_checked_and_per_thread():
    import threading

    current = lstm_mod._MATMUL_DTYPE.get
    assert current() is None
    with matmul_dtype(torch.bfloat16):
        with matmul_dtype(None):
            assert current() is None
        with matmul_dtype(torch.float32):  # float32 is full precision: nothing is rounded
            assert current() is None
        assert current() is torch.bfloat16
        with pytest.raises(RuntimeError), matmul_dtype(None):
            raise RuntimeError("boom")
        assert current() is torch.bfloat16  # restored after an error inside
        seen = []
        worker = threading.Thread(target=lambda: seen.append(current()))
        worker.start()
        worker.join()
        assert seen == [None]  # another thread (the web page's) keeps full precision
    assert current() is None
    for bad in (torch.float16, torch.float64, torch.int8, "bfloat16"):
        with pytest.raises(ValueError, match="matmul_dtype: expected torch.bfloat16, torch.float32 or None"):
            with matmul_dtype(bad):
                pass


def test_bf16_forward_keeps_its_precision_for_the_backward():
    """The dtype in force at the forward is the one its backward uses, whenever backward() runs."""
    layer, x, state, w = _float32_case(2)
    with matmul_dtype(torch.bfloat16):
        y, (h_T, c_T) = layer(x, state)
    loss = (y * w[0]).sum() + (h_T * w[1]).sum() + (c_T * w[2]).sum()
    late = torch.autograd.grad(loss, list(layer.parameters()))  # outside the block
    with matmul_dtype(torch.bfloat16):
        inside = _run(layer, x, state, True, *w)[4:10]  # the six parameters' gradients
    _assert_all_close(late, inside, rtol=0, atol=0)


def test_a_float32_forward_keeps_full_precision_in_a_bf16_backward():
    layer, x, state, w = _float32_case(4)
    full = _run(layer, x, state, True, *w)[4:10]
    y, (h_T, c_T) = layer(x, state)
    loss = (y * w[0]).sum() + (h_T * w[1]).sum() + (c_T * w[2]).sum()
    with matmul_dtype(torch.bfloat16):
        late = torch.autograd.grad(loss, list(layer.parameters()))
    _assert_all_close(late, full, rtol=0, atol=0)


def test_the_config_and_the_lstm_know_the_same_matmul_dtypes():
    from graves.config import MATMUL_DTYPES as names

    assert tuple(lstm_mod.MATMUL_DTYPES) == names
    for name, dtype in lstm_mod.MATMUL_DTYPES.items():
        with matmul_dtype(dtype):  # each is accepted
            assert lstm_mod._MATMUL_DTYPE.get() is (None if name == "float32" else dtype)
