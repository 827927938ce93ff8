"""Figures: Fig. 10/14 density plots and Fig. 13 window plots write PNGs; the density is a density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graves import cli
from graves.checkpoint import save_checkpoint
from graves.config import Config, ModelConfig
from graves.data.alphabet import Alphabet
from graves.models.handwriting import HandwritingPredictor, HandwritingSynthesizer
from graves.plots import density_grid, plot_density, plot_window, teacher_force

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
