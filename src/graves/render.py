"""Render handwriting: offsets -> SVG, PNG, PDF and plotter polylines; pages of several lines.

Input is one line or a list of lines, each an offsets array ``(T, 3)`` of ``(dx, dy, eos)`` in raw
units with y pointing up (what :mod:`graves.data.iamondb` yields and what the sampler returns after
``Normaliser.denormalise``), or anything with an ``.offsets`` attribute (a ``Line``). Lines are stacked
top to bottom, left-aligned, with a gap between them and an optional label above each.

Page coordinates (the SVG viewBox, the PNG and the polylines) have y pointing **down**, as SVG and pen
plotters expect; the flip from the data's y-up happens once, in :func:`layout`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from graves.data.strokes import offsets_to_strokes

__all__ = ["Page", "RenderError", "OutputError", "layout", "to_svg", "to_png", "to_pdf", "to_polylines", "save",
           "write_page", "write_file", "check_writable", "check_pen_speed", "pen_timing", "SUFFIXES"]

SUFFIXES = (".svg", ".png", ".pdf", ".json")


class RenderError(ValueError):
    """Bad input to a renderer (shape, labels, options) or an output path it cannot write."""


class OutputError(OSError):
    """An output file that could not be written: no such folder, no permission, a full disk, ...

    Raised by :func:`write_file` and :func:`check_writable` with a message naming the file and the reason;
    the file is left as it was (writes are atomic)."""


@dataclass
class Page:
    """Laid-out lines in page coordinates (y down). ``strokes[i]`` are line i's strokes ``(n, 2)``;
    ``labels[i]`` is ``(text, x, y)`` of its label's baseline or None; ``box`` is ``(x0, y0, x1, y1)``
    around everything including the margin; ``font_size`` is the labels' size in page units."""

    strokes: list[list[np.ndarray]]
    labels: list[tuple[str, float, float] | None]
    box: tuple[float, float, float, float]
    font_size: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def _as_lines(lines: Any) -> list[np.ndarray]:
    if hasattr(lines, "offsets"):
        lines = [lines]
    elif isinstance(lines, np.ndarray) and lines.ndim == 2:
        lines = [lines]
    out = []
    for i, line in enumerate(lines):
        o = np.asarray(getattr(line, "offsets", line), dtype=np.float64)
        if o.ndim != 2 or o.shape[1] != 3:
            raise RenderError(f"line {i}: offsets must have shape (T, 3), got {o.shape}")
        if not np.all(np.isfinite(o)):
            raise RenderError(f"line {i}: offsets contain NaN or inf")
        out.append(o)
    return out


def layout(
    lines: Any,
    labels: Sequence[str | None] | None = None,
    line_gap: float | None = None,
    margin: float | None = None,
    font_size: float | None = None,
) -> Page:
    """Stack ``lines`` top to bottom (left-aligned at x = margin) in page coordinates, y down.

    ``line_gap``, ``margin`` and ``font_size`` are in data units; by default they are 0.3, 0.2 and 0.25
    times the median line height (at least 1 unit each), so the page looks the same at any scale. A line
    with no points is a blank line of that median height.
    """
    offsets = _as_lines(lines)
    if labels is not None and len(labels) != len(offsets):
        raise RenderError(f"{len(labels)} labels for {len(offsets)} lines")
    line_strokes = [offsets_to_strokes(o) for o in offsets]
    boxes = []
    for strokes in line_strokes:
        if strokes:
            pts = np.concatenate(strokes)
            boxes.append((pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()))
        else:
            boxes.append((0.0, 0.0, 0.0, 0.0))
    heights = [b[3] - b[1] for b in boxes if b[3] > b[1]]
    typical = float(np.median(heights)) if heights else 1.0
    line_gap = max(0.3 * typical, 1.0) if line_gap is None else float(line_gap)
    margin = max(0.2 * typical, 1.0) if margin is None else float(margin)
    font_size = max(0.25 * typical, 1.0) if font_size is None else float(font_size)

    placed: list[list[np.ndarray]] = []
    placed_labels: list[tuple[str, float, float] | None] = []
    top = margin  # page y of the next line's top
    right = margin
    for i, (strokes, (x0, y0, x1, y1)) in enumerate(zip(line_strokes, boxes)):
        label = labels[i] if labels is not None else None
        if label:
            top += font_size
            placed_labels.append((str(label), margin, top - 0.2 * font_size))
        else:
            placed_labels.append(None)
        # data (x, y up) -> page (x, y down): x' = x - x0 + margin, y' = (y1 - y) + top
        placed.append([np.column_stack([s[:, 0] - x0 + margin, (y1 - s[:, 1]) + top]) for s in strokes])
        right = max(right, margin + (x1 - x0))
        if label:
            right = max(right, margin + 0.6 * font_size * len(str(label)))  # rough text width
        # an empty line (a blank line of a letter) takes a typical line's height
        top += ((y1 - y0) if strokes else typical) + (line_gap if i < len(line_strokes) - 1 else 0.0)
    box = (0.0, 0.0, right + margin, top + margin)
    return Page(placed, placed_labels, box, font_size)


