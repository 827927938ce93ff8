"""Handwriting sampling (paper §4 samples, §5.3–5.5): unconditional, synthesis, biased, primed.

Sampling is pure: no input is modified, no global state is left changed, and every random draw takes
an explicit ``torch.Generator``, so a seed reproduces a sample.

**One generator per line.** Every line of a batch draws from its own generator, so a line's sample
does not depend on which other lines share its batch: sampling lines ``[a, b, c]`` together with the
generators ``[g_a, g_b, g_c]`` gives (up to float rounding in the batched matrix products, see
``docs/sampling-notes.md``) what sampling each alone with its own generator gives. The library's seed
convention is :func:`line_generators`: line ``i`` of a page written with seed ``s`` draws from a
generator seeded with ``numpy.random.SeedSequence(s, spawn_key=(i,))``, so the lines of one seed are
independent streams and different (seed, line) pairs never share one. Passing a single generator for
several lines derives the per-line generators from it (the line's index in the batch then matters).

**Units.** The networks read and predict *normalised* offsets (mean 0, std 1 over the training set,
SPEC §3). The samplers return offsets in network units unless a ``normaliser`` (the checkpoint meta's
``"normaliser"``) is given, in which case the returned offsets, the primer's input, and the debug
``inputs`` are in raw IAM-OnDB units (y up), ready for :mod:`graves.render`.

**The sampling loop** runs a fused one-step path (:class:`_FastStepper`) without autograd: the weights
are split, transposed and concatenated once, the window's contribution to every layer is precomputed
per text position (φ_t @ (c W_w) instead of w_t @ W_w), and the hidden states live in two buffers.
It computes the same function as the models' ``step`` (proven equal in ``tests/test_sample.py``); any
other model falls back to ``model.step``.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import sys
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from graves.config import ConfigError
from graves.data.alphabet import substitute_page, substitute_text
from graves.data.primer import Primer

__all__ = [
    "DEFAULT_BIAS",
    "DEFAULT_CANDIDATES",
    "DEFAULT_FINISH_STROKE",
    "DEFAULT_RETRIES",
    "DEFAULT_STEPS_PER_CHAR",
    "MAX_BATCH_CELLS",
    "SampleError",
    "SynthesisResult",
    "denormalise",
    "end_of_text",
    "lead_in",
    "check_seed",
    "line_generators",
    "load_styles",
    "make_styles",
    "normalise",
    "save_styles",
    "style_sheet",
    "sample_checkpoint_to_file",
    "sample_unconditional",
    "shipped_model_dir",
    "synthesize",
    "wrap_text",
    "write",
    "write_cells",
    "write_to_files",
    "Handwriting",
]

#: The bias ``graves write`` uses when none is given. **Not the paper's default** (the paper's unbiased
#: sampling is b = 0, which writes with all the variety, and the mess, of the training data); b = 0.75 is
#: a legible middle between the paper's "slightly biased" b = 0.15 and the near-mode b = 2 (Fig. 16/17).
#: Chosen on session 3's model with ``bench/legibility.py`` (docs/results.md): Tesseract's CER on our
#: sentences 0.611 / 0.407 / 0.402 / 0.396 / 0.358 at b = 0 / 0.5 / 0.75 / 1 / 2; 0.75 keeps more of a
#: writer's variety than 1 or 2 for nearly their legibility. The model shipped since session 14 reads
#: 0.01-0.03 better at b = 1 (docs/sampling-notes.md, "Default bias"); the default stays.
DEFAULT_BIAS = 0.75

#: Hard cap on sampled steps per character of text: a line that has not passed the end of its text by
#: then stops, with ``finished=False``. IAM-OnDB validation lines average 620 points for 27 characters
#: (median 21.6 a character, 99th percentile of the training lines 35.5); 40 leaves room for large or slow
#: writing but never runs forever.
DEFAULT_STEPS_PER_CHAR = 40

#: ``graves write``: past the end of its text a line may draw at most this many more points, to finish the
#: stroke the end-of-text rule cut (about a quarter of the lines of ``bench/sentences*.txt`` stop with the
#: pen down at the default bias) and to add delayed strokes, i-dots and t-crosses (:func:`synthesize`'s
#: ``finish_stroke``, whose default 0 is the paper's rule; ours, not the paper's). ``bench/last_stroke.py``
#: counts what it does (docs/sampling-notes.md, "The last stroke").
DEFAULT_FINISH_STROKE = 30

#: The most ``finish_stroke`` may ask for (it sizes the sampler's buffers).
MAX_FINISH_STROKE = 1000

#: Past the end of its text a line may still add a delayed stroke (an i-dot, a t-cross) that starts over
#: the ink's last this many characters (mean widths of the line's characters so far); see
#: :func:`synthesize`, ``finish_stroke``.
DELAYED_REACH = 3.0

#: How many more times ``graves write`` writes a line that the step cap stopped (see :func:`synthesize`).
DEFAULT_RETRIES = 5

#: How many candidates ``graves write`` races for each line; the first to reach the end of its text is kept
#: (see :func:`synthesize`). Ours, not the paper's: measured by ``bench/legibility.py``
#: (docs/sampling-notes.md, "Racing candidates").
DEFAULT_CANDIDATES = 4

#: ``graves write`` writes its lines in one batch unless the batch would record more than this many window
#: weights φ(t, u) (:func:`write_cells`: 4 bytes each, so 200 MB): a long text under a long primer is then
#: written a few lines at a time instead of asking for gigabytes at once. Ordinary pages fit in one batch.
MAX_BATCH_CELLS = 50_000_000


class SampleError(ConfigError):
    """A request the sampler cannot serve (empty text, negative bias, unknown output type, ...).

    A :class:`graves.config.ConfigError` so that the CLI reports it as one line (exit status 2).
    """


@dataclass(frozen=True)
class SynthesisResult:
    """One synthesised line.

    Attributes:
        offsets: ``(T, 3)`` float32 (dx, dy, eos) of the written text only (a primer is not included);
            raw units when a normaliser was given, else network units.
        phi: ``(T, U)`` float32 window weights φ(t, u) over the full conditioning text ``text`` for the
            steps that produced ``offsets`` (row t is the window when offsets[t] was drawn).
        finished: the end-of-text rule fired (False: the step cap stopped the line).
        text: the conditioning text c' (the primer's text + " " + the line's text when primed).
        inputs: debug: ``(T_in, 3)`` every input fed to the network, the null first input, the
            primer's points and any lead-in included, in the units of ``offsets``.
        attempts: how many times the line was written (more than 1 only with ``retries``).
        lead_in: primed lines: how many points were drawn after the primer but are not in ``offsets``
            (strokes finished while the window was still on the primer's text, see :func:`lead_in`).
        tail: how many of ``offsets`` were drawn after the end-of-text rule fired (``finish_stroke``: the
            rest of the stroke it cut, delayed strokes); −1: the last point drawn before the rule (the
            start of a stroke past the text) was dropped instead; 0 with the paper's rule and for lines
            that did not finish.
    """

    offsets: np.ndarray
    phi: np.ndarray
    finished: bool
    text: str
    inputs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 3), np.float32))
    attempts: int = 1
    lead_in: int = 0
    tail: int = 0


# ============================================================================================ RNG


def check_seed(seed: Any) -> int:
    """``seed`` as an int: a whole number >= 0 (numpy's SeedSequence takes no negative seed); else a
    :class:`SampleError`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SampleError(f"the seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def line_generators(seed: int, n: int, device: str | torch.device = "cpu") -> list[torch.Generator]:
    """``n`` generators, one per line: line i is seeded from ``SeedSequence(seed, spawn_key=(i,))``."""
    seed = check_seed(seed)
    gens = []
    for i in range(n):
        s = int(np.random.SeedSequence(int(seed), spawn_key=(i,)).generate_state(1, np.uint64)[0])
        gens.append(torch.Generator(device=device).manual_seed(s))
    return gens


def _as_generators(generator: Any, n: int, device: torch.device) -> list[torch.Generator]:
    if isinstance(generator, torch.Generator):
        if n == 1:
            return [generator]
        seeds = torch.randint(0, 2**62, (n,), generator=generator, device=generator.device)
        return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return line_generators(int(generator), n, device)
    if isinstance(generator, Sequence) and all(isinstance(g, torch.Generator) for g in generator):
        if len(generator) != n:
            raise SampleError(f"{len(generator)} generators for {n} lines: pass one generator per line")
        return list(generator)
    raise SampleError("generator must be a torch.Generator, one per line, or an int seed")


# ============================================================================================ units


def _stats(normaliser: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean (2,), std (2,)) from a normaliser object, a dict {"mean", "std"}, or None."""
    if normaliser is None:
        return None
    if isinstance(normaliser, dict):
        mean, std = normaliser["mean"], normaliser["std"]
    else:
        mean, std = normaliser.mean, normaliser.std
    mean = np.asarray(mean, dtype=np.float64).reshape(2)
    std = np.asarray(std, dtype=np.float64).reshape(2)
    return mean, std


def normalise(offsets: np.ndarray, normaliser: Any) -> np.ndarray:
    """Raw (dx, dy, eos) → network units: (d − mean) / std on dx, dy. Pure; None is the identity."""
    out = np.array(offsets, dtype=np.float32, copy=True)
    st = _stats(normaliser)
    if st is not None and len(out):
        out[:, :2] = (out[:, :2] - st[0]) / st[1]
    return out


def denormalise(offsets: np.ndarray, normaliser: Any) -> np.ndarray:
    """Network units → raw (dx, dy, eos): d · std + mean on dx, dy. Pure; None is the identity."""
    out = np.array(offsets, dtype=np.float32, copy=True)
    st = _stats(normaliser)
    if st is not None and len(out):
        out[:, :2] = out[:, :2] * st[1] + st[0]
    return out


# ============================================================================================ pieces


def end_of_text(phi: Tensor, lengths: Tensor) -> Tensor:
    """The end-of-text rule (Section 5.3): φ(t, U+1) > φ(t, u) for every 1 ≤ u ≤ U.

    Args:
        phi: ``(B, U_max + 1)`` window weights at u = 1..U_max+1 (a batch padded to its longest text).
        lengths: ``(B,)`` each line's U (≤ U_max).

    Returns:
        ``(B,)`` bool: the window of that line has moved past its last character.
    """
    return _end_check(phi, *_end_masks(lengths.to(device=phi.device, dtype=torch.long), phi.shape[1]))


def _end_masks(lengths: Tensor, U1: int) -> tuple[Tensor, Tensor]:
    """What :func:`_end_check` needs, computed once per batch: the index of u = U + 1 ``(B, 1)`` and the
    positions past each line's text ``(B, U1)`` (u > U)."""
    pos = torch.arange(U1, device=lengths.device)  # (U_max + 1,), position u − 1
    return lengths[:, None], pos[None, :] >= lengths[:, None]


def _end_check(phi: Tensor, after: Tensor, beyond: Tensor) -> Tensor:
    """φ(t, U+1) > max_{u ≤ U} φ(t, u), per row."""
    inside = phi.masked_fill(beyond, float("-inf")).amax(dim=1)  # max_{u ≤ U} φ(t, u), (B,)
    return phi.gather(1, after).squeeze(1) > inside  # φ(t, U + 1) beats it


def _draw(y_hat: Tensor, bias: Tensor, generators: Sequence[torch.Generator], cols: Tensor | None = None) -> Tensor:
    """x_{t+1} ~ Pr(x_{t+1} | y_t) for each row from its own generator, biased by eqs. 61–62.

    Row i gives exactly what ``sample_mixture(mixture_params(y_hat[i:i+1], bias[i]), generators[i])``
    gives (the same draws in the same order: component, two normals, eos; tested), but the arithmetic
    is done once for the batch and only on the chosen component.

    Args:
        y_hat: ``(B, 1 + 6M)``; bias: ``(B, 1)``; generators: B generators.
        cols: ``arange(1 + M, 1 + 6M, M)``, the column offsets of μ̂1, μ̂2, σ̂1, σ̂2, ρ̂ (made if None).

    Returns:
        ``(B, 3)`` (dx, dy, eos).
    """
    B, M = y_hat.shape[0], (y_hat.shape[1] - 1) // 6
    pi = torch.log_softmax(y_hat[:, 1 : 1 + M] * (1 + bias), dim=-1).exp()  # (B, M)  (eqs. 19, 62)
    e = torch.sigmoid(-y_hat[:, 0])  # (B,)  (eq. 18)
    js, zs, eos = [], [], []
    for i, g in enumerate(generators):
        js.append(torch.multinomial(pi[i : i + 1], 1, generator=g))  # (1, 1)
        zs.append(torch.randn((1, 2), generator=g, device=y_hat.device, dtype=y_hat.dtype))
        eos.append(torch.bernoulli(e[i : i + 1], generator=g))  # (1,)
    j = torch.cat(js) if B > 1 else js[0]  # (B, 1)
    z = torch.cat(zs) if B > 1 else zs[0]  # (B, 2)
    if cols is None:
        cols = torch.arange(1 + M, 1 + 6 * M, M, device=y_hat.device)
    chosen = y_hat.gather(1, j + cols)  # (B, 5): μ̂1 μ̂2 σ̂1 σ̂2 ρ̂ of component j
    sigma = torch.exp(chosen[:, 2:4] - bias)  # (B, 2)  (eqs. 21, 61)
    rho = torch.tanh(chosen[:, 4])  # (eq. 22)
    out = torch.empty(B, 3, device=y_hat.device, dtype=y_hat.dtype)
    torch.add(chosen[:, 0], sigma[:, 0] * z[:, 0], out=out[:, 0])  # x1 = μ1 + σ1 z1
    corr = rho * z[:, 0] + torch.sqrt((1.0 - rho * rho).clamp_(min=0.0)) * z[:, 1]
    torch.add(chosen[:, 1], sigma[:, 1] * corr, out=out[:, 1])  # x2 = μ2 + σ2 (ρ z1 + √(1 − ρ²) z2)
    out[:, 2] = torch.cat(eos) if B > 1 else eos[0]
    return out  # (B, 3)


def _index_state(state: Any, keep: Tensor) -> Any:
    """Select batch rows ``keep`` of every tensor in a (nested) recurrent state."""
    if isinstance(state, Tensor):
        return state.index_select(0, keep)
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_index_state(s, keep) for s in state))
    if isinstance(state, (list, tuple)):
        return type(state)(_index_state(s, keep) for s in state)
    return state


# ============================================================================================ steppers


class _ModelStepper:
    """Steps any model through its own ``step`` (the reference the fast path is tested against)."""

    def __init__(self, model: Any, B: int, c: Tensor | None):
        self.model, self.c = model, c
        self.state = model.zero_state(B)

    def step(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        if self.c is None:
            y_hat, self.state = self.model.step(x, self.state)
            return y_hat, None
        y_hat, self.state, phi = self.model.step(x, self.c, self.state)
        return y_hat, phi

    def select(self, keep: Tensor) -> None:
        self.state = _index_state(self.state, keep)
        if self.c is not None:
            self.c = self.c.index_select(0, keep)


class _FastStepper:
    """One step of a handwriting net (eqs. 1–3, 7–11; with a text, eqs. 46–53) with minimal work.

    The same function as ``HandwritingPredictor.step`` / ``HandwritingSynthesizer.step``, arranged for
    speed: every layer's input projection of x_t in one matmul; layer n ≥ 2 reads [h^{n−1}_t, h^n_{t−1}],
    adjacent in the buffer ``h (B, N·H)``, through one matmul with [W_{h(n−1)hn}; W_{hn hn}]; the window
    vector's contribution to every layer, w_t @ W_w = Σ_u φ(t, u) (c_u @ W_w), through one batched
    product with ``cw = c @ W_w`` precomputed per line; the gates updated in place.
    """

    def __init__(self, model: Any, B: int, c: Tensor | None):
        lstm = model.lstm
        N, H = lstm.num_layers, lstm.hidden_size
        self.N, self.H = N, H
        layers = list(lstm.layers)
        p = model.output.weight
        dev, dt = p.device, p.dtype
        I = 3
        self.Wx = torch.cat([l.weight_ih[:, :I].t() for l in layers], dim=1).contiguous()  # (3, N·4H)
        self.b = torch.cat([l.bias for l in layers]).contiguous()  # (N·4H,)
        self.W1h = layers[0].weight_hh.t().contiguous()  # (H, 4H)
        # layer n ≥ 2: [h^{n−1}_t, h^n_{t−1}] @ [W_prev; W_hh], (2H, 4H)
        self.Wcat = [
            torch.cat([l.weight_ih[:, I : I + H].t(), l.weight_hh.t()], dim=0).contiguous() for l in layers[1:]
        ]
        self.peep_if = [torch.stack([l.w_ci, l.w_cf]).contiguous() for l in layers]  # (2, H)
        self.peep_o = [l.w_co.contiguous() for l in layers]  # (H,)
        self.Wout = model.output.weight.t().contiguous()  # (N·H, 1 + 6M)
        self.bout = model.output.bias.contiguous()
        self.h = torch.zeros(B, N * H, device=dev, dtype=dt)  # (B, N·H) h^1..h^N
        self.cell = torch.zeros(B, N * H, device=dev, dtype=dt)  # (B, N·H) c^1..c^N
        self.c = c
        if c is not None:
            K = model.window.linear.out_features // 3
            self.K = K
            V = c.shape[2]
            off = [I, I + H]  # where w starts in layer 1's / layer n's input
            Ww = torch.cat(
                [l.weight_ih[:, off[min(n, 1)] : off[min(n, 1)] + V].t() for n, l in enumerate(layers)], dim=1
            )  # (V, N·4H)
            self.cw = (c @ Ww).contiguous()  # (B, U, N·4H): c_u @ W_w for every position and layer
            self.U = c.shape[1]
            self.u = torch.arange(1, self.U + 2, device=dev, dtype=dt)  # (U + 1,)
            self.Wp = model.window.linear.weight.t().contiguous()  # (H, 3K)  (eq. 48)
            self.bp = model.window.linear.bias.contiguous()
            self.kappa = torch.zeros(B, K, device=dev, dtype=dt)  # κ_0 = 0
            self.w1 = torch.zeros(B, 4 * H, device=dev, dtype=dt)  # w_{t−1} @ W_{w h1} (w_0 = 0)

    def select(self, keep: Tensor) -> None:
        self.h, self.cell = self.h.index_select(0, keep), self.cell.index_select(0, keep)
        if self.c is not None:
            self.cw, self.kappa, self.w1 = (t.index_select(0, keep) for t in (self.cw, self.kappa, self.w1))
            self.c = self.c.index_select(0, keep)

    def _gates(self, z: Tensor, n: int) -> None:
        """Eqs. 7–11 in place: z (B, 4H) pre-activations without peepholes → h^n_t, c^n_t in the buffers."""
        H = self.H
        c = self.cell[:, n * H : (n + 1) * H]  # (B, H) c_{t−1}, updated in place to c_t
        zif = z[:, : 2 * H].view(-1, 2, H)
        zif.addcmul_(self.peep_if[n], c.unsqueeze(1))  # + w_ci ⊙ c_{t−1}, w_cf ⊙ c_{t−1}  (eqs. 7–8)
        zif.sigmoid_()  # i_t, f_t
        g = z[:, 2 * H : 3 * H].tanh_()  # c̃_t
        c.mul_(z[:, H : 2 * H]).addcmul_(z[:, :H], g)  # c_t = f c_{t−1} + i c̃  (eq. 9)
        o = z[:, 3 * H :].addcmul_(self.peep_o[n], c).sigmoid_()  # (eq. 10), peephole on c_t
        h = self.h[:, n * H : (n + 1) * H]
        torch.tanh(c, out=h)
        h.mul_(o)  # h_t = o tanh(c_t)  (eq. 11)

    def step(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        H, N = self.H, self.N
        H4 = 4 * H
        gx = torch.addmm(self.b, x, self.Wx)  # (B, N·4H) W_{i hn} x_t + b^n for every layer
        z1 = torch.addmm(gx[:, :H4], self.h[:, :H], self.W1h)  # (B, 4H) + W_{h1 h1} h^1_{t−1}
        phi = None
        if self.c is not None:
            z1 += self.w1  # + W_{w h1} w_{t−1}  (eq. 52)
        self._gates(z1, 0)
        if self.c is not None:
            K = self.K
            p = torch.addmm(self.bp, self.h[:, :H], self.Wp).exp_()  # (B, 3K): α, β, exp(κ̂)  (eqs. 48–50)
            self.kappa = self.kappa + p[:, 2 * K :]  # κ_t  (eq. 51)
            d = (self.kappa.unsqueeze(2) - self.u).square_().mul_(p[:, K : 2 * K].unsqueeze(2).neg()).exp_()
            phi = torch.bmm(p[:, None, :K], d).squeeze(1)  # (B, U + 1) φ(t, u)  (eq. 46)
            wc = torch.bmm(phi[:, None, : self.U], self.cw).squeeze(1)  # (B, N·4H) w_t @ W_w  (eq. 47)
            self.w1 = wc[:, :H4]
            gx = gx[:, H4:] + wc[:, H4:]  # (B, (N−1)·4H) layers 2..N  (eq. 53)
        else:
            gx = gx[:, H4:]
        for n in range(1, N):
            z = torch.addmm(gx[:, (n - 1) * H4 : n * H4], self.h[:, (n - 1) * H : (n + 1) * H], self.Wcat[n - 1])
            self._gates(z, n)
        y_hat = torch.addmm(self.bout, self.h, self.Wout)  # (B, 1 + 6M)  (eq. 3)
        return y_hat, phi


def _stepper(model: Any, B: int, c: Tensor | None, fast: bool):
    from graves.models.handwriting import HandwritingPredictor, HandwritingSynthesizer

    kind = HandwritingSynthesizer if c is not None else HandwritingPredictor
    if fast and type(model) is kind:
        return _FastStepper(model, B, c)
    return _ModelStepper(model, B, c)


@contextmanager
def _sampling_mode(threads: int | str | None) -> Iterator[None]:
    """No autograd, denormals flushed, a thread count; the previous settings are restored.

    ``threads="auto"`` is one thread at any batch size: a sampling step is ~60 small operations and a few
    small matrix products, so a second thread gains little, and on a machine whose cores are busy with
    other work every hand-off waits for a core. Measured with ``bench/sample_speed.py --paragraph-only``
    (docs/sampling-notes.md): a 6-line paragraph (a batch of 5 lines × 4 candidates) took 0.89× as long
    with two threads as with one on an idle 2-core machine, and 4.4× as long on a busy one.
    """
    if threads == "auto":
        threads = 1
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    was_on = _flushing_denormals()
    supported = torch.set_flush_denormal(True)
    try:
        with torch.inference_mode():
            yield
    finally:
        if supported and not was_on:
            torch.set_flush_denormal(False)
        if threads:
            torch.set_num_threads(old)


def _flushing_denormals() -> bool:
    """Whether torch flushes denormal floats to zero now (``torch.set_flush_denormal`` has no getter)."""
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # a float32 denormal
    return bool((tiny * 1.0).item() == 0.0)


def _model_device_dtype(model: Any) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


def _bias_list(bias: float | Sequence[float], n: int) -> list[float]:
    """One bias per line, as given (checked: finite numbers >= 0)."""
    vals = [bias] * n if isinstance(bias, (int, float)) else list(bias)
    if len(vals) != n:
        raise SampleError(f"{len(vals)} biases for {n} lines")
    return [_check_bias(b) for b in vals]


def _bias_column(bias: float | Sequence[float], n: int, device, dtype) -> Tensor:
    return torch.tensor(_bias_list(bias, n), device=device, dtype=dtype).unsqueeze(1)  # (B, 1)


# ============================================================================================ unconditional


def sample_unconditional(
    model: Any,
    steps: int,
    bias: float | Sequence[float] = 0.0,
    generator: Any = 0,
    batch: int = 1,
    normaliser: Any = None,
    threads: int | str | None = "auto",
    fast: bool = True,
) -> list[np.ndarray]:
    """Unconditional handwriting from the prediction net (Section 4, Fig. 11).

    Starts from the null input x_1 = 0 and feeds each drawn point back in for ``steps`` steps.

    Args:
        model: a :class:`~graves.models.handwriting.HandwritingPredictor` (anything with ``step`` /
            ``zero_state``).
        steps: points per line.
        bias: b ≥ 0 (eqs. 61–62), one for all lines or one per line.
        generator: one ``torch.Generator`` per line, a single generator, or an int seed
            (:func:`line_generators`).
        batch: lines to draw at once.
        normaliser: meta's normaliser: return raw units (else network units).
        threads: torch threads while sampling (restored after); ``"auto"``: one thread (see
            :func:`_sampling_mode`); None leaves torch's setting alone.
        fast: use the fused step path for a ``HandwritingPredictor`` (False: ``model.step``).

    Returns:
        ``batch`` arrays ``(steps, 3)`` float32 of (dx, dy, eos).
    """
    if steps < 1 or batch < 1:
        raise SampleError(f"steps and batch must be >= 1, got steps={steps}, batch={batch}")
    device, dtype = _model_device_dtype(model)
    gens = _as_generators(generator, batch, device)
    b = _bias_column(bias, batch, device, dtype)
    with _sampling_mode(threads):
        st = _stepper(model, batch, None, fast)
        x = torch.zeros(batch, 3, device=device, dtype=dtype)  # x_1 = 0
        out = torch.empty(steps, batch, 3, device=device, dtype=dtype)
        for t in range(steps):
            y_hat, _ = st.step(x)
            x = _draw(y_hat, b, gens)
            out[t] = x
        arr = out.transpose(0, 1).cpu().numpy()
    return [denormalise(a, normaliser) for a in arr]


# ============================================================================================ synthesis


def synthesize(
    model: Any,
    alphabet: Any,
    texts: Sequence[str],
    bias: float | Sequence[float] = 0.0,
    generator: Any = 0,
    max_steps_per_char: int = DEFAULT_STEPS_PER_CHAR,
    primer: Primer | Sequence[Primer | None] | None = None,
    normaliser: Any = None,
    substitute: bool = False,
    threads: int | str | None = "auto",
    fast: bool = True,
    end_rule: bool = True,
    retries: int = 0,
    candidates: int = 1,
    finish_stroke: int = 0,
    _groups: Sequence[int] | None = None,
) -> list[SynthesisResult]:
    """Write several lines at once with the synthesis net (Section 5.3–5.5).

    Each line has its own text, length, bias, primer and generator; the batch is padded to the longest
    text (padding rows of c are zero, so they add nothing to w_t), and a line leaves the batch as soon as
    it stops, so its random draws do not depend on its batch-mates. Its floats may, in their last bits (a
    batched matrix product can take another kernel at another batch size), and over a long line such a
    difference can tip a draw: the same lines in the same batch give the same strokes, bit for bit; one
    line written alone may come out otherwise.

    * **End of text** (Section 5.3): a line stops as soon as φ(t, U+1) > φ(t, u) for all u ≤ U, U its
      text's length (:func:`end_of_text`); the point of that step is not drawn.
    * **The last stroke** (ours, not the paper's; ``graves write`` uses it): the rule often fires with the
      pen down, in the last letter's final stroke, or before the net has added an i-dot or a t-cross.
      With ``finish_stroke`` = N > 0 a line goes on past its rule stroke by stroke, at most N more points:
      the stroke the rule cut is finished, and a stroke that starts over the ink's last
      :data:`DELAYED_REACH` characters, and not right of the ink, is drawn. A stroke that starts right of
      the ink (a letter past the text) or further back ends the line: its first point is dropped, so the
      line ends at the pen-up before it (that point may be the last one drawn before the rule). A line
      whose rule fires before it has drawn a point stops there. ``finish_stroke=0`` (the default) is the
      paper's rule exactly.
    * **Step cap**: at most ``max_steps_per_char · len(text)`` points are drawn for a line
      (``finished=False`` if the cap stopped it).
    * **Retries** (ours, not the paper's): a line stopped by the cap has lost its place in the text (its
      window crawls while the pen scribbles); with ``retries`` > 0 it is written again, up to that many
      times, with a generator seeded from its own, and the first attempt that finishes is kept.
    * **Candidates** (ours, not the paper's): with ``candidates`` = K > 1 each line is written K times side
      by side in one batch (candidate 0 with the line's own generator, the others with generators seeded
      from a copy of it) and the first candidate to reach the end of its text is kept: the one that wrote
      the text in the fewest points (before its last stroke is finished), i.e. the one whose window lost
      its place least. The others stop at
      that step, so a line costs no more steps than its quickest candidate. Ties go to the lower index.
      A line none of whose candidates finished counts as stopped by the cap (and is retried as a whole).
    * **Bias** (eqs. 61–62): σ = exp(σ̂ − b), π = softmax(π̂ (1 + b)); b = 0 is unbiased sampling.
    * **Priming** (Section 5.5, SPEC §4): with a primer (x, c) the text becomes c' = c + " " + s, the
      inputs after the null input are clamped to x for its T points (its last point ends a stroke: the
      pen is lifted before the line's own text), then sampling continues; the end rule is applied only
      after the primer. The primer's points are not part of ``offsets``, nor are strokes the net
      finished while its window was still on the primer's text (:func:`lead_in`).

    Args:
        model: a :class:`~graves.models.handwriting.HandwritingSynthesizer`.
        alphabet: the model's :class:`~graves.data.alphabet.Alphabet`.
        texts: B texts.
        bias: b ≥ 0, one for all lines or one per line.
        generator: one ``torch.Generator`` per line, a single generator, or an int seed.
        max_steps_per_char: the step cap per character of the line's own text.
        primer: one :class:`~graves.data.primer.Primer` for every line, or one (or None) per line; its
            offsets are in raw units when ``normaliser`` is given, else in network units.
        normaliser: meta's normaliser (network ↔ raw units); None: everything in network units.
        substitute: replace characters the alphabet lacks (its documented table) instead of failing.
        threads: torch threads while sampling (restored after); ``"auto"``: one thread (see
            :func:`_sampling_mode`); None leaves torch's setting alone.
        fast: the fused step path (False: ``model.step``, the reference).
        end_rule: apply the end-of-text rule (False: every line runs to its step cap; for benchmarks).
        retries: how many more times a line the step cap stopped is written (``graves write``: 5).
        candidates: how many candidates race for each line (``graves write``: :data:`DEFAULT_CANDIDATES`);
            1 is the paper's plain sampling.
        finish_stroke: at most this many points drawn after the end rule, to finish the stroke it cut
            and add delayed strokes (``graves write``: :data:`DEFAULT_FINISH_STROKE`); 0: the paper's rule.

    Returns:
        B :class:`SynthesisResult`, in the order of ``texts``.

    Raises:
        SampleError: no texts, an empty text, a negative bias, a primer without text.
        graves.data.alphabet.UnknownCharacterError: a character the model cannot write.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if substitute:
        texts = [substitute_text(t) if isinstance(t, str) else t for t in texts]
    if not texts:
        raise SampleError("nothing to write: no texts given")
    B = len(texts)
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            raise SampleError("cannot write an empty text")
    if max_steps_per_char < 1:
        raise SampleError(f"max_steps_per_char must be >= 1, got {max_steps_per_char}")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise SampleError(f"retries must be a whole number >= 0, got {retries!r}")
    if not isinstance(candidates, int) or isinstance(candidates, bool) or candidates < 1:
        raise SampleError(f"candidates must be a whole number >= 1, got {candidates!r}")
    if (not isinstance(finish_stroke, int) or isinstance(finish_stroke, bool)
            or not 0 <= finish_stroke <= MAX_FINISH_STROKE):
        raise SampleError(f"finish_stroke must be a whole number from 0 to {MAX_FINISH_STROKE}, got {finish_stroke!r}")
    primers = list(primer) if isinstance(primer, (list, tuple)) else [primer] * B
    if len(primers) != B:
        raise SampleError(f"{len(primers)} primers for {B} lines")
    device, dtype = _model_device_dtype(model)
    gens = _as_generators(generator, B, device)
    biases = _bias_list(bias, B)  # as given: retries and candidates pass them on unrounded
    b_all = _bias_column(biases, B, device, dtype)  # (B, 1)
    if retries:
        once = dict(max_steps_per_char=max_steps_per_char, normaliser=normaliser, substitute=substitute,
                    threads=threads, fast=fast, end_rule=end_rule, candidates=candidates,
                    finish_stroke=finish_stroke)
        results = synthesize(model, alphabet, texts, bias=bias, generator=gens, primer=primers, **once)
        for attempt in range(2, retries + 2):
            redo = [i for i, r in enumerate(results) if not r.finished]
            if not redo:
                break
            # A fresh generator per line, drawn from the line's own (already advanced) one: deterministic
            # for a seed, and independent of which other lines needed another try.
            fresh = [torch.Generator(device=device).manual_seed(
                int(torch.randint(0, 2**62, (1,), generator=gens[i], device=gens[i].device))) for i in redo]
            again = synthesize(model, alphabet, [texts[i] for i in redo], bias=[biases[i] for i in redo],
                               generator=fresh, primer=[primers[i] for i in redo], **once)
            for i, r in zip(redo, again):
                if r.finished or attempt == retries + 1:
                    results[i] = replace(r, attempts=attempt)
        return results
    if candidates > 1:
        K = candidates
        rows_g = []  # K generators per line: the line's own, then K - 1 seeded from a copy of it
        for g in gens:
            copy = torch.Generator(device=g.device)
            copy.set_state(g.get_state())
            seeds = torch.randint(0, 2**62, (K - 1,), generator=copy, device=g.device).tolist()
            rows_g += [g] + [torch.Generator(device=device).manual_seed(int(sd)) for sd in seeds]
        rep = [i for i in range(B) for _ in range(K)]
        raced = synthesize(model, alphabet, [texts[i] for i in rep], bias=[biases[i] for i in rep],
                           generator=rows_g, max_steps_per_char=max_steps_per_char,
                           primer=[primers[i] for i in rep], normaliser=normaliser, substitute=substitute,
                           threads=threads, fast=fast, end_rule=end_rule, finish_stroke=finish_stroke,
                           _groups=rep)
        results = []
        for i in range(B):
            group = raced[i * K : (i + 1) * K]
            results.append(next((r for r in group if r.finished), group[0]))
        return results

    full, prime_len, prime_pts = [], [], []
    for t, p in zip(texts, primers):
        if p is None:
            full.append(t)
            prime_len.append(0)
            prime_pts.append(np.zeros((0, 3), np.float32))
            continue
        if not p.text.strip():
            raise SampleError(f"the primer {p.source or ''} has no transcription: give its text (--prime-text)")
        if len(p.offsets) < 1:
            raise SampleError(f"the primer {p.source or ''} has no points")
        full.append((substitute_text(p.text) if substitute else p.text).rstrip() + " " + t)
        prime_len.append(len(p.offsets))
        pts = normalise(p.offsets, normaliser)
        # The pen is lifted at the end of the primer: a primer that stops mid-stroke (a generated line
        # the end rule stopped, a cut trace) would otherwise have its last stroke continued by the first
        # points drawn, a stray mark before the line's own text.
        pts[-1, 2] = 1.0
        prime_pts.append(pts)
    own_len = [len(alphabet.encode(t, substitute=substitute)) for t in texts]  # validates characters
    c, lengths = alphabet.one_hot(full, substitute=substitute, device=device)  # (B, U, V), (B,)
    c = c.to(dtype)
    Tp = torch.tensor(prime_len, device=device)  # (B,)
    cap = torch.tensor(prime_len, device=device) + torch.tensor(own_len, device=device) * max_steps_per_char
    T_max = int(cap.max())
    P = torch.zeros(B, max(prime_len) + 1, 3, device=device, dtype=dtype)  # primers, net units
    for i, pts in enumerate(prime_pts):
        if len(pts):
            P[i, : len(pts)] = torch.from_numpy(pts).to(device=device, dtype=dtype)
    U1 = c.shape[1] + 1

    with _sampling_mode(threads):
        st = _stepper(model, B, c, fast)
        # a line at its cap still gets the end rule checked once more, and may then finish its stroke
        T_loop = T_max + 1 + finish_stroke
        inputs = torch.zeros(B, T_loop + 1, 3, device=device, dtype=dtype)  # x_1 = 0, then what is fed
        phis = torch.zeros(B, T_loop, U1, device=device, dtype=dtype)  # φ(t, ·) of every step
        finished = torch.zeros(B, dtype=torch.bool, device=device)
        # After the end rule (finish_stroke > 0): a line is ``ending`` from step end_at on. pos: the x of the
        # point fed at this step (raw units, from the first point after the null input); right: the
        # rightmost x of the ink; x0: pos at the end of the primer; own: the line's own characters.
        ending = torch.zeros(B, dtype=torch.bool, device=device)
        end_at = torch.zeros(B, dtype=torch.long, device=device)
        up_before = torch.ones(B, dtype=torch.bool, device=device)  # the point fed a step earlier lifted the pen
        pos = torch.zeros(B, device=device)  # float32 on every device (raw units: a line is ~10^4 wide)
        right = torch.full((B,), -math.inf, device=device)
        x0 = torch.zeros(B, device=device)
        own = torch.tensor(own_len, device=device, dtype=torch.float32)
        stats = _stats(normaliser)
        mx, sx = (0.0, 1.0) if stats is None else (float(stats[0][0]), float(stats[1][0]))
        dropped = torch.zeros(B, dtype=torch.bool, device=device)  # the last point drawn is dropped (stray)
        fired_at = torch.zeros(B, dtype=torch.long, device=device)  # end_at of the lines that stopped
        stop_t = torch.full((B,), T_loop, dtype=torch.long, device=device)  # the step at which a line stopped
        active = torch.arange(B, device=device)  # original indices of the rows still in the batch
        lengths_a, Tp_a, cap_a, b_a, gens_a = lengths, Tp, cap, b_all, list(gens)
        after, beyond = _end_masks(lengths_a, U1)
        never = torch.zeros(B, dtype=torch.bool, device=device)
        # Racing candidates: rows with the same group id are candidates for one line; when one of them
        # reaches the end of its text, the group's others stop too (unfinished).
        groups_a = None if _groups is None else torch.tensor(list(_groups), dtype=torch.long, device=device)
        won = None if _groups is None else torch.zeros(B, dtype=torch.bool, device=device)
        next_cap = int(cap_a.min())
        M = (model.output.out_features - 1) // 6 if hasattr(model, "output") else None
        cols = None if M is None else torch.arange(1 + M, 1 + 6 * M, M, device=device)
        # φ and the fed inputs are kept per step in lists and written to the buffers once per stretch of
        # steps with the same rows (a "segment"), not once per step.
        seg_phi: list[Tensor] = []
        seg_x: list[Tensor] = []
        phi_t0, x_t0 = 0, 1

        def flush(t_phi_end: int) -> None:
            nonlocal seg_phi, seg_x, phi_t0, x_t0
            if seg_phi:
                phis[active, phi_t0:t_phi_end] = torch.stack(seg_phi, 1)  # (B_a, n, U1)
            if seg_x:
                inputs[active, x_t0 : x_t0 + len(seg_x)] = torch.stack(seg_x, 1)  # (B_a, n, 3)
            seg_phi, seg_x = [], []
            phi_t0 = x_t0 = t_phi_end

        x = torch.zeros(B, 3, device=device, dtype=dtype)
        T_prime = int(Tp.max())
        for t in range(T_loop):
            y_hat, phi = st.step(x)  # ŷ_t predicts the next point; φ(t, u), u = 1..U_max+1
            seg_phi.append(phi)
            eot = _end_check(phi, after, beyond) if end_rule else never  # (B_a,)  Section 5.3
            clamp = (Tp_a > t) if t < T_prime else None  # the next input is still the primer's point t
            if clamp is not None:
                eot = eot & ~clamp
            newly = eot & ~ending  # the rule fires for the first time
            ending = ending | eot
            if finish_stroke:  # its state is kept only when it is asked for: this loop runs every pen step
                lifted = x[:, 2] > 0.5  # x is the point fed at this step, the last one drawn
                end_at = torch.where(newly, t, end_at)
                if t:  # not the null input
                    pos = pos + (x[:, 0].float() * sx + mx)
                if t <= T_prime:
                    x0 = torch.where(Tp_a == t, pos, x0)
                # Past its text a line goes on stroke by stroke: the stroke the rule cut is finished, and
                # a stroke begun after it is drawn if it starts over the ink's last DELAYED_REACH
                # characters and not right of the ink (an i-dot, a t-cross), else its first point (the
                # start of a letter past the text) is dropped and the line ends at the pen-up before it;
                # at most finish_stroke points after the rule.
                width = (right - x0).clamp(min=0) / own
                drawn_pt = t > Tp_a  # the fed point is one the line drew (not the null input, not the primer)
                stray = ending & up_before & drawn_pt & ((pos > right) | (pos < right - DELAYED_REACH * width))
                # a line whose rule fires before it has drawn a point stops there (with nothing drawn, a
                # primed line counts as unfinished, below)
                stop = stray | (ending & (t - end_at >= finish_stroke)) | (newly & ~drawn_pt)
                right = torch.maximum(right, pos) if t else right
            else:
                stray = never
                stop = eot
            done = stop | ((t >= cap_a) & ~ending) if t >= next_cap else stop
            if bool((done | newly).any() if groups_a is not None else done.any()):
                if groups_a is not None:  # a line's first candidate to end its text stops the others
                    won[groups_a[newly]] = True
                    done = done | (won[groups_a] & ~ending)
                flush(t + 1)
                gone = active[done]
                finished[gone] = ending[done]
                stop_t[gone] = t
                dropped[gone] = stray[done]
                fired_at[gone] = end_at[done] if finish_stroke else t
                keep = (~done).nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                active, lengths_a, Tp_a, cap_a, b_a, after, beyond, never = (
                    v.index_select(0, keep) for v in (active, lengths_a, Tp_a, cap_a, b_a, after, beyond, never)
                )
                ending = ending.index_select(0, keep)
                if finish_stroke:
                    end_at, lifted, pos, right, x0, own = (
                        v.index_select(0, keep) for v in (end_at, lifted, pos, right, x0, own)
                    )
                if groups_a is not None:
                    groups_a = groups_a.index_select(0, keep)
                next_cap = int(cap_a.min())
                gens_a = [gens_a[k] for k in keep.tolist()]
                y_hat = y_hat.index_select(0, keep)
                st.select(keep)
                if clamp is not None:
                    clamp = clamp.index_select(0, keep)
            if clamp is not None and bool(clamp.any()):
                x = P[active, t]  # clamped to the primer's trace (SPEC §4)
                free = (~clamp).nonzero().squeeze(1)
                if free.numel():
                    gf = [gens_a[k] for k in free.tolist()]
                    x[free] = _draw(y_hat.index_select(0, free), b_a.index_select(0, free), gf, cols)
            else:
                x = _draw(y_hat, b_a, gens_a, cols)
            seg_x.append(x)
            if finish_stroke:
                up_before = lifted
        else:
            flush(T_loop)
        inputs_np = inputs.cpu().numpy()
        phis_np = phis.cpu().numpy()
        stop_np = stop_t.cpu().numpy()
        fin_np = finished.cpu().numpy()
        drop_np = dropped.cpu().numpy()
        fired_np = fired_at.cpu().numpy()
        len_np = lengths.cpu().numpy()

    results = []
    for i in range(B):
        k = prime_len[i]
        drawn = int(stop_np[i]) - k - int(drop_np[i])  # points drawn after the primer
        ins = inputs_np[i, : 1 + k + drawn]  # x_1 = 0, the primer, the drawn points
        phi_i = phis_np[i, k : k + drawn, : int(len_np[i])]
        lead = lead_in(ins[1 + k :, 2], phi_i, int(len_np[i]) - own_len[i]) if k else 0
        # a primed line whose window ran past the end of c' while it read the primer "ends" at its first
        # free step with nothing drawn: that is not a written line
        fin = bool(fin_np[i]) and (k == 0 or drawn > 0)
        results.append(
            SynthesisResult(
                offsets=denormalise(ins[1 + k + lead :], normaliser),
                phi=np.ascontiguousarray(phi_i[lead:], dtype=np.float32),
                finished=fin,
                text=full[i],
                inputs=denormalise(ins, normaliser),
                lead_in=lead,
                tail=int(stop_np[i] - fired_np[i]) - int(drop_np[i]) if fin else 0,
            )
        )
    return results


def lead_in(eos: np.ndarray, phi: np.ndarray, first: int) -> int:
    """How many points a primed line drew before its own text: the strokes that ended while the window's
    strongest weight was still on the primer's text or the space after it (index < ``first``, the index of
    the line's first character in c').

    After a primer the net sometimes first adds the primer's delayed strokes (an i-dot, a t-cross, a
    dash), placed back over the primer's ink; drawn without the primer they are a stray mark before the
    line. Those strokes are cut from ``offsets``. When no drawn point ever reaches the line's own text,
    nothing is cut (0).

    Args:
        eos: ``(T,)`` the drawn points' end-of-stroke flags (1: the point ends its stroke).
        phi: ``(T, U)`` the window weights at those points.
        first: index of the line's first character in the conditioning text.
    """
    if len(eos) == 0:
        return 0
    on_text = phi.argmax(axis=1) >= first  # (T,)
    start = 0
    for end in np.flatnonzero(eos > 0.5):
        if on_text[start : end + 1].any():
            return int(start)
        start = end + 1
    return int(start) if on_text[start:].any() else 0


# ============================================================================================ models, styles


def shipped_model_dir() -> Path:
    """``graves/weights/``: the shipped synthesis model (package data) and its ``styles.json``."""
    return Path(__file__).resolve().parent / "weights"


def _load_synthesizer(model: Any) -> tuple[Any, dict[str, Any], Path | None]:
    """(model, meta, checkpoint dir) from a checkpoint path, None (the shipped model) or a (model, meta) pair."""
    from graves.models import load_model

    if isinstance(model, tuple):
        net, meta = model
        where = None
    else:
        where = shipped_model_dir() if model is None else Path(model)
        if model is None and not (where / "checkpoint.json").is_file():
            raise SampleError(
                f"no shipped model yet: {where} holds no trained synthesis model. Pass a synthesis checkpoint "
                "with --model (e.g. --model runs/hw-synth/best; train one with `graves train configs/hw-synth.toml`)"
            )
        net, meta = load_model(where)
    kind = meta.get("config", {}).get("model", {}).get("kind")
    if kind != "synthesis":
        raise SampleError(f"{where or 'the model'} is a {kind!r} model; writing text needs a synthesis model")
    if "alphabet" not in meta:
        raise SampleError(f"{where or 'the model'}: its meta has no alphabet")
    return net, meta, where


def load_styles(where: str | Path | None = None) -> list[Primer]:
    """Styles: primers in a ``styles.json`` (a list of {"text", "offsets"}); ``where`` is that file or the
    checkpoint folder that holds it (None: the shipped model's).

    ``offsets`` are ``(T, 3)`` lists of (dx, dy, eos) in raw units, y up. Made by :func:`make_styles` from
    the model's own generated lines (never from dataset strokes); ``graves styles make`` writes them.
    """
    where = shipped_model_dir() if where is None else Path(where)
    if where.name in ("checkpoint.json", "model.safetensors", "trainer.pt"):  # a file of the checkpoint folder
        where = where.parent
    path = where if where.is_file() or where.suffix.lower() == ".json" else where / "styles.json"
    if not path.is_file():
        raise SampleError(f"no styles: {path} does not exist (make them with `graves styles make --model ...`)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, list):
            raise TypeError("not a list of styles")
        styles = [
            Primer(np.asarray(s["offsets"], dtype=np.float32).reshape(-1, 3), str(s["text"]), f"style {i}")
            for i, s in enumerate(raw)
        ]
        for s in styles:
            if not np.isfinite(s.offsets).all():
                raise ValueError(f"{s.source} has a number that is not finite")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise SampleError(f"{path} is not a valid styles file: {exc}") from None
    if not styles:
        raise SampleError(f"{path} holds no styles (make them with `graves styles make --model ...`)")
    return styles


def make_styles(
    model: Any,
    meta: dict[str, Any],
    texts: Sequence[str],
    seeds: Sequence[int],
    bias: float = 1.0,
    max_steps_per_char: int = DEFAULT_STEPS_PER_CHAR,
    candidates: int = DEFAULT_CANDIDATES,
) -> list[dict[str, Any]]:
    """Styles for ``styles.json``: one generated line per (text, seed), written with ``bias``.

    Every line is written by the model itself (line i from the generator of ``line_generators(seeds[i], 1)``),
    so a style is the model's own writing, free of dataset strokes, raced as ``candidates`` candidates as
    ``graves write`` writes. Lines the end rule did not finish are dropped; a kept line's last point is
    marked as the end of a stroke (the pen is lifted at the end). Returns a list of ``{"text", "offsets"
    (raw units, y up, 2 decimals), "seed", "bias"}``.
    """
    if len(texts) != len(seeds):
        raise SampleError(f"{len(texts)} texts for {len(seeds)} seeds")
    from graves.data.alphabet import Alphabet

    alphabet = Alphabet.from_dict(meta["alphabet"])
    for t in texts:
        if bad := alphabet.unknown_characters(t):
            raise SampleError(f"the model cannot write {', '.join(map(repr, bad))} (in {t!r}): give texts it can "
                              "write, one per seed (graves styles make --texts)")
    gens = [line_generators(s, 1)[0] for s in seeds]
    results = synthesize(model, alphabet, list(texts), bias=bias, generator=gens,
                         max_steps_per_char=max_steps_per_char, normaliser=meta.get("normaliser"),
                         candidates=candidates)
    styles = []
    for t, s, r in zip(texts, seeds, results):
        if not r.finished or len(r.offsets) < 2:
            continue
        offsets = np.round(r.offsets.astype(np.float64), 2)
        offsets[-1, 2] = 1.0
        styles.append({"text": t, "seed": int(s), "bias": float(bias), "offsets": offsets.tolist()})
    return styles


def save_styles(styles: list[dict[str, Any]], path: str | Path) -> Path:
    """Write ``styles`` (from :func:`make_styles`) as a ``styles.json`` at ``path``, atomically."""
    from graves.render import write_file

    return write_file(path, (json.dumps(styles, separators=(",", ":")) + "\n").encode("utf-8"))


#: ``graves styles show``: the line every style writes, so they can be compared (our own sentence).
STYLE_SHEET_TEXT = "Quick zebras jump over 7 lazy foxes."


def style_sheet(
    styles: Sequence[Primer],
    text: str = STYLE_SHEET_TEXT,
    model: Any = None,
    bias: float | None = None,
    seed: int = 0,
) -> Handwriting:
    """One line per style: ``text`` written by ``model`` primed with ``styles[i]`` (seed ``seed`` for every
    line, so the lines differ only by their style), to look at styles side by side and choose. Each line
    is labelled "style i" on the page; a style whose line lost its place in the text and was written
    again in pieces (:func:`write`) has two or more lines with its label."""
    if not styles:
        raise SampleError("no styles to show")
    if not isinstance(text, str) or not text.strip() or len(text.splitlines()) != 1:
        raise SampleError(f"the style sheet writes one line of text in every style, got {text!r}")
    from graves.data.alphabet import Alphabet, UnknownCharacterError

    _, meta, _ = _cached_synthesizer(model)
    if bad := Alphabet.from_dict(meta["alphabet"]).unknown_characters(text):
        raise UnknownCharacterError(bad, text, hint="write the sheet's line in characters the model has (--text)")
    lines: list[str] = []
    results: list[SynthesisResult] = []
    labels: list[str | None] = []
    for i, primer in enumerate(styles):
        hw = write(text, model=model, bias=bias, seed=seed, width=len(text), prime=primer)
        lines += hw.lines
        results += hw.results
        labels += [f"style {i}"] * len(hw.lines)
    return Handwriting(lines, results, labels)


# ============================================================================================ pages


def wrap_text(text: str, width: int = 50, keep_blank: bool = False) -> list[str]:
    """Lines of at most ``width`` characters, broken at spaces (a longer word is cut); newlines are kept.

    Blank lines are dropped, or with ``keep_blank`` kept as ``""`` (a paragraph break; never first or last).
    """
    if width < 1:
        raise SampleError(f"the line width must be >= 1, got {width}")
    lines: list[str] = []
    for para in text.splitlines():
        wrapped = textwrap.wrap(para, width=width, break_long_words=True, break_on_hyphens=False)
        if wrapped:
            lines += wrapped
        elif keep_blank and lines and lines[-1]:
            lines.append("")
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _check_outputs(outputs: Sequence[str | Path]) -> list[Path]:
    """Output paths, checked before any sampling: .svg, .png, .pdf, or .json (plotter polylines)."""
    from graves.render import SUFFIXES, check_writable

    paths = [Path(o) for o in outputs]
    if not paths:
        raise SampleError("no output file given (-o FILE.svg or FILE.png)")
    for p in paths:
        if p.suffix.lower() not in SUFFIXES:
            raise SampleError(f"cannot write {p}: the output must end in .svg, .png or .pdf (or .json for plotter paths)")
        check_writable(p)  # a missing permission shows now, not after the sampling
    return paths


def _write_page(lines: Sequence[np.ndarray], outputs: Sequence[Path]) -> list[Path]:
    """Lay the lines (raw offsets, y up) out as a page and write every output with :mod:`graves.render`."""
    from graves.render import write_page

    return [Path(write_page(list(lines), out)) for out in outputs]


#: The largest sampling bias accepted. Any b above ~20 already writes the mode of the most probable
#: component (σ = exp(σ̂ − b) vanishes, eq. 61); far beyond this, π̂ (1 + b) overflows float32 (eq. 62).
MAX_BIAS = 10_000.0


def _check_bias(bias: Any) -> float:
    """``bias`` as a float, or a :class:`SampleError`: a finite number in [0, :data:`MAX_BIAS`]."""
    ok = isinstance(bias, (int, float, np.integer, np.floating)) and not isinstance(bias, bool)
    try:
        ok = ok and math.isfinite(bias) and 0 <= bias <= MAX_BIAS
    except OverflowError:  # an int too large for a float
        ok = False
    if not ok:
        raise SampleError(f"the sampling bias must be a number from 0 to {MAX_BIAS:,.0f} (eqs. 61-62; above ~20 "
                          f"it writes the mode), got {bias!r}")
    return float(bias)


@dataclass
class Handwriting:
    """What :func:`write` returns: a text written as handwriting, line by line, ready to save.

    Attributes:
        lines: the page's lines as written (after wrapping and any substitution); ``""`` for a blank line.
        results: one :class:`SynthesisResult` per line (``offsets`` in raw IAM units, y up; the window
            weights ``phi``; whether the end-of-text rule ``finished`` the line).
        labels: None, or a label per line that the page draws above it (:func:`style_sheet`'s "style i").
    """

    lines: list[str]
    results: list[SynthesisResult]
    labels: list[str | None] | None = None

    def __repr__(self) -> str:
        points = sum(len(r.offsets) for r in self.results)
        return f"Handwriting(lines={self.lines!r}, points={points}, unfinished={self.unfinished})"

    @property
    def offsets(self) -> list[np.ndarray]:
        """Each line's ``(T, 3)`` (dx, dy, end-of-stroke) in raw units, y up: what the renderers take."""
        return [r.offsets for r in self.results]

    @property
    def unfinished(self) -> list[int]:
        """Line numbers (from 1) that the step cap stopped before the end of their text."""
        return [i + 1 for i, r in enumerate(self.results) if not r.finished]

    def strokes(self) -> list[list[np.ndarray]]:
        """Each line's strokes as ``(n, 2)`` absolute pen positions (raw units, y up, the line starting at 0)."""
        from graves.data.strokes import offsets_to_strokes

        return [offsets_to_strokes(o) for o in self.offsets]

    def svg(self, **options: Any) -> str:
        """The page as an SVG document; ``options`` as :func:`graves.render.to_svg` (``colour``,
        ``stroke_width``, ``background``, ``scale``, ``line_gap``, ``margin``; ``animate=100`` draws it stroke
        by stroke as it was written, at 100 pen points a second)."""
        from graves.render import to_svg

        return to_svg(self.offsets, **{"labels": self.labels, **options})

    def png(self, **options: Any) -> bytes:
        """The page as PNG bytes; ``options`` as :func:`graves.render.to_png`."""
        from graves.render import to_png

        return to_png(self.offsets, **{"labels": self.labels, **options})

    def pdf(self, **options: Any) -> bytes:
        """The page as PDF bytes (vector paths); ``options`` as :func:`graves.render.to_pdf`."""
        from graves.render import to_pdf

        return to_pdf(self.offsets, **{"labels": self.labels, **options})

    def save(self, path: str | Path, **options: Any) -> Path:
        """Write the page to ``path`` (.svg, .png, .pdf, or .json plotter polylines), atomically; ``options`` go
        to the renderer (see :meth:`svg`)."""
        from graves.render import save

        return save(path, self.offsets, **{"labels": self.labels, **options})


_MODEL_CACHE: dict[tuple, tuple[Any, dict[str, Any], Path]] = {}


def _cached_synthesizer(model: Any) -> tuple[Any, dict[str, Any], Path | None]:
    """:func:`_load_synthesizer`, remembering the last checkpoint directory (keyed by its path and its
    files' sizes and mtimes), so a program that calls :func:`write` in a loop loads the model once.
    Sampling never changes weights."""
    if isinstance(model, tuple):
        return _load_synthesizer(model)
    where = shipped_model_dir() if model is None else Path(model)
    try:
        stats = [(where / f).stat() for f in ("model.safetensors", "checkpoint.json")]
        key = (str(where.resolve()), *((st.st_size, st.st_mtime_ns) for st in stats))
    except OSError:
        return _load_synthesizer(model)  # let the loader explain what is missing
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = _load_synthesizer(model)
    return _MODEL_CACHE[key]


def write(
    text: str,
    *,
    model: Any = None,
    bias: float | None = None,
    seed: int = 0,
    width: int = 50,
    style: int | None = None,
    prime: str | Path | Primer | None = None,
    prime_text: str | None = None,
    substitute: bool = False,
    data_root: str | Path | None = None,
    retries: int = DEFAULT_RETRIES,
    candidates: int = DEFAULT_CANDIDATES,
    threads: int | str | None = "auto",
    same_hand: bool = False,
    finish_stroke: int = DEFAULT_FINISH_STROKE,
) -> Handwriting:
    """Write ``text`` as handwriting: the Python side of ``graves write``.

    >>> import graves
    >>> hw = graves.write("Hello world", style=1)      # doctest: +SKIP
    >>> hw.save("hello.svg", colour="navy")            # doctest: +SKIP

    The text is wrapped into lines of at most ``width`` characters (at spaces) and every line is written
    in one batch (or a few, for a page too large for one: :data:`MAX_BATCH_CELLS`), line i with the generator
    ``line_generators(seed, n)[i]``. With a style, every line is
    primed (SPEC §4) with it, so the hand stays the same from line to line: a shipped style (``style``) or
    the user's own handwriting (``prime`` + ``prime_text``: JSON strokes, InkML, an IAM-OnDB line id, or a
    :class:`~graves.data.primer.Primer`; see :mod:`graves.data.primer`). With neither, every line is
    written unprimed, as the paper samples them (OCR reads such lines best; the slant may vary a little
    from line to line), or, with ``same_hand=True``, the first line is written alone and primes the others.

    Blank lines in ``text`` are kept as paragraph breaks: an empty line of the page (no points, no seed).
    A line the step cap still stops after all its ``retries`` is written again as two or more shorter
    lines (:data:`MIN_SPLIT_CHARS`), so ``Handwriting.lines`` can hold more lines than the wrapped text.

    Args:
        model: a synthesis checkpoint directory, or a ``(model, meta)`` pair; None: the shipped model in
            :func:`shipped_model_dir` (loaded once per process).
        bias: b ≥ 0 (eqs. 61–62); None: :data:`DEFAULT_BIAS` (a legible default, not the paper's b = 0).
        retries: how many more times a line that lost its place in the text (stopped by the step cap)
            is written before it is kept as it is (``Handwriting.unfinished`` names such lines).
        candidates: how many candidates race for each line; the first to reach the end of its text is
            kept (1: the paper's plain sampling).
        threads: torch threads while sampling, as :func:`synthesize` (restored after).
        same_hand: with no style or primer, prime lines 2, 3, ... with line 1 (``graves write
            --same-hand``): a steadier slant down the page, but the primed lines come out smaller than line 1
            and read less easily (docs/sampling-notes.md, "Style across lines"). Ignored with a style or
            primer, which primes every line anyway.
        finish_stroke: past the end of its text a line may draw at most this many more points, to finish
            the stroke the end rule cut and add delayed strokes (i-dots, t-crosses); 0: the paper's rule
            (:func:`synthesize`).

    Raises:
        SampleError: an empty text, a bad option or style, a primer without its transcription.
        UnknownCharacterError: characters the model has no class for (and ``substitute`` is False).
    """
    if not isinstance(text, str) or not text.strip():
        raise SampleError("nothing to write: the text is empty")
    bias = DEFAULT_BIAS if bias is None else _check_bias(bias)
    if style is not None and prime is not None:
        raise SampleError("choose one of --style and --prime")
    if prime_text is not None and prime is None:
        raise SampleError("--prime-text is the transcription of --prime: give --prime too")
    if not isinstance(same_hand, bool):
        raise SampleError(f"same_hand must be True or False, got {same_hand!r}")
    net, meta, where = _cached_synthesizer(model)
    from graves.data.alphabet import Alphabet

    alphabet = Alphabet.from_dict(meta["alphabet"])
    normaliser = meta.get("normaliser")
    if substitute:  # line by line: the table turns line breaks into spaces, and they must stay
        text = substitute_page(text)
    # the text itself, not the wrapped lines: wrapping would turn a tab into spaces behind the check
    bad = alphabet.unknown_characters("".join(text.splitlines()))
    page = wrap_text(text, width, keep_blank=True)
    lines = [ln for ln in page if ln]
    if not lines:
        raise SampleError("nothing to write: the text is empty")
    if bad and not substitute:
        from graves.data.alphabet import UnknownCharacterError

        raise UnknownCharacterError(bad, text)

    primer = None
    if style is not None:
        if where is None and isinstance(model, tuple):
            raise SampleError("styles live beside a checkpoint folder: with a (model, meta) pair, pass "
                              "prime=load_styles(FOLDER)[N] instead of style=N")
        styles = load_styles(where)
        if not isinstance(style, bool) and isinstance(style, numbers.Integral):
            style = int(style)  # numpy integers too
        if isinstance(style, bool) or not isinstance(style, int) or not 0 <= style < len(styles):
            raise SampleError(f"no style {style!r}: this model has styles 0..{len(styles) - 1}")
        primer = styles[style]
    elif isinstance(prime, Primer):
        primer = prime if prime_text is None else prime.with_text(prime_text)
    elif prime is not None:
        from graves.data.primer import load_primer

        primer = load_primer(prime, text=prime_text, data_root=data_root)
    if primer is not None and not primer.text.strip():
        raise SampleError(f"give the transcription of {primer.source} with --prime-text")
    if primer is not None:
        said = substitute_text(primer.text) if substitute else primer.text
        if bad_primer := alphabet.unknown_characters(said):
            raise SampleError(f"the model cannot write {', '.join(map(repr, bad_primer))} in the transcription of "
                              f"{primer.source} ({primer.text!r}): change its transcription (with --prime-text), or "
                              "ask for the documented substitutions (substitute=True / --substitute)")

    gens = line_generators(seed, len(lines))
    kw = dict(bias=bias, normaliser=normaliser, substitute=substitute, retries=retries, candidates=candidates,
              threads=threads, finish_stroke=finish_stroke)
    if primer is not None or not same_hand:
        groups = _write_lines(net, alphabet, lines, gens, primer, kw)
    else:
        groups = _write_lines(net, alphabet, lines[:1], gens[:1], None, kw)
        if len(lines) > 1:
            text0, first = groups[0][0]
            own = Primer(first.offsets, text0, "line 1") if len(first.offsets) >= 2 else None
            groups += _write_lines(net, alphabet, lines[1:], gens[1:], own, kw)
    if primer is not None:
        for text_i, r in (x for group in groups for x in group):
            if not len(r.offsets) and not r.finished:
                raise SampleError(f"nothing was written after the primer {primer.source or ''} for {text_i!r}: the "
                                  "window reached the end of the text while it read the primer. Is the primer's "
                                  "transcription complete (--prime-text)?")
    # blank lines (paragraph breaks) come back as empty lines; they take no seed, so "a\n\nb" writes
    # the strokes of "a\nb"
    written = iter(groups)
    blank = SynthesisResult(np.zeros((0, 3), np.float32), np.zeros((0, 0), np.float32), True, "")
    out_lines: list[str] = []
    out_results: list[SynthesisResult] = []
    for ln in page:
        for text_i, result in (next(written) if ln else [("", replace(blank))]):
            out_lines.append(text_i)
            out_results.append(result)
    return Handwriting(out_lines, out_results)


#: ``graves write``: a line the step cap still stops after all its retries is wrapped again at half its
#: length and the pieces are written in its place, down to lines of this many characters (``retries=0``
#: turns this off too). The shipped model ends every line of its benchmarks within its retries; this is
#: for text unlike its training lines, such as a 50-letter "word" (docs/sampling-notes.md).
MIN_SPLIT_CHARS = 10


def write_cells(lines: Sequence[str], primer: Primer | None = None, candidates: int = DEFAULT_CANDIDATES,
                max_steps_per_char: int = DEFAULT_STEPS_PER_CHAR, substitute: bool = False,
                finish_stroke: int = DEFAULT_FINISH_STROKE) -> int:
    """How much one batch of ``lines`` asks of the sampler: the cells of its record of the window weights
    φ(t, u), rows (lines × racing candidates) × pen steps (the primer's points, the step cap of the
    longest line and ``finish_stroke``) × characters (the primer's transcription, as substituted with
    ``substitute``, and the longest line). Memory is 4 bytes a cell, and the window's work per step grows with the same product."""
    if not lines:
        return 0
    longest = max(len(ln) for ln in lines)
    points = len(primer.offsets) if primer is not None else 0
    said = None if primer is None else substitute_text(primer.text) if substitute else primer.text
    chars = len(said) + 1 if said is not None else 0
    steps = points + max_steps_per_char * longest + 1 + finish_stroke
    return len(lines) * max(candidates, 1) * steps * (chars + longest + 1)


def _batches(lines: list[str], primer: Primer | None, candidates: int, substitute: bool = False,
             finish_stroke: int = DEFAULT_FINISH_STROKE) -> list[slice]:
    """``lines`` cut into consecutive batches of at most :data:`MAX_BATCH_CELLS` cells (one line at least)."""
    out, start = [], 0
    for end in range(1, len(lines) + 1):
        if end - start > 1 and write_cells(lines[start:end], primer, candidates, substitute=substitute,
                                           finish_stroke=finish_stroke) > MAX_BATCH_CELLS:
            out.append(slice(start, end - 1))
            start = end - 1
    out.append(slice(start, len(lines)))
    return out


def _write_lines(net: Any, alphabet: Any, lines: list[str], gens: list[torch.Generator], primer: Primer | None,
                 kw: dict[str, Any]) -> list[list[tuple[str, SynthesisResult]]]:
    """:func:`synthesize` ``lines``; each comes back as [(text, result)], or, if unfinished after its
    retries and longer than :data:`MIN_SPLIT_CHARS`, as the pieces of it re-wrapped at half its length,
    written the same way (each piece's generator seeded from the line's own, so it stays reproducible).
    The lines go in one batch, or in several when one would be too large (:data:`MAX_BATCH_CELLS`)."""
    results: list[SynthesisResult] = []
    for part in _batches(lines, primer, kw.get("candidates", DEFAULT_CANDIDATES), kw.get("substitute", False),
                         kw.get("finish_stroke", 0)):
        results += synthesize(net, alphabet, lines[part], generator=gens[part], primer=primer, **kw)
    groups: list[list[tuple[str, SynthesisResult]]] = []
    todo: list[tuple[int, list[str], list[torch.Generator]]] = []
    for i, (text, g, r) in enumerate(zip(lines, gens, results)):
        groups.append([(text, r)])
        if r.finished or not kw.get("retries") or len(text) <= MIN_SPLIT_CHARS:
            continue
        pieces = wrap_text(text, math.ceil(len(text) / 2))
        seeds = torch.randint(0, 2**62, (len(pieces),), generator=g, device=g.device).tolist()
        todo.append((i, pieces, [torch.Generator(device=g.device).manual_seed(int(x)) for x in seeds]))
    if todo:  # all the pieces in one batch
        sub = _write_lines(net, alphabet, [p for _, ps, _ in todo for p in ps],
                           [g for _, _, gs in todo for g in gs], primer, kw)
        at = 0
        for i, pieces, _ in todo:
            groups[i] = [x for group in sub[at : at + len(pieces)] for x in group]
            at += len(pieces)
    return groups


def write_to_files(
    text: str,
    outputs: Sequence[str | Path],
    model: Any = None,
    bias: float | None = None,
    seed: int = 0,
    width: int = 50,
    style: int | None = None,
    prime: str | Path | None = None,
    prime_text: str | None = None,
    substitute: bool = False,
    data_root: str | Path | None = None,
    retries: int = DEFAULT_RETRIES,
    candidates: int = DEFAULT_CANDIDATES,
    render: dict[str, Any] | None = None,
    same_hand: bool = False,
    finish_stroke: int = DEFAULT_FINISH_STROKE,
) -> list[Path]:
    """``graves write``: :func:`write` ``text`` and save the page as each of ``outputs`` (.svg / .png /
    .pdf / .json), the paths checked before any sampling. ``render``: options for the renderers (``colour``,
    ``stroke_width``, ``background``, see :func:`graves.render.to_svg`; ``animate``, pen points per second,
    goes to the SVG outputs only and needs one). Lines the step cap stopped are
    named in a warning on stderr. Returns the files written."""
    from graves.render import OutputError

    paths = _check_outputs(outputs)
    render = dict(render or {})
    _check_render_options(render)
    if render.get("animate") is not None and not any(p.suffix.lower() == ".svg" for p in paths):
        raise SampleError("only an SVG page can be animated: add an -o FILE.svg")
    hw = write(text, model=model, bias=bias, seed=seed, width=width, style=style, prime=prime,
               prime_text=prime_text, substitute=substitute, data_root=data_root, retries=retries,
               candidates=candidates, same_hand=same_hand, finish_stroke=finish_stroke)
    if hw.unfinished:
        tries = f" in {retries + 1} tries" if retries else ""
        print(f"graves: warning: line(s) {hw.unfinished} reached the step cap before the end of their text{tries}",
              file=sys.stderr)
    written, failed = [], []
    for p in paths:  # every output is tried: a full disk may still take the small ones
        suffix = p.suffix.lower()
        options = {} if suffix == ".json" else {k: v for k, v in render.items() if k != "animate" or suffix == ".svg"}
        try:
            written.append(hw.save(p, **options))
        except OutputError as exc:
            failed.append(str(exc))
    if failed:
        done = f"; wrote {', '.join(map(str, written))}" if written else ""
        raise OutputError("; ".join(failed) + done + f". The same command (seed {seed}) writes the same lines again")
    return written


def _check_render_options(options: dict[str, Any]) -> None:
    """Fail before sampling on a renderer option that would fail after it."""
    if options.get("animate") is not None:
        from graves.render import RenderError, check_pen_speed

        try:
            check_pen_speed(options["animate"])
        except RenderError as exc:
            raise SampleError(str(exc)) from None
    for key in ("stroke_width", "scale"):
        if key in options:
            v = options[key]
            ok = not isinstance(v, bool) and isinstance(v, (int, float))
            try:
                ok = ok and math.isfinite(v) and v > 0
            except OverflowError:  # an int beyond any float
                ok = False
            if not ok:
                raise SampleError(f"{key.replace('_', ' ')} must be a number > 0, got {v!r}")
    for key in ("colour", "background"):
        if key in options and options[key] is not None:
            from matplotlib.colors import CSS4_COLORS

            # what both SVG and matplotlib read the same way: CSS colour names and #rgb / #rrggbb(aa)
            v = options[key]
            named = isinstance(v, str) and v.lower() in CSS4_COLORS
            hexa = isinstance(v, str) and re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})", v)
            if not (named or hexa):
                raise SampleError(f"{v!r} is not a colour (a CSS name such as 'navy', or '#1f3a93')")


#: ``graves sample``'s bounds for a page: lines on it, points a line of a prediction net (a Fig. 11 line is
#: 700), and points in all (10 million: 120 MB of offsets)
MAX_SAMPLE_LINES = 1_000
MAX_SAMPLE_STEPS = 100_000
MAX_SAMPLE_POINTS = 10_000_000


def sample_checkpoint_to_file(path, output, steps=700, bias=0.0, seed=0, lines=4, text=None, animate=None) -> Path:
    """``graves sample`` for handwriting checkpoints: a page of ``lines`` samples.

    A prediction net writes ``lines`` unconditional lines of ``steps`` points (Fig. 11); a synthesis net
    writes ``text`` ``lines`` times, each line with its own generator (``line_generators(seed, lines)``),
    showing the variety of styles (Fig. 15). Biased with ``bias`` (eqs. 61–62). ``animate``: pen points per
    second, to draw an SVG page as it was written (see :func:`graves.render.to_svg`).
    """
    from graves.models import load_model

    bias = _check_bias(bias)
    out = _check_outputs([output])[0]
    if animate is not None:
        _check_render_options({"animate": animate})
        if out.suffix.lower() != ".svg":
            raise SampleError("only an SVG page can be animated: write to FILE.svg")
    if not 1 <= lines <= MAX_SAMPLE_LINES:
        raise SampleError(f"--lines must be 1 to {MAX_SAMPLE_LINES:,} (one page), got {lines}")
    net, meta = load_model(path)
    kind = meta["config"]["model"]["kind"]
    normaliser = meta.get("normaliser")
    if kind == "handwriting":
        if not 1 <= steps <= MAX_SAMPLE_STEPS:
            raise SampleError(f"--steps must be 1 to {MAX_SAMPLE_STEPS:,} points a line, got {steps}")
        if steps * lines > MAX_SAMPLE_POINTS:
            raise SampleError(f"{lines:,} lines of {steps:,} points is more than the {MAX_SAMPLE_POINTS:,} points "
                              "a page may have: fewer --lines or --steps")
        drawn = sample_unconditional(net, steps, bias, line_generators(seed, lines), batch=lines,
                                     normaliser=normaliser)
    elif kind == "synthesis":
        if not text or not text.strip():
            raise SampleError(f"{path} is a synthesis model: give the text to write with --text")
        from graves.data.alphabet import Alphabet

        alphabet = Alphabet.from_dict(meta["alphabet"])
        texts, gens = [text] * lines, line_generators(seed, lines)
        res = []
        for part in _batches(texts, None, 1, finish_stroke=0):  # a long text many times over: a few lines at a time
            res += synthesize(net, alphabet, texts[part], bias=bias, generator=gens[part], normaliser=normaliser)
        drawn = [r.offsets for r in res]
        stopped = [i + 1 for i, r in enumerate(res) if not r.finished]
        if stopped:  # the paper's plain sampling: shown as drawn, but said
            print(f"graves: warning: line(s) {stopped} reached the step cap before the end of their text",
                  file=sys.stderr)
    else:
        raise SampleError(f"{path} is a {kind!r} model, not a handwriting net")
    if animate is not None:
        from graves.render import save

        return save(out, list(drawn), animate=animate)
    return _write_page(drawn, [out])[0]


#: The texts the default styles are written with (our own sentences).
STYLE_TEXTS = (
    "a quick look at the garden",
    "the morning was bright and still",
    "seven of us went home by boat",
    "writing by hand takes patience",
)

