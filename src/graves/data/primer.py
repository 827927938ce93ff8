"""Your own handwriting as a primer for synthesis (SPEC §4, "Primed"; paper §5.5).

A primer is a real (or generated) line x with its transcription c. To write a text s "in the style of"
that line, the synthesis net is given the text c' = c + " " + s, its pen inputs are clamped to x for the
first T steps, and then it samples the rest (see :func:`graves.sample.synthesize`).

Three sources are read here:

* **JSON strokes**: a list of strokes, each a list of ``[x, y]`` points (extra numbers per point, such as a
  time stamp, are ignored)::

      [[[10, 20], [12, 24], [15, 30]], [[40, 20], [41, 35]]]

  or an object ``{"strokes": [...], "text": "the transcription", "y_down": true}``. Coordinates are
  screen coordinates by default (y grows downwards), as a browser canvas or a tablet gives them;
  pass ``y_down=False`` (or ``"y_down": false`` in the object) for y-up coordinates.
* **InkML** (W3C): every ``<trace>`` element is one stroke of comma-separated points ``"x y[ t ...]"``.
  Only explicit coordinates are read (not InkML's ``'`` / ``"`` difference encodings). An
  ``<annotation type="truth">`` gives the transcription when no text is passed. y grows downwards
  (InkML's convention) unless ``y_down=False``. Parsed with ``defusedxml`` (no entity expansion).
* **An IAM-OnDB line id** such as ``a01-000u-01``, read with :mod:`graves.data.iamondb` from a data
  root; its transcription comes from the database.

Every source ends as :class:`Primer`: ``offsets (T, 3)`` float32 ``(dx, dy, eos)`` in *raw IAM-OnDB
units with y up* (the layout of :class:`graves.data.iamondb.Line` and :mod:`graves.data.strokes`), eos = 1
on the last point of each stroke, the first offset (0, 0), plus the transcription. Normalisation with the model's normaliser
happens in the sampler (the same mean/std as the training data).

Preprocessing of a user's trace (not of IAM lines, which the IAM loader already preprocessed):

1. repeated points inside a stroke (zero-length steps, common with mice and touch screens) are dropped;
2. **rescaling** (``rescale=True``): a user's device samples at its own rate and resolution, so the
   trace is scaled uniformly (both axes, aspect kept) so that its *median pen-down step length* equals
   IAM-OnDB's, :data:`IAM_MEDIAN_STEP`. The network was trained on IAM step sizes, and the step size is
   what it sees; the median is robust to the odd long jump. This does not change the number of points
   per letter: a trace sampled far more densely than IAM's pen (about 30 points per line height) will
   look larger than IAM writing to the net, one sampled far more sparsely smaller;
3. IAM's outlier removal (:func:`graves.data.strokes.remove_outliers`, after the rescaling): a pen-down
   step longer than the training data's threshold becomes a pen lift, as in the training lines. IAM's
   other step, filling in missing readings, needs time stamps and is not applied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graves.data.strokes import remove_outliers, step_lengths, strokes_to_offsets

__all__ = [
    "IAM_MEDIAN_STEP",
    "Primer",
    "PrimerError",
    "iam_folder",
    "load_iam_line",
    "load_primer",
    "primer_from_json",
    "median_step",
    "parse_inkml",
    "parse_json_strokes",
    "rescale_offsets",
]

#: Median length of a pen-down step between consecutive points of IAM-OnDB's ``lineStrokes`` files, in
#: raw whiteboard units: 18.7 over the 971 lines of the ``a0*`` writers (19.0 ignoring repeated
#: points). Measured once (the command is in ``docs/sampling-notes.md``); a summary statistic, not data.
IAM_MEDIAN_STEP = 19.0

_IAM_LINE_ID = re.compile(r"^[a-z]\d\d-\d{3}[a-z]?-\d\d$")


class PrimerError(ValueError):
    """A primer file or line id that cannot be used; the message says what is wrong and where."""


@dataclass(frozen=True)
class Primer:
    """A primer for synthesis.

    Attributes:
        offsets: ``(T, 3)`` float32 ``(dx, dy, eos)`` in raw IAM-OnDB units, y up.
        text: its transcription (may be empty when the caller supplies it later).
        source: where it came from (a path, an IAM line id, or a free label), for messages.
    """

    offsets: np.ndarray
    text: str
    source: str = ""

    def with_text(self, text: str) -> "Primer":
        return Primer(self.offsets, text, self.source)


# ------------------------------------------------------------------------------------------ step size


def median_step(offsets: np.ndarray) -> float:
    """Median length of the pen-down steps (steps inside a stroke; zero-length steps excluded)."""
    d = step_lengths(np.asarray(offsets, dtype=np.float32).reshape(-1, 3), pen_down=True)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 0.0


def rescale_offsets(offsets: np.ndarray, target_step: float = IAM_MEDIAN_STEP) -> np.ndarray:
    """Scale (dx, dy) uniformly so that the median pen-down step equals ``target_step``. Pure."""
    m = median_step(offsets)
    out = np.array(offsets, dtype=np.float32, copy=True)
    if m > 0:
        out[:, :2] *= target_step / m
    return out


def _user_offsets(strokes: list[np.ndarray], rescale: bool, where: str = "primer") -> np.ndarray:
    """A user's strokes (y up) → offsets: rescaled to IAM's step size, then IAM's outlier removal."""
    with np.errstate(over="ignore", invalid="ignore"):  # steps beyond any float: checked just below
        offsets = strokes_to_offsets(strokes)
        too_far = not np.isfinite(offsets).all() or not np.isfinite(np.asarray(offsets, np.float32)).all()
    if too_far:
        raise PrimerError(f"{where}: coordinates too far apart to be pen positions")
    if rescale:
        m = median_step(offsets)
        if m > 0:
            strokes = [s * (IAM_MEDIAN_STEP / m) for s in strokes]
    strokes = remove_outliers(strokes)  # SPEC §3 preprocessing, as for the training lines
    return strokes_to_offsets(strokes)


