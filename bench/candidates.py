"""Which of K candidate lines should ``graves write`` keep? Each rule's Tesseract CER, over K seeds.

Every text (the 50 sentences of ``bench/sentences.txt`` and N testset_v transcriptions) is written K times
by the paper's plain sampler (one candidate, the end rule, ``graves write``'s retries and step cap), with
the generators ``line_generators(1000 j + seed)`` for j = 0 … K−1. Each line is read by the same OCR
set-up as ``bench/legibility.py`` (same drawing), and described by a few features:

* ``points``: how many points its kept try took, ``attempts``: which try that was (a try the step cap
  stopped is written again), ``finished``: whether any try ended by the end rule;
* ``skipped``: characters other than spaces at which the window's argmax never stood (a skipped letter);
* ``minpeak``: the smallest, over the text's characters u, of max_t φ(t, u) (how sharply the window ever
  stood on its least-read character);
* ``lifts``: pen lifts per character (more lifts: letters written apart rather than joined);
* ``nll``: the model's own mean loss per point (eq. 26, nats, normalised units, unbiased: bias 0) of the
  points the line drew, by running the net over them once more.

Then, for k = 1, 2, 4, K, each rule picks one of the first k candidates of every line and the table gives
the mean CER of the picked lines (``first``: candidate 0, the plain sampler; ``oracle``: the best by OCR,
for scale). ``fewest points (racing)`` stands for ``graves write``'s racing: it prefers candidates that
ended at their first try, then the fewest points. (Racing itself writes all k again when none of them
ended; here each candidate was retried on its own, so that case is only approximated.) Also: the mean CER
of single candidates over all K seeds, a steadier comparison of two models than one seed.

    python bench/candidates.py [--model CKPT] [--k 6] [--n 50] [--bias 0.75] [--sentences FILE ...] [--json out.json]
    python bench/candidates.py --rescore out.json     # the tables again, from a saved run, without sampling
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import legibility as L  # noqa: E402  (the OCR set-up and the data, shared with the legibility bench)


def features(result, nll: float | None = None) -> dict:
    """A candidate's features; ``result`` is an unprimed :class:`graves.sample.SynthesisResult`, ``nll`` its
    mean loss per point (:func:`log_losses`)."""
    phi = result.phi  # (T, U): the window over result.text (the line's text, after any substitution)
    U = phi.shape[1]
    if U != len(result.text):
        raise ValueError(f"expected an unprimed line: the window covers {U} characters, the text has {len(result.text)}")
    seen = np.zeros(U, bool)
    if len(phi):
        seen[phi.argmax(1)] = True
    letters = np.array([c != " " for c in result.text], bool)
    out = {"points": int(len(result.offsets)), "finished": bool(result.finished), "attempts": int(result.attempts),
           "skipped": int((~seen & letters).sum()), "minpeak": float(phi.max(0).min()) if len(phi) else 0.0,
           "lifts": float((result.offsets[:, 2] > 0.5).sum() / max(U, 1))}
    if nll is not None:
        out["nll"] = float(nll)
    return out


def log_losses(model, alphabet, normaliser, results) -> list[float]:
    """Each line's mean loss per point under the model without bias (eq. 26 in normalised units): the net
    is run once more over the points the line drew, with its text. A line with no points: inf."""
    import torch

    from graves.data.strokes import Normaliser
    from graves.nn.mixture import mixture_nll
    from graves.tasks.handwriting import make_batch

    norm = normaliser if isinstance(normaliser, Normaliser) or normaliser is None else Normaliser.from_dict(normaliser)
    offsets = [r.offsets if norm is None else norm.normalise(r.offsets) for r in results]
    drawn = [len(o) > 0 for o in offsets]
    offsets = [o if n else np.zeros((1, 3), np.float32) for o, n in zip(offsets, drawn)]  # a stand-in, not scored
    batch = make_batch(offsets, [r.text for r in results], alphabet)
    with torch.no_grad():
        y_hat, _, _ = model(batch.x, batch.c)  # (T, B, 1 + 6M)
        nll = mixture_nll(y_hat, batch.target, batch.mask).sum(0) / batch.lengths  # (B,)
    return [v if n else math.inf for v, n in zip(nll.tolist(), drawn)]  # a line with no points has no loss


RULES = {
    "first (plain sampler)": lambda c: c[0],
    "fewest points (racing)": lambda c: min(c, key=lambda r: (not r["finished"], r["attempts"], r["points"])),
    "no skipped letter, then fewest points": lambda c: min(
        c, key=lambda r: (not r["finished"], r["attempts"], r["skipped"] > 0, r["points"])),
    "largest minpeak": lambda c: min(c, key=lambda r: (not r["finished"], r["attempts"], -r["minpeak"])),
    "most pen lifts per character": lambda c: min(c, key=lambda r: (not r["finished"], r["attempts"], -r["lifts"])),
    "lowest loss per point (bias 0)": lambda c: min(c, key=lambda r: (not r["finished"], r["attempts"], r["nll"])),
    "highest loss per point (bias 0)": lambda c: min(  # a line with no points (loss inf) is last here too
        c, key=lambda r: (not r["finished"], r["attempts"], -r["nll"] if math.isfinite(r["nll"]) else math.inf)),
    "oracle (best by OCR)": lambda c: min(c, key=lambda r: r["cer"]),
}

#: The features a rule reads beyond those every saved run has (a run saved before them skips the rule).
NEEDS = {"most pen lifts per character": "lifts", "lowest loss per point (bias 0)": "nll",
         "highest loss per point (bias 0)": "nll"}


def report(records: list[dict], k_max: int) -> None:
    """The tables: for each set, single candidates over the seeds and each rule at k = 1, 2, 4, k_max."""
    ks = sorted({k for k in (1, 2, 4, k_max) if k <= k_max})
    for name in dict.fromkeys(r["set"] for r in records):
        by = defaultdict(list)
        for r in records:
            if r["set"] == name:
                by[r["line"]].append(r)
        cands = [sorted(v, key=lambda r: r["j"]) for _, v in sorted(by.items())]
        per_seed = np.array([[r["cer"] for r in c] for c in cands]).mean(0)
        lines = [r for c in cands for r in c]
        print(f"\n{name}: {len(cands)} texts; one candidate, mean CER over {len(per_seed)} seeds {per_seed.mean():.3f} "
              f"(seeds range {per_seed.min():.3f}–{per_seed.max():.3f}); ended at the first try "
              f"{np.mean([r['finished'] and r['attempts'] == 1 for r in lines]):.1%}, never "
              f"{np.mean([not r['finished'] for r in lines]):.1%}; a letter skipped in "
              f"{np.mean([r['skipped'] > 0 for r in lines]):.1%} (of ended lines "
              f"{np.mean([r['skipped'] > 0 for r in lines if r['finished']] or [0]):.1%})")
        print(f"  {'rule':<40} " + " ".join(f"{'k=' + str(k):>7}" for k in ks))
        for rule_name, rule in RULES.items():
            if rule_name in NEEDS and any(NEEDS[rule_name] not in r for r in lines):
                continue  # a run saved before the feature existed
            row = [np.mean([rule(c[:k])["cer"] for c in cands]) for k in ks]
            print(f"  {rule_name:<40} " + " ".join(f"{v:>7.3f}" for v in row))


def set_names(files: list[str]) -> list[str]:
    """A name per sentences file for the tables: its stem, or its path where two files share a stem (the
    report groups candidates by name)."""
    stems = [Path(f).stem for f in files]
    return [s if stems.count(s) == 1 else str(f) for s, f in zip(stems, files)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a synthesis checkpoint (default: the shipped model)")
    p.add_argument("--data", help="data root holding iam-ondb/ (default $GRAVES_DATA)")
    p.add_argument("--n", type=int, default=50, help="validation texts to use")
    p.add_argument("--sentences", nargs="+", default=[str(Path(__file__).resolve().parent / "sentences.txt")],
                   help="sentences files, one text a line (default: bench/sentences.txt)")
    p.add_argument("--k", type=int, default=6, help="candidates per text (seeds)")
    p.add_argument("--bias", type=float, default=None, help="sampling bias (default: graves write's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="tesseract processes at once")
    p.add_argument("--json", help="write every candidate's features and CER here")
    p.add_argument("--rescore", metavar="JSON", help="print the tables of a run saved with --json; no sampling")
    a = p.parse_args(argv)
    if a.rescore:
        saved = json.loads(Path(a.rescore).read_text(encoding="utf-8"))
        print(f"model: {saved['model']}; bias {saved['bias']:g}; {saved['k']} candidates per text (from {a.rescore})")
        report(saved["candidates"], saved["k"])
        return 0
    if a.k < 1:
        p.error("--k must be >= 1")
    L.setup_tesseract(False)
    from graves.sample import DEFAULT_BIAS, DEFAULT_RETRIES, DEFAULT_STEPS_PER_CHAR, line_generators, synthesize

    bias = DEFAULT_BIAS if a.bias is None else a.bias
    model, alphabet, normaliser, what = L.load_model(a.model)
    print(f"model: {what}; bias {bias:g}; {a.k} candidates per text")
    sets = [(n, L.read_sentences(f)) for n, f in zip(set_names(a.sentences), a.sentences)]
    val = L.validation_lines(a.data, a.n)
    if val is None:
        print("(no IAM-OnDB data found: set --data or GRAVES_DATA for the validation texts)")
    else:
        sets.append(("validation texts", [ln.text for ln in val]))
    work = Path(tempfile.mkdtemp(prefix="candidates-"))
    t0 = time.time()
    records = []
    for si, (name, texts) in enumerate(sets):
        for j in range(a.k):
            res = synthesize(model, alphabet, texts, bias=bias, generator=line_generators(1000 * j + a.seed, len(texts)),
                             normaliser=normaliser, substitute=True, retries=DEFAULT_RETRIES, candidates=1,
                             max_steps_per_char=DEFAULT_STEPS_PER_CHAR)
            sc = L.score([r.offsets for r in res], texts, work, f"{si}-{j}", a.jobs)
            nll = log_losses(model, alphabet, normaliser, res)
            for i, r in enumerate(res):
                records.append({"set": name, "line": i, "j": j, **features(r, nll[i]), "cer": sc["per_line"][i]})
    shutil.rmtree(work, ignore_errors=True)
    if a.json:  # first: the sampling is the slow part
        Path(a.json).write_text(json.dumps({"model": what, "bias": bias, "k": a.k, "seed": a.seed,
                                            "candidates": records}, indent=1))
    report(records, a.k)
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
