"""Handwriting prediction (Section 4) and synthesis (Section 5) as tasks for the one training loop.

What this task does (see ``graves.train`` for the protocol):

* **data**: IAM-OnDB lines (:mod:`graves.data.iamondb`) of the paper's split — training on
  ``cfg.data.train_sets`` (trainset + testset_f + testset_t), validation on ``cfg.data.valid_sets``
  (testset_v); ``cfg.data.max_lines > 0`` keeps the first n lines of each split (small CPU variants).
  The data root is ``cfg.data.root``, else ``$GRAVES_DATA``, else ``./data``; the IAM-OnDB files are in
  its ``iam-ondb/`` folder (or in the root itself). Full splits go through the loader's cache
  (``cfg.data.cache_dir``, else ``$GRAVES_CACHE``, else ``~/.cache/graves``). In place of the official
  files the folder may hold a pack, ``iamondb.pack.npz`` (or ``data.root`` may name one): see
  :func:`graves.data.iamondb.write_pack`.
* **normalisation**: the offsets (dx, dy) are normalised to mean 0, std 1 with a
  :class:`~graves.data.strokes.Normaliser` fit on the training lines (Section 4); its statistics go into
  the checkpoint, so evaluation and sampling never touch the training data. eos is left as is.
* **inputs and targets**: the null first input x_1 = 0, so for a line of T points p_1..p_T the inputs are
  (0, p_1, ..., p_{T−1}) and the targets p_1..p_T: every point is predicted, the first from nothing.
* **batches**: lines of similar length are batched together to cut padding (per epoch: a shuffled order,
  cut into pools of 50 batches, each pool sorted by length and cut into batches, the batches shuffled),
  every random draw from the loop's ``torch.Generator``. Padding is masked: no loss, no gradient.
  Lines are never truncated unless ``cfg.data.max_points > 0`` (a deviation).
* **loss** (the optimiser's objective): per line, the sum over time of the mixture NLL (eq. 26); averaged
  over the lines of the batch.
* **metrics** (``evaluate``): the paper's log-loss (Tables 3–4) — the mean over lines of the summed
  per-point loss in nats, normalised units (``"loss"``, lower is better; a density loss, so it is
  negative once the net predicts well: Table 3's −1041.0 is this number); the same in raw IAM units
  (``"loss_raw"``, with the Jacobian of the normalisation); and the SSE per point (``"sse"``: squared
  error between the true offset and the mixture mean Σ_j π^j μ^j, summed over dx and dy, normalised
  units; SPEC §3 **Choice**).

Shapes: T time steps, B lines, U characters, V alphabet size, M mixture components.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from graves.config import Config, ConfigError
from graves.data.alphabet import Alphabet
from graves.nn.mixture import mixture_mean, mixture_nll, mixture_params

__all__ = ["HandwritingBatch", "HandwritingTask", "OFFICIAL_SETS", "data_root", "load_lines", "make_batch"]

#: The four IAM-OnDB-t1 sets (the paper's split: train = trainset + testset_f + testset_t, valid = testset_v).
OFFICIAL_SETS = ("trainset", "testset_v", "testset_t", "testset_f")

POOL_BATCHES = 50  # batches per length-sorted pool when bucketing (a choice; SPEC §5)


class HandwritingBatch(NamedTuple):
    """One batch of lines, time-major and padded.

    Attributes:
        x: inputs ``(T, B, 3)`` with the null first input x_1 = 0.
        target: ``(T, B, 3)``, the point each output predicts (x_{t+1}).
        mask: ``(T, B)`` float, 1 on real points, 0 on padding.
        lengths: ``(B,)`` points per line.
        c: one-hot text ``(B, U, V)`` (synthesis), or None.
        index: ``(B,)`` the lines' indices in their split.
    """

    x: Tensor
    target: Tensor
    mask: Tensor
    lengths: Tensor
    c: Tensor | None
    index: Tensor

    def to(self, device: torch.device | str) -> "HandwritingBatch":
        """The tensors the net and the loss read, on ``device``; ``lengths`` and ``index`` stay where they are
        (bookkeeping, read on the host)."""
        return self._replace(x=self.x.to(device), target=self.target.to(device), mask=self.mask.to(device),
                             c=None if self.c is None else self.c.to(device))

    def subset(self, index: slice | Sequence[int] | Tensor) -> "HandwritingBatch":
        """The lines ``index`` (a slice or indices) of this batch, padding trimmed to the longest of them."""
        idx = torch.arange(self.lengths.shape[0], device=self.lengths.device)[index]  # (B',)
        T = int(self.lengths[idx].max())
        c = None
        if self.c is not None:
            c = self.c[idx]  # (B', U, V)
            U = int(c.abs().sum(-1).gt(0).sum(-1).max())  # the longest text among them
            c = c[:, :U]
        return HandwritingBatch(self.x[:T, idx], self.target[:T, idx], self.mask[:T, idx], self.lengths[idx], c,
                                self.index[idx])


def make_batch(offsets: Sequence[np.ndarray], texts: Sequence[str] | None = None,
               alphabet: Alphabet | None = None, index: Sequence[int] | None = None) -> HandwritingBatch:
    """Pad normalised lines into a batch.

    Args:
        offsets: B arrays ``(T_b, 3)`` of normalised (dx, dy, eos).
        texts: B transcriptions (synthesis) and the ``alphabet`` to encode them, or None. A character the
            alphabet lacks (e.g. testset_v's ``*``, never seen in training) goes through the substitution
            table of :mod:`graves.data.alphabet`, then to the unknown class.

    Returns:
        a :class:`HandwritingBatch`; ``x[0] = 0`` (the null input) and ``x[t] = target[t − 1]``.
    """
    B = len(offsets)
    lengths = torch.tensor([len(o) for o in offsets], dtype=torch.long)
    T = int(lengths.max())
    target = torch.zeros(T, B, 3)  # (T, B, 3)
    for b, o in enumerate(offsets):
        target[: len(o), b] = torch.from_numpy(np.ascontiguousarray(o, dtype=np.float32))
    x = torch.zeros(T, B, 3)  # (T, B, 3): x_1 = 0, the null first input (Section 2)
    x[1:] = target[:-1]
    mask = (torch.arange(T)[:, None] < lengths[None, :]).to(torch.float32)  # (T, B)
    x = x * mask[:, :, None]  # inputs past a line's end are zero too (they are never scored)
    c = None
    if texts is not None:
        if alphabet is None:
            raise ValueError("texts need an alphabet")
        c, _ = alphabet.one_hot(list(texts), substitute=True)  # (B, U, V); unseen characters → unknown
    idx = torch.tensor(list(index) if index is not None else range(B), dtype=torch.long)
    return HandwritingBatch(x, target, mask, lengths, c, idx)


class _Batches(Sequence):
    """The batches of one epoch, built lazily (the loop asks for ``len`` and iterates)."""

    def __init__(self, groups: list[list[int]], build):
        self._groups = groups
        self._build = build

    def __len__(self) -> int:
        return len(self._groups)

    def __getitem__(self, i: int) -> HandwritingBatch:  # type: ignore[override]
        return self._build(self._groups[i])


def _length_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator | None) -> list[list[int]]:
    """Indices grouped into batches of similar length.

    With a generator: shuffle, cut into pools of ``POOL_BATCHES`` batches, sort each pool by length, cut it
    into batches, shuffle the batches. Without: sorted by length (evaluation; deterministic).
    """
    n = len(lengths)
    lengths_t = torch.as_tensor(list(lengths))
    if generator is None:
        order = torch.argsort(lengths_t, stable=True).tolist()
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    perm = torch.randperm(n, generator=generator)
    pool = batch_size * POOL_BATCHES
    groups: list[list[int]] = []
    for start in range(0, n, pool):
        chunk = perm[start:start + pool]
        chunk = chunk[torch.argsort(lengths_t[chunk], stable=True)].tolist()
        groups.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [groups[i] for i in torch.randperm(len(groups), generator=generator).tolist()]


def data_root(cfg: Config) -> Path:
    """The IAM-OnDB folder: ``<root>/iam-ondb`` when it exists, else ``<root>`` itself, where ``<root>`` is
    ``cfg.data.root``, else ``$GRAVES_DATA``, else ``./data``."""
    root = Path(cfg.data.root or os.environ.get("GRAVES_DATA") or "data").expanduser()
    return root / "iam-ondb" if (root / "iam-ondb").is_dir() else root


def load_lines(cfg: Config, sets: Sequence[str], progress: bool = False) -> list:
    """The IAM-OnDB lines of ``sets`` in raw units (:class:`graves.data.iamondb.Line`).

    The synthesis net needs a transcription for every line; the prediction net does not, so it also keeps
    the lines of forms whose transcription does not pair up (``text=None``): the paper's 10,741 training
    lines rather than 10,732.

    With ``cfg.data.max_lines > 0`` only the first n lines (in split-file order) are read: just enough forms
    are parsed, without the cache (small CPU variants and tests). Otherwise every line, through the cache
    of :func:`graves.data.iamondb.load_iamondb`.
    """
    from graves.data.iamondb import DataError, expand_sets, find_pack, load_iamondb, read_forms, read_split

    root = data_root(cfg)
    pack = find_pack(root)
    if pack is None and not (root / "splits").is_dir():
        raise DataError(f"IAM-OnDB not found under {root} (expected splits/, lineStrokes-all.tar.gz and "
                        "ascii-all.tar.gz, or an iamondb.pack.npz; set data.root or GRAVES_DATA)")
    require_text = cfg.model.kind == "synthesis"
    n = cfg.data.max_lines
    if n <= 0:
        return load_iamondb(root, tuple(sets), cache_dir=cfg.data.cache_dir or None, progress=progress,
                            require_text=require_text)
    if pack is not None:  # the pack holds every line already: the first n, as read_forms would give them
        return load_iamondb(pack, tuple(sets), progress=False, require_text=require_text, problems=[])[:n]
    forms = [f for s in expand_sets(tuple(sets)) for f in read_split(root / "splits" / f"{s}.txt")]
    k = min(len(forms), n // 5 + 2)  # forms hold about 7 lines each
    while True:
        by_form, _ = read_forms(root, forms[:k], progress=progress)
        lines = [ln for f in forms[:k] for ln in by_form.get(f, []) if ln.text is not None or not require_text]
        if len(lines) >= n or k >= len(forms):
            return lines[:n]
        k = min(len(forms), 2 * k)


class HandwritingTask:
    """Task for ``cfg.model.kind`` = ``"handwriting"`` (Section 4) or ``"synthesis"`` (Section 5).

    Args:
        cfg: the experiment's config.
        meta: a checkpoint's meta: the normaliser, alphabet and sizes come from it and the training data
            is not read (evaluation, sampling).
    """

    def __init__(self, cfg: Config, meta: dict[str, Any] | None = None):
        from graves.data.strokes import Normaliser
        from graves.models import build_model

        kind = cfg.model.kind
        if kind not in ("handwriting", "synthesis"):
            raise ConfigError(f"HandwritingTask handles kinds 'handwriting' and 'synthesis', not {kind!r}")
        if cfg.data.name != "iamondb":
            raise ConfigError(f"handwriting nets train on data.name = 'iamondb', not {cfg.data.name!r}")
        self.cfg = cfg
        self.synthesis = kind == "synthesis"
        self._splits: dict[str, tuple[list[np.ndarray], list[str]]] = {}
        if meta is not None:
            self.normaliser = Normaliser.from_dict(meta["normaliser"])
            self.alphabet = Alphabet.from_dict(meta["alphabet"]) if self.synthesis else None
            self.num_train_sequences = int(meta.get("num_train_sequences", 0)) or 1
        else:
            lines = load_lines(cfg, cfg.data.train_sets)
            if not lines:
                raise ConfigError(f"no training lines in {cfg.data.train_sets} under {data_root(cfg)}")
            # "full": every character of the training transcriptions + an unknown class (SPEC §4 Choice)
            self.alphabet = Alphabet.build(cfg.data.alphabet, [ln.text for ln in lines]) if self.synthesis else None
            self.normaliser = Normaliser.fit([ln.offsets for ln in lines])
            self._splits["train"] = self._prepare(lines)
            self.num_train_sequences = len(lines)
        model_meta = {"alphabet": self.alphabet.to_dict()} if self.synthesis else {}
        self.model = build_model(cfg, model_meta)

    # ---------------------------------------------------------------------------------------- data
    def _prepare(self, lines) -> tuple[list[np.ndarray], list[str]]:
        """Normalised (and, only if asked, truncated) offsets and the texts of ``lines``."""
        offsets, texts = [], []
        max_points = self.cfg.data.max_points
        for ln in lines:
            o = self.normaliser.normalise(ln.offsets)  # (T, 3) float32, (dx, dy) → mean 0, std 1
            if max_points > 0 and len(o) > max_points:
                # deviation: data.max_points > 0 truncates long lines (the paper never truncates; for
                # synthesis the text then describes more than the points show).
                o = o[:max_points]
            offsets.append(o)
            texts.append(ln.text)
        return offsets, texts

    def _split(self, split: str, progress: bool = False) -> tuple[list[np.ndarray], list[str]]:
        if split not in self._splits:
            if split == "train":
                sets = self.cfg.data.train_sets
            elif split == "valid":
                sets = self.cfg.data.valid_sets
            elif split == "test":
                sets = tuple(s for s in OFFICIAL_SETS
                             if s not in self.cfg.data.train_sets and s not in self.cfg.data.valid_sets)
                if not sets:
                    raise ConfigError("no IAM-OnDB set is left for 'test': the paper's split trains on trainset, "
                                     "testset_f and testset_t and validates on testset_v")
            else:
                raise ConfigError(f"unknown split {split!r} (expected train, valid or test)")
            self._splits[split] = self._prepare(load_lines(self.cfg, sets, progress=progress))
        return self._splits[split]

    def _build(self, split: str, group: list[int]) -> HandwritingBatch:
        offsets, texts = self._split(split)
        return make_batch([offsets[i] for i in group], [texts[i] for i in group] if self.synthesis else None,
                          self.alphabet, group)

    def batches(self, epoch: int, generator: torch.Generator) -> Sequence[HandwritingBatch]:  # noqa: ARG002
        """The training batches of one epoch, in order; the order is drawn from ``generator``."""
        offsets, _ = self._split("train")
        groups = _length_batches([len(o) for o in offsets], self.cfg.train.batch_size,
                                 generator if self.cfg.train.shuffle else None)
        return _Batches(groups, lambda g: self._build("train", g))

    # ---------------------------------------------------------------------------------------- loss
    def _outputs(self, model, batch: HandwritingBatch) -> Tensor:
        """ŷ for ``batch``, which is on the model's device (:meth:`HandwritingBatch.to`)."""
        if self.synthesis:
            y_hat, _, _ = model(batch.x, batch.c)  # (T, B, 1 + 6M)
        else:
            y_hat, _ = model(batch.x)  # (T, B, 1 + 6M)
        return y_hat

    def line_losses(self, model, batch: HandwritingBatch) -> Tensor:
        """L(x) of each line (eq. 26 summed over its points), ``(B,)``, normalised units, padding masked."""
        batch = batch.to(next(model.parameters()).device)  # once: a no-op for tensors already there
        y_hat = self._outputs(model, batch)  # (T, B, 1 + 6M)
        nll = mixture_nll(y_hat, batch.target, batch.mask)  # (T, B)
        return nll.sum(0)  # (B,)

    def loss(self, model, batch: HandwritingBatch, index: slice | None = None) -> tuple[Tensor, int]:
        """The optimiser's objective: L(x) (eq. 26 summed over time) averaged over the batch's lines.

        With ``index`` (a slice), only those lines, averaged over themselves (weight noise runs a batch one
        line, or one group of ``noise.group_size`` lines, at a time). Returns the loss and the number of
        lines it covers.
        """
        if index is not None:
            batch = batch.subset(index)
        losses = self.line_losses(model, batch)  # (B,)
        return losses.mean(), int(losses.shape[0])

    @staticmethod
    def batch_size(batch: HandwritingBatch) -> int:
        """B, the number of lines in a batch."""
        return int(batch.lengths.shape[0])

    # ----------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, model, split: str = "valid", progress: bool = False) -> dict[str, float]:
        """The paper's metrics on ``split`` (Tables 3–4).

        Returns:
            ``loss``: mean over lines of L(x) in nats, normalised units (the paper's log-loss);
            ``loss_raw``: the same for the raw IAM offsets, −log p_raw = −log p_norm + log σ_x + log σ_y
            per point; ``sse``: mean over points of Σ_{dx,dy} (x − Σ_j π^j μ^j)², normalised units;
            ``nats_per_point``; ``lines``; ``points``.
        """
        offsets, texts = self._split(split, progress)
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total_loss = total_sse = 0.0
        total_points = 0
        groups = _length_batches([len(o) for o in offsets], max(self.cfg.train.batch_size, 1), None)
        it = groups
        if progress:
            from tqdm import tqdm

            it = tqdm(groups, desc=f"eval {split}", unit="batch", leave=False)
        try:
            for g in it:
                batch = self._build(split, g).to(device)
                y_hat = self._outputs(model, batch)  # (T, B, 1 + 6M)
                nll = mixture_nll(y_hat, batch.target, batch.mask)  # (T, B)
                mean = mixture_mean(mixture_params(y_hat))  # (T, B, 2)  Σ_j π^j μ^j
                se = ((batch.target[..., :2] - mean) ** 2).sum(-1) * batch.mask  # (T, B)
                total_loss = total_loss + nll.double().sum()  # summed on the device, read once at the end
                total_sse = total_sse + se.double().sum()
                total_points += int(batch.lengths.sum())  # lengths stay on the host
        finally:
            model.train(was_training)
        total_loss, total_sse = float(total_loss), float(total_sse)  # the only reads back from the device
        n = len(offsets)
        log_jacobian = float(np.log(np.asarray(self.normaliser.std, dtype=np.float64)).sum())  # log σ_x + log σ_y
        loss = total_loss / n
        return {
            "loss": loss,
            "loss_raw": (total_loss + total_points * log_jacobian) / n,
            "sse": total_sse / total_points,
            "nats_per_point": total_loss / total_points,
            "lines": float(n),
            "points": float(total_points),
        }

    # --------------------------------------------------------------------------------- checkpoints
    def meta(self) -> dict[str, Any]:
        """What rebuilds the model and its data transform from a checkpoint alone."""
        m: dict[str, Any] = {
            "normaliser": self.normaliser.to_dict(),
            "num_train_sequences": self.num_train_sequences,
            "input": "offsets (dx, dy, eos); (dx, dy) normalised by 'normaliser'; x_1 = 0",
        }
        if self.synthesis:
            m["alphabet"] = self.alphabet.to_dict()
        return m

    def state_dict(self) -> dict[str, Any]:
        return {}  # nothing is carried between batches: every line starts from the zero state

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: ARG002
        return None

