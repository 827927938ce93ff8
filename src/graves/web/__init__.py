"""The web page: type a text, get handwriting, in the browser (``graves serve``).

A small ASGI app (Starlette) over :func:`graves.write`, the same call as ``graves write``: one static
page and a JSON API. Nothing here samples or draws by itself.

    GET  /              the page (``static/index.html``: plain HTML, CSS and JavaScript, no build step)
    GET  /api/info      the model's alphabet, its number of styles, the defaults and the limits
    GET  /api/styles/N.svg   shipped style N: the line the model wrote that primes it, as an SVG
    POST /api/write     JSON in, an SVG, PNG or PDF out (the request's fields: :func:`parse_write_request`),
                        or, with ``"format": "window"``, the soft window of one written line as a
                        Fig. 13-style PNG: φ(t, u), the text against the pen steps (eqs. 46-51)

A request the model cannot serve is answered with ``{"error": "..."}``, the library's own message: 400
for a malformed request (not JSON, a field of the wrong type), 413 for one over the limits (text
length, upload size, primer points), 422 for a well-formed one the model cannot write (an empty text,
a character outside its alphabet, a bad colour, an unusable primer); anything else would be a bug, and
comes as a JSON 500 with one line in the server's log. Writing is CPU-bound, so requests are written
one at a time, in a worker thread, while the server keeps answering the others; a request whose
client has gone by its turn is not written.

The server binds to 127.0.0.1 by default: it is a local tool. Served there, it answers only requests
addressed to a loopback name or to a name given with ``--allow-host`` (``Host``; 421 otherwise), so a
web page elsewhere cannot reach it through DNS rebinding, and ``POST /api/write`` takes only
``Content-Type: application/json`` from its own page (``Origin``: this server's address, or a name given
with ``--allow-host``, as behind a reverse proxy), so another site's page cannot make it write. It has no
accounts, no storage and no rate limit beyond the one-at-a-time queue and :class:`Limits`; put it behind
a real front end before exposing it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from graves.data.alphabet import Alphabet, UnknownCharacterError, substitute_page, substitute_text
from graves.data.primer import PrimerError, primer_from_json
from graves.render import DEFAULT_PEN_SPEED
from graves.sample import (DEFAULT_BIAS, DEFAULT_CANDIDATES, SampleError, _cached_synthesizer, _check_bias,
                           _check_render_options, load_styles, wrap_text, write, write_cells)

__all__ = ["LOOPBACK_NAMES", "Limits", "WebError", "WriteRequest", "create_app", "parse_allowed",
           "parse_write_request", "serve"]

STATIC = resources.files("graves.web") / "static"

#: the names a server bound to a loopback address answers to (:func:`serve`)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

NEEDS_WEB = "the web page needs Starlette and uvicorn: pip install -e '.[web]' in a checkout of graves"

#: what ``POST /api/write`` can answer with: the page in three formats, or one line's window as a PNG
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf", "window": "image/png"}


class WebError(Exception):
    """A request the page cannot serve; ``status`` is the HTTP status, the message goes to the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (the server's guard against runaway work).

    Attributes:
        max_chars: characters of text, after any substitution (ordinary text takes about 1 s of CPU per 40
            with the shipped model; text unlike handwriting, such as one letter repeated, can take 10
            times that).
        max_body: bytes of the request body.
        max_primer_points: points of a primer drawn on the page.
        max_cells: the sampler's record of the window for the whole page (:func:`graves.sample.write_cells`:
            lines × candidates × pen steps × characters, 4 bytes each). Each limit above may be within
            bounds while their product is not: many short lines under a long primer.
    """

    max_chars: int = 400
    max_body: int = 1_000_000
    max_primer_points: int = 5_000
    max_cells: int = 40_000_000


@dataclass(frozen=True)
class WriteRequest:
    """A parsed ``POST /api/write``: the arguments of :func:`graves.write` and of the renderer."""

    text: str
    bias: float
    seed: int
    width: int
    style: int | None
    prime: Any  # a Primer or None
    substitute: bool
    format: str  # "svg", "png", "pdf" or "window"
    render: dict[str, Any]
    line: int = 1  # "window": which line of the page (from 1)
    same_hand: bool = False  # True: line 1 primes the others (no style or primer)


def _field(body: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any, what: str) -> Any:
    v = body.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) and bool not in kinds or not isinstance(v, kinds):
        raise WebError(400, f'"{key}" must be {what}, got {json.dumps(v)[:40]}')
    return v


def parse_write_request(raw: bytes, limits: Limits = Limits()) -> WriteRequest:
    """Check a ``POST /api/write`` body and turn it into a :class:`WriteRequest`.

    The body is a JSON object::

        {"text": "Hello",            required; line breaks kept, long lines wrapped at "width"
         "bias": 0.75,               0 <= b <= 10,000 (eqs. 61-62); default: graves write's default
         "seed": 0,                  an integer in [0, 2**63)
         "width": 50,                wrap lines at this many characters (10-200)
         "style": 1,                 a shipped style, or null
         "prime": {"strokes": [[[x, y], ...], ...], "text": "what they say"},   your own handwriting,
                                     screen coordinates (y down), as a canvas gives them; or null
         "substitute": false,        replace characters the model cannot write (documented table)
         "same_hand": false,         with no style or prime: true primes lines 2, 3, ... with line 1 (a
                                     steadier slant); false writes every line on its own (easier to read)
         "format": "svg",            "svg", "png", "pdf", or "window" (a PNG of line "line"'s window)
         "line": 1,                  with "window": which line of the page, from 1
         "colour": "black", "stroke_width": 2, "background": "white" (or null: transparent),
         "animate": 100}             with "svg": draw the page as it was written, at this many pen points
                                     per second (up to 10,000); null or absent: a still page

    Raises:
        WebError: 400, 413 or 422 (module docstring) with a message for the user.
    """
    if len(raw) > limits.max_body:
        raise WebError(413, f"the request is {len(raw):,} bytes, more than the {limits.max_body:,} accepted")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # not UTF-8 or JSON, a number past the digit limit, too deep
        raise WebError(400, f"the request is not JSON that this server reads: {type(exc).__name__}: {exc}") from None
    if not isinstance(body, dict):
        raise WebError(400, "the request must be a JSON object with at least a \"text\"")
    unknown = sorted(set(body) - {"text", "bias", "seed", "width", "style", "prime", "substitute", "format",
                                  "line", "colour", "stroke_width", "background", "animate", "same_hand"})
    if unknown:
        raise WebError(400, f"unknown field(s) {', '.join(map(repr, unknown))}")
    text = _field(body, "text", (str,), "", "a string")
    substitute = _field(body, "substitute", (bool,), False, "true or false")
    # counted as it will be written: a substitution can turn one character into four ("⒇" → "(20)")
    written = substitute_page(text) if substitute else text
    if len(written) > limits.max_chars:
        raise WebError(413, f"the text has {len(written)} characters" + (" after substitution" if written != text
                       else "") + f"; this server writes at most {limits.max_chars}")
    try:
        bias = _check_bias(_field(body, "bias", (int, float), DEFAULT_BIAS, "a number"))
    except SampleError as exc:
        raise WebError(422, str(exc)) from None
    seed = _field(body, "seed", (int,), 0, "an integer")
    if not 0 <= seed < 2**63:
        raise WebError(422, f"the seed must be in [0, 2**63), got {seed}")
    width = _field(body, "width", (int,), 50, "an integer")
    if not 10 <= width <= 200:
        raise WebError(422, f"the line width must be 10 to 200 characters, got {width}")
    style = _field(body, "style", (int,), None, "an integer or null")
    same_hand = _field(body, "same_hand", (bool,), False, "true or false")
    fmt = _field(body, "format", (str,), "svg", 'one of ' + ", ".join(map(repr, MEDIA_TYPES)))
    if fmt not in MEDIA_TYPES:
        raise WebError(422, f"the format must be one of {', '.join(map(repr, MEDIA_TYPES))}, got {fmt!r}")
    line = _field(body, "line", (int,), 1, "an integer")
    if line < 1:
        raise WebError(422, f"lines are counted from 1, got {line}")
    render: dict[str, Any] = {}
    if body.get("colour") is not None:
        render["colour"] = _field(body, "colour", (str,), None, "a colour name or #rrggbb")
    if body.get("stroke_width") is not None:
        render["stroke_width"] = _field(body, "stroke_width", (int, float), None, "a number")
        if not render["stroke_width"] <= 20:
            raise WebError(422, f"the pen width must be at most 20 pixels, got {render['stroke_width']}")
    if "background" in body:
        render["background"] = _field(body, "background", (str,), None, "a colour or null")
    if body.get("animate") is not None:
        render["animate"] = _field(body, "animate", (int, float), None, "a number of pen points per second or null")
        if fmt != "svg":
            raise WebError(422, f"only the SVG page can be animated, not the {fmt!r} format")
    try:
        _check_render_options(render)
    except SampleError as exc:
        raise WebError(422, str(exc)) from None
    prime = None
    if body.get("prime") is not None:
        if style is not None:
            raise WebError(422, "choose one of a style and your own handwriting")
        data = body["prime"]
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise WebError(400, '"prime" must be {"strokes": [...], "text": "what the strokes say"}')
        if not data["text"].strip():
            raise WebError(422, "write what your handwriting says (its transcription), so the model can follow it")
        if len(substitute_text(data["text"]) if substitute else data["text"]) > limits.max_chars:
            raise WebError(413, f"the transcription has more than {limits.max_chars} characters"
                                + (" after substitution" if substitute else ""))
        strokes = data.get("strokes")
        points = sum(len(s) for s in strokes if isinstance(s, list)) if isinstance(strokes, list) else 0
        if points > limits.max_primer_points:
            raise WebError(413, f"your handwriting has {points:,} points, more than the "
                                f"{limits.max_primer_points:,} accepted")
        try:
            prime = primer_from_json(data, where="your handwriting")
        except PrimerError as exc:
            raise WebError(422, str(exc)) from None
    return WriteRequest(text, float(bias), seed, width, style, prime, substitute, fmt, render, line, same_hand)


def _window_png(hw: Any, line: int) -> bytes:
    """Line ``line`` (from 1) of a written page: its window weights φ(t, u) under its strokes (Fig. 13)."""
    import io

    from graves.plots import plot_window

    if line > len(hw.lines):
        raise WebError(422, f"the page has {len(hw.lines)} line(s); there is no line {line}")
    result = hw.results[line - 1]
    if not hw.lines[line - 1] or len(result.offsets) == 0:
        raise WebError(422, f"line {line} is blank: it has no window to show")
    title = f"line {line}: the window weights φ(t, u), the text it reads (rows) against pen steps t"
    buf = io.BytesIO()
    plot_window(buf, result.phi, result.text, result.offsets, title)
    return buf.getvalue()


def _render(req: WriteRequest, model: Any) -> tuple[bytes, dict[str, str]]:
    """Write and draw one request (in a worker thread): the image bytes and the response headers."""
    t0 = time.perf_counter()
    hw = write(req.text, model=model, bias=req.bias, seed=req.seed, width=req.width, style=req.style,
               prime=req.prime, substitute=req.substitute, same_hand=req.same_hand)
    if req.format == "window":
        data = _window_png(hw, req.line)
    elif req.format == "svg":
        data = hw.svg(**req.render).encode("utf-8")
    else:
        data = hw.png(**req.render) if req.format == "png" else hw.pdf(**req.render)
    headers = {
        "X-Graves-Lines": str(len(hw.lines)),
        "X-Graves-Unfinished": ",".join(map(str, hw.unfinished)),
        "X-Graves-Seconds": f"{time.perf_counter() - t0:.2f}",
        "Cache-Control": "no-store",
    }
    return data, headers


def _check_cells(req: WriteRequest, styles: list[Any], limits: Limits) -> None:
    """Refuse (413) a page whose sampling would be too large as a whole (:attr:`Limits.max_cells`)."""
    text = substitute_page(req.text) if req.substitute else req.text
    lines = [ln for ln in wrap_text(text, req.width) if ln]
    primer = req.prime
    if primer is None and req.style is not None and 0 <= req.style < len(styles):
        primer = styles[req.style]
    cells = write_cells(lines, primer, DEFAULT_CANDIDATES, substitute=req.substitute)
    if cells > limits.max_cells:
        what = "with your handwriting's transcription" if req.prime is not None else "at once"
        raise WebError(413, f"this page is too large to write {what}: {len(lines)} line(s) of up to "
                            f"{max(map(len, lines))} characters would need {cells * 4 / 1e6:,.0f} MB "
                            f"(this server allows {limits.max_cells * 4 / 1e6:,.0f}); write fewer lines at a time"
                            + (", or draw a shorter sample of your handwriting" if req.prime is not None else ""))


def _check_primer_text(req: WriteRequest, alphabet: Alphabet) -> None:
    """Refuse (422), in the page's words, a transcription of the user's handwriting with characters the model
    lacks (the library's own message names command-line flags)."""
    if req.prime is None:
        return
    said = substitute_text(req.prime.text) if req.substitute else req.prime.text
    if bad := alphabet.unknown_characters(said):
        raise WebError(422, f"the model cannot write {', '.join(map(repr, bad))} in the transcription of your "
                            "handwriting: change the transcription" + ("" if req.substitute else
                                                                      ', or tick "replace characters the model '
                                                                      'cannot write"'))


def _host_name(host: str) -> str:
    """The name in a Host header, without its port: "[::1]:8000" → "::1", "localhost:8000" → "localhost"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


ALLOW_HOST_HINT = "serving it under another name (a reverse proxy)? start it with graves serve --allow-host NAME"


def _check_host(request: Any, hosts: frozenset[str] | None) -> None:
    """Refuse (421) a request addressed to a name that is not one of ``hosts`` (None: any): a page
    elsewhere whose name was made to resolve to this machine (DNS rebinding)."""
    host = request.headers.get("host", "")
    if hosts is not None and _host_name(host) not in hosts:
        raise WebError(421, f"this server answers requests addressed to {', '.join(sorted(hosts))}, "
                            f"not to {host[:60]!r}; {ALLOW_HOST_HINT}")


def _origin_key(netloc: str, scheme: str) -> tuple[str, int | None]:
    """(name, port) of a Host or an Origin's netloc, the port defaulting to the scheme's (80, 443)."""
    name = _host_name(netloc)
    rest = netloc.strip().lower()
    rest = rest[rest.find("]") + 1 :] if rest.startswith("[") else rest
    port = rest.rsplit(":", 1)[1] if rest.count(":") == 1 else ""
    default = {"http": 80, "https": 443}.get(scheme)
    return name, int(port) if port.isdigit() else default


def parse_allowed(value: str) -> tuple[str, list[str]]:
    """One ``--allow-host`` value: a host name (``graves.example.com``: its pages on the default ports, http
    or https, may write) or an origin (``https://graves.example.com:8443``: that origin only). Returns the
    name (for the Host check) and the origins (for the Origin check)."""
    import re
    from urllib.parse import urlsplit

    v = value.strip().lower().rstrip("/")
    if "://" in v:
        u = urlsplit(v)
        try:
            u.port
        except ValueError:
            u = None
        if u is None or u.scheme not in ("http", "https") or not u.hostname or u.path or u.query or u.username:
            raise ValueError(f"--allow-host: {value!r} is not an origin like https://graves.example.com[:port]")
        name = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
        default = {"http": 80, "https": 443}[u.scheme]
        port = f":{u.port}" if u.port not in (None, default) else ""  # a browser leaves a default port out
        return u.hostname, [f"{u.scheme}://{name}{port}"]
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]", v):
        raise ValueError(f"--allow-host takes a host name (graves.example.com) or an origin "
                         f"(https://graves.example.com:8443), not {value!r}")
    return v.strip("[]"), [f"http://{v}", f"https://{v}"]


def _check_origin(request: Any, origins: frozenset[str]) -> None:
    """Refuse a write that another site's page could have sent: an ``Origin`` that is neither this server's
    address (the Host, ports compared with the scheme's default) nor one of ``origins`` (403; those given
    with ``--allow-host``, as behind a reverse proxy that rewrites the Host), or a body not declared as JSON
    (415; a cross-site form or a "simple" fetch, which browsers send without asking first)."""
    from urllib.parse import urlsplit

    origin = request.headers.get("origin")
    if origin is not None:
        o = urlsplit(origin.strip().lower())
        host = request.headers.get("host", "")
        same = bool(o.netloc) and _origin_key(o.netloc, o.scheme) == _origin_key(host, o.scheme)
        if not same and f"{o.scheme}://{o.netloc}" not in origins:
            raise WebError(403, f"writing is for this server's own page, not for a page from {origin[:60]!r}; "
                                + ALLOW_HOST_HINT)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise WebError(415, f"send the request as JSON (Content-Type: application/json), not {kind or 'untyped'}")


async def _read_body(request: Any, max_body: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``max_body`` bytes: from its
    Content-Length before reading, or while reading a body sent without one (chunked)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise WebError(400, f"bad Content-Length {declared[:20]!r}") from None
        if size > max_body:
            raise WebError(413, f"the request is {size:,} bytes, more than the {max_body:,} accepted")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_body:
            raise WebError(413, f"the request is more than the {max_body:,} bytes accepted")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(model: Any = None, limits: Limits = Limits(), hosts: Any = None, origins: Any = ()):
    """The ASGI app. ``model``: a synthesis checkpoint directory (None: the shipped model).

    ``hosts``: the names (without port) that requests must be addressed to, such as
    :data:`LOOPBACK_NAMES` for a server on this machine only, plus a reverse proxy's public name; None: any
    name. ``origins``: pages (``https://name[:port]``) that may write besides the server's own address,
    such as a reverse proxy's (:func:`parse_allowed`). The model is loaded here, so a missing or corrupt
    checkpoint fails before the server starts.
    """
    hosts = None if hosts is None else frozenset(h.lower() for h in hosts)
    origins = frozenset(o.lower() for o in origins)
    try:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse, Response
        from starlette.routing import Route
    except ImportError:  # pragma: no cover - depends on the environment
        raise SampleError(NEEDS_WEB) from None

    _, meta, where = _cached_synthesizer(model)
    alphabet = Alphabet.from_dict(meta["alphabet"])
    # a checkpoint of one's own may come without styles.json; a broken one still fails here
    has_styles = where is not None and (where / "styles.json").is_file()
    styles = load_styles(where) if has_styles else []
    n_styles = len(styles)
    info = {
        "alphabet": "".join(alphabet.characters),
        "styles": n_styles,
        "default_bias": DEFAULT_BIAS,
        "pen_speed": DEFAULT_PEN_SPEED,
        "max_chars": limits.max_chars,
        "max_primer_points": limits.max_primer_points,
        "model": "shipped" if model is None else str(where),
    }
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    lock = asyncio.Lock()

    def guarded(handler):  # every route answers only the allowed names (DNS rebinding reads /api/info too)
        async def run(request: Request) -> Response:
            try:
                _check_host(request, hosts)
            except WebError as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            return await handler(request)

        return run

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        kinds = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in kinds:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=kinds[name])

    async def api_info(request: Request) -> Response:
        return JSONResponse(info)

    style_svgs: dict[int, bytes] = {}

    async def api_style(request: Request) -> Response:
        from graves.render import to_svg

        n = request.path_params["n"]
        if not 0 <= n < n_styles:
            return JSONResponse({"error": f"no style {n}: this model has {n_styles} style(s)"}, status_code=404)
        if n not in style_svgs:  # the style's own line, drawn once
            style_svgs[n] = to_svg([styles[n].offsets], stroke_width=2.5).encode("utf-8")
        return Response(style_svgs[n], media_type="image/svg+xml")

    async def api_write(request: Request) -> Response:
        try:
            _check_origin(request, origins)
            req = parse_write_request(await _read_body(request, limits.max_body), limits)
            _check_primer_text(req, alphabet)
            _check_cells(req, styles, limits)
            async with lock:  # one page at a time (each takes the sampler's thread; a queue, not a race)
                if await request.is_disconnected():  # given up while it waited: nobody to write for
                    return Response(status_code=499)
                data, headers = await run_in_threadpool(_render, req, model)
        except WebError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except (SampleError, UnknownCharacterError, PrimerError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except Exception as exc:  # a bug: still JSON, so the page can show it, and a line in the log
            said = (str(exc).splitlines() or [""])[0][:300]
            print(f"graves serve: error: {type(exc).__name__}: {said}", file=sys.stderr, flush=True)
            return JSONResponse({"error": f"the server failed: {type(exc).__name__}: {said}"}, status_code=500)
        return Response(data, media_type=MEDIA_TYPES[req.format], headers=headers)

    routes = [
        Route("/", guarded(index)),
        Route("/static/{name}", guarded(asset)),
        Route("/api/info", guarded(api_info)),
        Route("/api/styles/{n:int}.svg", guarded(api_style)),
        Route("/api/write", guarded(api_write), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def serve(host: str = "127.0.0.1", port: int = 8000, model: Any = None, limits: Limits = Limits(),
          allow_hosts: Any = ()) -> None:
    """Run the page with uvicorn until interrupted (``graves serve``).

    ``allow_hosts``: more names the page may be reached by (``--allow-host``), such as a reverse proxy's.
    On a loopback address the server answers those and the loopback names only; elsewhere, those only,
    or any name when none is given (with a warning)."""
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the environment
        raise SampleError(NEEDS_WEB) from None
    import errno
    import socket

    local = host.lower() in LOOPBACK_NAMES
    try:
        allowed = [parse_allowed(h) for h in allow_hosts]
    except ValueError as exc:
        raise SampleError(str(exc)) from None
    extra = frozenset(name for name, _ in allowed)
    app = create_app(model, limits, hosts=LOOPBACK_NAMES | extra if local else extra or None,
                     origins=[o for _, os_ in allowed for o in os_])
    try:  # a taken port is a one-line error here, not a message and then uvicorn's exit
        # every address of the name that this machine can open, as asyncio's create_server (uvicorn) binds
        bound, last = 0, OSError(f"no address found for {host}")
        for family, *_, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            try:
                with socket.create_server(address, family=family):
                    bound += 1
            except OSError as exc:
                if exc.errno not in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EADDRNOTAVAIL):
                    raise
                last = exc
        if not bound:
            raise last
    except socket.gaierror as exc:
        raise SampleError(f"cannot listen on {host}: {exc.strerror or exc}") from None
    except OSError as exc:
        hint = " (is another server there? try another --port)" if exc.errno == errno.EADDRINUSE else ""
        raise SampleError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    if not local:
        print(f"graves: warning: listening on {host}: anyone who can reach it can make this machine write "
              "(no accounts, no rate limit)", file=sys.stderr, flush=True)
    shown = f"[{host}]" if ":" in host else host
    print(f"graves: writing at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
