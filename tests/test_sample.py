"""Handwriting sampling (SPEC §4 "Sampling"): end rule, cap, bias plumbing, priming, seeds, batching, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from graves.config import Config, ModelConfig
from graves.data.alphabet import Alphabet, UnknownCharacterError
from graves.data.primer import Primer
from graves.models.handwriting import HandwritingPredictor, HandwritingSynthesizer
from graves.nn.mixture import mixture_params, sample_mixture
from graves.sample import (
    SampleError,
    _draw,
    _FastStepper,
    _ModelStepper,
    end_of_text,
    lead_in,
    line_generators,
    normalise,
    sample_unconditional,
    synthesize,
    write,
)

ALPHABET = Alphabet.build("full")



NORM = {"mean": [8.0, -0.5], "std": [20.0, 30.0]}


def tiny_synth(seed: int = 0, dtype=torch.float32, H: int = 8, N: int = 2) -> HandwritingSynthesizer:
    torch.manual_seed(seed)
    cfg = ModelConfig(kind="synthesis", hidden_size=H, num_layers=N, mixtures=3, window_mixtures=2)
    return HandwritingSynthesizer(cfg, len(ALPHABET)).to(dtype).eval()


def tiny_predictor(seed: int = 0, dtype=torch.float32) -> HandwritingPredictor:
    torch.manual_seed(seed)
    cfg = ModelConfig(kind="handwriting", hidden_size=8, num_layers=2, mixtures=3)
    return HandwritingPredictor(cfg).to(dtype).eval()


def set_window(model: HandwritingSynthesizer, alpha_hat: float, beta_hat: float, kappa_hat: float) -> None:
    """Make the window input-independent: α = e^α̂, β = e^β̂, κ_t = κ_{t−1} + e^κ̂ for every line."""
    K = model.window.K
    with torch.no_grad():
        model.window.linear.weight.zero_()
        model.window.linear.bias.copy_(torch.tensor([alpha_hat] * K + [beta_hat] * K + [kappa_hat] * K))


# --------------------------------------------------------------------------------------------- end rule


def test_end_of_text_on_constructed_phi():
    # line 0: U = 3, φ(4) = 0.9 beats φ(1..3) → ends; line 1: U = 3, φ(2) = 1.0 > φ(4) → goes on;
    # line 2: U = 1 (padded batch): φ(2) = 0.5 > φ(1) = 0.4 → ends, whatever the padding holds.
    phi = torch.tensor(
        [
            [0.1, 0.2, 0.8, 0.9, 0.0],
            [0.1, 1.0, 0.8, 0.9, 0.0],
            [0.4, 0.5, 9.0, 9.0, 9.0],
        ]
    )
    lengths = torch.tensor([3, 3, 1])
    assert end_of_text(phi, lengths).tolist() == [True, False, True]
    # ties do not end the line (strictly greater)
    assert end_of_text(torch.tensor([[0.5, 0.5]]), torch.tensor([1])).tolist() == [False]


def test_synthesis_stops_when_the_window_passes_the_end():
    model = tiny_synth()
    set_window(model, 0.0, 0.0, float(np.log(0.5)))  # α = β = 1, κ_t = t / 2 (t = 1, 2, ...)
    text = "abc"
    U = len(text)
    # φ(t, u) = K exp(−(t/2 − u)²): the rule first holds at the step t with κ_t > U + 1/2.
    kappa = 0.5 * np.arange(1, 40)
    first = int(np.argmax(kappa > U + 0.5))  # 0-based step at which the line stops (no point drawn there)
    r = synthesize(model, ALPHABET, [text], bias=0.0, generator=0, finish_stroke=0)[0]  # the paper's rule
    assert r.finished
    assert len(r.offsets) == first
    assert r.phi.shape == (first, U)


def test_step_cap_stops_a_line_that_never_ends():
    model = tiny_synth()
    set_window(model, 0.0, 0.0, -30.0)  # κ never moves: the window stays before the first character
    r = synthesize(model, ALPHABET, ["ab", "abcd"], generator=0, max_steps_per_char=3)
    assert [x.finished for x in r] == [False, False]
    assert [len(x.offsets) for x in r] == [6, 12]  # the cap is per character of each line's own text


def _erratic_window(model: HandwritingSynthesizer) -> HandwritingSynthesizer:
    """κ's pace depends strongly on the drawn points, so whether a line finishes in time depends on the seed."""
    K = model.window.K
    with torch.no_grad():
        w = model.window.linear.weight
        w[2 * K :] = 3 * torch.randn(K, w.shape[1], generator=torch.Generator().manual_seed(4))
        model.window.linear.bias[2 * K :] = float(np.log(0.25))
    return model


def test_retries_rewrite_only_the_lines_the_cap_stopped():
    model = _erratic_window(tiny_synth(3))
    texts = ["abcd"] * 12
    once = synthesize(model, ALPHABET, texts, generator=0, max_steps_per_char=6)
    assert 0 < sum(not r.finished for r in once) < len(texts)  # the fixture: some lines stall, most do not
    tried = synthesize(model, ALPHABET, texts, generator=0, max_steps_per_char=6, retries=3)
    for a, b in zip(once, tried):
        if a.finished:  # untouched: same points, one attempt
            assert b.attempts == 1 and np.array_equal(a.offsets, b.offsets)
        else:
            assert b.attempts > 1 and not np.array_equal(a.offsets[: len(b.offsets)], b.offsets[: len(a.offsets)])
    assert all(r.finished for r in tried)
    again = synthesize(model, ALPHABET, texts, generator=0, max_steps_per_char=6, retries=3)
    assert all(np.array_equal(a.offsets, b.offsets) and a.attempts == b.attempts for a, b in zip(tried, again))


def test_retries_give_up_after_the_last_try():
    model = tiny_synth()
    set_window(model, 0.0, 0.0, -30.0)  # κ never moves: no attempt can finish
    r = synthesize(model, ALPHABET, ["ab", "abcd"], generator=0, max_steps_per_char=3, retries=2)
    assert [(x.finished, x.attempts, len(x.offsets)) for x in r] == [(False, 3, 6), (False, 3, 12)]
    for bad in (-1, 1.5, True):
        with pytest.raises(SampleError, match="retries"):
            synthesize(model, ALPHABET, ["ab"], retries=bad)


def _candidate_generators(seed_gen: torch.Generator, K: int) -> list[torch.Generator]:
    """The documented candidate generators: the line's own, then K - 1 seeded from a copy of it."""
    copy = torch.Generator()
    copy.set_state(seed_gen.get_state())
    seeds = torch.randint(0, 2**62, (K - 1,), generator=copy).tolist()
    return [seed_gen] + [torch.Generator().manual_seed(int(s)) for s in seeds]


