"""Text corpora for Section 3: PTB (word and character level), enwik8, any file as bytes or characters;
vocabularies; truncated-BPTT streams.

Every loader returns a :class:`TextCorpus`: a :class:`Vocab` plus one id array per split (``np.int64``,
1-D, the whole split as one sequence in file order). Units:

- ``word`` (PTB word level): whitespace-separated tokens, ``<eos>`` at the end of every line, counted
  in the loss (Section 3.1). Vocabulary ordered by training frequency (most frequent first, ties
  alphabetical), 10,000 symbols including ``<unk>`` and ``<eos>``.
- ``char`` (PTB character level, or any UTF-8 text): one symbol per character, the line end is the
  symbol ``"\\n"``. Vocabulary in code-point order. In PTB's ``ptb.char.*.txt`` the word-level
  unknown-word marker is spelled out ``< u n k >``; by default it is read as ONE symbol ``"<unk>"``
  (``unk_as_symbol=True``), which gives the paper's 49 symbols counting the line end (spelled out it
  would be 50: the characters ``<`` and ``>`` occur nowhere else). Either way the character model then
  predicts the same events as the word model: every word, ``<unk>``, and the sentence end.
- ``byte`` (enwik8, any file): one symbol per byte; the vocabulary is the byte values that occur in the
  file (205 in enwik8), in increasing order.

``TextCorpus.word_counts`` gives, for the PTB corpora, the number of words of each split *including
one end-of-sentence per line*, i.e. exactly the word-level token count (929,589 / 73,760 / 82,430), so
that a character model's perplexity is ``2 ** (total bits / word_counts[split])`` — the same quantity as
the word model's perplexity (the paper's "perplexity ≈ 2^(5.6·BPC)" is the approximation of it).

The data flows one way: files → these functions → id arrays → :class:`StreamBatcher` → ``(T, B)`` long
tensors.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from graves.data import download as _dl
from graves.data.download import DataError, enwik8_file, zip_member

__all__ = [
    "DataError",
    "Vocab",
    "TextCorpus",
    "StreamBatch",
    "StreamBatcher",
    "load_corpus",
    "load_ptb_word",
    "load_ptb_char",
    "load_enwik8",
    "load_bytes_corpus",
    "load_char_corpus",
    "read_bytes",
    "SPLITS",
    "UNITS",
]

SPLITS = ("train", "valid", "test")
UNITS = ("char", "word", "byte")
EOS = "<eos>"
UNK = "<unk>"
NAMED_SPLITS = {"paper": (0.96, 0.04), "90-5-5": (0.90, 0.05, 0.05)}


# ------------------------------------------------------------------------------------------ Vocab


class Vocab:
    """Symbols ↔ ids. A symbol is a ``str`` (a character, a word, or a marker such as ``<unk>``) or,
    for ``unit="byte"``, an ``int`` in 0..255. Ids are positions in ``symbols``.

    ``unk``: the symbol that unknown symbols map to when encoding (``None``: unknown symbols are an
    error). PTB word level sets it to ``<unk>``; character and byte vocabularies leave it ``None``.
    """

    def __init__(self, symbols: Iterable[str | int], unit: str, unk: str | None = None):
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
        self.symbols: tuple[str | int, ...] = tuple(symbols)
        self.unit = unit
        self.index: dict[str | int, int] = {s: i for i, s in enumerate(self.symbols)}
        if len(self.index) != len(self.symbols):
            dup = [s for s, n in Counter(self.symbols).items() if n > 1]
            raise ValueError(f"duplicate symbols in a vocabulary: {dup[:10]!r}")
        if unit == "byte" and not all(isinstance(s, int) and 0 <= s < 256 for s in self.symbols):
            raise ValueError("a byte vocabulary holds ints in 0..255")
        if unit != "byte" and not all(isinstance(s, str) and s for s in self.symbols):
            raise ValueError("a char or word vocabulary holds non-empty strings")
        if unk is not None and unk not in self.index:
            raise ValueError(f"unk symbol {unk!r} is not in the vocabulary")
        self.unk = unk
        # fast path for strings / bytes: sorted codes of the one-code symbols and their ids
        one = [(ord(s) if isinstance(s, str) else s, i) for i, s in enumerate(self.symbols)
               if isinstance(s, int) or len(s) == 1]
        one.sort()
        self._codes = np.array([c for c, _ in one], dtype=np.int64)
        self._code_ids = np.array([i for _, i in one], dtype=np.int64)
        multi = sorted((s for s in self.symbols if isinstance(s, str) and len(s) > 1), key=len, reverse=True)
        self._multi = re.compile("|".join(map(re.escape, multi)) + "|.", re.S) if multi and unit == "char" else None

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.index

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocab) and self.symbols == other.symbols and self.unit == other.unit
                and self.unk == other.unk)

    def __hash__(self) -> int:
        return hash((tuple(self.symbols), self.unit, self.unk))

    def __repr__(self) -> str:
        return f"Vocab({len(self)} {self.unit} symbols, unk={self.unk!r})"

    # -- encoding

    def encode(self, seq: Sequence[str | int] | str | bytes | np.ndarray, allow_unk: bool = True) -> np.ndarray:
        """Ids ``(n,) int64`` of a sequence of symbols. A ``str`` is read as a sequence of characters and
        ``bytes`` as a sequence of byte values (use :meth:`encode_text` to match multi-character symbols
        such as ``<unk>`` or to split words). Unknown symbols map to ``unk`` when the vocabulary has one
        and ``allow_unk``; otherwise they raise :class:`DataError` naming them."""
        if isinstance(seq, str) and self.unit == "char" and len(self._codes):
            return self._encode_codes(_codepoints(seq), allow_unk, as_char=True)
        if isinstance(seq, (bytes, bytearray, memoryview)) and self.unit == "byte":
            return self._encode_codes(np.frombuffer(bytes(seq), dtype=np.uint8).astype(np.int64), allow_unk)
        if isinstance(seq, np.ndarray) and self.unit == "byte":
            return self._encode_codes(seq.astype(np.int64, copy=False), allow_unk)
        index, out, unknown = self.index, [], Counter()
        unk_id = self.index[self.unk] if (allow_unk and self.unk is not None) else None
        for s in seq:
            i = index.get(s)
            if i is None:
                if unk_id is None:
                    unknown[s] += 1
                    continue
                i = unk_id
            out.append(i)
        if unknown:
            raise self._unknown_error(unknown)
        return np.array(out, dtype=np.int64)

    def _encode_codes(self, codes: np.ndarray, allow_unk: bool, as_char: bool = False) -> np.ndarray:
        if len(self._codes) == 0:
            return self.encode([chr(c) if as_char else int(c) for c in codes.tolist()], allow_unk)
        pos = np.searchsorted(self._codes, codes)
        pos = np.minimum(pos, len(self._codes) - 1)
        hit = self._codes[pos] == codes
        ids = self._code_ids[pos]
        if not hit.all():
            if allow_unk and self.unk is not None:
                ids[~hit] = self.index[self.unk]
            else:
                bad = Counter((chr(c) if as_char else int(c)) for c in codes[~hit].tolist())
                raise self._unknown_error(bad)
        return ids

    def _unknown_error(self, unknown: Counter) -> DataError:
        total = sum(unknown.values())
        shown = ", ".join(f"{s!r} ×{n}" for s, n in unknown.most_common(12))
        more = f" and {len(unknown) - 12} more" if len(unknown) > 12 else ""
        return DataError(
            f"{total} symbol(s) not in the {self.unit} vocabulary of {len(self)} symbols: {shown}{more}"
        )

    def tokenize(self, text: str) -> list[str | int]:
        """Split user text into this vocabulary's symbols: characters (multi-character symbols such as
        ``<unk>`` matched whole), whitespace-separated words with ``<eos>`` at each line end (when the
        vocabulary has ``<eos>``), or UTF-8 bytes."""
        if self.unit == "byte":
            return list(text.encode("utf-8"))
        if self.unit == "word":
            eos = EOS in self.index
            out: list[str | int] = []
            lines = text.split("\n")
            for k, line in enumerate(lines):
                out.extend(line.split())
                if eos and k < len(lines) - 1:
                    out.append(EOS)
            return out
        if self._multi is not None:
            return self._multi.findall(text)
        return list(text)

    def encode_text(self, text: str, allow_unk: bool = True) -> np.ndarray:
        """Ids of user text (see :meth:`tokenize`)."""
        if self.unit == "char" and self._multi is None:
            return self.encode(text, allow_unk)
        return self.encode(self.tokenize(text), allow_unk)

    # -- decoding

    def decode(self, ids: Iterable[int] | np.ndarray | torch.Tensor) -> list[str | int]:
        """The symbols of ``ids``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        elif isinstance(ids, np.ndarray):
            ids = ids.tolist()
        return [self.symbols[i] for i in ids]

    def to_text(self, ids: Iterable[int] | np.ndarray | torch.Tensor) -> str:
        """Readable text: characters joined; words joined by spaces with ``<eos>`` as a line break;
        bytes decoded as UTF-8 (invalid sequences replaced)."""
        symbols = self.decode(ids)
        if self.unit == "byte":
            return bytes(symbols).decode("utf-8", errors="replace")  # type: ignore[arg-type]
        if self.unit == "word":
            lines, words = [], []
            for s in symbols:
                if s == EOS:
                    lines.append(" ".join(words))
                    words = []
                else:
                    words.append(str(s))
            return "\n".join([*lines, " ".join(words)])
        return "".join(symbols)  # type: ignore[arg-type]

    # -- serialisation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (stored in checkpoints)."""
        return {"unit": self.unit, "symbols": list(self.symbols), "unk": self.unk}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocab:
        try:
            return cls(d["symbols"], unit=d["unit"], unk=d.get("unk"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a vocabulary description: {exc}") from exc


def _codepoints(text: str) -> np.ndarray:
    """Unicode code points of ``text`` as int64 (vectorised)."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


def _byte_vocab(data: np.ndarray) -> Vocab:
    present = np.flatnonzero(np.bincount(data, minlength=256))
    return Vocab([int(b) for b in present], unit="byte")


# ------------------------------------------------------------------------------------------ corpus


@dataclass(eq=False)
class TextCorpus:
    """A vocabulary and the id arrays of the splits (``None`` for a split the corpus does not have).

    ``word_counts[split]``: words in the split counting one end-of-sentence per line (PTB corpora only;
    empty for bytes and generic characters), for perplexity = 2^(total bits / words).
    """

    name: str
    vocab: Vocab
    train: np.ndarray
    valid: np.ndarray | None
    test: np.ndarray | None
    word_counts: dict[str, int] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        """``"char"``, ``"word"`` or ``"byte"``."""
        return self.vocab.unit

    def split(self, name: str) -> np.ndarray:
        """The id array of ``name`` (train, valid or test); DataError if the corpus has no such split."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}: one of {SPLITS}")
        ids = getattr(self, name)
        if ids is None:
            raise DataError(f"{self.name} has no {name} split")
        return ids

    @property
    def splits(self) -> dict[str, np.ndarray]:
        """The splits present, in order."""
        return {s: getattr(self, s) for s in SPLITS if getattr(self, s) is not None}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(a):,}" for s, a in self.splits.items())
        return f"TextCorpus({self.name!r}, {self.vocab!r}, {sizes})"


