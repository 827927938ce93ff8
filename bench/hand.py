"""Does a page keep one hand? How much line height, letter width and slant vary down a written page.

``graves write`` primes lines 2, 3, … of a page with line 1 so that the page keeps one hand
(``same_hand``, the default); ``--no-same-hand`` writes every line unprimed. This bench writes pages of
5 of our sentences each (``bench/sentences.txt``, 10 pages, page p with seed p) both ways and measures,
for every line: its height (the 5th to 95th percentile of its levelled y), its width per character (the
x extent over the number of characters) and its slant (the median dx/dy of its near-vertical pen-down
steps, in degrees). Printed per setting, averaged over the pages: the coefficient of variation of height
and of width per character within a page, the standard deviation of slant within a page, and the mean
height. Smaller variation means a steadier hand. Legibility is ``bench/styles.py --no-styles``'s job.

    python bench/hand.py [--model CKPT] [--pages 10] [--lines 5] [--bias B]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import legibility as L  # noqa: E402  (levelling a line, shared with the legibility bench)


def line_features(offsets: np.ndarray, text: str) -> tuple[float, float, float]:
    """(height, width per character, slant in degrees) of one line given as (dx, dy, eos) offsets."""
    o = L.level(offsets).astype(np.float64)
    pts = np.cumsum(o[:, :2], axis=0)
    lo, hi = np.percentile(pts[:, 1], [5, 95])
    down = np.r_[True, o[:-1, 2] < 0.5]  # the step into point i is drawn when the pen stayed down after i - 1
    steep = down & (np.abs(o[:, 1]) > 2 * np.abs(o[:, 0])) & (np.abs(o[:, 1]) > 1e-6)
    slant = float(np.degrees(np.arctan(np.median(o[steep, 0] / o[steep, 1])))) if steep.any() else 0.0
    return float(hi - lo), float(np.ptp(pts[:, 0]) / max(len(text), 1)), slant


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a synthesis checkpoint (default: the shipped model)")
    p.add_argument("--sentences", default=str(Path(__file__).resolve().parent / "sentences.txt"))
    p.add_argument("--pages", type=int, default=10)
    p.add_argument("--lines", type=int, default=5, help="sentences (lines) per page")
    p.add_argument("--bias", type=float, default=None, help="sampling bias (default: graves write's)")
    a = p.parse_args(argv)
    if a.lines < 2 or a.pages < 1:
        p.error("need at least one page of at least two lines")
    import graves

    sents = [s.strip() for s in Path(a.sentences).read_text(encoding="utf-8").splitlines() if s.strip()]
    if len(sents) < a.pages * a.lines:
        p.error(f"{len(sents)} sentences are too few for {a.pages} pages of {a.lines}")
    pages = ["\n".join(sents[i * a.lines:(i + 1) * a.lines]) for i in range(a.pages)]
    print(f"{a.pages} pages of {a.lines} lines, bias {'default' if a.bias is None else a.bias}")
    print(f"{'setting':<28} {'CV height':>10} {'CV width/char':>14} {'sd slant':>9} {'mean height':>12}")
    t0 = time.time()
    for same in (True, False):
        cv_h, cv_w, sd_s, mean_h = [], [], [], []
        for seed, page in enumerate(pages):
            hw = graves.write(page, model=a.model, bias=a.bias, seed=seed, same_hand=same, width=200,
                              substitute=True)
            f = np.array([line_features(o, t) for o, t in zip(hw.offsets, hw.lines) if len(o) > 10])
            cv_h.append(f[:, 0].std() / f[:, 0].mean())
            cv_w.append(f[:, 1].std() / f[:, 1].mean())
            sd_s.append(f[:, 2].std())
            mean_h.append(f[:, 0].mean())
        name = "same hand (line 1 primes)" if same else "--no-same-hand (unprimed)"
        print(f"{name:<28} {np.mean(cv_h):>10.3f} {np.mean(cv_w):>14.3f} {np.mean(sd_s):>8.1f}° {np.mean(mean_h):>12.0f}",
              flush=True)
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
