// The page's behaviour: read the form, POST /api/write, show the image. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let info = { alphabet: "", styles: 0, max_chars: 400 };
let strokes = [];          // the drawing pad: a list of strokes, each a list of [x, y] (canvas pixels, y down)
let lastBody = null;       // the request behind the image on show (the PNG and PDF links ask for the same page)
let svgBlob = null, svgUrl = null, windowUrl = null;
const downloads = { svg: null, png: null, pdf: null };   // still pages, fetched when their link is first clicked

function setStatus(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

function checkText() {
  const text = $("text").value;
  $("count").textContent = `${text.length} / ${info.max_chars} characters`;
  const known = new Set(info.alphabet + "\n");
  const bad = [...new Set([...text].filter((c) => !known.has(c)))];
  $("unknown").textContent = bad.length === 0 ? "" :
    ($("substitute").checked ? `will be replaced where possible: ${bad.join(" ")}`
                             : `the model cannot write: ${bad.join(" ")}`);
}

async function loadInfo() {
  const r = await fetch("/api/info");
  info = await r.json();
  $("text").maxLength = info.max_chars;
  const mine = $("style").querySelector('option[value="mine"]');
  for (let i = 0; i < info.styles; i++) {
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = `style ${i}`;
    $("style").insertBefore(o, mine);
  }
  $("bias").value = info.default_bias;
  $("bias-value").textContent = Number(info.default_bias).toFixed(2);
  checkText();
}

function requestBody(format) {
  const body = {
    text: $("text").value,
    bias: Number($("bias").value),
    seed: Math.max(0, Math.floor(Number($("seed").value) || 0)),
    substitute: $("substitute").checked,
    colour: $("colour").value,
    stroke_width: Number($("stroke-width").value),
    format,
  };
  if (format === "svg" && $("animate").checked) body.animate = info.pen_speed;  // as graves write --animate
  const style = $("style").value;
  if (style === "mine") {
    body.prime = { strokes, text: $("prime-text").value };
  } else if (style === "hand") {
    body.same_hand = true;   // line 1 primes the others (graves write --same-hand)
  } else if (style !== "") {
    body.style = Number(style);
  }
  return body;
}

async function post(body) {
  const r = await fetch("/api/write", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!r.ok) {
    let message = `the server answered ${r.status}`;
    try { message = (await r.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return r;
}

async function onWrite(event) {
  event.preventDefault();
  if ($("style").value === "mine" && strokes.length === 0) {
    setStatus("draw a few words on the pad first", true);
    return;
  }
  const body = requestBody("svg");
  $("write").disabled = true;
  setStatus("writing…");
  try {
    const r = await post(body);
    const blob = await r.blob();
    for (const fmt of Object.keys(downloads)) {
      if (downloads[fmt]) URL.revokeObjectURL(downloads[fmt]);
      downloads[fmt] = null;
      $(`download-${fmt}`).href = "#";
    }
    svgBlob = blob;
    showPage();
    const { animate, ...still } = body;
    lastBody = JSON.parse(JSON.stringify(still));   // a copy: the pad may change before the PNG is asked for
    if (!animate) {                                  // the page on show is the still SVG: download it as it is
      downloads.svg = URL.createObjectURL(blob);
      $("download-svg").href = downloads.svg;
    }
    $("download-animated").hidden = $("replay").hidden = !animate;
    $("result").hidden = false;
    const lines = r.headers.get("X-Graves-Lines"), unfinished = r.headers.get("X-Graves-Unfinished");
    $("window-figure").hidden = true;
    $("window-line").replaceChildren(...Array.from({ length: Number(lines) }, (_, i) => {
      const o = document.createElement("option");
      o.value = String(i + 1);
      o.textContent = `line ${i + 1}`;
      return o;
    }));
    $("window-line").hidden = Number(lines) < 2;
    let message = `${lines} line${lines === "1" ? "" : "s"} in ${r.headers.get("X-Graves-Seconds")} s`;
    if (unfinished) message += ` (line ${unfinished} lost its place in the text: try another seed)`;
    setStatus(message);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $("write").disabled = false;
  }
}

// Show the written page; a fresh URL for the same SVG restarts its animation (the replay button).
function showPage() {
  if (svgUrl) URL.revokeObjectURL(svgUrl);
  svgUrl = URL.createObjectURL(svgBlob);
  $("page").src = svgUrl;
  $("download-animated").href = svgUrl;
}

async function onDownload(event, fmt) {
  if (downloads[fmt]) return;                // already fetched: let the link download it
  event.preventDefault();
  if (!lastBody) return;
  setStatus(`drawing the ${fmt.toUpperCase()}…`);
  try {
    const r = await post({ ...lastBody, format: fmt });
    downloads[fmt] = URL.createObjectURL(await r.blob());
    $(`download-${fmt}`).href = downloads[fmt];
    setStatus("");
    $(`download-${fmt}`).click();
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function onWindow() {
  if (!lastBody) return;
  setStatus("reading the window…");
  try {
    const r = await post({ ...lastBody, format: "window", line: Number($("window-line").value || 1) });
    if (windowUrl) URL.revokeObjectURL(windowUrl);
    windowUrl = URL.createObjectURL(await r.blob());
    $("window").src = windowUrl;
    $("window-figure").hidden = false;
    setStatus("");
  } catch (e) {
    setStatus(e.message, true);
  }
}

// ------------------------------------------------------------------------------- the drawing pad

function setupPad() {
  const pad = $("pad"), ctx = pad.getContext("2d");
  let drawing = false;
  const point = (e) => {
    const box = pad.getBoundingClientRect();
    return [(e.clientX - box.left) * (pad.width / box.width), (e.clientY - box.top) * (pad.height / box.height)];
  };
  const redraw = () => {
    ctx.clearRect(0, 0, pad.width, pad.height);
    ctx.lineWidth = 2.5; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#1b1b1b";
    for (const s of strokes) {
      ctx.beginPath();
      s.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (s.length === 1) ctx.lineTo(s[0][0] + 0.1, s[0][1]);
      ctx.stroke();
    }
  };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    strokes.push([point(e)]);
    redraw();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    strokes[strokes.length - 1].push(point(e));
    redraw();
  });
  const end = () => { drawing = false; };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  $("clear").addEventListener("click", () => { strokes = []; redraw(); });
}

document.addEventListener("DOMContentLoaded", () => {
  $("write-form").addEventListener("submit", onWrite);
  for (const fmt of Object.keys(downloads)) {
    $(`download-${fmt}`).addEventListener("click", (e) => onDownload(e, fmt));
  }
  $("show-window").addEventListener("click", onWindow);
  $("replay").addEventListener("click", () => { if (svgBlob) showPage(); });
  $("window-line").addEventListener("change", onWindow);
  $("text").addEventListener("input", checkText);
  $("text").addEventListener("keydown", (e) => {   // Ctrl+Enter (Cmd+Enter) writes, Enter alone breaks the line
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("write-form").requestSubmit();
  });
  $("substitute").addEventListener("change", checkText);
  $("bias").addEventListener("input", () => { $("bias-value").textContent = Number($("bias").value).toFixed(2); });
  $("reseed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 1e6); });
  $("style").addEventListener("change", () => {
    const style = $("style").value;
    $("mine").hidden = style !== "mine";
    $("style-figure").hidden = style === "" || style === "mine" || style === "hand";
    if (!$("style-figure").hidden) $("style-preview").src = `/api/styles/${style}.svg`;
  });
  setupPad();
  loadInfo().catch((e) => setStatus(`cannot reach the server: ${e.message}`, true));
});