def _split_sizes(n: int, split: str | Sequence[float]) -> list[int]:
    """Sizes of contiguous train/valid(/test) parts of ``n`` symbols; they sum to ``n`` exactly."""
    fractions = NAMED_SPLITS.get(split) if isinstance(split, str) else tuple(split)
    if fractions is None:
        raise DataError(f"unknown split {split!r}: {' or '.join(map(repr, NAMED_SPLITS))}, or fractions")
    if not 1 <= len(fractions) <= 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"split fractions must be 1 to 3 non-negative numbers summing to 1, not {fractions}")
    bounds = [0] + [round(n * float(c)) for c in np.cumsum(fractions)[:-1]] + [n]
    return [b - a for a, b in zip(bounds[:-1], bounds[1:])]


def _make_splits(ids: np.ndarray, split: str | Sequence[float]) -> dict[str, np.ndarray | None]:
    sizes = _split_sizes(len(ids), split)
    out: dict[str, np.ndarray | None] = dict.fromkeys(SPLITS)
    start = 0
    for name, size in zip(SPLITS, sizes):
        out[name] = ids[start:start + size]
        start += size
    return out


# ------------------------------------------------------------------------------------------ files


def read_bytes(path: str | Path, member: str | None = None) -> bytes:
    """The content of a file, decompressed by its suffix: ``.bz2``, ``.gz``, ``.xz``/``.lzma``, or ``.zip``
    (its only file, or ``member``); any other file as is."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".tgz" or ".tar" in [s.lower() for s in path.suffixes]:
        raise DataError(f"{path} is a tar archive: unpack it and point data.path at the text file inside")
    try:
        if suffix == ".bz2":
            return bz2.decompress(path.read_bytes())
        if suffix == ".gz":
            return gzip.decompress(path.read_bytes())
        if suffix in (".xz", ".lzma"):
            return lzma.decompress(path.read_bytes())
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                return zf.read(zip_member(zf, member))
    except (OSError, ValueError, lzma.LZMAError, *_dl.DECOMPRESS_ERRORS) as exc:
        raise DataError(f"{path}: cannot decompress ({type(exc).__name__}: {exc})") from exc
    return path.read_bytes()


def _find(root: str | Path, filename: str, subdirs: Sequence[str], hint: str) -> Path:
    root = Path(root)
    tried = [root / d / filename for d in subdirs]
    for p in tried:
        if p.is_file():
            return p
    raise DataError(f"{filename} not found (looked for {', '.join(map(str, tried))}); {hint}")


_PTB_DIRS = ("ptb", ".", "simple-examples/data", "data")
_PTB_HINT = "run `graves data download ptb`, or put the files of simple-examples.tgz's data/ in DATA_ROOT/ptb/"


# ------------------------------------------------------------------------------------------ PTB


def _read_utf8(path: Path) -> str:
    """``path``'s text; a file that is not UTF-8 is a one-line :class:`DataError` naming the byte."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None


