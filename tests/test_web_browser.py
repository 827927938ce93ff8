"""The web page in a real browser: headless Chromium driven by Playwright against ``graves serve``'s app.

Needs a Chromium binary (Debian's ``chromium``; ``.ci/run`` installs it) or ``GRAVES_CHROMIUM`` naming one.
Without one the test is skipped here and fails in CI (``CI`` set), like the dataset tests.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from graves.web import create_app  # noqa: E402

# what a sandboxed, offline machine needs (see docs/decisions.md, "The web page")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    found = os.environ.get("GRAVES_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if not found:
        msg = "no Chromium found (apt-get install chromium, or set GRAVES_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return found


@pytest.fixture(scope="module")
def server():
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1000, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server)
        pg.wait_for_function("document.querySelectorAll('#style option').length > 2")
        yield pg
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def _write(pg) -> str:
    before = pg.get_attribute("#page", "src")
    pg.click("#write")
    pg.wait_for_function(
        "([before]) => document.getElementById('status').className === 'error' ||"
        " (document.getElementById('page').src !== (before || '') && document.getElementById('page').naturalWidth > 0"
        "  && !document.getElementById('write').disabled)",
        arg=[before or ""])
    return pg.text_content("#status")


def test_typing_a_text_shows_it_handwritten(page):
    from graves.sample import load_styles

    # the model's own (one hand, or line by line), each shipped style, mine
    assert page.locator("#style option").count() == 3 + len(load_styles())
    page.fill("#text", "Hello from the browser")
    status = _write(page)
    assert status.startswith("1 line in"), status
    assert page.get_attribute("#page", "src").startswith("blob:")
    assert page.evaluate("document.getElementById('page').naturalWidth") > 100
    # drawn stroke by stroke by default: the SVG link gives the still page, the other the animated one
    assert page.is_checked("#animate") and page.is_visible("#replay") and page.is_visible("#download-animated")
    for link, animated in (("#download-svg", False), ("#download-animated", True)):
        with page.expect_download() as download:
            page.click(link)
        with open(download.value.path(), "rb") as f:
            svg = f.read()
        assert svg.startswith(b"<?xml") and (b"@keyframes" in svg) == animated, link
    shown = page.get_attribute("#page", "src")
    page.click("#replay")  # the same page again, under a fresh URL, so its animation starts over
    page.wait_for_function("([s]) => document.getElementById('page').src !== s && "
                           "document.getElementById('page').naturalWidth > 0", arg=[shown])
    page.uncheck("#animate")
    _write(page)
    assert not page.is_visible("#replay") and not page.is_visible("#download-animated")
    assert page.get_attribute("#download-svg", "href").startswith("blob:")
    page.check("#animate")
    page.fill("#text", "and a second")  # Ctrl+Enter in the text writes too
    before = page.get_attribute("#page", "src")
    page.press("#text", "Control+Enter")
    page.wait_for_function("([b]) => document.getElementById('page').src !== b", arg=[before])
    with page.expect_download() as download:
        page.click("#download-png")
    with open(download.value.path(), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as download:
        page.click("#download-pdf")
    with open(download.value.path(), "rb") as f:
        assert f.read(5) == b"%PDF-"


def test_the_window_of_each_line_can_be_shown(page):
    page.fill("#text", "one line\nand another")
    assert _write(page).startswith("2 lines in")
    assert page.is_visible("#window-line") and page.locator("#window-line option").count() == 2
    page.click("#show-window")
    page.wait_for_function("document.getElementById('window').naturalWidth > 0 && "
                           "!document.getElementById('window-figure').hidden")
    first = page.get_attribute("#window", "src")
    page.select_option("#window-line", "2")
    page.wait_for_function("([f]) => document.getElementById('window').src !== f", arg=[first])
    assert page.evaluate("document.getElementById('window').naturalHeight") > 100
    page.fill("#text", "short")
    _write(page)  # a new page hides the old window
    assert not page.is_visible("#window-figure") and not page.is_visible("#window-line")


def test_choosing_a_style_shows_it(page):
    assert not page.is_visible("#style-figure")
    page.select_option("#style", "2")
    page.wait_for_function("document.getElementById('style-preview').naturalWidth > 0")
    assert page.get_attribute("#style-preview", "src") == "/api/styles/2.svg"
    page.select_option("#style", "mine")
    assert not page.is_visible("#style-figure") and page.is_visible("#pad")
    page.select_option("#style", "")
    assert not page.is_visible("#style-figure") and not page.is_visible("#pad")


def test_a_character_the_model_cannot_write_is_flagged_and_refused(page):
    page.fill("#text", "5 €")
    assert "cannot write: €" in page.text_content("#unknown")
    status = _write(page)
    assert page.get_attribute("#status", "class") == "error"
    assert "'€'" in status
    page.check("#substitute")
    assert "replaced" in page.text_content("#unknown")
    page.uncheck("#substitute")


def test_drawing_your_own_handwriting_primes_the_page(page):
    page.fill("#text", "in my own hand")
    page.select_option("#style", "mine")
    assert page.is_visible("#pad")
    status = _write(page)  # nothing drawn yet
    assert "draw a few words" in status
    box = page.locator("#pad").bounding_box()
    x0, y0 = box["x"] + 30, box["y"] + box["height"] / 2
    for word in range(3):  # three wavy "words"
        page.mouse.move(x0, y0)
        page.mouse.down()
        for i in range(40):
            page.mouse.move(x0 + i * 3, y0 + 18 * math.sin(i / 2.5))
        page.mouse.up()
        x0 += 150
    page.fill("#prime-text", "mmm")
    status = _write(page)
    assert status.startswith("1 line in"), status
    page.click("#clear")
    page.select_option("#style", "")
    assert not page.is_visible("#pad")


def test_an_animated_svg_draws_each_stroke_in_turn_and_ends_as_the_still_page(page):
    """render.to_svg(animate=...) in Chromium: with the animations paused at chosen times, the strokes before
    that time are drawn, the one under way is partly drawn, the later ones are not; at the end the page
    looks like the still one, at the start it is blank."""
    import io

    import matplotlib.image as mpimg
    import numpy as np

    from graves import render

    rng = np.random.default_rng(0)
    lines = []
    for n in (30, 24):  # two lines, strokes of 6 points, random wiggles
        o = np.zeros((n, 3))
        o[:, 0] = 6 + rng.normal(0, 3, n)
        o[:, 1] = rng.normal(0, 8, n)
        o[5::6, 2] = 1
        lines.append(o)
    speed = 40.0
    timing = [t for line in render.pen_timing(render.layout(lines), speed) for t in line]
    assert len(timing) == 9 and timing[5][0] == pytest.approx((30 + render.LINE_PAUSE_POINTS) / speed)
    body = lambda svg: f"<html><body style='margin:0'>{svg.split(chr(10), 1)[1]}</body></html>"  # noqa: E731

    pg = page.context.browser.new_page(viewport={"width": 700, "height": 400})  # the page fixture's browser
    try:
        pg.set_content(body(render.to_svg(lines)))
        still = pg.screenshot()
        pg.set_content(body(render.to_svg(lines, animate=speed)))
        assert pg.evaluate("document.getAnimations().length") == len(timing)
        pg.evaluate("document.getAnimations().forEach(a => a.pause())")

        def at(seconds):
            pg.evaluate("t => document.getAnimations().forEach(a => a.currentTime = t)", seconds * 1000)
            styles = pg.evaluate("Array.from(document.querySelectorAll('path'), p => "
                                 "[parseFloat(getComputedStyle(p).strokeDashoffset), Number(getComputedStyle(p).opacity)])")
            return np.array(styles)

        def ink(png):
            return (mpimg.imread(io.BytesIO(png))[..., :3].mean(-1) < 0.5).sum()

        k = 6  # a stroke of the second line, half drawn
        start, duration = timing[k]
        s = at(start + duration / 2)
        assert s[k, 0] == pytest.approx(0.5, abs=0.02) and s[k, 1] == 1
        assert (s[:k, 0] == 0).all() and (s[:k, 1] == 1).all()
        assert (s[k + 1:, 1] == 0).all()
        at(0)
        assert ink(pg.screenshot()) == 0
        at(timing[-1][0] + timing[-1][1] + 0.5)
        end = pg.screenshot()
    finally:
        pg.close()
    a, b = (mpimg.imread(io.BytesIO(x))[..., :3] for x in (end, still))
    assert ink(still) > 100 and np.abs(a - b).mean() < 0.005