# ------------------------------------------------------------------------------------------ parsers


def _clean_strokes(raw: list[np.ndarray], y_down: bool, where: str) -> list[np.ndarray]:
    strokes = []
    for i, s in enumerate(raw):
        if not np.all(np.isfinite(s)):
            raise PrimerError(f"{where}: stroke {i} holds a non-finite coordinate (NaN or infinity)")
        if y_down:
            s = s * np.array([1.0, -1.0])
        if len(s) > 1:  # drop repeated points (zero-length steps)
            with np.errstate(over="ignore"):  # an inf step is not a repeat; too-far points are refused later
                keep = np.concatenate([[True], np.any(np.diff(s, axis=0) != 0, axis=1)])
            s = s[keep]
        strokes.append(s)
    total = sum(len(s) for s in strokes)
    if total < 2:
        raise PrimerError(f"{where}: a primer needs at least 2 points, got {total}")
    return strokes


def parse_json_strokes(data: Any, y_down: bool = True, where: str = "JSON primer") -> tuple[list[np.ndarray], str]:
    """A decoded JSON value → (strokes, y up, each ``(n_i, 2)`` float64; transcription or "").

    Accepts a list of strokes of ``[x, y, ...]`` points, or ``{"strokes": [...], "text": ..., "y_down": ...}``.
    """
    text = ""
    if isinstance(data, dict):
        if "strokes" not in data:
            raise PrimerError(f"{where}: an object needs a \"strokes\" key (a list of strokes of [x, y] points)")
        text = data.get("text", "") or ""
        if not isinstance(text, str):
            raise PrimerError(f"{where}: \"text\" must be a string")
        if "y_down" in data:
            if not isinstance(data["y_down"], bool):
                raise PrimerError(f"{where}: \"y_down\" must be true or false")
            y_down = data["y_down"]
        data = data["strokes"]
    if not isinstance(data, list) or not data:
        raise PrimerError(f"{where}: expected a non-empty list of strokes, each a list of [x, y] points")
    raw = []
    for i, stroke in enumerate(data):
        if not isinstance(stroke, list) or not stroke:
            raise PrimerError(f"{where}: stroke {i} must be a non-empty list of [x, y] points")
        pts = []
        for j, p in enumerate(stroke):
            ok = isinstance(p, (list, tuple)) and len(p) >= 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in p[:2]
            )
            if not ok:
                raise PrimerError(f"{where}: stroke {i}, point {j} is {p!r}; expected [x, y] numbers")
            try:
                pts.append((float(p[0]), float(p[1])))
            except OverflowError:  # an integer beyond any float
                raise PrimerError(f"{where}: stroke {i}, point {j} is too large to be a coordinate") from None
        raw.append(np.array(pts, dtype=np.float64))
    return _clean_strokes(raw, y_down, where), text


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_inkml(source: str | bytes, y_down: bool = True, where: str = "InkML primer") -> tuple[list[np.ndarray], str]:
    """InkML text → (strokes, y up; the ``<annotation type="truth">`` text or "")."""
    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    try:
        root = DET.fromstring(source)
    except DefusedXmlException as exc:
        raise PrimerError(f"{where}: refused unsafe XML ({exc.__class__.__name__})") from None
    except Exception as exc:  # xml.etree.ElementTree.ParseError and friends
        raise PrimerError(f"{where}: not well-formed XML: {exc}") from None
    text = ""
    for el in root.iter():
        if _local(el.tag) == "annotation" and el.get("type") == "truth" and el.text and el.text.strip():
            text = el.text.strip()
            break
    raw = []
    for i, el in enumerate(e for e in root.iter() if _local(e.tag) == "trace"):
        body = (el.text or "").strip()
        if not body:
            raise PrimerError(f"{where}: <trace> {i} is empty")
        pts = []
        for j, chunk in enumerate(body.split(",")):
            fields = chunk.split()
            try:
                vals = [float(v) for v in fields[:2]]
            except ValueError:
                vals = []
            if len(vals) < 2:
                raise PrimerError(
                    f"{where}: <trace> {i}, point {j} is {chunk.strip()!r}; expected explicit 'x y' numbers "
                    "(InkML difference encodings are not supported)"
                )
            pts.append(vals)
        raw.append(np.array(pts, dtype=np.float64))
    if not raw:
        raise PrimerError(f"{where}: no <trace> elements found")
    return _clean_strokes(raw, y_down, where), text


