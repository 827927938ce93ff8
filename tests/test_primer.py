"""Reading a user's handwriting as a primer: JSON strokes, InkML, IAM-OnDB line ids, malformed files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graves.data.primer import (
    IAM_MEDIAN_STEP,
    PrimerError,
    load_primer,
    median_step,
    parse_inkml,
    parse_json_strokes,
    primer_from_json,
)



STROKES = [[[10, 20], [12, 24], [15, 30]], [[40, 20], [41, 35]]]


def test_json_strokes_to_offsets_y_flipped():
    strokes, text = parse_json_strokes(STROKES)
    assert text == ""
    assert [s.shape for s in strokes] == [(3, 2), (2, 2)]
    np.testing.assert_array_equal(strokes[0][1], [12, -24])  # screen y (down) → y up


def test_load_json_file_offsets_eos_and_no_rescale(tmp_path):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"strokes": STROKES, "text": "hi"}))
    p = load_primer(f, rescale=False)
    assert p.text == "hi"
    np.testing.assert_allclose(
        p.offsets,
        [[0, 0, 0], [2, -4, 0], [3, -6, 1], [25, 10, 0], [1, -15, 1]],
    )
    assert p.offsets.dtype == np.float32
    # y-up files keep their sign; --prime-text overrides the file's text
    p_up = load_primer(f, text="other", y_down=False, rescale=False)
    assert p_up.text == "other" and p_up.offsets[1, 1] == 4


def test_decoded_json_is_the_same_primer_as_the_file(tmp_path):
    rng = np.random.default_rng(1)
    data = {"strokes": [np.cumsum(rng.normal(0, 4, (25, 2)), axis=0).tolist() for _ in range(3)], "text": "abc"}
    f = tmp_path / "mine.json"
    f.write_text(json.dumps(data))
    from_file, in_memory = load_primer(f), primer_from_json(data, where="canvas")
    np.testing.assert_array_equal(in_memory.offsets, from_file.offsets)
    assert in_memory.text == "abc" and in_memory.source == "canvas"
    assert primer_from_json(data, text="xyz").text == "xyz"
    with pytest.raises(PrimerError, match="canvas: a primer needs at least 2 points"):
        primer_from_json([[[1, 2]]], where="canvas")


def test_rescaling_matches_iam_step_size(tmp_path):
    rng = np.random.default_rng(0)
    pts = np.cumsum(rng.normal(0, 3, (60, 2)), axis=0)  # steps of ~3 screen pixels
    f = tmp_path / "small.json"
    f.write_text(json.dumps([pts[:30].tolist(), pts[30:].tolist()]))
    p = load_primer(f, text="x")
    assert median_step(p.offsets) == pytest.approx(IAM_MEDIAN_STEP, rel=1e-4)
    raw = load_primer(f, text="x", rescale=False)
    ratio = p.offsets[1:, :2] / np.where(raw.offsets[1:, :2] == 0, 1, raw.offsets[1:, :2])
    assert np.allclose(ratio[raw.offsets[1:, :2] != 0], ratio[0, 0], rtol=1e-4)  # uniform scale, aspect kept


def test_a_long_jump_inside_a_stroke_lifts_the_pen_as_in_training(tmp_path):
    # IAM's outlier rule (SPEC §3) splits a pen-down step far longer than any real one: the same for a
    # user's primer as for the training lines, so the jump is a pen-up move
    pts = [[i * 3.0, (i % 2) * 2.0] for i in range(20)] + [[10_000 + i * 3.0, (i % 2) * 2.0] for i in range(20)]
    f = tmp_path / "jump.json"
    f.write_text(json.dumps([pts]))
    p = load_primer(f, text="x")
    assert len(p.offsets) == 40 and p.offsets[:, 2].sum() == 2  # one stroke drawn, two read
    assert p.offsets[19, 2] == 1  # the pen lifts before the jump


def test_repeated_points_are_dropped():
    strokes, _ = parse_json_strokes([[[0, 0], [0, 0], [1, 1], [1, 1], [2, 2]]])
    assert len(strokes[0]) == 3


INKML = """<?xml version="1.0"?>
<ink xmlns="http://www.w3.org/2003/InkML">
  <annotation type="truth">ok</annotation>
  <trace>10 0 0.1, 9 14 0.2, 8 28 0.3</trace>
  <trace>
    20 5, 25 5
  </trace>
