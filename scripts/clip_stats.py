"""How often the paper's derivative clipping binds on real lines (SPEC §1, §4.2).

One backward pass of a handwriting checkpoint over real validation lines, each line's loss summed over
its points (the paper's L(x), eq. 26): the fraction of output derivatives ∂L/∂ŷ beyond the output bound
(100) and of LSTM gate derivatives beyond the LSTM bound (10), as they arrive at the clamps, and beyond
32 times those bounds (what a batch of 32 allowed per line before session 13, docs/decisions.md).

    python scripts/clip_stats.py [CKPT] [--lines 64] [--data DATA_ROOT]

The net runs on its reference path (autograd through eqs. 7–11) so that every clamp can be watched.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", nargs="?", default=str(REPO / "src" / "graves" / "weights"))
    p.add_argument("--lines", type=int, default=64, help="validation lines, the first ones (default 64)")
    p.add_argument("--data", default=os.environ.get("GRAVES_DATA", "data"), help="data root")
    a = p.parse_args(argv)

    import graves.models.handwriting as hw
    import graves.nn.lstm as lstm
    from graves.checkpoint import load_meta, load_weights
    from graves.config import Config
    from graves.nn.clip import clip_gradient
    from graves.tasks.handwriting import HandwritingTask

    meta = load_meta(a.checkpoint)
    cfg = Config.from_dict(meta["config"])
    cfg = cfg.override(["model.fused=false", f"data.root='{a.data}'", "data.max_lines=0"])
    torch.manual_seed(0)
    task = HandwritingTask(cfg)
    task.model.load_state_dict(load_weights(a.checkpoint))
    seen: dict[str, list[torch.Tensor]] = {"output": [], "lstm": []}

    def watch(kind: str):
        def clip(t: torch.Tensor, bound: float | None) -> torch.Tensor:
            out = clip_gradient(t, bound)
            if out.requires_grad:
                out.register_hook(lambda g: seen[kind].append(g.detach().abs().flatten()))
            return out
        return clip

    lstm.clip_preactivation = hw.clip_preactivation = watch("lstm")
    hw.clip_gradient = watch("output")
    offsets, _ = task._split("valid")
    n = min(a.lines, len(offsets))
    batch = task._build("valid", list(range(n)))
    task.line_losses(task.model, batch).sum().backward()  # each line's own L(x): no 1/B

    out_bound, lstm_bound = cfg.model.output_clip, cfg.model.lstm_clip
    print(f"{a.checkpoint}: {n} validation lines, {int(batch.mask.sum()):,} points")
    for kind, bound in (("output", out_bound), ("lstm", lstm_bound)):
        g = torch.cat(seen[kind]) if seen[kind] else torch.zeros(0)
        if bound is None or g.numel() == 0:
            print(f"  {kind}: no clipping")
            continue
        g = g[g != 0]  # padding's derivatives are exactly 0: count the real points only
        what = "∂L/∂ŷ" if kind == "output" else "LSTM gate derivatives"
        over, over32 = int((g > bound).sum()), int((g > 32 * bound).sum())
        print(f"  {what}: {g.numel():,} non-zero values, max {g.max():.4g}; beyond ±{bound:g}: {over:,} "
              f"({over / g.numel():.4%}); beyond ±{32 * bound:g}: {over32:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
