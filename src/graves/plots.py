"""Figures of the paper for handwriting nets (matplotlib, Agg backend; no display needed).

* **Density plot** (Figs. 10 and 14): the network's predicted densities of the next pen position,
  Σ_t Pr(pen_{t+1} = q | y_t) over a grid of points q near the pen trace, with the trace overlaid; below
  it the mixture weights π_t (components against time) as a heatmap.
* **Window plot** (Fig. 13): the window weights φ(t, u) as a heatmap, text position u (labelled with its
  character) against time t, under the written line.
* **Learning curves** of any runs (text or handwriting): training and validation loss, or any validation
  metric, against steps or training time, read from the runs' ``metrics.jsonl``.

Both work for a real IAM-OnDB line (teacher-forced through the net: the inputs are the line's own
points, SPEC §3–4) or a generated one (written with :mod:`graves.sample`, then teacher-forced the same
way, which gives exactly the predictions made while sampling). Densities are those of the unbiased
mixture (eqs. 18–24), whatever bias wrote a generated line.

Units: the density is evaluated in raw IAM-OnDB units (y up): a raw offset d has normalised offset
(d − mean) / std, and p_raw(d) = p_norm((d − mean) / std) / (std_x std_y).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "density_grid",
    "plot_density",
    "plot_density_checkpoint",
    "plot_window",
    "plot_window_checkpoint",
    "teacher_force",
    "Curves",
    "CurvesError",
    "read_metrics",
    "plot_curves",
    "plot_curves_runs",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# ============================================================================================ computation


def teacher_force(model: Any, offsets: np.ndarray, normaliser: Any = None, c: torch.Tensor | None = None):
    """Run a line through the net with its own points as inputs (x_1 = 0, then p_1..p_{T−1}).

    Args:
        model: a handwriting predictor or synthesizer.
        offsets: ``(T, 3)`` the line's points (raw units when ``normaliser`` is given).
        c: ``(1, U, V)`` one-hot text for a synthesizer, else None.

    Returns:
        ``y_hat (T, 1 + 6M)`` (row t predicts point t) and ``phi (T, U)`` (None for a predictor), tensors.
    """
    from graves.sample import normalise

    p = next(model.parameters())
    o = torch.from_numpy(normalise(offsets, normaliser)).to(device=p.device, dtype=p.dtype)  # (T, 3)
    x = torch.zeros(len(o), 1, 3, device=p.device, dtype=p.dtype)  # (T, 1, 3)
    x[1:, 0] = o[:-1]
    with torch.inference_mode():
        if c is None:
            y_hat, _ = model(x)
            phi = None
        else:
            y_hat, _, phi = model(x, c.to(device=p.device, dtype=p.dtype))
            phi = phi[:, 0]  # (T, U)
    return y_hat[:, 0], phi


def density_grid(
    y_hat: torch.Tensor,
    offsets: np.ndarray,
    normaliser: Any = None,
    cells: int = 600,
    reach: float = 4.0,
    chunk: int = 16,
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Σ_t of each step's predicted density of the next pen position, on a grid (Figs. 10, 14).

    Step t's mixture (eqs. 18–24) is centred on the pen position before point t, and is evaluated on the
    grid cells within ``reach`` standard deviations of the offsets (per axis, the normaliser's std) of that
    position; the densities are summed over t.

    Args:
        y_hat: ``(T, 1 + 6M)``; row t predicts point t.
        offsets: ``(T, 3)`` the line's points (raw units when ``normaliser`` is given).
        cells: grid cells along the longer side of the trace's bounding box.

    Returns:
        ``density (rows, cols)`` (row 0 at the bottom) and its ``extent`` (x0, x1, y0, y1) in the units of
        ``offsets``.
    """
    from graves.nn.mixture import mixture_log_density
    from graves.sample import _stats

    st = _stats(normaliser)
    mean, std = (np.zeros(2), np.ones(2)) if st is None else st
    pos = np.cumsum(offsets[:, :2].astype(np.float64), axis=0)  # pen after each point
    before = np.concatenate([[[0.0, 0.0]], pos[:-1]])  # (T, 2) pen before point t: the density's centre
    pts = np.concatenate([before, pos])
    reach_xy = reach * std + np.abs(mean)
    lo, hi = pts.min(0) - reach_xy * 0.5, pts.max(0) + reach_xy * 0.5
    span = np.maximum(hi - lo, 1e-6)
    # at most ``cells`` cells along the long side, and none finer than 1/16 of a normalised unit: a short
    # word would otherwise get ~600 cells across each density, and GBs of (chunk, cells, M) tensors
    step = max(float(span.max() / cells), float(np.min(std)) / 16)
    nx, ny = int(np.ceil(span[0] / step)) + 1, int(np.ceil(span[1] / step)) + 1
    grid = np.zeros((ny, nx), dtype=np.float64)
    yh = y_hat.detach().to("cpu", torch.float64)
    inv_jac = 1.0 / float(std[0] * std[1])
    with torch.inference_mode():
        for t0 in range(0, len(before), chunk):
            cen = before[t0 : t0 + chunk]  # (n, 2)
            bl = np.maximum(np.floor((cen.min(0) - reach_xy - lo) / step), 0).astype(int)
            tr = np.minimum(np.ceil((cen.max(0) + reach_xy - lo) / step), [nx - 1, ny - 1]).astype(int)
            gx = lo[0] + step * np.arange(bl[0], tr[0] + 1)
            gy = lo[1] + step * np.arange(bl[1], tr[1] + 1)
            q = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)  # (g, 2) cell centres
            d = (q[None, :, :] - cen[:, None, :] - mean) / std  # (n, g, 2) normalised offsets
            logp = mixture_log_density(yh[t0 : t0 + chunk, None, :], torch.from_numpy(d))  # (n, g)
            dens = logp.exp().sum(0).numpy() * inv_jac  # (g,)
            grid[bl[1] : tr[1] + 1, bl[0] : tr[0] + 1] += dens.reshape(len(gy), len(gx))
    extent = (lo[0] - step / 2, lo[0] + step * (nx - 0.5), lo[1] - step / 2, lo[1] + step * (ny - 0.5))
    return grid, extent


