"""Figures: Fig. 10/14 density plots and Fig. 13 window plots write PNGs; the density is a density."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from graves import cli
from graves.checkpoint import save_checkpoint
from graves.config import Config, ModelConfig
from graves.data.alphabet import Alphabet
from graves.models.handwriting import HandwritingPredictor, HandwritingSynthesizer
from graves.plots import (
    Curves,
    CurvesError,
    density_grid,
    plot_curves,
    plot_density,
    plot_window,
    read_metrics,
    teacher_force,
)

ALPHABET = Alphabet.build("full")
NORM = {"mean": [8.0, -0.5], "std": [20.0, 30.0]}
PNG = b"\x89PNG\r\n\x1a\n"




def _checkpoint(path, kind):
    torch.manual_seed(0)
    mc = ModelConfig(kind=kind, hidden_size=8, num_layers=2, mixtures=3, window_mixtures=2)
    meta = {"config": Config(model=mc).to_dict(), "normaliser": NORM}
    if kind == "synthesis":
        model = HandwritingSynthesizer(mc, len(ALPHABET))
        with torch.no_grad():  # a slow window: about 10 steps per character
            model.window.linear.bias[2 * mc.window_mixtures :] = math.log(0.1)
        meta["alphabet"] = ALPHABET.to_dict()
    else:
        model = HandwritingPredictor(mc)
    return save_checkpoint(path, model.state_dict(), meta)


def test_density_grid_integrates_to_the_number_of_steps():
    # one component per step, μ = 0, σ = 0.5 (normalised), ρ = 0: each step's density integrates to 1
    T, M = 12, 1
    y_hat = torch.zeros(T, 1 + 6 * M)
    y_hat[:, 4:6] = math.log(0.5)  # σ̂1, σ̂2
    rng = np.random.default_rng(0)
    offsets = np.concatenate([rng.normal(10, 20, (T, 2)), np.zeros((T, 1))], 1).astype(np.float32)
    grid, extent = density_grid(y_hat, offsets, NORM, cells=300, reach=4.0)
    cell_area = (extent[1] - extent[0]) / grid.shape[1] * (extent[3] - extent[2]) / grid.shape[0]
    assert grid.sum() * cell_area == pytest.approx(T, rel=0.02)
    assert np.isfinite(grid).all() and grid.min() >= 0


def test_plot_functions_write_pngs(tmp_path):
    torch.manual_seed(0)
    mc = ModelConfig(kind="synthesis", hidden_size=8, num_layers=2, mixtures=3, window_mixtures=2)
    model = HandwritingSynthesizer(mc, len(ALPHABET)).eval()
    rng = np.random.default_rng(1)
    offsets = np.concatenate([rng.normal(5, 20, (40, 2)), (rng.random((40, 1)) < 0.1)], 1).astype(np.float32)
    c, _ = ALPHABET.one_hot(["a b"])
    y_hat, phi = teacher_force(model, offsets, NORM, c)
    assert y_hat.shape == (40, 1 + 6 * 3) and phi.shape == (40, 3)
    # teacher forcing feeds the line's own points: the same outputs as stepping the net
    with torch.no_grad():
        x = torch.zeros(40, 1, 3)
        x[1:, 0, :2] = torch.from_numpy(((offsets[:-1, :2] - NORM["mean"]) / NORM["std"]).astype(np.float32))
        x[1:, 0, 2] = torch.from_numpy(offsets[:-1, 2])
        y_ref, _, _ = model(x, c)
    torch.testing.assert_close(y_hat, y_ref[:, 0])
    a = plot_density(tmp_path / "d.png", y_hat, offsets, NORM)
    b = plot_window(tmp_path / "w.png", phi.numpy(), "a b", offsets)
    for f in (a, b):
        assert f.read_bytes()[:8] == PNG


def test_plot_checkpoints_through_the_cli(tmp_path, capsys):
    synth = _checkpoint(tmp_path / "synth", "synthesis")
    pred = _checkpoint(tmp_path / "pred", "handwriting")
    assert cli.main(["plot", "density", str(synth), "--text", "hi there", "-o", str(tmp_path / "d.png")]) == 0
    assert cli.main(["plot", "window", str(synth), "--text", "hi there", "-o", str(tmp_path / "w.png")]) == 0
    assert cli.main(["plot", "density", str(pred), "-o", str(tmp_path / "p.png")]) == 0
    for name in ("d.png", "w.png", "p.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    capsys.readouterr()
    assert cli.main(["plot", "window", str(pred), "-o", str(tmp_path / "x.png")]) == 2
    assert "synthesis" in capsys.readouterr().err
    assert cli.main(["plot", "density", str(synth), "-o", str(tmp_path / "x.png")]) == 2
    assert "--text" in capsys.readouterr().err


def test_plot_a_real_line(tmp_path, data_root):
    from conftest import require_data

    require_data("iam-ondb", "lineStrokes-all.tar.gz")
    synth = _checkpoint(tmp_path / "synth", "synthesis")
    out = tmp_path / "real.png"
    assert cli.main(["plot", "window", str(synth), "--line", "a01-000u-01", "--data", str(data_root),
                     "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG


# -------------------------------------------------------------------------------------- learning curves


def _write_metrics(folder, records, tail=""):
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records) + tail
    (folder / "metrics.jsonl").write_text(text, encoding="utf-8")
    return folder


def _train(step, seconds, loss):
    return {"step": step, "epoch": 0, "train_loss": loss, "seconds": seconds}


def _valid(step, minutes, loss, **more):
    return {"step": step, "epoch": 0, "minutes": minutes, "valid": {"loss": loss, **more}}


def test_read_metrics_stitches_a_killed_and_resumed_run(tmp_path):
    # process 1: steps 10..40, validated at 20, checkpointed at 20, killed while writing a line after 40;
    # process 2 resumes from step 20: redoes 30 and 40 (its clock restarts), validates at 40
    first = [_train(10, 60, 5.0), _train(20, 120, 4.0), _valid(20, 2.5, 4.5), _train(30, 180, 3.9), _train(40, 240, 3.8)]
    second = [_train(30, 50, 3.5), _train(40, 110, 3.0), _valid(40, 2.0, 3.2, sse=0.5)]
    run = _write_metrics(tmp_path / "run", first + second)
    c = read_metrics(run)
    assert c.train[:, 0].tolist() == [10, 20, 30, 40]
    assert c.train[:, 2].tolist() == [5.0, 4.0, 3.5, 3.0]  # the resumed process's values replace the old ones
    assert c.train[:, 1].tolist() == pytest.approx([1.0, 2.0, 4.0 + 50 / 60, 4.0 + 110 / 60])
    assert [(v["step"], v["loss"]) for v in c.valid] == [(20, 4.5), (40, 3.2)]
    assert c.valid[1]["minutes"] == pytest.approx(6.0) and c.valid[1]["sse"] == 0.5
    # a cut-short last line (the process was killed while writing it) is skipped; the file itself is accepted
    run2 = _write_metrics(tmp_path / "run2", first + second, tail='{"step": 50, "epoch": 0, "train_l')
    c2 = read_metrics(run2 / "metrics.jsonl")
    assert c2.train.tolist() == c.train.tolist() and (c.skipped, c2.skipped) == (0, 1)


def test_read_metrics_sees_a_restart_by_the_clock_when_steps_go_on(tmp_path):
    # process 1 stopped right after its checkpoint at 20; process 2's first record is past it
    run = _write_metrics(tmp_path / "run", [_train(10, 60, 5.0), _train(20, 120, 4.0), _train(30, 30, 3.0)])
    assert read_metrics(run).train[:, 1].tolist() == pytest.approx([1.0, 2.0, 2.5])


def test_read_metrics_skips_and_counts_lines_that_are_not_records(tmp_path, capsys):
    with pytest.raises(CurvesError, match="no metrics.jsonl"):
        read_metrics(tmp_path)
    # a record cut short by a full disk, then the resumed process's records on the next line
    run = _write_metrics(tmp_path / "run", [_train(10, 60, 5.0)],
                         tail='{"step": 20, "ep\n' + json.dumps({"epoch": 0}) + "\n" + json.dumps(_train(20, 1, 1.0)) + "\n")
    c = read_metrics(run)
    assert c.skipped == 2 and c.train[:, 0].tolist() == [10, 20]
    # fields of the wrong type are left out, not fatal
    odd = _write_metrics(tmp_path / "odd", [_train(10, "soon", "low"), _valid(10, 1.0, 2.0, note="text")])
    c_odd = read_metrics(odd)
    assert len(c_odd.train) == 0 and c_odd.valid == [{"step": 10, "minutes": 1.0, "loss": 2.0}]
    assert cli.main(["plot", "curves", str(run), "-o", str(tmp_path / "c.png")]) == 0
    assert "skipped 2 line(s) of metrics.jsonl" in capsys.readouterr().err


def test_plot_curves_draws_loss_or_any_validation_metric(tmp_path):
    c = Curves(np.array([[10, 1.0, 5.0], [20, 2.0, 4.0]]), [{"step": 20, "minutes": 2.0, "loss": 4.5, "sse": 0.4}])
    for kw in ({}, {"x": "minutes", "metric": "sse"}, {"x": "hours", "ylim": (0, 10), "title": "t"}):
        out = plot_curves(tmp_path / "c.png", {"a": c, "b": c}, **kw)
        assert out.read_bytes()[:8] == PNG
    with pytest.raises(CurvesError, match="the runs have: loss, sse"):
        plot_curves(tmp_path / "c.png", {"a": c}, metric="bpc")
    with pytest.raises(CurvesError, match="x must be one of"):
        plot_curves(tmp_path / "c.png", {"a": c}, x="epoch")
    with pytest.raises(CurvesError, match="no records"):
        plot_curves(tmp_path / "c.png", {"a": Curves(np.zeros((0, 3)), [])})


def test_plot_curves_through_the_cli(tmp_path, capsys):
    a = _write_metrics(tmp_path / "a", [_train(10, 60, 5.0), _valid(10, 1.1, 4.0, bpc=1.5)])
    b = _write_metrics(tmp_path / "b", [_train(10, 30, 6.0), _valid(10, 0.6, 4.2, bpc=1.6)])
    out = tmp_path / "curves.png"
    assert cli.main(["plot", "curves", str(a), str(b), "--metric", "bpc", "--x", "minutes", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    capsys.readouterr()
    assert cli.main(["plot", "curves", str(a), "--metric", "sse", "-o", str(out)]) == 2
    assert "no validation record holds 'sse'; the runs have: bpc, loss" in capsys.readouterr().err
    assert cli.main(["plot", "curves", str(tmp_path / "nothing"), "-o", str(out)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err


def test_the_cli_passes_the_bias_to_both_line_plots(tmp_path, monkeypatch):
    from graves import plots

    seen = {}

    def recorder(name):
        def record(path, output, **kw):
            seen[name] = kw
            return output
        return record

    for name in ("plot_density_checkpoint", "plot_window_checkpoint"):
        monkeypatch.setattr(plots, name, recorder(name))
    for what in ("density", "window"):
        assert cli.main(["plot", what, "ckpt", "--text", "hi", "--bias", "0", "-o", str(tmp_path / "x.png")]) == 0
    assert seen["plot_density_checkpoint"]["bias"] == 0.0 == seen["plot_window_checkpoint"]["bias"]


def test_curves_of_nan_or_infinite_values_are_a_clear_error_and_the_best_ring_skips_them(tmp_path):
    import json as _json

    from graves import plots

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        "\n".join(_json.dumps(r) for r in [{"step": 1, "valid": {"loss": float("nan")}}]) + "\n")
    with pytest.raises(plots.CurvesError, match="all NaN or infinite"):
        plots.plot_curves_runs([run], tmp_path / "c.png")
    (run / "metrics.jsonl").write_text("\n".join(_json.dumps(r) for r in [
        {"step": 1, "valid": {"loss": float("nan")}}, {"step": 2, "valid": {"loss": 1.5}},
        {"step": 3, "valid": {"loss": 2.5}}]) + "\n")
    plots.plot_curves_runs([run], tmp_path / "c.png", x="step")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- found in the session-16 review


def test_a_text_run_s_training_loss_is_plotted_per_symbol_like_its_validation(tmp_path):
    from graves import plots

    run = _write_metrics(tmp_path / "text", [_train(10, 6, 61.7), _valid(10, 0.1, 3.1), _train(20, 12, 60.0)])
    (run / "config.json").write_text(json.dumps({"model": {"kind": "text"}, "train": {"seq_len": 20}}))
    c = plots.read_metrics(run)
    assert c.unit == "nats per symbol" and c.train[:, 2] == pytest.approx([61.7 / 20, 3.0])
    assert c.valid[0]["loss"] == 3.1  # validation is per symbol already
    hw = _write_metrics(tmp_path / "hw", [_train(10, 6, -500.0), _valid(10, 0.1, -600.0)])
    (hw / "config.json").write_text(json.dumps({"model": {"kind": "synthesis"}, "train": {"seq_len": 100}}))
    assert plots.read_metrics(hw).unit == "nats per line" and plots.read_metrics(hw).train[0, 2] == -500.0
    assert plots.read_metrics(tmp_path / "text" / "metrics.jsonl").unit == "nats per symbol"  # the file itself
    bare = _write_metrics(tmp_path / "bare", [_train(10, 6, 61.7)])
    assert plots.read_metrics(bare).unit == "" and plots.read_metrics(bare).train[0, 2] == 61.7


def test_a_real_line_s_plot_refuses_options_for_a_generated_one(tmp_path, capsys):
    synth = _checkpoint(tmp_path / "synth", "synthesis")
    for extra in (["--text", "zzz"], ["--bias", "3"], ["--seed", "5"]):
        assert cli.main(["plot", "window", str(synth), "--line", "a01-000u-01", *extra,
                         "-o", str(tmp_path / "w.png")]) == 2
        err = capsys.readouterr().err
        assert extra[0] in err and "real line" in err
    assert not (tmp_path / "w.png").exists()


def test_a_real_line_with_characters_the_model_lacks_is_plotted_as_training_reads_it(tmp_path, data_root):
    from conftest import require_data
    from graves.data.primer import load_iam_line
    from graves.sample import shipped_model_dir

    require_data("iam-ondb", "lineStrokes-all.tar.gz")
    _, text = load_iam_line("a02-050-02", data_root)
    assert "*" in text  # a character the shipped model has no class for
    out = tmp_path / "star.png"
    assert cli.main(["plot", "window", str(shipped_model_dir()), "--line", "a02-050-02", "--data", str(data_root),
                     "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
