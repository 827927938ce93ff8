"""Checkpoints are data, not pickles.

A checkpoint is a directory::

    model.safetensors     the weights (safetensors)
    checkpoint.json       resolved config, step, epoch, metrics, vocabulary / alphabet, normalisation stats
    trainer.pt            optimiser state, RNG states, data position (torch file, loaded weights_only=True);
                          absent from shipped models

Writes are atomic: everything goes into a temporary sibling directory that is renamed into place, so
a crash or a full disk during a save leaves the previous checkpoint intact. Loading a damaged
checkpoint raises :class:`CheckpointError` with a message that says what is wrong.
"""

from __future__ import annotations

import json
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
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"could not write checkpoint {path}: {exc}; the previous checkpoint is untouched") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_meta(path: str | Path) -> dict[str, Any]:
    path = _resolve(path)
    try:
        meta = json.loads((path / "checkpoint.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is not a checkpoint: checkpoint.json is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}/checkpoint.json is corrupt: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}/checkpoint.json: unknown checkpoint format {meta.get('format')!r}")
    return meta


def load_weights(path: str | Path, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    path = _resolve(path)
    f = path / "model.safetensors"
    if not f.exists():
        raise CheckpointError(f"{path} is not a checkpoint: model.safetensors is missing")
    try:
        weights = load_file(str(f))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{f} is corrupt or truncated: {exc}") from None
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in weights.items()}


def load_trainer_state(path: str | Path) -> dict[str, Any] | None:
    f = _resolve(path) / "trainer.pt"
    if not f.exists():
        return None
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for a damaged file
        raise CheckpointError(f"{f} is corrupt or truncated: {exc}") from None


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file() and path.name in ("checkpoint.json", "model.safetensors", "trainer.pt"):
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint directory")
    return path
