"""The handwriting networks (Sections 4–5): sizes, step == forward, the synthesis net against a literal
transcription of eqs. 52–53, window invariants, text padding, output-derivative clipping, load_model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from graves.checkpoint import CheckpointError, save_checkpoint
from graves.config import Config, ModelConfig
from graves.data.alphabet import Alphabet
from graves.models import build_model, load_model
from graves.models.handwriting import (
    HandwritingPredictor,
    HandwritingSynthesizer,
    Layer1Weights,
    SynthState,
    layer1_window_fused,
    layer1_window_reference,
)

TINY = ModelConfig(kind="synthesis", hidden_size=6, num_layers=3, mixtures=2, window_mixtures=2)


def n_weights(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _text(B: int, U: int, V: int, lengths=None, dtype=torch.float64) -> torch.Tensor:
    ids = torch.randint(1, V, (B, U))
    c = torch.nn.functional.one_hot(ids, V).to(dtype)  # (B, U, V)
    if lengths is not None:
        for b, n in enumerate(lengths):
            c[b, n:] = 0
    return c


# ------------------------------------------------------------------------------------------ sizes


def test_prediction_nets_have_about_3_4M_weights():
    # Section 4.2: 3 x 400 and 1 x 900, both "approximately 3.4M weights", M = 20.
    three = HandwritingPredictor(ModelConfig(kind="handwriting", hidden_size=400, num_layers=3, mixtures=20))
    one = HandwritingPredictor(ModelConfig(kind="handwriting", hidden_size=900, num_layers=1, mixtures=20))
    assert n_weights(three) == 3_368_121
    assert n_weights(one) == 3_366_121
    for m in (three, one):
        assert abs(n_weights(m) - 3.4e6) / 3.4e6 < 0.02
    assert three.output.out_features == 121


def test_synthesis_net_has_about_3_7M_weights():
    # Section 5.2: 3 x 400, M = 20, K = 10 (30 window parameters), "approximately 3.7M" weights.
    cfg = ModelConfig(kind="synthesis", hidden_size=400, num_layers=3, mixtures=20, window_mixtures=10)
    paper = HandwritingSynthesizer(cfg, len(Alphabet.build("paper57")))
    train = HandwritingSynthesizer(cfg, 80 + 2)  # the 80 characters of the paper's training split
    every = HandwritingSynthesizer(cfg, len(Alphabet.build("full")))
    assert paper.window.linear.out_features == 30
    assert n_weights(paper) == 3_658_551  # 57 classes (+ the padding column)
    assert n_weights(train) == 3_773_751  # 80 characters + unknown (+ padding): "full" on the paper's split
    assert n_weights(every) == 3_792_951  # all 84 IAM characters + unknown (+ padding)
    for m in (paper, train, every):
        assert abs(n_weights(m) - 3.7e6) / 3.7e6 < 0.03


# ------------------------------------------------------------------------------------- predictor


def test_predictor_step_equals_forward():
    cfg = dataclasses.replace(TINY, kind="handwriting")
    m = HandwritingPredictor(cfg).double()
    x = torch.randn(7, 3, 3, dtype=torch.float64)
    y, state = m(x)
    s, ys = m.zero_state(3), []
    for x_t in x.unbind(0):
        y_t, s = m.step(x_t, s)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys), y)
    for a, b in zip(s, state):
        torch.testing.assert_close(a.h, b.h)
        torch.testing.assert_close(a.c, b.c)
    # carrying the state across two chunks is the same as one pass
    y1, s1 = m(x[:3])
    y2, _ = m(x[3:], s1)
    torch.testing.assert_close(torch.cat([y1, y2]), y)


def test_output_derivatives_are_clipped():
    # Section 4.2: dL/dŷ is clamped to [-100, 100] before it reaches the output layer.
    for kind in ("handwriting", "synthesis"):
        cfg = dataclasses.replace(TINY, kind=kind, output_clip=100.0)
        m = build_model(Config(model=cfg), {"alphabet": Alphabet.build("paper57").to_dict()})
        x = torch.randn(1, 1, 3)
        y = m(x)[0] if kind == "handwriting" else m(x, _text(1, 2, len(Alphabet.build("paper57")), dtype=torch.float32))[0]
        (1000.0 * y).sum().backward()
        assert torch.allclose(m.output.bias.grad, torch.full_like(m.output.bias.grad, 100.0))


@pytest.mark.parametrize("kind", ["handwriting", "synthesis", "text"])
def test_every_lstm_layer_clips_its_gate_derivatives(kind):
    """Section 2.1: each net hands its config's ``lstm_clip`` to every LSTM layer (not ``output_clip``,
    not only the first layer), and the bound changes every layer's gradient."""
    from graves.models.text import TextPredictor

    def build(lstm_clip):
        cfg = dataclasses.replace(TINY, kind=kind, lstm_clip=lstm_clip, output_clip=55.0 if lstm_clip else None)
        if kind == "text":
            return TextPredictor(cfg, 7)
        return build_model(Config(model=cfg), {"alphabet": Alphabet.build("paper57").to_dict()})

    torch.manual_seed(0)
    clipped, free = build(3e-4), build(None)
    free.load_state_dict(clipped.state_dict())
    assert [layer.clip for layer in clipped.lstm.layers] == [3e-4] * TINY.num_layers
    assert [layer.clip for layer in free.lstm.layers] == [None] * TINY.num_layers
    V = len(Alphabet.build("paper57"))
    x = torch.randn(6, 2, 3)
    c = _text(2, 3, V, dtype=torch.float32)
    ids = torch.randint(0, 7, (6, 2))
    for m in (clipped, free):
        y = m(ids)[0] if kind == "text" else m(x, c)[0] if kind == "synthesis" else m(x)[0]
        y.square().sum().backward()
    for a, b in zip(clipped.lstm.layers, free.lstm.layers):
        assert not torch.allclose(a.weight_hh.grad, b.weight_hh.grad, rtol=1e-3)


