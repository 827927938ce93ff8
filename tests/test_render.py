"""Rendering (graves.render): SVG structure and geometry, PNG validity, page layout, save()."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET

from graves import render
from graves.data.strokes import offsets_to_strokes, strokes_to_offsets

SVG = "{http://www.w3.org/2000/svg}"


def make_line(seed: int, n_strokes: int = 6, height: float = 400.0) -> np.ndarray:
    """Offsets (T, 3) of a wiggly synthetic line with a one-point stroke (a dot) in it."""
    rng = np.random.default_rng(seed)
    strokes, x = [], 0.0
    for k in range(n_strokes):
        if k == 2:
            strokes.append(np.array([[x + 20, height * 0.9]]))
            continue
        n = int(rng.integers(5, 40))
        t = np.linspace(0, 1, n)
        strokes.append(np.column_stack([x + 150 * t, height / 2 + height / 2 * np.sin(6 * t + k)]))
        x += 200
    return strokes_to_offsets(strokes)


def svg_points(path_d: str) -> np.ndarray:
    nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path_d.removesuffix("h0"))]
    return np.array(nums).reshape(-1, 2)


def test_svg_is_valid_xml_with_one_path_per_stroke():
    lines = [make_line(0), make_line(1, n_strokes=4)]
    svg = render.to_svg(lines)
    root = SafeET.fromstring(svg.encode())
    assert root.tag == SVG + "svg"
    paths = root.findall(f".//{SVG}path")
    assert len(paths) == sum(len(offsets_to_strokes(o)) for o in lines) == 10
    assert [g.get("id") for g in root.iter(SVG + "g") if g.get("class") == "line"] == ["line-0", "line-1"]
    # the viewBox holds every point, and width/height follow the scale
    x0, y0, w, h = (float(v) for v in root.get("viewBox").split())
    pts = np.concatenate([svg_points(p.get("d")) for p in paths])
    assert (pts[:, 0] >= x0).all() and (pts[:, 0] <= x0 + w).all()
    assert (pts[:, 1] >= y0).all() and (pts[:, 1] <= y0 + h).all()
    assert float(root.get("width")) == pytest.approx(w * 0.25, abs=0.01)


def test_svg_flips_y_and_stacks_lines_downwards():
    up = strokes_to_offsets([np.array([[0.0, 0.0], [0.0, 100.0]])])  # a stroke drawn upwards (y up)
    svg = render.to_svg([up, up], line_gap=50.0, margin=10.0)
    paths = SafeET.fromstring(svg.encode()).findall(f".//{SVG}path")
    first, second = svg_points(paths[0].get("d")), svg_points(paths[1].get("d"))
    assert first[1, 1] < first[0, 1]  # upwards on the page is smaller SVG y
    np.testing.assert_allclose(first[:, 1], [110, 10])
    np.testing.assert_allclose(second[:, 1], [260, 160])  # line 2 below line 1, 50 units apart


def test_svg_labels_are_escaped_and_options_applied():
    svg = render.to_svg([make_line(2), make_line(3)], labels=['a<b & "c"', None], colour="#123456",
                        stroke_width=3.0, scale=0.5, background=None)
    root = SafeET.fromstring(svg.encode())
    texts = root.findall(f".//{SVG}text")
    assert [t.text for t in texts] == ['a<b & "c"']
    assert root.find(f".//{SVG}rect") is None
    g = next(g for g in root.iter(SVG + "g") if g.get("stroke"))
    assert g.get("stroke") == "#123456" and float(g.get("stroke-width")) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="labels"):
        render.to_svg([make_line(2)], labels=["x", "y"])


def test_dots_and_empty_pages():
    dot = strokes_to_offsets([np.array([[5.0, 5.0]])])
    svg = render.to_svg(dot)
    (path,) = SafeET.fromstring(svg.encode()).findall(f".//{SVG}path")
    assert path.get("d").endswith("h0")  # drawn by the round cap
    empty = SafeET.fromstring(render.to_svg([]).encode())
    assert empty.findall(f".//{SVG}path") == []
    with pytest.raises(ValueError, match=r"\(T, 3\)"):
        render.to_svg(np.zeros((4, 2)))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_png_is_a_valid_png_of_plausible_size(tmp_path):
    lines = [make_line(4), make_line(5)]
    page = render.layout(lines)
    data = render.to_png(lines, scale=0.25)
    w, h = png_size(data)
    assert abs(w - page.width * 0.25) <= 2 and abs(h - page.height * 0.25) <= 2
    assert 1000 < len(data) < 2_000_000
    # there is ink: decode it with matplotlib and look for dark pixels
    import matplotlib.image

    path = tmp_path / "x.png"
    path.write_bytes(data)
    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (h, w)
    dark = (img[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.002 < dark < 0.5


def _pdf_streams(data: bytes) -> bytes:
    """The PDF's content streams, inflated (matplotlib compresses them with Flate)."""
    import zlib

    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(m.group(1)))
        except zlib.error:
            out.append(m.group(1))
    return b"\n".join(out)


