"""The web page's API (``graves serve``): a thin layer over graves.write, and its error answers."""

from __future__ import annotations

import json
import shutil
from xml.etree import ElementTree

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")
from starlette.testclient import TestClient  # noqa: E402

import graves  # noqa: E402
from graves.cli import main  # noqa: E402
from graves.data.strokes import offsets_to_strokes  # noqa: E402
from graves.errors import USER_ERRORS  # noqa: E402
from graves.render import DEFAULT_PEN_SPEED  # noqa: E402
from graves.sample import DEFAULT_BIAS, load_styles, shipped_model_dir  # noqa: E402
from graves.web import Limits, create_app  # noqa: E402


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(limits=Limits(max_chars=60, max_body=60_000, max_primer_points=900)))


def _post(client: TestClient, body) -> object:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/write", content=data, headers={"Content-Type": "application/json"})


def _paths(svg: bytes) -> int:
    root = ElementTree.fromstring(svg)
    return len(root.findall(".//{http://www.w3.org/2000/svg}path"))


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="write-form"', 'id="text"', 'id="bias"', 'id="style"', 'id="pad"', 'src="/static/app.js"'):
        assert element in page.text
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/../__init__.py").status_code == 404
    assert client.get("/static/secret.py").status_code == 404


def test_info_describes_the_shipped_model(client):
    info = client.get("/api/info").json()
    assert info["styles"] == len(load_styles()) > 0
    meta = json.loads((shipped_model_dir() / "checkpoint.json").read_text())
    assert info["alphabet"] == meta["alphabet"]["characters"]
    assert info["max_chars"] == 60 and info["model"] == "shipped"
    assert info["default_bias"] == DEFAULT_BIAS and info["pen_speed"] == DEFAULT_PEN_SPEED


