"""Pure stroke transforms (graves.data.strokes): round trips, gap filling, outliers, normalising."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graves.data.strokes import (
    MAX_STEP,
    SAMPLE_INTERVAL,
    Normaliser,
    Preprocessing,
    fill_missing,
    offsets_to_points,
    offsets_to_strokes,
    points_to_offsets,
    preprocess,
    remove_outliers,
    split_strokes,
    step_lengths,
    stroke_starts,
    strokes_to_offsets,
)


def random_offsets(rng: np.random.Generator, T: int = 800) -> np.ndarray:
    """Data-like offsets: integer steps, some interpolated fractions, pen lifts every ~30 points."""
    o = np.zeros((T, 3), dtype=np.float32)
    o[1:, :2] = rng.integers(-60, 60, size=(T - 1, 2))
    frac = rng.random(T) < 0.1
    o[frac, :2] += (rng.integers(1, 6, size=(frac.sum(), 1)) / 7.0).astype(np.float32)
    o[:, 2] = rng.random(T) < 1 / 30
    o[-1, 2] = 1
    o[0, :2] = 0
    return o


def uniform_stroke(n: int, step=(10.0, 4.0), t0: float = 100.0, start=(50.0, -20.0)) -> np.ndarray:
    """A pen moving at constant velocity, sampled every SAMPLE_INTERVAL: (n, 3) of (x, y, time)."""
    i = np.arange(n, dtype=np.float64)
    return np.column_stack([start[0] + i * step[0], start[1] + i * step[1], t0 + i * SAMPLE_INTERVAL])


# ---------------------------------------------------------------------------------------------- round trips


def test_offsets_points_offsets_exact():
    rng = np.random.default_rng(0)
    for _ in range(5):
        o = random_offsets(rng)
        back = points_to_offsets(offsets_to_points(o, origin=(1234.0, -567.0)), o[:, 2])
        assert back.dtype == np.float32
        np.testing.assert_array_equal(back, o)


def test_offsets_strokes_offsets_exact():
    rng = np.random.default_rng(1)
    o = random_offsets(rng)
    strokes = offsets_to_strokes(o)
    assert len(strokes) == int(o[:, 2].sum())
    assert sum(len(s) for s in strokes) == len(o)
    np.testing.assert_array_equal(strokes_to_offsets(strokes), o)


def test_strokes_offsets_strokes_up_to_start_position():
    strokes = [np.array([[10.0, 5.0], [12.0, 7.0], [15.0, 6.0]]), np.array([[40.0, 2.0]]),
               np.array([[41.0, 0.0], [45.0, -3.0]])]
    o = strokes_to_offsets(strokes)
    assert o.shape == (6, 3) and o.dtype == np.float32
    # row 0 is the first point relative to itself; eos on each stroke's last point
    np.testing.assert_array_equal(o[0], [0, 0, 0])
    np.testing.assert_array_equal(o[:, 2], [0, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(o[3], [25, -4, 1])  # the pen-up move to the dot
    back = offsets_to_strokes(o, origin=stroke_starts(strokes))
    assert len(back) == 3
    for a, b in zip(back, strokes):
        np.testing.assert_array_equal(a, b)


def test_trailing_points_without_eos_form_a_last_stroke():
    o = np.array([[0, 0, 0], [1, 1, 1], [5, 0, 0], [1, 0, 0]], dtype=np.float32)  # a sample cut mid-stroke
    strokes = offsets_to_strokes(o)
    assert [len(s) for s in strokes] == [2, 2]
    np.testing.assert_array_equal(strokes[1], [[6, 1], [7, 1]])


def test_empty_and_bad_shapes():
    assert strokes_to_offsets([]).shape == (0, 3)
    assert offsets_to_strokes(np.zeros((0, 3), np.float32)) == []
    with pytest.raises(ValueError):
        offsets_to_points(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        points_to_offsets(np.zeros((4, 2)), np.zeros(3))


def test_split_strokes():
    pts = np.arange(10).reshape(5, 2)
    parts = split_strokes(pts, np.array([0, 1, 0, 0, 1]))
    assert [len(p) for p in parts] == [2, 3]


# ---------------------------------------------------------------------------------------------- gap filling


def test_fill_missing_restores_dropped_readings():
    full = uniform_stroke(20)
    holed = np.delete(full, [8, 9], axis=0)  # two readings lost: one step spans 3 intervals, 3x the length
    filled = fill_missing(holed)
    assert filled.shape == full.shape
    np.testing.assert_allclose(filled, full, rtol=0, atol=1e-9)
    # the original rows are kept untouched
    assert all(any(np.array_equal(r, f) for f in filled) for r in holed)


def test_fill_missing_needs_time_and_distance_to_agree():
    s = uniform_stroke(20)
    # the clock says 3 intervals but the pen moved one typical step (time jitter / slow pen): nothing added
    jitter = s.copy()
    jitter[10:, 2] += 2 * SAMPLE_INTERVAL
    assert len(fill_missing(jitter)) == 20
    # a long step with no time gap (a fast stroke): nothing added
    fast = s.copy()
    fast[10:, 0] += 40.0
    assert len(fill_missing(fast)) == 20
    # clock glitches: negative or enormous gaps
    glitch = s.copy()
    glitch[10:, 2] -= 4000.0
    assert len(fill_missing(glitch)) == 20
    # a gap longer than max_gap is a pause or an unrecorded pen lift, not missing readings
    pause = np.delete(uniform_stroke(30), range(8, 8 + 15), axis=0)  # 16 intervals ≈ 0.235 s > 0.2 s
    assert len(fill_missing(pause)) == 15
    assert len(fill_missing(pause, max_gap=0.3)) == 30


def test_fill_missing_takes_the_median_of_the_neighbouring_steps():
    # the typical step near a gap is the median of up to two steps either side: one long neighbour (9)
    # among short ones (1) must not hide a gap of 3 intervals that spans 3 typical steps
    lengths = [1.0, 1.0, 1.0, 3.0, 1.0, 9.0, 1.0]  # the step of length 3 spans 3 sampling intervals
    intervals = [1, 1, 1, 3, 1, 1, 1]
    x = np.concatenate([[0.0], np.cumsum(lengths)])
    t = np.concatenate([[0.0], np.cumsum(intervals)]) * SAMPLE_INTERVAL
    stroke = np.stack([x, np.zeros_like(x), t], axis=1)
    filled = fill_missing(stroke)
    assert len(filled) == len(stroke) + 2
    np.testing.assert_allclose(filled[3:7, 0], [3.0, 4.0, 5.0, 6.0])


def test_fill_missing_handles_short_and_untimed_strokes():
    two = uniform_stroke(2)
    two[1, 2] += 0.1
    np.testing.assert_array_equal(fill_missing(two), two)  # no neighbours to judge the distance by
    untimed = np.delete(uniform_stroke(10), [4, 5], axis=0)
    untimed[:, 2] = np.nan
    assert len(fill_missing(untimed)) == 8


def test_preprocess_never_fills_across_pen_lifts():
    a, b = uniform_stroke(10), uniform_stroke(10, start=(500.0, 0.0), t0=100.0 + 12 * SAMPLE_INTERVAL)
    o = preprocess([a, b], Preprocessing(remove_outliers=False))
    assert len(o) == 20 and o[:, 2].sum() == 2


# ---------------------------------------------------------------------------------------------- outliers


def test_remove_outliers_drops_spikes_and_splits_long_steps():
    s = uniform_stroke(30)[:, :2]
    spiked = s.copy()
    spiked[10] += (900.0, 700.0)  # a tracking glitch: out and back
    lifted = s.copy()
    lifted[20:] += (800.0, 0.0)  # an unrecorded pen lift: one long step
    out = remove_outliers([spiked, lifted], max_step=MAX_STEP)
    assert [len(p) for p in out] == [29, 20, 10]
    for piece in out:
        assert step_lengths(strokes_to_offsets([piece])).max(initial=0) <= MAX_STEP
    # nothing moved: every kept point is an original point
    kept = np.concatenate(out)
    original = np.concatenate([spiked, lifted])
    assert all((original == p).all(axis=1).any() for p in kept)
    assert not (kept == spiked[10]).all(axis=1).any()


def test_preprocess_leaves_no_long_pen_down_step_and_keeps_pen_up_moves():
    rng = np.random.default_rng(3)
    strokes = []
    t = 0.0
    for k in range(40):
        n = int(rng.integers(1, 60))
        steps = rng.normal(0, 25, size=(n, 2))
        steps[rng.random(n) < 0.03] *= 30  # occasional huge steps
        xy = np.cumsum(steps, axis=0) + rng.normal(0, 2000, size=2)
        tt = t + np.cumsum(np.where(rng.random(n) < 0.05, 3, 1)) * SAMPLE_INTERVAL
        t = tt[-1] + 0.2
        strokes.append(np.column_stack([xy, tt]))
    o = preprocess(strokes)
    assert step_lengths(o, pen_down=True).max() <= MAX_STEP
    assert step_lengths(o, pen_down=False).max() > MAX_STEP  # long pen-up moves are not outliers
    assert o.dtype == np.float32 and o[-1, 2] == 1


def test_preprocessing_settings_validated():
    with pytest.raises(ValueError):
        Preprocessing(max_step=0)
    with pytest.raises(ValueError):
        Preprocessing(sample_interval=-1)
    assert Preprocessing().to_dict()["max_step"] == MAX_STEP


# ---------------------------------------------------------------------------------------------- normaliser


def test_normaliser_gives_mean_0_std_1_on_fit_data():
    rng = np.random.default_rng(4)
    data = [random_offsets(rng, T=int(rng.integers(50, 500))) * np.float32([3, 1, 1]) + np.float32([8, -1, 0])
            for _ in range(30)]
    for d in data:
        d[:, 2] = (d[:, 2] != 0)
    norm = Normaliser.fit(data)
    z = np.concatenate([norm.normalise(d) for d in data])
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1, atol=1e-5)
    np.testing.assert_array_equal(z[:, 2], np.concatenate([d[:, 2] for d in data]))  # eos untouched
    back = norm.denormalise(norm.normalise(data[0]))
    np.testing.assert_allclose(back, data[0], atol=1e-3)
    assert not np.shares_memory(norm.normalise(data[0]), data[0])


def test_normaliser_dict_round_trip_and_validation():
    norm = Normaliser(np.array([8.1, -0.1]), np.array([41.7, 36.8]))
    again = Normaliser.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm
    with pytest.raises(ValueError):
        Normaliser(np.zeros(2), np.array([1.0, 0.0]))
    with pytest.raises(ValueError):
        Normaliser.fit([])
