"""The ``graves`` command: a thin layer over the library.

    graves write "text" [-o out.svg|.png|.pdf|.json] [--bias B] [--style N | --prime FILE --prime-text TEXT] ...
    graves styles make [--model CKPT] [--seeds ...] [--preview sheet.png] | graves styles show -o sheet.png
    graves serve [--host 127.0.0.1] [--port 8000] [--model CKPT]      (the web page; pip install -e '.[web]')
    graves train CONFIG.toml [section.key=value ...] [--run-dir DIR] [--resume]
    graves eval CKPT [--split valid|test] [--dynamic]
    graves info CKPT|RUN_DIR ... [--json]
    graves sample CKPT [...]
    graves plot density|window CKPT [...] | graves plot curves RUN_DIR... -o curves.png
    graves data download ptb|enwik8 | graves data check | graves data pack [-o iamondb.pack.npz]

Every error that a user can cause (a bad config key, a missing dataset, an unknown character, a damaged
checkpoint) is reported as one line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _data_root(arg: str | None) -> str:
    return arg or os.environ.get("GRAVES_DATA") or "data"


def _cmd_train(a: argparse.Namespace) -> int:
    from graves.config import load_config
    from graves.train import train

    cfg = load_config(a.config, a.overrides)
    if a.data:
        cfg = cfg.override([f"data.root={json.dumps(a.data)}"])
    run_dir = Path(a.run_dir) if a.run_dir else Path("runs") / cfg.name
    summary = train(cfg, run_dir, resume=a.resume, progress=not a.quiet)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _cmd_eval(a: argparse.Namespace) -> int:
    from graves.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(a.checkpoint, split=a.split, dynamic=a.dynamic, data_root=a.data,
                                  progress=not a.quiet, overrides=a.overrides)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_sample(a: argparse.Namespace) -> int:
    from graves.checkpoint import config_of, load_meta
    from graves.sample import SampleError

    model_cfg = config_of(load_meta(a.checkpoint), a.checkpoint).get("model")
    kind = model_cfg.get("kind", "synthesis") if isinstance(model_cfg, dict) else None
    given = {opt for opt, v in (("--length", a.length), ("--temperature", a.temperature), ("--prime", a.prime),
                                ("--steps", a.steps), ("--bias", a.bias), ("--lines", a.lines), ("--text", a.text),
                                ("--animate", a.animate)) if v is not None}
    applies = {"text": {"--length", "--temperature", "--prime"}, "handwriting": {"--steps", "--bias", "--lines", "--animate"},
               "synthesis": {"--text", "--bias", "--lines", "--animate"}}.get(kind, set())
    if given - applies:  # an option parsed and then ignored would mislead
        raise SampleError(f"{', '.join(sorted(given - applies))}: not for {a.checkpoint}, a {kind} model (its options: "
                          f"{', '.join(sorted(applies)) or 'none'})")
    if kind == "text":
        from graves.render import check_writable, write_file
        from graves.tasks.text import sample_text_checkpoint

        if a.output:
            check_writable(a.output)
        text = sample_text_checkpoint(a.checkpoint, length=1000 if a.length is None else a.length,
                                      temperature=1.0 if a.temperature is None else a.temperature,
                                      prime=a.prime or "", seed=a.seed)
        if a.output:
            write_file(a.output, text.encode("utf-8"))
            print(f"wrote {a.output}", file=sys.stderr)
        else:
            sys.stdout.write(text + "\n")
        return 0
    from graves.data.alphabet import UnknownCharacterError
    from graves.sample import sample_checkpoint_to_file

    try:
        out = sample_checkpoint_to_file(a.checkpoint, a.output or "sample.svg",
                                        steps=700 if a.steps is None else a.steps, bias=a.bias or 0.0, seed=a.seed,
                                        lines=4 if a.lines is None else a.lines, text=a.text, animate=a.animate)
    except UnknownCharacterError as exc:
        raise _no_substitute_here(exc) from None
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _render_options(a: argparse.Namespace) -> dict:
    """The drawing options given on the command line (the renderers' defaults for the others)."""
    out: dict = {}
    if a.colour is not None:
        out["colour"] = a.colour
    if a.stroke_width is not None:
        out["stroke_width"] = a.stroke_width
    if a.background is not None:
        out["background"] = None if a.background.lower() in ("none", "transparent") else a.background
    if a.animate is not None:
        out["animate"] = a.animate
    return out


def _read_stdin_text() -> str:
    """Standard input as UTF-8 text (``graves write -``); anything else is a one-line error."""
    from graves.sample import SampleError

    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SampleError(f"standard input is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def _cmd_write(a: argparse.Namespace) -> int:
    from graves.sample import write_to_files

    outputs = a.output or ["handwriting.svg", "handwriting.png"]
    text = _read_stdin_text() if a.text == "-" else a.text
    written = write_to_files(text, outputs, model=a.model, bias=a.bias, seed=a.seed, width=a.width,
                             style=a.style, prime=a.prime, prime_text=a.prime_text,
                             substitute=a.substitute, data_root=a.data,
                             **({} if a.retries is None else {"retries": a.retries}),
                             **({} if a.candidates is None else {"candidates": a.candidates}),
                             **({} if a.finish_stroke is None else {"finish_stroke": a.finish_stroke}),
                             render=_render_options(a), same_hand=a.same_hand)
    for p in written:
        print(f"wrote {p}", file=sys.stderr)
    return 0


def _cmd_styles(a: argparse.Namespace) -> int:
    from graves import sample
    from graves.render import check_writable

    if a.action == "show":
        outputs = sample._check_outputs(a.output)  # suffixes and permissions, before any sampling
        styles = sample.load_styles(a.styles or a.model)
        text, bias = sample.STYLE_SHEET_TEXT if a.text is None else a.text, a.bias
    else:
        if a.texts and len(a.texts) != len(a.seeds):
            raise sample.SampleError(f"{len(a.texts)} texts for {len(a.seeds)} seeds")
        if not (a.model or a.out):
            raise sample.SampleError("the shipped model's styles are part of the package: give --out FILE "
                                     "(or --model CKPT, to make your own model's styles.json)")
        if not a.out:  # writes into the checkpoint's folder: a writer, so it puts a .NAME.old back first
            from graves.checkpoint import recover

            recover(a.model)
        out = check_writable(a.out or Path(a.model) / "styles.json")
        outputs = sample._check_outputs([a.preview]) if a.preview else []
        # seed s writes built-in sentence s mod 4, so a style depends on its seed alone: make eight, look,
        # then make again with the seeds worth keeping
        texts = a.texts or [sample.STYLE_TEXTS[s % len(sample.STYLE_TEXTS)] for s in a.seeds]
        net, meta, _ = sample._cached_synthesizer(a.model)
        made = sample.make_styles(net, meta, texts, a.seeds, bias=sample._check_bias(a.bias))
        if not made:
            raise sample.SampleError(f"no line of seeds {a.seeds} ended its text; nothing written: try other seeds")
        sample.save_styles(made, out)
        dropped = [s for s in a.seeds if s not in {m["seed"] for m in made}]
        print(f"wrote {out}: " + ", ".join(f"style {i} from seed {m['seed']}" for i, m in enumerate(made))
              + (f"; seeds {dropped} did not end their text and were dropped" if dropped else ""), file=sys.stderr)
        from graves.data.alphabet import Alphabet

        text = sample.STYLE_SHEET_TEXT  # or, for a model without its characters, the first style's line
        text = made[0]["text"] if Alphabet.from_dict(meta["alphabet"]).unknown_characters(text) else text
        styles, bias = sample.load_styles(out), None
    if outputs:
        sheet = sample.style_sheet(styles, text, model=a.model, bias=bias, seed=a.seed)
        for p in outputs:
            print(f"wrote {sheet.save(p)}: a line in each style, labelled", file=sys.stderr)
        if sheet.unfinished:
            late = sorted({sheet.labels[i - 1] for i in sheet.unfinished}, key=lambda s: int(s.split()[-1]))
            print(f"graves: warning: {', '.join(late)} did not reach the end of the line in the step cap",
                  file=sys.stderr)
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    from graves.checkpoint import CheckpointError, describe, format_description

    found = []
    for p in map(Path, a.checkpoints):
        inside = [p / w for w in ("best", "last") if (p / w / "checkpoint.json").is_file()]
        if p.is_dir() and not (p / "checkpoint.json").exists() and inside:
            found += inside  # a run folder: its best and last checkpoints
        elif p.is_dir() and not (p / "checkpoint.json").exists():
            raise CheckpointError(f"{p} is neither a checkpoint nor a run folder with best/ or last/")
        else:
            found.append(p)
    described = [describe(p) for p in found]
    if a.json:
        print(json.dumps(described if len(described) > 1 else described[0], indent=2))
    else:
        print("\n\n".join(format_description(d) for d in described))
    return 0


def _cmd_serve(a: argparse.Namespace) -> int:
    from graves.sample import SampleError

    if not 1 <= a.port <= 65535:
        raise SampleError(f"--port must be 1 to 65535, got {a.port}")
    if a.max_chars < 1:
        raise SampleError(f"--max-chars must be at least 1, got {a.max_chars}")
    from graves.web import Limits, serve

    serve(host=a.host, port=a.port, model=a.model, limits=Limits(max_chars=a.max_chars), allow_hosts=a.allow_host)
    return 0


def _no_substitute_here(exc: Exception) -> Exception:
    """An unknown-character error for a command without --substitute: do not suggest it."""
    from graves.data.alphabet import UnknownCharacterError

    return UnknownCharacterError(exc.characters, exc.text,  # type: ignore[attr-defined]
                                 hint="remove them (graves write --substitute replaces them by a documented table)")


def _cmd_plot(a: argparse.Namespace) -> int:
    from graves.data.alphabet import UnknownCharacterError

    try:
        return _plot(a)
    except UnknownCharacterError as exc:
        raise _no_substitute_here(exc) from None


def _plot(a: argparse.Namespace) -> int:
    from graves import plots
    from graves.render import OutputError, check_writable

    if Path(a.output).suffix.lower() != ".png":
        raise OutputError(f"{a.output}: plots are PNG images; give an output ending in .png")
    check_writable(a.output)  # before minutes of work
    if a.what == "curves":
        out = plots.plot_curves_runs(a.runs, a.output, x=a.x, metric=a.metric,
                                     ylim=tuple(a.ylim) if a.ylim else None, title=a.title)
    elif a.what == "density":
        out = plots.plot_density_checkpoint(a.checkpoint, a.output, line=a.line, text=a.text,
                                            data_root=a.data, seed=a.seed, bias=a.bias)
    else:
        out = plots.plot_window_checkpoint(a.checkpoint, a.output, line=a.line, text=a.text,
                                           data_root=a.data, seed=a.seed, bias=a.bias)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _cmd_data(a: argparse.Namespace) -> int:
    from graves.data import download

    if a.action == "download":
        dest = Path(a.dest or _data_root(a.data))
        path = download.download(a.name, dest / ("ptb" if a.name == "ptb" else "enwik8"))
        print(f"ok: {path}")
        return 0
    if a.action == "pack":
        return _data_pack(a)
    results = download.check(Path(_data_root(a.data)), a.datasets or download.DATASETS)
    bad = 0
    for name, ok, message in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {message}")
        bad += not ok
    return 1 if bad else 0


def _data_pack(a: argparse.Namespace) -> int:
    from graves.data.iamondb import write_pack
    from graves.data.primer import iam_folder

    from graves.render import check_writable

    out = check_writable(a.output)  # before minutes of parsing
    counts = write_pack(iam_folder(_data_root(a.data)), out, progress=not a.quiet)
    size = out.stat().st_size
    print(f"wrote {out} ({size / 2**20:.1f} MiB): "
          + ", ".join(f"{name} {n} lines" for name, n in counts.items()))
    return 0


# graves.render.DEFAULT_PEN_SPEED, repeated so that the parser imports nothing but the standard library
# (a test keeps the two equal)
PEN_SPEED = 100.0


def _animate_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--animate", type=float, nargs="?", const=PEN_SPEED, default=None,
                        metavar="POINTS_PER_SECOND", help=help)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graves", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"graves {__import__('graves').__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("write", help="write text as handwriting (SVG/PNG) with the shipped model")
    w.add_argument("text", help="the text to write ('-': read it from standard input); long text is "
                                 "wrapped into lines, line breaks are kept")
    w.add_argument("-o", "--output", action="append",
                   help="output file (.svg, .png, .pdf, or .json plotter paths); repeatable (default: "
                        "handwriting.svg and handwriting.png in the current folder)")
    w.add_argument("--model", help="a synthesis checkpoint (default: the shipped model)")
    w.add_argument("--bias", type=float, default=None,
                   help="sampling bias b >= 0 (eqs. 61-62): larger is neater (default 0.75; 0: the paper's unbiased sampling)")
    w.add_argument("--style", type=int, default=None, help="one of the shipped styles (0, 1, ...)")
    w.add_argument("--prime", help="your own handwriting: JSON strokes, InkML, or an IAM-OnDB line id")
    w.add_argument("--prime-text", help="the transcription of --prime")
    w.add_argument("--seed", type=int, default=0,
                   help="random seed (default 0): the same seed, text and options write the same page")
    w.add_argument("--width", type=int, default=50, help="wrap lines at this many characters (default 50)")
    w.add_argument("--retries", type=int, default=None,
                   help="write a line the step cap stopped again, up to this many more times, then as two "
                        "shorter lines (default 5; 0: each line once, as it comes)")
    w.add_argument("--candidates", type=int, default=None,
                   help="race this many candidates per line and keep the first to finish its text "
                        "(default 4; 1: the paper's plain sampling)")
    w.add_argument("--finish-stroke", type=int, default=None, metavar="POINTS",
                   help="past the end of its text a line may draw this many more points, to finish the stroke "
                        "the end rule cut and add i-dots and t-crosses (default 30; 0: the paper's rule)")
    w.add_argument("--substitute", action="store_true",
                   help="replace characters the model cannot write (documented table) instead of failing")
    w.add_argument("--same-hand", action="store_true",
                   help="with no --style or --prime: write line 1 first and prime the other lines with it, for a "
                        "steadier slant down the page (default: every line on its own, which reads more easily)")
    w.add_argument("--data", help="data root, for --prime with an IAM-OnDB line id")
    w.add_argument("--colour", "--color", dest="colour", help="ink colour: a name or #rrggbb (default black)")
    w.add_argument("--stroke-width", type=float, default=None, help="pen width in pixels (default 2)")
    w.add_argument("--background", help="page colour, or 'none' for transparent (default white)")
    _animate_option(w, "SVG: draw the page stroke by stroke, in the order and pace the net wrote it, at this "
                       f"many pen points per second (default {PEN_SPEED:g}: about 5 letters a second)")
    w.set_defaults(func=_cmd_write)

    i = sub.add_parser("info", help="what a checkpoint holds: net, weights, data, training, validation, styles")
    i.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="checkpoint folders, or run folders (their best and last); src/graves/weights: the shipped model")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    i.set_defaults(func=_cmd_info)

    st = sub.add_parser("styles", help="make a model's named styles (--style N) from its own lines, or show them")
    stsub = st.add_subparsers(dest="action", required=True)
    sm = stsub.add_parser("make", help="write styles.json: one line the model writes per seed (no dataset strokes)")
    sm.add_argument("--model", help="a synthesis checkpoint (default: the shipped model, which needs --out)")
    sm.add_argument("--seeds", type=int, nargs="+", default=list(range(8)),
                    help="one style per seed (default 0 ... 7); the same seed makes the same style again")
    sm.add_argument("--texts", nargs="+", help="the line each seed writes (default: seed s writes built-in sentence s mod 4)")
    sm.add_argument("--bias", type=float, default=1.0, help="sampling bias of the lines (default 1.0: neat)")
    sm.add_argument("--out", help="the styles file (default MODEL/styles.json, where --style looks)")
    sm.add_argument("--preview", metavar="FILE", help="also write a sheet (.png/.svg) of one test line in each style")
    sm.add_argument("--seed", type=int, default=0, help="random seed of the preview's lines (default 0)")
    ss = stsub.add_parser("show", help="a sheet of one line written in each style, to compare them")
    ss.add_argument("--model", help="a synthesis checkpoint (default: the shipped model)")
    ss.add_argument("--styles", help="a styles file (default: the one beside the model)")
    ss.add_argument("--text", default=None, help="the line each style writes (default: a pangram with a digit)")
    ss.add_argument("--bias", type=float, default=None, help="sampling bias (default: graves write's, 0.75)")
    ss.add_argument("--seed", type=int, default=0, help="random seed, the same for every line (default 0)")
    ss.add_argument("-o", "--output", action="append", required=True, help="the sheet (.svg/.png/.pdf); repeatable")
    st.set_defaults(func=_cmd_styles)

    sv = sub.add_parser("serve", help="the web page: write handwriting in the browser (pip install -e '.[web]')")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    sv.add_argument("--model", help="a synthesis checkpoint (default: the shipped model)")
    sv.add_argument("--max-chars", type=int, default=400, help="the longest text one request may ask for "
                                                                        "(default 400 characters)")
    sv.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                    help="another name the page is reached by, such as a reverse proxy's (repeatable): a host name, "
                         "or an origin like https://NAME:8443; requests to other names, and writes from other "
                         "sites' pages, are refused")
    sv.set_defaults(func=_cmd_serve)

    t = sub.add_parser("train", help="train an experiment from a TOML config")
    t.add_argument("config", help="an experiment's TOML file, e.g. configs/hw-synth.toml")
    t.add_argument("overrides", nargs="*", help="section.key=value (type-checked)")
    t.add_argument("--run-dir", help="where checkpoints and metrics go (default runs/NAME)")
    t.add_argument("--resume", action="store_true", help="continue exactly from RUN_DIR/last")
    t.add_argument("--data", help="data root (default $GRAVES_DATA, else ./data)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar (the summary is printed as JSON either way)")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint")
    e.add_argument("checkpoint", help="a checkpoint folder, e.g. runs/NAME/best")
    e.add_argument("overrides", nargs="*", help="optim.key=value: the optimiser of --dynamic (e.g. optim.name=sgd optim.lr=1e-3)")
    e.add_argument("--split", default="valid", choices=["train", "valid", "test"],
                   help="the data to evaluate on (default valid)")
    e.add_argument("--dynamic", action="store_true", help="dynamic evaluation (text nets)")
    e.add_argument("--data", help="data root")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_eval)

    s = sub.add_parser("sample", help="sample from a checkpoint (text, or handwriting)")
    s.add_argument("checkpoint", help="a checkpoint folder (text, handwriting or synthesis net)")
    s.add_argument("--length", type=int, help="text nets: symbols to generate (default 1000)")
    s.add_argument("--temperature", type=float, help="text nets: softmax temperature (default 1)")
    s.add_argument("--prime", help="text nets: text to condition on first")
    s.add_argument("--steps", type=int, help="handwriting prediction nets: pen steps per line (default 700)")
    s.add_argument("--bias", type=float, help="handwriting: sampling bias b (default 0, the paper's unbiased sampling)")
    s.add_argument("--lines", type=int, help="handwriting: lines per image (default 4)")
    s.add_argument("--text", help="synthesis nets: the text to write")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("-o", "--output", help="output file (text: any, e.g. .txt; handwriting: .svg, .png, .pdf or .json; "
                                          "default: standard output, or sample.svg)")
    _animate_option(s, f"handwriting, SVG: draw the lines as they were written (default {PEN_SPEED:g} pen points a "
                       "second)")
    s.set_defaults(func=_cmd_sample)

    pl = sub.add_parser("plot", help="figures: density (Figs. 10, 14), window (Fig. 13), learning curves")
    plsub = pl.add_subparsers(dest="what", required=True)
    line = argparse.ArgumentParser(add_help=False)  # the options density and window plots share
    line.add_argument("checkpoint", help="a handwriting checkpoint folder (src/graves/weights: the shipped model)")
    line.add_argument("-o", "--output", required=True, help="the PNG to write")
    line.add_argument("--line", help="an IAM-OnDB line id, e.g. a01-000u-01 (needs --data or $GRAVES_DATA)")
    line.add_argument("--text", help="synthesis nets: write this text and plot the generated line")
    line.add_argument("--bias", type=float, default=None,
                      help="sampling bias of a generated line (default: graves write's, 0.75)")
    line.add_argument("--seed", type=int, default=None, help="random seed of a generated line (default 0)")
    line.add_argument("--data", help="data root")
    plsub.add_parser("density", parents=[line], help="Figs. 10, 14: predicted densities over a line, and π_t")
    plsub.add_parser("window", parents=[line], help="Fig. 13: the soft window φ(t, u) over a line's text")
    pc = plsub.add_parser("curves", help="learning curves of one or more runs (their metrics.jsonl)")
    pc.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders written by graves train")
    pc.add_argument("-o", "--output", required=True, help="the PNG to write")
    pc.add_argument("--x", choices=["step", "minutes", "hours"], default="step",
                    help="against training steps (default) or training time, resumed segments added up")
    pc.add_argument("--metric", default="loss",
                    help="loss (training and validation; default) or a validation metric: sse, bpc, perplexity, ...")
    pc.add_argument("--ylim", type=float, nargs=2, metavar=("LOW", "HIGH"), help="the y range (default: automatic)")
    pc.add_argument("--title", default="", help="the figure's title (default: learning curves)")
    pl.set_defaults(func=_cmd_plot)

    d = sub.add_parser("data", help="download, check or pack datasets")
    dsub = d.add_subparsers(dest="action", required=True)
    dd = dsub.add_parser("download", help="fetch PTB or enwik8 from its official address and verify it "
                                          "(IAM-OnDB needs a registration: docs/data.md)")
    dd.add_argument("name", choices=["ptb", "enwik8"], help="the dataset")
    dd.add_argument("--dest", help="the data root to download into: the files go to DEST/ptb or DEST/enwik8 "
                                    "(default: the data root)")
    dd.add_argument("--data", help="data root")
    dc = dsub.add_parser("check", help="say which datasets are in the data root and whether they are whole "
                                       "(sizes and checksums); exit status 1 if any is missing or damaged")
    dc.add_argument("datasets", nargs="*", metavar="DATASET",  # checked by download.check (argparse's choices
                    help="only these: ptb, enwik8, iam-ondb (default: all three)")  # reject an empty list)
    dc.add_argument("--data", help="data root")
    dp = dsub.add_parser("pack", help="the four IAM-OnDB splits, preprocessed, in one compressed file (~22 MiB) "
                                      "that training reads in place of the archives (docs/device.md)")
    dp.add_argument("--data", help="data root (its iam-ondb/ folder), or the IAM-OnDB folder itself")
    dp.add_argument("-o", "--output", default="iamondb.pack.npz", help="the pack (default ./iamondb.pack.npz)")
    dp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_data)
    return p


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; ``section.key=value`` overrides may come before or after the options.

    argparse fills the ``overrides`` positional in one go with the words right after the config or
    checkpoint, so in ``graves eval CKPT --dynamic optim.lr=1e-3`` the override would be left over
    (``parse_intermixed_args`` does not support subcommands). Left-over words of that form are added to
    ``overrides`` in order; anything else left over is still an error.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        stray = [w for w in extra if w.startswith("-") or "=" not in w]
        if stray or not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
        args.overrides = [*args.overrides, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from graves.errors import USER_ERRORS, disk_full

    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"graves: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if not disk_full(exc):
            raise
        print(f"graves: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graves: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
