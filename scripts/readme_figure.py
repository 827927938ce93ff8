"""Make the README's figure: one text written at biases 0, 0.5, 0.75 (the default) and 1, and in each shipped style.

Lines are written as ``graves write`` writes them: :data:`graves.sample.DEFAULT_CANDIDATES` candidates race
and the first to end its text is kept; a line whose candidates the step cap all stopped is written again
(:data:`graves.sample.DEFAULT_RETRIES` times at most).

    python scripts/readme_figure.py [--model CKPT] [-o docs/figures/samples.png] [--seed 0]
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
    load_styles,
    synthesize,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="a synthesis checkpoint (default: the shipped model)")
    p.add_argument("-o", "--output", default="docs/figures/samples.png")
    p.add_argument("--text", default="A quick brown fox jumps over the lazy dog")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    model, meta, where = _load_synthesizer(a.model)
    alphabet = Alphabet.from_dict(meta["alphabet"])
    lines, labels = [], []
    for bias in (0.0, 0.5, DEFAULT_BIAS, 1.0):
        r = synthesize(model, alphabet, [a.text], bias=bias, generator=a.seed, normaliser=meta["normaliser"],
                       retries=DEFAULT_RETRIES, candidates=DEFAULT_CANDIDATES, finish_stroke=DEFAULT_FINISH_STROKE)[0]
        lines.append(r.offsets)
        labels.append(f"bias {bias:g}")
    styles = load_styles(where) if where is not None and (where / "styles.json").exists() else []
    for i, style in enumerate(styles):
        r = synthesize(model, alphabet, [a.text], bias=DEFAULT_BIAS, generator=a.seed, primer=style,
                       normaliser=meta["normaliser"], retries=DEFAULT_RETRIES,
                       candidates=DEFAULT_CANDIDATES, finish_stroke=DEFAULT_FINISH_STROKE)[0]
        lines.append(r.offsets)
        labels.append(f"style {i}, bias {DEFAULT_BIAS:g}")
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    render.save(out, lines, labels=labels)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
