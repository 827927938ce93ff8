"""``graves eval``: evaluate a checkpoint on a split, statically or with dynamic evaluation.

The metrics themselves live with each task (``graves.tasks.text``: BPC, perplexity, error, dynamic
evaluation; ``graves.tasks.handwriting``: log-loss in nats and SSE); this module rebuilds the model
from the checkpoint alone and dispatches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from graves.checkpoint import config_of, load_into, load_meta
from graves.config import Config, ConfigError


def evaluate_checkpoint(path: str | Path, split: str = "valid", dynamic: bool = False,
                        data_root: str | None = None, progress: bool = False,
                        overrides: list[str] | None = None) -> dict[str, Any]:
    """Metrics of the checkpoint at ``path`` on ``split``; the checkpoint's files are never modified.

    ``overrides`` (``optim.name=sgd optim.lr=1e-3``) change the optimiser that dynamic evaluation steps
    with; the model's own config cannot be overridden.
    """
    from graves.train import build_task

    meta = load_meta(path)
    cfg = Config.from_dict(config_of(meta, path))
    if any(not o.strip().startswith("optim.") for o in overrides or []):
        raise ConfigError("graves eval takes only optim.* overrides (the optimiser of dynamic evaluation)")
    if overrides and not dynamic:
        raise ConfigError("optim.* overrides set the optimiser of dynamic evaluation: add --dynamic, or drop them")
    if overrides:
        from graves.config import check_config

        cfg = cfg.override(list(overrides))
        check_config(Config(optim=cfg.optim))  # the optimiser's ranges only: the checkpoint's own config stands
    if data_root:
        cfg = cfg.override([f"data.root={json.dumps(str(data_root))}"])
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.set_flush_denormal(True)  # denormal floats slow CPU maths by orders of magnitude
    task = build_task(cfg, meta)
    model = task.model
    load_into(model, path)
    model.eval()
    if dynamic:
        if not hasattr(task, "evaluate_dynamic"):
            raise ConfigError(f"dynamic evaluation is defined for text nets, not for {cfg.model.kind!r} models")
        metrics = task.evaluate_dynamic(model, split, progress=progress)
    else:
        metrics = task.evaluate(model, split, progress=progress)
    return {"checkpoint": str(path), "split": split, "dynamic": dynamic, **metrics}