def test_candidates_keep_the_first_to_finish_and_do_not_change_any_candidate():
    model = _erratic_window(tiny_synth(3))
    texts, K = ["abcd", "abc", "abcde"], 4
    raced = synthesize(model, ALPHABET, texts, generator=line_generators(5, 3), max_steps_per_char=6,
                       candidates=K)
    picked_other = 0
    for i, (text, r) in enumerate(zip(texts, raced)):
        # each candidate written alone, to its own end or cap: racing stops the losers early but
        # changes none of the points the winner drew
        alone = [synthesize(model, ALPHABET, [text], generator=[g], max_steps_per_char=6)[0]
                 for g in _candidate_generators(line_generators(5, 3)[i], K)]
        done = [j for j, a in enumerate(alone) if a.finished]
        # the first to reach its text's end: the fewest points before its last stroke was finished
        best = min(done, key=lambda j: (len(alone[j].offsets) - alone[j].tail, j)) if done else 0
        assert r.finished == bool(done)
        assert len(r.offsets) == len(alone[best].offsets)  # batch size changes only float rounding
        np.testing.assert_allclose(r.offsets, alone[best].offsets, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(r.phi, alone[best].phi, rtol=1e-5, atol=1e-6)
        picked_other += best != 0
    assert picked_other > 0  # the fixture: some line is won by a candidate other than the line's own
    # a line's result depends only on its own generator, not on its batch-mates
    solo = synthesize(model, ALPHABET, texts[1:2], generator=line_generators(5, 3)[1:2], max_steps_per_char=6,
                      candidates=K)[0]
    assert len(solo.offsets) == len(raced[1].offsets)
    np.testing.assert_allclose(solo.offsets, raced[1].offsets, rtol=1e-5, atol=1e-4)
    # one candidate is the plain sampler
    plain = synthesize(model, ALPHABET, texts, generator=line_generators(5, 3), max_steps_per_char=6)
    one = synthesize(model, ALPHABET, texts, generator=line_generators(5, 3), max_steps_per_char=6, candidates=1)
    assert all(np.array_equal(a.offsets, b.offsets) for a, b in zip(plain, one))


def test_candidates_with_retries_and_primers():
    model = _erratic_window(tiny_synth(3))
    texts = ["abcd"] * 8
    plain = synthesize(model, ALPHABET, texts, generator=0, max_steps_per_char=6, retries=3)
    raced = synthesize(model, ALPHABET, texts, generator=0, max_steps_per_char=6, retries=3, candidates=3)
    assert all(r.finished for r in raced)
    # racing needs fewer points (and never more tries) than writing each line once per try
    assert sum(len(r.offsets) for r in raced) < sum(len(r.offsets) for r in plain)
    assert sum(r.attempts for r in raced) <= sum(r.attempts for r in plain)
    stuck = tiny_synth()
    set_window(stuck, 0.0, 0.0, -30.0)  # κ never moves: no candidate can finish, the group is retried
    r = synthesize(stuck, ALPHABET, ["ab", "abc"], generator=0, max_steps_per_char=3, retries=2, candidates=2)
    assert [(x.finished, x.attempts, len(x.offsets)) for x in r] == [(False, 3, 6), (False, 3, 9)]
    primer = Primer(np.array([[1.0, 0.0, 0.0], [1.0, 0.5, 1.0]], np.float32), "hi")
    p = synthesize(model, ALPHABET, ["ab", "abc"], generator=0, max_steps_per_char=6, primer=primer, candidates=3)
    assert all(len(x.offsets) > 0 and x.text.startswith("hi ") for x in p)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(SampleError, match="candidates"):
            synthesize(model, ALPHABET, ["ab"], candidates=bad)


# --------------------------------------------------------------------------------------------- bias


def test_draw_equals_sample_mixture_row_by_row():
    torch.manual_seed(1)
    y_hat = torch.randn(4, 1 + 6 * 5)
    for bias in (0.0, 0.5):
        gens_a, gens_b = line_generators(7, 4), line_generators(7, 4)
        got = _draw(y_hat, torch.full((4, 1), bias), gens_a)
        want = torch.cat([sample_mixture(mixture_params(y_hat[i : i + 1], bias), gens_b[i]) for i in range(4)])
        assert torch.equal(got, want)


def test_huge_bias_writes_the_mode():
    model = tiny_synth(3)
    r = synthesize(model, ALPHABET, ["hello"], bias=1e4, generator=0, normaliser=NORM)[0]
    assert len(r.offsets) > 0
    # re-run the inputs that were fed (the debug trace) through the net: each drawn point is the mean of
    # the component with the largest π̂ at that step (σ → 0, π → one-hot).
    x = torch.from_numpy(normalise(r.inputs, NORM))[:, None, :]  # (T + 1, 1, 3)
    c, _ = ALPHABET.one_hot(["hello"])
    with torch.no_grad():
        y_hat, _, _ = model(x[:-1], c)
    p = mixture_params(y_hat[:, 0])
    j = p.log_pi.argmax(-1)
    mode = p.mu[torch.arange(len(j)), j]  # (T, 2)
    drawn = torch.from_numpy(normalise(r.offsets, NORM))[:, :2]
    torch.testing.assert_close(drawn, mode, atol=1e-4, rtol=1e-4)


def test_negative_or_bad_bias_is_a_clear_error():
    model = tiny_synth()
    for bad in (-0.1, float("nan")):
        with pytest.raises(SampleError, match="bias"):
            synthesize(model, ALPHABET, ["a"], bias=bad, generator=0)


# --------------------------------------------------------------------------------------------- text


def test_unknown_characters_and_empty_text():
    model = tiny_synth()
    with pytest.raises(UnknownCharacterError, match="é"):
        synthesize(model, ALPHABET, ["café"], generator=0)
    r = synthesize(model, ALPHABET, ["café"], generator=0, substitute=True)[0]
    assert r.text == "cafe" and r.phi.shape[1] == 4
    for empty in ("", "   "):
        with pytest.raises(SampleError, match="empty"):
            synthesize(model, ALPHABET, [empty], generator=0)


# --------------------------------------------------------------------------------------------- priming


class Spy:
    """A stand-in network that records every input it is stepped with (delegating to a real one)."""

    def __init__(self, model):
        self.model, self.fed = model, []

    def parameters(self):
        return self.model.parameters()

    def zero_state(self, B):
        return self.model.zero_state(B)

    def step(self, x, c, state):
        self.fed.append(x.clone())
        return self.model.step(x, c, state)


class PenScript(Spy):
    """A real net (its window, so its end rule) with a scripted pen: the point drawn at step s is
    (dx[s] or 1, 0, 1 if s in lifts else 0), exactly (σ̂ = −30: no spread; eqs. 18–22)."""

    def __init__(self, model, lifts, dx=None):
        super().__init__(model)
        self.lifts, self.dx = set(lifts), dict(dx or {})

    def step(self, x, c, state):
        y_hat, state, phi = super().step(x, c, state)
        s, M = len(self.fed) - 1, (y_hat.shape[1] - 1) // 6
        y_hat = torch.zeros_like(y_hat)
        y_hat[:, 0] = -60.0 if s in self.lifts else 60.0  # e = σ(−ê) (eq. 18): 1 or 0
        y_hat[:, 1 + M : 1 + 2 * M] = self.dx.get(s, 1.0)  # μ1 = dx of every component
        y_hat[:, 1 + 3 * M : 1 + 5 * M] = -30.0  # σ = e^−30
        return y_hat, state, phi


@pytest.mark.parametrize("fast", [True, False])
def test_the_last_stroke_and_delayed_strokes_are_finished_after_the_end_rule(fast):
    model = tiny_synth()
    set_window(model, 0.0, 0.0, float(np.log(0.5)))  # as above: the rule fires at a known step
    text = "abc"
    f = int(np.argmax(0.5 * np.arange(1, 40) > len(text) + 0.5))  # points the paper's rule keeps

    def write_with(lifts, dx=None, n=30):
        r = synthesize(PenScript(model, lifts, dx), ALPHABET, [text], generator=0, finish_stroke=n, fast=fast)[0]
        assert r.finished and r.phi.shape == (len(r.offsets), len(text))
        return len(r.offsets), r.tail, r.offsets[-1, 2]

    paper = synthesize(PenScript(model, [f + 2]), ALPHABET, [text], generator=0, finish_stroke=0)[0]
    assert (len(paper.offsets), paper.tail, paper.offsets[-1, 2]) == (f, 0, 0.0)  # cut mid-stroke
    np.testing.assert_allclose(paper.offsets[:, :2], np.ones((f, 2)) * [1, 0], atol=1e-9)  # the scripted pen
    # the stroke the rule cut is finished; the next stroke starts right of the ink (a letter past the
    # text): its first point is dropped
    assert write_with([f + 2]) == (f + 3, 3, 1.0)
    # a stroke that starts back over the last letters (a t-cross) is drawn too, then the stray one is not
    assert write_with([f + 2, f + 4], {f + 3: -2.0, f + 5: 5.0}) == (f + 5, 5, 1.0)
    # ... but not one that starts further back than DELAYED_REACH characters (say, the line's start)
    assert write_with([f + 2], {f + 3: -1000.0}) == (f + 3, 3, 1.0)
    # the pen never lifts: at most finish_stroke more points
    assert write_with([], n=4) == (f + 4, 4, 0.0)
    # the pen was already up when the rule fired, and the next stroke is stray: nothing more
    assert write_with([f - 1, f + 2]) == (f, 0, 1.0)
    # the pen had just moved to start a stroke past the text: that point is dropped
    assert write_with([f - 2, f + 5]) == (f - 1, -1, 1.0)
    # a rule that fires before anything is drawn (κ_1 = 3 > U + 1/2) stops the line there, as the paper's does
    set_window(model, 0.0, 0.0, float(np.log(3.0)))
    for n in (0, 30):
        r = synthesize(PenScript(model, []), ALPHABET, ["a"], generator=0, finish_stroke=n, fast=fast)[0]
        assert (r.finished, r.offsets.shape, r.phi.shape, len(r.inputs), r.tail) == (True, (0, 3), (0, 1), 1, 0)
    for bad in (-1, 1.5, True, 1001):
        with pytest.raises(SampleError, match="finish_stroke"):
            synthesize(model, ALPHABET, ["ab"], finish_stroke=bad)


@pytest.mark.parametrize("fast", [True, False])
def test_a_delayed_stroke_may_start_DELAYED_REACH_characters_back_in_raw_units_after_the_primer(fast):
    from graves.sample import DELAYED_REACH

    model = tiny_synth()
    set_window(model, 0.0, 0.0, float(np.log(0.25)))  # κ_t = t / 4: the rule fires at a known step
    # a wide primer, so that counting its width into the line's characters would move the limit
    primer = Primer(np.array([[400.0, 0, 0], [500, 5, 0], [600, -5, 1], [300, 0, 0], [200, 0, 1]], np.float32), "hi")
    text, k = "abcd", 5
    lifts = [s for s in range(400) if s % 5 == 4]  # strokes of 5 points; dx = 1 (network) = 28 raw units
    kw = dict(generator=0, normaliser=NORM, primer=primer, fast=fast)
    paper = synthesize(PenScript(model, lifts), ALPHABET, [text], finish_stroke=0, **kw)[0]
    f = k + paper.lead_in + len(paper.offsets)  # the step at which the rule fired
    s0 = next(s for s in range(f - 1, f + 10) if s % 5 == 0)  # the first stroke start it judges (drawn at s0)
    width = 28.0 * (s0 - k) / len(text)  # the line's ink so far, from the primer's end, per character
    for factor, delayed in ((0.9, True), (1.1, False)):
        raw = -factor * DELAYED_REACH * width  # the judged stroke starts this far left of the ink's edge
        net = lambda d: (d - NORM["mean"][0]) / NORM["std"][0]  # noqa: E731  raw dx -> network units
        dx = {s0: net(raw), **{s: net(-raw / 4) for s in range(s0 + 1, s0 + 5)}}  # ... and comes back
        r = synthesize(PenScript(model, lifts, dx), ALPHABET, [text], finish_stroke=30, **kw)[0]
        # a delayed stroke is drawn to its pen-up (s0 + 4) and the next start (right of the ink) ends the
        # line; a stray one ends the line at the pen-up before s0
        assert r.tail == (s0 + 5 - f if delayed else s0 - f), factor
        assert r.offsets[-1, 2] == 1.0


def test_finishing_strokes_in_a_batch_with_a_primer_raw_units_and_a_race():
    """Lines that end at different steps (rows leave the batch while others draw delayed strokes), a primer
    (positions count from it), a normaliser (positions in raw units) and racing candidates: each line is
    what it is when written alone, and the race's winner finishes its strokes."""
    model = tiny_synth()
    set_window(model, 0.0, 0.0, float(np.log(0.5)))  # κ_t = t / 2 for every line: no line waits for another
    # A scripted pen (network units, NORM: raw dx = 20 dx + 8): strokes of 5 points, lifting at s % 5 == 4;
    # strokes that start at s % 10 == 5 go back 32 raw units (an i-dot / t-cross over the last letters),
    # the others start 28 units right of the ink (a new letter).
    lifts = [s for s in range(400) if s % 5 == 4]
    dx = {s: -2.0 for s in range(400) if s % 10 == 5}
    primer = Primer(np.array([[10.0, 0, 0], [30, 5, 0], [25, -5, 1], [40, 0, 0], [20, 0, 1]], np.float32), "hi")
    texts = ["abcdefgh", "abc", "abcde", "ab"]
    kw = dict(generator=0, normaliser=NORM, finish_stroke=30, primer=primer)
    together = synthesize(PenScript(model, lifts, dx), ALPHABET, texts, **kw)
    for text, r in zip(texts, together):
        alone = synthesize(PenScript(model, lifts, dx), ALPHABET, [text], **kw)[0]
        assert r.finished and (len(r.offsets), r.tail) == (len(alone.offsets), alone.tail)
        np.testing.assert_allclose(r.offsets, alone.offsets, atol=1e-4)
        paper = synthesize(PenScript(model, lifts, dx), ALPHABET, [text], **{**kw, "finish_stroke": 0})[0]
        np.testing.assert_allclose(r.offsets[: len(paper.offsets) + min(r.tail, 0)],
                                   paper.offsets[: len(paper.offsets) + min(r.tail, 0)], atol=1e-4)
        assert len(r.offsets) == len(paper.offsets) + r.tail
        assert r.tail < 0 or r.offsets[-1, 2] == 1.0  # ends at a pen-up
    tails = sorted(r.tail for r in together)
    assert tails[-1] >= 6  # the fixture: some line drew a delayed stroke after finishing its cut one
    # racing: the candidates tie (the window does not depend on the pen); the winner goes on past its rule
    raced = synthesize(PenScript(model, lifts, dx), ALPHABET, texts, candidates=2, **kw)
    assert [(len(a.offsets), a.tail) for a in raced] == [(len(b.offsets), b.tail) for b in together]


def test_primed_sampling_feeds_the_primer_exactly():
    model = tiny_synth(2)
    rng = np.random.default_rng(0)
    prim = np.concatenate([rng.normal(5, 20, (9, 2)), np.zeros((9, 1))], 1).astype(np.float32)
    prim[[3, 8], 2] = 1.0
    primer = Primer(prim, "ox", "test")
    before = prim.copy()
    spy = Spy(model)
    r = synthesize(spy, ALPHABET, ["zap", "q"], primer=primer, generator=0, normaliser=NORM, max_steps_per_char=5)
    fed = torch.stack(spy.fed[: 1 + len(prim)])  # (steps, B, 3) while both lines read the primer
    want = torch.from_numpy(normalise(prim, NORM))
    for b in range(2):
        assert torch.equal(fed[0, b], torch.zeros(3))  # the null first input
        torch.testing.assert_close(fed[1 : 1 + len(prim), b], want, rtol=0, atol=0)
    np.testing.assert_allclose(r[0].inputs[1 : 1 + len(prim)], prim, rtol=1e-5, atol=1e-4)
    assert np.array_equal(prim, before)  # the primer is not modified
    for res in r:
        assert res.text.startswith("ox ")
        assert len(res.inputs) == 1 + len(prim) + res.lead_in + len(res.offsets)  # the primer is not in the output
        np.testing.assert_allclose(res.inputs[1 + len(prim) + res.lead_in :], res.offsets)
    # fast and reference paths agree on a primed batch
    r_ref = synthesize(model, ALPHABET, ["zap", "q"], primer=primer, generator=0, normaliser=NORM,
                       max_steps_per_char=5, fast=False)
    for a, b in zip(r, r_ref):
        np.testing.assert_allclose(a.offsets, b.offsets, rtol=1e-4, atol=1e-4)


def test_a_primer_that_stops_mid_stroke_is_fed_with_the_pen_lifted():
    # a generated line the end rule stopped can end mid-stroke; the first drawn points would continue
    # that stroke (a stray mark before the text), so the primer's last point is fed as a stroke end
    model = tiny_synth(2)
    prim = np.array([[0, 0, 0], [3, 1, 0], [2, -1, 1], [5, 0, 0], [1, 2, 0]], np.float32)  # ends pen-down
    before = prim.copy()
    spy = Spy(model)
    synthesize(spy, ALPHABET, ["ab"], primer=Primer(prim, "ox"), generator=0, max_steps_per_char=3)
    fed = torch.stack(spy.fed)[:, 0]  # (steps, 3)
    want = prim.copy()
    want[-1, 2] = 1.0
    assert torch.equal(fed[1 : 1 + len(prim)], torch.from_numpy(want))
    assert np.array_equal(prim, before)  # the caller's primer is untouched


def test_a_primer_read_past_the_end_of_its_text_is_an_error_not_a_blank_line():
    # found in session 15's review: with κ_t = t/2 the window passes the end of c' = "ox ab" while the
    # 20-point primer is read, and the end rule used to "finish" the line at its first free step, empty
    model = tiny_synth(1)
    set_window(model, 0.0, 0.0, float(np.log(0.5)))
    prim = np.zeros((20, 3), np.float32)
    prim[:, 0] = 1.0
    prim[4::5, 2] = 1.0
    r = synthesize(model, ALPHABET, ["ab"], primer=Primer(prim, "ox"), generator=0)[0]
    assert r.offsets.shape == (0, 3) and not r.finished
    mc = ModelConfig(kind="synthesis", hidden_size=8, num_layers=2, mixtures=3, window_mixtures=2)
    meta = {"config": Config(model=mc).to_dict(), "alphabet": ALPHABET.to_dict()}
    with pytest.raises(SampleError, match="nothing was written after the primer mine.json for 'ab'.*--prime-text"):
        write("ab", model=(model, meta), prime=Primer(prim, "ox", "mine.json"))
    # with a slower window the same primer writes the line
    set_window(model, 0.0, 0.0, float(np.log(0.05)))
    assert len(write("ab", model=(model, meta), prime=Primer(prim, "ox", "mine.json")).results[0].offsets)
    assert isinstance(lead_in(np.array([0, 1, 0, 1.0]), np.array([[1, 0], [1, 0], [0, 1], [0, 1.0]]), 1), int)


def test_lead_in_cuts_the_strokes_finished_on_the_primer_text():
    # c' = "ox" + " " + "ab": the line's own text starts at index 3
    eos = np.array([0, 0, 1, 0, 1, 0, 0, 1, 0], np.float32)  # strokes: points 0-2, 3-4, 5-7, 8
    def phi_at(idx):
        return np.eye(6, dtype=np.float32)[idx]
    # a dash on the separator (index 2), then a stroke that reaches "a": the dash is cut
    assert lead_in(eos, phi_at([2, 2, 2, 2, 3, 3, 4, 4, 5]), 3) == 3
    # two strokes on the primer's text: both cut
    assert lead_in(eos, phi_at([1, 1, 2, 2, 2, 3, 4, 4, 5]), 3) == 5
    # the first stroke already reaches the text: nothing cut
    assert lead_in(eos, phi_at([2, 2, 3, 3, 3, 4, 4, 4, 5]), 3) == 0
    # only the unfinished last stroke reaches the text
    assert lead_in(eos, phi_at([2, 2, 2, 2, 2, 2, 2, 2, 3]), 3) == 8
    # never reaches the text: nothing cut; no points: nothing cut
    assert lead_in(eos, phi_at([2] * 9), 3) == 0
    assert lead_in(np.zeros(0), np.zeros((0, 6)), 3) == 0
    # through synthesize: what was cut is exactly the inputs between the primer and the offsets
    model = tiny_synth(4)
    set_window(model, 0.0, 0.0, float(np.log(0.05)))  # a slow window: it starts on the primer's text
    prim = np.array([[0, 0, 0], [3, 1, 0], [2, -1, 1]], np.float32)
    r = synthesize(model, ALPHABET, ["abc"], primer=Primer(prim, "ox"), generator=1, max_steps_per_char=40)[0]
    first = len("ox ")
    drawn = r.inputs[1 + len(prim) :]
    assert 0 < r.lead_in < len(drawn) and drawn[r.lead_in - 1, 2] == 1.0  # the cut ends at a stroke end
    np.testing.assert_array_equal(drawn[r.lead_in :], r.offsets)
    assert r.phi.shape == (len(r.offsets), len("ox abc"))
    ends = np.flatnonzero(r.offsets[:, 2] > 0.5)
    stroke0 = ends[0] + 1 if len(ends) else len(r.offsets)
    assert (r.phi[:stroke0].argmax(1) >= first).any()  # the first kept stroke reaches the line's text


def test_primer_without_text_is_an_error():
    with pytest.raises(SampleError, match="transcription"):
        synthesize(tiny_synth(), ALPHABET, ["a"], primer=Primer(np.zeros((3, 3), np.float32), ""), generator=0)


# --------------------------------------------------------------------------------------------- RNG


def test_a_seed_reproduces_a_sample():
    model = tiny_synth(4)
    set_window(model, 0.0, 0.0, float(np.log(0.2)))  # long enough lines to compare
    a = synthesize(model, ALPHABET, ["seed"], bias=0.3, generator=torch.Generator().manual_seed(5))[0]
    b = synthesize(model, ALPHABET, ["seed"], bias=0.3, generator=torch.Generator().manual_seed(5))[0]
    c = synthesize(model, ALPHABET, ["seed"], bias=0.3, generator=torch.Generator().manual_seed(6))[0]
    assert len(a.offsets) > 5
    assert np.array_equal(a.offsets, b.offsets) and np.array_equal(a.phi, b.phi)
    assert not np.array_equal(a.offsets[:5], c.offsets[:5])


def test_batched_equals_one_by_one():
    model = tiny_synth(5)
    texts = ["a longer line of text", "hi", "q.x, z!"]
    gens = lambda: line_generators(11, 3)  # noqa: E731
    batch = synthesize(model, ALPHABET, texts, bias=[0.0, 0.5, 1.0], generator=gens(), normaliser=NORM)
    for i, t in enumerate(texts):
        alone = synthesize(model, ALPHABET, [t], bias=[0.0, 0.5, 1.0][i], generator=[gens()[i]], normaliser=NORM)[0]
        assert batch[i].finished == alone.finished
        assert batch[i].offsets.shape == alone.offsets.shape
        np.testing.assert_allclose(batch[i].offsets, alone.offsets, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(batch[i].phi, alone.phi, rtol=1e-5, atol=1e-6)
    # an int seed is line_generators(seed, B)
    again = synthesize(model, ALPHABET, texts, bias=[0.0, 0.5, 1.0], generator=11, normaliser=NORM)
    assert all(np.array_equal(a.offsets, b.offsets) for a, b in zip(batch, again))


def test_unconditional_batch_seed_and_units():
    model = tiny_predictor()
    a = sample_unconditional(model, 30, 0.0, line_generators(3, 3), batch=3, normaliser=NORM)
    b = sample_unconditional(model, 30, 0.0, line_generators(3, 3)[1:2], batch=1, normaliser=NORM)
    assert [x.shape for x in a] == [(30, 3)] * 3
    np.testing.assert_allclose(a[1], b[0], rtol=1e-5, atol=1e-4)
    assert set(np.unique(a[0][:, 2])) <= {0.0, 1.0}
    ref = sample_unconditional(model, 30, 0.0, line_generators(3, 3), batch=3, normaliser=NORM, fast=False)
    for x, y in zip(a, ref):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------- fast path


@pytest.mark.parametrize("N", [1, 3])
def test_fast_step_equals_model_step(N):
    model = tiny_synth(6, torch.float64, H=6, N=N)
    c, _ = ALPHABET.one_hot(["hello there", "q"])
    c = c.double()
    fast, ref = _FastStepper(model, 2, c), _ModelStepper(model, 2, c)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in range(25):
            x = torch.randn(2, 3, generator=g, dtype=torch.float64)
            if t == 12:  # dropping a row keeps the other's state
                fast.select(torch.tensor([1]))
                ref.select(torch.tensor([1]))
            if t >= 12:
                x = x[1:]
            y1, p1 = fast.step(x)
            y2, p2 = ref.step(x)
            torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(p1, p2, rtol=1e-10, atol=1e-10)
    pred = tiny_predictor(1, torch.float64)
    fast, ref = _FastStepper(pred, 3, None), _ModelStepper(pred, 3, None)
    with torch.no_grad():
        for _ in range(10):
            x = torch.randn(3, 3, generator=g, dtype=torch.float64)
            torch.testing.assert_close(fast.step(x)[0], ref.step(x)[0], rtol=1e-10, atol=1e-10)


def test_sampling_does_not_mutate_its_inputs():
    model = tiny_synth(7)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    texts = ["abc", "de"]
    synthesize(model, ALPHABET, texts, generator=0)
    assert texts == ["abc", "de"]
    assert all(torch.equal(params[k], v) for k, v in model.state_dict().items())
    assert torch.is_grad_enabled()


def test_sampling_runs_on_one_thread_at_any_batch(monkeypatch):
    """threads="auto" is one thread for a batch of any size (a paragraph with racing candidates is
    40 rows here), and torch's thread count is restored afterwards."""
    from graves import sample as sample_mod

    seen = []
    real = sample_mod._stepper

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(sample_mod, "_stepper", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        synthesize(tiny_synth(3), ALPHABET, ["ab"] * 10, generator=0, candidates=4, max_steps_per_char=3)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
        synthesize(tiny_synth(3), ALPHABET, ["ab"], generator=0, threads=None, max_steps_per_char=3)
        assert seen[-1] == 2  # None leaves torch's setting alone
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------- files, CLI


def toy_checkpoint(path, kind="synthesis"):
    """A random tiny model saved as a real checkpoint (slow window: ~10 steps per character)."""
    from graves.checkpoint import save_checkpoint

    mc = ModelConfig(kind=kind, hidden_size=8, num_layers=2, mixtures=3, window_mixtures=2)
    meta = {"config": Config(model=mc).to_dict(), "normaliser": NORM}
    torch.manual_seed(0)
    if kind == "synthesis":
        model = HandwritingSynthesizer(mc, len(ALPHABET))
        set_window(model, 0.0, 0.0, float(np.log(0.1)))
        meta["alphabet"] = ALPHABET.to_dict()
    else:
        model = HandwritingPredictor(mc)
    return save_checkpoint(path, model.state_dict(), meta)


def _check_svg_png(svg, png):
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graves_write_through_the_cli(tmp_path, capsys):
    from graves import cli

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    svg, png = tmp_path / "a.svg", tmp_path / "a.png"
    assert cli.main(["write", "hello world", "--model", str(ckpt), "-o", str(svg), "-o", str(png)]) == 0
    _check_svg_png(svg, png)
    assert "wrote" in capsys.readouterr().err
    # the same seed writes the same page; long text is wrapped into several lines
    svg2 = tmp_path / "b.svg"
    assert cli.main(["write", "hello world", "--model", str(ckpt), "-o", str(svg2)]) == 0
    assert svg2.read_text() == svg.read_text()
    wrapped = tmp_path / "c.svg"
    assert cli.main(["write", "one two three four five", "--width", "9", "--model", str(ckpt), "-o",
                     str(wrapped), "--bias", "1.5", "--seed", "3"]) == 0
    ET.parse(wrapped)
    # --retries 0 writes each line once: this toy net's lines all end, so the page is the same
    once = tmp_path / "d.svg"
    assert cli.main(["write", "hello world", "--model", str(ckpt), "-o", str(once), "--retries", "0"]) == 0
    assert once.read_text() == svg.read_text()
    # --animate: the SVG is drawn as written, the PNG beside it is the still page; no SVG, no animation
    moving, still_png = tmp_path / "m.svg", tmp_path / "m.png"
    assert cli.main(["write", "hello world", "--model", str(ckpt), "-o", str(moving), "-o", str(still_png),
                     "--animate", "60"]) == 0
    assert "@keyframes" in moving.read_text() and still_png.read_bytes() == png.read_bytes()
    capsys.readouterr()
    assert cli.main(["write", "hello world", "--model", str(ckpt), "-o", str(png), "--animate"]) == 2
    assert "only an SVG page can be animated" in capsys.readouterr().err
    # --candidates 1 is the paper's plain sampler: deterministic too
    plain, plain2 = tmp_path / "e.svg", tmp_path / "f.svg"
    for f in (plain, plain2):
        assert cli.main(["write", "hello world", "--model", str(ckpt), "-o", str(f), "--candidates", "1"]) == 0
    assert plain.read_text() == plain2.read_text()


def test_an_unwritable_output_fails_before_sampling_and_a_full_disk_loses_no_output(tmp_path, capsys, monkeypatch):
    from graves import cli, render
    from graves import sample as sample_mod

    ckpt = str(toy_checkpoint(tmp_path / "ckpt"))
    (tmp_path / "file").write_text("x")
    real_write = sample_mod.write
    monkeypatch.setattr(sample_mod, "write", lambda *a, **k: pytest.fail("sampled before checking the outputs"))
    assert cli.main(["write", "hi", "--model", ckpt, "-o", str(tmp_path / "file" / "x.svg")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    monkeypatch.setattr(sample_mod, "write", real_write)

    # the disk fills while the PNG is saved: the SVG is still written, and the error says what to do
    real_file = render.write_file

    def png_on_a_full_disk(path, data):
        if str(path).endswith(".png"):
            raise render.OutputError(f"cannot write {path}: No space left on device (nothing was written)")
        return real_file(path, data)

    monkeypatch.setattr(render, "write_file", png_on_a_full_disk)
    png, svg = tmp_path / "a.png", tmp_path / "a.svg"
    assert cli.main(["write", "hi", "--model", ckpt, "-o", str(png), "-o", str(svg), "--seed", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a.png: No space left on device" in err and f"wrote {svg}" in err
    assert "same command (seed 4) writes the same lines again" in err
    assert svg.exists() and not png.exists()
    monkeypatch.setattr(render, "write_file", real_file)
    again = tmp_path / "b.svg"  # ... which it does
    assert cli.main(["write", "hi", "--model", ckpt, "-o", str(again), "--seed", "4"]) == 0
    assert again.read_bytes() == svg.read_bytes()


def test_write_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from graves import cli
    from graves import sample as sample_mod

    ckpt = str(toy_checkpoint(tmp_path / "ckpt"))
    out = str(tmp_path / "x.svg")
    cases = [
        (["write", "", "--model", ckpt, "-o", out], "empty"),
        (["write", "hi", "--model", ckpt, "-o", out, "--bias", "-1"], "bias"),
        (["write", "hi", "--model", ckpt, "-o", out, "--retries", "-1"], "retries"),
        (["write", "hi", "--model", ckpt, "-o", out, "--candidates", "0"], "candidates"),
        (["write", "naïve ☃", "--model", ckpt, "-o", out], "cannot write"),
        (["write", "hi", "--model", ckpt, "-o", str(tmp_path / "x.jpg")], ".svg, .png or .pdf"),
        (["write", "hi", "--model", ckpt, "-o", out, "--style", "0"], "styles"),
        (["write", "hi", "--model", ckpt, "-o", out, "--prime", str(tmp_path / "no.json")], "not found"),
        (["write", "hi", "--model", str(toy_checkpoint(tmp_path / "p", "handwriting")), "-o", out], "synthesis"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("graves: error:") and message in err and err.count("\n") == 1, (argv, err)
    monkeypatch.setattr(sample_mod, "shipped_model_dir", lambda: tmp_path / "no-weights")
    assert cli.main(["write", "hi", "-o", out]) == 2
    assert "--model" in capsys.readouterr().err
    # --substitute writes what the table can map
    assert cli.main(["write", "naïve café", "--substitute", "--model", ckpt, "-o", out]) == 0


def test_the_python_api_writes_what_the_cli_writes(tmp_path):
    import graves
    from graves import cli
    from graves import sample as sample_mod

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    hw = graves.write("one two three four", model=ckpt, width=9, seed=2)
    assert isinstance(hw, graves.Handwriting)
    assert hw.lines == ["one two", "three", "four"] and len(hw.offsets) == 3
    assert repr(hw) == f"Handwriting(lines={hw.lines!r}, points={sum(map(len, hw.offsets))}, unfinished={hw.unfinished})"
    assert all(o.ndim == 2 and o.shape[1] == 3 for o in hw.offsets)
    assert hw.unfinished == [i + 1 for i, r in enumerate(hw.results) if not r.finished]
    # strokes: one (n, 2) array per pen-down stroke, the same count the SVG draws
    n_paths = [len(g.findall("{http://www.w3.org/2000/svg}path"))
               for g in ET.fromstring(hw.svg().encode()).iter("{http://www.w3.org/2000/svg}g")
               if g.get("class") == "line"]
    assert n_paths == [len(line) for line in hw.strokes()]
    # the CLI saves exactly this page
    out = tmp_path / "cli.svg"
    assert cli.main(["write", "one two three four", "--model", str(ckpt), "--width", "9", "--seed", "2",
                     "-o", str(out)]) == 0
    assert out.read_text() == hw.svg()
    assert hw.save(tmp_path / "api.png").read_bytes()[:4] == b"\x89PNG"
    # ... and with the paper's end rule (--finish-stroke 0), the same page as the Python side's
    paper = graves.write("one two three four", model=ckpt, width=9, seed=2, finish_stroke=0)
    assert cli.main(["write", "one two three four", "--model", str(ckpt), "--width", "9", "--seed", "2",
                     "--finish-stroke", "0", "-o", str(out)]) == 0
    assert out.read_text() == paper.svg()
    assert all(r.tail == 0 for r in paper.results)
    assert any(r.tail != 0 for r in hw.results)  # the fixture: some line of the default page went past its rule
    assert cli.main(["write", "hi", "--model", str(ckpt), "--finish-stroke", "-1", "-o", str(out)]) == 2
    # the checkpoint is loaded once, and again only when it changes on disk
    net = sample_mod._cached_synthesizer(ckpt)[0]
    assert sample_mod._cached_synthesizer(ckpt)[0] is net
    toy_checkpoint(ckpt)
    os.utime(ckpt / "model.safetensors", ns=(0, 0))
    assert sample_mod._cached_synthesizer(ckpt)[0] is not net
    # a Primer object is accepted as the style; an empty transcription is refused
    primer = Primer(hw.offsets[0], "one two", "mine")
    assert len(graves.write("hi", model=ckpt, prime=primer).results) == 1
    with pytest.raises(sample_mod.SampleError, match="transcription"):
        graves.write("hi", model=ckpt, prime=primer.with_text(" "))
    with pytest.raises(sample_mod.SampleError, match="no style"):
        graves.write("hi", model=ckpt, style=True)



def test_lines_are_written_unprimed_unless_same_hand(tmp_path, capsys):
    import graves
    from graves import cli
    from graves import sample as sample_mod
    from graves.data.alphabet import Alphabet
    from graves.models import load_model

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    text = "one two three four"
    own = graves.write(text, model=ckpt, width=9, seed=2)
    same = graves.write(text, model=ckpt, width=9, seed=2, same_hand=True)
    assert own.lines == same.lines == ["one two", "three", "four"]
    # by default each line is exactly what the sampler writes unprimed with the line's generator, in one batch
    model, meta = load_model(ckpt)
    plain = sample_mod.synthesize(model, Alphabet.from_dict(meta["alphabet"]), own.lines, bias=sample_mod.DEFAULT_BIAS,
                                  generator=sample_mod.line_generators(2, 3), normaliser=meta["normaliser"],
                                  retries=sample_mod.DEFAULT_RETRIES, candidates=sample_mod.DEFAULT_CANDIDATES,
                                  finish_stroke=sample_mod.DEFAULT_FINISH_STROKE)
    assert all(np.array_equal(a, r.offsets) for a, r in zip(own.offsets, plain))
    # with same_hand line 1 is the same, and lines 2.. are primed by it
    assert np.array_equal(own.offsets[0], same.offsets[0])
    assert any(not np.array_equal(a, b) for a, b in zip(own.offsets[1:], same.offsets[1:]))
    primer = Primer(same.offsets[0], "one two", "line 1")
    rest = sample_mod.synthesize(model, Alphabet.from_dict(meta["alphabet"]), same.lines[1:], bias=sample_mod.DEFAULT_BIAS,
                                 generator=sample_mod.line_generators(2, 3)[1:], normaliser=meta["normaliser"],
                                 retries=sample_mod.DEFAULT_RETRIES, candidates=sample_mod.DEFAULT_CANDIDATES,
                                 finish_stroke=sample_mod.DEFAULT_FINISH_STROKE,
                                 primer=primer)
    assert all(np.array_equal(a, r.offsets) for a, r in zip(same.offsets[1:], rest))
    for flag, page in (([], own), (["--same-hand"], same)):
        out = tmp_path / "page.svg"
        assert cli.main(["write", text, "--model", str(ckpt), "--width", "9", "--seed", "2", *flag, "-o", str(out)]) == 0
        assert out.read_text() == page.svg()
    # a style primes every line whatever same_hand says
    styled = graves.write(text, model=ckpt, width=9, seed=2, prime=primer)
    assert all(np.array_equal(a, b.offsets) for a, b in
               zip(styled.offsets, graves.write(text, model=ckpt, width=9, seed=2, prime=primer, same_hand=True).results))
    with pytest.raises(sample_mod.SampleError, match="True or False"):
        graves.write("hi", model=ckpt, same_hand="no")


def test_write_drawing_options(tmp_path, capsys):
    from graves import cli

    ckpt = str(toy_checkpoint(tmp_path / "ckpt"))
    svg, png = tmp_path / "a.svg", tmp_path / "a.png"
    assert cli.main(["write", "hi", "--model", ckpt, "--color", "#1f3a93", "--stroke-width", "3",
                     "--background", "none", "-o", str(svg), "-o", str(png), "-o", str(tmp_path / "a.json"),
                     "-o", str(tmp_path / "a.pdf")]) == 0
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF-")
    root = ET.parse(svg).getroot()
    ink = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("stroke")]
    assert ink[0].get("stroke") == "#1f3a93" and not root.findall("{http://www.w3.org/2000/svg}rect")
    from PIL import Image

    with Image.open(png) as im:
        assert im.mode == "RGBA" and im.getextrema()[3][0] == 0  # transparent background
    assert json.loads((tmp_path / "a.json").read_text())["polylines"]
    capsys.readouterr()
    for argv, message in [(["--colour", "nope"], "not a colour"), (["--stroke-width", "0"], "stroke width"),
                          (["--background", "#12"], "not a colour"), (["--colour", "C0"], "not a colour")]:
        out = tmp_path / "b.svg"
        assert cli.main(["write", "hi", "--model", ckpt, "-o", str(out), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("graves: error:") and message in err and not out.exists(), err


def test_write_reads_standard_input(tmp_path, monkeypatch, capsys):
    import io

    import graves
    from graves import cli

    ckpt = str(toy_checkpoint(tmp_path / "ckpt"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("one two\nthree\n"))
    out = tmp_path / "in.svg"
    assert cli.main(["write", "-", "--model", ckpt, "-o", str(out)]) == 0
    assert out.read_text() == graves.write("one two\nthree\n", model=ckpt).svg()
    assert len(graves.write("one two\nthree\n", model=ckpt).lines) == 2  # the line break is kept
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli.main(["write", "-", "--model", ckpt, "-o", str(out)]) == 2
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ab\xffcd")))
    assert cli.main(["write", "-", "--model", ckpt, "-o", str(out)]) == 2
    assert "not UTF-8 text (byte 0xff at offset 2)" in capsys.readouterr().err


def test_blank_lines_are_paragraph_breaks(tmp_path):
    import graves
    from graves.sample import wrap_text

    assert wrap_text("\n\na b\n\n\nc\n\n", 50, keep_blank=True) == ["a b", "", "c"]
    assert wrap_text("\n\na b\n\n\nc\n\n", 50) == ["a b", "c"]
    ckpt = toy_checkpoint(tmp_path / "ckpt")
    tight = graves.write("one two\nthree", model=ckpt)
    loose = graves.write("one two\n\n\nthree\n", model=ckpt)
    assert loose.lines == ["one two", "", "three"] and loose.offsets[1].shape == (0, 3)
    # the blank takes no seed: the written lines are the same strokes
    assert np.array_equal(loose.offsets[0], tight.offsets[0]) and np.array_equal(loose.offsets[2], tight.offsets[1])
    height = [float(ET.fromstring(hw.svg().encode()).get("viewBox").split()[3]) for hw in (tight, loose)]
    assert height[1] > height[0] * 1.2  # the blank line takes room on the page


def test_a_line_that_never_ends_is_written_as_shorter_lines(tmp_path, monkeypatch):
    """After its retries, an unfinished line longer than MIN_SPLIT_CHARS is re-wrapped at half its length
    and the pieces written instead (here a stand-in model ends only lines of at most 6 characters)."""
    import graves
    from graves import sample as sample_mod

    real = sample_mod.synthesize
    calls, depth = [], [0]

    def ends_short_lines(model, alphabet, texts, **kw):
        if depth[0]:  # synthesize's own inner calls (retries, candidates)
            return real(model, alphabet, texts, **kw)
        calls.append(list(texts))
        depth[0] += 1
        try:
            out = real(model, alphabet, texts, **kw)
        finally:
            depth[0] -= 1
        return [replace(r, finished=len(t) <= 6) for t, r in zip(texts, out)]

    monkeypatch.setattr(sample_mod, "synthesize", ends_short_lines)
    monkeypatch.setattr(sample_mod, "MIN_SPLIT_CHARS", 4)
    ckpt = toy_checkpoint(tmp_path / "ckpt")
    text = "ab cd\n\nabcdefghijklmnop qr"
    hw = graves.write(text, model=ckpt, width=30)
    # 19 characters: wrapped at 10, both pieces still too long, each wrapped at 5; all end
    assert hw.lines == ["ab cd", "", "abcde", "fghij", "klmno", "p qr"] and hw.unfinished == []
    assert calls == [["ab cd", "abcdefghijklmnop qr"], ["abcdefghij", "klmnop qr"],
                     ["abcde", "fghij", "klmno", "p qr"]]  # the lines, then the pieces of a round, in one batch
    again = graves.write(text, model=ckpt, width=30)
    assert len(again.offsets) == 6 and all(np.array_equal(a, b) for a, b in zip(hw.offsets, again.offsets))
    # lines of at most MIN_SPLIT_CHARS are not split again: they stay unfinished, and are named
    monkeypatch.setattr(sample_mod, "MIN_SPLIT_CHARS", 10)
    hw = graves.write(text, model=ckpt, width=30)
    assert hw.lines == ["ab cd", "", "abcdefghij", "klmnop qr"] and hw.unfinished == [3, 4]
    # retries=0 writes every line once, as it comes
    once = graves.write(text, model=ckpt, width=30, retries=0)
    assert once.lines == ["ab cd", "", "abcdefghijklmnop qr"] and once.unfinished == [3]


def test_import_graves_is_light():
    """`import graves` must not import torch: graves.write is loaded on first use."""
    code = "import sys, graves; assert 'torch' not in sys.modules; graves.write; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_styles_and_primed_writing(tmp_path, capsys):
    from graves import cli
    from graves.sample import load_styles

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    assert cli.main(["styles", "make", "--model", str(ckpt), "--seeds", "0", "1", "--texts", "ab", "cd"]) == 0
    assert "style 0 from seed 0, style 1 from seed 1" in capsys.readouterr().err
    styles = load_styles(ckpt)
    assert [s.text for s in styles] == ["ab", "cd"] and all(len(s.offsets) > 2 for s in styles)
    assert all(s.offsets[-1, 2] == 1.0 for s in styles)  # each style ends with the pen lifted
    out = tmp_path / "s.png"
    assert cli.main(["write", "hi there", "--model", str(ckpt), "--style", "1", "-o", str(out)]) == 0
    assert cli.main(["write", "hi", "--model", str(ckpt), "--style", "5", "-o", str(out)]) == 2
    assert "no style 5" in capsys.readouterr().err
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([[[0, 0], [3, 4], [6, 9]], [[10, 0], [12, 5]]]))
    assert cli.main(["write", "yo", "--model", str(ckpt), "--prime", str(mine), "--prime-text", "me",
                     "-o", str(tmp_path / "p.svg")]) == 0
    assert cli.main(["write", "yo", "--model", str(ckpt), "--prime", str(mine), "-o", str(out)]) == 2
    assert "--prime-text" in capsys.readouterr().err


def test_sample_checkpoint_to_file(tmp_path, capsys):
    from graves import cli

    pred = toy_checkpoint(tmp_path / "pred", "handwriting")
    synth = toy_checkpoint(tmp_path / "synth")
    assert cli.main(["sample", str(pred), "--steps", "30", "--lines", "2", "-o", str(tmp_path / "u.svg")]) == 0
    ET.parse(tmp_path / "u.svg")
    assert cli.main(["sample", str(synth), "--text", "ok", "--lines", "2", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert cli.main(["sample", str(synth), "-o", str(tmp_path / "t.svg")]) == 2
    assert "--text" in capsys.readouterr().err
    # --animate: the same lines, drawn as written
    assert cli.main(["sample", str(pred), "--steps", "30", "--lines", "2", "-o", str(tmp_path / "a.svg"),
                     "--animate", "50"]) == 0
    moving = ET.parse(tmp_path / "a.svg").getroot()
    still = ET.parse(tmp_path / "u.svg").getroot()
    d = lambda root: [p.get("d") for p in root.iter("{http://www.w3.org/2000/svg}path")]  # noqa: E731
    assert d(moving) == d(still) and all(p.get("pathLength") == "1" for p in moving.iter("{http://www.w3.org/2000/svg}path"))
    capsys.readouterr()
    assert cli.main(["sample", str(pred), "--animate", "-o", str(tmp_path / "a.png")]) == 2
    assert "only an SVG page" in capsys.readouterr().err


def test_the_shipped_model_writes_through_the_cli(tmp_path):
    """The README's main job: `graves write` with no --model uses the model inside the package."""
    from graves.cli import main as cli_main
    from graves.models import load_model
    from graves.sample import load_styles, shipped_model_dir

    model, meta = load_model(shipped_model_dir())
    assert meta["config"]["model"]["kind"] == "synthesis" and "normaliser" in meta and "alphabet" in meta
    assert len(load_styles()) >= 3
    out_svg, out_png = tmp_path / "a.svg", tmp_path / "a.png"
    assert cli_main(["write", "hello world", "--seed", "1", "-o", str(out_svg), "-o", str(out_png)]) == 0
    import xml.etree.ElementTree as ET

    paths = [e for e in ET.parse(out_svg).iter() if e.tag.endswith("path")]
    assert len(paths) >= 2  # more than one pen-down stroke was written
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli_main(["write", "hello", "--style", "1", "-o", str(tmp_path / "b.svg")]) == 0


def test_cli_help_states_the_sampler_defaults():
    """The parser stays light (no torch import), so its help repeats the defaults: keep them in step."""
    from graves.cli import build_parser
    from graves.sample import DEFAULT_BIAS, DEFAULT_CANDIDATES, DEFAULT_FINISH_STROKE, DEFAULT_RETRIES

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    write_help = " ".join(sub["write"].format_help().split())
    for default in (DEFAULT_BIAS, DEFAULT_CANDIDATES, DEFAULT_FINISH_STROKE, DEFAULT_RETRIES):
        assert f"(default {default:g};" in write_help
    plot = next(a for a in sub["plot"]._actions if a.dest == "what").choices
    assert f"graves write's, {DEFAULT_BIAS:g})" in " ".join(plot["density"].format_help().split())


def test_styles_show_and_preview_draw_one_line_per_style(tmp_path, capsys):
    from graves import cli
    from graves.sample import load_styles, style_sheet, write

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    out, sheet = tmp_path / "mine.json", tmp_path / "sheet.svg"
    assert cli.main(["styles", "make", "--model", str(ckpt), "--seeds", "3", "5", "4", "--out", str(out),
                     "--preview", str(sheet)]) == 0
    assert "style 2 from seed 4" in capsys.readouterr().err
    assert not (ckpt / "styles.json").exists()  # --out, not beside the model
    styles = load_styles(out)  # a styles file, not only a checkpoint folder
    assert [s.source for s in styles] == ["style 0", "style 1", "style 2"]
    # the same seed makes the same style again
    again = tmp_path / "again.json"
    assert cli.main(["styles", "make", "--model", str(ckpt), "--seeds", "4", "--out", str(again)]) == 0
    np.testing.assert_array_equal(load_styles(again)[0].offsets, styles[2].offsets)
    # the preview: line i is the sheet's text written in style i, every line with the same seed
    root = ET.parse(sheet).getroot()
    assert root.tag.endswith("svg")
    hw = style_sheet(styles, "abc", model=str(ckpt), seed=1)
    assert hw.lines == ["abc"] * 3
    for i, s in enumerate(styles):
        alone = write("abc", model=str(ckpt), prime=s, seed=1)
        np.testing.assert_array_equal(hw.results[i].offsets, alone.results[0].offsets)
    assert not np.array_equal(hw.results[0].offsets, hw.results[1].offsets)
    png = tmp_path / "show.png"
    assert cli.main(["styles", "show", "--model", str(ckpt), "--styles", str(out), "--text", "abc",
                     "--seed", "1", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_styles_errors_are_clear_and_write_nothing(tmp_path, capsys):
    from graves import cli
    from graves.sample import shipped_model_dir

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    shipped = (shipped_model_dir() / "styles.json").read_bytes()
    assert cli.main(["styles", "make", "--seeds", "0"]) == 2  # never over the package's own styles
    assert "give --out" in capsys.readouterr().err
    assert (shipped_model_dir() / "styles.json").read_bytes() == shipped
    assert cli.main(["styles", "make", "--model", str(ckpt), "--seeds", "0", "1", "--texts", "ab"]) == 2
    assert "1 texts for 2 seeds" in capsys.readouterr().err
    assert cli.main(["styles", "make", "--model", str(ckpt), "--seeds", "0", "--texts", "a€b"]) == 2
    assert "cannot write '€' (in 'a€b'): give texts it can write" in capsys.readouterr().err
    assert not (ckpt / "styles.json").exists()
    assert cli.main(["styles", "show", "--model", str(ckpt), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no styles" in err and "graves styles make" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"text": "a"}')
    assert cli.main(["styles", "show", "--model", str(ckpt), "--styles", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert "not a valid styles file" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    # session 15's review: a missing file is named as given, infinities are refused, and the checkpoint's own
    # checkpoint.json (which --model accepts) means its folder
    assert cli.main(["styles", "show", "--model", str(ckpt), "--styles", str(tmp_path / "none.json"),
                     "-o", str(tmp_path / "x.png")]) == 2
    assert f"{tmp_path / 'none.json'} does not exist" in capsys.readouterr().err
    bad.write_text('[{"text": "a", "offsets": [[1, 2, 0], [1e400, 0, 1]]}]')
    assert cli.main(["styles", "show", "--model", str(ckpt), "--styles", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "not a valid styles file" in err and "not finite" in err, err
    from graves.sample import load_styles

    assert len(load_styles(shipped_model_dir() / "checkpoint.json")) == len(load_styles())


def test_commands_without_substitute_do_not_suggest_it(tmp_path, capsys):
    from graves import cli
    from graves.sample import shipped_model_dir

    for args in (["sample", str(shipped_model_dir()), "--text", "a€b", "-o", str(tmp_path / "s.svg")],
                 ["plot", "window", str(shipped_model_dir()), "--text", "a€b", "-o", str(tmp_path / "w.png")]):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert "cannot write '€'" in err and "--substitute" in err and "graves write --substitute" in err, err
    assert cli.main(["write", "a€b", "-o", str(tmp_path / "w.svg")]) == 2
    assert "(substitute=True / --substitute)" in capsys.readouterr().err
    # plots are PNG: another suffix is refused before any work, as are impossible y limits
    assert cli.main(["plot", "window", str(shipped_model_dir()), "--text", "ab", "-o", str(tmp_path / "w.txt")]) == 2
    assert "plots are PNG images" in capsys.readouterr().err
    assert cli.main(["plot", "curves", str(tmp_path), "-o", str(tmp_path / "c.png"), "--ylim", "nan", "1"]) == 2
    assert "the y range needs two finite numbers" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_text_sampling_refuses_bad_lengths_and_temperatures():
    from graves.config import ConfigError
    from graves.data.text import Vocab
    from graves.models.text import TextPredictor
    from graves.tasks.text import sample_text

    vocab = Vocab(["a", "b"], "char")
    model = TextPredictor(ModelConfig(kind="text", hidden_size=4, num_layers=1), len(vocab))
    for kw, message in (({"length": -5}, "length must be >= 0"), ({"temperature": float("nan")}, "temperature must"),
                        ({"temperature": -1.0}, "temperature must")):
        with pytest.raises(ConfigError, match=message):
            sample_text(model, vocab, **{"length": 3, **kw})


def test_review_fixes_on_the_writing_path(tmp_path, capsys):
    """Bad inputs found in a review: each is now a clear error, or does what the docs say."""
    from graves import cli
    from graves.models import load_model
    from graves.sample import MAX_BIAS, Handwriting, load_styles, write

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    # --substitute keeps line breaks and blank lines (it used to make one paragraph of the text)
    hw = write("Dear Sam,\n\nThanks\u2019", model=str(ckpt), substitute=True)
    assert hw.lines == ["Dear Sam,", "", "Thanks'"]
    # a tab is a character the model has no class for, not whitespace that wrapping quietly expands
    with pytest.raises(UnknownCharacterError, match=r"'\\t'"):
        write("a\tb", model=str(ckpt))
    assert write("a\tb", model=str(ckpt), substitute=True).lines == ["a b"]
    # seeds: whole numbers >= 0
    for seed in (-1, 1.5, True):
        with pytest.raises(SampleError, match="seed must be a whole number >= 0"):
            write("hi", model=str(ckpt), seed=seed)
    assert cli.main(["write", "hi", "--model", str(ckpt), "--seed", "-1", "-o", str(tmp_path / "x.svg")]) == 2
    # a bias so large that π̂ (1 + b) overflows is refused; the largest accepted one writes
    for bias in (MAX_BIAS * 1.01, 1e38, 10**400):
        with pytest.raises(SampleError, match="from 0 to 10,000"):
            write("hi", model=str(ckpt), bias=bias)
    assert write("hi", model=str(ckpt), bias=MAX_BIAS).results[0].finished
    # the primer's transcription is checked on its own, and the message says where to change it
    mine = Primer(np.array([[0, 0, 0], [3, 4, 0], [6, 9, 1]], np.float32), "50€ off", "mine.json")
    with pytest.raises(SampleError, match=r"'€' in the transcription of mine.json .* --prime-text"):
        write("hi", model=str(ckpt), prime=mine)
    # styles: an empty file, and a (model, meta) pair (whose styles would be another model's)
    (ckpt / "styles.json").write_text("[]")
    with pytest.raises(SampleError, match="holds no styles"):
        load_styles(ckpt)
    with pytest.raises(SampleError, match="pass prime=load_styles"):
        write("hi", model=load_model(ckpt), style=0)
    # plotter paths take the page's geometry and leave the drawing options out
    Handwriting(hw.lines, hw.results).save(tmp_path / "p.json", colour="navy", stroke_width=3, margin=5)
    assert json.loads((tmp_path / "p.json").read_text())["polylines"]
    # the pen speed of an animated page: 1 to 10,000 points a second
    for speed in ("0.5", "20000"):
        assert cli.main(["write", "hi", "--model", str(ckpt), "--animate", speed, "-o", str(tmp_path / "a.svg")]) == 2
        assert "pen speed must be 1 to 10,000" in capsys.readouterr().err
    # a sheet of styles with an unknown suffix fails before any sampling
    assert cli.main(["styles", "show", "--model", str(ckpt), "-o", str(tmp_path / "sheet.txt")]) == 2
    assert "must end in .svg" in capsys.readouterr().err


def test_graves_sample_refuses_options_its_checkpoint_would_ignore(tmp_path, capsys):
    from graves import cli

    synth, pred = toy_checkpoint(tmp_path / "s"), toy_checkpoint(tmp_path / "p", kind="handwriting")
    out = str(tmp_path / "x.svg")
    assert cli.main(["sample", str(synth), "--text", "hi", "--prime", "missing.json", "--temperature", "5", "-o", out]) == 2
    assert "--prime, --temperature: not for" in capsys.readouterr().err
    assert cli.main(["sample", str(pred), "--text", "hi", "-o", out]) == 2
    assert "--text: not for" in capsys.readouterr().err
    assert cli.main(["sample", str(synth), "--steps", "5", "--text", "hi", "-o", out]) == 2
    assert "--steps: not for" in capsys.readouterr().err
    assert cli.main(["sample", str(pred), "--steps", "20", "--lines", "2", "--bias", "0.5", "-o", out]) == 0


def test_sampling_leaves_denormal_flushing_as_the_caller_set_it(tmp_path):
    from graves.sample import _flushing_denormals, write

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    before = _flushing_denormals()
    try:
        for setting in (True, False):
            if not torch.set_flush_denormal(setting):
                pytest.skip("this CPU cannot flush denormals")
            assert _flushing_denormals() is setting
            write("hi", model=str(ckpt))
            assert _flushing_denormals() is setting
    finally:
        torch.set_flush_denormal(before)


# ---------------------------------------------------------------- found in the session-16 review


def test_a_batch_too_large_is_written_a_few_lines_at_a_time(tmp_path, monkeypatch):
    import graves.sample as S

    ckpt = str(toy_checkpoint(tmp_path / "ckpt"))
    primer = S.load_styles()[0]
    lines = ["ab", "abc", "a", "abcd", "ab"]
    cells = [S.write_cells([ln], primer) for ln in lines]
    assert S.write_cells(lines, primer) == 5 * 4 * (len(primer.offsets) + 40 * 4 + 1 + S.DEFAULT_FINISH_STROKE) * (len(primer.text) + 1 + 4 + 1)
    monkeypatch.setattr(S, "MAX_BATCH_CELLS", 2 * max(cells))
    parts = S._batches(lines, primer, 4)
    assert [i for p in parts for i in range(len(lines))[p]] == list(range(len(lines)))  # all, in order
    assert len(parts) > 1 and all(S.write_cells(lines[p], primer) <= S.MAX_BATCH_CELLS for p in parts)
    monkeypatch.setattr(S, "MAX_BATCH_CELLS", 1)  # one line a batch: a single line is never refused
    assert S._batches(lines, primer, 4) == [slice(i, i + 1) for i in range(5)]
    calls = []
    real = S.synthesize
    def spy(net, alphabet, texts, **kw):  # the batches write() asks for (not racing's inner call)
        if "_groups" not in kw:
            calls.append(list(texts))
        return real(net, alphabet, texts, **kw)

    monkeypatch.setattr(S, "synthesize", spy)
    hw = S.write("ab abc a", model=ckpt, width=3, retries=0)
    assert hw.lines == ["ab", "abc", "a"] and calls == [["ab"], ["abc"], ["a"]]


def test_a_style_given_as_a_numpy_integer_is_that_style():
    from graves.sample import write

    a = write("hi", style=np.int64(1), seed=3, retries=0, candidates=1)
    b = write("hi", style=1, seed=3, retries=0, candidates=1)
    np.testing.assert_array_equal(a.results[0].offsets, b.results[0].offsets)


def test_only_an_svg_page_can_be_animated(tmp_path):
    from graves.render import RenderError

    hw = write_hw_for_render()
    for name in ("page.png", "page.pdf"):
        with pytest.raises(RenderError, match="only an SVG page"):
            hw.save(tmp_path / name, animate=100)
        assert not (tmp_path / name).exists()
    assert "animation-delay" in hw.save(tmp_path / "page.svg", animate=100).read_text()


def write_hw_for_render():
    from graves.sample import write

    return write("hi", seed=0, retries=0, candidates=1)


def test_the_style_sheet_labels_each_line_with_its_style_and_wants_one_line(tmp_path, capsys):
    from graves import cli
    from graves.sample import load_styles, style_sheet

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    styles = load_styles()[:2]
    hw = style_sheet(styles, "abc", model=str(ckpt), seed=1)
    assert hw.labels == ["style 0", "style 1"] and ">style 1<" in hw.svg()
    for bad in ("", "  ", "ab\ncd"):
        with pytest.raises(SampleError, match="one line of text"):
            style_sheet(styles, bad, model=str(ckpt))
    sheet = tmp_path / "sheet.svg"
    assert cli.main(["styles", "show", "--text", "", "-o", str(sheet)]) == 2
    assert "one line of text" in capsys.readouterr().err and not sheet.exists()
    assert cli.main(["styles", "show", "--text", "5 \u20ac", "-o", str(sheet)]) == 2
    err = capsys.readouterr().err
    assert "'\u20ac'" in err and "--text" in err and "--substitute" not in err


def test_the_style_sheet_warns_by_style_when_a_style_s_line_is_cut(tmp_path, capsys, monkeypatch):
    import graves.sample as S
    from graves import cli

    real = S.write

    def late_second_style(text, **kw):  # style 1's line is cut in two pieces, the second unfinished
        hw = real(text, **kw)
        if kw["prime"].source == "style 1":
            r = hw.results[0]
            return S.Handwriting([text[:2], text[2:]], [r, replace(r, finished=False)])
        return hw

    monkeypatch.setattr(S, "write", late_second_style)
    sheet = tmp_path / "sheet.svg"
    assert cli.main(["styles", "show", "--text", "abcd", "-o", str(sheet)]) == 0
    err = capsys.readouterr().err
    assert "warning: style 1 did not reach the end" in err and "labelled" in err


def test_a_sample_page_has_bounds(tmp_path):
    from graves.sample import MAX_SAMPLE_LINES, MAX_SAMPLE_POINTS, MAX_SAMPLE_STEPS, sample_checkpoint_to_file

    ckpt = toy_checkpoint(tmp_path / "ckpt", kind="handwriting")
    out = tmp_path / "page.png"
    cases = (({"steps": MAX_SAMPLE_STEPS + 1}, "--steps must be"), ({"lines": MAX_SAMPLE_LINES + 1}, "--lines must be"),
             ({"steps": MAX_SAMPLE_STEPS, "lines": MAX_SAMPLE_POINTS // MAX_SAMPLE_STEPS + 1}, "points a page"))
    for kw, says in cases:
        with pytest.raises(SampleError, match=says):
            sample_checkpoint_to_file(ckpt, out, **kw)
    assert not out.exists()


def test_a_long_sample_of_a_synthesis_net_is_written_a_few_lines_at_a_time(tmp_path, monkeypatch):
    import graves.sample as S

    ckpt = toy_checkpoint(tmp_path / "ckpt")
    calls = []
    real = S.synthesize

    def spy(net, alphabet, texts, **kw):
        if "_groups" not in kw:
            calls.append(len(texts))
        return real(net, alphabet, texts, **kw)

    monkeypatch.setattr(S, "synthesize", spy)
    S.sample_checkpoint_to_file(ckpt, tmp_path / "one.png", text="ab", lines=5, seed=2)
    assert calls == [5]  # small: one batch, as before
    monkeypatch.setattr(S, "MAX_BATCH_CELLS", S.write_cells(["ab"] * 2, None, 1))
    calls.clear()
    S.sample_checkpoint_to_file(ckpt, tmp_path / "few.png", text="ab", lines=5, seed=2)
    assert calls == [2, 2, 1]
