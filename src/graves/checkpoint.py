"""Checkpoints are data, not pickles.

A checkpoint is a directory::

    model.safetensors     the weights (safetensors)
    checkpoint.json       resolved config, step, epoch, metrics, vocabulary / alphabet, normalisation stats
    trainer.pt            optimiser state, RNG states, data position (torch file, loaded weights_only=True);
                          absent from shipped models

Other files in the directory (a ``styles.json`` made by ``graves styles make``, notes of one's own) are
the user's: a save that replaces the directory copies them into the new one.

Writes are atomic: everything goes into a temporary sibling directory that is renamed into place, so
a crash or a full disk during a save leaves the previous checkpoint intact. Loading a damaged
checkpoint raises :class:`CheckpointError` with a message that says what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read."""


def save_checkpoint(
    path: str | Path,
    weights: dict[str, torch.Tensor],
    meta: dict[str, Any],
    trainer_state: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a checkpoint directory atomically; ``dtype`` (e.g. float16) converts floating weights."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tensors = {}
        for k, v in weights.items():
            v = v.detach().cpu()
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
            tensors[k] = v.contiguous()
        save_file(tensors, str(tmp / "model.safetensors"))
        body = json.dumps({"format": FORMAT_VERSION, **meta}, indent=2, sort_keys=True)
        (tmp / "checkpoint.json").write_text(body + "\n", encoding="utf-8")
        if trainer_state is not None:
            torch.save(trainer_state, tmp / "trainer.pt")
        _carry_over(path, tmp)
        for f in tmp.iterdir():
            if not f.is_file():
                continue
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    # A full disk reaches us as OSError from our own writes, SafetensorError from save_file and RuntimeError
    # from torch.save's zip writer; none of them has touched the previous checkpoint.
    except (OSError, SafetensorError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"could not write checkpoint {path}: {_one_line(exc)}; the previous checkpoint is "
                              "untouched") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # The swap: the previous checkpoint steps aside as .NAME.old, the new one takes its name, then the old
    # one goes. If the second rename fails, the old one is put back; if the process dies between the two,
    # recover() (called by the next save, and by `graves train` on start) puts it back; loads read it in place.
    old = _previous(path)
    had_old = False
    try:
        if path.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            had_old = True
        try:
            os.replace(tmp, path)
        except BaseException:
            if had_old and not path.exists():
                os.replace(old, path)
            raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = ("the previous checkpoint is untouched" if path.exists() or not had_old
                else f"the previous checkpoint is at {old}")
        raise CheckpointError(f"could not write checkpoint {path}: {exc}; {kept}") from exc
    if had_old:
        shutil.rmtree(old, ignore_errors=True)
    return path


_WRITTEN = ("model.safetensors", "checkpoint.json", "trainer.pt")


def _carry_over(path: Path, tmp: Path) -> None:
    """Copy into ``tmp`` what ``path`` holds that a save does not write (e.g. ``styles.json``), so that
    replacing a checkpoint loses none of the user's files; a failure is a failed save (the old one stays)."""
    if not path.is_dir():
        return
    for f in path.iterdir():
        if f.name in _WRITTEN:
            continue
        if f.is_dir() and not f.is_symlink():
            shutil.copytree(f, tmp / f.name, symlinks=True)
        else:
            shutil.copy2(f, tmp / f.name, follow_symlinks=False)


def recover(path: str | Path) -> bool:
    """Put a checkpoint back that a save interrupted between its two renames: when ``path`` is missing and
    its ``.NAME.old`` sibling exists, rename it back. Returns whether it did."""
    path = Path(path)
    old = _previous(path)
    if path.exists() or not old.is_dir():
        return False
    os.replace(old, path)
    return True


def _previous(path: Path) -> Path:
    """Where a save puts the previous checkpoint while it swaps the new one in."""
    return path.with_name(f".{path.name}.old")


def _one_line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
    return lines[0] if lines else type(exc).__name__


def load_meta(path: str | Path) -> dict[str, Any]:
    path = resolve_checkpoint(path)
    try:
        meta = json.loads((path / "checkpoint.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is not a checkpoint: checkpoint.json is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}/checkpoint.json is corrupt: {exc}") from None
    except OSError as exc:  # a folder named checkpoint.json, no permission, ...
        raise CheckpointError(f"{path}/checkpoint.json cannot be read: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}/checkpoint.json is not a checkpoint's: it holds a {type(meta).__name__}, "
                              "not an object")
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}/checkpoint.json: unknown checkpoint format {meta.get('format')!r}")
    for key, kind in (("config", dict), ("alphabet", dict), ("vocab", dict), ("normaliser", dict)):
        if key in meta and not isinstance(meta[key], kind):
            raise CheckpointError(f"{path}/checkpoint.json is corrupt: its {key!r} is a {type(meta[key]).__name__}, "
                                  f"not an object")
    if "normaliser" in meta:  # handwriting nets: the mean and std of (dx, dy), 2 numbers each
        try:
            stats = [[float(v) for v in meta["normaliser"][k]] for k in ("mean", "std")]
            ok = all(len(s) == 2 and all(math.isfinite(v) for v in s) for s in stats) and min(stats[1]) > 0
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"{path}/checkpoint.json is corrupt: its 'normaliser' is not the mean and positive "
                                  "std dev of (dx, dy)")
    return meta


