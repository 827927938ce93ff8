"""Typed, frozen experiment configuration: one TOML per experiment, dotted overrides.

A config file has up to five tables, ``[model]``, ``[data]``, ``[optim]``, ``[noise]`` and ``[train]``,
plus a top-level ``name``. Every key is checked against the dataclasses below: an unknown key or a
value of the wrong type is an error that names it. ``None`` is written ``"none"`` in TOML and on the
command line. The resolved config is saved with every run and every checkpoint (``to_dict``), and a
model is rebuilt from a checkpoint's config alone (``from_dict``).

The defaults reproduce the paper's handwriting-synthesis setup (Section 5.2); each experiment's TOML
under ``configs/`` states the rest.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


#: ``train.matmul_dtype`` values (``graves.nn.lstm.MATMUL_DTYPES`` maps each to its torch dtype).
MATMUL_DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "synthesis"  # "text" | "handwriting" | "synthesis"
    hidden_size: int = 400  # H
    num_layers: int = 3  # N
    mixtures: int = 20  # M (handwriting output, eq. 17)
    window_mixtures: int = 10  # K (soft window, eq. 46)
    lstm_clip: float | None = 10.0  # derivative clipping inside the LSTM (Section 2.1)
    output_clip: float | None = 100.0  # clipping of dL/dŷ (Section 4.2); never binds for text nets (|y − δ| ≤ 1)
    fused: bool = True  # the fused LSTM path (proven equal to the reference in tests)
    # Initial value of the κ̂ biases (eq. 48), so that the window starts moving at exp(κ̂) characters per
    # pen step. The paper gives no initialisation; IAM lines have ~22 points per character, and starting
    # near that rate (−3.0 ≈ log 1/20) rather than ~1 character per step lets the alignment form sooner.
    # None keeps PyTorch's default (uniform ±1/√H, i.e. ~1 character per step).
    window_kappa_bias: float | None = None


@dataclass(frozen=True)
class DataConfig:
    name: str = "iamondb"  # ptb-char | ptb-word | enwik8 | bytes | chars | iamondb
    root: str = ""  # "" → $GRAVES_DATA, else ./data
    path: str = ""  # the file, for name = bytes | chars
    split: str = "paper"  # enwik8: "paper" (96M/4M) or "90-5-5"
    train_sets: tuple[str, ...] = ("trainset", "testset_f", "testset_t")
    valid_sets: tuple[str, ...] = ("testset_v",)
    max_lines: int = 0  # 0 = every line; >0 keeps the first n (small CPU variants)
    max_points: int = 0  # 0 = lines are never truncated; >0 truncates longer lines (a deviation)
    alphabet: str = "full"  # "full" (every character in the transcriptions + unknown) | "paper57"
    cache_dir: str = ""  # "" → $GRAVES_CACHE, else ~/.cache/graves


@dataclass(frozen=True)
class OptimConfig:
    name: str = "rmsprop"  # rmsprop (Graves, eqs. 38–45) | sgd (with momentum) | adam (a deviation)
    lr: float = 1e-4
    momentum: float = 0.9
    alpha: float = 0.95  # ℵ in eqs. 38–39
    eps: float = 1e-4  # ℸ in eq. 40


@dataclass(frozen=True)
class NoiseConfig:
    kind: str = "none"  # none | weight (fixed std) | adaptive (Graves 2011)
    std: float = 0.075  # weight-noise std, or the initial posterior std for adaptive noise
    per: str = "sequence"  # a fresh draw of the weights per "sequence" (the paper) | "batch" | "group" (deviations)
    group_size: int = 8  # per = "group": each run of this many sequences of a minibatch shares one draw
    # adaptive noise: the log s parameters learn at optim.lr × lr_scale (1 = the same rate as the weights;
    # the paper does not say how s is parameterised or stepped; docs/decisions.md)
    lr_scale: float = 1.0
    # adaptive noise: an upper bound on every posterior s, enforced after each step (0 = none, the paper).
    # A weight the data barely constrains can grow a huge s; one behind an exp (the window's kappa-hat,
    # eq. 51) then makes non-finite draws (docs/decisions.md)
    max_std: float = 0.0
    # adaptive noise: how the s gradient is estimated: "reparam" (SPEC §2's choice: through w = μ + s ξ) |
    # "fisher" (Graves 2011's: s² (∂L/∂w)², the squared-gradient estimate of the curvature; graves.nn.noise)
    s_gradient: str = "reparam"


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32
    seq_len: int = 100  # text: truncated-BPTT length T
    reset_every: int = 0  # text: reset the state every R sequences (0 = only at the start of each epoch)
    shuffle: bool = True
    epochs: int = 20
    max_steps: int = 0  # 0 = no limit
    max_minutes: float = 0.0  # 0 = no limit; training stops cleanly (and checkpoints) at the limit
    eval_every: int = 0  # steps between validations; 0 = once per epoch
    checkpoint_every: int = 0  # steps between checkpoints; 0 = at every validation
    patience: int = 0  # early stopping: validations without improvement (0 = off)
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # torch threads (0 = torch's default)
    init_from: str = ""  # start from this checkpoint's weights (the paper chains runs this way)
    log_every: int = 10
    # deviation: validate, early-stop on and save as `best` an exponential moving average of the weights
    # (Polyak averaging; w̄ ← d·w̄ + (1 − d)·w after every applied step). 0 = off, the paper. `last` keeps
    # the training weights, with the average in its trainer state (docs/decisions.md)
    ema_decay: float = 0.0
    # deviation: the dtype the fused LSTM layers multiply matrices in during training steps ("bfloat16":
    # operands rounded and each product rounded once to bfloat16, then added in float32; the state and the
    # updates stay float32; validation always runs in float32; faster on CPUs with bf16 instructions,
    # docs/results.md). "float32" = the paper (docs/decisions.md)
    matmul_dtype: str = "float32"


@dataclass(frozen=True)
class Config:
    name: str = "experiment"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Config":
        return _build(Config, d, "")

    def override(self, assignments: list[str]) -> "Config":
        """Apply ``section.key=value`` assignments (type-checked; unknown keys are errors)."""
        d = self.to_dict()
        for a in assignments:
            key, sep, raw = a.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"override {a!r} is not of the form section.key=value")
            parts = key.strip().split(".")
            node = d
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"unknown config key {key.strip()!r}")
                node = node[p]
            if parts[-1] not in node or isinstance(node[parts[-1]], dict):
                raise ConfigError(f"unknown config key {key.strip()!r}")
            node[parts[-1]] = _parse_value(raw.strip())
        return Config.from_dict(d)


def check_config(cfg: Config) -> Config:
    """Every value in its range, before any work: a :class:`ConfigError` naming the first key that is not
    (an unknown noise kind, a momentum of 1, a batch of 0, ...). Returns ``cfg``. ``graves train`` calls it;
    a checkpoint's config is not re-checked when it is only loaded to sample or evaluate."""
    import math

    def need(ok: bool, key: str, what: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{key} must be {what}, got {value!r}")

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    m, d, o, n, t = cfg.model, cfg.data, cfg.optim, cfg.noise, cfg.train
    need(m.kind in ("text", "handwriting", "synthesis"), "model.kind", "'text', 'handwriting' or 'synthesis'", m.kind)
    for key in ("hidden_size", "num_layers", "mixtures", "window_mixtures"):
        need(getattr(m, key) >= 1, f"model.{key}", "at least 1", getattr(m, key))
    for key in ("lstm_clip", "output_clip"):
        v = getattr(m, key)
        need(v is None or (number(v) and v > 0), f"model.{key}", "a number > 0, or none (no clipping)", v)
    need(d.name in ("ptb-char", "ptb-word", "enwik8", "bytes", "chars", "iamondb"), "data.name",
         "one of ptb-char, ptb-word, enwik8, bytes, chars, iamondb", d.name)
    need(d.alphabet in ("full", "paper57"), "data.alphabet", "'full' or 'paper57'", d.alphabet)
    need(d.max_lines >= 0, "data.max_lines", ">= 0 (0: every line)", d.max_lines)
    need(d.max_points >= 0, "data.max_points", ">= 0 (0: never truncate)", d.max_points)
    need(o.name in ("rmsprop", "sgd", "adam"), "optim.name", "'rmsprop', 'sgd' or 'adam'", o.name)
    need(number(o.lr) and o.lr >= 0, "optim.lr", "a number >= 0", o.lr)
    need(number(o.momentum) and 0 <= o.momentum < 1, "optim.momentum", "in [0, 1)", o.momentum)
    need(number(o.alpha) and 0 < o.alpha < 1, "optim.alpha", "in (0, 1)", o.alpha)
    need(number(o.eps) and o.eps > 0, "optim.eps", "a number > 0", o.eps)
    need(n.kind in ("none", "weight", "adaptive"), "noise.kind", "'none', 'weight' or 'adaptive'", n.kind)
    need(n.per in ("sequence", "batch", "group"), "noise.per", "'sequence' (the paper), 'batch' or 'group'", n.per)
    need(n.group_size >= 1, "noise.group_size", "at least 1 (sequences per draw)", n.group_size)
    need(number(n.std) and (n.std > 0 if n.kind == "adaptive" else n.std >= 0), "noise.std",
         "> 0 for adaptive noise, >= 0 otherwise", n.std)
    need(number(n.lr_scale) and n.lr_scale > 0, "noise.lr_scale", "a positive number", n.lr_scale)
    need(n.s_gradient in ("reparam", "fisher"), "noise.s_gradient", "'reparam' (SPEC's) or 'fisher' (Graves 2011's)",
         n.s_gradient)
    need(number(n.max_std) and (n.max_std == 0 or n.max_std >= n.std), "noise.max_std",
         f"0 (no bound) or at least noise.std ({n.std:g}, the posterior's initial s)", n.max_std)
    for key in ("batch_size", "seq_len", "log_every"):
        need(getattr(t, key) >= 1, f"train.{key}", "at least 1", getattr(t, key))
    for key in ("reset_every", "epochs", "max_steps", "eval_every", "checkpoint_every", "patience", "threads"):
        need(getattr(t, key) >= 0, f"train.{key}", ">= 0", getattr(t, key))
    need(number(t.max_minutes) and t.max_minutes >= 0, "train.max_minutes", ">= 0 (0: no limit)", t.max_minutes)
    need(number(t.ema_decay) and 0 <= t.ema_decay < 1, "train.ema_decay", "in [0, 1) (0: no averaging)", t.ema_decay)
    need(t.matmul_dtype in MATMUL_DTYPES, "train.matmul_dtype", " or ".join(map(repr, MATMUL_DTYPES)),
         t.matmul_dtype)
    need(_device_ok(t.device), "train.device", "a device torch can use here ('cpu', or 'cuda' where a GPU is present)",
         t.device)
    return cfg


def _device_ok(name: Any) -> bool:
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        return False
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index is None or device.index < torch.cuda.device_count())
    if device.type == "mps":
        return torch.backends.mps.is_available()
    return True  # cpu, and others torch knows (the tests' "meta" stand-in for an accelerator)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a config file (not UTF-8 text: {exc.reason} at byte {exc.start})") from None
    except OSError as exc:  # a folder, no permission, ...
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    raw.setdefault("name", path.stem)
    try:
        cfg = Config.from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg.override(overrides or [])


def _parse_value(raw: str) -> Any:
    if raw.lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare string


def _to_plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_plain(v) for v in x]
    return x


def _build(cls: type, d: Any, where: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{where or 'config'} must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown config key {(where + '.' if where else '') + unknown[0]!r}")
    kwargs = {}
    for name, value in d.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, key)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if value is None:
        raise ConfigError(f"{key} may not be none")
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, key) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "NoiseConfig",
    "OptimConfig",
    "TrainConfig",
    "load_config",
    "replace",
]