def test_pdf_is_the_page_as_vector_paths_and_reproducible():
    lines = [make_line(4), make_line(5)]
    page = render.layout(lines)
    data = render.to_pdf(lines, scale=0.25, colour="navy")
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    box = [float(v) for v in re.search(rb"/MediaBox \[ *([\d. ]+)\]", data).group(1).split()]
    # the PNG's size in pixels at 100 dpi, in points (72 a inch)
    assert abs(box[2] - page.width * 0.25 * 0.72) <= 2 and abs(box[3] - page.height * 0.25 * 0.72) <= 2
    ops = _pdf_streams(data)
    strokes = [s for o in lines for s in offsets_to_strokes(o)]
    assert ops.count(b" m") >= sum(len(s) > 1 for s in strokes)  # a moveto per multi-point stroke at least
    assert b"/Subtype /Image" not in data  # vectors, not a raster
    assert b"CreationDate" not in data and render.to_pdf(lines, scale=0.25, colour="navy") == data
    assert render.to_pdf(lines, scale=0.25, colour="red") != data


def test_save_chooses_format_by_suffix_and_writes_atomically(tmp_path):
    lines = [make_line(6), make_line(7)]
    svg = render.save(tmp_path / "out" / "page.svg", lines, labels=["one", "two"])
    png = render.save(tmp_path / "page.PNG", lines)
    poly = render.save(tmp_path / "page.json", lines)
    pdf = render.save(tmp_path / "page.pdf", lines, colour="navy")
    assert pdf.read_bytes() == render.to_pdf(lines, colour="navy")
    assert SafeET.fromstring(svg.read_bytes()).tag == SVG + "svg"
    png_size(png.read_bytes())
    doc = json.loads(poly.read_text())
    assert doc["y_axis"] == "down" and len(doc["polylines"]) == sum(len(offsets_to_strokes(o)) for o in lines)
    assert len(render.to_polylines(lines)) == len(doc["polylines"])
    with pytest.raises(render.RenderError, match=r"unknown suffix '\.jpg'"):
        render.save(tmp_path / "page.jpg", lines)
    assert not (tmp_path / "page.jpg").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["page.PNG", "page.json", "page.pdf",
                                                                          "page.svg"]


def test_accepts_objects_with_offsets():
    class Item:
        offsets = make_line(8)

    assert render.to_svg(Item()) == render.to_svg(Item.offsets)


def test_write_page_and_render_error(tmp_path):
    out = render.write_page([make_line(9)], tmp_path / "w.svg", labels=["nine"])
    assert out == tmp_path / "w.svg" and SafeET.fromstring(out.read_bytes()).tag == SVG + "svg"
    assert issubclass(render.RenderError, ValueError)
    with pytest.raises(render.RenderError):
        render.write_page([np.full((3, 3), np.nan)], tmp_path / "bad.png")


def test_a_failed_write_leaves_the_file_as_it_was_and_says_why(tmp_path, monkeypatch):
    """A full disk during a save: an OutputError naming the file and the reason, the old file intact, no
    temporary file left behind."""
    page = tmp_path / "page.svg"
    render.save(page, [make_line(3)])
    before = page.read_bytes()

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render.os, "replace", full_disk)
    with pytest.raises(render.OutputError, match=r"cannot write .*page\.svg: No space left on device \(the existing"):
        render.save(page, [make_line(4)])
    with pytest.raises(render.OutputError, match=r"new\.png: No space left on device \(nothing was written\)"):
        render.save(tmp_path / "new.png", [make_line(4)])
    assert page.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.svg"]
    assert issubclass(render.OutputError, OSError)


def test_check_writable_fails_early_and_leaves_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(render.OutputError, match="is a file, not a folder"):
        render.check_writable(tmp_path / "file" / "sub" / "x.svg")
    with pytest.raises(render.OutputError, match="it is a folder"):
        render.check_writable(tmp_path)
    assert render.check_writable(tmp_path / "new" / "x.svg") == tmp_path / "new" / "x.svg"
    # no probe and no folder left behind (the work may still fail); the write makes the folders
    assert [p.name for p in tmp_path.rglob("*")] == ["file"]
    render.write_file(tmp_path / "new" / "x.svg", b"<svg/>")
    assert (tmp_path / "new" / "x.svg").read_bytes() == b"<svg/>"