#: Characters XML 1.0 does not allow in a document (controls, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """``text`` escaped for an XML element, characters XML cannot hold replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", text))


def _check_sizes(scale: float, stroke_width: float) -> None:
    for name, v in (("scale", scale), ("stroke_width", stroke_width)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise RenderError(f"{name} must be a finite number > 0, got {v!r}")


def _fmt(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _path_data(stroke: np.ndarray) -> str:
    if len(stroke) == 1:  # a dot: a zero-length segment, drawn by the round cap
        x, y = stroke[0]
        return f"M{_fmt(x)} {_fmt(y)}h0"
    head = f"M{_fmt(stroke[0, 0])} {_fmt(stroke[0, 1])}L"
    return head + " ".join(f"{_fmt(x)} {_fmt(y)}" for x, y in stroke[1:])


def to_svg(
    lines: Any,
    labels: Sequence[str | None] | None = None,
    *,
    stroke_width: float = 2.0,
    colour: str = "black",
    background: str | None = "white",
    scale: float = 0.25,
    line_gap: float | None = None,
    margin: float | None = None,
    font_size: float | None = None,
    animate: float | None = None,
) -> str:
    """An SVG document: one ``<path>`` per stroke, viewBox fitted to the page (data units, y down).

    ``scale``: output pixels per data unit (sets width/height; the drawing scales freely).
    ``stroke_width``: in output pixels. ``background``: a fill colour, or None for transparent.
    ``animate``: pen points per second, to draw the page as it was written (None: a still page). See
    :func:`pen_timing`; the animation is CSS in the document, and a viewer without CSS animations shows the
    finished page.
    """
    page = layout(lines, labels, line_gap, margin, font_size)
    _check_sizes(scale, stroke_width)
    timing = pen_timing(page, animate) if animate is not None else None
    x0, y0, x1, y1 = page.box
    w, h = x1 - x0, y1 - y0
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{_fmt(w * scale)}" '
        f'height="{_fmt(h * scale)}" viewBox="{_fmt(x0)} {_fmt(y0)} {_fmt(w)} {_fmt(h)}">',
    ]
    if background:
        out.append(f'<rect x="{_fmt(x0)}" y="{_fmt(y0)}" width="{_fmt(w)}" height="{_fmt(h)}" '
                   f"fill={quoteattr(background)}/>")
    if timing is not None:
        out.append(_PEN_STYLE)
    out.append(f'<g fill="none" stroke={quoteattr(colour)} stroke-width="{stroke_width / scale:.4g}" '
               'stroke-linecap="round" stroke-linejoin="round"' + (' class="graves-pen">' if timing is not None else ">"))
    for i, strokes in enumerate(page.strokes):
        out.append(f'<g class="line" id="line-{i}">')
        if timing is None:
            out.extend(f'<path d="{_path_data(s)}"/>' for s in strokes)
        else:
            out.extend(f'<path d="{_path_data(s)}" pathLength="1" style="animation-delay:{start:.3f}s;'
                       f'animation-duration:{duration:.3f}s"/>' for s, (start, duration) in zip(strokes, timing[i]))
        out.append("</g>")
    out.append("</g>")
    for label in page.labels:
        if label is not None:
            text, x, y = label
            out.append(f'<text x="{_fmt(x)}" y="{_fmt(y)}" font-family="sans-serif" '
                       f'font-size="{_fmt(page.font_size)}" fill={quoteattr(colour)}>{_xml_text(text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# The pen animation: each stroke is a dash as long as the path (pathLength="1") drawn from offset 1 to 0,
# invisible until its start ("both" keeps the first frame during the delay; opacity hides the round cap
# of the empty dash), linear in the path's length.
_PEN_STYLE = ("<style>@keyframes graves-pen{0%{stroke-dashoffset:1;opacity:0}0.01%{opacity:1}"
              "100%{stroke-dashoffset:0;opacity:1}}"
              ".graves-pen path{stroke-dasharray:1 2;animation-name:graves-pen;"
              "animation-timing-function:linear;animation-fill-mode:both}</style>")
LINE_PAUSE_POINTS = 20  # the pen's pause between two lines, in pen points
DEFAULT_PEN_SPEED = 100.0  # pen points per second of `graves write --animate` (about 5 letters a second)
#: The pen speeds an animated page accepts, in points per second: from a page that takes minutes per line
#: to one that is done in a blink (beyond these, CSS times become useless or non-finite).
PEN_SPEED_RANGE = (1.0, 10_000.0)


def check_pen_speed(points_per_second: Any) -> float:
    """``points_per_second`` as a float, or a :class:`RenderError`: a number in :data:`PEN_SPEED_RANGE`."""
    low, high = PEN_SPEED_RANGE
    ok = isinstance(points_per_second, (int, float)) and not isinstance(points_per_second, bool)
    try:
        ok = ok and low <= points_per_second <= high
    except OverflowError:  # an int beyond any float
        ok = False
    if not ok:
        raise RenderError(f"the pen speed must be {low:g} to {high:,.0f} points per second, got {points_per_second!r}")
    return float(points_per_second)


def pen_timing(page: Page, points_per_second: float) -> list[list[tuple[float, float]]]:
    """When each stroke of ``page`` is drawn, as the net wrote it: ``[line][stroke] = (start, duration)`` in s.

    The net writes one pen point per step, so point j of a line is drawn at j / ``points_per_second``
    after the line begins; a stroke runs from its first point to its last (a dot gets one point's time),
    the move between strokes is the pen-up step between them, and the lines follow one another with a
    pause of :data:`LINE_PAUSE_POINTS` points (blank lines add nothing).
    """
    dt = 1.0 / check_pen_speed(points_per_second)
    timing: list[list[tuple[float, float]]] = []
    clock = 0  # in points
    for strokes in page.strokes:
        line = []
        if strokes and clock:
            clock += LINE_PAUSE_POINTS
        for stroke in strokes:
            line.append((clock * dt, max(len(stroke) - 1, 1) * dt))
            clock += len(stroke)
        timing.append(line)
    return timing


_MAX_PIXELS = 16000  # per side; matplotlib/Agg refuses much larger canvases


def _matplotlib_page(
    lines: Any,
    labels: Sequence[str | None] | None,
    stroke_width: float,
    colour: str,
    scale: float,
    dpi: int,
    line_gap: float | None,
    margin: float | None,
    font_size: float | None,
):
    """The page drawn on a matplotlib Figure of ``scale`` pixels per data unit at ``dpi`` (no pyplot state);
    what :func:`to_png` rasterises and :func:`to_pdf` keeps as vectors."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    page = layout(lines, labels, line_gap, margin, font_size)
    _check_sizes(scale, stroke_width)
    if not (isinstance(dpi, (int, float)) and math.isfinite(dpi) and dpi > 0):
        raise RenderError(f"dpi must be a finite number > 0, got {dpi!r}")
    x0, y0, x1, y1 = page.box
    w, h = x1 - x0, y1 - y0
    scale = min(scale, _MAX_PIXELS / max(w, h))
    px_w, px_h = max(1, round(w * scale)), max(1, round(h * scale))
    fig = Figure(figsize=(px_w / dpi, px_h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # page y points down
    width_pt = stroke_width * 72.0 / dpi
    strokes = [s for line in page.strokes for s in line]
    segments = [s for s in strokes if len(s) > 1]
    dots = np.array([s[0] for s in strokes if len(s) == 1]).reshape(-1, 2)
    ax.add_collection(LineCollection(segments, colors=colour, linewidths=width_pt,
                                     capstyle="round", joinstyle="round"))
    if len(dots):
        ax.scatter(dots[:, 0], dots[:, 1], s=width_pt**2, c=colour, marker="o", linewidths=0)
    for label in page.labels:
        if label is not None:
            text, x, y = label
            ax.text(x, y, text, fontsize=page.font_size * scale * 72.0 / dpi, color=colour,
                    family="sans-serif", va="baseline", ha="left")
    return fig


def to_png(
    lines: Any,
    labels: Sequence[str | None] | None = None,
    *,
    stroke_width: float = 2.0,
    colour: str = "black",
    background: str | None = "white",
    scale: float = 0.25,
    dpi: int = 100,
    line_gap: float | None = None,
    margin: float | None = None,
    font_size: float | None = None,
) -> bytes:
    """PNG bytes drawn with matplotlib's Agg canvas (no display, no pyplot state).

    ``scale``: pixels per data unit (reduced if a side would exceed 16,000 px); ``stroke_width`` in pixels.
    """
    fig = _matplotlib_page(lines, labels, stroke_width, colour, scale, dpi, line_gap, margin, font_size)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=background or "none",
                transparent=background is None)
    return buf.getvalue()


def to_pdf(
    lines: Any,
    labels: Sequence[str | None] | None = None,
    *,
    stroke_width: float = 2.0,
    colour: str = "black",
    background: str | None = "white",
    scale: float = 0.25,
    line_gap: float | None = None,
    margin: float | None = None,
    font_size: float | None = None,
) -> bytes:
    """PDF bytes: the same drawing as :func:`to_png`, as vector paths (print at any size).

    The page measures what the PNG would at 100 dpi (``scale`` pixels per data unit); ``stroke_width`` is
    in those pixels (1 px = 0.72 pt). No creation date is written, so the same page gives the same bytes.
    """
    fig = _matplotlib_page(lines, labels, stroke_width, colour, scale, 100, line_gap, margin, font_size)
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", facecolor=background or "none", transparent=background is None,
                metadata={"Creator": "graves", "Producer": None, "CreationDate": None})
    return buf.getvalue()


def to_polylines(
    lines: Any, line_gap: float | None = None, margin: float | None = None
) -> list[np.ndarray]:
    """Plotter paths: every stroke of the page as an ``(n, 2)`` array in page units (y down), in writing
    order. Pen down along each, pen up between them."""
    page = layout(lines, None, line_gap, margin)
    return [s for line in page.strokes for s in line]


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before minutes of sampling, on an output that could not be written afterwards.

    ``path`` must not be a folder. Its folder, or the nearest existing folder above it when the write would
    have to make folders, is probed by creating and removing an empty file in it; nothing is left behind
    (no empty folder when the work then fails). Raises :class:`OutputError`; returns ``path`` as a ``Path``."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot write {path}: {ancestor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def write_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: into a fresh file beside it (created with the usual umask
    permissions), then renamed into place; the folder is made if needed.

    On any failure (a full disk, no permission, ...) the temporary file is removed and ``path`` is left as it
    was: an :class:`OutputError` names the file and the reason."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            kept = "the existing file was left as it was" if path.exists() else "nothing was written"
            raise OutputError(f"cannot write {path}: {exc.strerror or exc} ({kept})") from exc
        raise
    return path


def save(path: str | os.PathLike, lines: Any, labels: Sequence[str | None] | None = None, **options) -> Path:
    """Write ``lines`` to ``path``, the format chosen by its suffix: ``.svg`` (:func:`to_svg`), ``.png``
    (:func:`to_png`), ``.pdf`` (:func:`to_pdf`) or ``.json`` (plotter polylines: ``{"units", "y_axis",
    "polylines"}``). The file is written atomically (a temporary file renamed into place). Options go to
    the renderer; for ``.json``, the page's geometry (``line_gap``, ``margin``) applies and the drawing
    options (ink, pen width, page colour, animation) mean nothing to a plotter path and are left out."""
    path = Path(path)
    suffix = path.suffix.lower()
    if options.get("animate") is not None and suffix in (".png", ".pdf"):
        raise RenderError(f"cannot animate {path.name}: only an SVG page can be drawn as it was written")
    if suffix == ".svg":
        data = to_svg(lines, labels, **options).encode("utf-8")
    elif suffix == ".png":
        data = to_png(lines, labels, **options)
    elif suffix == ".pdf":
        data = to_pdf(lines, labels, **options)
    elif suffix == ".json":
        polylines = to_polylines(lines, **{k: v for k, v in options.items() if k in ("line_gap", "margin")})
        doc = {"units": "data", "y_axis": "down",
               "polylines": [[[round(float(x), 3), round(float(y), 3)] for x, y in p] for p in polylines]}
        data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    else:
        raise RenderError(f"cannot save {path}: unknown suffix {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    return write_file(path, data)


def write_page(lines: Any, path: str | os.PathLike, labels: Sequence[str | None] | None = None,
               **options) -> Path:
    """:func:`save` with the lines first: write a page of ``lines`` to ``path`` (.svg, .png, .pdf or .json)."""
    return save(path, lines, labels, **options)
