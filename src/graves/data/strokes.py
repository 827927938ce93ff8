"""Pure stroke transforms for online handwriting (SPEC §3): absolute strokes <-> offsets, filling in
missing readings, removing outlier steps, and normalising offsets to mean 0 / std 1.

Representations (all numpy, no I/O):

- **strokes**: ``list[np.ndarray (n_i, 2)]`` of absolute pen positions, y pointing **up**; the pen is
  down along each stroke and lifts after its last point.
- **timed strokes**: ``list[np.ndarray (n_i, 3)]`` of ``(x, y, time)`` as read from IAM-OnDB (time in
  seconds, NaN when unknown); the input of :func:`preprocess`.
- **offsets**: ``np.ndarray (T, 3)`` float32 of ``(dx, dy, eos)``, one row per point (the paper's
  x_t = (x1, x2, x3)). Row t holds the step from point t-1 to point t and ``eos = 1`` on the last point of
  each stroke (the pen lifts after it). **Row 0 is the first point relative to itself, (0, 0, eos)**: the
  absolute start position of a line is dropped (a line starts at the origin) and ``offsets_to_strokes``
  takes an ``origin`` to put it back. The network's null first input x_1 = 0 is prepended by the model,
  not here. Sampled sequences may end with ``eos = 0``; the trailing points then form a last stroke.

The default preprocessing settings were measured on the real IAM-OnDB files; the numbers behind them
are in ``docs/data-notes.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

# Measured on IAM-OnDB (docs/data-notes.md): the median per-line sampling interval of gap-free strokes.
SAMPLE_INTERVAL = 0.0147  # seconds (≈ 68 Hz)
# Longest in-stroke time gap that is filled by interpolation; longer gaps are pauses or unrecorded pen lifts.
MAX_GAP = 0.2  # seconds
# Longest pen-down step kept after interpolation (whiteboard units); see remove_outliers.
MAX_STEP = 300.0


@dataclass(frozen=True)
class Preprocessing:
    """Settings of :func:`preprocess` (SPEC §3: "fill in missing readings by interpolation, remove steps
    whose length exceeds a threshold"). Part of the IAM-OnDB cache key."""

    fill_gaps: bool = True
    sample_interval: float = SAMPLE_INTERVAL
    max_gap: float = MAX_GAP
    remove_outliers: bool = True
    max_step: float = MAX_STEP

    def __post_init__(self) -> None:
        if not self.sample_interval > 0:
            raise ValueError(f"sample_interval must be > 0, got {self.sample_interval}")
        if not self.max_gap >= 0:
            raise ValueError(f"max_gap must be >= 0, got {self.max_gap}")
        if not self.max_step > 0:
            raise ValueError(f"max_step must be > 0, got {self.max_step}")

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# absolute <-> offsets


def _check_offsets(offsets: np.ndarray) -> np.ndarray:
    offsets = np.asarray(offsets)
    if offsets.ndim != 2 or offsets.shape[1] != 3:
        raise ValueError(f"offsets must have shape (T, 3), got {offsets.shape}")
    return offsets


def points_to_offsets(points: np.ndarray, eos: np.ndarray) -> np.ndarray:
    """Absolute points ``(T, 2)`` and pen-lift flags ``(T,)`` -> offsets ``(T, 3)`` float32.

    Row 0 is ``(0, 0, eos[0])``: the first point relative to itself.
    """
    points = np.asarray(points, dtype=np.float64)
    eos = np.asarray(eos)
    if points.ndim != 2 or points.shape[1] != 2 or eos.shape != (points.shape[0],):
        raise ValueError(f"points must be (T, 2) and eos (T,), got {points.shape} and {eos.shape}")
    out = np.zeros((points.shape[0], 3), dtype=np.float32)  # (T, 3)
    if points.shape[0]:
        with np.errstate(over="ignore"):  # a step beyond float32 becomes inf: callers check and say so
            out[1:, :2] = np.diff(points, axis=0)  # dx, dy in float64, then rounded once to float32
        out[:, 2] = eos != 0
    return out


def offsets_to_points(offsets: np.ndarray, origin: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Offsets ``(T, 3)`` -> absolute points ``(T, 2)`` float64 (running sums, starting at ``origin``).

    Inverse of :func:`points_to_offsets`: ``points_to_offsets(offsets_to_points(o), o[:, 2])`` returns ``o``
    exactly whenever the float64 running sums are exact (true for IAM-OnDB: integer coordinates and
    interpolated fractions), and to float32 rounding otherwise.
    """
    offsets = _check_offsets(offsets)
    points = np.cumsum(offsets[:, :2], axis=0, dtype=np.float64)  # (T, 2)
    points[:, 0] += origin[0]
    points[:, 1] += origin[1]
    return points


def split_strokes(points: np.ndarray, eos: np.ndarray) -> list[np.ndarray]:
    """Cut ``points (T, k)`` into strokes after every row whose ``eos`` is set; trailing rows after the
    last pen lift form a final stroke."""
    ends = np.flatnonzero(np.asarray(eos) != 0) + 1
    pieces = np.split(points, ends)
    return [p for p in pieces if len(p)]


def offsets_to_strokes(offsets: np.ndarray, origin: Sequence[float] = (0.0, 0.0)) -> list[np.ndarray]:
    """Offsets ``(T, 3)`` -> strokes ``list[(n_i, 2)]`` float64 of absolute points starting at ``origin``."""
    offsets = _check_offsets(offsets)
    return split_strokes(offsets_to_points(offsets, origin), offsets[:, 2])


def strokes_to_offsets(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """Strokes ``list[(n_i, >=2)]`` (only the first two columns are used) -> offsets ``(T, 3)`` float32,
    T = Σ n_i. Empty strokes are ignored. The absolute start position is dropped (row 0 is (0, 0, eos))."""
    strokes = [np.asarray(s, dtype=np.float64)[:, :2] for s in strokes if len(s)]
    if not strokes:
        return np.zeros((0, 3), dtype=np.float32)
    points = np.concatenate(strokes)  # (T, 2)
    eos = np.zeros(points.shape[0], dtype=bool)
    eos[np.cumsum([len(s) for s in strokes]) - 1] = True
    return points_to_offsets(points, eos)


def stroke_starts(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """The first point of the first stroke, ``(2,)`` (what :func:`strokes_to_offsets` drops)."""
    for s in strokes:
        if len(s):
            return np.asarray(s, dtype=np.float64)[0, :2].copy()
    return np.zeros(2)


# --------------------------------------------------------------------------------------------------
# filling in missing readings and removing outliers
#
# Both work on a whole line at once, as "flat" arrays: rows (N, k) of points (x, y[, time]) and pen-lift
# flags eos (N,) marking the last point of each stroke (vectorised: a line has hundreds of strokes).


def _flatten(strokes: Sequence[np.ndarray], columns: int) -> tuple[np.ndarray, np.ndarray]:
    """``list[(n_i, >=columns)]`` -> rows ``(N, columns)`` float64 and eos ``(N,)`` bool."""
    strokes = [np.asarray(s, dtype=np.float64) for s in strokes if len(s)]
    if not strokes:
        return np.zeros((0, columns)), np.zeros(0, dtype=bool)
    for s in strokes:
        if s.ndim != 2 or s.shape[1] < columns:
            raise ValueError(f"each stroke must have shape (n, {columns}), got {s.shape}")
    rows = np.concatenate([s[:, :columns] for s in strokes])
    eos = np.zeros(len(rows), dtype=bool)
    eos[np.cumsum([len(s) for s in strokes]) - 1] = True
    return rows, eos


def _pen_down_steps(rows: np.ndarray, eos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps between consecutive rows: ``delta (N-1, k)``, ``length (N-1,)``, ``inside (N-1,)`` (True when
    the step is inside a stroke, i.e. not a pen-up move)."""
    delta = np.diff(rows, axis=0)
    return delta, np.hypot(delta[:, 0], delta[:, 1]), ~eos[:-1]


def fill_missing_flat(
    rows: np.ndarray, eos: np.ndarray, sample_interval: float = SAMPLE_INTERVAL, max_gap: float = MAX_GAP
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fill_missing` for a whole line: ``rows (N, 3)`` of (x, y, time), ``eos (N,)`` ->
    ``(rows (M, 3), eos (M,))`` with interpolated readings inserted inside strokes."""
    rows = np.asarray(rows, dtype=np.float64)
    eos = np.asarray(eos, dtype=bool)
    if len(rows) < 3:
        return rows.copy(), eos.copy()
    delta, length, inside = _pen_down_steps(rows, eos)
    dt = delta[:, 2]
    with np.errstate(invalid="ignore"):
        n_t = np.floor(dt / sample_interval + 0.5)  # sampling intervals the clock says passed
        cand = np.flatnonzero(inside & (n_t >= 2) & (dt <= max_gap + 1e-9))  # (C,)
    if cand.size == 0:
        return rows.copy(), eos.copy()
    # typical step near each candidate: median of up to two steps either side, in the same stroke
    stroke_of_step = np.cumsum(np.concatenate([[0], eos[:-2]]))  # (N-1,)
    near = cand[:, None] + np.array([-2, -1, 1, 2])  # (C, 4)
    ok = (near >= 0) & (near < len(length))
    near_c = np.where(ok, near, 0)
    ok &= inside[near_c] & (stroke_of_step[near_c] == stroke_of_step[cand][:, None])
    vals = np.where(ok, length[near_c], np.nan)  # (C, 4)
    has = ok.any(axis=1)
    typical = np.full(len(cand), np.nan)
    typical[has] = np.maximum(np.nanmedian(vals[has], axis=1), 1.0)
    with np.errstate(invalid="ignore"):
        n_s = np.floor(length[cand] / typical + 0.5)  # typical steps the distance spans
        k = np.where(has, np.minimum(n_t[cand], n_s) - 1, 0)  # readings missing
    k = np.maximum(np.nan_to_num(k), 0).astype(np.int64)
    if not k.any():
        return rows.copy(), eos.copy()
    extra = np.zeros(len(rows), dtype=np.int64)  # points inserted after each point
    extra[cand] = k
    src = np.repeat(np.arange(len(rows)), extra + 1)  # (M,) the point each output row follows
    starts = np.cumsum(extra + 1) - (extra + 1)
    pos = np.arange(len(src)) - starts[src]  # 0 for an original point, 1..k for inserted ones
    frac = (pos / (extra[src] + 1))[:, None]  # (M, 1)
    step = np.vstack([delta, np.zeros((1, rows.shape[1]))])  # (N, 3); the last point has no step
    out = rows[src] + frac * step[src]  # linear in x, y and time
    out[pos == 0] = rows  # original rows exactly
    return out, eos[src] & (pos == 0)


def fill_missing(
    stroke: np.ndarray, sample_interval: float = SAMPLE_INTERVAL, max_gap: float = MAX_GAP
) -> np.ndarray:
    """Insert linearly interpolated readings where a pen-down stroke lost some (SPEC §3).

    ``stroke (n, 3)`` of ``(x, y, time)``; returns ``(m, 3)``, m >= n, with the original rows kept.

    Rule (chosen from the data, see docs/data-notes.md). The time stamps have 0.01 s resolution and
    jitter, so a time gap alone is not trusted; a gap is filled only when time and distance agree.
    For step i (from point i to i+1), with dt its time gap and s its length:

    - ``n_t = round(dt / sample_interval)``: how many sampling intervals the clock says passed
      (dt <= 0 or unknown never counts as a gap: clock glitches exist);
    - ``n_s = round(s / l)``: how many typical steps the distance spans, where l = the median length of
      the (up to) two steps either side in the same stroke, at least 1 unit (no neighbours: no filling);
    - if ``min(n_t, n_s) >= 2`` and ``dt <= max_gap``, ``min(n_t, n_s) - 1`` evenly spaced points are
      inserted. Longer gaps are pauses or unrecorded pen lifts and are left for :func:`remove_outliers`.
    """
    stroke = np.asarray(stroke, dtype=np.float64)
    if stroke.ndim != 2 or stroke.shape[1] != 3:
        raise ValueError(f"a timed stroke must have shape (n, 3), got {stroke.shape}")
    eos = np.zeros(len(stroke), dtype=bool)
    if len(stroke):
        eos[-1] = True
    return fill_missing_flat(stroke, eos, sample_interval, max_gap)[0]


def remove_outliers_flat(
    rows: np.ndarray, eos: np.ndarray, max_step: float = MAX_STEP
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`remove_outliers` for a whole line: ``rows (N, k)`` (x, y first), ``eos (N,)`` ->
    ``(rows (M, k), eos (M,))``, M <= N."""
    rows = np.asarray(rows)
    eos = np.asarray(eos, dtype=bool)
    if len(rows) < 2:
        return rows.copy(), eos.copy()
    _, length, inside = _pen_down_steps(rows[:, :2].astype(np.float64), eos)
    long = inside & (length > max_step)  # (N-1,)
    if not long.any():
        return rows.copy(), eos.copy()
    keep = np.ones(len(rows), dtype=bool)
    keep[1:-1] = ~(long[:-1] & long[1:])  # interior spikes: both steps too long (both inside one stroke)
    rows, eos = rows[keep], eos[keep].copy()
    _, length, inside = _pen_down_steps(rows[:, :2].astype(np.float64), eos)
    eos[:-1] |= inside & (length > max_step)  # split the stroke: the step becomes a pen-up move
    return rows, eos


def remove_outliers(strokes: Sequence[np.ndarray], max_step: float = MAX_STEP) -> list[np.ndarray]:
    """Remove pen-down steps longer than ``max_step`` (SPEC §3), keeping every position in place.

    ``strokes``: ``list[(n_i, k)]``, the first two columns are x, y. Returns a new list in which no step
    inside a stroke is longer than ``max_step``:

    1. a point whose incoming and outgoing steps are both too long (an isolated spike: a tracking
       glitch) is dropped;
    2. every remaining too-long step is cut out of the ink: the stroke is split there, so the step
       becomes a pen-up move (in IAM-OnDB these are mostly pen lifts the board did not record).

    Deleting the offset row instead would shift every later point of the line by that step; pen-up
    moves between strokes are not touched (moving back to dot an i legitimately jumps far).
    """
    strokes = [np.asarray(s) for s in strokes if len(s)]
    if not strokes:
        return []
    columns = min(s.shape[1] for s in strokes)
    rows, eos = _flatten(strokes, columns)
    rows, eos = remove_outliers_flat(rows, eos, max_step)
    return split_strokes(rows, eos)


def preprocess(timed_strokes: Sequence[np.ndarray], settings: Preprocessing = Preprocessing()) -> np.ndarray:
    """IAM-OnDB preprocessing (SPEC §3): fill in missing readings, remove outlier steps, make offsets.

    ``timed_strokes``: ``list[(n_i, 3)]`` of ``(x, y up, time)``. Returns offsets ``(T, 3)`` float32 in
    raw units (not normalised).
    """
    rows, eos = _flatten(timed_strokes, 3)
    if settings.fill_gaps:
        rows, eos = fill_missing_flat(rows, eos, settings.sample_interval, settings.max_gap)
    if settings.remove_outliers:
        rows, eos = remove_outliers_flat(rows, eos, settings.max_step)
    return points_to_offsets(rows[:, :2], eos)


def step_lengths(offsets: np.ndarray, pen_down: bool = True) -> np.ndarray:
    """Lengths of the steps in ``offsets (T, 3)``: with ``pen_down`` only steps inside strokes (rows whose
    previous row has eos = 0), else only pen-up moves (rows after an eos)."""
    offsets = _check_offsets(offsets)
    if len(offsets) < 2:
        return np.zeros(0)
    after_lift = offsets[:-1, 2] != 0
    rows = offsets[1:][~after_lift if pen_down else after_lift]
    return np.hypot(rows[:, 0].astype(np.float64), rows[:, 1].astype(np.float64))


# --------------------------------------------------------------------------------------------------
# normalising (SPEC §3: mean 0, std 1 over the training set)


@dataclass(frozen=True, eq=False)
class Normaliser:
    """Per-coordinate normalisation of (dx, dy); eos is left alone. ``mean (2,)``, ``std (2,)``, float64.

    Saved with a model through :meth:`to_dict` / :meth:`from_dict` (plain JSON-able floats).
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        std = np.asarray(self.std, dtype=np.float64).reshape(-1)
        if mean.shape != (2,) or std.shape != (2,):
            raise ValueError(f"mean and std must have 2 entries, got {mean.shape}, {std.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise ValueError(f"invalid normaliser: mean={mean.tolist()} std={std.tolist()}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def fit(cls, offsets_list: Sequence[np.ndarray]) -> "Normaliser":
        """Mean and (population) std of dx and dy over every row of every sequence (float64 sums)."""
        n = 0
        total = np.zeros(2)
        for o in offsets_list:
            d = _check_offsets(o)[:, :2].astype(np.float64)
            n += d.shape[0]
            total += d.sum(axis=0)
        if n == 0:
            raise ValueError("cannot fit a Normaliser to no data")
        mean = total / n
        sq = np.zeros(2)
        for o in offsets_list:
            d = np.asarray(o)[:, :2].astype(np.float64) - mean
            sq += (d * d).sum(axis=0)
        return cls(mean, np.sqrt(sq / n))

    def normalise(self, offsets: np.ndarray) -> np.ndarray:
        """``(T, 3)`` raw -> ``(T, 3)`` float32 normalised (a new array)."""
        offsets = _check_offsets(offsets)
        out = offsets.astype(np.float32, copy=True)
        out[:, :2] = (offsets[:, :2].astype(np.float64) - self.mean) / self.std
        return out

    def denormalise(self, offsets: np.ndarray) -> np.ndarray:
        """``(T, 3)`` normalised -> ``(T, 3)`` float32 raw units (a new array)."""
        offsets = _check_offsets(offsets)
        out = offsets.astype(np.float32, copy=True)
        out[:, :2] = offsets[:, :2].astype(np.float64) * self.std + self.mean
        return out

    def to_dict(self) -> dict:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> "Normaliser":
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Normaliser):
            return NotImplemented
        return bool(np.array_equal(self.mean, other.mean) and np.array_equal(self.std, other.std))

    def __hash__(self) -> int:
        return hash((tuple(self.mean.tolist()), tuple(self.std.tolist())))

    def __repr__(self) -> str:
        return f"Normaliser(mean={self.mean.tolist()}, std={self.std.tolist()})"