def test_pen_timing_follows_the_points_as_the_net_wrote_them():
    # line 0: strokes of 3, 1 (a dot) and 4 points; a blank line; line 2: one stroke of 2 points
    a = np.zeros((8, 3))
    a[[2, 3, 7], 2] = 1
    b = np.zeros((2, 3))
    b[1, 2] = 1
    page = render.layout([a, np.zeros((0, 3)), b])
    t = render.pen_timing(page, 10.0)
    pause = render.LINE_PAUSE_POINTS
    assert [[tuple(map(round, st, [9, 9])) for st in line] for line in t] == [
        [(0.0, 0.2), (0.3, 0.1), (0.4, 0.3)], [], [((8 + pause) / 10, 0.1)]]
    for bad in (0, -1, float("nan"), "fast", True):
        with pytest.raises(render.RenderError, match="points per second"):
            render.pen_timing(page, bad)


def test_an_animated_svg_is_the_still_one_with_timed_paths():
    lines = [make_line(5), make_line(6)]
    still = render.to_svg(lines)
    moving = render.to_svg(lines, animate=50)
    root = SafeET.fromstring(moving.encode())
    paths = root.findall(f".//{SVG}path")
    assert len(paths) == len(SafeET.fromstring(still.encode()).findall(f".//{SVG}path"))
    assert [p.get("d") for p in paths] == [p.get("d") for p in SafeET.fromstring(still.encode()).findall(f".//{SVG}path")]
    timing = [t for line in render.pen_timing(render.layout(lines), 50) for t in line]
    for p, (start, duration) in zip(paths, timing):
        assert p.get("pathLength") == "1"
        assert p.get("style") == f"animation-delay:{start:.3f}s;animation-duration:{duration:.3f}s"
    assert root.find(f"{SVG}style") is not None and "@keyframes" not in still


def test_labels_with_characters_xml_cannot_hold_and_bad_sizes(tmp_path):
    # session 15's review: a control character in a label made an SVG no parser reads; NaN sizes were
    # written as width="nan"; a large scale rounded the stroke width to 0
    import xml.etree.ElementTree as ET

    from graves.render import RenderError, to_png, to_svg

    line = np.array([[0, 0, 0], [5, 5, 0], [5, -5, 1]], np.float32)
    svg = to_svg([line], labels=["a\x01b\x0cc\ud800 & <d>"])
    root = ET.fromstring(svg.encode("utf-8", "surrogatepass"))
    assert "".join(root.itertext()).strip() == "a\ufffdb\ufffdc\ufffd & <d>"
    for kw in ({"stroke_width": float("nan")}, {"scale": float("inf")}, {"stroke_width": 0}):
        with pytest.raises(RenderError, match="must be a finite number > 0"):
            to_svg([line], **kw)
        with pytest.raises(RenderError, match="must be a finite number > 0"):
            to_png([line], **kw)
    with pytest.raises(RenderError, match="dpi must be"):
        to_png([line], dpi=0)
    tiny = ET.fromstring(to_svg([line], scale=500).encode())
    assert float(tiny.find("{http://www.w3.org/2000/svg}g").get("stroke-width")) > 0


def test_png_is_upright_and_draws_one_point_strokes(tmp_path):
    """A dot above a flat stroke (y up in the data, as an i's dot): the PNG shows the dot in its top half,
    the stroke in its bottom half."""
    import matplotlib.image

    line = strokes_to_offsets([np.array([[0.0, 0.0], [200.0, 0.0]]), np.array([[100.0, 200.0]])])
    path = tmp_path / "dot.png"
    path.write_bytes(render.to_png([line], scale=1.0, stroke_width=12.0, margin=20.0))
    dark = matplotlib.image.imread(path)[..., :3].mean(axis=2) < 0.5  # (rows, cols), row 0 at the top
    rows = np.flatnonzero(dark.any(axis=1))
    h = dark.shape[0]
    top, bottom = rows[rows < h / 2], rows[rows >= h / 2]
    assert top.size and bottom.size  # the dot and the stroke
    assert dark[top].sum() < dark[bottom].sum()  # the stroke, 200 units long, is the bottom one
    assert 0.5 * h > top.mean() and dark[top][:, : dark.shape[1] // 3].sum() == 0  # the dot sits mid-page
