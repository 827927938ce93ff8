"""Does a page keep one hand? How much line height, letter width and slant vary down a written page.

``graves write`` primes lines 2, 3, … of a page with line 1 so that the page keeps one hand
(``same_hand``, the default); ``--no-same-hand`` writes every line unprimed. This bench writes pages of
5 of our sentences each (``bench/sentences.txt``, 10 pages, page p with seed p) both ways and measures,
for every line: its height (the 5th to 95th percentile of its levelled y), its width per character (the
x extent over the number of characters) and its slant (the median dx/dy of its near-vertical pen-down
steps, in degrees; :func:`line_features`). Printed per setting, mean ± standard error over the pages:
the coefficient of variation of height within a page (all lines, and lines 2.. alone), line 1's height
over the rest's, the coefficient of variation of width per character, the standard deviation and the
mean of slant within a page, and the mean height. Smaller variation means a steadier hand. Legibility is ``bench/styles.py --no-styles``'s job.

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
    """(height, width per character, slant in degrees) of one line given as (dx, dy, eos) offsets.

    Slant: the pen-down steps within 30° of the line's rough slant (first pass: the median dx/dy of its
    near-vertical steps), each turned to point up, summed, and the angle of the sum from vertical, so that
    long steps count more than short ones; positive leans right (y up).
    """
    o = L.level(offsets).astype(np.float64)
    pts = np.cumsum(o[:, :2], axis=0)
    lo, hi = np.percentile(pts[:, 1], [5, 95])
    down = np.r_[True, o[:-1, 2] < 0.5]  # the step into point i is drawn when the pen stayed down after i - 1
    moves = o[down & (np.hypot(o[:, 0], o[:, 1]) > 1e-6), :2]
    up = moves * np.where(moves[:, 1] < 0, -1.0, 1.0)[:, None]  # every step turned to point up
    angle = np.degrees(np.arctan2(up[:, 0], up[:, 1]))  # from vertical, positive to the right
    steep = np.abs(angle) < 26.6
    slant = 0.0
    if steep.any():
        rough = float(np.median(angle[steep]))
        near = np.abs(angle - rough) < 30
        total = up[near].sum(0)
        slant = float(np.degrees(np.arctan2(total[0], total[1])))
    return float(hi - lo), float(np.ptp(pts[:, 0]) / max(len(text), 1)), slant


def _mean_se(values: list[float]) -> str:
    v = np.asarray(values, np.float64)
    return f"{v.mean():.3f} ± {v.std(ddof=1) / np.sqrt(len(v)):.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a synthesis checkpoint (default: the shipped model)")
    p.add_argument("--sentences", default=str(Path(__file__).resolve().parent / "sentences.txt"))
    p.add_argument("--pages", type=int, default=10)
    p.add_argument("--lines", type=int, default=5, help="sentences (lines) per page")
    p.add_argument("--bias", type=float, default=None, help="sampling bias (default: graves write's)")
    a = p.parse_args(argv)
    if a.lines < 3 or a.pages < 2:
        p.error("need at least two pages of at least three lines")
    import graves

    sents = [s.strip() for s in Path(a.sentences).read_text(encoding="utf-8").splitlines() if s.strip()]
    if len(sents) < a.pages * a.lines:
        p.error(f"{len(sents)} sentences are too few for {a.pages} pages of {a.lines}")
    pages = ["\n".join(sents[i * a.lines:(i + 1) * a.lines]) for i in range(a.pages)]
    print(f"{a.pages} pages of {a.lines} lines, bias {'default' if a.bias is None else a.bias}")
    t0 = time.time()
    for same in (True, False):
        stats: dict[str, list[float]] = {k: [] for k in ("cv_h", "cv_h_rest", "ratio", "cv_w", "sd_slant", "slant",
                                                          "height")}
        for seed, page in enumerate(pages):
            hw = graves.write(page, model=a.model, bias=a.bias, seed=seed, same_hand=same, width=200,
                              substitute=True)
            f = np.array([line_features(o, t) for o, t in zip(hw.offsets, hw.lines) if len(o) > 10])
            if len(f) < 3:
                continue  # too few drawn lines on this page to say anything about their spread
            h, w, sl = f[:, 0], f[:, 1], f[:, 2]
            stats["cv_h"].append(h.std() / h.mean())
            stats["cv_h_rest"].append(h[1:].std() / h[1:].mean())
            stats["ratio"].append(h[0] / h[1:].mean())
            stats["cv_w"].append(w.std() / w.mean())
            stats["sd_slant"].append(sl.std())
            stats["slant"].append(sl.mean())
            stats["height"].append(h.mean())
        name = "one hand (line 1 primes the rest)" if same else "--no-same-hand (every line unprimed)"
        print(f"{name} ({len(stats['cv_h'])} pages; mean ± standard error over pages):")
        print(f"  CV of line height {_mean_se(stats['cv_h'])}; over lines 2.. {_mean_se(stats['cv_h_rest'])}; "
              f"line 1 / the rest {_mean_se(stats['ratio'])}")
        print(f"  CV of width per character {_mean_se(stats['cv_w'])}")
        print(f"  sd of slant within a page {_mean_se(stats['sd_slant'])}°; mean slant {_mean_se(stats['slant'])}°; "
              f"mean line height {np.mean(stats['height']):.0f}", flush=True)
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
