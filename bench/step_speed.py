"""Whole training steps on real data: float32 against bfloat16 matrix products (``train.matmul_dtype``).

One process, one model, one optimiser: every chosen batch of the config's first epoch is trained on
twice in a row, once under each setting (float32 first, then bfloat16, and the next batch the other way
round), so both see the same batches and the same machine load. A step is what ``graves train`` runs:
the task's loss, the backward pass with the derivative clipping, and the optimiser's update
(``graves.train.training_step``); no validation, no checkpoints, no weight noise. Prints each setting's
mean seconds per step and their ratio.

    python bench/step_speed.py configs/hw-predict-3x400.toml [--batches 8] [--threads 2] [key=value ...]
    python bench/step_speed.py configs/ptb-char-fast.toml       (text configs too)

The data come from ``GRAVES_DATA`` as for training. The weights move as they would in training (the first
steps of a fresh net), which does not change the cost of a step.
"""

from __future__ import annotations

import argparse
import time

import torch

from graves.config import load_config
from graves.nn.lstm import MATMUL_DTYPES
from graves.optim import optimizer_from_config
from graves.train import build_task, optimised_params, training_step

SETTINGS = MATMUL_DTYPES  # "float32": None (full precision), "bfloat16": torch.bfloat16


def spread(n_batches: int, n: int) -> list[int]:
    """``n`` batch indices spread evenly over ``n_batches`` (all of them when ``n >= n_batches``)."""
    if n >= n_batches:
        return list(range(n_batches))
    return [round(k * n_batches / n) for k in range(n)]


def pick(batches, chosen: list[int]) -> dict[int, object]:
    """The chosen batches by index: handwriting epochs are indexed, a text epoch is a stream read in order."""
    if hasattr(batches, "__getitem__"):
        return {i: batches[i] for i in chosen}
    wanted, out = set(chosen), {}
    for i, batch in enumerate(batches):
        if i in wanted:
            out[i] = batch
        if len(out) == len(wanted):
            break
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="an experiment's TOML (its [data] and [model] are used)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, as for graves train")
    parser.add_argument("--batches", type=int, default=8, help="batches timed (spread over epoch 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error("--batches must be at least 1")
    cfg = load_config(args.config, args.overrides)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(cfg.train.seed)
    task = build_task(cfg)
    model = task.model
    model.train()
    optimizer = optimizer_from_config(cfg.optim, optimised_params(cfg, model, None))
    generator = torch.Generator().manual_seed(0)
    batches = task.batches(0, torch.Generator().manual_seed(cfg.train.seed * 1_000_003))
    n_batches = len(batches)
    chosen = spread(n_batches, args.batches)
    batches = pick(batches, chosen)
    for dtype in SETTINGS.values():  # warm-up: each setting's kernels once
        training_step(task, model, batches[chosen[0]], optimizer, None, generator, dtype)
    seconds = {name: 0.0 for name in SETTINGS}
    for k, i in enumerate(chosen):
        order = list(SETTINGS) if k % 2 == 0 else list(reversed(SETTINGS))
        for name in order:
            t0 = time.perf_counter()
            training_step(task, model, batches[i], optimizer, None, generator, SETTINGS[name])
            seconds[name] += time.perf_counter() - t0
    per_step = {name: s / len(chosen) for name, s in seconds.items()}
    print(f"{cfg.name}: {len(chosen)} batches of {n_batches}, threads {args.threads}, torch {torch.__version__}")
    print("  " + ", ".join(f"{name} {per_step[name]:.3f} s a step" for name in SETTINGS))
    ratio = seconds["float32"] / seconds["bfloat16"]
    print(f"RATIO float32 / bfloat16 = {ratio:.2f}x (above 1: bfloat16 products are faster here)")
    return {**per_step, "ratio": ratio}


if __name__ == "__main__":
    main()