def test_each_shipped_style_can_be_seen(client):
    from graves.render import to_svg

    styles = load_styles()
    for n, style in enumerate(styles):
        r = client.get(f"/api/styles/{n}.svg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
        assert r.content == to_svg([style.offsets], stroke_width=2.5).encode("utf-8") and _paths(r.content) > 3
    missing = client.get(f"/api/styles/{len(styles)}.svg")
    assert missing.status_code == 404 and f"no style {len(styles)}" in missing.json()["error"]
    assert client.get("/api/styles/x.svg").status_code == 404


def test_a_written_page_is_exactly_what_graves_write_gives(client):
    r = _post(client, {"text": "Hi there", "seed": 5, "bias": 1.0, "colour": "navy", "stroke_width": 3})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.headers["x-graves-lines"] == "1" and r.headers["x-graves-unfinished"] == ""
    expected = graves.write("Hi there", seed=5, bias=1.0).svg(colour="navy", stroke_width=3)
    assert r.content == expected.encode("utf-8")
    assert _paths(r.content) > 0
    # another seed, another page
    assert _post(client, {"text": "Hi there", "seed": 6, "bias": 1.0}).content != r.content
    # the animated page is graves write's --animate
    moving = _post(client, {"text": "Hi there", "seed": 5, "bias": 1.0, "animate": 80})
    assert moving.content == graves.write("Hi there", seed=5, bias=1.0).svg(animate=80).encode("utf-8")
    assert b"@keyframes" in moving.content and b"@keyframes" not in r.content


def test_png_pdf_and_styles(client):
    r = _post(client, {"text": "Hello", "format": "png", "style": 1, "background": None})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = _post(client, {"text": "Hello", "format": "pdf", "style": 1, "seed": 3})
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == graves.write("Hello", style=1, seed=3).pdf()
    two = _post(client, {"text": "one two three four five", "width": 10})
    assert two.status_code == 200 and int(two.headers["x-graves-lines"]) >= 2
    # each line unprimed by default; "same_hand": true primes lines 2.. with line 1, as graves write --same-hand
    assert two.content == graves.write("one two three four five", width=10).svg().encode("utf-8")
    same = _post(client, {"text": "one two three four five", "width": 10, "same_hand": True})
    assert same.status_code == 200, same.text
    assert same.content == graves.write("one two three four five", width=10, same_hand=True).svg().encode("utf-8")
    assert same.content != two.content
    assert _post(client, {"text": "Hello", "style": 1, "same_hand": True}).status_code == 200
    assert _post(client, {"text": "one two three four five", "width": 10, "same_hand": None}).content == two.content
    assert _post(client, {"text": "Hello", "same_hand": "no"}).status_code == 400


def test_the_window_of_a_written_line_comes_as_a_png(client):
    body = {"text": "first line\nsecond", "seed": 2}
    r = _post(client, {**body, "format": "window", "line": 2})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert r.headers["x-graves-lines"] == "2"
    assert _post(client, {**body, "format": "window"}).content != r.content  # line 1 is another picture
    missing = _post(client, {**body, "format": "window", "line": 3})
    assert missing.status_code == 422 and "no line 3" in missing.json()["error"]
    blank = _post(client, {"text": "a\n\nb", "format": "window", "line": 2})
    assert blank.status_code == 422 and "blank" in blank.json()["error"]


def test_the_window_picture_is_the_plot_of_the_written_phi(client, tmp_path):
    from graves.plots import plot_window

    hw = graves.write("the window", seed=4)
    r = hw.results[0]
    expected = plot_window(tmp_path / "w.png", r.phi, r.text, r.offsets,
                           "line 1: the window weights φ(t, u), the text it reads (rows) against pen steps t")
    got = _post(client, {"text": "the window", "seed": 4, "format": "window"})
    assert got.content == expected.read_bytes()


def _drawn(style: int = 0) -> list[list[list[float]]]:
    """A style's line as a canvas would send it: strokes of [x, y] screen points (y down), scaled."""
    offsets = load_styles()[style].offsets
    return [[[round(float(x) * 0.3, 1), round(-float(y) * 0.3, 1)] for x, y in s] for s in offsets_to_strokes(offsets)]


def test_your_own_handwriting_primes_the_page(client):
    strokes = _drawn(0)
    text = load_styles()[0].text
    r = _post(client, {"text": "in my hand", "prime": {"strokes": strokes, "text": text}})
    assert r.status_code == 200, r.text
    plain = _post(client, {"text": "in my hand"})
    assert r.content != plain.content


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"not json", 400, "not JSON"),
        ([1, 2], 400, "JSON object"),
        ({"text": "a", "speed": 3}, 400, "unknown field"),
        ({"text": 5}, 400, '"text" must be a string'),
        ({"text": "a", "bias": "high"}, 400, '"bias" must be a number'),
        ({"text": "a", "bias": True}, 400, '"bias" must be a number'),
        ({"text": "a", "seed": 1.5}, 400, '"seed" must be an integer'),
        ({"text": "a", "substitute": "yes"}, 400, "true or false"),
        ({"text": "a", "prime": [[[0, 0], [1, 1]]]}, 400, '"prime" must be'),
        ({"text": "x" * 61}, 413, "at most 60"),
        ({"text": ""}, 422, "empty"),
        ({"text": "   \n "}, 422, "empty"),
        ({"text": "5 €"}, 422, "'€'"),
        ({"text": "a", "bias": -1}, 422, "bias"),
        ({"text": "a", "seed": -1}, 422, "seed"),
        ({"text": "a", "width": 3}, 422, "width"),
        ({"text": "a", "style": 99}, 422, "no style 99"),
        ({"text": "a", "format": "gif"}, 422, "format"),
        ({"text": "a", "format": "window", "line": 0}, 422, "counted from 1"),
        ({"text": "a", "line": "2"}, 400, '"line" must be an integer'),
        ({"text": "a", "colour": 'red" onload="alert(1)'}, 422, "not a colour"),
        ({"text": "a", "stroke_width": 0}, 422, "stroke width"),
        ({"text": "a", "stroke_width": 500}, 422, "at most 20"),
        ({"text": "a", "animate": "fast"}, 400, '"animate" must be a number'),
        ({"text": "a", "animate": 0}, 422, "pen speed"),
        ({"text": "a", "animate": 1e6}, 422, "pen speed must be 1 to 10,000"),
        ({"text": "a", "animate": 100, "format": "png"}, 422, "only the SVG page"),
        ({"text": "a", "style": 0, "prime": {"strokes": [[[0, 0], [5, 5]]], "text": "a"}}, 422, "one of"),
        ({"text": "a", "prime": {"strokes": [[[0, 0], [5, 5]]], "text": " "}}, 422, "transcription"),
        ({"text": "a", "prime": {"strokes": [[[0, 0]]], "text": "a"}}, 422, "at least 2 points"),
        ({"text": "a", "prime": {"strokes": [[[0, "x"]]], "text": "a"}}, 422, "point 0"),
        ({"text": "a", "prime": {"strokes": [[[i, i % 7] for i in range(901)]], "text": "a"}}, 413, "901 points"),
        ("x" * 60_001, 413, "60,001 bytes"),
    ],
)
def test_bad_requests_get_a_clear_answer(client, body, status, says):
    r = _post(client, body)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