def _ptb_words(path: Path) -> list[str]:
    """Tokens of a word-level PTB file: whitespace-separated words, ``<eos>`` at each line end."""
    text = _read_utf8(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline ends the last line
    tokens: list[str] = []
    for line in lines:
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


def load_ptb_word(root: str | Path) -> TextCorpus:
    """PTB word level (Section 3.1) from ``ptb.{train,valid,test}.txt``.

    ``root`` is the data root (files in ``root/ptb/``) or the folder holding the files. Tokens are the
    whitespace-separated words plus ``<eos>`` at every line end (in the loss, as in the paper). The
    vocabulary is the training tokens (10,000 with ``<unk>`` and ``<eos>``); a valid/test word outside
    it is an error (Mikolov's split has none).
    """
    tokens = {s: _ptb_words(_find(root, f"ptb.{s}.txt", _PTB_DIRS, _PTB_HINT)) for s in SPLITS}
    counts = Counter(tokens["train"])
    symbols = sorted(counts, key=lambda w: (-counts[w], w))  # most frequent first
    vocab = Vocab(symbols, unit="word", unk=UNK if UNK in counts else None)
    ids = {}
    for s in SPLITS:
        try:
            ids[s] = vocab.encode(tokens[s], allow_unk=False)
        except DataError as exc:
            raise DataError(f"ptb.{s}.txt: {exc}") from None
    return TextCorpus("ptb-word", vocab, ids["train"], ids["valid"], ids["test"],
                      word_counts={s: len(tokens[s]) for s in SPLITS})


_PLACEHOLDER = "\x00"  # stands for the one-symbol <unk> while encoding characters


def _ptb_char_symbols(path: Path, unk_as_symbol: bool) -> str:
    """The character sequence of a ``ptb.char.*.txt`` file: every character (the line end included) is
    followed by one space. With ``unk_as_symbol``, ``<unk>`` becomes the placeholder ``"\\x00"``."""
    text = _read_utf8(path)
    if len(text) % 2 or text[1::2].strip(" "):
        raise DataError(f"{path}: not in the ptb.char format (each character followed by one space)")
    chars = text[0::2]
    if unk_as_symbol:
        if _PLACEHOLDER in chars:
            raise DataError(f"{path}: contains NUL characters")
        chars = chars.replace(UNK, _PLACEHOLDER)
    return chars


def _count_words(ids: np.ndarray, separators: Sequence[int], line_end: int) -> int:
    """Words (maximal runs of non-separator symbols) plus one per line end."""
    sep = np.isin(ids, separators)
    starts = ~sep & np.concatenate([[True], sep[:-1]])
    return int(starts.sum() + (ids == line_end).sum())


def load_ptb_char(root: str | Path, unk_as_symbol: bool = True) -> TextCorpus:
    """PTB character level (Section 3.1) from ``ptb.char.{train,valid,test}.txt``.

    Symbols: the characters, ``_`` between words, ``"\\n"`` at each sentence end (predicted, like the
    word model's ``<eos>``); ``<unk>`` is one symbol when ``unk_as_symbol`` (49 symbols; 50 otherwise).
    The vocabulary comes from the training split; a valid/test character outside it is an error.
    ``word_counts``: words (``_``-separated) plus one per line end — equal to the word-level token
    counts, so per-word perplexities of the two models are directly comparable.
    """
    chars = {s: _ptb_char_symbols(_find(root, f"ptb.char.{s}.txt", _PTB_DIRS, _PTB_HINT), unk_as_symbol)
             for s in SPLITS}
    codes = np.unique(_codepoints(chars["train"]))
    symbols = [UNK if chr(c) == _PLACEHOLDER else chr(c) for c in codes.tolist()]
    vocab = Vocab(symbols, unit="char")
    coder = Vocab([chr(c) for c in codes.tolist()], unit="char")  # same ids, <unk> as its placeholder
    ids, words = {}, {}
    for s in SPLITS:
        try:
            ids[s] = coder.encode(chars[s], allow_unk=False)
        except DataError as exc:
            raise DataError(f"ptb.char.{s}.txt: {exc}; the train split defines the symbols") from None
        seps = [vocab.index[c] for c in ("_", "\n") if c in vocab]
        words[s] = _count_words(ids[s], seps, vocab.index.get("\n", -1))
    return TextCorpus("ptb-char", vocab, ids["train"], ids["valid"], ids["test"], word_counts=words)


# ------------------------------------------------------------------------------------------ bytes


def load_enwik8(root: str | Path, split: str | Sequence[float] = "paper", verify: bool = True) -> TextCorpus:
    """enwik8 (Section 3.2): the first 10^8 bytes of English Wikipedia, byte level.

    ``root``: the data root (``root/enwik8/enwik8[.zip]``), the folder holding ``enwik8`` or
    ``enwik8.zip``, or the file itself. With ``verify`` the size (10^8) and md5 are checked.
    ``split``: ``"paper"`` = first 96M bytes train, last 4M valid (no test); ``"90-5-5"`` =
    90M/5M/5M train/valid/test. The vocabulary is the byte values present (205).
    """
    root = Path(root)
    path = root if root.is_file() else (enwik8_file(root / "enwik8") or enwik8_file(root))
    if path is None:
        raise DataError(
            f"enwik8 not found under {root} (looked for enwik8/enwik8.zip, enwik8/enwik8, enwik8.zip, enwik8); "
            f"run `graves data download enwik8` or put enwik8.zip from mattmahoney.net/dc/ in DATA_ROOT/enwik8/"
        )
    data = read_bytes(path, member="enwik8" if path.suffix == ".zip" else None)
    if verify:
        if len(data) != _dl.ENWIK8_SIZE:
            raise DataError(f"{path}: enwik8 should be {_dl.ENWIK8_SIZE:,} bytes, found {len(data):,}: "
                            f"the file is truncated or not enwik8")
        md5 = hashlib.md5(data).hexdigest()
        if md5 != _dl.ENWIK8_MD5:
            raise DataError(f"{path}: md5 of enwik8 is {md5}, expected {_dl.ENWIK8_MD5}: the file is corrupt "
                            f"or not enwik8 (download it again with `graves data download enwik8`)")
    return _bytes_corpus("enwik8", data, split)


def _bytes_corpus(name: str, data: bytes, split: str | Sequence[float]) -> TextCorpus:
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        raise DataError(f"{name}: empty file")
    vocab = _byte_vocab(raw)
    lut = np.zeros(256, dtype=np.int64)
    lut[np.array(vocab.symbols, dtype=np.int64)] = np.arange(len(vocab))
    parts = _make_splits(lut[raw], split)
    return TextCorpus(name, vocab, parts["train"], parts["valid"], parts["test"])  # type: ignore[arg-type]


def load_bytes_corpus(path: str | Path, split: str | Sequence[float] = (0.9, 0.05, 0.05)) -> TextCorpus:
    """Any file at byte level (enwik8's loader without the checksum). ``.bz2``/``.gz``/``.xz``/``.zip``
    files are decompressed. ``split``: fractions of contiguous train/valid(/test) parts in file order,
    or ``"paper"`` (96%/4%) / ``"90-5-5"``. The vocabulary is the byte values present in the whole file."""
    path = Path(path)
    return _bytes_corpus(path.name, read_bytes(path), split)


def load_char_corpus(path: str | Path, split: str | Sequence[float] = (0.9, 0.05, 0.05),
                     encoding: str = "utf-8") -> TextCorpus:
    """Any text file at character level (decoded with ``encoding``; compressed files as in
    :func:`load_bytes_corpus`). The vocabulary is every character of the whole file, in code-point
    order; the splits are contiguous parts in file order."""
    path = Path(path)
    try:
        text = read_bytes(path).decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid {encoding} at byte {exc.start} ({exc.reason}); "
                        f"load it as bytes instead") from None
    if not text:
        raise DataError(f"{path}: empty file")
    codes = _codepoints(text)
    present = np.unique(codes)
    vocab = Vocab([chr(c) for c in present.tolist()], unit="char")
    parts = _make_splits(np.searchsorted(present, codes).astype(np.int64), split)
    return TextCorpus(path.name, vocab, parts["train"], parts["valid"], parts["test"])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ dispatch