# ------------------------------------------------------------------------------------- synthesis


def _literal_synthesis(m: HandwritingSynthesizer, x: torch.Tensor, c: torch.Tensor):
    """Eqs. 52–53 and 3 transcribed with the library's per-layer ``step`` and the ``SoftWindow`` module."""
    T, B, _ = x.shape
    s = m.lstm.zero_state(B, dtype=x.dtype)
    kappa = torch.zeros(B, m.cfg.window_mixtures, dtype=x.dtype)
    w = torch.zeros(B, m.vocab_size, dtype=x.dtype)
    ys, phis = [], []
    for t in range(T):
        s1 = m.lstm.layers[0].step(torch.cat([x[t], w], 1), s[0])  # (eq. 52): w_{t-1} into layer 1
        w, kappa, phi = m.window(s1.h, kappa, c)  # (eqs. 46–51)
        h, hs, new = s1.h, [s1.h], [s1]
        for layer, st in zip(m.lstm.layers[1:], s[1:]):
            st = layer.step(torch.cat([x[t], h, w], 1), st)  # (eq. 53): w_t into layers 2..N
            h = st.h
            hs.append(h)
            new.append(st)
        s = new
        ys.append(m.output(torch.cat(hs, 1)))
        phis.append(phi)
    return torch.stack(ys), torch.stack(phis)


@pytest.mark.parametrize("fused", [True, False])
def test_synthesis_forward_matches_literal_equations_values_and_gradients(fused):
    V = 7
    m = HandwritingSynthesizer(dataclasses.replace(TINY, fused=fused), V).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    c = _text(2, 4, V, lengths=[4, 2])
    y, _, phi = m(x, c)
    y_ref, phi_ref = _literal_synthesis(m, x, c)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(phi, phi_ref)
    g = torch.randn_like(y)
    grads = torch.autograd.grad((y * g).sum(), list(m.parameters()))
    grads_ref = torch.autograd.grad((y_ref * g).sum(), list(m.parameters()))
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b)


