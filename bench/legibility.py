"""How legible is the synthesised handwriting? Character error rate of an off-the-shelf OCR (Tesseract).

Every line, real or synthesised, is rasterised the same way (:func:`line_png`: levelled by its own
least-squares slope, scaled so that the middle 90 % of its ink's height is INK_PX pixels, drawn by the
project's renderer :func:`graves.render.to_png` with the same stroke width), read by
``tesseract IMG stdout --psm 7`` (one text line), and scored with the character error rate
CER = edit distance(OCR, reference) / len(reference), after Unicode NFKC and the project's substitution
table on both (Tesseract writes curly quotes) and with all whitespace removed from both (IAM-OnDB
transcriptions are tokenised, "Mr . Gaitskell", while the ink has no such spaces; spaces are not ink).
Each row gives the mean of the per-line CERs with its standard error, the pooled CER (all edits over all
reference characters), and how many lines the OCR read as nothing at all (an empty read scores 1.0).

Session 13 changed the drawing after a review: lines used to be scaled by their full height to 32 px,
so a sloping real line (or one with long ascenders and descenders) got smaller letters than a level,
compact generated one, which favoured the generated side by about 0.1 CER.

Reported, side by side in one run:

(a) real IAM-OnDB validation lines and their transcriptions: the OCR's own error rate on real
    handwriting. First the N lines spread evenly over ``testset_v`` whose texts (b) writes (a paired
    comparison), then, with ``--real 0`` (the default), **every** validation line: the floor to compare
    against, since one sample of 50 writers is noisy (session 16: the evenly spread 50 read 0.422, among
    the easiest of 29 such samples; all 1,438 lines read 0.476). Its standard error is grouped by form
    (lines of one form share a writer and a page), not line by line;
(b) the synthesis net writing the same N texts at biases 0, 0.5, 0.75 (``graves write``'s default), 1
    and 2 (eqs. 61–62), each line unprimed and as ``graves write`` writes it: ``--candidates`` candidates
    race and the first to end its text is kept, and a line whose candidates all hit the step cap is
    written again (up to ``--retries`` more times); and, at the default bias, one candidate (no race,
    otherwise as ``graves write``) beside it;
(c) with ``--sentences bench/sentences.txt``: the net writing our own 50 sentences (capitals, digits,
    punctuation, rare letters) at the same biases (no real counterpart). ``bench/sentences-heldout.txt``
    is a second set of 50, written in session 16 after every choice (the racing rule, the number of
    candidates, the default bias, the model) had been made on the first: measure it, do not tune on it.

Last, the comparison the legibility criterion asks for: each sentence row at the default bias minus the
floor, with the standard error of the difference (different texts and writers: not paired).

Each row also gives the pace, the median points per character of text (synthesised rows: over the lines
the end rule ended): real lines have ~21.5, and a net whose window crawls while its pen keeps drawing
shows it here before OCR does.

The model is ``--model CKPT``, else the shipped one, else a randomly initialised 3 × 400 net (CER ≈ 1: the
benchmark still runs end to end before a trained model exists). Needs Debian's ``tesseract-ocr``
(``--setup`` installs it with apt-get when ``tesseract`` is missing).

    python bench/legibility.py [--setup] [--data ROOT] [--n 50] [--real 0] [--sentences bench/sentences.txt] [--json out.json]

Batches: all N texts of a row are written in one batch, as ``graves write`` writes a page. The floats of
a batched step can differ in their last bits with the batch's size, and a line that needed a retry can
then take other strokes, so a line's own result is reproduced by the same run (same N, same texts), not
by writing it alone or with other lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

BIASES = (0.0, 0.5, 0.75, 1.0, 2.0)  # 0.75: graves write's default (graves.sample.DEFAULT_BIAS)
# The drawing: the middle 90 % of every line's levelled ink is INK_PX pixels tall, strokes STROKE_PX wide.
# Chosen as the setting, of five tried in session 13, under which Tesseract read the *real* lines best
# (CER 0.422; the others 0.431-0.512): the floor as high as this OCR allows, chosen without looking at the
# generated side (docs/results.md lists all five, both sides).
INK_PX = 40
STROKE_PX = 2.5
#: ``--drawings``: the five drawings of session 13, (ink px, pen px, levelled), to see how much the
#: comparison depends on the drawing.
DRAWINGS = ((32, 1.5, False), (32, 1.5, True), (40, 2.5, True), (48, 3.0, True), (48, 1.5, True))
LEVEL = True  # level each line before drawing it (see DRAWINGS)
RANDOM_NORMALISER = {"mean": [0.0, 0.0], "std": [20.0, 20.0]}  # for the untrained fallback net only


# ------------------------------------------------------------------------------------------ scoring


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1), two rows of dynamic programming."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def pace(lines: list[np.ndarray], texts: list[str]) -> float:
    """Median points per character of text (tokenised spaces included): real IAM-OnDB lines have ~21.5;
    a line whose window crawls while the pen keeps drawing needs far more (docs/sampling-notes.md)."""
    return float(np.median([len(o) / max(len(t), 1) for o, t in zip(lines, texts)]))


def _plain(text: str) -> str:
    """NFKC, the project's substitution table (curly quotes, dashes, ligatures → ASCII), no whitespace."""
    import unicodedata

    from graves.data.alphabet import substitute_text

    return "".join(substitute_text(unicodedata.normalize("NFKC", text)).split())


