"""One training loop for every experiment of the paper.

The loop knows nothing about text or handwriting. An experiment is a *task* (``graves.tasks``) that
builds the model from the config and provides:

- ``batches(epoch, generator)``: the training batches of one epoch, in order, as a sized iterable;
  ``generator`` is seeded from (seed, epoch) by the loop, so a resumed run skips to the same batch;
- ``loss(model, batch, index=None) -> (loss, count)``: the loss of a batch, summed over time and
  averaged over the sequences of the batch (the optimiser's objective), and the number of sequences it
  covers; with ``index`` (a slice) only those sequences, averaged over themselves (weight noise draws
  fresh weights for every sequence, so it runs the batch one sequence at a time);
- ``batch_size(batch) -> int``;
- ``evaluate(model, split) -> dict``: validation metrics, with ``"loss"`` the early-stopping key;
- ``num_train_sequences``: for adaptive weight noise (KL is divided by it, SPEC §2);
- ``meta()``: what sampling needs to rebuild the model from the checkpoint alone (alphabet, stats);
- ``state_dict()`` / ``load_state_dict()``: anything it carries between batches (e.g. the text nets'
  hidden state across truncated-BPTT sequences), so that a resumed run continues exactly.

Logging happens here and only here: a progress bar on stderr, and one JSON line per log step in
``metrics.jsonl`` in the run directory (step, epoch, train_loss, seconds; with adaptive weight noise also
the KL term and the spread of the posterior's s; a ``valid`` record at each validation).

With ``train.ema_decay`` > 0 (a deviation) the loop keeps an exponential moving average of the weights,
updated after every applied step; validation, early stopping and ``best`` use the average, and each
``valid`` record also holds ``valid_raw``, the training weights' metrics, so the two can be compared.
``last`` holds the training weights and carries the average in its trainer state, so ``--resume`` is
exact; a run resumed with averaging newly switched on starts the average from its current weights.

With ``train.matmul_dtype = "bfloat16"`` (a deviation) the training steps run the fused LSTM layers'
matrix products on bfloat16 operands (:func:`graves.nn.lstm.matmul_dtype`); everything else, validation
included, is float32.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from graves.checkpoint import (CheckpointError, config_of, load_meta, load_trainer_state, load_weights, recover,
                               save_checkpoint)
from graves.config import Config, ConfigError, check_config
from graves.nn.lstm import MATMUL_DTYPES, matmul_dtype
from graves.nn.noise import AdaptiveWeightNoise, WeightNoise, noisy_backward
from graves.optim import optimizer_from_config


def build_task(cfg: Config, meta: dict[str, Any] | None = None):
    """The task object for ``cfg.model.kind``; ``meta`` (from a checkpoint) skips loading training data."""
    kind = cfg.model.kind
    if kind == "text":
        from graves.tasks.text import TextTask

        return TextTask(cfg, meta)
    if kind in ("handwriting", "synthesis"):
        from graves.tasks.handwriting import HandwritingTask

        return HandwritingTask(cfg, meta)
    raise ConfigError(f"unknown model kind {kind!r} (expected text, handwriting or synthesis)")


class _Stop:
    """Turns SIGINT/SIGTERM into a clean stop at the next step boundary (the run is checkpointed)."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self):
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):  # noqa: ARG002
        if self.requested:  # a second interrupt: stop now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


#: A training step whose loss or gradient is not finite is skipped; this many in a row stop the run.
MAX_NONFINITE_STEPS = 5


