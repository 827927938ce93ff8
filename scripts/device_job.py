#!/usr/bin/env python3
"""One GPU session's single command: train an experiment for N minutes and return what it learned.

    python3 scripts/device_job.py CONFIG.toml --minutes N --out $OUT [--init-from CKPT_DIR]
        [--data ROOT] [--samples] [--tf32] [section.key=value ...]
    python3 scripts/device_job.py CONFIG.toml --time-steps K --out $OUT [--data ROOT] [...]
    python3 scripts/device_job.py --prepare-init RUN_DIR/last --out .device/init/NAME

The recipe (what to prepare, the exact commands, the 15-minute budget) is ``docs/device.md``.

**Training** (``--minutes N``):

* sets ``train.device=cuda`` when CUDA is available, else ``cpu`` (so it runs here at toy size),
  ``train.max_minutes=N`` (the training loop stops cleanly at the limit, validates and checkpoints) and,
  with ``--data``, ``data.root``; then the ``key=value`` overrides, which win over these;
* trains with :func:`graves.train.train` into a fresh run directory under ``/tmp/graves-device/``,
  printing a line (unbuffered) at every validation and at most every 30 s;
* returns into ``--out``: ``model.safetensors`` and ``checkpoint.json`` of the best checkpoint (by
  validation; the last one when this session saved no best), ``trainer.pt`` (its trainer state without
  the optimiser moments, see below; a few KB), ``metrics.jsonl``, ``summary.json`` (the training
  summary, device, torch version, wall time, steps/s), and with ``--samples`` ``samples.png``
  (synthesis: a few fixed texts by :func:`graves.sample.synthesize` at bias 0.75; prediction: unbiased
  lines of :func:`graves.sample.sample_unconditional`) or ``samples.txt`` (text nets). Weights over
  the 16 MiB per-file return limit (ptb-char's 1x1000 net: 16.2 MiB) come back cut into
  ``model.safetensors.part1``, ``.part2`` (``cat`` joins them; ``--init-from`` does it itself;
  summary.json holds the sha256). The files are refreshed in ``--out`` whenever training saves a new
  best, so a command killed at its time limit still returns the latest best weights.

**Chaining sessions** (``--init-from DIR``, a folder holding what came back). The optimiser moments
cannot travel: a 3x400 net's RMSprop state is ~45 MB (three tensors the size of its ~15 MB of weights),
over the 16 MiB-per-file return limit and, with the ~22 MiB IAM-OnDB pack and the weights, over the
64 MiB the working tree may carry. So every session restarts them from zero. Everything else does
travel, in ``trainer.pt``: with it the session *resumes* (``train(resume=True)``): step, epoch, the
position in the epoch, the RNG states, the carried hidden state of a text net, the best validation
loss and the history continue, so a chain of sessions shorter than an epoch walks through the data
(ptb-char's epoch is one pass in corpus order: restarting it each session would train on its first
part forever). Without ``trainer.pt`` (any checkpoint's weights) it is a weights-only warm start
(``train.init_from``) from step 0, with ``train.seed`` set to that checkpoint's seed + 1 unless given,
so that the handwriting nets at least see a new shuffle. ``--prepare-init CKPT --out DIR`` makes such a
folder from a local checkpoint (e.g. a CPU run's ``runs/NAME/last``), dropping the moments.

**Timing** (``--time-steps K``) only times K training steps (after 2 warm-up steps) of the configured
model and batches, and writes seconds/step, batches/epoch and the estimated seconds/epoch into
summary.json: a GPU speed check that takes seconds (no validation, no checkpoint).

Exit status: 0 on success; 2 for an error a user can cause before anything was trained (one line on
stderr); 1 if training failed (what was saved is still returned) or produced nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

try:
    import graves  # noqa: F401
except ImportError:  # the GPU box has the working tree, not an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from graves.checkpoint import load_meta, resolve_checkpoint
from graves.config import Config, ConfigError, load_config

RETURN_LIMIT = 60 * 2**20  # total bytes returned (the tool takes 64 MiB)
FILE_LIMIT = 16 * 2**20  # bytes per returned file
PART_BYTES = 15 * 2**20  # weights larger than FILE_LIMIT come back in parts of this size
SAMPLE_TEXTS = ("a quick brown fox jumps over", "the lazy dog in the morning", "Generating Sequences With",
                "Recurrent Neural Networks")
SAMPLE_BIAS = 0.75
WARMUP_STEPS = 2
# model fields that decide the weights' shapes (a warm start needs them equal)
SHAPE_FIELDS = ("kind", "hidden_size", "num_layers", "mixtures", "window_mixtures")


def say(*parts: Any) -> None:
    print(*parts, flush=True)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


# ------------------------------------------------------------------------------------------ files


def _copy(src: Path, dst: Path) -> None:
    """Copy through a temporary name in the same folder, so ``dst`` is never half-written."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _step(ckpt: Path) -> int | None:
    try:
        return int(json.loads((ckpt / "checkpoint.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _validated_at(ckpt: Path) -> int | None:
    """The step of the last validation recorded in ``ckpt``'s history (None: none, or unreadable)."""
    try:
        history = json.loads((ckpt / "checkpoint.json").read_text())["history"]
        return int(history[-1]["step"]) if history else None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _averaged(ckpt: Path) -> bool:
    """Whether ``ckpt``'s weights are a moving average (``train.ema_decay``'s ``best``), not training weights."""
    try:
        return "weights" in json.loads((ckpt / "checkpoint.json").read_text())
    except (OSError, ValueError):
        return False


def _copy_weights(src: Path, out: Path) -> list[str]:
    """``src`` (a model.safetensors) into ``out``: as it is when it fits the per-file return limit, else
    cut into byte chunks ``model.safetensors.part1``, ``.part2``, ... that ``cat`` joins again. Stale
    copies of the other form are removed."""
    if src.stat().st_size <= FILE_LIMIT:
        _copy(src, out / "model.safetensors")
        names = ["model.safetensors"]
    else:
        names = []
        with open(src, "rb") as f:
            while chunk := f.read(PART_BYTES):
                names.append(f"model.safetensors.part{len(names) + 1}")
                tmp = out / f".{names[-1]}.tmp"
                tmp.write_bytes(chunk)
                os.replace(tmp, out / names[-1])
    for stale in [out / "model.safetensors", *out.glob("model.safetensors.part*")]:
        if stale.name not in names:
            stale.unlink(missing_ok=True)
    return names


def join_parts(ckpt: Path) -> None:
    """Rebuild ``ckpt/model.safetensors`` from ``model.safetensors.part1, .part2, ...`` when only the
    parts are there (a returned checkpoint copied as it came back)."""
    parts = sorted(ckpt.glob("model.safetensors.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if parts and not (ckpt / "model.safetensors").exists():
        tmp = ckpt / ".model.safetensors.tmp"
        with open(tmp, "wb") as f:
            for part in parts:
                f.write(part.read_bytes())
        os.replace(tmp, ckpt / "model.safetensors")


def strip_trainer_state(src: Path, dst: Path) -> bool:
    """Write ``src`` (a checkpoint's ``trainer.pt``) to ``dst`` without the optimiser's moment tensors
    (``optimizer["state"]`` emptied; the parameter groups stay, so it loads into a fresh optimiser).
    False (and no ``dst``) when it would still exceed the per-file return limit (adaptive weight
    noise keeps a posterior std per weight)."""
    state = torch.load(src, map_location="cpu", weights_only=True)
    if isinstance(state.get("optimizer"), dict):
        state["optimizer"]["state"] = {}
    tmp = dst.with_name(f".{dst.name}.tmp")
    torch.save(state, tmp)
    if tmp.stat().st_size > FILE_LIMIT:
        tmp.unlink()
        dst.unlink(missing_ok=True)
        say(f"WARNING: {src} without the moments is still over {FILE_LIMIT / 2**20:.0f} MiB: not returned")
        return False
    os.replace(tmp, dst)
    return True


def prepare_init(src: Path, dest: Path) -> Path:
    """A folder ``--init-from`` resumes from: ``src``'s weights and checkpoint.json, and its trainer state
    without the optimiser moments when it has one."""
    src = resolve_checkpoint(src)  # its .NAME.old while a save swaps it (CheckpointError if there is none)
    join_parts(src)
    load_meta(src)  # CheckpointError (one line) if it is not a checkpoint
    dest.mkdir(parents=True, exist_ok=True)
    _copy(src / "checkpoint.json", dest / "checkpoint.json")
    _copy_weights(src / "model.safetensors", dest)
    if (src / "trainer.pt").is_file():
        strip_trainer_state(src / "trainer.pt", dest / "trainer.pt")
    else:
        (dest / "trainer.pt").unlink(missing_ok=True)
    return dest


def chosen_checkpoint(run_dir: Path) -> Path | None:
    """``best`` (lowest validation loss) when this run saved one, else ``last``, else None."""
    for which in ("best", "last"):
        if (run_dir / which / "model.safetensors").is_file():
            return run_dir / which
    return None


class Exporter:
    """Keeps ``out`` holding the chosen checkpoint: weights, checkpoint.json and, when ``last`` is at the
    same step and saved after that step's validation (``validate`` saves best, then last), its stripped
    trainer state, so that what comes
    back is a resumable point. Safe against saves landing mid-copy (re-checked and retried)."""

    def __init__(self, run_dir: Path, out: Path):
        self.run_dir, self.out = run_dir, out
        self.info: dict[str, Any] | None = None

    def export(self) -> dict[str, Any] | None:
        for _ in range(5):
            ckpt = chosen_checkpoint(self.run_dir)
            step = _step(ckpt) if ckpt is not None else None
            if step is None:
                if ckpt is None:
                    break
                time.sleep(0.5)  # caught between the renames of a save
                continue
            last = self.run_dir / "last"
            # `last` saved after this step's validation (a stop also saves it just before validating)
            # `best` at last's step: last must be the one saved after that validation (a stop saves last
            # first, then best, then last again); a chosen `last` is its own trainer state, always consistent
            fresh = ckpt.name == "last" or _validated_at(last) == step
            # with train.ema_decay, best holds the average, not the weights training goes on from
            can_resume = (_step(last) == step and fresh and not _averaged(ckpt)
                          and (last / "trainer.pt").is_file())
            done = self.info is not None and (self.info["which"], self.info["step"]) == (ckpt.name, step)
            if done and (self.info["resumable"] or not can_resume):
                break  # nothing new
            try:
                sha = _sha256(ckpt / "model.safetensors")
                files = _copy_weights(ckpt / "model.safetensors", self.out)
                _copy(ckpt / "checkpoint.json", self.out / "checkpoint.json")
                resumable = can_resume and strip_trainer_state(last / "trainer.pt", self.out / "trainer.pt")
                if not resumable:
                    (self.out / "trainer.pt").unlink(missing_ok=True)
            except (OSError, RuntimeError, ValueError):
                time.sleep(0.5)
                continue
            if (_step(self.out) != step or _step(ckpt) != step
                    or (resumable and (_step(last) != step or not (ckpt.name == "last" or _validated_at(last) == step)))):
                continue  # a save replaced a checkpoint between the copies
            self.info = {"which": ckpt.name, "step": step, "weights": files, "model_sha256": sha,
                         "resumable": resumable}
            break
        if (self.run_dir / "metrics.jsonl").is_file():
            _copy(self.run_dir / "metrics.jsonl", self.out / "metrics.jsonl")
        return self.info


def check_out(out: Path) -> dict[str, int]:
    """Sizes of the files in ``out``; warns about the return limits."""
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    for name, n in sizes.items():
        if n > FILE_LIMIT:
            say(f"WARNING: {out / name} is {n / 2**20:.1f} MiB > {FILE_LIMIT / 2**20:.0f} MiB: it will not come back")
    total = sum(sizes.values())
    if total > RETURN_LIMIT:
        say(f"WARNING: {out} holds {total / 2**20:.1f} MiB > {RETURN_LIMIT / 2**20:.0f} MiB")
    if len(sizes) > 8:
        say(f"WARNING: {out} holds {len(sizes)} files; at most 8 come back")
    return sizes


class Watcher(threading.Thread):
    """Follows ``metrics.jsonl`` while training runs: prints each validation and a training-loss line at
    most every ``every`` seconds, and has the exporter refresh ``out``."""

    def __init__(self, run_dir: Path, exporter: Exporter, every: float = 30.0, poll: float = 2.0):
        super().__init__(daemon=True)
        self.run_dir, self.exporter, self.every, self.poll = run_dir, exporter, every, poll
        self.stopped = threading.Event()
        self._pos = 0
        self._last_print = 0.0

    def run(self) -> None:
        while not self.stopped.wait(self.poll):
            try:
                self.check()
            except Exception as e:  # never let the watcher kill the job
                say(f"(watcher: {type(e).__name__}: {e})")

    def check(self) -> None:
        path = self.run_dir / "metrics.jsonl"
        new_best = False
        if path.is_file():
            with open(path, "rb") as f:
                f.seek(self._pos)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._pos += len(complete)
            for line in complete.decode("utf-8").splitlines():
                record = json.loads(line)
                new_best |= "valid" in record
                self.report(record)
        if new_best or self.exporter.info is None or not self.exporter.info["resumable"]:
            self.exporter.export()

    def report(self, r: dict[str, Any]) -> None:
        if "valid" in r:
            v = " ".join(f"{k}={x:.4g}" for k, x in r["valid"].items() if isinstance(x, (int, float)))
            say(f"[{r['minutes']:6.2f} min] step {r['step']} epoch {r['epoch']}: valid {v}")
        elif r.get("resumed"):
            changed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in r.get("changed", {}).items())
            say(f"resumed at step {r['step']} epoch {r['epoch']}" + (f" with {changed}" if changed else ""))
        elif "skipped" in r:
            say(f"step {r['step']}: skipped ({r['skipped']}, {r.get('in_a_row', 1)} in a row)")
        elif "train_loss" in r and time.monotonic() - self._last_print >= self.every:
            self._last_print = time.monotonic()
            say(f"[{r['seconds'] / 60:6.2f} min] step {r['step']} epoch {r['epoch']}: "
                f"train_loss {r['train_loss']:.4g}")


# ------------------------------------------------------------------------------------------ config


def build_config(a: argparse.Namespace) -> tuple[Config, Path | None, bool]:
    """The config file with the job's settings, then the user's overrides on top; the warm-start folder
    and whether it resumes (it holds a trainer state)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ours = [f"train.device={json.dumps(device)}", f"train.max_minutes={float(a.minutes)}"]
    if a.data:
        ours.append(f"data.root={json.dumps(str(Path(a.data).resolve()))}")
    cfg = load_config(a.config, ours)
    init, resume = None, False
    if a.init_from:
        init = Path(a.init_from).resolve()
        if init.is_dir():
            join_parts(init)
        saved = load_meta(init)["config"]  # CheckpointError (one line) if it is not a checkpoint
        for f in SHAPE_FIELDS:
            if saved["model"].get(f) != getattr(cfg.model, f):
                raise ConfigError(f"--init-from {init}: its model.{f} is {saved['model'].get(f)!r}, "
                                  f"the config's is {getattr(cfg.model, f)!r}")
        resume = (init / "trainer.pt").is_file()
        if not resume:
            ours.append(f"train.init_from={json.dumps(str(init))}")
            if not any(o.strip().startswith("train.seed=") for o in a.overrides):
                ours.append(f"train.seed={int(saved.get('train', {}).get('seed', 0)) + 1}")  # a new shuffle
    return load_config(a.config, ours + list(a.overrides)), init, resume


# ------------------------------------------------------------------------------------------ samples


def write_samples(ckpt: Path, out: Path) -> Path:
    """``samples.png`` (handwriting) or ``samples.txt`` (text) from the checkpoint, on the CPU."""
    kind = load_meta(ckpt)["config"]["model"]["kind"]
    if kind == "text":
        from graves.tasks.text import sample_text_checkpoint

        path = out / "samples.txt"
        path.write_text(sample_text_checkpoint(ckpt, length=2000, seed=0) + "\n", encoding="utf-8")
        return path
    from graves.models import load_model
    from graves.render import write_page
    from graves.sample import line_generators, sample_unconditional, synthesize

    net, meta = load_model(ckpt)
    normaliser = meta.get("normaliser")
    if kind == "synthesis":
        from graves.data.alphabet import Alphabet

        res = synthesize(net, Alphabet.from_dict(meta["alphabet"]), list(SAMPLE_TEXTS), bias=SAMPLE_BIAS,
                         generator=line_generators(0, len(SAMPLE_TEXTS)), normaliser=normaliser,
                         substitute=True)
        lines, labels = [r.offsets for r in res], [f"{t} (b={SAMPLE_BIAS})" for t in SAMPLE_TEXTS]
    else:
        lines = sample_unconditional(net, 700, 0.0, line_generators(0, 4), batch=4, normaliser=normaliser)
        labels = ["unconditional, b=0"] * len(lines)
    return Path(write_page(lines, out / "samples.png", labels))


# ------------------------------------------------------------------------------------------ timing


def time_steps(cfg: Config, k: int) -> dict[str, Any]:
    """Seconds per training step of ``cfg`` (mean of ``k`` steps after :data:`WARMUP_STEPS`), the batches
    of an epoch and the estimated seconds per epoch. The step mirrors :func:`graves.train.train`'s
    (forward, backward with the configured weight noise, optimiser step; building the batch on the CPU
    included)."""
    from graves.nn.lstm import MATMUL_DTYPES
    from graves.optim import optimizer_from_config
    from graves.train import build_noise, build_task, optimised_params, training_step

    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = torch.device(tc.device)
    torch.manual_seed(tc.seed)
    t0 = time.monotonic()
    task = build_task(cfg)
    build_seconds = time.monotonic() - t0
    model = task.model.to(device)
    noise = build_noise(cfg, model)
    optimizer = optimizer_from_config(cfg.optim, optimised_params(cfg, model, noise))
    generator = torch.Generator().manual_seed(tc.seed)

    def epoch_batches():
        return task.batches(0, torch.Generator().manual_seed(tc.seed * 1_000_003))

    n_batches = len(epoch_batches())
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: list[float] = []
    model.train()
    it = iter(epoch_batches())
    for i in range(WARMUP_STEPS + k):
        try:
            batch = next(it)
        except StopIteration:  # a toy epoch shorter than the timing: start it again
            it = iter(epoch_batches())
            batch = next(it)
        sync()
        t = time.monotonic()
        loss, _ = training_step(task, model, batch, optimizer, noise, generator, MATMUL_DTYPES[cfg.train.matmul_dtype])
        float(loss.detach())  # waits for the step, as the training loop's logging does
        sync()
        times.append(time.monotonic() - t)
        say(f"step {i + 1}/{WARMUP_STEPS + k}: {times[-1]:.3f} s" + (" (warm-up)" if i < WARMUP_STEPS else ""))
    timed = times[WARMUP_STEPS:]
    per_step = sum(timed) / len(timed)
    result = {
        "timed_steps": k, "warmup_steps": WARMUP_STEPS, "seconds_per_step": per_step,
        "seconds_per_step_min": min(timed), "seconds_per_step_max": max(timed),
        "batches_per_epoch": n_batches, "estimated_seconds_per_epoch": per_step * n_batches,
        "data_and_model_seconds": build_seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if device.type == "cuda":
        result["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


# ------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="recipe: docs/device.md")
    p.add_argument("config", nargs="?", help="an experiment's TOML (configs/...)")
    p.add_argument("overrides", nargs="*", help="section.key=value (type-checked; win over the job's settings)")
    p.add_argument("--minutes", type=float, default=0.0, help="train.max_minutes: the training loop's limit")
    p.add_argument("--out", required=True, help="where the returned files go ($OUT)")
    p.add_argument("--init-from", help="a folder that came back from a session (resume), or any checkpoint "
                                       "(weights-only warm start)")
    p.add_argument("--data", help="data root (holding iam-ondb/iamondb.pack.npz, ptb/, ...)")
    p.add_argument("--samples", action="store_true", help="also return samples.png / samples.txt")
    p.add_argument("--time-steps", type=int, default=0, metavar="K",
                   help="only time K training steps (after 2 warm-up steps); writes summary.json")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 matmuls on CUDA (faster, ~1e-3 relative precision; a deviation, recorded)")
    p.add_argument("--run-dir", help="the run directory (default: a fresh one under /tmp/graves-device)")
    p.add_argument("--prepare-init", metavar="CKPT",
                   help="copy checkpoint CKPT into --out as an --init-from folder (moments dropped); no training")
    a = p.parse_intermixed_args(argv)
    if a.prepare_init:
        if a.config or a.overrides:
            p.error("--prepare-init takes no config")
    elif not a.config:
        p.error("give a config (CONFIG.toml)")
    elif a.time_steps < 0 or (a.time_steps == 0 and a.minutes <= 0):
        p.error("give --minutes N > 0 (train) or --time-steps K > 0 (time)")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    t_start = time.monotonic()
    out = Path(a.out)
    from graves.errors import USER_ERRORS

    try:
        if a.prepare_init:
            dest = prepare_init(Path(a.prepare_init), out)
            say(f"{dest}: " + ", ".join(f"{n} ({s / 2**20:.2f} MiB)" for n, s in check_out(dest).items()))
            return 0
        out.mkdir(parents=True, exist_ok=True)
        cfg, init, resume = build_config(a)
    except USER_ERRORS as e:
        print(f"device_job: error: {e}", file=sys.stderr)
        return 2
    if a.tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    env = {"device": device_name(cfg.train.device), "torch": torch.__version__, "cuda": torch.version.cuda,
           "python": platform.python_version(), "tf32": bool(a.tf32 and torch.cuda.is_available())}
    say(f"device_job: {cfg.name} on {env['device']} (torch {env['torch']}, python {env['python']})")
    base = {"job": "time" if a.time_steps else "train", "config_file": a.config, "name": cfg.name,
            "argv": sys.argv[1:] if argv is None else argv, **env}

    if a.time_steps:
        try:
            timing = time_steps(cfg, a.time_steps)
        except USER_ERRORS as e:
            print(f"device_job: error: {e}", file=sys.stderr)
            return 2
        summary = {**base, **timing, "wall_seconds": time.monotonic() - t_start, "config": cfg.to_dict()}
        _write_json(out / "summary.json", summary)
        say(f"{timing['seconds_per_step']:.4f} s/step, {timing['batches_per_epoch']} batches/epoch: "
            f"~{timing['estimated_seconds_per_epoch'] / 60:.1f} min/epoch")
        check_out(out)
        return 0

    from graves.train import train

    run_dir = Path(a.run_dir) if a.run_dir else Path(tempfile.mkdtemp(prefix=f"{cfg.name}-", dir=_tmp_root()))
    init_info = None
    if init is not None:
        meta = load_meta(init)
        init_info = {"path": str(init), "mode": "resume" if resume else "weights", "step": meta.get("step"),
                     "epoch": meta.get("epoch")}
        if resume:  # the returned point becomes this run's `last`, moments emptied: train(resume=True)
            (run_dir / "last").mkdir(parents=True, exist_ok=True)
            for name in ("model.safetensors", "checkpoint.json", "trainer.pt"):
                _copy(init / name, run_dir / "last" / name)
    how = {"resume": f", resuming {init} at step {init_info['step'] if init_info else 0} (fresh moments)",
           "weights": f", weights from {init} (seed {cfg.train.seed})"}.get(init_info and init_info["mode"], "")
    say(f"run dir {run_dir}; training for at most {cfg.train.max_minutes:g} min{how}")
    exporter = Exporter(run_dir, out)
    watcher = Watcher(run_dir, exporter)
    watcher.start()
    t_train = time.monotonic()
    error: str | None = None
    result: dict[str, Any] = {}
    try:
        result = train(cfg, run_dir, resume=resume, progress=False)
    except USER_ERRORS as e:
        error = str(e)
    except Exception as e:  # a diverged run, CUDA out of memory, ...: still return what was saved
        import traceback

        traceback.print_exc()
        error = f"{type(e).__name__}: {e}"
    finally:
        train_seconds = time.monotonic() - t_train
        watcher.stopped.set()
        watcher.join()
        watcher.check()  # the final records
    exported = exporter.export()
    first = int(init_info["step"] or 0) if resume else 0  # a resumed run counts on from its step
    steps = max(int(result.get("step", first)) - first, 0)
    summary: dict[str, Any] = {
        **base, "train": result, "error": error, "returned_checkpoint": exported, "init_from": init_info,
        "session_steps": steps, "train_seconds": train_seconds,
        "steps_per_second": steps / train_seconds if train_seconds > 0 else None, "config": cfg.to_dict(),
    }
    if cfg.train.device.startswith("cuda"):
        summary["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    summary["wall_seconds"] = time.monotonic() - t_start
    _write_json(out / "summary.json", summary)
    if error:
        print(f"device_job: error: {error}", file=sys.stderr)
    say(f"trained {steps} steps in {train_seconds / 60:.2f} min; returned {exported}")

    if a.samples and exported is not None:
        t = time.monotonic()
        try:
            path = write_samples(chosen_checkpoint(run_dir), out)
            summary["samples"] = {"file": path.name, "seconds": time.monotonic() - t}
            say(f"wrote {path}")
        except Exception as e:  # samples are a bonus: never lose the run over them
            summary["samples"] = {"error": f"{type(e).__name__}: {e}"}
            say(f"WARNING: no samples: {type(e).__name__}: {e}")
        summary["wall_seconds"] = time.monotonic() - t_start
        _write_json(out / "summary.json", summary)
    sizes = check_out(out)
    say("returned: " + ", ".join(f"{n} ({s / 2**20:.2f} MiB)" for n, s in sizes.items()))
    if exported is None:
        return 2 if error else 1
    return 1 if error else 0


def _tmp_root() -> str:
    root = Path(tempfile.gettempdir()) / "graves-device"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


if __name__ == "__main__":
    sys.exit(main())