def cer(hyp: str, ref: str) -> float:
    """Character error rate, both strings made plain (:func:`_plain`)."""
    h, r = _plain(hyp), _plain(ref)
    return levenshtein(h, r) / max(len(r), 1)


def level(offsets: np.ndarray) -> np.ndarray:
    """The line rotated so that the least-squares line through its points is horizontal (a writer's
    slope is not legibility: real lines slope more than generated ones)."""
    from graves.data.strokes import offsets_to_strokes, strokes_to_offsets

    strokes = offsets_to_strokes(np.asarray(offsets, dtype=np.float64))
    pts = np.concatenate(strokes)
    if len(pts) < 2 or np.ptp(pts[:, 0]) == 0:
        return np.asarray(offsets, dtype=np.float32)
    slope = np.polyfit(pts[:, 0], pts[:, 1], 1)[0]
    c, s = np.cos(-np.arctan(slope)), np.sin(-np.arctan(slope))
    rot = np.array([[c, -s], [s, c]])
    out = strokes_to_offsets([st @ rot.T for st in strokes])
    out[0, :2] = np.asarray(offsets)[0, :2]  # the first offset (from the origin) as it was
    return out.astype(np.float32)


# ------------------------------------------------------------------------------------------ images


def line_png(offsets: np.ndarray, path: Path) -> Path:
    """Rasterise one line (raw offsets, y up) with :func:`graves.render.to_png`, what ``graves write`` uses:
    levelled (:func:`level`), scaled so that the middle 90 % of its ink's height is INK_PX pixels (the
    renderer adds its margin), strokes STROKE_PX wide."""
    from graves.data.strokes import offsets_to_strokes
    from graves.render import to_png

    offsets = np.asarray(offsets, dtype=np.float32)
    if len(offsets) == 0:
        offsets = np.zeros((1, 3), np.float32)  # an empty line: a blank image
    if LEVEL:
        offsets = level(offsets)
    pts = np.concatenate(offsets_to_strokes(offsets))
    lo, hi = np.quantile(pts[:, 1], [0.05, 0.95])
    ink_h = max(float(hi - lo), 1.0)
    path.write_bytes(to_png(offsets, stroke_width=STROKE_PX, scale=INK_PX / ink_h))
    return path


def ocr(path: Path) -> str:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    out = subprocess.run(["tesseract", str(path), "stdout", "--psm", "7", "-l", "eng"], capture_output=True,
                         text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"tesseract failed on {path}: {out.stderr.strip()}")
    return out.stdout.strip()


def grouped_se(values: list[float], groups: list[str]) -> float:
    """The standard error of the mean of ``values`` when values in one group are not independent (the
    lines of one IAM-OnDB form: one writer, one page): sqrt(Σ_g (Σ_{i∈g} (x_i − x̄))²) / n, scaled by
    G / (G − 1) for G groups (the usual cluster-robust estimate)."""
    x = np.asarray(values, dtype=np.float64)
    dev = x - x.mean()
    sums: dict[str, float] = {}
    for d, g in zip(dev, groups):
        sums[g] = sums.get(g, 0.0) + float(d)
    G = len(sums)
    if G < 2:
        return 0.0
    return float(np.sqrt(sum(v * v for v in sums.values()) * G / (G - 1)) / len(x))


