"""Does a page keep one hand? How much line height, letter width and slant vary down a written page.

``graves write`` writes every line of a page unprimed (the default, as the paper samples), or with
``--same-hand`` (``same_hand=True``) primes lines 2, 3, … with line 1 so that the page keeps one hand.
This bench writes pages of 5 of our sentences each (``bench/sentences.txt``, 10 pages, page p with seed
p) both ways and measures, for every line: its height (the 5th to 95th percentile of its levelled y), its
width per character (the x extent over the number of characters) and its slant (the angle from vertical
of its near-vertical pen-down steps, in degrees; :func:`line_features`). Printed per setting, mean ± standard error over the pages:
the coefficient of variation of height within a page (all lines, and lines 2.. alone), line 1's height
over the rest's, the coefficient of variation of width per character, the standard deviation and the
mean of slant within a page, and the mean height. Smaller variation means a steadier hand. Legibility is ``bench/styles.py --no-styles``'s job.

``--along`` asks instead whether a line keeps its size from start to end: the height of the first, middle
and last third of each line (:func:`height_along`), for the real testset_v lines (split by whether they
start with a capital) and for the model's unprimed lines of our sentences, as written and lower-cased.

    python bench/hand.py [--model CKPT] [--pages 10] [--lines 5] [--bias B]
    python bench/hand.py --along [--n 50] [--data ../shared/data]
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


def height_along(offsets: np.ndarray, parts: int = 3) -> list[float]:
    """The height (5th to 95th percentile of the levelled y) of each of ``parts`` slices of a line that
    split its x extent at the quantiles of x, so each slice holds about as many points."""
    pts = np.cumsum(L.level(offsets).astype(np.float64)[:, :2], axis=0)
    x, y = pts[:, 0], pts[:, 1]
    cuts = np.percentile(x, np.linspace(0, 100, parts + 1))
    out = []
    for k in range(parts):
        lo, hi = np.percentile(y[(x >= cuts[k]) & (x <= cuts[k + 1])], [5, 95])
        out.append(float(hi - lo))
    return out


def _along(a, sents: list[str]) -> int:
    """``--along``: does a line keep its size from start to end? Real validation lines against the model's."""
    import warnings

    import graves

    def show(name: str, lines: list[np.ndarray]) -> None:
        v = np.array([height_along(o) for o in lines if len(o) > 10])
        r = v[:, 2] / v[:, 0]
        print(f"  {name}: {len(v)} lines; height of the first, middle, last third "
              f"{' / '.join(f'{x:.0f}' for x in v.mean(0))}; last / first {_mean_se(list(r))}", flush=True)

    t0 = time.time()
    real = L.validation_lines(a.data, 10**6)
    if real is None:
        print("real lines: no IAM-OnDB data (--data or GRAVES_DATA); skipped")
    else:
        print("real testset_v lines:")
        show("starting with a capital", [ln.offsets for ln in real if ln.text[:1].isupper()])
        show("starting with anything else", [ln.offsets for ln in real if not ln.text[:1].isupper()])
    texts = sents[: a.n]
    print(f"the model, unprimed, bias {'default' if a.bias is None else a.bias}, seed 0, {len(texts)} of our sentences:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, tx in (("as written", texts), ("lower-cased", [t.lower() for t in texts])):
            hw = graves.write("\n".join(tx), model=a.model, bias=a.bias, seed=0, width=400, substitute=True)
            show(name, [r.offsets for r in hw.results if r.finished])
    print(f"({time.time() - t0:.0f} s)")
    return 0


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
    p.add_argument("--along", action="store_true",
                   help="instead: the height of the first, middle and last third of each line, for real "
                        "validation lines and for the model's unprimed lines of --n sentences")
    p.add_argument("--n", type=int, default=50, help="--along: sentences to write")
    p.add_argument("--data", help="--along: the data root (default: $GRAVES_DATA)")
    a = p.parse_args(argv)
    sents = L.read_sentences(a.sentences)
    if a.along:
        return _along(a, sents)
    if a.lines < 3 or a.pages < 2:
        p.error("need at least two pages of at least three lines")
    import graves

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
