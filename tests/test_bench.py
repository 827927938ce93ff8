"""The benchmarks' own logic, on toy inputs or a few real lines (bench/ is not a package: loaded by path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_legibility_scores_edit_distance_cer_and_pace():
    leg = _load("legibility")
    assert leg.levenshtein("kitten", "sitting") == 3
    assert leg.levenshtein("", "abc") == leg.levenshtein("abc", "") == 3
    # whitespace is not ink: IAM's tokenised "Mr . Smith" read as "Mr. Smith" is perfect
    assert leg.cer("Mr. Smith", "Mr . Smith") == 0.0
    assert leg.cer("Mr Smith", "Mr . Smith") == pytest.approx(1 / 8)
    lines = [np.zeros((20, 3)), np.zeros((90, 3)), np.zeros((40, 3))]
    assert leg.pace(lines, ["abcd", "abc", "ab"]) == pytest.approx(20.0)  # median of 5, 30, 20


def test_the_floor_s_standard_error_is_grouped_by_form():
    leg = _load("legibility")
    x = [0.1, 0.5, 0.3, 0.9, 0.2, 0.4]
    # one line a form: the cluster estimate is the plain one, up to its G / (G - 1) scaling vs ddof=1
    plain = np.std(x, ddof=1) / np.sqrt(len(x))
    assert leg.grouped_se(x, list("abcdef")) == pytest.approx(plain)
    # two forms whose lines agree within the form: far fewer independent pieces, a larger error
    same = [0.1, 0.1, 0.1, 0.9, 0.9, 0.9]
    assert leg.grouped_se(same, list("aaabbb")) > np.std(same, ddof=1) / np.sqrt(6)
    d = np.array(same) - np.mean(same)
    assert leg.grouped_se(same, list("aaabbb")) == pytest.approx(np.sqrt((d[:3].sum() ** 2 + d[3:].sum() ** 2) * 2) / 6)
    assert leg.grouped_se(x, ["a"] * 6) == 0.0  # one group: no estimate


def test_the_held_out_sentences_are_new_and_writable():
    from graves.data.alphabet import Alphabet
    from graves.sample import _cached_synthesizer

    leg = _load("legibility")
    tuned, held = leg.read_sentences(BENCH / "sentences.txt"), leg.read_sentences(BENCH / "sentences-heldout.txt")
    assert len(tuned) == len(held) == 50 and not set(tuned) & set(held)
    alphabet = Alphabet.from_dict(_cached_synthesizer(None)[1]["alphabet"])
    assert not [s for s in held if alphabet.unknown_characters(s)]
    text = "".join(held)
    # what the criterion asks of them: capitals, digits, punctuation and rare letters
    assert sum(c.isupper() for c in text) >= 50 and sum(c.isdigit() for c in text) >= 40
    assert all(sum(s.lower().count(c) for s in held) >= 5 for c in "qxz")
    assert set(",.;:!?'\"-()") <= set(text)


def test_legibility_levels_lines_and_reads_ocr_quotes_as_ascii():
    leg = _load("legibility")
    # a straight stroke rising at 30 degrees, levelled: its points end on one height
    x = np.linspace(0, 100, 50)
    pts = np.stack([x, np.tan(np.radians(30)) * x], 1)
    offsets = np.zeros((50, 3), np.float32)
    offsets[1:, :2] = np.diff(pts, axis=0)
    offsets[-1, 2] = 1
    flat = np.cumsum(leg.level(offsets)[:, :2].astype(np.float64), axis=0)
    assert np.ptp(flat[:, 1]) < 1e-3 and np.ptp(flat[:, 0]) == pytest.approx(100 / np.cos(np.radians(30)), rel=1e-4)
    # Tesseract's typographic quotes and ligatures are the reference's ASCII
    assert leg.cer("\u201cfine\u201d, it\u2019s", '" fine " , it \' s') == 0.0
    assert leg.cer("\ufb01ne", "fine") == 0.0


def test_candidates_features_and_choice_rules(capsys):
    from types import SimpleNamespace

    cand = _load("candidates")
    # "a b": the window stands on "a", then (briefly, weakly) on " ", never on "b" as argmax
    phi = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.1, 0.5, 0.4]], np.float32)
    offsets = np.zeros((3, 3))
    offsets[[0, 2], 2] = 1  # two pen lifts over three characters
    r = SimpleNamespace(phi=phi, offsets=offsets, finished=True, attempts=1, text="a b")
    f = cand.features(r)
    assert f["skipped"] == 1 and f["points"] == 3 and f["minpeak"] == pytest.approx(0.4)
    assert f["lifts"] == pytest.approx(2 / 3) and "nll" not in f and cand.features(r, 1.5)["nll"] == 1.5
    assert cand.features(SimpleNamespace(**{**vars(r), "text": "a  "}))["skipped"] == 0  # spaces are not letters
    with pytest.raises(ValueError, match="unprimed"):  # a primed line's window covers the primer's text too
        cand.features(SimpleNamespace(**{**vars(r), "text": "ab"}))
    lines = [
        {"points": 60, "finished": True, "attempts": 1, "skipped": 0, "minpeak": 0.5, "lifts": 0.9, "nll": -1.0, "cer": 0.6},
        {"points": 30, "finished": True, "attempts": 2, "skipped": 0, "minpeak": 0.99, "lifts": 2.0, "nll": -9.0,
         "cer": 0.4},  # retried
        {"points": 40, "finished": True, "attempts": 1, "skipped": 1, "minpeak": 0.2, "lifts": 0.3, "nll": -3.0, "cer": 0.5},
        {"points": 50, "finished": True, "attempts": 1, "skipped": 0, "minpeak": 0.9, "lifts": 1.2, "nll": 0.5, "cer": 0.3},
        {"points": 10, "finished": False, "attempts": 6, "skipped": 0, "minpeak": 1.0, "lifts": 3.0, "nll": 5.0, "cer": 0.1},
    ]
    pick = {name: lines.index(rule(lines)) for name, rule in cand.RULES.items()}
    # racing keeps a first-try ending over a quicker retried one; the other rules break ties among those
    assert pick == {"first (plain sampler)": 0, "fewest points (racing)": 2,
                    "no skipped letter, then fewest points": 3, "largest minpeak": 3,
                    "most pen lifts per character": 3, "lowest loss per point (bias 0)": 2,
                    "highest loss per point (bias 0)": 3, "oracle (best by OCR)": 4}
    # a line that drew nothing (loss inf) is picked by neither loss rule
    blank = [lines[0] | {"nll": float("inf")}, lines[2]]
    assert cand.RULES["highest loss per point (bias 0)"](blank) is lines[2]
    assert cand.RULES["lowest loss per point (bias 0)"](blank) is lines[2]
    # a run saved before pen lifts and losses were read: those rules are left out of its tables
    old = [{k: v for k, v in r.items() if k not in ("lifts", "nll")} | {"set": "s", "line": 0, "j": j}
           for j, r in enumerate(lines)]
    cand.report(old, 5)
    out = capsys.readouterr().out
    assert "fewest points (racing)" in out and "pen lifts" not in out and "loss per point" not in out
    assert cand.set_names(["a/sentences.txt", "b/sentences.txt", "c/held.txt"]) == [
        "a/sentences.txt", "b/sentences.txt", "held"]


def test_candidates_log_loss_is_the_models_own_mean_per_point():
    """``log_losses`` runs the net over a drawn line again: its mean eq.-26 loss per point, the same alone or
    beside a longer line (padding is not scored), in the model's normalised units."""
    from types import SimpleNamespace

    import torch

    from graves.config import ModelConfig
    from graves.data.alphabet import Alphabet
    from graves.data.strokes import Normaliser
    from graves.models.handwriting import HandwritingSynthesizer
    from graves.nn.mixture import mixture_nll

    cand = _load("candidates")
    torch.manual_seed(0)
    alphabet = Alphabet.build("full")
    model = HandwritingSynthesizer(ModelConfig(hidden_size=8, num_layers=1, mixtures=2, window_mixtures=1),
                                   len(alphabet)).eval()
    norm = Normaliser(np.array([1.0, -0.5]), np.array([4.0, 2.0]))
    rng = np.random.default_rng(0)
    raw = [np.c_[rng.normal(0, 3, (n, 2)), rng.random(n) < 0.2].astype(np.float32) for n in (7, 19)]
    lines = [SimpleNamespace(offsets=o, text=t) for o, t in zip(raw, ("ab", "a longer one"))]
    both = cand.log_losses(model, alphabet, norm.to_dict(), lines)
    alone = cand.log_losses(model, alphabet, norm, lines[:1])
    assert both[0] == pytest.approx(alone[0], rel=1e-5)
    x = torch.from_numpy(norm.normalise(raw[0]))
    inputs = torch.cat([torch.zeros(1, 3), x[:-1]])[:, None]  # (T, 1, 3): the null input, then the points
    c, _ = alphabet.one_hot(["ab"])
    with torch.no_grad():
        y_hat, _, _ = model(inputs, c)
    assert alone[0] == pytest.approx(float(mixture_nll(y_hat, x[:, None]).mean()), rel=1e-5)
    # a line that drew nothing has no loss to rank it by
    empty = SimpleNamespace(offsets=np.zeros((0, 3), np.float32), text="ab")
    assert cand.log_losses(model, alphabet, norm, [empty, lines[0]]) == [np.inf, pytest.approx(alone[0], rel=1e-5)]