def score(lines: list[np.ndarray], texts: list[str], workdir: Path, tag: str, jobs: int) -> dict:
    paths = [line_png(o, workdir / f"{tag}-{i:03d}.png") for i, o in enumerate(lines)]
    with ThreadPoolExecutor(jobs) as pool:
        hyps = list(pool.map(ocr, paths))
    cers = [cer(h, r) for h, r in zip(hyps, texts)]
    edits = sum(levenshtein(_plain(h), _plain(r)) for h, r in zip(hyps, texts))
    chars = sum(max(len(_plain(r)), 1) for r in texts)
    return {"cer": float(np.mean(cers)), "se": float(np.std(cers, ddof=1) / np.sqrt(len(cers))) if len(cers) > 1 else 0.0,
            "cer_pooled": edits / chars, "empty": sum(not _plain(h) for h in hyps), "lines": len(cers),
            "per_line": cers, "ocr": hyps, "examples": [{"ref": r, "ocr": h} for r, h in list(zip(texts, hyps))[:5]]}


# ------------------------------------------------------------------------------------------ inputs


def setup_tesseract(install: bool) -> None:
    if shutil.which("tesseract"):
        return
    if not install:
        sys.exit("tesseract not found: run with --setup (apt-get install -y tesseract-ocr) or install it yourself")
    print("installing tesseract-ocr with apt-get ...", flush=True)
    rc = subprocess.run(["apt-get", "install", "-y", "tesseract-ocr"], check=False).returncode
    if rc != 0 or not shutil.which("tesseract"):
        sys.exit("could not install tesseract-ocr (try: apt-get update && apt-get install -y tesseract-ocr)")


def load_model(path: str | None):
    import torch

    from graves.config import ModelConfig
    from graves.data.alphabet import Alphabet
    from graves.models import load_model as load
    from graves.models.handwriting import HandwritingSynthesizer
    from graves.sample import shipped_model_dir

    where = path or (shipped_model_dir() if (shipped_model_dir() / "checkpoint.json").is_file() else None)
    if where is not None:
        model, meta = load(where)
        return model, Alphabet.from_dict(meta["alphabet"]), meta.get("normaliser"), f"checkpoint {where}"
    torch.manual_seed(0)
    alphabet = Alphabet.build("full")
    model = HandwritingSynthesizer(ModelConfig(), len(alphabet)).eval()
    return model, alphabet, RANDOM_NORMALISER, "random 3x400 synthesizer (untrained: expect CER near 1)"


def validation_lines(data_root: str | None, n: int):
    """N testset_v lines spread evenly over the set (n <= 0: every line), or None when the data is not there."""
    from graves.data.iamondb import load_iamondb
    from graves.data.primer import iam_folder

    root = data_root or os.environ.get("GRAVES_DATA")
    if not root or not (iam_folder(root) / "splits").is_dir():
        return None
    lines = load_iamondb(iam_folder(root), sets=("testset_v",), progress=False)
    if n <= 0:
        return list(lines)
    idx = np.linspace(0, len(lines) - 1, min(n, len(lines))).round().astype(int)
    return [lines[i] for i in idx]


def synthesise(model, alphabet, normaliser, texts, bias, seed, retries, candidates, cap, finish):
    """The lines' offsets and a note: how many lines the end rule ended at the first try and in the end."""
    from graves.sample import line_generators, synthesize

    res = synthesize(model, alphabet, texts, bias=bias, generator=line_generators(seed, len(texts)),
                     normaliser=normaliser, substitute=True, retries=retries, candidates=candidates,
                     max_steps_per_char=cap, finish_stroke=finish)
    first = sum(r.finished and r.attempts == 1 for r in res)
    last = sum(r.finished for r in res)
    ended = [(o.offsets, t) for o, t in zip(res, texts) if o.finished]
    speed = f"; {pace(*zip(*ended)):.1f} points/char in ended lines" if ended else ""
    return [r.offsets for r in res], f"({first} ended by the end rule at the first try, {last} in the end{speed})"


def read_sentences(path: str | Path) -> list[str]:
    """The non-blank lines of a sentences file, stripped."""
    return [s.strip() for s in Path(path).read_text(encoding="utf-8").splitlines() if s.strip()]