# ------------------------------------------------------------------------------------------ entry point


def iam_folder(data_root: str | Path) -> Path:
    """The IAM-OnDB folder: ``data_root/iam-ondb`` when it exists (a data root), else ``data_root`` itself."""
    root = Path(data_root)
    return root / "iam-ondb" if (root / "iam-ondb").is_dir() else root


def load_iam_line(line_id: str, data_root: str | Path | None) -> tuple[np.ndarray, str]:
    """An IAM-OnDB line by id → (offsets ``(T, 3)`` float32 raw units y up, transcription).

    Read with :func:`graves.data.iamondb.read_forms` (only that line's form; the training data's
    preprocessing: interpolation, outlier removal), or from a pack (:func:`graves.data.iamondb.pack_line`)
    where one stands in for the official files. ``data_root``: the data root holding ``iam-ondb/``, the
    IAM-OnDB folder itself, or a pack file; None: ``$GRAVES_DATA``.
    """
    import os

    if data_root is None:
        data_root = os.environ.get("GRAVES_DATA")
    if not data_root:
        raise PrimerError(f"{line_id!r} is an IAM-OnDB line id: pass the data root (--data or $GRAVES_DATA)")
    import inspect

    from graves.data.iamondb import find_pack, pack_line, read_forms

    pack = find_pack(iam_folder(data_root))
    if pack is not None:  # a pack (`graves data pack`) in place of the official files
        line = pack_line(pack, line_id)
    else:
        form = line_id.rsplit("-", 1)[0]
        kwargs = {"workers": 0} if "workers" in inspect.signature(read_forms).parameters else {}  # one form
        by_form, problems = read_forms(iam_folder(data_root), [form], progress=False, **kwargs)
        line = next((ln for ln in by_form.get(form, []) if ln.id == line_id), None)
        ours = [p for p in problems if p.where.startswith(line_id) or p.where == form]
        if line is None and ours:  # the line is there but could not be read: say why
            raise PrimerError(f"IAM-OnDB line {line_id!r} cannot be used: {'; '.join(map(str, ours[:3]))}")
    if line is None:
        raise PrimerError(f"IAM-OnDB line {line_id!r} not found under {data_root}")
    if not line.text:
        raise PrimerError(f"IAM-OnDB line {line_id!r} has no transcription in the database")
    return np.asarray(line.offsets, dtype=np.float32).copy(), line.text


