"""How fast does ``graves write`` write a line on CPU?

Times :func:`graves.sample.synthesize` writing a 40-character line, at batch 1 (seconds per line) and at
batch 8 (seconds per line = batch time / 8), with the shipped model when it exists, else a randomly
initialised synthesis net of the paper's size (3 × 400 cells, M = 20, K = 10, the full alphabet: the same
cost per step as a trained one). So that every run does the same work, the end-of-text rule is switched
off and every line runs for exactly 25 steps per character (1000 steps for 40 characters; IAM-OnDB lines
have ~22 points per character, the shipped model at its default bias ~25–29, so this is about a real
line). Each setting is run ``--reps`` times after one warm-up; the median is reported, as wall-clock
time and as this process's CPU time (on a machine shared with other work the wall time includes
waiting for a core; with one thread the CPU time is what the line costs on an idle machine). Side by
side in the same run: the fused sampling path against the models' own ``step`` (the reference, batch
1), and, with ``--threads 1 0``, one thread against torch's default (several threads only pay on an
idle machine).

Then the line as ``graves write`` writes it: end-of-text rule on, the default bias, retries and racing
candidates (:data:`graves.sample.DEFAULT_CANDIDATES`), one thread, over ``--reps`` seeds (the time varies
with how quickly a line ends), side by side with one candidate (the paper's plain sampler).

Last, a paragraph (:data:`PARAGRAPH`, 6 lines of up to 50 characters) through :func:`graves.write`, the
way ``graves write`` writes a text: all six lines in one batch of 6 lines × the racing candidates. Settings
are interleaved rep by rep: the default ``"auto"`` (one thread), torch's default thread count, and
``same_hand=True`` (``--same-hand``: the first line alone, then the other five primed by it).

Target: at most 1 s per 40-character line at batch 1 (fused path).

    python bench/sample_speed.py [--reps 5] [--model CKPT] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

TEXT = "The quick brown fox jumps over 2 lazy dogs"[:40]
PARAGRAPH = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
             "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of "
             "Light, it was the season of Darkness, it was the spring of hope, it was the winter of despair.")
STEPS_PER_CHAR = 25


def build_model(path: str | None):
    from graves.config import ModelConfig
    from graves.data.alphabet import Alphabet
    from graves.models import load_model
    from graves.models.handwriting import HandwritingSynthesizer
    from graves.sample import shipped_model_dir

    where = path or (shipped_model_dir() if (shipped_model_dir() / "checkpoint.json").is_file() else None)
    if where is not None:
        model, meta = load_model(where)
        return model, Alphabet.from_dict(meta["alphabet"]), f"checkpoint {where}", meta
    torch.manual_seed(0)
    alphabet = Alphabet.build("full")
    model = HandwritingSynthesizer(ModelConfig(hidden_size=400, num_layers=3, mixtures=20, window_mixtures=10),
                                   len(alphabet)).eval()
    meta = {"config": {"model": {"kind": "synthesis"}}, "alphabet": alphabet.to_dict()}
    return model, alphabet, "random 3x400, M=20, K=10 synthesizer (no shipped model yet)", meta


def time_once(model, alphabet, batch: int, fast: bool, threads) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to write ``batch`` lines."""
    from graves.sample import line_generators, synthesize

    gens = line_generators(0, batch)
    t0, c0 = time.perf_counter(), time.process_time()
    res = synthesize(model, alphabet, [TEXT] * batch, bias=0.5, generator=gens, max_steps_per_char=STEPS_PER_CHAR,
                     fast=fast, threads=threads, end_rule=False)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    assert all(len(r.offsets) == STEPS_PER_CHAR * len(TEXT) for r in res)
    return dt, dc