# ------------------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setup", action="store_true", help="apt-get install tesseract-ocr if it is missing")
    p.add_argument("--model", help="a synthesis checkpoint (default: the shipped model, else a random one)")
    p.add_argument("--data", help="data root holding iam-ondb/ (default $GRAVES_DATA)")
    p.add_argument("--n", type=int, default=50, help="validation texts to write (and their real lines)")
    p.add_argument("--real", type=int, default=0,
                   help="real validation lines for the floor, spread evenly (0: every line, the default; "
                        "-1: none, only the N lines of the written texts)")
    p.add_argument("--sentences", nargs="+", default=[],
                   help="also write these sentences (one a line), e.g. bench/sentences.txt bench/sentences-heldout.txt")
    p.add_argument("--biases", type=float, nargs="+", default=list(BIASES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retries", type=int, default=None, help="tries after a capped line (default: graves write's)")
    p.add_argument("--candidates", type=int, default=None, help="candidates raced per line (default: graves write's)")
    p.add_argument("--cap", type=int, default=None,
                   help="step cap in points per character (default: graves write's); raise it to see a slow net's pace")
    p.add_argument("--finish-stroke", type=int, default=None,
                   help="points drawn at most to finish the stroke the end rule cut (default: graves write's; "
                        "0: the paper's rule)")
    p.add_argument("--jobs", type=int, default=2, help="tesseract processes at once")
    p.add_argument("--keep", help="keep the line images in this folder")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--drawings", action="store_true",
                   help="score the same lines under each of DRAWINGS (real lines, and the default bias only)")
    a = p.parse_args(argv)
    setup_tesseract(a.setup)
    if a.retries is None:
        from graves.sample import DEFAULT_RETRIES

        a.retries = DEFAULT_RETRIES
    if a.candidates is None:
        from graves.sample import DEFAULT_CANDIDATES

        a.candidates = DEFAULT_CANDIDATES
    if a.cap is None:
        from graves.sample import DEFAULT_STEPS_PER_CHAR

        a.cap = DEFAULT_STEPS_PER_CHAR
    if a.finish_stroke is None:
        from graves.sample import DEFAULT_FINISH_STROKE

        a.finish_stroke = DEFAULT_FINISH_STROKE
    from graves.sample import DEFAULT_BIAS

    # (bias, candidates) settings: every bias as graves write writes it, and the plain sampler at the default
    settings = [(b, a.candidates) for b in a.biases]
    if a.candidates != 1 and DEFAULT_BIAS in a.biases:
        settings.insert(a.biases.index(DEFAULT_BIAS) + 1, (DEFAULT_BIAS, 1))
    model, alphabet, normaliser, what = load_model(a.model)
    print(f"model: {what}")
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="legibility-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    floor = None

    def report(source, bias, k, res, extra=""):
        rows.append({"source": source, "bias": bias, "candidates": k, **res, **({"note": extra} if extra else {})})
        b = "-" if bias is None else f"{bias:g}"
        print(f"{source:<32} {b:>5} {k or '-':>4} {res['lines']:>6} {res['cer']:>7.3f} ±{res['se']:.3f} "
              f"{res['cer_pooled']:>7.3f} {res['empty']:>6}  {extra}", flush=True)

    print(f"{'source':<32} {'bias':>5} {'cand':>4} {'lines':>6} {'CER':>7} {'± se':>6} {'pooled':>7} {'empty':>6}")
    t0 = time.time()
    val = None if a.drawings else validation_lines(a.data, a.n)
    if a.drawings:
        _drawings(a, model, alphabet, normaliser, work, report)
    if val is None and not a.drawings:
        print("(no IAM-OnDB data found: set --data or GRAVES_DATA for parts (a) and (b))")
    elif val is not None:
        texts = [ln.text for ln in val]
        report("IAM testset_v (real)", None, None,
               score([ln.offsets for ln in val], texts, work, "real", a.jobs),
               f"({pace([ln.offsets for ln in val], texts):.1f} points/char; the N lines of the texts below)")
        if a.real >= 0:
            every = validation_lines(a.data, a.real)
            res = score([ln.offsets for ln in every], [ln.text for ln in every], work, "real-all", a.jobs)
            res["se_lines"], res["se"] = res["se"], grouped_se(res["per_line"], [ln.form for ln in every])
            res["forms"] = len({ln.form for ln in every})
            report("IAM testset_v (real, floor)", None, None, res,
                   f"({res['forms']} forms; ± is grouped by form, {res['se_lines']:.3f} line by line)")
            floor = res
        for b, k in settings:
            lines, note = synthesise(model, alphabet, normaliser, texts, b, a.seed, a.retries, k, a.cap, a.finish_stroke)
            report("synthesised, same texts", b, k, score(lines, texts, work, f"val-b{b:g}-k{k}", a.jobs), note)
    for file in [] if a.drawings else a.sentences:
        sents = read_sentences(file)
        name = "sentences" if Path(file).name == "sentences.txt" else Path(file).stem
        for b, k in settings:
            lines, note = synthesise(model, alphabet, normaliser, sents, b, a.seed, a.retries, k, a.cap, a.finish_stroke)
            report(f"synthesised, {name}", b, k, score(lines, sents, work, f"{name}-b{b:g}-k{k}", a.jobs), note)
    if floor is not None:
        for r in rows:
            if r["source"].startswith("synthesised") and r["bias"] == DEFAULT_BIAS and r["candidates"] == a.candidates:
                d, se = r["cer"] - floor["cer"], float(np.hypot(r["se"], floor["se"]))
                verdict = "no worse than real lines" if d <= 0 else "worse than real lines"
                print(f"{r['source']} (bias {DEFAULT_BIAS:g}) minus the floor: {d:+.3f} ± {se:.3f} ({verdict}; "
                      f"{abs(d) / se:.1f} standard errors)")
                r["minus_floor"], r["minus_floor_se"] = d, se
    print(f"({time.time() - t0:.0f} s; images in {work})")
    if a.json:
        Path(a.json).write_text(json.dumps({"model": what, "rows": rows, "ink_px": INK_PX,
                                            "stroke_px": STROKE_PX, "retries": a.retries, "cap": a.cap,
                                            "candidates": a.candidates, "finish_stroke": a.finish_stroke},
                                           indent=2))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _drawings(a, model, alphabet, normaliser, work: Path, report) -> int:
    """``--drawings``: synthesise once (default bias, ``--candidates``), then score the real lines, the
    generated validation texts and (with ``--sentences``) the generated sentences under every drawing."""
    global INK_PX, STROKE_PX, LEVEL
    from graves.sample import DEFAULT_BIAS

    val = validation_lines(a.data, a.n)
    if val is None:
        sys.exit("--drawings needs the IAM-OnDB data (--data or GRAVES_DATA)")
    texts = [ln.text for ln in val]
    sets = [("IAM testset_v (real)", [ln.offsets for ln in val], texts)]
    lines, _ = synthesise(model, alphabet, normaliser, texts, DEFAULT_BIAS, a.seed, a.retries, a.candidates, a.cap, a.finish_stroke)
    sets.append(("synthesised, same texts", lines, texts))
    if a.sentences:  # the first file
        sents = read_sentences(a.sentences[0])
        lines, _ = synthesise(model, alphabet, normaliser, sents, DEFAULT_BIAS, a.seed, a.retries, a.candidates, a.cap, a.finish_stroke)
        sets.append(("synthesised, sentences", lines, sents))
    kept = (INK_PX, STROKE_PX, LEVEL)
    try:
        for INK_PX, STROKE_PX, LEVEL in DRAWINGS:
            print(f"-- drawing: middle 90 % of height {INK_PX} px, pen {STROKE_PX} px, "
                  f"{'levelled' if LEVEL else 'as written'}")
            for name, lines, t in sets:
                tag = f"{name.split()[-1].strip('()')}-{INK_PX}-{STROKE_PX}-{int(LEVEL)}"  # real, texts, sentences
                report(name, None if "real" in name else DEFAULT_BIAS, None if "real" in name else a.candidates,
                       score(lines, t, work, tag, a.jobs), f"(drawing {INK_PX}/{STROKE_PX}/{'levelled' if LEVEL else 'as written'})")
    finally:
        INK_PX, STROKE_PX, LEVEL = kept
    return 0


if __name__ == "__main__":
    sys.exit(main())