CORPORA = ("ptb-char", "ptb-word", "enwik8", "bytes", "chars")


def load_corpus(name: str, root: str | Path, **options: Any) -> TextCorpus:
    """Load a corpus by name.

    - ``ptb-char`` / ``ptb-word``: ``root`` is the data root (or the PTB folder); option
      ``unk_as_symbol`` (char). PTB has a fixed split: ``split`` may only be ``None`` or ``"paper"``.
    - ``enwik8``: ``root`` as in :func:`load_enwik8`; options ``split`` (``"paper"`` | ``"90-5-5"``),
      ``verify``.
    - ``bytes`` / ``chars``: option ``path`` (the file; relative paths are taken under ``root``) or
      ``root`` is the file; options ``split`` (fractions or a named split), ``encoding`` (chars).
    """
    if name in ("ptb-char", "ptb-word"):
        split = options.pop("split", None)
        if split not in (None, "", "paper"):
            raise DataError(f"{name} has the fixed Mikolov split; split={split!r} is not supported")
        return load_ptb_char(root, **options) if name == "ptb-char" else load_ptb_word(root, **options)
    if name == "enwik8":
        return load_enwik8(root, **options)
    if name in ("bytes", "chars"):
        path = options.pop("path", None) or ""
        file = Path(root) / path if path else Path(root)  # an absolute path replaces root
        return load_bytes_corpus(file, **options) if name == "bytes" else load_char_corpus(file, **options)
    raise DataError(f"unknown corpus {name!r}: one of {', '.join(CORPORA)}")


