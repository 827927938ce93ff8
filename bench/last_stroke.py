"""What the paper's end-of-text rule cuts, and what ``finish_stroke`` draws instead.

Writes each sentences file as ``graves write`` does (the default bias, racing candidates, retries; the
file's lines in one batch with ``line_generators(seed, n)``, as ``bench/legibility.py`` writes them) twice:
with the paper's rule (``finish_stroke=0``) and with ``graves write``'s default
(:data:`graves.sample.DEFAULT_FINISH_STROKE`). The draws are the same up to the rule (checked), so the
second is the first plus what was drawn past the rule. Per file and in all:

- pen down at the rule: lines the paper's rule stopped in the middle of a stroke; "lone": of those, lines
  whose last stroke was a single point (the pen had only moved on), which the default drops;
- points to lift: for the other cut strokes, how many points the default drew to finish them (min /
  median / max);
- delayed strokes: lines that got one or more strokes begun after the rule (i-dots, t-crosses);
- at the cap: lines that drew ``finish_stroke`` points past the rule.

    python bench/last_stroke.py [--model CKPT] [--sentences bench/sentences.txt bench/sentences-heldout.txt]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def count(paper, finished, cap: int) -> dict:
    """The counts above for one file: ``paper`` and ``finished`` are the two runs' results, line by line."""
    down = lone = delayed = at_cap = 0
    to_lift = []
    for a, b in zip(paper, finished):
        n = len(a.offsets)
        tail = b.offsets[n:] if b.tail >= 0 else b.offsets[:0]
        if not np.array_equal(b.offsets[: n + min(b.tail, 0)], a.offsets[: n + min(b.tail, 0)]):
            raise AssertionError("the two runs differ before the end rule")
        pen_down = bool(n) and a.offsets[-1, 2] < 0.5
        is_lone = pen_down and (n == 1 or a.offsets[-2, 2] > 0.5)
        cut = pen_down and not is_lone  # a stroke of two points or more, cut by the rule
        ups = np.flatnonzero(tail[:, 2] > 0.5)  # pen-ups past the rule
        down += pen_down
        lone += is_lone
        if cut and len(ups):
            to_lift.append(int(ups[0]) + 1)
        # strokes begun past the rule: pen-ups past it, less the one that ended the cut stroke
        delayed += len(ups) - int(cut and len(ups) > 0) > 0
        at_cap += b.tail >= cap
    return {"lines": len(paper), "pen_down": down, "lone": lone, "to_lift": to_lift, "delayed": delayed,
            "at_cap": at_cap}


def main(argv=None) -> int:
    from graves.data.alphabet import Alphabet
    from graves.sample import (DEFAULT_BIAS, DEFAULT_CANDIDATES, DEFAULT_FINISH_STROKE, DEFAULT_RETRIES,
                               _load_synthesizer, line_generators, synthesize)

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a synthesis checkpoint (default: the shipped model)")
    p.add_argument("--sentences", nargs="+",
                   default=[str(HERE / "sentences.txt"), str(HERE / "sentences-heldout.txt")])
    p.add_argument("--bias", type=float, default=DEFAULT_BIAS)
    p.add_argument("--finish-stroke", type=int, default=DEFAULT_FINISH_STROKE)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    model, meta, _ = _load_synthesizer(a.model)
    alphabet = Alphabet.from_dict(meta["alphabet"])
    t0 = time.time()
    rows = []
    print(f"bias {a.bias:g}, {DEFAULT_CANDIDATES} candidates, finish_stroke {a.finish_stroke}")
    print(f"{'file':<24} {'lines':>5} {'pen down':>9} {'lone':>5} {'points to lift (min/median/max)':>32} "
          f"{'delayed':>8} {'at cap':>7}")

    def show(name, r):
        lift = r["to_lift"]
        span = f"{min(lift)} / {np.median(lift):g} / {max(lift)}" if lift else "-"
        print(f"{name:<24} {r['lines']:>5} {r['pen_down']:>9} {r['lone']:>5} {span:>32} {r['delayed']:>8} "
              f"{r['at_cap']:>7}")

    for file in a.sentences:
        texts = [s.strip() for s in Path(file).read_text(encoding="utf-8").splitlines() if s.strip()]
        runs = []
        for n in (0, a.finish_stroke):
            runs.append(synthesize(model, alphabet, texts, bias=a.bias, generator=line_generators(a.seed, len(texts)),
                                   normaliser=meta.get("normaliser"), substitute=True, retries=DEFAULT_RETRIES,
                                   candidates=DEFAULT_CANDIDATES, finish_stroke=n))
        r = count(*runs, a.finish_stroke)
        rows.append(r)
        show(Path(file).name, r)
    if len(rows) > 1:
        total = {k: (sum((r[k] for r in rows), []) if k == "to_lift" else sum(r[k] for r in rows)) for k in rows[0]}
        show("all", total)
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