def build_noise(cfg: Config, model: torch.nn.Module) -> WeightNoise | AdaptiveWeightNoise | None:
    """The weight noise ``cfg.noise`` asks for on ``model`` (None for ``kind = "none"``)."""
    per = cfg.noise.per
    if per not in ("sequence", "batch", "group"):
        raise ConfigError(f"noise.per must be 'sequence', 'batch' or 'group', not {per!r}")
    # deviations: "batch", one draw per minibatch; "group", one per noise.group_size sequences
    draws = dict(per_sequence=per == "sequence", group_size=cfg.noise.group_size if per == "group" else None)
    if cfg.noise.kind == "weight":
        return WeightNoise(model, std=cfg.noise.std, **draws)
    if cfg.noise.kind == "adaptive":
        max_std = cfg.noise.max_std
        if max_std != 0 and not (math.isfinite(max_std) and max_std >= cfg.noise.std):
            raise ConfigError(f"noise.max_std must be 0 (no bound) or at least noise.std ({cfg.noise.std:g}, the "
                             f"posterior's initial s), not {max_std!r}")
        return AdaptiveWeightNoise(model, init_std=cfg.noise.std, max_std=max_std or None,
                                   s_gradient=cfg.noise.s_gradient, **draws)
    if cfg.noise.kind != "none":
        raise ConfigError(f"unknown noise kind {cfg.noise.kind!r}")
    return None


def optimised_params(cfg: Config, model: torch.nn.Module,
                     noise: WeightNoise | AdaptiveWeightNoise | None) -> list[Any]:
    """The optimiser's parameters: the weights, and with adaptive noise the log s (their own group when
    ``noise.lr_scale`` ≠ 1, stepping at ``optim.lr × noise.lr_scale``; one group otherwise, so that runs
    made before the knob existed resume unchanged)."""
    params = list(model.parameters())
    if not isinstance(noise, AdaptiveWeightNoise):
        return params
    scale = cfg.noise.lr_scale
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"noise.lr_scale must be a positive number, not {scale!r}")
    if scale == 1.0:
        return params + list(noise.parameters())
    # deviation: log s steps at its own rate (the paper gives no rate for s; docs/decisions.md)
    return [{"params": params}, {"params": list(noise.parameters()), "lr": cfg.optim.lr * scale}]


