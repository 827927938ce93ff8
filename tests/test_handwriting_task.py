"""The handwriting task on real IAM-OnDB lines: batching, masking, normalisation, the paper's metrics,
tiny nets that learn, and a toy end-to-end run through the CLI."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from conftest import REPO, require_data
from graves.config import Config, load_config
from graves.data.alphabet import IAM_CHARACTERS, Alphabet
from graves.models import load_model
from graves.models.handwriting import HandwritingPredictor, HandwritingSynthesizer
from graves.nn.mixture import mixture_nll
from graves.tasks.handwriting import HandwritingTask, _length_batches, make_batch




@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAVES_CACHE", str(tmp_path / "cache"))


def _cfg(kind: str, max_lines: int = 12, **extra) -> Config:
    root = require_data("iam-ondb").parent
    overrides = [f"model.kind='{kind}'", "model.hidden_size=8", "model.num_layers=2", "model.mixtures=3",
                 "model.window_mixtures=2", f"data.root='{root}'", "data.train_sets=['trainset']",
                 "data.valid_sets=['testset_v']", f"data.max_lines={max_lines}", "train.batch_size=4"]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return Config().override(overrides)


@pytest.fixture(scope="module")
def synth_task():
    torch.manual_seed(0)
    return HandwritingTask(_cfg("synthesis"))


# ----------------------------------------------------------------------------------------------- data


def test_task_reads_real_lines_and_normalises_with_training_stats(synth_task):
    offsets, texts = synth_task._split("train")
    assert len(offsets) == 12 == synth_task.num_train_sequences
    assert all(isinstance(t, str) and t for t in texts)
    allxy = np.concatenate([o[:, :2] for o in offsets]).astype(np.float64)
    np.testing.assert_allclose(allxy.mean(0), 0.0, atol=1e-5)  # fit on exactly these lines
    np.testing.assert_allclose(allxy.std(0), 1.0, atol=1e-5)
    assert set(np.unique(np.concatenate([o[:, 2] for o in offsets]))) == {0.0, 1.0}  # eos untouched
    assert isinstance(synth_task.model, HandwritingSynthesizer)
    # "full": the characters of the training transcriptions + unknown (+ padding)
    assert synth_task.alphabet == Alphabet.build("full", texts)
    assert synth_task.model.vocab_size == len(set("".join(texts))) + 2


def test_batches_cover_every_line_once_bucketed_and_seeded(synth_task):
    offsets, _ = synth_task._split("train")
    lengths = [len(o) for o in offsets]

    def epoch(seed):
        return [b.index.tolist() for b in synth_task.batches(0, torch.Generator().manual_seed(seed))]

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert a == b and a != c  # the order comes from the generator alone
    assert sorted(i for g in a for i in g) == list(range(12))
    # bucketing: each batch holds lines of neighbouring lengths, so padding is at most what sorting leaves
    groups = _length_batches(list(range(1000)), 10, torch.Generator().manual_seed(0))
    assert all(max(g) - min(g) < 50 for g in groups)  # within one pool, sorted
    assert len({tuple(g) for g in groups}) == 100
    batch = synth_task.batches(0, torch.Generator().manual_seed(1))[0]
    T, B, _ = batch.x.shape
    assert T == max(lengths[i] for i in batch.index.tolist())
    assert torch.equal(batch.x[0], torch.zeros(B, 3))  # the null first input x_1 = 0
    assert torch.equal(batch.x[1:] * batch.mask[1:, :, None], batch.target[:-1] * batch.mask[1:, :, None])
    assert torch.equal(batch.mask.sum(0).long(), batch.lengths)
    assert batch.c.shape[:2] == (B, max(len(synth_task._split("train")[1][i]) for i in batch.index.tolist()))


def test_validation_characters_unseen_in_training_are_unknown(synth_task):
    """testset_v holds characters the 12 training lines lack: they are encoded as the unknown class."""
    _, train_texts = synth_task._split("train")
    offsets, texts = synth_task._split("valid")
    unseen = {ch for t in texts for ch in t} - set("".join(train_texts))
    assert unseen  # (real data: e.g. capitals and digits that the first 12 lines do not use)
    i = next(k for k, t in enumerate(texts) if set(t) & unseen)
    batch = make_batch([offsets[i]], [texts[i]], synth_task.alphabet)
    ids = batch.c[0].argmax(-1)  # (U,)
    for u, ch in enumerate(texts[i]):
        assert (ids[u] == 1) == (ch in unseen)


def test_lines_are_truncated_only_on_request():
    cfg = _cfg("handwriting", max_lines=3, **{"data.max_points": 100})
    task = HandwritingTask(cfg)
    assert max(len(o) for o in task._split("train")[0]) == 100
    full = HandwritingTask(_cfg("handwriting", max_lines=3))
    assert max(len(o) for o in full._split("train")[0]) > 100


# ---------------------------------------------------------------------------------------------- loss


@pytest.fixture(scope="module")
def pred_task():
    torch.manual_seed(0)
    return HandwritingTask(_cfg("handwriting"))


@pytest.mark.parametrize("which", ["pred_task", "synth_task"])
def test_padding_changes_neither_loss_nor_gradient(which, request):
    """A line's loss and gradient are the same alone and padded inside a batch of longer lines."""
    task = request.getfixturevalue(which)
    model = task.model
    offsets, _ = task._split("train")
    order = sorted(range(len(offsets)), key=lambda i: len(offsets[i]))
    pick = [order[0], order[-1], order[5]]  # the shortest line is padded the most
    params = list(model.parameters())
    batch = task._build("train", pick)
    assert batch.mask.sum() < batch.mask.numel()  # there is padding
    together = task.line_losses(model, batch)  # (3,)
    g_together = torch.autograd.grad(together.sum(), params)
    alone, g_alone = [], [torch.zeros_like(p) for p in params]
    for i in pick:
        one = task.line_losses(model, task._build("train", [i]))[0]
        alone.append(one.detach())
        for acc, g in zip(g_alone, torch.autograd.grad(one, params)):
            acc += g
    torch.testing.assert_close(together.detach(), torch.stack(alone), rtol=1e-5, atol=1e-3)
    for a, b in zip(g_together, g_alone):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # and L(x) is eq. 26 summed over the line's own points, not averaged
    with torch.no_grad():
        y_hat = task._outputs(model, batch)
        for b, n in enumerate(batch.lengths.tolist()):
            literal = mixture_nll(y_hat[:n, b], batch.target[:n, b]).sum()
            torch.testing.assert_close(together[b].detach(), literal, rtol=1e-5, atol=1e-3)
    # the optimiser's loss: the per-line sums averaged over the batch
    loss, count = task.loss(model, batch)
    assert count == 3
    torch.testing.assert_close(loss, together.mean())


