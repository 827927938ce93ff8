"""Cost of drawing the weights per sequence, per group of sequences, or once per minibatch.

The paper draws fresh weights (weight noise, adaptive weight noise) for every training sequence;
`graves.nn.noise.noisy_backward` then runs a minibatch as B one-sequence passes. ``noise.per = "group"``
(a deviation) draws once for each ``noise.group_size`` consecutive sequences, and ``"batch"`` once for
the whole minibatch. This times the forward and backward passes of one training step under adaptive
weight noise (`noisy_backward`, the same call the trainer makes, plus the KL term) for each choice, on
the same real minibatches of a handwriting config's data, side by side in one run: the reps interleave
the choices, and the median of ``--reps`` timed reps (after one warm-up rep of each) is reported, with
its ratio to one draw per minibatch, for each minibatch and for all of them together (their total time,
so the longest lines weigh most).

A group's pass runs on its own lines with the padding beyond its longest line cut off (the lines of a
minibatch are sorted by length), so a few large groups can come out cheaper than one pass over the
whole minibatch.

    python bench/noise_draws.py [--config configs/hw-synth-medium.toml] [--groups 16,8,4,1] [--batches 5]
                                [--reps 3] [--threads 2] [key=value ...]

The minibatches are spread evenly over one epoch's batches sorted by their longest line.
Reads the data the config names (``GRAVES_DATA`` or ``data.root``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from graves.config import load_config
from graves.nn.noise import AdaptiveWeightNoise, noisy_backward
from graves.tasks.handwriting import _length_batches
from graves.train import build_task


def _step_seconds(task, model, batches, noise: AdaptiveWeightNoise, generator: torch.Generator) -> list[float]:
    """Seconds for the forward and backward of each batch under ``noise``, as `graves.train.training_step`
    runs them."""
    seconds = []
    for batch in batches:
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        for ls in noise.log_s:
            ls.grad = None
        count = task.batch_size(batch)
        noisy_backward(noise, lambda idx: task.loss(model, batch, idx)[0] * (idx.stop - idx.start), count, generator)
        (noise.kl() / task.num_train_sequences).backward()
        seconds.append(time.perf_counter() - t0)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/hw-synth-medium.toml", help="the experiment (model and data)")
    parser.add_argument("--groups", default="16,8,4,1",
                        help="sequences per draw to time beside one draw per minibatch (1: the paper)")
    parser.add_argument("--batches", type=int, default=5, help="minibatches per rep, spread over an epoch")
    parser.add_argument("--reps", type=int, default=3, help="timed reps per choice (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    args = parser.parse_args()
    try:
        groups = [int(g) for g in args.groups.split(",") if g.strip()]
    except ValueError:
        parser.error(f"--groups takes integers separated by commas, not {args.groups!r}")
    if any(g < 1 for g in groups) or args.batches < 1 or args.reps < 1:
        parser.error("--groups must be integers >= 1, --batches and --reps at least 1")
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    if cfg.model.kind not in ("handwriting", "synthesis"):
        parser.error(f"{args.config}: a handwriting config is needed (model.kind {cfg.model.kind!r})")
    task = build_task(cfg)
    model = task.model
    offsets, _ = task._split("train")
    epoch = _length_batches([len(o) for o in offsets], cfg.train.batch_size, torch.Generator().manual_seed(0))
    epoch.sort(key=lambda lines: max(len(offsets[i]) for i in lines))  # short lines to long
    picks = [epoch[round(k * (len(epoch) - 1) / max(1, args.batches - 1))] for k in range(args.batches)]
    batches = [task._build("train", g) for g in picks]
    B = cfg.train.batch_size
    choices = [("one per minibatch", None)] + [(f"one per {g} sequence{'s' if g > 1 else ''}", g) for g in groups]
    noises = {name: AdaptiveWeightNoise(model, init_std=cfg.noise.std, per_sequence=False, group_size=g)
              for name, g in choices}
    times: dict[str, list[list[float]]] = {name: [] for name, _ in choices}  # per rep, per batch
    gen = torch.Generator().manual_seed(0)
    for rep in range(args.reps + 1):
        for name, _ in choices:
            seconds = _step_seconds(task, model, batches, noises[name], gen)
            if rep:  # rep 0 warms up
                times[name].append(seconds)
    lengths = ", ".join(str(int(b.lengths.max())) for b in batches)
    print(f"{cfg.name}: {cfg.model.num_layers} x {cfg.model.hidden_size} {cfg.model.kind}, batch {B}, "
          f"{len(batches)} minibatches (longest lines {lengths} points), {args.threads} threads, "
          f"median of {args.reps} reps")

    def median(name: str, b: int | None) -> float:
        """Median over reps of one batch's seconds (b), or of all batches' total (None)."""
        return statistics.median(sum(r) if b is None else r[b] for r in times[name])

    columns = [f"x, {int(b.lengths.max())} pts" for b in batches]
    print(f"{'draws':<26} {'passes':>7} {'s per step':>11} {'x one draw':>11} " + " ".join(f"{c:>12}" for c in columns))
    for name, g in choices:
        passes = 1 if g is None else -(-B // g)
        total = median(name, None)
        each = [median(name, b) / median("one per minibatch", b) for b in range(len(batches))]
        print(f"{name:<26} {passes:>7} {total / len(batches):>11.3f} {total / median('one per minibatch', None):>11.2f} "
              + " ".join(f"{r:>12.2f}" for r in each))


if __name__ == "__main__":
    main()