def test_synthesis_step_equals_forward_and_gives_phi_up_to_U_plus_1():
    V, T, B, U = 9, 8, 3, 5
    m = HandwritingSynthesizer(TINY, V).double()
    x = torch.randn(T, B, 3, dtype=torch.float64)
    c = _text(B, U, V, lengths=[5, 3, 1])
    y, state, phi = m(x, c)
    s, ys, phis = None, [], []
    for x_t in x.unbind(0):
        y_t, s, phi_t = m.step(x_t, c, s)
        ys.append(y_t)
        phis.append(phi_t)
    assert phis[0].shape == (B, U + 1)
    torch.testing.assert_close(torch.stack(ys), y)
    torch.testing.assert_close(torch.stack(phis)[..., :U], phi)
    torch.testing.assert_close(s.kappa, state.kappa)
    torch.testing.assert_close(s.w, state.w)
    # φ(t, U + 1), the end-of-text rule's position, is eq. 46 at u = U + 1: the same as running forward
    # with one more (zero) text row
    _, _, phi_more = m(x, torch.cat([c, torch.zeros(B, 1, V, dtype=c.dtype)], dim=1))
    torch.testing.assert_close(torch.stack(phis), phi_more)
    # chunked forward with the carried state equals one pass
    y1, s1, _ = m(x[:4], c)
    y2, s2, _ = m(x[4:], c, s1)
    torch.testing.assert_close(torch.cat([y1, y2]), y)
    torch.testing.assert_close(s2.kappa, state.kappa)


def test_window_invariants_inside_the_model():
    V, T, B, U = 9, 30, 4, 6
    m = HandwritingSynthesizer(TINY, V)
    x = torch.randn(T, B, 3)
    c = _text(B, U, V, dtype=torch.float32)
    s = m.zero_state(B)
    assert isinstance(s, SynthState) and torch.equal(s.kappa, torch.zeros(B, TINY.window_mixtures))  # κ_0 = 0
    kappas = [s.kappa]
    for x_t in x.unbind(0):
        _, s, phi = m.step(x_t, c, s)
        assert torch.all(phi >= 0)  # α > 0: φ is a sum of positive bumps (eq. 46)
        torch.testing.assert_close(s.w, (phi[:, :U, None] * c).sum(1))  # w_t = Σ_u φ(t, u) c_u (eq. 47)
        kappas.append(s.kappa)
    k = torch.stack(kappas)  # (T + 1, B, K)
    assert torch.all(k[1:] > k[:-1])  # κ_t = κ_{t−1} + exp(κ̂_t): it never goes back (eq. 51)


def test_text_padding_does_not_change_outputs():
    V = 8
    m = HandwritingSynthesizer(TINY, V).double()
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    c = _text(1, 3, V)
    y, _, phi = m(x, c)
    c_padded = torch.cat([c, torch.zeros(1, 4, V, dtype=torch.float64)], dim=1)  # 4 padding rows
    y_p, _, phi_p = m(x, c_padded)
    torch.testing.assert_close(y_p, y)
    torch.testing.assert_close(phi_p[..., :3], phi)


def test_synthesis_gradcheck_float64():
    V = 4
    cfg = dataclasses.replace(TINY, hidden_size=3, num_layers=2, lstm_clip=None, output_clip=None, fused=False)
    m = HandwritingSynthesizer(cfg, V).double()
    c = _text(1, 3, V)
    x = torch.randn(3, 1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: m(x, c)[0], (x,))


def test_wrong_vocabulary_size_is_an_error():
    m = HandwritingSynthesizer(TINY, 5)
    with pytest.raises(ValueError, match="classes"):
        m(torch.zeros(2, 1, 3), torch.zeros(1, 2, 6))


# ------------------------------------------------------------------------------------ load_model