def test_hand_measures_height_width_and_slant_of_a_line():
    hand = _load("hand")
    # a zigzag of up-down strokes leaning 20 degrees right, pen down throughout, 10 units tall
    lean = np.tan(np.radians(20))
    steps = [(lean * 10, 10, 0), (1.0, 0, 0), (-lean * 10, -10, 0), (1.0, 0, 0)] * 60  # long: levelling ~ no tilt
    offsets = np.array(steps, np.float32)
    height, width_per_char, slant = hand.line_features(offsets, "abcd")
    assert slant == pytest.approx(20, abs=2)
    assert 9 < height < 11 and width_per_char > 0
    upright = offsets.copy()
    upright[:, 0] = np.where(np.abs(upright[:, 1]) > 0, 0, upright[:, 0])
    assert abs(hand.line_features(upright, "abcd")[2]) < 2
    # noisy strokes leaning 25 degrees: the window follows the line's own slant (a fixed one shrank it)
    rng = np.random.default_rng(0)
    angles = np.radians(np.repeat(25 + rng.normal(0, 12, 200), 2))  # each stroke up, then back down
    sign = np.where(np.arange(400) % 2 == 0, 1.0, -1.0)
    noisy = np.zeros((800, 3), np.float32)
    noisy[0::2, 0], noisy[0::2, 1] = sign * 10 * np.sin(angles), sign * 10 * np.cos(angles)
    noisy[1::2, 0] = 1.0
    assert hand.line_features(noisy, "abcd")[2] == pytest.approx(25, abs=2.5)
    # a long steep move with the pen up (to an i-dot, say) is not part of the slant
    jumps = noisy.copy()
    jumps[49::50, 2] = 1  # the pen lifts after these points, moves far up to a dot and back
    at = np.arange(50, 800, 50)
    jumps = np.insert(jumps, np.repeat(at, 2), np.tile([[10.0, 80.0, 1.0], [-10.0, -80.0, 1.0]], (len(at), 1)), axis=0)
    assert hand.line_features(jumps, "abcd")[2] == pytest.approx(hand.line_features(noisy, "abcd")[2], abs=1.5)