# ============================================================================================ figures


def _trace_xy(offsets: np.ndarray) -> list[np.ndarray]:
    from graves.data.strokes import offsets_to_strokes

    return offsets_to_strokes(offsets)


def plot_density(
    output: str | Path,
    y_hat: torch.Tensor,
    offsets: np.ndarray,
    normaliser: Any = None,
    title: str = "",
) -> Path:
    """Write a Fig. 10/14-style PNG: Σ_t predicted densities with the pen trace, and π_t below."""
    from graves.nn.mixture import mixture_params

    plt = _pyplot()
    from matplotlib.colors import PowerNorm

    grid, extent = density_grid(y_hat, offsets, normaliser)
    pi = mixture_params(y_hat.detach().to("cpu", torch.float32)).pi.numpy()  # (T, M)
    w, h = extent[1] - extent[0], extent[3] - extent[2]
    fig_w = 12.0
    top_h = float(np.clip(fig_w * h / max(w, 1e-9), 1.5, 6.0))
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(fig_w, top_h + 2.2), gridspec_kw={"height_ratios": [top_h, 2.0]}
    )
    ax.imshow(grid, origin="lower", extent=extent, cmap="magma", norm=PowerNorm(0.5, vmin=0.0),
              aspect="equal", interpolation="bilinear")
    for s in _trace_xy(offsets):
        ax.plot(s[:, 0], s[:, 1], color="white", linewidth=0.6, alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "predicted densities of the next pen position, summed over time")
    ax2.imshow(pi.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest", vmin=0.0, vmax=1.0)
    ax2.set_xlabel("time step t")
    ax2.set_ylabel("component j")
    ax2.set_title("mixture weights π_t")
    fig.tight_layout()
    return _save(fig, output)


def plot_window(
    output: Any,
    phi: np.ndarray,
    text: str,
    offsets: np.ndarray | None = None,
    title: str = "",
) -> Any:
    """Write a Fig. 13-style PNG: φ(t, u) as a heatmap, characters against time, under the written line.

    ``output``: a path, or a binary file object (the PNG bytes are written to it). Returns ``output``
    (as a ``Path`` when it was a path)."""
    plt = _pyplot()
    phi = np.asarray(phi, dtype=np.float64)  # (T, U)
    U = phi.shape[1]
    rows = 2 if offsets is not None and len(offsets) else 1
    fig, axes = plt.subplots(rows, 1, figsize=(12, 2.0 + 0.16 * U + (2.5 if rows == 2 else 0)),
                             gridspec_kw={"height_ratios": [2.5, 2.0 + 0.16 * U] if rows == 2 else [1]})
    axes = np.atleast_1d(axes)
    if rows == 2:
        for s in _trace_xy(offsets):
            axes[0].plot(s[:, 0], s[:, 1], color="black", linewidth=1.0)
        axes[0].set_aspect("equal")
        axes[0].axis("off")
    ax = axes[-1]
    ax.imshow(phi.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(-0.5, phi.shape[0] - 0.5, 0.5, U + 0.5))
    ax.set_yticks(np.arange(1, U + 1))
    # a space shown as ␣; what no font draws (a lone surrogate, a control character) as U+FFFD
    ax.set_yticklabels(["␣" if ch == " " else ch if ch.isprintable() else "\ufffd" for ch in text[:U]], fontsize=7)
    ax.set_xlabel("time step t")
    ax.set_ylabel("text position u")
    ax.set_title(title or "window weights φ(t, u)")
    fig.tight_layout()
    return _save(fig, output)


def _save(fig, output: Any) -> Any:
    """Save ``fig`` as a PNG to ``output``, a path (written atomically, parent folders made) or a binary file
    object."""
    plt = _pyplot()
    if hasattr(output, "write"):
        fig.savefig(output, dpi=120, format="png")
        plt.close(fig)
        return output
    import io

    from graves.render import write_file

    buf = io.BytesIO()
    try:
        fig.savefig(buf, dpi=120, format="png")
    finally:
        plt.close(fig)
    return write_file(output, buf.getvalue())  # atomic; OutputError names the file and the reason


# ============================================================================================ checkpoints


def _line_for(model, meta, kind: str, line: str | None, text: str | None, data_root, seed: int | None,
              bias: float | None):
    """(offsets raw, text or None, label) of a real IAM line or a freshly generated one. A real line's text
    comes as training encodes it: substituted (:func:`graves.data.alphabet.substitute_text`), any character
    the model lacks read as its unknown class."""
    from graves.data.alphabet import Alphabet, substitute_text
    from graves.sample import DEFAULT_BIAS, SampleError, sample_unconditional, synthesize

    normaliser = meta.get("normaliser")
    if line:
        given = [name for name, v in (("--text", text), ("--bias", bias), ("--seed", seed)) if v is not None]
        if given:
            raise SampleError(f"{', '.join(given)}: for a generated line; --line {line} plots the real line as written")
        from graves.data.primer import load_iam_line

        offsets, line_text = load_iam_line(line, data_root)
        return offsets, substitute_text(line_text), f"IAM-OnDB line {line}"
    seed = 0 if seed is None else seed
    b = DEFAULT_BIAS if bias is None else bias
    if kind == "synthesis":
        if not text:
            raise SampleError("a synthesis net needs --text TEXT (or --line ID with --data ROOT) to plot")
        r = synthesize(model, Alphabet.from_dict(meta["alphabet"]), [text], bias=b, generator=seed,
                       normaliser=normaliser)[0]
        return r.offsets, text, f"generated, bias {b:g}, seed {seed}"
    if text:
        raise SampleError("a prediction net is not conditioned on text: use --line ID, or no --text")
    offsets = sample_unconditional(model, 400, b, seed, normaliser=normaliser)[0]
    return offsets, None, f"generated, bias {b:g}, seed {seed}"


def _load(path):
    from graves.models import load_model
    from graves.sample import SampleError

    model, meta = load_model(path)
    kind = meta["config"]["model"]["kind"]
    if kind not in ("handwriting", "synthesis"):
        raise SampleError(f"{path} is a {kind!r} model; density and window plots need a handwriting net")
    return model, meta, kind


def _one_hot(meta, text: str, real: bool = False):
    """The text as the net reads it; ``real``: a dataset line's, whose characters the model may lack (read as
    the unknown class, as in training), not the user's (refused with a message)."""
    from graves.data.alphabet import Alphabet

    c, _ = Alphabet.from_dict(meta["alphabet"]).one_hot([text], substitute=real)
    return c


def plot_density_checkpoint(path, output, line=None, text=None, data_root=None, seed=None, bias=None) -> Path:
    """``graves plot density``: Fig. 10 (prediction net) / Fig. 14 (synthesis net) for a checkpoint.

    A real line (``line``, an IAM-OnDB id, with ``data_root``) or a generated one (synthesis: ``text``;
    prediction: 400 unconditional steps), written with ``bias`` (default :data:`graves.sample.DEFAULT_BIAS`)
    and ``seed``.
    """
    model, meta, kind = _load(path)
    offsets, line_text, label = _line_for(model, meta, kind, line, text, data_root, seed, bias)
    if len(offsets) == 0:
        from graves.sample import SampleError

        raise SampleError("the generated line is empty: nothing to plot (try another --seed)")
    c = _one_hot(meta, line_text, real=line is not None) if kind == "synthesis" else None
    y_hat, _ = teacher_force(model, offsets, meta.get("normaliser"), c)
    title = f"{'Fig. 14' if kind == 'synthesis' else 'Fig. 10'}-style densities: {label}"
    return plot_density(output, y_hat, offsets, meta.get("normaliser"), title)


def plot_window_checkpoint(path, output, line=None, text=None, data_root=None, seed=None, bias=None) -> Path:
    """``graves plot window``: Fig. 13 for a synthesis checkpoint, a real line or a generated one (written
    with ``bias``, default :data:`graves.sample.DEFAULT_BIAS`, and ``seed``)."""
    from graves.sample import SampleError

    model, meta, kind = _load(path)
    if kind != "synthesis":
        raise SampleError(f"{path} is a prediction net: the window plot needs a synthesis net")
    offsets, line_text, label = _line_for(model, meta, kind, line, text, data_root, seed, bias)
    if len(offsets) == 0:
        raise SampleError("the generated line is empty: nothing to plot (try another --seed)")
    _, phi = teacher_force(model, offsets, meta.get("normaliser"), _one_hot(meta, line_text, real=line is not None))
    return plot_window(output, phi.cpu().numpy(), line_text, offsets, f"Fig. 13-style window weights: {label}")


# ============================================================================================ learning curves


class CurvesError(ValueError):
    """A run folder without a readable ``metrics.jsonl``, or a metric that no record holds."""


@dataclass(frozen=True)
class Curves:
    """One run's learning curves, read from its ``metrics.jsonl`` by :func:`read_metrics`.

    ``train``: ``(N, 3)`` rows of (step, minutes, training loss) at the logged steps; ``valid``: one dict
    per validation, with ``step``, ``minutes`` and the ``valid`` metrics (``loss``, and e.g. ``sse`` or
    ``bpc``). Minutes add up the segments of a resumed run (each process counts from its own start).
    ``unit``: what both losses are in, from the run's ``config.json`` beside the metrics ("" when there is
    none). A text run logs its training loss summed over a sequence of ``train.seq_len`` symbols (the
    paper's loss) and validates in nats per symbol, so its training loss is divided by ``seq_len`` here.
    """

    train: np.ndarray
    valid: list[dict[str, float]]
    skipped: int = 0  # lines that were not metrics records (a cut-short line of a killed process)
    unit: str = ""


def read_metrics(run_dir: str | Path) -> Curves:
    """Read ``RUN_DIR/metrics.jsonl`` (or that file itself) as written by :func:`graves.train.train`.

    A resumed run appends to the file: its steps restart from the last checkpoint, so records from the
    stopped process at or past the step where the next one resumed are dropped (the resumed run redid
    those steps), and its clock restarts at zero, so each later segment's minutes are shifted by the
    minutes already spent. Lines that are not metrics records (a record cut short when a process was
    killed or the disk filled) are skipped and counted in ``Curves.skipped``.
    """
    run_dir = Path(run_dir)
    path = run_dir if run_dir.is_file() else run_dir / "metrics.jsonl"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CurvesError(f"{run_dir}: no metrics.jsonl (is it a run folder written by graves train?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CurvesError(f"cannot read {path}: {exc}") from None
    records: list[dict] = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        if not isinstance(rec, dict) or isinstance(rec.get("step"), bool) or not isinstance(rec.get("step"), int):
            skipped += 1
            continue
        records.append(rec)

    def minutes(rec: dict) -> float | None:
        for key, scale in (("seconds", 1 / 60), ("minutes", 1.0)):
            v = rec.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v) * scale
        return None

    # Split into process segments (within one, neither the step nor the clock goes back) and stitch them.
    kept: list[tuple[dict, float]] = []
    offset, last_min, last_step = 0.0, 0.0, -1
    for rec in records:
        m = minutes(rec)
        if rec["step"] < last_step or (m is not None and m < last_min):
            kept = [(r, t) for r, t in kept if r["step"] < rec["step"]]  # the resumed run redid these steps
            offset, last_min = offset + last_min, 0.0
        last_min = max(last_min, m) if m is not None else last_min
        last_step = rec["step"]
        kept.append((rec, offset + (m if m is not None else last_min)))
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    train = np.array([(r["step"], t, r["train_loss"]) for r, t in kept if number(r.get("train_loss"))],
                     dtype=np.float64).reshape(-1, 3)
    valid = [{"step": r["step"], "minutes": t, **{k: float(v) for k, v in r["valid"].items() if number(v)}}
             for r, t in kept if isinstance(r.get("valid"), dict)]
    unit = ""
    try:  # the run's own config says what its losses are in
        cfg = json.loads((path.parent / "config.json").read_text(encoding="utf-8"))
        kind, seq_len = cfg["model"]["kind"], cfg["train"]["seq_len"]
    except (OSError, ValueError, KeyError, TypeError):
        kind = seq_len = None
    if kind == "text" and number(seq_len) and seq_len > 0:
        train[:, 2] /= seq_len
        unit = "nats per symbol"
    elif kind in ("handwriting", "synthesis"):
        unit = "nats per line"
    return Curves(train, valid, skipped, unit)


X_AXES = {"step": "training step", "minutes": "training time (minutes)", "hours": "training time (hours)"}


def _trailing_mean(y: np.ndarray, window: int) -> np.ndarray:
    """The mean of the last ``window`` values at each point (of all values so far, near the start)."""
    c = np.concatenate([[0.0], np.cumsum(y)])  # c[k] = y[0] + … + y[k−1]
    k = np.arange(1, len(y) + 1)
    n = np.minimum(k, window)
    return (c[k] - c[k - n]) / n


def _check_ylim(ylim: Any) -> None:
    if ylim is not None and not (len(ylim) == 2 and all(math.isfinite(v) for v in ylim) and ylim[0] < ylim[1]):
        raise CurvesError(f"the y range needs two finite numbers, low < high; got {' '.join(map(str, ylim))}")


def plot_curves(
    output: Any,
    runs: Mapping[str, Curves],
    x: str = "step",
    metric: str = "loss",
    ylim: tuple[float, float] | None = None,
    title: str = "",
) -> Any:
    """Write a PNG of learning curves, one colour per run.

    With ``metric="loss"``: each run's training loss (faint: as logged; solid: the mean of the last 5 % of
    the logged values) and validation loss (bold, with markers); otherwise the validation metric of that
    name (e.g. ``sse``, ``bpc``, ``perplexity``). The best (lowest) validation value of each run is ringed
    and labelled. The y range leaves out the first, steepest stretch of training (above the 95th
    percentile of what is drawn) unless ``ylim`` is given.

    Args:
        output: a path or a binary file object.
        runs: label → :class:`Curves`, drawn in order.
        x: ``"step"``, ``"minutes"`` or ``"hours"`` (training time, resumed segments added up).
    """
    if x not in X_AXES:
        raise CurvesError(f"x must be one of {', '.join(X_AXES)}, not {x!r}")
    _check_ylim(ylim)
    if not runs:
        raise CurvesError("no runs to plot")
    if metric != "loss" and not any(metric in v for c in runs.values() for v in c.valid):
        have = sorted({k for c in runs.values() for v in c.valid for k in v} - {"step", "minutes"})
        raise CurvesError(f"no validation record holds {metric!r}; the runs have: {', '.join(have) or 'none'}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    col = 0 if x == "step" else 1
    scale = 1 / 60 if x == "hours" else 1.0
    drawn: list[np.ndarray] = []
    for i, (label, c) in enumerate(runs.items()):
        colour = f"C{i % 10}"
        if metric == "loss" and len(c.train):
            tx = c.train[:, col] * (1.0 if x == "step" else scale)
            smooth = _trailing_mean(c.train[:, 2], max(1, len(c.train) // 20))
            ax.plot(tx, c.train[:, 2], color=colour, alpha=0.2, linewidth=0.6)
            ax.plot(tx, smooth, color=colour, linewidth=1.0, label=f"{label}: training")
            drawn.append(smooth)
        v = [r for r in c.valid if metric in r]
        if v:
            vx = np.array([r["step"] if x == "step" else r["minutes"] * scale for r in v])
            vy = np.array([r[metric] for r in v])
            ax.plot(vx, vy, color=colour, linewidth=2.0, marker="o", markersize=3.5,
                    label=f"{label}: validation" if metric == "loss" else label)
            if np.isfinite(vy).any():  # ring the best finite value (a NaN or inf check is no best)
                b = int(np.nanargmin(np.where(np.isfinite(vy), vy, np.nan)))
                ax.plot(vx[b], vy[b], marker="o", markersize=10, markerfacecolor="none", color=colour)
                ax.annotate(f"{vy[b]:.5g}", (vx[b], vy[b]), textcoords="offset points", xytext=(6, -12),
                            color=colour, fontsize=8)
            drawn.append(vy)
    if not drawn:
        raise CurvesError("the runs have no records to plot yet")
    if ylim is None:
        allv = np.concatenate(drawn)
        allv = allv[np.isfinite(allv)]
        if not len(allv):
            raise CurvesError(f"the runs' {metric} values are all NaN or infinite: nothing to plot")
        lo, hi = float(allv.min()), float(np.quantile(allv, 0.95))
        pad = 0.05 * max(hi - lo, 1e-9)
        ylim = (lo - pad, hi + pad)
    ax.set_ylim(*ylim)
    ax.set_xlabel(X_AXES[x])
    units = {c.unit for c in runs.values()}
    unit = f" ({units.pop()})" if len(units) == 1 and "" not in units else ""
    ax.set_ylabel(f"{metric} (validation)" if metric != "loss" else f"loss{unit}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or ("learning curves" if metric == "loss" else f"validation {metric}"))
    fig.tight_layout()
    return _save(fig, output)


def plot_curves_runs(run_dirs: list[str | Path], output: Any, x: str = "step", metric: str = "loss",
                     ylim: tuple[float, float] | None = None, title: str = "") -> Any:
    """``graves plot curves``: learning curves of run folders, each labelled with its folder's name; skipped
    lines (see :func:`read_metrics`) are named in a warning on stderr."""
    _check_ylim(ylim)  # before any reading
    runs: dict[str, Curves] = {}
    for d in run_dirs:
        p = Path(d)
        label = p.parent.name if p.is_file() else p.name
        while label in runs:
            label += "'"
        runs[label] = read_metrics(p)
        if runs[label].skipped:
            print(f"graves: warning: {d}: skipped {runs[label].skipped} line(s) of metrics.jsonl that are not "
                  "metrics records", file=sys.stderr)
    return plot_curves(output, runs, x=x, metric=metric, ylim=ylim, title=title)