def primer_from_json(
    data: Any,
    text: str | None = None,
    y_down: bool = True,
    rescale: bool = True,
    where: str = "JSON primer",
) -> Primer:
    """A primer from already-decoded JSON strokes (what a browser canvas sends; see the module docstring).

    The same preprocessing as a ``.json`` file given to :func:`load_primer`; ``text`` overrides one in
    ``data``.

    Raises:
        PrimerError: malformed strokes or too few points (the message says which).
    """
    strokes, found = parse_json_strokes(data, y_down=y_down, where=where)
    return Primer(_user_offsets(strokes, rescale, where), text if text is not None else found, where)


def load_primer(
    spec: str | Path,
    text: str | None = None,
    data_root: str | Path | None = None,
    y_down: bool = True,
    rescale: bool = True,
) -> Primer:
    """Read a primer from a JSON or InkML file, or an IAM-OnDB line id.

    Args:
        spec: a path (``.json``, ``.inkml`` / ``.xml``; other suffixes are sniffed) or a line id.
        text: the transcription; overrides one found in the file. Required in the end (a primer
            without its text cannot condition the window), but may be given later via
            :meth:`Primer.with_text`.
        data_root: the data root holding ``iam-ondb/`` (for line ids).
        y_down: files use screen coordinates (y grows downwards). Ignored for IAM line ids.
        rescale: match the median pen-down step to IAM's (user files only; see the module docstring).

    Returns:
        :class:`Primer` with offsets ``(T, 3)`` in raw IAM units, y up.

    Raises:
        PrimerError: a malformed file (the message says what and where), a missing file, or an unknown id.
    """
    spec_s = str(spec)
    path = Path(spec_s)
    if not path.exists() and _IAM_LINE_ID.match(spec_s):
        offsets, line_text = load_iam_line(spec_s, data_root)
        return Primer(offsets, text if text is not None else line_text, spec_s)
    if not path.exists():
        raise PrimerError(f"primer not found: {spec_s} (expected a JSON or InkML file, or an IAM-OnDB line id)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PrimerError(f"cannot read primer {spec_s}: {exc}") from None
    suffix = path.suffix.lower()
    head = raw.lstrip()[:1]
    if suffix == ".json" or (suffix not in (".inkml", ".xml") and head in (b"[", b"{")):
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # not UTF-8 or JSON, a number past the digit limit, too deep
            raise PrimerError(f"{spec_s}: not valid JSON: {type(exc).__name__}: {exc}") from None
        strokes, found = parse_json_strokes(data, y_down=y_down, where=spec_s)
    elif suffix in (".inkml", ".xml") or head == b"<":
        strokes, found = parse_inkml(raw, y_down=y_down, where=spec_s)
    else:
        raise PrimerError(f"{spec_s}: unknown primer format (expected .json strokes or .inkml)")
    return Primer(_user_offsets(strokes, rescale, spec_s), text if text is not None else found, spec_s)
