#!/usr/bin/env python3
"""The README's screenshot of the web page (``docs/figures/web.png``): ``graves serve``'s app on a free
port, headless Chromium (Debian's ``chromium``, or ``GRAVES_CHROMIUM``) driven by Playwright.

    python scripts/web_screenshot.py [-o docs/figures/web.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import threading
import time

import uvicorn
from playwright.sync_api import sync_playwright

from graves.web import create_app

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TEXT = "Dear Ada, the machine writes by hand now.\nIt learned from a thousand strangers' pens."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default="docs/figures/web.png")
    ap.add_argument("--style", default="1")
    ap.add_argument("--seed", default="2")
    a = ap.parse_args()
    chromium = os.environ.get("GRAVES_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("no Chromium: apt-get install chromium, or set GRAVES_CHROMIUM")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1000, "height": 760}, device_scale_factor=1)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("document.querySelectorAll('#style option').length > 2")
            page.fill("#text", TEXT)
            page.select_option("#style", a.style)
            page.fill("#seed", a.seed)
            page.uncheck("#animate")  # the finished page, not a moment of its drawing
            page.wait_for_function("document.getElementById('style-preview').naturalWidth > 0")
            page.click("#write")
            page.wait_for_function("document.getElementById('page').naturalWidth > 0 && "
                                   "!document.getElementById('write').disabled")
            page.screenshot(path=a.output, full_page=True)
            browser.close()
    finally:
        server.should_exit = True
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
