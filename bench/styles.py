"""How legible is each style? Tesseract CER of our sentences written primed by each style of a styles file.

``graves write --style N`` primes every line with style N, a line the model wrote itself. Priming sets the
hand, and a hand can be harder to read than the model's unprimed writing. This bench writes the sentences
of ``bench/sentences.txt`` as ``graves write`` writes them (the default bias, racing candidates, retries),
once unprimed, once as a page's later lines are written (``page``: sentence i primed by the unprimed
line of sentence i − 1, sentence 0 by the last one, as ``graves write --same-hand`` primes lines 2, 3, …
with line 1), and once primed by each style. It reads every line with the OCR set-up of
``bench/legibility.py`` (same drawing) and prints one row per style: its seed, the CER ± standard error,
how many lines ended at the first try, the pen's pace in points per character, and the mean paired
difference from the unprimed lines. Use it to choose the
seeds to keep when making styles (``graves styles make --seeds 0 1 … 11 --out all.json``, then
``python bench/styles.py --styles all.json``); legibility by eye and by OCR can disagree.

    python bench/styles.py [--model CKPT] [--styles FILE] [--no-styles] [--n 50] [--bias B] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import legibility as L  # noqa: E402  (the OCR set-up, shared with the legibility bench)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a synthesis checkpoint (default: the shipped model)")
    p.add_argument("--styles", help="a styles file (default: the one beside the model)")
    p.add_argument("--no-styles", action="store_true", help="only the unprimed and the page rows")
    p.add_argument("--sentences", default=str(Path(__file__).resolve().parent / "sentences.txt"))
    p.add_argument("--n", type=int, default=50, help="how many of the sentences to write")
    p.add_argument("--bias", type=float, default=None, help="sampling bias (default: graves write's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="tesseract processes at once")
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args(argv)
    L.setup_tesseract(False)
    from graves.data.primer import Primer
    from graves.sample import (DEFAULT_BIAS, DEFAULT_CANDIDATES, DEFAULT_FINISH_STROKE, DEFAULT_RETRIES, line_generators, load_styles,
                               shipped_model_dir, synthesize)

    bias = DEFAULT_BIAS if a.bias is None else a.bias
    model, alphabet, normaliser, what = L.load_model(a.model)
    model_dir = None if a.model is None else Path(a.model) if Path(a.model).is_dir() else Path(a.model).parent
    where = Path(a.styles) if a.styles else model_dir or shipped_model_dir()
    if a.no_styles:
        styles, seeds, raw_file = [], [], None
    else:
        styles = load_styles(where)
        raw_file = where if where.is_file() else where / "styles.json"
        seeds = [s.get("seed") for s in json.loads(raw_file.read_text(encoding="utf-8"))]
    texts = L.read_sentences(a.sentences)[: a.n]
    if len(texts) < 2:
        p.error("need at least two sentences")
    print(f"model: {what}; styles: {raw_file or 'none'}; bias {bias:g}; {len(texts)} sentences")
    print(f"{'style':>6} {'seed':>5} {'CER':>7} {'± se':>6} {'first try':>10} {'points/char':>12} {'vs none':>14}")
    work = Path(tempfile.mkdtemp(prefix="styles-"))
    t0 = time.time()
    rows = []
    unprimed = None
    runs = [("none", None, None), ("page", None, "page")] + [(str(i), seeds[i], s) for i, s in enumerate(styles)]
    for name, seed, primer in runs:
        if primer == "page":  # sentence i primed by the unprimed line of sentence i - 1
            primer = [Primer(unprimed[i - 1].offsets, texts[i - 1], "line 1") for i in range(len(texts))]
        res = synthesize(model, alphabet, texts, bias=bias, generator=line_generators(a.seed, len(texts)),
                         normaliser=normaliser, substitute=True, retries=DEFAULT_RETRIES,
                         candidates=DEFAULT_CANDIDATES, primer=primer, finish_stroke=DEFAULT_FINISH_STROKE)
        if name == "none":
            unprimed = res
        sc = L.score([r.offsets for r in res], texts, work, f"style-{name}", a.jobs)
        first = sum(r.finished and r.attempts == 1 for r in res)
        ended = [(r.offsets, t) for r, t in zip(res, texts) if r.finished]
        pace = L.pace(*map(list, zip(*ended))) if ended else float("nan")
        if name == "none":
            base = np.array(sc["per_line"])
            diff, diff_se, vs = 0.0, 0.0, "-"
        else:
            d = np.array(sc["per_line"]) - base
            diff, diff_se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))
            vs = f"{diff:+.3f} ±{diff_se:.3f}"
        never = sum(not r.finished for r in res)
        rows.append({"style": name, "seed": seed, "cer": sc["cer"], "se": sc["se"], "first_try": first,
                     "never_ended": never, "lines": len(texts), "points_per_char": pace, "diff": diff,
                     "diff_se": diff_se})
        print(f"{name:>6} {'-' if seed is None else seed:>5} {sc['cer']:>7.3f} ±{sc['se']:.3f} "
              f"{first:>6}/{len(texts):<3} {pace:>12.1f} {vs:>14}" + (f"  ({never} never ended)" if never else ""),
              flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(f"({time.time() - t0:.0f} s)")
    if a.json:
        Path(a.json).write_text(json.dumps({"model": what, "styles": str(raw_file) if raw_file else None,
                                            "bias": bias, "rows": rows},
                                           indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