def time_write(model, alphabet, seed: int, candidates: int) -> tuple[float, int]:
    """(wall seconds, points written) for TEXT as ``graves write`` writes it, one thread."""
    from graves.sample import DEFAULT_BIAS, DEFAULT_FINISH_STROKE, DEFAULT_RETRIES, line_generators, synthesize

    t0 = time.perf_counter()
    r = synthesize(model, alphabet, [TEXT], bias=DEFAULT_BIAS, generator=line_generators(seed, 1), threads=1,
                   retries=DEFAULT_RETRIES, candidates=candidates, finish_stroke=DEFAULT_FINISH_STROKE)[0]
    return time.perf_counter() - t0, len(r.offsets)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--model", help="a synthesis checkpoint (default: the shipped model, else a random one)")
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="thread counts to compare (0: torch's default); more threads only pay on an idle machine")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--paragraph-only", action="store_true", help="only the paragraph's thread comparison")
    a = p.parse_args(argv)
    model, alphabet, what, meta = build_model(a.model)
    default_threads = torch.get_num_threads()
    print(f"model: {what}; text: {len(TEXT)} characters x {STEPS_PER_CHAR} steps = {len(TEXT) * STEPS_PER_CHAR} steps")
    print(f"torch {torch.__version__}, default threads {default_threads}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} (other work on the machine slows every number); median of {a.reps} reps after a warm-up")
    rows = []
    for fast in (() if a.paragraph_only else (True, False)):
        for threads in a.threads:
            th = threads or default_threads
            for batch in ((1, 8) if fast else (1,)):
                time_once(model, alphabet, batch, fast, th)  # warm-up
                runs = [time_once(model, alphabet, batch, fast, th) for _ in range(a.reps)]
                med = statistics.median(w for w, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                rows.append({"path": "fused" if fast else "model.step", "threads": th, "batch": batch,
                             "seconds_per_batch": med, "seconds_per_line": med / batch,
                             "cpu_seconds_per_line": cpu / batch,
                             "ms_per_step": med / (len(TEXT) * STEPS_PER_CHAR) * 1e3, "all": runs})
                r = rows[-1]
                print(f"{r['path']:>10}  threads {th}  batch {batch}:  {r['seconds_per_line']:.3f} s/line wall, "
                      f"{r['cpu_seconds_per_line']:.3f} s/line CPU  ({r['ms_per_step']:.2f} ms/step, batch {med:.3f} s)",
                      flush=True)
    from graves.sample import DEFAULT_CANDIDATES

    write_rows = []
    for k in (() if a.paragraph_only else sorted({1, DEFAULT_CANDIDATES})):
        time_write(model, alphabet, 10_000, k)  # warm-up
        runs = [time_write(model, alphabet, seed, k) for seed in range(a.reps)]
        walls = [w for w, _ in runs]
        write_rows.append({"candidates": k, "median_seconds": statistics.median(walls), "max_seconds": max(walls),
                           "median_points": statistics.median(n for _, n in runs), "all": runs})
        r = write_rows[-1]
        print(f"as graves write writes it, {k} candidate(s): {r['median_seconds']:.3f} s/line median, "
              f"{r['max_seconds']:.3f} s max over {a.reps} seeds ({r['median_points']:.0f} points median)", flush=True)
    import graves

    settings = [("auto (one)", "auto", False), (f"torch default ({default_threads})", default_threads, False),
                ("auto (one), same hand", "auto", True)]
    graves.write(PARAGRAPH, model=(model, meta))  # warm-up
    para = {label: [] for label, _, _ in settings}
    for seed in range(a.reps):
        for label, threads, same in settings:
            t0 = time.perf_counter()
            hw = graves.write(PARAGRAPH, model=(model, meta), seed=seed, threads=threads, same_hand=same)
            para[label].append(time.perf_counter() - t0)
    para_rows = [{"threads": label, "median_seconds": statistics.median(v), "max_seconds": max(v), "all": v}
                 for label, v in para.items()]
    one = statistics.median(para["auto (one)"])
    for r in para_rows:
        print(f"a {len(hw.lines)}-line paragraph through graves.write, threads {r['threads']}: "
              f"{r['median_seconds']:.2f} s median, {r['max_seconds']:.2f} s max "
              f"({r['median_seconds'] / one:.2f}x one thread)", flush=True)
    ok = None
    if rows:
        best = min(r["seconds_per_line"] for r in rows if r["batch"] == 1 and r["path"] == "fused")
        ok = best <= 1.0
        print(f"target <= 1 s per 40-character line at batch 1: {'met' if ok else 'NOT met'} ({best:.3f} s)")
    print(f"load average now {os.getloadavg()[0]:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": what, "text_chars": len(TEXT), "steps_per_char": STEPS_PER_CHAR,
                       "reps": a.reps, "rows": rows, "write": write_rows, "paragraph": para_rows,
                       "target_met": ok}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
