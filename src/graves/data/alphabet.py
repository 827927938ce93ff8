"""Character classes for handwriting synthesis (Section 5): text → ids → one-hot c (eq. 47).

Two alphabets:

* ``"full"`` (the default, SPEC §4 **Choice**): every character that occurs in the training
  transcriptions, plus an *unknown* class for anything else (the paper calls its reduced set an oversight,
  footnote 2). On the paper's training split (trainset + testset_f + testset_t) that is 80 characters —
  the paper's "80 distinct characters" — so V = 82; testset_v adds one unseen character, ``*`` (IAM's mark
  for an unreadable word), which is encoded as unknown. Without training texts, ``"full"`` is
  :data:`IAM_CHARACTERS`, the 84 characters of every IAM-OnDB transcription.
* ``"paper57"``: the paper's 57 classes — the 52 letters, space, the three most frequent punctuation
  marks other than the apostrophe (``.``, ``,``, ``"``), and one generic *non-letter* class that every
  other IAM character (digits and the rest of the punctuation) is merged into. The paper names neither
  the kept punctuation nor the count breakdown; its footnote 2 says the apostrophe of "can't" was a
  non-letter, so the apostrophe is merged. In this alphabet the unknown class *is* the non-letter class.

Ids: 0 is padding (never a character; one-hot rows of padding are all zero), 1 is the unknown /
non-letter class, then the characters. ``V = len(alphabet)`` counts every id, padding included, so an
id is its one-hot column and column 0 is never hot.

Encoding text the model was not trained on: :meth:`Alphabet.encode` raises
:class:`UnknownCharacterError` naming the characters, unless ``substitute=True``, which applies
:func:`substitute_text` (the table below) and then sends whatever is still unknown to the unknown class.

Substitution table (``substitute=True``), applied in this order:

1. the fixed replacements in :data:`SUBSTITUTIONS`: curly single quotes and primes → ``'``; curly and
   angle double quotes → ``"``; en dash, em dash, minus sign, hyphen variants → ``-``; ellipsis → ``...``;
   non-breaking and other spaces, tab, newline → space; ``×`` → ``x``; ``ß`` → ``ss``; ``æ``/``Æ`` →
   ``ae``/``AE``; ``œ``/``Œ`` → ``oe``/``OE``; ``ø``/``Ø`` → ``o``/``O``;
2. accented letters → their base letter (Unicode NFKD decomposition with the combining marks dropped:
   ``é`` → ``e``, ``Ç`` → ``C``);
3. anything still outside the alphabet → the unknown class.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Iterable

import torch
from torch import Tensor

__all__ = [
    "Alphabet",
    "IAM_CHARACTERS",
    "PAPER57_KEPT",
    "SUBSTITUTIONS",
    "UnknownCharacterError",
    "substitute_page",
    "substitute_text",
]

#: Every character of the IAM-OnDB transcriptions (``ascii/**/*.txt``, the lines after ``CSR:``, forms
#: outside the splits included), in code-point order: 84 characters.
IAM_CHARACTERS = (
    " !\"#%&'()*+,-./0123456789:;?@"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_"
    "abcdefghijklmnopqrstuvwxyz"
)

#: The characters kept by the ``"paper57"`` alphabet besides the letters (everything else is non-letter).
PAPER57_KEPT = " .,\""

PAD = 0  # the padding id: a zero one-hot row
UNKNOWN = 1  # the unknown class ("paper57": the non-letter class)

#: Step 1 of the substitution table (see the module docstring).
SUBSTITUTIONS: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ", "\t": " ", "\n": " ", "\r": " ",
    "\u00d7": "x",
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE", "\u0153": "oe", "\u0152": "OE", "\u00f8": "o", "\u00d8": "O",
}


class UnknownCharacterError(ValueError):
    """Text holds characters the alphabet cannot encode; ``characters`` lists them (sorted, unique)."""

    def __init__(self, characters: Iterable[str], text: str = "", hint: str | None = None):
        self.characters = sorted(set(characters))
        self.text = text
        shown = ", ".join(repr(c) for c in self.characters)
        hint = hint or "remove them, or ask for the documented substitutions (substitute=True / --substitute)"
        super().__init__(f"the model cannot write {shown} (in {text!r}); {hint}")


def _strip_accent(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def substitute_text(text: str) -> str:
    """Steps 1–2 of the substitution table: fixed replacements, then accented letters → base letters."""
    out = []
    for ch in text:
        if ch in SUBSTITUTIONS:
            out.append(SUBSTITUTIONS[ch])
        elif ord(ch) > 127:
            base = _strip_accent(ch)
            out.append(base if base and all(ord(c) < 128 for c in base) else ch)
        else:
            out.append(ch)
    return "".join(out)


def substitute_page(text: str) -> str:
    """:func:`substitute_text` line by line, so that the line breaks of a page stay (the table turns a
    line break into a space)."""
    return "\n".join(substitute_text(p) for p in text.splitlines())


class Alphabet:
    """Characters ↔ ids for the one-hot text c of the synthesis net (Section 5).

    Args:
        characters: the characters that get their own class (unique; order defines the ids 2, 3, ...).
        merged: characters that are encoded as the unknown class without an error (``"paper57"``'s
            digits and punctuation, merged into its non-letter class).
        name: ``"full"``, ``"paper57"`` or a free label; saved with checkpoints.
    """

    def __init__(self, characters: Iterable[str], merged: Iterable[str] = (), name: str = "custom"):
        chars = list(characters)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("alphabet characters must be unique single characters")
        self.name = name
        self.characters: tuple[str, ...] = tuple(chars)
        self.merged: tuple[str, ...] = tuple(c for c in merged if c not in set(chars))
        self._ids: dict[str, int] = {c: i + 2 for i, c in enumerate(self.characters)}
        for c in self.merged:
            self._ids[c] = UNKNOWN

    # -------------------------------------------------------------------------------------- building
    @classmethod
    def build(cls, kind: str = "full", texts: Iterable[str] | None = None) -> "Alphabet":
        """The named alphabet.

        Args:
            kind: ``"full"``: every character of ``texts`` (the training transcriptions) + unknown, or of
                :data:`IAM_CHARACTERS` when ``texts`` is None; ``"paper57"``: the paper's 57 classes
                (``texts`` is not used).
        """
        if kind == "full":
            if texts is not None:
                return cls.from_texts(texts, name="full")
            return cls(IAM_CHARACTERS, name="full")
        if kind == "paper57":
            kept = [c for c in IAM_CHARACTERS if c.isalpha() or c in PAPER57_KEPT]
            merged = [c for c in IAM_CHARACTERS if c not in kept]
            return cls(kept, merged=merged, name="paper57")
        raise ValueError(f"unknown alphabet {kind!r} (expected 'full' or 'paper57')")

    @classmethod
    def from_texts(cls, texts: Iterable[str], name: str = "custom") -> "Alphabet":
        """Every character occurring in ``texts`` (in code-point order), plus the unknown class."""
        chars: set[str] = set()
        for t in texts:
            chars.update(t)
        return cls(sorted(chars), name=name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "characters": "".join(self.characters), "merged": "".join(self.merged)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Alphabet":
        return cls(d["characters"], merged=d.get("merged", ""), name=d.get("name", "custom"))

    # -------------------------------------------------------------------------------------- queries
    def __len__(self) -> int:
        """V: the number of ids (padding and unknown included) = the width of a one-hot row."""
        return len(self.characters) + 2

    @property
    def vocab_size(self) -> int:
        return len(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Alphabet) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        return f"Alphabet({self.name!r}, V={len(self)})"

    def __contains__(self, ch: str) -> bool:
        return ch in self._ids

    def unknown_characters(self, text: str) -> list[str]:
        """The characters of ``text`` that have no class (sorted, unique)."""
        return sorted({c for c in text if c not in self._ids})

    # -------------------------------------------------------------------------------------- encoding
    def encode(self, text: str, substitute: bool = False) -> list[int]:
        """Ids of ``text`` (each ≥ 1).

        Raises:
            ValueError: ``text`` is empty (after substitution).
            UnknownCharacterError: a character has no class and ``substitute`` is False.
        """
        if substitute:
            text = substitute_text(text)
        if not text:
            raise ValueError("cannot encode an empty text: the synthesis net needs at least one character")
        if not substitute:
            bad = self.unknown_characters(text)
            if bad:
                raise UnknownCharacterError(bad, text)
        return [self._ids.get(c, UNKNOWN) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; padding is dropped, the unknown class is written ``"\\ufffd"``."""
        out = []
        for i in ids:
            i = int(i)
            if i == PAD:
                continue
            out.append("\ufffd" if i == UNKNOWN else self.characters[i - 2])
        return "".join(out)

    def one_hot(self, texts: list[str] | str, substitute: bool = False,
                device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """One-hot text for a batch (eq. 47's c).

        Args:
            texts: B texts (or one text: B = 1).

        Returns:
            ``c (B, U, V)`` float32, U the longest text, rows past a text's end all zero (padding);
            ``lengths (B,)`` int64.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            raise ValueError("one_hot needs at least one text")
        ids = [self.encode(t, substitute=substitute) for t in texts]
        lengths = torch.tensor([len(i) for i in ids], dtype=torch.long)
        U = int(lengths.max())
        padded = torch.zeros(len(ids), U, dtype=torch.long)  # (B, U), PAD = 0
        for b, i in enumerate(ids):
            padded[b, : len(i)] = torch.tensor(i, dtype=torch.long)
        c = torch.nn.functional.one_hot(padded, len(self)).to(torch.float32)  # (B, U, V)
        c[..., PAD] = 0.0  # padding rows are all zero
        if device is not None:
            c, lengths = c.to(device), lengths.to(device)
        return c, lengths