def test_hand_measures_height_along_a_line():
    hand = _load("hand")
    # a level zig-zag whose first third is twice as tall as the rest: 300 points, x steps of 1
    t = np.arange(300)
    amp = np.where(t < 100, 2.0, 1.0)
    y = amp * np.where(t % 2 == 0, 1.0, -1.0)
    pts = np.c_[t.astype(float), y]
    offsets = np.c_[np.diff(pts, axis=0, prepend=pts[:1]), np.zeros(300)].astype(np.float32)
    first, middle, last = hand.height_along(offsets)
    assert first == pytest.approx(4.0, rel=0.05)
    assert middle == pytest.approx(2.0, rel=0.05) and last == pytest.approx(2.0, rel=0.05)


def test_last_stroke_counts_cut_strokes_lone_points_delayed_strokes_and_the_cap():
    from graves.sample import SynthesisResult

    L = _load("last_stroke")

    def res(eos, tail=0):
        eos = np.asarray(eos, np.float32)
        off = np.stack([np.ones_like(eos), np.zeros_like(eos), eos], 1)
        return SynthesisResult(off, np.zeros((len(eos), 1), np.float32), True, "x", tail=tail)

    paper = [res([0, 0, 1]),           # ended pen-up: nothing cut
             res([0, 1, 0, 0]),        # cut mid-stroke ...
             res([0, 0, 1, 0]),        # a lone point after a pen-up
             res([0, 0, 0]),           # cut, then runs to the cap
             res([0, 1])]              # ended pen-up, then a delayed stroke
    done = [res([0, 0, 1]),
            res([0, 1, 0, 0, 0, 1, 0, 1], tail=4),  # ... finished 2 points on, then a delayed stroke
            res([0, 0, 1], tail=-1),
            res([0, 0, 0, 0, 0, 0, 0], tail=4),
            res([0, 1, 0, 1], tail=2)]
    r = L.count(paper, done, cap=4)
    assert r == {"lines": 5, "pen_down": 3, "lone": 1, "to_lift": [2], "delayed": 2, "at_cap": 2}
    with pytest.raises(AssertionError, match="differ"):
        L.count([res([0, 1])], [res([1, 1, 1], tail=1)], cap=30)