@pytest.mark.parametrize("kind", ["handwriting", "synthesis"])
def test_load_model_round_trip(tmp_path, kind):
    cfg = Config(model=dataclasses.replace(TINY, kind=kind))
    meta = {"config": cfg.to_dict(), "alphabet": Alphabet.build("full").to_dict(),
            "normaliser": {"mean": [0.0, 0.0], "std": [1.0, 1.0]}}
    model = build_model(cfg, meta)
    save_checkpoint(tmp_path / "ck", model.state_dict(), meta)
    again, meta2 = load_model(tmp_path / "ck")
    assert type(again) is type(model) and not again.training
    assert meta2["alphabet"] == meta["alphabet"]
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(4, 2, 3)
    if kind == "synthesis":
        c, _ = Alphabet.build("full").one_hot(["ab", "c"])
        torch.testing.assert_close(again(x, c)[0], model.eval()(x, c)[0])
    else:
        torch.testing.assert_close(again(x)[0], model.eval()(x)[0])


def test_load_model_rejects_mismatched_weights(tmp_path):
    cfg = Config(model=dataclasses.replace(TINY, kind="handwriting"))
    model = build_model(cfg)
    bigger = dataclasses.replace(cfg.model, hidden_size=7)
    save_checkpoint(tmp_path / "ck", model.state_dict(), {"config": Config(model=bigger).to_dict()})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path / "ck")


# --------------------------------------------------------------------- fused layer 1 + window path