# ------------------------------------------------------------------------------------------ streams


class StreamBatch(NamedTuple):
    """One truncated-BPTT step: ``inputs (T, B)`` and ``targets (T, B)`` long tensors (``targets[t, b]``
    is the symbol after ``inputs[t, b]`` in stream b); ``reset``: zero the recurrent state before this
    batch (otherwise carry it over from the previous batch)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    reset: bool


class StreamBatcher:
    """Truncated BPTT over one long id sequence (Section 3.2): B parallel streams, T steps at a time.

    Layout. The N ids give N − 1 (input, target) pairs ``(ids[k], ids[k+1])``: the very first symbol
    of the corpus is only an input, never a target (a null first input would have nothing real to
    predict from either; pass ``null_input`` — e.g. an id the model maps to the all-zero vector, the
    paper's x_1 — to prepend it so that ``ids[0]`` is predicted too). The pairs are cut into B
    contiguous streams of L = ⌊pairs / B⌋ pairs each (the < B leftover pairs at the end are not used);
    row b of every batch reads stream b only. Each stream's first input is the real previous symbol of
    the corpus, so a stream that starts mid-corpus starts with true context, and the state reset only
    forgets the hidden state. Batch j holds pairs j·T … j·T + T − 1 of every stream, so consecutive
    batches continue each stream exactly and the hidden state can be carried across them; the last
    batch is shorter when T does not divide L (dropped with ``drop_last``).

    ``reset`` is True on the first batch of each epoch and then every ``reset_every`` = R batches
    (the paper resets the state every 100 sequences on enwik8); ``None`` or 0: only at the start.

    ``shuffle`` (off for enwik8, as in the paper) never mixes streams and never breaks a carried state:
    each epoch (a) starts the streams at a random offset in [0, T) of the corpus, so the cut points
    between sequences move (T − 1 pairs are held back for this, so every epoch has the same length), and
    (b) when R is set, visits the blocks of R consecutive batches — between which the state is reset
    anyway — in a random order (the same order for all streams). Both are drawn from ``(seed, epoch)``.

    Iterating yields the rest of the current epoch from the current position and then advances to the
    next epoch; :meth:`state_dict` / :meth:`load_state_dict` save and restore (epoch, batch), so a run
    resumed from a checkpoint sees exactly the batches it would have seen. (Resuming exactly inside a
    block also needs the carried recurrent state, which the trainer saves.)
    """

    def __init__(
        self,
        ids: np.ndarray | torch.Tensor | Sequence[int],
        batch_size: int,
        seq_len: int,
        reset_every: int | None = None,
        shuffle: bool = False,
        *,
        seed: int = 0,
        drop_last: bool = False,
        null_input: int | None = None,
    ):
        if isinstance(ids, torch.Tensor):
            ids = ids.detach().cpu().numpy()
        seq = np.asarray(ids, dtype=np.int64)
        if seq.ndim != 1:
            raise ValueError(f"ids must be 1-D, not of shape {seq.shape}")
        if null_input is not None:
            seq = np.concatenate([np.array([null_input], dtype=np.int64), seq])
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1 (got {batch_size}, {seq_len})")
        if reset_every is not None and reset_every < 0:
            raise ValueError(f"reset_every must be >= 0 or None (got {reset_every})")
        self.batch_size = B = batch_size
        self.seq_len = T = seq_len
        self.reset_every = reset_every or None
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.null_input = null_input
        self._seq = seq
        pairs = len(seq) - 1
        usable = pairs - (T - 1 if shuffle else 0)
        self.stream_len = L = usable // B  # pairs per stream
        if L < 1 or (drop_last and L < T):
            need = B * (T if drop_last else 1) + (T - 1 if shuffle else 0) + 1
            raise DataError(f"{len(seq):,} symbols are too few for {B} streams of sequences of {T} "
                            f"(need at least {need:,})")
        self._num_batches = L // T if drop_last else -(-L // T)
        self._epoch = 0
        self._batch = 0

    def __len__(self) -> int:
        """Batches per epoch (the same in every epoch)."""
        return self._num_batches

    @property
    def num_targets(self) -> int:
        """Target symbols per epoch (B·L, or fewer with ``drop_last``)."""
        return self.batch_size * (self._num_batches * self.seq_len if self.drop_last else self.stream_len)

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def position(self) -> int:
        """Batches of the current epoch already yielded."""
        return self._batch

    def _epoch_layout(self, epoch: int) -> tuple[int, np.ndarray]:
        """(offset of the streams, order in which the batch indices are visited) for ``epoch``."""
        n, R = self._num_batches, self.reset_every
        if not self.shuffle:
            return 0, np.arange(n)
        rng = np.random.default_rng([self.seed, epoch])
        offset = int(rng.integers(self.seq_len))
        if R is None:
            return offset, np.arange(n)
        blocks = [np.arange(s, min(s + R, n)) for s in range(0, n, R)]
        return offset, np.concatenate([blocks[k] for k in rng.permutation(len(blocks))])

    def __iter__(self) -> Iterator[StreamBatch]:
        epoch, B, T, L, R = self._epoch, self.batch_size, self.seq_len, self.stream_len, self.reset_every
        offset, order = self._epoch_layout(epoch)
        x = self._seq[offset:offset + B * L].reshape(B, L)  # (B, L) inputs of each stream (a view)
        y = self._seq[offset + 1:offset + 1 + B * L].reshape(B, L)  # (B, L) the next symbols
        for p in range(self._batch, self._num_batches):
            j = int(order[p])
            s, e = j * T, min(j * T + T, L)
            reset = j == 0 if R is None else j % R == 0
            self._batch = p + 1  # counted as consumed once handed out
            yield StreamBatch(
                torch.from_numpy(np.ascontiguousarray(x[:, s:e].T)),  # (T, B)
                torch.from_numpy(np.ascontiguousarray(y[:, s:e].T)),  # (T, B)
                bool(reset),
            )
        self._epoch, self._batch = epoch + 1, 0

    def state_dict(self) -> dict[str, int | bool | None]:
        """The position (epoch, batches consumed) and the settings it is valid for; plain values."""
        return {"epoch": self._epoch, "batch": self._batch, "seed": self.seed, "batch_size": self.batch_size,
                "seq_len": self.seq_len, "reset_every": self.reset_every, "shuffle": self.shuffle,
                "drop_last": self.drop_last, "num_symbols": len(self._seq)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; DataError if it was saved for a different layout or data."""
        for key in ("seed", "batch_size", "seq_len", "reset_every", "shuffle", "drop_last", "num_symbols"):
            if key in state and state[key] != self.state_dict()[key]:
                raise DataError(f"cannot resume the text stream: {key} was {state[key]!r}, "
                                f"now {self.state_dict()[key]!r}")
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if epoch < 0 or not 0 <= batch <= self._num_batches:
            raise DataError(f"cannot resume the text stream at epoch {epoch}, batch {batch}")
        self._epoch, self._batch = epoch, batch