def test_step_speed_times_both_settings_on_real_batches(capsys, monkeypatch):
    import torch
    from conftest import require_data

    bench = _load("step_speed")
    assert bench.spread(10, 4) == [0, 2, 5, 8] and bench.spread(3, 8) == [0, 1, 2]
    root = require_data("iam-ondb").parent
    config = str(BENCH.parent / "configs" / "toy-hw-predict.toml")
    settings, real = [], bench.training_step

    def spy(*args):
        settings.append(args[-1])
        return real(*args)

    monkeypatch.setattr(bench, "training_step", spy)
    result = bench.main([config, f'data.root="{root}"', "--batches", "2", "--threads", "1"])
    bf16 = torch.bfloat16  # a warm-up of each, then batch 1 float32 first, batch 2 bfloat16 first
    assert settings == [None, bf16, None, bf16, bf16, None]
    assert result["float32"] > 0 and result["bfloat16"] > 0
    assert result["ratio"] == pytest.approx(result["float32"] / result["bfloat16"])
    out = capsys.readouterr().out
    assert "toy-hw-predict: 2 batches of 2" in out and "RATIO float32 / bfloat16 = " in out


def test_step_speed_reads_a_text_epoch_in_order(capsys):
    """A text epoch is a stream (no indexing): the bench reads it in order and times the chosen batches."""
    from conftest import require_data

    bench = _load("step_speed")
    root = require_data("ptb").parent
    config = str(BENCH.parent / "configs" / "toy-text.toml")
    result = bench.main([config, f'data.root="{root}"', "--batches", "2", "--threads", "1"])
    assert result["float32"] > 0 and result["bfloat16"] > 0
    out = capsys.readouterr().out
    assert "toy-text: 2 batches of " in out and "RATIO float32 / bfloat16 = " in out

    class Stream:  # what pick() sees of a text epoch: a length and an iterator, read once up to the last wanted
        read = 0

        def __len__(self):
            return 10

        def __iter__(self):
            for i in range(10):
                Stream.read += 1
                yield f"batch {i}"

    assert bench.pick(Stream(), [0, 2, 5]) == {0: "batch 0", 2: "batch 2", 5: "batch 5"} and Stream.read == 6
    assert bench.pick(["a", "b", "c"], [2]) == {2: "c"}