def _layer1_inputs(T=5, B=3, H=4, K=2, U=4, V=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    gx = r(T, B, 4 * H)
    h0, c0 = r(B, H), r(B, H)
    kappa0 = r(B, K).abs()
    w0 = r(B, V)
    ids = torch.randint(1, V, (B, U), generator=g)
    c = torch.nn.functional.one_hot(ids, V).double()
    c[0, U - 1:] = 0  # a padded text
    p = Layer1Weights(r(4 * H, H) * 0.5, r(4 * H, V) * 0.5, r(H), r(H), r(H), r(3 * K, H) * 0.5, r(3 * K) * 0.3)
    return [gx, h0, c0, kappa0, w0], c, p


@pytest.mark.parametrize("clip", [None, 0.05])
def test_fused_layer1_window_equals_reference(clip):
    """Values and every gradient, with upstream gradients on every output and (clip=0.05) binding clipping."""
    tensors, c, p = _layer1_inputs()
    leaves = [t.clone().requires_grad_() for t in tensors]
    p_leaves = Layer1Weights(*(t.clone().requires_grad_() for t in p))
    out_f = layer1_window_fused(*leaves, c, p_leaves, clip)
    out_r = layer1_window_reference(*leaves, c, p_leaves, clip)
    for a, b in zip(out_f, out_r):
        torch.testing.assert_close(a, b)
    g = torch.Generator().manual_seed(1)
    ups = [torch.randn(o.shape, generator=g, dtype=torch.float64) * 10 for o in out_f]
    inputs = leaves + list(p_leaves)
    grads_f = torch.autograd.grad(sum((o * u).sum() for o, u in zip(out_f, ups)), inputs)
    grads_r = torch.autograd.grad(sum((o * u).sum() for o, u in zip(out_r, ups)), inputs)
    for a, b in zip(grads_f, grads_r):
        torch.testing.assert_close(a, b)
    if clip is not None:  # the bound really binds: without it the gradients differ
        grads_free = torch.autograd.grad(sum((o * u).sum() for o, u in zip(layer1_window_reference(*leaves, c, p_leaves, None), ups)), inputs)
        assert any(not torch.allclose(a, b) for a, b in zip(grads_f, grads_free))


def test_fused_layer1_window_gradcheck():
    tensors, c, p = _layer1_inputs(T=3, B=2, H=2, K=2, U=3, V=4, seed=3)
    inputs = [t.clone().requires_grad_() for t in tensors + list(p)]

    def f(*xs):
        return layer1_window_fused(*xs[:5], c, Layer1Weights(*xs[5:]), None)

    assert torch.autograd.gradcheck(f, inputs)


def test_fused_layer1_window_with_bf16_matmuls_stays_close_to_float32():
    """Under graves.nn.lstm.matmul_dtype(bfloat16) (train.matmul_dtype) the recurrent product h·W_hh is
    rounded: values and every gradient stay within 1 % (relative norm) of full precision, all float32, and
    the rounding is real (h and the W_hh gradient differ)."""
    from graves.nn.lstm import matmul_dtype

    tensors, c, p = _layer1_inputs(T=12, B=3, H=16, K=3, U=5, V=6, seed=5)
    tensors, c = [t.float() for t in tensors], c.float()
    p = Layer1Weights(*(t.float() * 0.6 for t in p))
    g = torch.Generator().manual_seed(2)
    results = []
    for dtype in (None, torch.bfloat16):
        leaves = [t.clone().requires_grad_() for t in tensors]
        p_leaves = Layer1Weights(*(t.clone().requires_grad_() for t in p))
        with matmul_dtype(dtype):
            out = layer1_window_fused(*leaves, c, p_leaves, 10.0)
        if not results:
            ups = [torch.randn(o.shape, generator=g) for o in out]
        grads = torch.autograd.grad(sum((o * u).sum() for o, u in zip(out, ups)), leaves + list(p_leaves))
        results.append([o.detach() for o in out] + list(grads))
    full, low = results
    for k, (a, b) in enumerate(zip(low, full)):
        assert a.dtype == torch.float32, k
        assert float((a - b).norm()) <= 1e-2 * float(b.norm()), k
    assert not torch.equal(low[0], full[0])  # h^1
    assert not torch.equal(low[5 + 5], full[5 + 5])  # ∂L/∂W_hh


@pytest.mark.parametrize("kind", ["handwriting", "synthesis"])
def test_whole_nets_train_on_bf16_matmuls_close_to_float32(kind):
    """The loss and every parameter's gradient of a prediction and a synthesis net under bfloat16 products
    (train.matmul_dtype) stay within 1 % of float32's, and differ from them."""
    from graves.nn.lstm import matmul_dtype

    torch.manual_seed(0)
    alphabet = Alphabet.build("full")
    model = build_model(Config(model=dataclasses.replace(TINY, kind=kind, hidden_size=24, num_layers=3)),
                        {"alphabet": alphabet.to_dict()})
    x = torch.randn(30, 2, 3)
    c, _ = alphabet.one_hot(["a quick", "fox"])
    results = []
    for dtype in (None, torch.bfloat16):
        model.zero_grad()
        with matmul_dtype(dtype):
            y = model(x, c)[0] if kind == "synthesis" else model(x)[0]
            loss = y.square().mean()
            loss.backward()
        results.append([loss.detach()] + [p.grad.clone() for p in model.parameters()])
    for k, (a, b) in enumerate(zip(results[1], results[0])):
        assert float((a - b).norm()) <= 1e-2 * float(b.norm()), k
    assert all(not torch.equal(a, b) for a, b in zip(results[1], results[0]))


def test_window_kappa_bias_initialisation_sets_only_the_kappa_biases():
    from graves.config import ModelConfig
    from graves.models.handwriting import HandwritingSynthesizer

    K = 4
    cfg = ModelConfig(kind="synthesis", hidden_size=8, num_layers=2, mixtures=2, window_mixtures=K)
    torch.manual_seed(0)
    plain = HandwritingSynthesizer(cfg, 6)
    torch.manual_seed(0)
    slow = HandwritingSynthesizer(ModelConfig(**{**cfg.__dict__, "window_kappa_bias": -3.0}), 6)
    b0, b1 = plain.window.linear.bias.detach(), slow.window.linear.bias.detach()
    assert torch.equal(b1[2 * K:], torch.full((K,), -3.0))  # κ̂ biases: the window starts at e^-3 chars/step
    assert torch.equal(b0[: 2 * K], b1[: 2 * K])  # α̂, β̂ untouched
    assert not torch.equal(b0[2 * K:], b1[2 * K:])