@pytest.mark.parametrize("kind", ["handwriting", "synthesis"])
@pytest.mark.parametrize("noise", ["none", "weight"])
def test_derivatives_are_clipped_per_line_not_per_batch(kind, noise):
    """The clips bound each line's own derivatives (SPEC §4.2: output derivatives in [−100, 100], LSTM
    derivatives in [−10, 10]), as in the paper's line-at-a-time training: a batch of B copies of a line
    gives the gradient of the line alone. Clipping the batch mean's derivatives (already divided by B)
    would bound each line's at B times the bound; with clips that bind, the gradients would differ."""
    from graves.train import build_noise, training_step

    torch.manual_seed(0)
    cfg = _cfg(kind, max_lines=4, **{"model.output_clip": 0.05, "model.lstm_clip": 0.002,
                                     "noise.kind": f"'{noise}'", "noise.std": 0.0})
    task = HandwritingTask(cfg)
    model = task.model
    noise_ = build_noise(cfg, model)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # rate 0: the step leaves the weights and the grads

    def grads(batch):
        training_step(task, model, batch, opt, noise_, torch.Generator().manual_seed(0))
        return [p.grad.clone() for p in model.parameters()]

    one = grads(task._build("train", [1]))
    four = grads(task._build("train", [1, 1, 1, 1]))
    for a, b in zip(one, four):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # and the clips do bind here: without them the gradient is another
    unclipped = HandwritingTask(_cfg(kind, max_lines=4, **{"model.output_clip": 1e9, "model.lstm_clip": 1e9}))
    unclipped.model.load_state_dict(model.state_dict())
    opt2 = torch.optim.SGD(unclipped.model.parameters(), lr=0.0)
    training_step(unclipped, unclipped.model, unclipped._build("train", [1]), opt2, None, torch.Generator())
    assert any(not torch.allclose(a, p.grad, rtol=1e-3) for a, p in zip(one, unclipped.model.parameters()))


