"""Text prediction (Section 3): the model, the task's training/evaluation protocol, and the CLI end to end.

Tiny nets only; the real-data tests read PTB from the data root (``conftest.require_data``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, require_data
from graves.checkpoint import CheckpointError, load_meta, load_weights
from graves.config import Config, ModelConfig, load_config
from graves.data.text import Vocab, load_corpus
from graves.models.text import NULL, TextPredictor, one_hot_null
from graves.plots import read_metrics
from graves.tasks.text import (
    TextTask,
    count_characters,
    count_words,
    sample_text,
    sample_text_checkpoint,
    sequence_nll,
)

TOY = REPO / "configs" / "toy-text.toml"




def _tiny_model_cfg(H: int = 8, N: int = 2, fused: bool = True) -> ModelConfig:
    return ModelConfig(kind="text", hidden_size=H, num_layers=N, lstm_clip=1.0, fused=fused)


def _bytes_cfg(path: Path, **train) -> Config:
    """A tiny text task on the bytes of ``path`` (split 90/5/5 in file order)."""
    d = Config().to_dict()
    d["name"] = "tiny-bytes"
    d["model"] = {"kind": "text", "hidden_size": 8, "num_layers": 2, "lstm_clip": 1.0}
    d["data"] = {"name": "bytes", "root": str(path.parent), "path": path.name, "split": "90-5-5"}
    d["optim"] = {"name": "sgd", "lr": 0.1, "momentum": 0.0}
    d["train"] = {"batch_size": 3, "seq_len": 7, "reset_every": 0, "shuffle": False, "threads": 1, **train}
    return Config.from_dict(d)


@pytest.fixture
def text_file(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "<x>", "{{y}}"]
    lines = [" ".join(rng.choice(words, size=rng.integers(3, 9))) for _ in range(400)]
    p = tmp_path / "sample.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _sha(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir()) if f.is_file()}


def _uniform(model: TextPredictor) -> TextPredictor:
    """Output weights and bias zero: ŷ_t = 0 (eq. 3), so y_t is uniform over the V classes (eq. 12)."""
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.zero_()
    return model


# --------------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False])
def test_lookup_input_equals_dense_one_hot(fused):
    """W_ih · one-hot(x) as a column lookup gives the dense path's values and gradients (float64)."""
    V = 13
    dense = TextPredictor(_tiny_model_cfg(fused=fused), V, lookup=False).double()
    lookup = TextPredictor(_tiny_model_cfg(fused=fused), V, lookup=True).double()
    lookup.load_state_dict(dense.state_dict())
    x = torch.randint(0, V, (9, 4))
    x[0, :2] = NULL  # the null first input of eq. 1
    y = torch.randint(0, V, (9, 4))
    state = [s._replace(h=torch.randn_like(s.h), c=torch.randn_like(s.c)) for s in dense.zero_state(4, dtype=torch.float64)]
    out = []
    for m in (dense, lookup):
        logits, new_state = m(x, state)
        loss = sequence_nll(logits, y).sum()
        loss.backward()
        out.append((logits.detach(), [t for s in new_state for t in s], {n: p.grad for n, p in m.named_parameters()}))
    torch.testing.assert_close(out[0][0], out[1][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(out[0][1], out[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for name in out[0][2]:
        torch.testing.assert_close(out[0][2][name], out[1][2][name], rtol=1e-10, atol=1e-12, msg=name)


def test_null_input_is_the_zero_vector():
    x = torch.tensor([[NULL, 2], [0, NULL]])
    oh = one_hot_null(x, 3)
    assert oh.shape == (2, 2, 3)
    assert oh[0, 0].sum() == 0 and oh[1, 1].sum() == 0
    assert oh[0, 1].tolist() == [0, 0, 1] and oh[1, 0].tolist() == [1, 0, 0]


def test_model_shapes_and_parameter_count():
    m = TextPredictor(ModelConfig(kind="text", hidden_size=1000, num_layers=1, lstm_clip=1.0), 49)
    logits, state = m(torch.zeros(5, 2, dtype=torch.long))
    assert logits.shape == (5, 2, 49) and len(state) == 1 and state[0].h.shape == (2, 1000)
    n = sum(p.numel() for p in m.parameters())
    assert 4.2e6 < n < 4.4e6  # "approximately 4.3M weights" (Section 3.1)
    assert not m.lookup and TextPredictor(_tiny_model_cfg(), 10_000).lookup


# --------------------------------------------------------------------------------------------------
# the task: loss, streams, metrics
# --------------------------------------------------------------------------------------------------


def test_uniform_predictor_bpc_is_log2_V(text_file):
    task = TextTask(_bytes_cfg(text_file))
    V = len(task.vocab)
    model = _uniform(task.model)
    m = task.evaluate(model, "valid")
    assert m["loss"] == pytest.approx(math.log(V), rel=1e-6)
    assert m["bpc"] == pytest.approx(math.log2(V), rel=1e-6)
    assert m["symbols"] == len(task.split_ids("valid")) // 3 * 3  # B streams of ⌊N/B⌋ symbols each
    assert "perplexity" not in m  # bytes have no words
    # ties go to id 0, so the error is the share of targets that are not symbol 0; one stream from the
    # null input predicts every symbol of the split
    ids = torch.as_tensor(task.split_ids("valid"))
    one = task.evaluate(model, "valid", streams=1)
    assert one["symbols"] == len(ids)
    assert 0 < one["error"] < 100
    assert one["error"] == pytest.approx(100 * float((ids != 0).double().mean()), rel=1e-9)


def test_uniform_predictor_on_ptb_char_and_word():
    """The real evaluate path on PTB: BPC = log2 V; per-word perplexity = 2^(log2 V · chars / words)."""
    root = require_data("ptb")
    for name, V in (("ptb-char", 49), ("ptb-word", 10_000)):
        cfg = load_config(TOY, [f'data.name="{name}"', f'data.root="{root.parent}"', "data.max_lines=30"])
        task = TextTask(cfg)
        assert len(task.vocab) == V
        ids = task.split_ids("test")
        m = task.evaluate(_uniform(task.model), "test", streams=1)
        assert m["symbols"] == len(ids)  # one stream from the null input: every symbol is predicted
        chars, words = count_characters(ids, task.vocab), count_words(ids, task.vocab)
        bits = math.log2(V) * len(ids)
        assert m["loss"] == pytest.approx(math.log(V), rel=1e-6)
        assert m["bpc"] == pytest.approx(bits / chars, rel=1e-6)
        assert m["perplexity"] == pytest.approx(2 ** (bits / words), rel=1e-5)
        if name == "ptb-word":
            assert m["perplexity"] == pytest.approx(V, rel=1e-5)


def test_word_and_character_counts_agree_between_ptb_levels():
    """A word split's characters are the character split's symbols; the char split's words are the tokens."""
    root = require_data("ptb")
    word, char = load_corpus("ptb-word", root.parent), load_corpus("ptb-char", root.parent)
    for split in ("valid", "test"):
        assert count_characters(word.split(split), word.vocab) == len(char.split(split))
        assert count_words(char.split(split), char.vocab) == len(word.split(split)) == word.word_counts[split]


@pytest.mark.parametrize("B", [1, 3])
def test_chunked_batches_with_carried_state_equal_one_pass(text_file, B):
    """Truncated BPTT carries the state: the losses of T-step batches add up to the loss of one pass."""
    torch.manual_seed(0)
    chunked = TextTask(_bytes_cfg(text_file, batch_size=B, seq_len=7))
    whole = TextTask(_bytes_cfg(text_file, batch_size=B, seq_len=100_000))
    whole.model.load_state_dict(chunked.model.state_dict())
    chunked.model.double()
    whole.model.double()
    batches = list(chunked.batches(0))
    assert len(batches) > 10 and batches[0].reset and not any(b.reset for b in batches[1:])
    assert batches[0].inputs[0, 0] == NULL  # the null first input (Section 2)
    # the streams are the split cut in B contiguous pieces; each target is the next input
    x = torch.cat([b.inputs for b in batches])  # (L, B)
    y = torch.cat([b.targets for b in batches])  # (L, B)
    ids = torch.from_numpy(chunked._corpus.train)
    L = x.shape[0]
    assert torch.equal(y[:-1], x[1:])
    assert torch.equal(y.t().reshape(-1), ids[: B * L])
    total = 0.0
    losses = []
    for b in batches:
        loss, count = chunked.loss(chunked.model, b)
        assert count == B
        losses.append(loss)
        total += float(loss.detach()) * B
    [one] = list(whole.batches(0))
    ref, _ = whole.loss(whole.model, one)
    assert total == pytest.approx(float(ref.detach()) * B, rel=1e-10)
    # gradients are cut at each boundary: each batch's graph is separate (a second backward through an
    # earlier batch's freed graph would raise)
    for loss in losses[:3]:
        loss.backward()
    # and evaluation does not depend on the chunk length either
    m1 = chunked.evaluate(chunked.model, "valid", streams=2)
    m2 = whole.evaluate(whole.model, "valid", streams=2)
    assert m1["loss"] == pytest.approx(m2["loss"], rel=1e-10) and m1["error"] == m2["error"]


def test_state_is_reset_every_R_sequences(text_file):
    task = TextTask(_bytes_cfg(text_file, reset_every=4))
    flags = [b.reset for b in task.batches(0)]
    assert flags[:9] == [True, False, False, False, True, False, False, False, True]
    # a reset batch starts from the zero state: its loss equals a fresh task's loss on it
    batches = list(task.batches(0))
    for b in batches[:4]:
        task.loss(task.model, b)
    fresh = TextTask(_bytes_cfg(text_file, reset_every=4))
    fresh.model.load_state_dict(task.model.state_dict())
    a, _ = task.loss(task.model, batches[4])
    fresh._state = None
    b, _ = fresh.loss(fresh.model, batches[4])
    assert float(a.detach()) == float(b.detach())


@pytest.mark.parametrize("group", [1, 2])
def test_loss_of_slices_adds_up_to_batch_loss(text_file, group):
    """Weight noise runs the batch one sequence (or one group of sequences, the last one short) at a time:
    the same losses and the same carried state as the whole batch."""
    torch.manual_seed(1)
    a, b = TextTask(_bytes_cfg(text_file)), TextTask(_bytes_cfg(text_file))
    b.model.load_state_dict(a.model.state_dict())
    batches = list(a.batches(0))[:3]
    for batch in batches:
        whole, count = a.loss(a.model, batch)
        assert count % group or group == 1  # with groups of 2 (B = 3), the last group is short
        slices = [slice(i, min(i + group, count)) for i in range(0, count, group)]
        parts = [b.loss(b.model, batch, idx) for idx in slices]
        assert [c for _, c in parts] == [idx.stop - idx.start for idx in slices]
        total = sum(p.detach() * c for p, c in parts)
        assert float(total) / count == pytest.approx(float(whole.detach()), rel=1e-6)
        for sa, sb in zip(a._state, b._state):
            assert torch.allclose(sa.h, sb.h, atol=1e-6) and torch.allclose(sa.c, sb.c, atol=1e-6)
    for sa, sb in zip(a.state_dict()["hidden"], b.state_dict()["hidden"]):
        torch.testing.assert_close(sa[0], sb[0])
        torch.testing.assert_close(sa[1], sb[1])


def test_meta_rebuilds_without_the_training_set(monkeypatch):
    """With a checkpoint's meta the task reads only the split it evaluates (PTB) and sampling reads nothing."""
    root = require_data("ptb")
    cfg = load_config(TOY, [f'data.root="{root.parent}"'])
    task = TextTask(cfg)
    meta = {"config": cfg.to_dict(), **task.meta()}
    import graves.tasks.text as tt

    def no_corpus(*a, **k):
        raise AssertionError("the training corpus was loaded")

    monkeypatch.setattr(tt, "load_corpus", no_corpus)
    rebuilt = TextTask(Config.from_dict(meta["config"]), json.loads(json.dumps(meta)))
    assert rebuilt.vocab == task.vocab and rebuilt.num_train_sequences == 0
    np.testing.assert_array_equal(rebuilt.split_ids("test"), task.split_ids("test"))
    rebuilt.model.load_state_dict(task.model.state_dict())
    assert rebuilt.evaluate(rebuilt.model, "valid") == task.evaluate(task.model, "valid")
    with pytest.raises(RuntimeError, match="no training data"):
        rebuilt.batches(0)


# --------------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------------


def test_sampling_is_pure_seeded_and_primed():
    vocab = Vocab(list("abcde_\n"), unit="char")
    torch.manual_seed(3)
    model = TextPredictor(_tiny_model_cfg(H=16), len(vocab))
    before = copy.deepcopy(model.state_dict())
    s1 = sample_text(model, vocab, 60, 1.0, "", torch.Generator().manual_seed(5))
    s2 = sample_text(model, vocab, 60, 1.0, "", torch.Generator().manual_seed(5))
    s3 = sample_text(model, vocab, 60, 1.0, "", torch.Generator().manual_seed(6))
    assert s1 == s2 and s1 != s3 and len(s1) == 60 and set(s1) <= set(vocab.symbols)
    primed = sample_text(model, vocab, 20, 1.0, "abba_", torch.Generator().manual_seed(5))
    assert primed.startswith("abba_") and len(primed) == 25
    greedy = sample_text(model, vocab, 20, 0.0, "ab", torch.Generator().manual_seed(0))
    assert greedy == sample_text(model, vocab, 20, 0.0, "ab", torch.Generator().manual_seed(99))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # priming runs the prime through the net from the null input: the greedy continuation is the
    # argmax after one pass over [null, prime]
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4)  # a net whose predictions depend strongly on its input
        ids = [vocab.index[c] for c in "abba_"]
        logits, state = model(torch.tensor([[NULL] + ids]).t())
        expect, nxt = [], int(logits[-1, 0].argmax())
        for _ in range(5):
            expect.append(nxt)
            logits, state = model(torch.tensor([[nxt]]), state)
            nxt = int(logits[-1, 0].argmax())
    got = sample_text(model, vocab, 5, 0.0, "abba_", torch.Generator())
    assert got == "abba_" + "".join(vocab.symbols[i] for i in expect)
    others = {sample_text(model, vocab, 8, 0.0, p, torch.Generator())[len(p):] for p in ("aaaa", "eeee", "d\nc_", "")}
    assert len(others) > 1  # the prime changes what follows


def test_sampling_matches_the_model_distribution():
    """Draws follow softmax(ŷ / temperature) (eq. 12): a net with a fixed output bias and zero weights."""
    vocab = Vocab(list("xyz"), unit="char")
    model = _uniform(TextPredictor(_tiny_model_cfg(), 3))
    with torch.no_grad():
        model.output.bias.copy_(torch.tensor([0.0, math.log(3.0), -20.0]))  # p = (1/4, 3/4, ~0)
    s = sample_text(model, vocab, 4000, 1.0, "", torch.Generator().manual_seed(0))
    assert s.count("z") == 0
    assert s.count("y") / len(s) == pytest.approx(0.75, abs=0.03)
    cold = sample_text(model, vocab, 2000, 0.5, "", torch.Generator().manual_seed(0))
    assert cold.count("y") / len(cold) == pytest.approx(0.9, abs=0.03)  # (3/4)² / ((1/4)² + (3/4)²)


# --------------------------------------------------------------------------------------------------
# training through graves.train and the CLI
# --------------------------------------------------------------------------------------------------


def _toy(*overrides: str) -> Config:
    root = require_data("ptb")
    return load_config(TOY, [f'data.root="{root.parent}"', *overrides])


@pytest.mark.parametrize("setting", ['noise.kind="none"', 'noise.kind="adaptive"', "train.ema_decay=0.5"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, setting):
    from graves.train import train

    extra = [setting, "train.eval_every=0", "train.max_steps=8"]
    train(_toy(*extra), tmp_path / "whole", progress=False)
    train(_toy(*extra[:-1], "train.max_steps=4"), tmp_path / "split", progress=False)  # interrupted at 4
    half = load_weights(tmp_path / "split" / "last")
    summary = train(_toy(*extra), tmp_path / "split", resume=True, progress=False)
    assert summary["step"] == 8
    a, b = load_weights(tmp_path / "whole" / "last"), load_weights(tmp_path / "split" / "last")
    assert any(not torch.equal(half[k], b[k]) for k in a)  # the resumed run did train
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ema_a, ema_b = (torch.load(tmp_path / run / "last" / "trainer.pt", weights_only=True)["ema"]
                    for run in ("whole", "split"))
    assert set(ema_a) == set(ema_b) and bool(ema_a) == ("ema_decay" in setting)
    for k in ema_a:  # the average of the weights, too, continues exactly
        assert torch.equal(ema_a[k], ema_b[k]), k
    # and the learning curves read back from the two runs' metrics files are the same (the resumed
    # run's clock restarts at zero: its minutes are added to the first process's)
    whole, split = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    assert whole.train[:, 0].tolist() == split.train[:, 0].tolist() == [2, 4, 6, 8]
    np.testing.assert_array_equal(whole.train[:, 2], split.train[:, 2])
    assert (np.diff(split.train[:, 1]) >= 0).all()
    assert [v["step"] for v in split.valid] == [4, 8] and [v["step"] for v in whole.valid] == [8]
    assert split.valid[-1]["loss"] == whole.valid[-1]["loss"]


def test_a_run_resumed_after_its_own_stop_stays_stopped(tmp_path, capsys):
    # found in session 15's review: max_steps and patience were checked only after a step, so every
    # resume of a finished run took one more step (or trained on to the next validation)
    from graves.train import train

    train(_toy("train.max_steps=3", "train.eval_every=0"), tmp_path / "r", progress=False)
    before = load_weights(tmp_path / "r" / "last")
    summary = train(_toy("train.max_steps=3", "train.eval_every=0"), tmp_path / "r", resume=True, progress=False)
    assert summary["stop"] == "max_steps" and summary["step"] == 3
    after = load_weights(tmp_path / "r" / "last")
    assert all(torch.equal(before[k], after[k]) for k in before)
    # early stopping: lr 0 never improves, so patience 1 stops at the second validation, and stays stopped
    es = ["optim.lr=0", "train.eval_every=1", "train.patience=1", "train.max_steps=50"]
    assert train(_toy(*es), tmp_path / "es", progress=False)["step"] == 2
    summary = train(_toy(*es), tmp_path / "es", resume=True, progress=False)
    assert summary["stop"] == "early stopping" and summary["step"] == 2
    assert "already stopped (validations without improvement: 1 >= train.patience 1)" in capsys.readouterr().err


def test_noise_draws_do_not_reuse_the_initialisations_random_numbers(tmp_path, monkeypatch):
    # found in session 15's review: the noise generator and torch.manual_seed shared one seed, so the first
    # draw reused the initialisation's random numbers
    import graves.train as tr

    first = []
    real = tr.training_step

    def spy(task, model, batch, optimizer, noise, generator, *rest):
        if not first:
            first.append(generator.get_state().clone())
        return real(task, model, batch, optimizer, noise, generator, *rest)

    monkeypatch.setattr(tr, "training_step", spy)
    tr.train(_toy("train.max_steps=1", "train.seed=3"), tmp_path / "r", progress=False)
    assert torch.equal(first[0], torch.Generator().manual_seed(3 * 1_000_003 + tr.NOISE_STREAM).get_state())
    assert not torch.equal(first[0], torch.Generator().manual_seed(3).get_state())  # the old seeding


def test_a_stop_saves_last_before_its_validation(tmp_path, monkeypatch):
    # a SIGKILL that follows SIGTERM during the stop-time validation must not lose the steps since the last one
    from graves.tasks.text import TextTask
    from graves.train import train

    real = TextTask.evaluate
    calls = []

    def killed_at_stop(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # steps 2 and 4 are scheduled; the third is the stop's, at step 5
            raise KeyboardInterrupt  # stands for the process being killed mid-validation
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TextTask, "evaluate", killed_at_stop)
    with pytest.raises(KeyboardInterrupt):
        train(_toy("train.max_steps=5", "train.eval_every=2"), tmp_path / "r", progress=False)
    assert load_meta(tmp_path / "r" / "last")["step"] == 5


def test_stop_time_validations_leave_early_stopping_as_an_uninterrupted_run_has_it(tmp_path):
    """A validation made because a run stopped between scheduled ones is recorded (and may save `best`),
    but early stopping counts only the scheduled ones, so stopping and resuming changes nothing it
    decides; a run stopped on an epoch's last batch is not validated twice at the same step."""
    from graves.train import train

    def state(run):
        return torch.load(tmp_path / run / "last" / "trainer.pt", weights_only=True)

    extra = ["train.eval_every=6", "train.patience=5"]
    train(_toy(*extra, "train.max_steps=14"), tmp_path / "whole", progress=False)
    train(_toy(*extra, "train.max_steps=7"), tmp_path / "split", progress=False)
    train(_toy(*extra, "train.max_steps=14"), tmp_path / "split", resume=True, progress=False)
    whole, split = state("whole"), state("split")
    assert [(h["step"], bool(h.get("at_stop"))) for h in split["history"]] == [
        (6, False), (7, True), (12, False), (14, True)]
    assert [(h["step"], bool(h.get("at_stop"))) for h in whole["history"]] == [(6, False), (12, False), (14, True)]
    assert (whole["best"], whole["bad_evals"]) == (split["best"], split["bad_evals"])
    assert split["best_saved"] == min(h["valid"]["loss"] for h in split["history"])

    # stopped on the last batch of an epoch, with a validation at each epoch's end
    per_epoch = ["train.eval_every=0", "train.patience=5"]
    n = train(_toy(*per_epoch, "train.epochs=1", "train.max_steps=0"), tmp_path / "epoch", progress=False)["step"]
    train(_toy(*per_epoch, f"train.max_steps={n}"), tmp_path / "cut", progress=False)
    assert state("cut")["history"][-1].get("at_stop") and state("cut")["position"] == n  # the epoch's last batch
    train(_toy(*per_epoch, f"train.max_steps={n + 2}"), tmp_path / "cut", resume=True, progress=False)
    steps = [h["step"] for h in state("cut")["history"]]
    assert steps == [n, n + 2] and not state("cut")["history"][0].get("at_stop")  # taken over, not repeated
    assert state("cut")["bad_evals"] == 0 and state("cut")["best"] == state("cut")["history"][0]["valid"]["loss"]
    records = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "valid" in r] == [n, n + 2]


def test_a_full_disk_stops_training_with_the_last_checkpoint_intact_and_resume_loses_nothing(tmp_path, monkeypatch):
    """The metrics file cannot be appended to at step 8 (the disk is full): one clear error; after making
    room, --resume from the step-6 checkpoint ends with the weights of a run that never failed."""
    import builtins

    import graves.train as train_mod
    from graves.train import train

    extra = ["train.eval_every=6", "train.max_steps=12", "train.log_every=2"]
    train(_toy(*extra), tmp_path / "whole", progress=False)

    class FillingFile:
        def __init__(self, f, room):
            self.f, self.room = f, room

        def write(self, text):
            if self.room <= 0:
                self.f.write(text[: len(text) // 2])  # part of the record reaches the file
                raise OSError(28, "No space left on device")
            self.room -= 1
            return self.f.write(text)

        def __getattr__(self, name):
            return getattr(self.f, name)

    # records: train 2, 4, 6, valid 6 (checkpoint), train 8 <- the disk is full
    monkeypatch.setattr(train_mod, "open", lambda *a, **k: FillingFile(builtins.open(*a, **k), 4), raising=False)
    with pytest.raises(CheckpointError, match=r"metrics\.jsonl: No space left on device; training stopped at step 8 "
                                              r"\(.*last holds the last checkpoint: make room, then --resume\)"):
        train(_toy(*extra), tmp_path / "split", progress=False)
    assert load_meta(tmp_path / "split" / "last")["step"] == 6
    monkeypatch.undo()
    summary = train(_toy(*extra), tmp_path / "split", resume=True, progress=False)
    assert summary["step"] == 12
    a, b = load_weights(tmp_path / "whole" / "last"), load_weights(tmp_path / "split" / "last")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the cut-short record is skipped; the curves are the uninterrupted run's
    whole, split = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    assert split.skipped == 1
    np.testing.assert_array_equal(whole.train[:, [0, 2]], split.train[:, [0, 2]])


def test_weight_averaging_validates_and_saves_the_average_and_leaves_training_alone(tmp_path):
    """train.ema_decay: best = w̄ with w̄ = w_0, then w̄ ← d·w̄ + (1 − d)·w_t after each step; `last` and the
    training trajectory are those of the run without averaging; each validation also reports the raw weights."""
    from graves.train import train

    train(_toy("train.max_steps=2", "train.eval_every=0"), tmp_path / "start", progress=False)
    start = tmp_path / "start" / "last"
    common = [f'train.init_from="{start}"', "train.eval_every=0"]
    w = [load_weights(start)]
    for k in (1, 2, 3):
        train(_toy(*common, f"train.max_steps={k}"), tmp_path / f"plain{k}", progress=False)
        w.append(load_weights(tmp_path / f"plain{k}" / "last"))
    run = tmp_path / "ema"
    train(_toy(*common, "train.max_steps=3", "train.ema_decay=0.5"), run, progress=False)
    last, best = load_weights(run / "last"), load_weights(run / "best")
    for k in w[3]:
        assert torch.equal(last[k], w[3][k]), k  # averaging does not touch the training weights
        expect = 0.125 * w[0][k] + 0.125 * w[1][k] + 0.25 * w[2][k] + 0.5 * w[3][k]
        torch.testing.assert_close(best[k], expect, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(best[k], last[k]) for k in last)
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    checks = [r for r in records if "valid" in r]
    assert checks and all("valid_raw" in r for r in checks)
    raw = checks[-1]["valid_raw"]["loss"]
    assert raw == pytest.approx(json.loads((tmp_path / "plain3" / "metrics.jsonl").read_text().splitlines()[-1])
                                ["valid"]["loss"], rel=1e-6)
    assert checks[-1]["valid"]["loss"] != pytest.approx(raw, rel=1e-6)
    assert "moving average" in load_meta(run / "best")["weights"]
    for bad in ("1", "-0.1"):
        with pytest.raises(ValueError, match=r"train.ema_decay must be in \[0, 1\)"):
            train(_toy(f"train.ema_decay={bad}", "train.max_steps=1"), tmp_path / "bad", progress=False)


def test_bf16_matmuls_apply_to_the_training_steps_only(tmp_path, monkeypatch):
    """train.matmul_dtype = "bfloat16": every training step runs under bfloat16 products, every validation in
    float32; the weights stay float32, close to the float32 run's and not equal to them (the rounding is real)."""
    import graves.nn.lstm as lstm_mod
    import graves.train as train_mod
    from graves.tasks.text import TextTask

    seen: dict[str, list] = {"step": [], "eval": []}
    loss, evaluate = TextTask.loss, TextTask.evaluate

    def spy_loss(self, *a, **k):  # the training steps' losses (validation calls evaluate)
        seen["step"].append(lstm_mod._MATMUL_DTYPE.get())
        return loss(self, *a, **k)

    def spy_eval(self, *a, **k):
        seen["eval"].append(lstm_mod._MATMUL_DTYPE.get())
        return evaluate(self, *a, **k)

    monkeypatch.setattr(TextTask, "loss", spy_loss)
    monkeypatch.setattr(TextTask, "evaluate", spy_eval)
    train_mod.train(_toy("train.max_steps=1", "train.eval_every=0"), tmp_path / "start", progress=False)
    start = load_weights(tmp_path / "start" / "last")
    seen["step"].clear(), seen["eval"].clear()
    # plain SGD, so the weights' movement is proportional to the gradients (Adam's is not)
    common = [f'train.init_from="{tmp_path / "start" / "last"}"', 'optim.name="sgd"', "optim.lr=0.1",
              "optim.momentum=0", "train.max_steps=4", "train.eval_every=2"]
    train_mod.train(_toy(*common, 'train.matmul_dtype="bfloat16"'), tmp_path / "bf16", progress=False)
    assert seen["step"] == [torch.bfloat16] * 4 and seen["eval"] and set(seen["eval"]) == {None}
    assert lstm_mod._MATMUL_DTYPE.get() is None
    seen["step"].clear()
    train_mod.train(_toy(*common), tmp_path / "f32", progress=False)
    assert seen["step"] == [None] * 4
    low, full = load_weights(tmp_path / "bf16" / "last"), load_weights(tmp_path / "f32" / "last")
    assert all(v.dtype == torch.float32 for v in low.values())
    assert any(not torch.equal(low[k], full[k]) for k in full)
    moved = sum(float((full[k] - start[k]).norm() ** 2) for k in full) ** 0.5
    apart = sum(float((low[k] - full[k]).norm() ** 2) for k in full) ** 0.5
    assert moved > 0 and apart < 0.01 * moved, (apart, moved)  # the same steps, up to bf16's rounding (3e-4)
    assert load_meta(tmp_path / "bf16" / "last")["config"]["train"]["matmul_dtype"] == "bfloat16"


@pytest.mark.parametrize("has_bf16", [False, True, None])
def test_bf16_matmuls_on_a_cpu_without_bf16_instructions_warn(tmp_path, monkeypatch, capsys, has_bf16):
    import graves.train as train_mod

    monkeypatch.setattr(train_mod, "_cpu_has_bf16", lambda: has_bf16)
    train_mod.train(_toy("train.max_steps=1", 'train.matmul_dtype="bfloat16"'), tmp_path / "r", progress=False)
    warned = "on a CPU without bfloat16 instructions" in capsys.readouterr().err
    assert warned == (has_bf16 is False)


def test_weight_averaging_under_adaptive_noise_averages_the_posterior_means(tmp_path):
    """With adaptive weight noise the average is taken over the clean means μ after each step, never over a
    noisy draw w = μ + s·ξ, and the posterior's s (the trainer state) are those of the run without averaging."""
    from graves.train import train

    train(_toy("train.max_steps=2", "train.eval_every=0"), tmp_path / "start", progress=False)
    common = ['noise.kind="adaptive"', 'noise.per="batch"', f'train.init_from="{tmp_path / "start" / "last"}"',
              "train.eval_every=0"]
    mu = [load_weights(tmp_path / "start" / "last")]
    for k in (1, 2):
        train(_toy(*common, f"train.max_steps={k}"), tmp_path / f"plain{k}", progress=False)
        mu.append(load_weights(tmp_path / f"plain{k}" / "last"))
    run = tmp_path / "ema"
    train(_toy(*common, "train.max_steps=2", "train.ema_decay=0.5"), run, progress=False)
    best = load_weights(run / "best")
    for k in mu[2]:
        torch.testing.assert_close(best[k], 0.25 * mu[0][k] + 0.25 * mu[1][k] + 0.5 * mu[2][k], rtol=1e-5, atol=1e-6)
    noise_of = lambda d: torch.load(d / "last" / "trainer.pt", weights_only=True)["noise"]  # noqa: E731
    with_avg, without = noise_of(run), noise_of(tmp_path / "plain2")
    assert with_avg.keys() == without.keys() and with_avg
    for k in without:
        assert torch.equal(with_avg[k], without[k]), k


def test_resume_takes_the_learning_rate_from_the_config(tmp_path, capsys):
    """`--resume optim.lr=...` changes the rate of the continued run, not the one saved with the optimizer;
    the change is announced and recorded in metrics.jsonl, as is a resume with nothing changed."""
    from graves.train import train

    extra = ["train.eval_every=0", "optim.lr=0.01"]
    train(_toy(*extra, "train.max_steps=2"), tmp_path / "run", progress=False)
    at_two = load_weights(tmp_path / "run" / "last")
    summary = train(_toy("train.eval_every=0", "optim.lr=0.0", "train.max_steps=4"), tmp_path / "run",
                    resume=True, progress=False)
    assert summary["step"] == 4
    state = torch.load(tmp_path / "run" / "last" / "trainer.pt", weights_only=True)
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == [0.0]
    at_four = load_weights(tmp_path / "run" / "last")
    for k in at_two:  # Adam at rate 0 moves nothing
        assert torch.equal(at_two[k], at_four[k]), k
    err = capsys.readouterr().err
    assert "resuming" in err and "(step 2)" in err and "optim.lr 0.01 → 0.0" in err and "train.max_steps 2 → 4" in err
    train(_toy("train.eval_every=0", "optim.lr=0.0", "train.max_steps=5"), tmp_path / "run", resume=True,
          progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    resumed = [r for r in records if r.get("resumed")]
    assert [(r["step"], r["changed"]) for r in resumed] == [
        (2, {"optim.lr": [0.01, 0.0], "train.max_steps": [2, 4]}), (4, {"train.max_steps": [4, 5]})]


@pytest.mark.parametrize("kind,per", [("weight", "sequence"), ("adaptive", "sequence"), ("weight", "batch"),
                                      ("adaptive", "group")])
def test_weight_noise_runs_complete(tmp_path, kind, per):
    from graves.train import train

    train(_toy("train.max_steps=3"), tmp_path / "plain", progress=False)
    start = load_weights(tmp_path / "plain" / "last")
    cfg = _toy(f'noise.kind="{kind}"', f'noise.per="{per}"', "noise.group_size=3", "train.max_steps=3",
               f'train.init_from="{tmp_path / "plain" / "last"}"')
    summary = train(cfg, tmp_path / kind, progress=False)
    assert summary["step"] == 3 and math.isfinite(summary["best_valid_loss"])
    after = load_weights(tmp_path / kind / "last")
    assert set(after) == set(start)
    assert any(not torch.equal(start[k], after[k]) for k in start)


@pytest.mark.parametrize("kind", ["weight", "adaptive"])
@pytest.mark.parametrize("per,group_size", [("sequence", 1), ("batch", None), ("group", 3)])
def test_noise_per_sets_the_sequences_per_draw(kind, per, group_size):
    from graves.train import build_noise

    cfg = Config().override([f'noise.kind="{kind}"', f'noise.per="{per}"', "noise.group_size=3"])
    noise = build_noise(cfg, torch.nn.Linear(2, 2))
    assert noise.group_size == group_size and noise.per_sequence == (per == "sequence")


def test_adaptive_noise_lr_scale_steps_log_s_faster_and_resume_keeps_it(tmp_path):
    """noise.lr_scale gives log s its own rate (optim.lr × scale); resuming with another scale is refused."""
    import numpy as np

    from graves.train import train

    def log_s_moves(scale: float) -> float:
        run = tmp_path / f"scale{scale}"
        train(_toy('noise.kind="adaptive"', f"noise.lr_scale={scale}", "train.eval_every=0", "train.max_steps=2",
                   "train.log_every=1"),
              run, progress=False)
        state = torch.load(run / "last" / "trainer.pt", weights_only=True)
        assert [g["lr"] for g in state["optimizer"]["param_groups"]][-1] == pytest.approx(
            _toy().optim.lr * scale)
        logged = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
        stats = [r for r in logged if "train_loss" in r]
        assert stats and all(r["kl"] > 0 and 0 < r["s_p05"] <= r["s_median"] <= r["s_p95"] for r in stats)
        start = math.log(0.075)
        return float(np.mean([(v - start).abs().mean().item() for v in state["noise"].values()]))

    slow, fast = log_s_moves(1.0), log_s_moves(50.0)
    assert slow > 0 and fast > 10 * slow
    with pytest.raises(CheckpointError, match="noise.lr_scale"):
        train(_toy('noise.kind="adaptive"', "train.eval_every=0", "train.max_steps=3"), tmp_path / "scale50.0",
              resume=True, progress=False)
    with pytest.raises(ValueError, match="lr_scale must be a positive"):
        train(_toy('noise.kind="adaptive"', "noise.lr_scale=0", "train.max_steps=1"), tmp_path / "zero",
              progress=False)



def test_adaptive_noise_max_std_holds_during_training_and_applies_on_resume(tmp_path):
    """noise.max_std bounds every posterior s after each step; a run resumed with a bound is projected onto it."""
    from graves.train import train

    def s_max(run) -> float:
        state = torch.load(run / "last" / "trainer.pt", weights_only=True)
        return max(float(v.exp().max()) for v in state["noise"].values())

    # lr_scale 500 lets log s move by ~0.05 a step, so s leaves 0.075 and crosses 0.08 within two steps
    free = tmp_path / "free"
    train(_toy('noise.kind="adaptive"', "noise.lr_scale=500", "train.eval_every=0", "train.max_steps=2"),
          free, progress=False)
    assert s_max(free) > 0.08
    bounded = tmp_path / "bounded"
    train(_toy('noise.kind="adaptive"', "noise.lr_scale=500", "noise.max_std=0.08", "train.eval_every=0",
               "train.max_steps=2"), bounded, progress=False)
    assert s_max(bounded) <= 0.08 * (1 + 1e-6)
    train(_toy('noise.kind="adaptive"', "noise.lr_scale=500", "noise.max_std=0.08", "train.eval_every=0",
               "train.max_steps=3"), free, resume=True, progress=False)
    assert s_max(free) <= 0.08 * (1 + 1e-6)
    for bad in ("-1", "0.05", "inf"):
        with pytest.raises(ValueError, match=r"noise.max_std must be 0 \(no bound\) or at least noise.std"):
            train(_toy('noise.kind="adaptive"', f"noise.max_std={bad}", "train.max_steps=1"), tmp_path / "bad",
                  progress=False)


def _nan_on_calls(monkeypatch, bad, where="loss"):
    """Make the training task's loss (``where="loss"``) or only its gradient (``"grad"``: the loss stays
    finite) NaN on the given (1-based) calls."""
    import graves.train as trainer

    real, calls = trainer.build_task, {"n": 0}

    def build(cfg, *args, **kw):
        task = real(cfg, *args, **kw)
        orig = task.loss

        def loss(model, batch, index=None):
            calls["n"] += 1
            value, count = orig(model, batch, index)
            if not bad(calls["n"]):
                return value, count
            if where == "loss":
                return value * math.nan, count
            w = next(model.parameters())
            return value + torch.sqrt(w.sum() * 0.0), count  # adds 0; its gradient is inf · 0 = NaN

        task.loss = loss
        return task

    monkeypatch.setattr(trainer, "build_task", build)


@pytest.mark.parametrize("where", ["loss", "grad"])
def test_a_non_finite_step_is_skipped_and_five_in_a_row_stop_the_run(tmp_path, monkeypatch, where):
    from graves.train import MAX_NONFINITE_STEPS, TrainingError, train

    base = ["train.eval_every=0", "train.log_every=1"]
    train(_toy(*base, "train.max_steps=1"), tmp_path / "one", progress=False)
    _nan_on_calls(monkeypatch, lambda n: n == 2, where)
    summary = train(_toy(*base, "train.max_steps=2"), tmp_path / "skip", progress=False)
    assert summary["step"] == 2
    a, b = load_weights(tmp_path / "one" / "last"), load_weights(tmp_path / "skip" / "last")
    for k in a:  # the NaN step applied nothing
        assert torch.equal(a[k], b[k]), k
    logged = [json.loads(ln) for ln in (tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "skipped" in r] == [2]
    assert all(math.isfinite(r["train_loss"]) for r in logged if "train_loss" in r)  # strict JSON: no NaN

    monkeypatch.undo()
    _nan_on_calls(monkeypatch, lambda n: n >= 3, where)
    with pytest.raises(TrainingError, match=f"{MAX_NONFINITE_STEPS} steps in a row"):
        train(_toy(*base, "train.max_steps=20"), tmp_path / "stop", progress=False)


def _cli(*argv: str) -> tuple[int, str, str]:
    from graves.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_cli_train_eval_dynamic_sample_on_ptb(tmp_path):
    root = require_data("ptb").parent
    run = tmp_path / "run"
    rc, out, err = _cli("train", str(TOY), "train.max_steps=6", "--run-dir", str(run), "--data", str(root), "-q")
    assert rc == 0, err
    assert json.loads(out)["step"] == 6
    ckpt = run / "best"
    meta = load_meta(ckpt)
    assert meta["vocab"]["unit"] == "char" and len(meta["vocab"]["symbols"]) == 49
    before = _sha(ckpt)

    rc, out, err = _cli("eval", str(ckpt), "--split", "test", "--data", str(root), "-q")
    assert rc == 0, err
    static = json.loads(out)
    assert set(static) >= {"loss", "bpc", "perplexity", "error"}
    assert 0 < static["bpc"] < math.log2(49) + 1

    rc, out, err = _cli("eval", str(ckpt), "--split", "test", "--dynamic", "--data", str(root), "-q")
    assert rc == 0, err
    dynamic = json.loads(out)
    assert dynamic["dynamic"] is True and dynamic["symbols"] == len(TextTask(
        load_config(TOY, [f'data.root="{root}"'])).split_ids("test"))
    assert dynamic["loss"] != static["loss"]  # the weights adapted while reading
    assert _sha(ckpt) == before  # dynamic evaluation worked on a copy: the checkpoint is untouched

    # dynamic evaluation with another optimiser than the training run's
    rc, out, err = _cli("eval", str(ckpt), "optim.name=sgd", "optim.lr=1e-3", "optim.momentum=0.0",
                        "--split", "test", "--dynamic", "--data", str(root), "-q")
    assert rc == 0, err
    assert json.loads(out)["loss"] not in (static["loss"], dynamic["loss"])
    rc, out, err = _cli("eval", str(ckpt), "model.hidden_size=3", "--data", str(root), "-q")
    assert rc == 2 and "only optim" in err
    # found in review (session 16): an optimiser override without --dynamic did nothing, a bad one was a traceback
    rc, out, err = _cli("eval", str(ckpt), "optim.lr=1", "--data", str(root), "-q")
    assert rc == 2 and "add --dynamic" in err
    for bad in ("optim.lr=-1", "optim.lr=nan"):
        rc, out, err = _cli("eval", str(ckpt), bad, "--dynamic", "--data", str(root), "-q")
        assert rc == 2 and "optim.lr" in err and "Traceback" not in err, err
    # and a seed torch cannot take, a negative one, or a temperature whose logits overflow
    for seed in ("99999999999999999999999", "-1"):
        rc, out, err = _cli("sample", str(ckpt), "--length", "3", "--seed", seed)
        assert rc == 2 and "seed" in err and "Traceback" not in err, err
    rc, out, err = _cli("sample", str(ckpt), "--length", "5", "--temperature", "1e-45", "--seed", "3")
    assert rc == 0, err
    greedy = sample_text_checkpoint(ckpt, length=5, temperature=0.0, seed=3)
    assert out.rstrip("\n") == greedy  # as good as the argmax

    rc, out, err = _cli("sample", str(ckpt), "--length", "80", "--seed", "3", "--prime", "the_")
    assert rc == 0, err
    text = out.rstrip("\n")
    assert text.startswith("the_") and len(text) == 84
    assert text == sample_text_checkpoint(ckpt, length=80, temperature=1.0, prime="the_", seed=3)
    rc, out, err = _cli("sample", str(ckpt), "--animate")
    assert rc == 2 and "--animate: not for" in err and "a text model" in err
    assert _sha(ckpt) == before


def test_dynamic_evaluation_leaves_the_model_alone_and_adapts(text_file):
    torch.manual_seed(0)
    task = TextTask(_bytes_cfg(text_file))
    before = copy.deepcopy(task.model.state_dict())
    static = task.evaluate(task.model, "test", streams=1)
    dynamic = task.evaluate_dynamic(task.model, "test")
    for k, v in task.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert dynamic["symbols"] == static["symbols"]
    # an untrained net on a small-vocabulary text learns fast while reading it
    assert dynamic["loss"] < static["loss"] - 0.1


def test_dynamic_evaluation_at_rate_zero_is_static_evaluation(text_file):
    from graves.config import OptimConfig

    torch.manual_seed(0)
    task = TextTask(_bytes_cfg(text_file))
    static = task.evaluate(task.model, "test", streams=1)  # one stream, carried state, no steps
    dynamic = task.evaluate_dynamic(task.model, "test", optim=OptimConfig(name="sgd", lr=0.0, momentum=0.0))
    for k in ("loss", "bpc", "error", "symbols"):
        assert dynamic[k] == pytest.approx(static[k], rel=1e-6), k


def test_dynamic_evaluation_equals_a_literal_loop(text_file):
    """Section 3.1: each T-symbol segment's loss is recorded with the weights of before the segment, then
    one step is taken on it (gradients zeroed in between); the state runs on across segments."""
    from graves.config import OptimConfig
    from graves.data.text import StreamBatcher

    torch.manual_seed(0)
    task = TextTask(_bytes_cfg(text_file))
    dynamic = task.evaluate_dynamic(task.model, "test", optim=OptimConfig(name="sgd", lr=0.3, momentum=0.0))
    net = copy.deepcopy(task.model)
    sgd = torch.optim.SGD(net.parameters(), lr=0.3)
    state, total, wrong, n = None, 0.0, 0, 0
    for batch in StreamBatcher(task.split_ids("test"), 1, task.cfg.train.seq_len, null_input=NULL):
        logits, state = net(batch.inputs, state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1),
                                                 reduction="sum")
        total += float(loss.detach())
        wrong += int((logits.argmax(-1) != batch.targets).sum())
        n += batch.targets.numel()
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        state = [type(s)(s.h.detach(), s.c.detach()) for s in state]
    assert dynamic["symbols"] == n
    assert dynamic["loss"] == pytest.approx(total / n, rel=1e-6)
    assert dynamic["error"] == pytest.approx(100 * wrong / n, rel=1e-9)
    static = task.evaluate(task.model, "test", streams=1)
    assert dynamic["loss"] < static["loss"] - 0.05  # the steps did something


def test_cli_reports_a_bad_override_key(tmp_path):
    rc, out, err = _cli("train", str(TOY), "model.hiden_size=4", "--run-dir", str(tmp_path / "x"))
    assert rc == 2 and "unknown config key 'model.hiden_size'" in err and "Traceback" not in err
    rc, out, err = _cli("train", str(TOY), "train.seq_len=ten", "--run-dir", str(tmp_path / "x"))
    assert rc == 2 and "train.seq_len must be an integer" in err


def test_cli_overrides_may_follow_the_options(capsys):
    from graves.cli import _parse

    # as written in docs/results.md: the optimiser of --dynamic after the options
    a = _parse(["eval", "CKPT", "--split", "test", "--dynamic", "optim.name=sgd", "optim.lr=1e-3"])
    assert (a.checkpoint, a.split, a.dynamic) == ("CKPT", "test", True)
    assert a.overrides == ["optim.name=sgd", "optim.lr=1e-3"]
    a = _parse(["train", "C.toml", "train.max_steps=3", "--run-dir", "R", "--resume", "optim.lr=5e-4"])
    assert (a.run_dir, a.resume, a.overrides) == ("R", True, ["train.max_steps=3", "optim.lr=5e-4"])
    for argv in (["eval", "CKPT", "--split", "test", "stray"],  # not key=value
                 ["eval", "CKPT", "--bogus"],
                 ["sample", "CKPT", "--length", "5", "optim.lr=1"]):  # sample takes no overrides
        with pytest.raises(SystemExit) as e:
            _parse(argv)
        assert e.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


def test_cli_reports_unknown_characters_in_the_prime(tmp_path):
    from graves.train import train

    train(_toy("train.max_steps=1"), tmp_path / "r", progress=False)
    rc, out, err = _cli("sample", str(tmp_path / "r" / "last"), "--length", "5", "--prime", "Hello")
    assert rc == 2 and "not in the char vocabulary" in err and "'H'" in err


# --------------------------------------------------------------------------------------------------
# the experiment configs
# --------------------------------------------------------------------------------------------------


PAPER = {  # name: (H, N, data, momentum, noise, epochs)
    "ptb-char": (1000, 1, "ptb-char", 0.99, "none", 9),
    "ptb-char-wn": (1000, 1, "ptb-char", 0.99, "weight", 25),
    "ptb-char-awn": (1000, 1, "ptb-char", 0.99, "adaptive", 26),
    "ptb-word": (1000, 1, "ptb-word", 0.99, "none", 11),
    "ptb-word-wn": (1000, 1, "ptb-word", 0.99, "weight", 14),
    "enwik8": (700, 7, "enwik8", 0.9, "none", 4),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_configs_state_the_paper(name):
    cfg = load_config(REPO / "configs" / f"{name}.toml")
    H, N, data, momentum, noise, epochs = PAPER[name]
    assert cfg.model.kind == "text" and (cfg.model.hidden_size, cfg.model.num_layers) == (H, N)
    assert cfg.model.lstm_clip == 1.0 and cfg.data.name == data
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum) == ("sgd", 1e-4, momentum)
    assert cfg.noise.kind == noise and cfg.train.epochs == epochs
    if noise != "none":
        assert cfg.noise.std == 0.075 and cfg.noise.per == "sequence" and cfg.train.init_from
    if name == "enwik8":
        t = cfg.train
        assert (t.seq_len, t.reset_every, t.shuffle, cfg.data.split) == (100, 100, False, "paper")


@pytest.mark.parametrize("paper_name, name, hidden_size", [("ptb-char", "ptb-char-fast", 1000),
                                                          ("ptb-word", "ptb-word-small", 256)])
def test_batched_text_configs_differ_from_table_1_only_where_their_comments_say(paper_name, name, hidden_size):
    paper, cfg = (load_config(REPO / "configs" / f"{n}.toml") for n in (paper_name, name))
    assert cfg.data == paper.data and cfg.noise == paper.noise
    assert cfg.model == dataclasses.replace(paper.model, hidden_size=hidden_size)
    assert (cfg.optim.name, cfg.train.batch_size) == ("adam", 32)  # the deviations its comments name
    same = ("seq_len", "reset_every", "shuffle", "epochs")
    assert [getattr(cfg.train, k) for k in same] == [getattr(paper.train, k) for k in same]


def test_ptb_word_small_wn_chains_from_ptb_word_small_with_the_papers_noise():
    small, wn = (load_config(REPO / "configs" / f"{n}.toml") for n in ("ptb-word-small", "ptb-word-small-wn"))
    assert wn.model == small.model and wn.data == small.data
    assert (wn.noise.kind, wn.noise.std, wn.noise.per) == ("weight", 0.075, "batch")
    assert wn.train.init_from == "runs/ptb-word-small/best" and wn.train.batch_size == small.train.batch_size


@pytest.mark.parametrize("name", ["ptb-char-small", "ptb-word-small", "ptb-word-small-wn", "wiki-small", "toy-text"])
def test_small_configs_load(name):
    cfg = load_config(REPO / "configs" / f"{name}.toml")
    assert cfg.model.kind == "text" and cfg.model.lstm_clip == 1.0


def test_softmax_output_gradient_is_y_minus_delta_eq_14():
    from graves.tasks.text import sequence_nll

    torch.manual_seed(0)
    logits = torch.randn(5, 3, 7, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 7, (5, 3))
    sequence_nll(logits, targets).sum().backward()
    y = torch.softmax(logits.detach(), dim=-1)  # (eq. 12)
    delta = torch.nn.functional.one_hot(targets, 7).to(y.dtype)
    torch.testing.assert_close(logits.grad, y - delta)  # (eq. 14)


# --------------------------------------------------------------------------------------------------
# the training loop's bookkeeping, on the tiny bytes task (no dataset needed)
# --------------------------------------------------------------------------------------------------


def _record_step_weights(monkeypatch) -> list:
    """Record the weights before the first training step, then (applied?, weights) after every step."""
    import graves.train as trainer

    real, seen = trainer.training_step, []

    def snapshot(model):
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def step(task, model, *args, **kwargs):
        if not seen:
            seen.append((True, snapshot(model)))
        loss, count = real(task, model, *args, **kwargs)
        seen.append((math.isfinite(float(loss.detach())), snapshot(model)))
        return loss, count

    monkeypatch.setattr(trainer, "training_step", step)
    return seen


def _ema_of(seen: list, decay: float) -> dict:
    """w̄ = w_0, then w̄ ← d·w̄ + (1 − d)·w_t after each applied step (float64)."""
    avg = {k: v.double() for k, v in seen[0][1].items()}
    for applied, w in seen[1:]:
        if applied:
            avg = {k: decay * avg[k] + (1 - decay) * w[k].double() for k in avg}
    return avg


def _scripted_validation(monkeypatch, losses) -> None:
    """The task's validation returns the given losses in turn (shared across train() calls)."""
    import graves.train as trainer

    real, it = trainer.build_task, iter(losses)

    def build(cfg, *args, **kwargs):
        task = real(cfg, *args, **kwargs)
        task.evaluate = lambda model, split, **kw: {"loss": float(next(it))}
        return task

    monkeypatch.setattr(trainer, "build_task", build)


def test_loop_ema_follows_the_recurrence_with_its_own_decay(tmp_path, monkeypatch, text_file):
    """ema_decay = 0.75 (not the symmetric 0.5): best = w̄ with w̄ ← 0.75·w̄ + 0.25·w_t after each step."""
    from graves.train import train

    seen = _record_step_weights(monkeypatch)
    train(_bytes_cfg(text_file, max_steps=3, eval_every=0, ema_decay=0.75), tmp_path / "r", progress=False)
    assert len(seen) == 4 and all(applied for applied, _ in seen)
    best, expect = load_weights(tmp_path / "r" / "best"), _ema_of(seen, 0.75)
    wrong = _ema_of(seen, 0.25)
    for k in expect:
        torch.testing.assert_close(best[k].double(), expect[k], rtol=1e-5, atol=1e-6, msg=k)
    assert any(not torch.allclose(expect[k], wrong[k], rtol=1e-4, atol=1e-5) for k in expect)  # it discriminates


def test_loop_ema_skips_non_finite_steps(tmp_path, monkeypatch, text_file):
    """A skipped (non-finite) step does not update the average: w̄ is the recurrence over applied steps only."""
    from graves.train import train

    _nan_on_calls(monkeypatch, lambda n: n == 2)
    seen = _record_step_weights(monkeypatch)
    train(_bytes_cfg(text_file, max_steps=3, eval_every=0, ema_decay=0.5), tmp_path / "r", progress=False)
    assert [applied for applied, _ in seen] == [True, True, False, True]
    best, expect = load_weights(tmp_path / "r" / "best"), _ema_of(seen, 0.5)
    for k in expect:
        torch.testing.assert_close(best[k].double(), expect[k], rtol=1e-5, atol=1e-6, msg=k)


def test_loop_early_stopping_counts_consecutive_bad_validations(tmp_path, monkeypatch, text_file):
    """Losses 3, 4, 2, 5, 6 with patience 2: the improvement at step 3 resets the count, so the run stops
    at step 5 (the second bad validation in a row), not at step 4."""
    from graves.train import train

    _scripted_validation(monkeypatch, [3, 4, 2, 5, 6])
    summary = train(_bytes_cfg(text_file, eval_every=1, patience=2, max_steps=20), tmp_path / "r", progress=False)
    assert (summary["stop"], summary["step"]) == ("early stopping", 5)
    state = torch.load(tmp_path / "r" / "last" / "trainer.pt", weights_only=True)
    assert (state["best"], state["bad_evals"]) == (2.0, 2)


def test_loop_resume_keeps_the_best_of_a_stop_time_validation(tmp_path, monkeypatch, text_file):
    """best came from a stop-time validation (loss 1 at step 3; early stopping's reference stays 5): after
    --resume, a worse scheduled validation (3 at step 4) must not replace it."""
    from graves.train import train

    _scripted_validation(monkeypatch, [5, 1, 3])
    run = tmp_path / "r"
    train(_bytes_cfg(text_file, eval_every=2, max_steps=3), run, progress=False)
    assert load_meta(run / "best")["step"] == 3
    summary = train(_bytes_cfg(text_file, eval_every=2, max_steps=4), run, resume=True, progress=False)
    assert summary["step"] == 4 and summary["best_valid_loss"] == 1.0
    assert load_meta(run / "best")["step"] == 3
    state = torch.load(run / "last" / "trainer.pt", weights_only=True)
    assert (state["best"], state["best_saved"]) == (3.0, 1.0)


def test_loop_seeds_each_epochs_order_from_seed_and_epoch(tmp_path, monkeypatch, text_file):
    """The generator passed to task.batches is seeded seed·1_000_003 + epoch: a new order every epoch."""
    import graves.train as trainer

    real, seeds = trainer.build_task, []

    def build(cfg, *args, **kwargs):
        task = real(cfg, *args, **kwargs)
        orig = task.batches

        def batches(epoch, generator=None):
            seeds.append((epoch, generator.initial_seed()))
            return orig(epoch, generator)

        task.batches = batches
        return task

    monkeypatch.setattr(trainer, "build_task", build)
    summary = trainer.train(_bytes_cfg(text_file, seq_len=2000, epochs=3, seed=5), tmp_path / "r", progress=False)
    assert summary["epoch"] == 3
    assert seeds == [(e, 5 * 1_000_003 + e) for e in range(3)]


def test_loop_resume_refuses_another_batch_size_or_model_config(tmp_path, text_file):
    from graves.train import train

    run = tmp_path / "r"
    train(_bytes_cfg(text_file, max_steps=1, eval_every=0), run, progress=False)
    with pytest.raises(CheckpointError, match=r"train\.batch_size was 3 in .*last, now 4; resume with the run's "
                                              r"batch size"):
        train(_bytes_cfg(text_file, max_steps=2, eval_every=0, batch_size=4), run, resume=True, progress=False)
    cfg = _bytes_cfg(text_file, max_steps=2, eval_every=0)
    clipped = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, lstm_clip=2.0))  # same shapes
    with pytest.raises(CheckpointError, match="--resume: the model config differs from the one saved in"):
        train(clipped, run, resume=True, progress=False)
    assert load_meta(run / "last")["step"] == 1


def test_loop_resume_refuses_switching_adaptive_noise_or_the_data_with_a_clear_error(tmp_path, text_file):
    """Adaptive noise on or off, another data.name, or other data with other symbols (more of them, or as many
    but other ones): a CheckpointError that says what to do (not a KeyError, a size-mismatch traceback or a
    silent resume on text the net reads wrongly), and `last` untouched."""
    from graves.train import build_task, train

    run = tmp_path / "r"
    cfg = _bytes_cfg(text_file, max_steps=1, eval_every=0)
    train(cfg, run, progress=False)
    before = _sha(run / "last")
    more = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=2))
    adaptive = dataclasses.replace(more, noise=dataclasses.replace(more.noise, kind="adaptive"))
    with pytest.raises(CheckpointError, match=r"noise\.kind was 'none' in .*last, now 'adaptive'.*train\.init_from"):
        train(adaptive, run, resume=True, progress=False)
    chars = dataclasses.replace(more, data=dataclasses.replace(more.data, name="chars"))
    with pytest.raises(CheckpointError, match=r"data\.name was 'bytes' in .*last, now 'chars'"):
        train(chars, run, resume=True, progress=False)
    other = text_file.with_name("other.txt")
    other.write_text("xyz 0123456789 QRS\n" * 400, encoding="utf-8")  # other bytes: another vocabulary size
    moved = dataclasses.replace(more, data=dataclasses.replace(more.data, path=other.name))
    with pytest.raises(CheckpointError, match=r"data gives another vocabulary than the one .*last was trained"):
        train(moved, run, resume=True, progress=False)
    # as many symbols, other ones: the same shapes, so this one trained on silently before the check
    shifted = text_file.with_name("shifted.txt")
    shifted.write_text(text_file.read_text(encoding="utf-8").upper(), encoding="utf-8")
    recoded = dataclasses.replace(more, data=dataclasses.replace(more.data, path=shifted.name))
    assert len(build_task(recoded).vocab) == len(build_task(cfg).vocab)
    with pytest.raises(CheckpointError, match=r"data gives another vocabulary than the one .*last was trained"):
        train(recoded, run, resume=True, progress=False)
    weight_noise = dataclasses.replace(more, noise=dataclasses.replace(more.noise, kind="weight"))
    assert _sha(run / "last") == before
    assert train(weight_noise, run, resume=True, progress=False)["step"] == 2  # fixed noise may be switched on


def test_loop_resume_repairs_a_cut_short_metrics_record(tmp_path, text_file):
    """A last record cut short (full disk, kill) is ended with a newline before the resume's records."""
    from graves.train import train

    run = tmp_path / "r"
    train(_bytes_cfg(text_file, max_steps=2, eval_every=0, log_every=1), run, progress=False)
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"step": 3, "epoch": 0, "train_lo')
    train(_bytes_cfg(text_file, max_steps=3, eval_every=0, log_every=1), run, resume=True, progress=False)
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    cut = '{"step": 3, "epoch": 0, "train_lo'
    assert lines.count(cut) == 1  # the cut-short record stays on a line of its own
    records = [json.loads(ln) for ln in lines if ln != cut]  # and every other line parses
    assert [r["step"] for r in records if r.get("resumed")] == [2]
    assert [r["step"] for r in records if "train_loss" in r] == [1, 2, 3]


def test_loop_train_threads_sets_torchs_thread_count(tmp_path, text_file):
    from graves.train import train

    before = torch.get_num_threads()
    want = before + 1
    try:
        train(_bytes_cfg(text_file, max_steps=1, eval_every=0, threads=want), tmp_path / "r", progress=False)
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)