</ink>"""


def test_inkml_traces_and_truth(tmp_path):
    strokes, text = parse_inkml(INKML)
    assert text == "ok"
    assert [s.shape for s in strokes] == [(3, 2), (2, 2)]
    np.testing.assert_array_equal(strokes[0][2], [8, -28])
    f = tmp_path / "mine.inkml"
    f.write_text(INKML)
    p = load_primer(f, rescale=False)
    assert p.text == "ok" and p.offsets.shape == (5, 3) and p.offsets[:, 2].tolist() == [0, 0, 1, 0, 1]


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2", "not valid JSON"),
        ("[]", "non-empty list of strokes"),
        ('{"text": "a"}', "strokes"),
        ("[[[1, 2], [3]]]", "stroke 0, point 1"),
        ('[[[1, "a"]]]', "stroke 0, point 0"),
        ("[[[1, 2]]]", "at least 2 points"),
        ('[[[1, 2], [3, 4]], "x"]', "stroke 1"),
        ('{"strokes": [[[1, 2], [3, 4]]], "text": 5}', "text"),
    ],
)
def test_malformed_json(tmp_path, content, message):
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(PrimerError, match=message):
        load_primer(f)


@pytest.mark.parametrize(
    "content, message",
    [
        ("<ink><trace>1 2, 3</trace></ink>", "point 1"),
        ("<ink><trace>1 2, 'a b</trace></ink>", "difference encodings"),
        ("<ink><trace></trace></ink>", "empty"),
        ("<ink></ink>", "no <trace>"),
        ("<ink><trace>1 2, 3 4</trace>", "not well-formed"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><ink><trace>&a;</trace></ink>', "unsafe"),
    ],
)
def test_malformed_inkml(tmp_path, content, message):
    f = tmp_path / "bad.inkml"
    f.write_text(content)
    with pytest.raises(PrimerError, match=message):
        load_primer(f)


def test_missing_file_and_unknown_format(tmp_path, monkeypatch):
    with pytest.raises(PrimerError, match="not found"):
        load_primer(tmp_path / "nope.json")
    f = tmp_path / "x.txt"
    f.write_text("hello")
    with pytest.raises(PrimerError, match="unknown primer format"):
        load_primer(f)
    monkeypatch.delenv("GRAVES_DATA", raising=False)
    with pytest.raises(PrimerError, match="data root"):
        load_primer("a01-000u-01", data_root=None)


def test_iam_line_id(data_root):
    from conftest import require_data

    require_data("iam-ondb", "lineStrokes-all.tar.gz")
    p = load_primer("a01-000u-01", data_root=data_root)
    assert p.text == "A MOVE to stop Mr . Gaitskell"
    assert p.offsets.shape[1] == 3 and len(p.offsets) > 100
    assert p.offsets[:, 2].max() == 1.0
    with pytest.raises(PrimerError, match="not found"):
        load_primer("a01-000u-77", data_root=data_root)
    # a line of a form whose files and transcription disagree (9 files, 8 lines) has no text to prime with
    with pytest.raises(PrimerError, match="'a08-551z-01' has no transcription"):
        load_primer("a08-551z-01", data_root=data_root)


def test_review_primers_too_large_or_too_deep_are_one_line_errors(tmp_path):
    from graves.data.primer import PrimerError, load_primer

    far = tmp_path / "far.json"
    far.write_text(json.dumps([[[0, 0], [1, 0], [2, 0], [1e38, 0]], [[1e308, 2], [-1e308, 3], [1e308, 5]]]))
    with pytest.raises(PrimerError, match="too far apart"):
        load_primer(far, text="hi")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PrimerError, match="not valid JSON"):
        load_primer(deep, text="hi")
