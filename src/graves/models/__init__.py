"""The networks of the paper, and :func:`load_model`, which rebuilds any of them from a checkpoint alone.

* ``kind = "text"``: :class:`graves.models.text.TextPredictor` (Section 3), sized by the checkpoint's
  ``"vocab"``;
* ``kind = "handwriting"``: :class:`graves.models.handwriting.HandwritingPredictor` (Section 4);
* ``kind = "synthesis"``: :class:`graves.models.handwriting.HandwritingSynthesizer` (Section 5), sized
  by the checkpoint's ``"alphabet"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from graves.checkpoint import CheckpointError

__all__ = ["build_model", "load_model"]


def build_model(cfg, meta: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised model for ``cfg`` (a :class:`graves.config.Config`).

    ``meta`` supplies the vocabulary size: ``meta["vocab"]`` (text) or ``meta["alphabet"]`` (synthesis).
    """
    kind = cfg.model.kind
    meta = meta or {}
    if kind == "handwriting":
        from graves.models.handwriting import HandwritingPredictor

        return HandwritingPredictor(cfg.model)
    if kind == "synthesis":
        from graves.data.alphabet import Alphabet
        from graves.models.handwriting import HandwritingSynthesizer

        if "alphabet" not in meta:
            raise CheckpointError("a synthesis model needs meta['alphabet'] to know its vocabulary size")
        return HandwritingSynthesizer(cfg.model, len(Alphabet.from_dict(meta["alphabet"])))
    if kind == "text":
        from graves.data.text import Vocab
        from graves.models.text import TextPredictor  # lazily: text models need none of the above

        if "vocab" not in meta:
            raise CheckpointError("a text model needs meta['vocab'] to know its vocabulary size")
        return TextPredictor(cfg.model, len(Vocab.from_dict(meta["vocab"])))
    raise CheckpointError(f"unknown model kind {kind!r} (expected text, handwriting or synthesis)")


def load_model(path: str | Path, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved at ``path`` (a checkpoint directory) from the checkpoint alone.

    Returns:
        the model in eval mode with the saved weights, and the checkpoint's meta (config, alphabet or
        vocabulary, normalisation statistics, ...).

    Raises:
        graves.checkpoint.CheckpointError: the checkpoint is missing, damaged, or does not match the
            model its config describes.
    """
    from graves.checkpoint import CheckpointError, config_of, load_into, load_meta
    from graves.config import Config, ConfigError

    meta = load_meta(path)
    try:
        cfg = Config.from_dict(config_of(meta, path))
        model = build_model(cfg, meta)
    except KeyError as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model from checkpoint.json: it has no {exc}") from None
    except (ValueError, TypeError, AttributeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model from checkpoint.json: {exc}") from None
    load_into(model, path, dtype=dtype)
    model.to(dtype)
    model.eval()
    return model, meta
