"""Make the sample sheet for checking the shipped model by eye: every sentence written at one bias.

Each line is written as ``graves write`` writes it (:data:`graves.sample.DEFAULT_CANDIDATES` candidates
race, the first to end its text is kept) and labelled with its text, and with how many tries it took when
the step cap stopped all candidates of an earlier try (``graves write`` writes such a line again,
:data:`graves.sample.DEFAULT_RETRIES` times at most). Lines are written unprimed, one generator per
line, as ``bench/legibility.py`` writes them, so the sheet shows the same kind of lines that benchmark
scores.

    python scripts/sample_sheet.py [--model CKPT] [--sentences bench/sentences.txt] [--bias 0.75]
        [-o docs/figures/sheet.png] [--seed 0] [--candidates 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from graves import render
from graves.data.alphabet import Alphabet
from graves.sample import (
    DEFAULT_BIAS,
    DEFAULT_CANDIDATES,
    DEFAULT_FINISH_STROKE,
    DEFAULT_RETRIES,
    _load_synthesizer,
    line_generators,
    synthesize,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="a synthesis checkpoint (default: the shipped model)")
    p.add_argument("--sentences", default="bench/sentences.txt", help="one sentence a line")
    p.add_argument("--bias", type=float, default=DEFAULT_BIAS)
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES)
    p.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES)
    p.add_argument("-o", "--output", default="docs/figures/sheet.png")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    model, meta, _ = _load_synthesizer(a.model)
    alphabet = Alphabet.from_dict(meta["alphabet"])
    texts = [s.strip() for s in Path(a.sentences).read_text(encoding="utf-8").splitlines() if s.strip()]
    results = synthesize(model, alphabet, texts, bias=a.bias, generator=line_generators(a.seed, len(texts)),
                         normaliser=meta["normaliser"], substitute=True, retries=a.retries,
                         candidates=a.candidates, finish_stroke=DEFAULT_FINISH_STROKE)
    labels = []
    for i, (t, r) in enumerate(zip(texts, results), 1):
        note = "" if r.attempts == 1 else f"  [try {r.attempts}]"
        note += "" if r.finished else "  [stopped by the step cap]"
        labels.append(f"{i}. {t}{note}")
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":  # grey levels only: a quarter of the RGBA file's size
        import io

        from PIL import Image  # matplotlib's own dependency

        png = render.to_png([r.offsets for r in results], labels, scale=0.09)
        Image.open(io.BytesIO(png)).convert("L").save(out, optimize=True)
    else:
        render.save(out, [r.offsets for r in results], labels=labels)
    capped = sum(not r.finished for r in results)
    retried = sum(r.attempts > 1 for r in results)
    print(f"wrote {out}: {len(texts)} lines at bias {a.bias:g}, {a.candidates} candidates, {retried} written again, "
          f"{capped} stopped by the cap")


if __name__ == "__main__":
    main()