def test_loss_of_a_slice_of_the_batch(synth_task):
    """Per-sequence weight noise asks for the loss of slices of a batch, each averaged over itself."""
    batch = synth_task.batches(0, torch.Generator().manual_seed(0))[0]
    assert synth_task.batch_size(batch) == 4
    per_line = synth_task.line_losses(synth_task.model, batch)
    loss, count = synth_task.loss(synth_task.model, batch, slice(1, 3))
    assert count == 2
    torch.testing.assert_close(loss, (per_line[1] + per_line[2]) / 2, rtol=1e-5, atol=1e-3)
    one, n = synth_task.loss(synth_task.model, batch, slice(3, 4))
    assert n == 1
    torch.testing.assert_close(one, per_line[3], rtol=1e-5, atol=1e-3)


# ------------------------------------------------------------------------------------------- metrics


def test_evaluate_reports_the_papers_log_loss_raw_units_and_sse(synth_task):
    """loss = mean over lines of the summed eq. 26 loss; loss_raw is the same density in raw IAM units,
    computed here independently by rescaling the mixture itself; sse against Σ_j π^j μ^j."""
    model = synth_task.model
    metrics = synth_task.evaluate(model, "valid")
    offsets, texts = synth_task._split("valid")
    assert metrics["lines"] == len(offsets) == 12
    n = synth_task.normaliser
    M = synth_task.cfg.model.mixtures
    losses, raw_losses, se, points = [], [], 0.0, 0
    with torch.no_grad():
        for o, t in zip(offsets, texts):
            b = make_batch([o], [t], synth_task.alphabet)
            y_hat = model(b.x, b.c)[0].double()  # (T, 1, 1 + 6M)
            losses.append(float(mixture_nll(y_hat, b.target.double()).sum()))
            # the same mixture in raw units: μ → μ σ_norm + mean, σ̂ → σ̂ + log σ_norm
            raw = y_hat.clone()
            for k in range(2):
                raw[..., 1 + (1 + k) * M: 1 + (2 + k) * M] = y_hat[..., 1 + (1 + k) * M: 1 + (2 + k) * M] * n.std[k] + n.mean[k]
                raw[..., 1 + (3 + k) * M: 1 + (4 + k) * M] = y_hat[..., 1 + (3 + k) * M: 1 + (4 + k) * M] + math.log(n.std[k])
            target_raw = torch.from_numpy(n.denormalise(o)).double()[:, None]
            raw_losses.append(float(mixture_nll(raw, target_raw).sum()))
            pi = torch.softmax(y_hat[..., 1:1 + M], -1)
            mean = torch.stack([(pi * y_hat[..., 1 + M:1 + 2 * M]).sum(-1), (pi * y_hat[..., 1 + 2 * M:1 + 3 * M]).sum(-1)], -1)
            se += float(((b.target.double()[..., :2] - mean) ** 2).sum())
            points += len(o)
    assert metrics["loss"] == pytest.approx(np.mean(losses), rel=1e-4)
    assert metrics["loss_raw"] == pytest.approx(np.mean(raw_losses), rel=1e-3)
    assert metrics["loss_raw"] > metrics["loss"]  # σ_x, σ_y > 1 whiteboard unit
    assert metrics["sse"] == pytest.approx(se / points, rel=1e-4)
    assert metrics["points"] == points
    assert model.training  # evaluate restores the mode