def test_a_large_body_without_a_length_is_cut_off(client):
    def chunks():
        for _ in range(7):
            yield b"x" * 10_000

    r = client.post("/api/write", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413 and "more than the 60,000 bytes" in r.json()["error"]


def test_substitution_is_an_option(client):
    assert _post(client, {"text": "café"}).status_code == 422
    assert _post(client, {"text": "café", "substitute": True}).status_code == 200


def test_a_checkpoint_without_styles_serves_no_styles(tmp_path):
    for name in ("model.safetensors", "checkpoint.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    info = TestClient(create_app(model=str(tmp_path))).get("/api/info").json()
    assert info["styles"] == 0 and info["model"] == str(tmp_path)


def test_a_corrupt_checkpoint_fails_before_serving(tmp_path):
    shutil.copy(shipped_model_dir() / "checkpoint.json", tmp_path / "checkpoint.json")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(USER_ERRORS) as info:
        create_app(model=str(tmp_path))
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("args", [["--port", "70000"], ["--max-chars", "0"]])
def test_serve_rejects_bad_options(args, capsys):
    assert main(["serve", *args]) == 2
    assert "graves: error:" in capsys.readouterr().err


def test_the_static_files_are_packaged():
    """An editable install reads them from the tree, so check what a wheel would take: pyproject's globs."""
    import fnmatch
    from importlib import resources
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["graves"]
    static = resources.files("graves.web") / "static"
    names = {p.name for p in static.iterdir()}
    assert {"index.html", "app.js", "style.css"} <= names
    for name in names:
        assert any(fnmatch.fnmatch(f"web/static/{name}", g) for g in globs), f"{name} would not be packaged"


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_graves_serve_runs_uvicorn_on_the_address_asked(host, warned, monkeypatch, capsys):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    assert main(["serve", "--host", host, "--port", "8123", "--max-chars", "99"]) == 0
    (app, kw), = calls
    assert kw["host"] == host and kw["port"] == 8123
    assert TestClient(app, base_url="http://127.0.0.1:8123").get("/api/info").json()["max_chars"] == 99
    out = capsys.readouterr()
    assert f"http://{host}:8123/" in out.out
    assert ("warning: listening on 0.0.0.0" in out.err) == warned


def test_serve_without_the_web_extra_says_what_to_install(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if `pip install -e '.[web]'` was never run
    assert main(["serve"]) == 2
    assert "pip install -e '.[web]'" in capsys.readouterr().err


def test_numbers_beyond_any_float_and_extreme_values_get_json_errors_not_a_500(client):
    """Found in review: a huge integer, a number past the JSON parser's digit limit, a primer point
    beyond any float and a bias that overflows the sampler each gave a plain-text 500."""
    cases = [
        ('{"text": "hi", "bias": 1' + "0" * 400 + "}", 422, "sampling bias"),
        ('{"text": "hi", "seed": ' + "9" * 5000 + "}", 400, "not JSON that this server reads"),
        ({"text": "hi", "bias": 1e39}, 422, "from 0 to 10,000"),
        ({"text": "hi", "prime": {"strokes": [[[10**400, 0], [1, 1]]], "text": "ab"}}, 422, "too large"),
        ({"text": "hi", "animate": 0.001}, 422, "pen speed must be 1 to 10,000"),
    ]
    for body, status, message in cases:
        r = _post(client, body)
        assert r.status_code == status and message in r.json()["error"], (body if len(str(body)) < 80 else status, r.text)


def test_an_unexpected_failure_is_still_a_json_answer(monkeypatch):
    import graves.web as web

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(web, "_render", broken)
    r = _post(TestClient(create_app()), {"text": "hi"})
    assert r.status_code == 500 and "KeyError" in r.json()["error"]


def test_serve_on_a_taken_port_is_a_one_line_error(monkeypatch, capsys):
    import socket

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("uvicorn should not start"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    out = capsys.readouterr()
    assert f"cannot listen on 127.0.0.1:{port}" in out.err and "writing at" not in out.out


# ---------------------------------------------------------------- found in the session-16 review


def test_a_page_too_large_as_a_whole_is_refused_before_it_is_written(monkeypatch):
    """Many short lines under a long primer: each field within its limit, their product gigabytes."""
    import graves.web as web

    monkeypatch.setattr(web, "_render", lambda *a: pytest.fail("a refused page must not be written"))
    small = TestClient(create_app(limits=Limits(max_chars=400, max_cells=2_000_000)))
    prime = {"strokes": [[[i, i % 7] for i in range(800)]], "text": "a long transcription " * 4}
    r = _post(small, {"text": "a\n" * 40, "prime": prime})
    assert r.status_code == 413 and "too large" in r.json()["error"] and "shorter sample" in r.json()["error"]
    # the same text alone is small: 40 lines x 4 candidates x 41 steps x 2 characters
    monkeypatch.undo()
    assert _post(small, {"text": "a\n" * 40}).status_code == 200


def test_the_length_limit_counts_the_text_as_substituted(client):
    r = _post(client, {"text": "\u2487" * 20, "substitute": True})  # ⒇ → "(20)": 80 characters
    assert r.status_code == 413 and "80 characters after substitution" in r.json()["error"]
    assert _post(client, {"text": "\u2487" * 15, "substitute": True}).status_code == 200


def test_the_window_picture_draws_characters_no_font_has(client):
    r = _post(client, {"text": "a\ud800b", "substitute": True, "format": "window"})
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), r.text[:300]


def test_a_failure_is_one_line_in_the_log_and_the_answer(monkeypatch, capsys):
    import graves.web as web

    def broken(*args, **kwargs):
        raise TypeError("first line\nsecond line\nthird line")

    monkeypatch.setattr(web, "_render", broken)
    r = _post(TestClient(create_app()), {"text": "hi"})
    assert r.status_code == 500 and r.json()["error"] == "the server failed: TypeError: first line"
    assert capsys.readouterr().err == "graves serve: error: TypeError: first line\n"


def test_a_transcription_the_model_cannot_write_is_refused_in_the_pages_words(client):
    prime = {"strokes": _drawn(0), "text": "5 \u20ac"}
    r = _post(client, {"text": "hi", "prime": prime})
    assert r.status_code == 422 and "'\u20ac'" in r.json()["error"] and "--" not in r.json()["error"]


def test_only_the_servers_own_page_can_make_it_write():
    local = TestClient(create_app(hosts=web_hosts()), base_url="http://127.0.0.1:8000")
    ok = {"Content-Type": "application/json"}
    assert local.post("/api/write", content='{"text": "hi"}', headers=ok).status_code == 200
    assert local.post("/api/write", content='{"text": "hi"}', headers={
        **ok, "Origin": "http://127.0.0.1:8000"}).status_code == 200
    # DNS rebinding: a foreign name that resolves here
    r = local.post("/api/write", content='{"text": "hi"}', headers={**ok, "Host": "evil.example:8000"})
    assert r.status_code == 421 and "evil.example" in r.json()["error"] and "--allow-host" in r.json()["error"]
    # another site's page
    r = local.post("/api/write", content='{"text": "hi"}', headers={**ok, "Origin": "http://evil.example"})
    assert r.status_code == 403 and "evil.example" in r.json()["error"]
    # a cross-site form or a "simple" fetch, which the browser sends without asking first
    r = local.post("/api/write", content='{"text": "hi"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    # the names of this machine, with and without a port
    v6 = TestClient(create_app(hosts=web_hosts()), base_url="http://[::1]:8000")
    assert v6.post("/api/write", content='{"text": "hi"}', headers=ok).status_code == 200


def web_hosts():
    from graves.web import LOOPBACK_NAMES

    return LOOPBACK_NAMES


def test_serve_listens_on_ipv6_loopback(monkeypatch, capsys):
    import socket

    import uvicorn

    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            pass
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert main(["serve", "--host", "::1", "--port", "8124"]) == 0
    assert calls[0]["host"] == "::1" and "http://[::1]:8124/" in capsys.readouterr().out


def test_a_name_that_does_not_resolve_is_not_called_a_taken_port(monkeypatch, capsys):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("uvicorn should not start"))
    assert main(["serve", "--host", "no-such-host.invalid", "--port", "8125"]) == 2
    err = capsys.readouterr().err
    assert "cannot listen on no-such-host.invalid" in err and "another --port" not in err


def test_a_request_whose_client_left_while_it_waited_is_not_written(monkeypatch):
    import asyncio

    import graves.web as web

    monkeypatch.setattr(web, "_render", lambda *a: pytest.fail("nobody is waiting for this page"))
    app = create_app()
    body = json.dumps({"text": "hi"}).encode()
    messages = [{"type": "http.request", "body": body, "more_body": False}, {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/write", "raw_path": b"/api/write", "query_string": b"",
             "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499


def test_every_route_answers_only_the_allowed_names():
    app = TestClient(create_app(hosts=web_hosts()), base_url="http://evil.example:8000")
    for path in ("/", "/api/info", "/api/styles/0.svg", "/static/app.js"):
        r = app.get(path)
        assert r.status_code == 421 and "--allow-host" in r.json()["error"], path


def test_behind_a_reverse_proxy_the_allowed_name_may_write(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(app))
    assert main(["serve", "--port", "8126", "--allow-host", "graves.example.com"]) == 0
    ok = {"Content-Type": "application/json"}
    # a proxy that keeps the Host
    kept = TestClient(calls[0], base_url="https://graves.example.com")
    assert kept.post("/api/write", content='{"text": "hi"}', headers={
        **ok, "Origin": "https://graves.example.com"}).status_code == 200
    # a proxy that rewrites the Host to the local address: the page's Origin is still the public name
    local = TestClient(calls[0], base_url="http://127.0.0.1:8126")
    assert local.post("/api/write", content='{"text": "hi"}', headers={
        **ok, "Origin": "https://graves.example.com"}).status_code == 200
    r = local.post("/api/write", content='{"text": "hi"}', headers={**ok, "Origin": "https://other.example"})
    assert r.status_code == 403
    # another local port is not this server's page, nor another port or scheme of the allowed name
    for other in ("http://localhost:3000", "https://graves.example.com:9999", "http://graves.example.com:8443"):
        r = local.post("/api/write", content='{"text": "hi"}', headers={**ok, "Origin": other})
        assert r.status_code == 403, other
    # on a public address with names given, only those names
    calls.clear()
    assert main(["serve", "--host", "0.0.0.0", "--port", "8126", "--allow-host", "graves.example.com"]) == 0
    assert TestClient(calls[0], base_url="http://evil.example").get("/api/info").status_code == 421
    assert TestClient(calls[0], base_url="http://graves.example.com").get("/api/info").status_code == 200


def test_the_work_budget_counts_the_transcription_as_substituted(monkeypatch):
    import graves.web as web

    monkeypatch.setattr(web, "_render", lambda *a: pytest.fail("a refused page must not be written"))
    strokes = [[[i, i % 7] for i in range(400)]]
    limits = Limits(max_chars=400, max_cells=2_000_000)
    app = TestClient(create_app(limits=limits))
    # "⒇" is "(20)" once substituted: the transcription is four times longer than it looks
    body = {"text": "a\n" * 10, "prime": {"strokes": strokes, "text": "\u2487" * 60}, "substitute": True}
    from graves.sample import write_cells
    from graves.data.primer import primer_from_json

    primer = primer_from_json(body["prime"])
    assert write_cells(["a"] * 10, primer) <= limits.max_cells < write_cells(["a"] * 10, primer, substitute=True)
    r = _post(app, body)
    assert r.status_code == 413 and "too large" in r.json()["error"]
    long = {"text": "hi", "prime": {"strokes": strokes, "text": "\u2487" * 101}, "substitute": True}
    r = _post(app, long)
    assert r.status_code == 413 and "after substitution" in r.json()["error"]


def test_allow_host_takes_a_name_or_an_origin_and_nothing_else(monkeypatch, capsys):
    import uvicorn

    from graves.web import parse_allowed

    assert parse_allowed("Graves.Example.com") == ("graves.example.com", ["http://graves.example.com",
                                                                          "https://graves.example.com"])
    assert parse_allowed("https://graves.example.com:8443/") == ("graves.example.com", ["https://graves.example.com:8443"])
    assert parse_allowed("[::1]") == ("::1", ["http://[::1]", "https://[::1]"])
    assert parse_allowed("https://graves.example.com:443") == ("graves.example.com", ["https://graves.example.com"])
    assert parse_allowed("http://[::1]:8080") == ("::1", ["http://[::1]:8080"])
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(app))
    for bad in ("https://graves.example.com/write", "ftp://graves.example.com", "graves example", "a:b",
                "https://user@graves.example.com", "https://graves.example.com:99999"):
        assert main(["serve", "--port", "8127", "--allow-host", bad]) == 2, bad
        assert "--allow-host" in capsys.readouterr().err
    assert not calls
    # an origin: only that scheme and port
    assert main(["serve", "--port", "8127", "--allow-host", "https://graves.example.com:8443"]) == 0
    local = TestClient(calls[0], base_url="http://127.0.0.1:8127")
    ok = {"Content-Type": "application/json"}
    assert local.post("/api/write", content='{"text": "hi"}', headers={
        **ok, "Origin": "https://graves.example.com:8443"}).status_code == 200
    assert local.post("/api/write", content='{"text": "hi"}', headers={
        **ok, "Origin": "https://graves.example.com"}).status_code == 403


def test_a_default_port_written_out_is_the_same_origin():
    app = TestClient(create_app(), base_url="http://192.168.1.5:80")
    r = app.post("/api/write", content='{"text": "hi"}', headers={"Content-Type": "application/json",
                                                                  "Origin": "http://192.168.1.5"})
    assert r.status_code == 200


def test_serve_skips_an_address_family_this_machine_cannot_open(monkeypatch, capsys):
    import errno
    import socket

    import uvicorn

    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kw: [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))] + real("127.0.0.1", port, **kw))
    create = socket.create_server

    def no_ipv6(address, family=socket.AF_INET, **kw):
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return create(address, family=family, **kw)

    monkeypatch.setattr(socket, "create_server", no_ipv6)
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert main(["serve", "--host", "localhost", "--port", "8128"]) == 0 and calls