def _noise_stats(noise: WeightNoise | AdaptiveWeightNoise | None, task: Any) -> dict[str, float]:
    """For the metrics file under adaptive noise: the KL term of the loss (KL / S, nats per sequence) and
    the posterior standard deviations s (median, 5th and 95th percentiles); nothing otherwise."""
    if not isinstance(noise, AdaptiveWeightNoise):
        return {}
    with torch.no_grad():
        log_s = torch.cat([ls.detach().reshape(-1) for ls in noise.log_s])
        q = torch.quantile(log_s[:: max(1, log_s.numel() // 100_000)].float(),  # quantile's size limit
                           torch.tensor([0.05, 0.5, 0.95], dtype=torch.float32, device=log_s.device))
        kl = noise.kl() / task.num_train_sequences
        s05, s50, s95, kl_value = torch.cat([q.exp(), kl.reshape(1).float()]).cpu().tolist()  # one copy back
        return {"kl": kl_value, "s_p05": s05, "s_median": s50, "s_p95": s95}


def training_step(task: Any, model: torch.nn.Module, batch: Any, optimizer: torch.optim.Optimizer,
                  noise: WeightNoise | AdaptiveWeightNoise | None, generator: torch.Generator,
                  matmul: torch.dtype | None = None) -> tuple[Tensor, int]:
    """One optimiser step on ``batch``; returns (the loss as logged, the number of sequences in the batch).

    ``matmul``: the dtype the fused LSTM layers multiply in during the step (``train.matmul_dtype``, a
    deviation: :func:`graves.nn.lstm.matmul_dtype`), or None for full precision.

    When the loss or a gradient is not finite the step is not taken (the gradients are dropped) and the
    returned loss is NaN; `train` then skips the batch, and stops after :data:`MAX_NONFINITE_STEPS` in a row.

    With weight noise each sequence (or each group of ``noise.group_size`` sequences, or the whole batch, as
    ``noise.per`` says) gets its own draw (:func:`noisy_backward`); with adaptive weight noise
    the loss is the MDL loss, the data term plus KL(Q‖P) / (number of training sequences) (SPEC §2).

    The objective is the batch's mean loss, but the backward pass runs on the sum over its sequences and
    the gradients are divided by B afterwards: the derivative clipping inside the nets (LSTM and output
    derivatives, SPEC §1 and §4.2) then bounds each sequence's own derivatives, as with the paper's
    one-sequence-at-a-time training, instead of derivatives already divided by B (a bound B times looser).
    """
    optimizer.zero_grad(set_to_none=True)
    with matmul_dtype(matmul):
        if noise is None:
            loss, count = task.loss(model, batch)
            (loss * count).backward()  # the sum over sequences: each one's derivatives meet the clips unscaled
        else:
            count = task.batch_size(batch)

            def loss_fn(idx: slice) -> Tensor:
                return task.loss(model, batch, idx)[0] * (idx.stop - idx.start)  # the slice's sum over sequences

            loss = noisy_backward(noise, loss_fn, count, generator) / count
    _divide_grads(optimizer, count)  # the sum's gradients → the mean's
    if noise is not None:
        if isinstance(noise, AdaptiveWeightNoise):
            # the data term is a mean over sequences, so the KL is divided by S once.
            kl = noise.kl() / task.num_train_sequences
            kl.backward()
            loss = loss + kl.detach()
    if not _finite(loss, optimizer):
        # A non-finite loss or gradient (e.g. one extreme draw of adaptive weight noise) would poison the
        # weights and the optimiser's moments: the step is not taken, and the loss returned is NaN.
        optimizer.zero_grad(set_to_none=True)
        return torch.full_like(loss.detach(), math.nan), count
    optimizer.step()
    if isinstance(noise, AdaptiveWeightNoise):
        noise.bound_()  # deviation: noise.max_std, an upper bound on s (projected; a no-op without a bound)
    return loss, count


def _cpu_has_bf16() -> bool | None:
    """Whether this CPU lists bfloat16 dot-product instructions in Linux's /proc/cpuinfo (x86: avx512_bf16,
    amx_bf16; Arm: bf16); None where that file cannot be read."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text(errors="replace").split())
    except OSError:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _divide_grads(optimizer: torch.optim.Optimizer, n: int) -> None:
    """Divide every gradient the optimiser will apply by ``n``."""
    if n != 1:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        torch._foreach_div_(grads, float(n))


def _finite(loss: Tensor, optimizer: torch.optim.Optimizer) -> bool:
    """True when the loss and every gradient the optimiser would apply are finite."""
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    # one flag per tensor, read back once (a read per tensor would sync a GPU ~20 times a step)
    return bool(torch.stack([torch.isfinite(t).all() for t in (loss.detach(), *grads)]).all())


def _ends_cut_short(path: Path) -> bool:
    """Whether the non-empty file ``path`` lacks a final newline."""
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) != b"\n"


#: Offset of the noise generator's seed (``seed * 1_000_003 + NOISE_STREAM``) from the epochs' order seeds
#: (``seed * 1_000_003 + epoch``), beyond any epoch count.
NOISE_STREAM = 999_983


class TrainingError(RuntimeError):
    """Training cannot go on (the loss diverged); the message names the last checkpoint."""


def _other_encoding(ours: dict[str, Any], meta: dict[str, Any]) -> str | None:
    """``"alphabet"`` or ``"vocabulary"`` when a checkpoint's ``meta`` encodes text otherwise than this
    task's meta ``ours`` (same shapes, other meaning), else None."""
    for key, what in (("alphabet", "alphabet"), ("vocab", "vocabulary")):
        if key in ours and key in meta and meta[key] != ours[key]:
            return what
    return None


def _init_from(model: torch.nn.Module, task: Any, path: str) -> None:
    """Load ``path``'s weights into ``model`` (``train.init_from``), refusing a checkpoint made for another
    text encoding (a synthesis net's alphabet, a text net's vocabulary): same shapes, other meaning."""
    meta = load_meta(path)
    ours = task.meta()
    what = _other_encoding(ours, meta)
    if what:
        raise CheckpointError(f"train.init_from {path}: its {what} is not this run's (another data set or "
                              f"data.alphabet); its weights would read the text wrongly")
    if "normaliser" in ours and "normaliser" in meta and meta["normaliser"] != ours["normaliser"]:
        print(f"graves train: note: train.init_from {path} was trained with other normalisation statistics "
              "(other training sets); its weights start on inputs scaled differently", file=sys.stderr)
    weights = load_weights(path)  # a damaged file has its own message
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:  # missing, unexpected or differently shaped tensors
        detail = str(exc).strip().splitlines()
        raise CheckpointError(f"train.init_from {path}: its weights do not fit this config's net (model.* "
                              f"must match the run it comes from): {' '.join(x.strip() for x in detail[:3])}"
                              ) from None


def _check_resumed_data(task: Any, last: Path) -> None:
    """Refuse to resume ``last`` on data that the net would read differently from the data it was trained
    on: another text encoding (a synthesis net's alphabet, a text net's vocabulary: same shapes, other
    meaning) or other normalisation statistics (other ``data.train_sets``: the same pen offsets scaled
    differently). The settings' names may be unchanged (``data.alphabet = "full"`` is built from the
    training transcriptions), so the check compares what the data made of them."""
    meta = load_meta(last)
    ours = task.meta()
    what = _other_encoding(ours, meta)
    if what:
        raise CheckpointError(f"--resume: this config's data gives another {what} than the one {last} was "
                              "trained with (other data.train_sets, data.path or data.root?); resume with the "
                              "run's data, or start a new run from its weights with train.init_from")
    if "normaliser" in ours and "normaliser" in meta:
        was, now = meta["normaliser"], ours["normaliser"]
        if any(not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
               for k in ("mean", "std") for a, b in zip(was[k], now[k], strict=True)):
            raise CheckpointError(f"--resume: this config's training lines give other normalisation statistics "
                                  f"(mean {now['mean']}, std {now['std']}) than {last} was trained with (mean "
                                  f"{was['mean']}, std {was['std']}): other data.train_sets or data.max_lines? "
                                  "Resume with the run's data, or start a new run from its weights with "
                                  "train.init_from")


def config_changes(before: Config, after: Config) -> dict[str, list[Any]]:
    """``{"section.key": [before, after]}`` for every setting of ``after`` that differs from ``before``."""
    a, b = before.to_dict(), after.to_dict()
    out: dict[str, list[Any]] = {}
    for section, values in b.items():
        if isinstance(values, dict):
            old = a.get(section) if isinstance(a.get(section), dict) else {}
            out.update({f"{section}.{k}": [old.get(k), v] for k, v in values.items() if old.get(k) != v})
        elif a.get(section) != values:
            out[section] = [a.get(section), values]
    return out


def train(cfg: Config, run_dir: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (``run_dir/last`` and ``run_dir/best`` checkpoints); returns the summary."""
    check_config(cfg)  # a bad value is a one-line error now, not a traceback later
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"the run folder {run_dir} is a file")
    last = run_dir / "last"
    recover(last)  # a save that died between its two renames
    if resume and not last.exists():
        raise CheckpointError(f"--resume: no checkpoint at {last}")
    if not resume and ((run_dir / "last").exists() or (run_dir / "best").exists()):
        # Starting again here would replace its checkpoints and mix two runs in metrics.jsonl.
        how = ("continue it with --resume" if last.exists() else
               f"it has no last checkpoint to resume; start a new run from its weights with "
               f"train.init_from={json.dumps(str(run_dir / 'best'))} and another --run-dir")
        raise TrainingError(f"{run_dir} already holds a run: {how}, or give another --run-dir "
                            "(or delete that folder to start it again)")
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.set_flush_denormal(True)
    device = torch.device(tc.device)
    # deviation: train.matmul_dtype, the fused LSTMs' matrix products in a lower precision during the
    # training steps; validation, checkpoints and the weights themselves stay float32
    step_dtype = MATMUL_DTYPES[tc.matmul_dtype]
    if step_dtype is not None and device.type == "cpu" and _cpu_has_bf16() is False:
        print("graves train: train.matmul_dtype = bfloat16 on a CPU without bfloat16 instructions (no avx512_bf16, "
              "amx_bf16 or bf16 in /proc/cpuinfo) may be slower than float32; `python bench/step_speed.py CONFIG` "
              "measures it", file=sys.stderr)

    trainer_state = None
    if resume:
        saved = Config.from_dict(config_of(load_meta(last), last))
        if saved.model != cfg.model:
            raise CheckpointError(f"--resume: the model config differs from the one saved in {last}")
        if saved.train.batch_size != cfg.train.batch_size:  # the saved position counts batches of an epoch
            raise CheckpointError(f"--resume: train.batch_size was {saved.train.batch_size} in {last}, now "
                                  f"{cfg.train.batch_size}; resume with the run's batch size, or start a new run "
                                  f"from its weights with train.init_from")
        trainer_state = load_trainer_state(last)
        if trainer_state is None:
            raise CheckpointError(f"--resume: {last} has no trainer state (a shipped model cannot be resumed)")
        if (saved.noise.kind == "adaptive") != (cfg.noise.kind == "adaptive"):  # log s joins or leaves the state
            raise CheckpointError(f"--resume: noise.kind was {saved.noise.kind!r} in {last}, now "
                                  f"{cfg.noise.kind!r}; adaptive noise adds a learned s per weight, so it cannot be "
                                  "switched on or off in a run: start a new run from its weights with "
                                  "train.init_from")
        # the task and its symbols, so the net's input and output (the alphabet: the synthesizer's text)
        for key in ("name", "alphabet") if cfg.model.kind == "synthesis" else ("name",):
            was, now = getattr(saved.data, key), getattr(cfg.data, key)
            if was != now:
                raise CheckpointError(f"--resume: data.{key} was {was!r} in {last}, now {now!r}; resume with "
                                      "the run's data, or start a new run from its weights with train.init_from")
        changed = config_changes(saved, cfg)
        if changed:  # on purpose (a lower learning rate) or not (a forgotten override): say so, and record it
            print(f"graves train: resuming {last} (step {trainer_state['step']}) with settings that differ "
                  "from the run's: " + ", ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in changed.items()),
                  file=sys.stderr)

    torch.manual_seed(tc.seed)
    task = build_task(cfg)
    if resume:
        _check_resumed_data(task, last)
    model = task.model.to(device)
    if tc.init_from and not resume:
        # The paper chains runs: each regularised net starts from the previous net's final weights.
        _init_from(model, task, tc.init_from)

    noise = build_noise(cfg, model)
    optimizer = optimizer_from_config(cfg.optim, optimised_params(cfg, model, noise))
    averaged = None
    # The noise draws get a stream of their own: seeded like the model's initialisation (torch.manual_seed
    # above) they would reuse its random numbers, so the first noise draw would follow the initial weights.
    generator = torch.Generator().manual_seed(tc.seed * 1_000_003 + NOISE_STREAM)

    step, epoch, position, best, best_saved, bad_evals = 0, 0, 0, math.inf, math.inf, 0
    skipped_in_a_row = 0
    history: list[dict[str, Any]] = []
    if trainer_state is not None:
        try:
            model.load_state_dict(load_weights(last))
        except RuntimeError as e:  # other data with other symbols (data.path, data.root): other shapes
            lines = [line.strip() for line in str(e).splitlines() if line.strip()]
            raise CheckpointError(f"--resume: the weights in {last} do not fit the net this config builds "
                                  f"(the data's symbols may differ): {lines[1] if len(lines) > 1 else e}") from e
        if isinstance(noise, AdaptiveWeightNoise):
            noise.load_state_dict(trainer_state["noise"])
        # The config wins over the saved hyper-parameters, so `--resume optim.lr=3e-4` lowers the rate and
        # keeps the moment estimates; with an unchanged config this is a no-op and the resume stays exact.
        configured = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        saved_groups = len(trainer_state["optimizer"]["param_groups"])
        if saved_groups != len(optimizer.param_groups):
            raise CheckpointError(
                f"cannot resume {last}: its optimiser state has {saved_groups} parameter group(s) and this config "
                f"makes {len(optimizer.param_groups)} (adaptive noise uses a second group when noise.lr_scale ≠ 1; "
                "resume with the run's own noise.lr_scale)")
        optimizer.load_state_dict(trainer_state["optimizer"])
        for group, hyper in zip(optimizer.param_groups, configured):
            group.update(hyper)
        generator.set_state(trainer_state["generator"])
        torch.set_rng_state(trainer_state["torch_rng"])
        task.load_state_dict(trainer_state["task"])
        step, epoch, position = trainer_state["step"], trainer_state["epoch"], trainer_state["position"]
        best, bad_evals = trainer_state["best"], trainer_state["bad_evals"]
        best_saved = trainer_state.get("best_saved", best)  # runs saved before session 13 kept one
        history = trainer_state["history"]
    if tc.ema_decay:
        # deviation: train.ema_decay (Polyak averaging). The copy starts equal to the current weights.
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay))
        if trainer_state is not None and trainer_state.get("ema"):
            averaged.load_state_dict(trainer_state["ema"])
        else:
            averaged.update_parameters(model)

    metrics_path = run_dir / "metrics.jsonl"

    def disk_error(what: Path, exc: OSError, at_step: int) -> CheckpointError:
        where = f"{last} holds the last checkpoint: make room, then --resume" if last.exists() else "no checkpoint yet"
        return CheckpointError(f"could not write {what}: {exc.strerror or exc}; training stopped at step {at_step} "
                               f"({where})")

    try:
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise disk_error(run_dir / "config.json", exc, step) from exc
    try:
        metrics_file = open(metrics_path, "a", encoding="utf-8")
        if metrics_file.tell() and _ends_cut_short(metrics_path):
            metrics_file.write("\n")  # a killed process's last record was cut short: start on a new line
    except OSError as exc:
        raise disk_error(metrics_path, exc, step) from exc
    t_start = time.monotonic()

    def log(record: dict[str, Any]) -> None:
        try:
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
        except OSError as exc:  # a full disk: stop with the last checkpoint intact
            raise disk_error(metrics_path, exc, step) from exc

    if trainer_state is not None:
        log({"step": step, "epoch": epoch, "resumed": True, "changed": changed})

    def save(which: str) -> None:
        # Outside noise.sample() the model holds the clean weights / posterior means; `best` is the
        # validated model, the average when there is one.
        source = averaged.module if averaged is not None and which == "best" else model
        weights = source.state_dict()
        meta = {"config": cfg.to_dict(), "step": step, "epoch": epoch, "history": history, **task.meta()}
        if source is not model:
            meta["weights"] = f"exponential moving average of the training weights, decay {tc.ema_decay:g}"
        state = {
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "task": task.state_dict(),
            "noise": noise.state_dict() if isinstance(noise, AdaptiveWeightNoise) else {},
            "step": step,
            "epoch": epoch,
            "position": position,
            "best": best,  # early stopping's reference: the scheduled validations only
            "best_saved": best_saved,  # the loss of the `best` checkpoint (stop-time validations too)
            "bad_evals": bad_evals,
            "history": history,
            "ema": averaged.state_dict() if averaged is not None else {},
        }
        save_checkpoint(run_dir / which, weights, meta, state if which == "last" else None)

    def validate(at_stop: bool = False) -> bool:
        """Evaluate, record, checkpoint; True when early stopping says stop.

        A validation made only because the run stops between scheduled ones (``at_stop``) is recorded and
        saves ``best`` when it is the best so far, but leaves early stopping's count alone, so that a
        stopped and resumed run stops early exactly when an uninterrupted one would. A scheduled
        validation of weights a stop already validated (a run stopped at the end of an epoch, then
        resumed) takes that stop's numbers instead of a second record.
        """
        nonlocal best, best_saved, bad_evals
        if not at_stop and history and history[-1]["step"] == step and history[-1].get("at_stop"):
            record = history[-1]
            del record["at_stop"]  # now the scheduled validation of these weights
        else:
            metrics = task.evaluate(averaged.module if averaged is not None else model, "valid")
            record = {"step": step, "epoch": epoch, "minutes": (time.monotonic() - t_start) / 60, "valid": metrics}
            if averaged is not None:
                record["valid_raw"] = task.evaluate(model, "valid")
            if at_stop:
                record["at_stop"] = True
            history.append(record)
            log(record)
        loss = record["valid"]["loss"]
        if loss < best_saved:
            best_saved = loss
            save("best")
        if not at_stop:
            if loss < best:
                best, bad_evals = loss, 0
            else:
                bad_evals += 1
        save("last")
        if progress:
            tqdm.write(f"step {step} epoch {epoch}: valid "
                       + " ".join(f"{k}={v:.4g}" for k, v in record["valid"].items()))
        return not at_stop and bool(tc.patience) and bad_evals >= tc.patience

    stop_reason = "epochs"
    bar = tqdm(total=None, disable=not progress, unit="step", dynamic_ncols=True, initial=step)
    try:
        with _Stop() as stopper:
            done = False
            # a run resumed after it stopped by its own rules stays stopped (max_steps and patience count
            # over the whole chain of resumes)
            if tc.max_steps and step >= tc.max_steps:
                stop_reason, done = "max_steps", True
            elif tc.patience and bad_evals >= tc.patience:
                stop_reason, done = "early stopping", True
            elif epoch >= tc.epochs:
                done = True  # stop_reason stays "epochs"
            if done and trainer_state is not None:
                why = {"max_steps": f"step {step} >= train.max_steps {tc.max_steps}",
                       "early stopping": f"validations without improvement: {bad_evals} >= train.patience "
                                         f"{tc.patience}",
                       "epochs": f"epoch {epoch} >= train.epochs {tc.epochs}"}[stop_reason]
                print(f"graves train: {last} already stopped ({why}); raise that setting to train on", file=sys.stderr)
            while epoch < tc.epochs and not done:
                model.train()
                # The epoch's batch order depends on (seed, epoch) alone, so a resumed run sees the same
                # batches; the shared generator is left to the noise draws.
                batches = task.batches(epoch, torch.Generator().manual_seed(tc.seed * 1_000_003 + epoch))
                n_batches = len(batches)
                for i, batch in enumerate(batches):
                    if i < position:
                        continue
                    t0 = time.monotonic()
                    loss, count = training_step(task, model, batch, optimizer, noise, generator, step_dtype)
                    step += 1
                    position = i + 1
                    lv = float(loss.detach())
                    if math.isfinite(lv):
                        skipped_in_a_row = 0
                        if averaged is not None:
                            averaged.update_parameters(model)
                    else:  # training_step did not apply it
                        skipped_in_a_row += 1
                        log({"step": step, "epoch": epoch, "skipped": "non-finite loss or gradient",
                             "in_a_row": skipped_in_a_row})
                        if skipped_in_a_row >= MAX_NONFINITE_STEPS:
                            raise TrainingError(
                                f"the loss or its gradient was not finite {skipped_in_a_row} steps in a row (the "
                                f"last at step {step}); none of them was applied; last checkpoint: {last}")
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, batch=f"{position}/{n_batches}", loss=f"{lv:.4g}",
                                    seq_s=f"{count / max(time.monotonic() - t0, 1e-9):.1f}")
                    if step % tc.log_every == 0 and math.isfinite(lv):  # a skipped step is logged above
                        log({"step": step, "epoch": epoch, "train_loss": lv, "seconds": time.monotonic() - t_start,
                             **_noise_stats(noise, task)})
                    if tc.eval_every and step % tc.eval_every == 0 and validate():
                        stop_reason, done = "early stopping", True
                        break
                    if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                        save("last")
                    if tc.max_steps and step >= tc.max_steps:
                        stop_reason, done = "max_steps", True
                        break
                    if tc.max_minutes and time.monotonic() - t_start >= tc.max_minutes * 60:
                        stop_reason, done = "max_minutes", True
                        break
                    if stopper.requested:
                        stop_reason, done = "interrupted", True
                        break
                else:
                    epoch += 1
                    position = 0
                    if not tc.eval_every and validate():
                        stop_reason, done = "early stopping", True
            if not history or history[-1]["step"] != step:
                if trainer_state is None or step != trainer_state["step"]:
                    save("last")  # first, in case the stop-time validation is cut short (SIGKILL after SIGTERM)
                validate(at_stop=True)
    finally:
        bar.close()
        with contextlib.suppress(OSError):  # a full disk already reported; don't mask that error
            metrics_file.close()
    summary = {"stop": stop_reason, "step": step, "epoch": epoch, "best_valid_loss": best_saved,
               "last": history[-1] if history else None, "run_dir": str(run_dir)}
    return summary