def test_task_from_meta_does_not_touch_training_data(synth_task, monkeypatch):
    meta = {"config": synth_task.cfg.to_dict(), **synth_task.meta()}
    meta = json.loads(json.dumps(meta))  # what a checkpoint holds
    import graves.tasks.handwriting as th

    real = th.load_lines
    seen = []
    monkeypatch.setattr(th, "load_lines", lambda cfg, sets, progress=False: seen.append(tuple(sets)) or real(cfg, sets, progress))
    task = HandwritingTask(Config.from_dict(meta["config"]), meta)
    assert task.normaliser == synth_task.normaliser and task.alphabet == synth_task.alphabet
    assert task.num_train_sequences == 12 and seen == []
    task.model.load_state_dict(synth_task.model.state_dict())
    assert task.evaluate(task.model, "valid")["loss"] == pytest.approx(synth_task.evaluate(synth_task.model, "valid")["loss"])
    assert seen == [("testset_v",)]


def test_unknown_split_and_no_test_set_are_errors(synth_task):
    with pytest.raises(ValueError, match="unknown split"):
        synth_task.evaluate(synth_task.model, "dev")
    paper = HandwritingTask.__new__(HandwritingTask)
    paper.cfg, paper._splits = Config(), {}
    with pytest.raises(ValueError, match="no IAM-OnDB set is left"):
        paper._split("test")


# ------------------------------------------------------------------------------------ tiny nets learn


def test_tiny_nets_learn_real_lines_and_the_text_helps():
    """A tiny prediction net overfits a few real lines (its loss falls a lot); a synthesis net of the same
    size, trained the same way on the same lines, ends well below it: the window reads the text.

    Measured margins (mean of the last 10 losses, nats per line) over seeds 0-3: 37, 34, 37, 20.
    """
    steps, n_lines = 120, 12
    final = {}
    for kind in ("handwriting", "synthesis"):
        torch.manual_seed(0)
        cfg = _cfg(kind, max_lines=80, **{"model.hidden_size": 32, "model.num_layers": 1,
                                          "model.mixtures": 5, "model.window_mixtures": 3})
        task = HandwritingTask(cfg)
        offsets, _ = task._split("train")
        shortest = sorted(range(len(offsets)), key=lambda i: len(offsets[i]))[:n_lines]  # 12 of the first 80
        batch = task._build("train", shortest)
        opt = torch.optim.Adam(task.model.parameters(), lr=1e-2)
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss, _ = task.loss(task.model, batch)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert all(math.isfinite(v) for v in losses)
        final[kind] = sum(losses[-10:]) / 10
        print(kind, round(losses[0], 1), round(final[kind], 1))
        assert final[kind] < losses[0] - 500 and final[kind] < -100, (kind, losses[0], final[kind])
    assert final["synthesis"] < final["handwriting"] - 15, final


# -------------------------------------------------------------------------------------- end to end