def config_of(meta: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The resolved config a checkpoint's meta holds (``meta["config"]``), or a :class:`CheckpointError`."""
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}/checkpoint.json is corrupt: it has no 'config'")
    return meta["config"]


def load_weights(path: str | Path, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    path = resolve_checkpoint(path)
    f = path / "model.safetensors"
    if not f.exists():
        raise CheckpointError(f"{path} is not a checkpoint: model.safetensors is missing")
    try:
        weights = load_file(str(f))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{f} is corrupt or truncated: {exc}") from None
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in weights.items()}


def load_into(model: torch.nn.Module, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
    """Load ``path``'s weights into ``model``; a damaged file or weights of another shape is a
    :class:`CheckpointError` that says which."""
    weights = load_weights(path, dtype=dtype)  # its own message for a missing or damaged file
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:  # missing, unexpected or differently shaped tensors
        detail = " ".join(x.strip() for x in str(exc).strip().splitlines()[:3])
        raise CheckpointError(f"{path}: the weights do not fit the model its config describes: {detail}") from None


def load_trainer_state(path: str | Path) -> dict[str, Any] | None:
    f = resolve_checkpoint(path) / "trainer.pt"
    if not f.exists():
        return None
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for a damaged file
        raise CheckpointError(f"{f} is corrupt or truncated: {exc}") from None


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder ``path`` names (a folder, or one of its files), where it is now: its
    ``.NAME.old`` while a save is between its two renames. CheckpointError when there is none."""
    path = Path(path)
    if path.is_file() and path.name in ("checkpoint.json", "model.safetensors", "trainer.pt"):
        path = path.parent
    old = _previous(path)
    if not path.exists() and old.is_dir():
        # a save is between its two renames, or died there: read the previous checkpoint where it is (only
        # writers put it back, with recover(), so a reader never races a save)
        path = old
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint directory")
    return path


# ----------------------------------------------------------------------------------------- describing


def describe(path: str | Path) -> dict[str, Any]:
    """What a checkpoint holds, without building its model: ``graves info``.

    Reads ``checkpoint.json`` and the safetensors header (names, shapes and dtypes, not the weights).
    Returns a JSON-ready dict: the net (kind, layers, cells, output sizes), the weight count and bytes,
    the data, the training settings and position, the last and best validations, whether ``trainer.pt``
    makes it resumable, and how many styles sit beside it. Raises :class:`CheckpointError` as the loaders do.
    """
    from safetensors import safe_open

    path = resolve_checkpoint(path)
    meta = load_meta(path)
    f = path / "model.safetensors"
    if not f.exists():
        raise CheckpointError(f"{path} is not a checkpoint: model.safetensors is missing")
    count, nbytes, dtypes = 0, 0, set()
    try:
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():
                sl = st.get_slice(k)
                n = 1
                for d in sl.get_shape():
                    n *= d
                count += n
                dtypes.add(str(sl.get_dtype()))
        nbytes = f.stat().st_size
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{f} is corrupt or truncated: {exc}") from None
    cfg = config_of(meta, path)
    model, data, optim, noise, train = (cfg.get(k) if isinstance(cfg.get(k), dict) else {}
                                        for k in ("model", "data", "optim", "noise", "train"))
    valid = [h for h in meta.get("history", []) if isinstance(h, dict) and isinstance(h.get("valid"), dict)]
    best = min(valid, key=lambda h: h["valid"].get("loss", float("inf")), default=None)
    out: dict[str, Any] = {
        "path": str(path),
        "name": cfg.get("name"),
        "kind": model.get("kind"),
        "layers": model.get("num_layers"),
        "cells": model.get("hidden_size"),
        "weights": count,
        "bytes": nbytes,
        "dtypes": sorted(dtypes),
        "data": {k: data.get(k) for k in (("name", "train_sets", "valid_sets", "alphabet")
                                          if data.get("name") == "iamondb" else ("name", "path", "split"))
                 if data.get(k)},
        "step": meta.get("step") if isinstance(meta.get("step"), int) else 0,
        "epoch": meta.get("epoch"),
        "optimiser": {k: optim.get(k) for k in ("name", "lr", "momentum") if k in optim},
        "noise": noise.get("kind", "none"),
        "batch_size": train.get("batch_size"),
        "last_validation": valid[-1] if valid else None,
        "best_validation": best,
        "resumable": (path / "trainer.pt").is_file(),
        "styles": None,
    }
    if model.get("kind") in ("handwriting", "synthesis"):
        out["mixtures"] = model.get("mixtures")
    if model.get("kind") == "synthesis":
        out["window_mixtures"] = model.get("window_mixtures")
        chars = meta.get("alphabet", {}).get("characters") if isinstance(meta.get("alphabet"), dict) else None
        out["characters"] = len(chars) if isinstance(chars, str) else None
        styles = path / "styles.json"
        if styles.is_file():
            try:
                out["styles"] = len(json.loads(styles.read_text(encoding="utf-8")))
            except (ValueError, TypeError, UnicodeDecodeError, OSError):
                out["styles"] = "unreadable"
    if isinstance(meta.get("vocab"), dict) and isinstance(meta["vocab"].get("symbols"), list):
        out["symbols"] = len(meta["vocab"]["symbols"])
    if meta.get("weights"):
        out["weights_note"] = meta["weights"]
    return out


def format_description(d: dict[str, Any]) -> str:
    """:func:`describe`'s dict as a few lines of text."""
    kind = {"text": "text prediction net", "handwriting": "handwriting prediction net",
            "synthesis": "handwriting synthesis net"}.get(d["kind"], f"{d['kind']!r} net")
    net = f"{d['layers']} × {d['cells']} peephole LSTM, skip connections"
    if "symbols" in d:
        net += f", {d['symbols']} symbols"
    if "mixtures" in d:
        net += f", M = {d['mixtures']} mixture components"
    if "window_mixtures" in d:
        net += f", K = {d['window_mixtures']} window Gaussians, {d.get('characters')} characters"
    lines = [f"{d['path']}: {kind}" + (f" ({d['name']})" if d.get("name") else ""),
             f"  net        {net}",
             f"  weights    {d['weights']:,} ({_size(d['bytes'])}, {', '.join(d['dtypes'])})"
             + (f"; {d['weights_note']}" if d.get("weights_note") else "")]
    data = d["data"]
    if data:
        sets = "+".join(data.get("train_sets", [])) or data.get("path", "")
        lines.append(f"  data       {data.get('name', '?')}" + (f": {sets}" if sets else ""))
    o = d["optimiser"]
    lines.append(f"  training   step {d['step']:,}, epoch {d['epoch']}; {o.get('name', '?')} lr {o.get('lr')}, "
                 f"batch {d['batch_size']}, noise {d['noise']}; "
                 + ("resumable (trainer.pt)" if d["resumable"] else "not resumable (no trainer state)"))

    formats = {"loss": ("log-loss", "{:.1f} nats/line"), "sse": ("SSE", "{:.3f}"), "bpc": ("BPC", "{:.3f}"),
               "perplexity": ("perplexity", "{:.1f}"), "error": ("error", "{:.1f} %")}
    # a text net's loss is nats per symbol: BPC and perplexity say the same more usefully
    keys = ("bpc", "perplexity", "error") if d["kind"] == "text" else ("loss", "sse")

    def show(h: dict[str, Any]) -> str:
        v = h["valid"]
        return ", ".join(f"{formats[k][0]} {formats[k][1].format(v[k])}" for k in keys
                         if isinstance(v.get(k), (int, float))) + f" (step {_count(h.get('step'))})"

    def _count(s: Any) -> str:
        return f"{s:,}" if isinstance(s, int) and not isinstance(s, bool) else "?"

    last, best = d["last_validation"], d["best_validation"]
    if last is None:
        lines.append("  validation none yet")
    elif best is None or best.get("step") == last.get("step"):
        lines.append(f"  validation {show(last)}")
    else:
        lines.append(f"  validation best: {show(best)}; last: {show(last)}")
    if d["kind"] == "synthesis":
        lines.append(f"  styles     {d['styles']} (styles.json)" if d["styles"] is not None
                     else "  styles     none (make them with graves styles make)")
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"
