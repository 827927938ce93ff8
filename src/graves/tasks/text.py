"""Text prediction (Section 3) as a task for the one training loop (``graves.train``).

Training: truncated backpropagation through time over B parallel streams of the training split
(:class:`graves.data.text.StreamBatcher`): each batch holds the next T symbols of every stream; the
hidden state (h and c of every layer) is carried from one batch to the next but detached at the boundary,
so gradients stop at the start of each T-symbol sequence; it is reset to zero every R sequences
(``train.reset_every``; Section 3.2 uses T = R = 100) and at the start of each epoch. The first input of
the corpus is the null vector (Section 2: x_1 = 0), so its first symbol is predicted too (in training only
in epochs that start at offset 0: with ``shuffle`` each epoch starts at a random offset).

Loss (eq. 13): L = −Σ_t log y_t^{x_{t+1}}, **summed over the T steps of each sequence and averaged over
the B sequences of the batch** — the objective the optimiser sees (the paper's learning rate 1e-4 is
meant for a loss summed over each sequence). ``count`` is B.

Metrics (:meth:`TextTask.evaluate`), on a split read in order as B contiguous streams with the state
carried across batches (T only sets the chunk size; the results do not depend on it):

- ``loss``: mean −ln Pr(x_{t+1} | y_t) in nats per predicted symbol;
- ``bpc``: bits per *character*: total bits / characters of the split. For character and byte models
  the symbols are the characters, so this is ``loss / ln 2``; for the PTB word model the characters are
  those of the same text at character level (each word's letters + one separator or line end), which
  makes word and character models comparable, as in Table 1;
- ``perplexity``: per word, 2^(total bits / words), words counting one end-of-sentence per line
  (PTB only; for the word model it equals e^loss). Absent for corpora without words (bytes);
- ``error``: next-step classification error, % of symbols whose most probable prediction is wrong;
- ``symbols``: the number of predicted symbols.

Dynamic evaluation (:meth:`TextTask.evaluate_dynamic`, Section 3.1): the split is read once, in order, as
one stream in T-symbol segments; after the loss of each segment is recorded, one optimiser step (the
config's optimiser and learning rate) is taken on that segment's loss. It runs on a copy of the model.

Shapes: T time, B batch, V vocabulary, H cells, N layers (``docs/internals.md``).
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from graves.config import Config, ConfigError, DataConfig, OptimConfig
from graves.data.text import (
    EOS,
    UNK,
    DataError,
    StreamBatch,
    StreamBatcher,
    TextCorpus,
    Vocab,
    _read_utf8,
    load_corpus,
)
from graves.models.text import NULL, TextPredictor
from graves.nn.lstm import LSTMState
from graves.optim import optimizer_from_config

__all__ = [
    "TextTask",
    "count_characters",
    "count_words",
    "sample_text",
    "sample_text_checkpoint",
    "sequence_nll",
]

LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------------
# pieces shared by training, evaluation and sampling
# --------------------------------------------------------------------------------------------------


def sequence_nll(logits: Tensor, targets: Tensor) -> Tensor:
    """−log y_t^{x_{t+1}} of every step (eqs. 12–13): ``logits (T, B, V)``, ``targets (T, B)`` → ``(T, B)``.

    The softmax (eq. 12) is applied as a log-softmax; its gradient w.r.t. ŷ is y − δ (eq. 14).
    """
    T, B, V = logits.shape
    nll = F.cross_entropy(logits.reshape(T * B, V), targets.reshape(T * B), reduction="none")  # (T·B,)
    return nll.view(T, B)


def _detach(state: list[LSTMState] | None) -> list[LSTMState] | None:
    """Cut the gradient at a truncated-BPTT boundary; the values are carried over."""
    if state is None:
        return None
    return [LSTMState(s.h.detach(), s.c.detach()) for s in state]


def _line_end(vocab: Vocab) -> int | None:
    """The id of the line-end symbol ("\\n", ``<eos>`` or byte 10), or None."""
    for sym in ("\n", EOS, 10):
        if sym in vocab:
            return vocab.index[sym]
    return None


def count_words(ids: np.ndarray, vocab: Vocab) -> int:
    """Words of a PTB split, counting one end-of-sentence per line (PTB's word-level token count).

    Word vocabularies: every token is a word (``<eos>`` included). PTB character vocabularies (``_``
    between words, ``\\n`` at line ends): runs of other symbols, plus one per line end. Otherwise 0.
    """
    if vocab.unit == "word":
        return int(len(ids))
    if vocab.unit == "char" and "_" in vocab and "\n" in vocab:
        sep = np.isin(ids, [vocab.index["_"], vocab.index["\n"]])
        starts = ~sep & np.concatenate([[True], sep[:-1]])  # the first symbol of each word
        return int(starts.sum() + (ids == vocab.index["\n"]).sum())
    return 0


def count_characters(ids: np.ndarray, vocab: Vocab) -> int:
    """Characters of a split at PTB character level: for a word vocabulary each word is its letters
    (``<unk>`` one symbol, as in ``ptb.char``) plus one separator or line end; ``<eos>`` adds nothing.
    For character and byte vocabularies, the number of symbols."""
    if vocab.unit != "word":
        return int(len(ids))
    lengths = np.array([0 if s == EOS else (1 if s == UNK else len(str(s))) + 1 for s in vocab.symbols],
                       dtype=np.int64)  # (V,)
    return int(lengths[ids].sum())


def _first_lines(ids: np.ndarray, vocab: Vocab, max_lines: int) -> np.ndarray:
    """The first ``max_lines`` lines of a split (through the ``max_lines``-th line end); 0 = all."""
    if max_lines <= 0:
        return ids
    end = _line_end(vocab)
    if end is None:
        raise DataError("data.max_lines needs a corpus with line ends")
    where = np.flatnonzero(ids == end)
    return ids if len(where) < max_lines else ids[: where[max_lines - 1] + 1]


def data_root(dc: DataConfig) -> str:
    """``data.root``, else ``$GRAVES_DATA``, else ``./data``."""
    return dc.root or os.environ.get("GRAVES_DATA") or "data"


PTB = ("ptb-char", "ptb-word")


def _corpus_options(dc: DataConfig) -> dict[str, Any]:
    if dc.name in ("bytes", "chars"):
        if not dc.path:
            raise DataError(f"data.name = {dc.name!r} needs data.path (the file, relative to the data root)")
        return {"path": dc.path, "split": dc.split}
    return {"split": dc.split}


def _read_ptb_split(dc: DataConfig, vocab: Vocab, split: str) -> np.ndarray:
    """One split of PTB encoded with a saved vocabulary, reading only that split's file."""
    root = Path(data_root(dc))
    name = f"ptb.char.{split}.txt" if dc.name == "ptb-char" else f"ptb.{split}.txt"
    for folder in (root / "ptb", root, root / "simple-examples" / "data", root / "data"):
        if (folder / name).is_file():
            text = _read_utf8(folder / name)
            break
    else:
        raise DataError(f"{name} not found under {root} (run `graves data download ptb`)")
    if dc.name == "ptb-char":
        if len(text) % 2 or text[1::2].strip(" "):
            raise DataError(f"{name}: not in the ptb.char format (each character followed by one space)")
        text = text[0::2]
    return vocab.encode_text(text, allow_unk=False)


# --------------------------------------------------------------------------------------------------
# the task
# --------------------------------------------------------------------------------------------------


class _Epoch:
    """The batches of one epoch, from the first (``graves.train`` skips to its position on resume)."""

    def __init__(self, batcher: StreamBatcher, epoch: int):
        self.batcher, self.epoch = batcher, epoch

    def __len__(self) -> int:
        return len(self.batcher)

    def __iter__(self) -> Iterator[StreamBatch]:
        self.batcher.load_state_dict({"epoch": self.epoch, "batch": 0})
        return iter(self.batcher)


class TextTask:
    """Text prediction for ``graves.train.train`` (see the module docstring for the protocol's meaning).

    Args:
        cfg: the experiment config (``model.kind = "text"``; ``data.name`` one of ptb-char, ptb-word,
            enwik8, bytes, chars).
        meta: a checkpoint's ``checkpoint.json``: the model is rebuilt from its vocabulary and the
            training split is never read; the evaluation splits are read when first asked for.

    Attributes:
        model: the :class:`TextPredictor`.
        vocab: the :class:`Vocab`.
        num_train_sequences: T-symbol training sequences per epoch (B streams × batches), the S of
            adaptive weight noise's KL / S (SPEC §2). 0 when built from ``meta``.
    """

    def __init__(self, cfg: Config, meta: dict[str, Any] | None = None):
        if cfg.model.kind != "text":
            raise ConfigError(f"TextTask needs model.kind = 'text', not {cfg.model.kind!r}")
        self.cfg = cfg
        tc = cfg.train
        if tc.seq_len < 1 or tc.batch_size < 1:
            raise ConfigError("train.seq_len and train.batch_size must be >= 1")
        self._splits: dict[str, np.ndarray] = {}
        self._corpus: TextCorpus | None = None
        self._batcher: StreamBatcher | None = None
        self._state: list[LSTMState] | None = None  # carried across training batches, (B, H) each
        if meta is not None:
            if "vocab" not in meta:
                raise DataError("the checkpoint has no vocabulary: it was not written by a text task")
            self.vocab = Vocab.from_dict(meta["vocab"])
            self.num_train_sequences = 0
        else:
            self._corpus = self._load_corpus()
            self.vocab = self._corpus.vocab
            train = _first_lines(self._corpus.train, self.vocab, cfg.data.max_lines)
            self._batcher = StreamBatcher(
                train, tc.batch_size, tc.seq_len, reset_every=tc.reset_every or None, shuffle=tc.shuffle,
                seed=tc.seed, null_input=NULL,
            )
            self.num_train_sequences = tc.batch_size * len(self._batcher)
        self.model = TextPredictor(cfg.model, len(self.vocab))

    # -- data

    def _load_corpus(self) -> TextCorpus:
        dc = self.cfg.data
        return load_corpus(dc.name, data_root(dc), **_corpus_options(dc))

    def split_ids(self, split: str) -> np.ndarray:
        """The ids of ``split`` (after ``data.max_lines``), loaded on first use."""
        if split not in self._splits:
            dc = self.cfg.data
            if self._corpus is not None:
                ids = self._corpus.split(split)
            elif dc.name in PTB:
                ids = _read_ptb_split(dc, self.vocab, split)
            else:
                # bytes / enwik8 / chars: the splits are parts of one file, read whole.
                corpus = self._load_corpus()
                if corpus.vocab != self.vocab:
                    raise DataError(f"the data under {data_root(dc)} does not give the checkpoint's vocabulary "
                                    f"({len(corpus.vocab)} symbols, the checkpoint has {len(self.vocab)})")
                ids = corpus.split(split)
            self._splits[split] = _first_lines(ids, self.vocab, dc.max_lines)
        return self._splits[split]

    def batches(self, epoch: int, generator: torch.Generator | None = None) -> _Epoch:  # noqa: ARG002
        """The training batches of ``epoch`` (:class:`StreamBatch`: inputs, targets ``(T, B)``, reset).

        The order is fixed by (``train.seed``, epoch) inside the batcher, so ``generator`` is not used.
        """
        if self._batcher is None:
            raise RuntimeError("this TextTask was built from a checkpoint's meta: it has no training data")
        return _Epoch(self._batcher, epoch)

    # -- training

    def loss(self, model: TextPredictor, batch: StreamBatch, index: slice | None = None) -> tuple[Tensor, int]:
        """The loss of a training batch (eq. 13), summed over time and averaged over the B sequences.

        The recurrent state carried from the previous batch is used (zeros when ``batch.reset``) and the
        new state is kept, detached, for the next batch.

        Args:
            model: the net.
            batch: inputs and targets ``(T, B)``.
            index: only the sequences ``index`` of the batch, averaged over themselves (weight noise runs
                each sequence, or each group of ``noise.group_size``, under its own noise draw). Their
                carried state is used and updated; the slices of one batch must come in order, starting at
                sequence 0.

        Returns:
            ``(loss, count)``: a scalar, and the number of sequences it covers.
        """
        device = next(model.parameters()).device
        x, y = batch.inputs.to(device), batch.targets.to(device)  # (T, B)
        B = x.shape[1]
        sel = slice(0, B) if index is None else index
        # slices of one batch come in order from sequence 0, so the reset happens once per batch
        if self._state is None or (batch.reset and sel.start in (0, None)):
            self._state = model.zero_state(B, device)
        state = [LSTMState(s.h[sel].to(device).clone(), s.c[sel].to(device).clone()) for s in self._state]
        logits, new_state = model(x[:, sel], state)  # (T, b, V)
        nll = sequence_nll(logits, y[:, sel])  # (T, b)   (eq. 13)
        if index is None:
            self._state = _detach(new_state)
        else:
            for s, n in zip(self._state, new_state):
                s.h[sel] = n.h.detach().to(s.h.device)
                s.c[sel] = n.c.detach().to(s.c.device)
        b = int(nll.shape[1])
        return nll.sum() / b, b  # summed over T, averaged over the sequences

    @staticmethod
    def batch_size(batch: StreamBatch) -> int:
        """B, the number of sequences in a batch."""
        return int(batch.inputs.shape[1])

    # -- evaluation

    def _metrics(self, split: str, nll: float, errors: int, n: int) -> dict[str, float]:
        ids = self.split_ids(split)
        bits = nll / LN2
        ptb = self.cfg.data.name in PTB
        chars = count_characters(ids, self.vocab) if ptb else len(ids)
        out = {"loss": nll / n, "bpc": bits / n * len(ids) / chars}
        words = count_words(ids, self.vocab) if ptb else 0
        if words:
            # total bits of the split over its words; the (< B) symbols left out of the streams are
            # counted at the mean rate.
            out["perplexity"] = 2.0 ** (bits / n * len(ids) / words)
        out["error"] = 100.0 * errors / n
        out["symbols"] = n
        return out

    @torch.no_grad()
    def evaluate(self, model: TextPredictor, split: str, progress: bool = False,
                 streams: int | None = None) -> dict[str, float]:
        """Static evaluation of ``split`` (see the module docstring for the metrics).

        Args:
            model: the net; not modified.
            split: ``"train"``, ``"valid"`` or ``"test"``.
            progress: show a progress bar.
            streams: parallel streams B (default ``train.batch_size``). Each stream starts from a zero
                state (the first from the null input), so B − 1 streams start without context: the
                result differs from a single pass by those cold starts only.
        """
        ids = self.split_ids(split)
        device = next(model.parameters()).device
        B = max(1, min(streams or self.cfg.train.batch_size, len(ids)))
        batcher = StreamBatcher(ids, B, self.cfg.train.seq_len, null_input=NULL)
        state, nll, errors, n = None, 0.0, 0, 0
        for batch in tqdm(batcher, disable=not progress, desc=f"eval {split}", leave=False):
            x, y = batch.inputs.to(device), batch.targets.to(device)  # (T, B)
            logits, state = model(x, state)  # (T, B, V)
            nll = nll + sequence_nll(logits, y).double().sum()  # summed on the device, read once at the end
            errors = errors + (logits.argmax(-1) != y).sum()
            n += y.numel()
        return self._metrics(split, float(nll), int(errors), n)

    def evaluate_dynamic(self, model: TextPredictor, split: str, progress: bool = False,
                         optim: OptimConfig | None = None) -> dict[str, float]:
        """Dynamic evaluation (Section 3.1): read ``split`` once in order (one stream, T-symbol
        segments); record each segment's loss, then take one training step on it.

        The steps are taken on a copy of ``model`` with a fresh optimiser, by default the config's
        (``optim`` replaces it: e.g. plain SGD for a net trained with Adam, whose first steps from a
        fresh state have size ≈ lr for every weight); ``model`` itself is never modified.
        """
        ids = self.split_ids(split)
        net = copy.deepcopy(model)
        net.train()
        device = next(net.parameters()).device
        optimizer = optimizer_from_config(optim or self.cfg.optim, net.parameters())
        batcher = StreamBatcher(ids, 1, self.cfg.train.seq_len, null_input=NULL)
        state, nll, errors, n = None, 0.0, 0, 0
        for batch in tqdm(batcher, disable=not progress, desc=f"dynamic eval {split}", leave=False):
            x, y = batch.inputs.to(device), batch.targets.to(device)  # (T, 1)
            optimizer.zero_grad(set_to_none=True)
            logits, state = net(x, state)  # (T, 1, V)
            seg = sequence_nll(logits, y).sum()  # the segment's loss, recorded before the step
            nll += float(seg.detach().double())
            errors += int((logits.detach().argmax(-1) != y).sum())
            n += y.numel()
            seg.backward()  # summed over the segment, as in training (B = 1)
            optimizer.step()
            state = _detach(state)
        return self._metrics(split, nll, errors, n)

    # -- checkpoints

    def meta(self) -> dict[str, Any]:
        """What rebuilding the model needs (saved in ``checkpoint.json``): the vocabulary."""
        return {"vocab": self.vocab.to_dict()}

    def state_dict(self) -> dict[str, Any]:
        """The carried recurrent state (and the batcher's settings), for an exact resume."""
        hidden = None if self._state is None else [[s.h.detach().cpu(), s.c.detach().cpu()] for s in self._state]
        return {"hidden": hidden, "batcher": None if self._batcher is None else self._batcher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        hidden = state.get("hidden")
        self._state = None if hidden is None else [LSTMState(h.clone(), c.clone()) for h, c in hidden]
        saved = state.get("batcher")
        if saved is not None and self._batcher is not None:
            # checks the layout (batch size, T, R, shuffle, data size) is the one the run was saved with
            self._batcher.load_state_dict(saved)


# --------------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def sample_text(model: TextPredictor, vocab: Vocab, length: int, temperature: float = 1.0, prime: str = "",
                generator: torch.Generator | None = None) -> str:
    """Generate ``length`` symbols, each drawn from Pr(x_{t+1} | y_t) (eq. 12) and fed back in.

    Args:
        model: the net (not modified).
        vocab: its vocabulary.
        length: symbols to generate.
        temperature: the logits are divided by it before the softmax (1 = the model's distribution);
            0 takes the most probable symbol.
        prime: text run through the net first (from the null input), so the sample continues it;
            written in the vocabulary's symbols (PTB characters use ``_`` between words).
        generator: the source of every random draw (default: a new generator seeded 0).

    Returns:
        the prime as the model read it, followed by the generated text.
    """
    if length < 0:
        raise ConfigError(f"the length must be >= 0, got {length}")
    if not math.isfinite(temperature) or temperature < 0:
        raise ConfigError(f"the temperature must be a number >= 0, got {temperature}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    prime_ids = vocab.encode_text(prime, allow_unk=True).tolist() if prime else []
    state = model.zero_state(1, device)
    x = torch.tensor([[NULL] + prime_ids], dtype=torch.long, device=device).t()  # (P+1, 1)
    out: list[int] = []
    for _ in range(length):
        logits, state = model(x, state)  # (t, 1, V)
        y_hat = logits[-1, 0].float()  # (V,)
        scaled = y_hat / temperature if temperature else None
        if scaled is None or not torch.isfinite(scaled).all():  # T = 0, or so small that y/T overflows:
            nxt = int(y_hat.argmax())  # the limit of the softmax as T -> 0
        else:
            probs = torch.softmax(scaled, dim=-1).cpu()  # (V,)   (eq. 12)
            nxt = int(torch.multinomial(probs, 1, generator=generator))
        out.append(nxt)
        x = torch.tensor([[nxt]], dtype=torch.long, device=device)  # (1, 1)
    return vocab.to_text(prime_ids + out)


def sample_text_checkpoint(path: str | Path, length: int = 1000, temperature: float = 1.0, prime: str = "",
                           seed: int = 0) -> str:
    """:func:`sample_text` from a checkpoint, rebuilt from the checkpoint alone (no data is read)."""
    from graves.checkpoint import config_of, load_into, load_meta
    from graves.sample import SampleError, check_seed

    seed = check_seed(seed)
    if seed >= 2**64:
        raise SampleError(f"the seed must be below 2**64, got {seed}")

    meta = load_meta(path)
    cfg = Config.from_dict(config_of(meta, path))
    task = TextTask(cfg, meta)
    load_into(task.model, path)
    return sample_text(task.model, task.vocab, length, temperature, prime, torch.Generator().manual_seed(seed))