def test_toy_synthesis_end_to_end_through_the_cli(tmp_path, capsys):
    from graves.cli import main

    root = require_data("iam-ondb").parent
    run = tmp_path / "run"
    assert main(["train", str(REPO / "configs" / "toy-hw-synth.toml"), "train.max_steps=2", "--run-dir", str(run),
                 "--data", str(root), "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 2 and math.isfinite(summary["best_valid_loss"])
    for name in ("best", "last"):
        assert (run / name / "model.safetensors").exists()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("train_loss" in r for r in records) and any("valid" in r for r in records)

    assert main(["eval", str(run / "best"), "--data", str(root), "-q"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["loss"] == pytest.approx(summary["best_valid_loss"], rel=1e-6)
    assert {"loss_raw", "sse", "lines"} <= set(metrics)

    model, meta = load_model(run / "best")
    cfg = load_config(REPO / "configs" / "toy-hw-synth.toml")
    assert isinstance(model, HandwritingSynthesizer) and model.cfg == cfg.model
    alphabet = Alphabet.from_dict(meta["alphabet"])
    assert alphabet.name == "full" and set(alphabet.characters) <= set(IAM_CHARACTERS)
    assert set(meta["normaliser"]) == {"mean", "std"}
    c, _ = alphabet.one_hot(["hello"], substitute=True)
    y, _, phi = model(torch.zeros(4, 1, 3), c)
    assert y.shape == (4, 1, 1 + 6 * cfg.model.mixtures) and phi.shape == (4, 1, 5)


def test_toy_prediction_config_trains_with_adaptive_weight_noise(tmp_path, capsys):
    """The paper retrains the handwriting nets with adaptive weight noise, one noise draw per line."""
    from graves.cli import main

    root = require_data("iam-ondb").parent
    assert main(["train", str(REPO / "configs" / "toy-hw-predict.toml"), "train.max_steps=1", "noise.kind='adaptive'",
                 "--run-dir", str(tmp_path / "r"), "--data", str(root), "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 1
    model, meta = load_model(tmp_path / "r" / "best")
    assert isinstance(model, HandwritingPredictor) and "alphabet" not in meta


def test_resume_refuses_training_lines_that_change_the_normalisation_or_the_alphabet(tmp_path):
    """`data.alphabet = "full"` and the normalisation statistics are made from the training lines, so other
    data.train_sets or data.max_lines on --resume would feed the net inputs it was not trained on under the
    same setting names: a CheckpointError that says so (it trained on silently), and `last` untouched."""
    from graves.checkpoint import CheckpointError
    from graves.train import train

    def digest(folder):
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}

    for kind, changed, match in (
            ("handwriting", {"data.max_lines": "7"}, r"other normalisation statistics \(mean .*train\.init_from"),
            ("synthesis", {"data.train_sets": "['testset_f']"}, r"another alphabet than the one .*train\.init_from")):
        run = tmp_path / kind
        cfg = _cfg(kind, max_lines=6, **{"train.eval_every": "0"})
        train(cfg.override(["train.max_steps=1"]), run, progress=False)
        before = digest(run / "last")
        other = cfg.override(["train.max_steps=2"] + [f"{k}={v}" for k, v in changed.items()])
        with pytest.raises(CheckpointError, match=match):
            train(other, run, resume=True, progress=False)
        assert digest(run / "last") == before
        # the run's own lines again: the same statistics, so the resume goes on
        assert train(cfg.override(["train.max_steps=2"]), run, resume=True, progress=False)["step"] == 2


@pytest.mark.parametrize("per", ["sequence", "group"])
def test_a_resumed_synthesis_run_with_adaptive_noise_matches_an_uninterrupted_one(tmp_path, per):
    """The handwriting task resumes exactly too: batch order, one noise draw per line (or per group of
    lines), the posterior's log s and the optimiser state (a review in session 15 found only the text
    task tested)."""
    from graves.checkpoint import load_weights
    from graves.train import train

    extra = dict(**{"noise.kind": "'adaptive'", "noise.per": f"'{per}'", "noise.group_size": "3",
                    "train.eval_every": "0"})
    cfg = _cfg("synthesis", max_lines=12, **extra)
    train(cfg.override(["train.max_steps=6"]), tmp_path / "whole", progress=False)
    train(cfg.override(["train.max_steps=3"]), tmp_path / "split", progress=False)
    half = load_weights(tmp_path / "split" / "last")
    assert train(cfg.override(["train.max_steps=6"]), tmp_path / "split", resume=True, progress=False)["step"] == 6
    a, b = load_weights(tmp_path / "whole" / "last"), load_weights(tmp_path / "split" / "last")
    assert any(not torch.equal(half[k], b[k]) for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = (torch.load(tmp_path / r / "last" / "trainer.pt", weights_only=True)["noise"] for r in ("whole", "split"))
    assert sa.keys() == sb.keys() and sa
    for k in sa:
        assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k])), k
