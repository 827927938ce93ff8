"""Text predictor (Section 3): one-hot inputs, a deep peephole LSTM with skip connections, softmax outputs.

    h^1_t = LSTM(W_{i h1} x_t + W_{h1 h1} h^1_{t-1} + b^1)                              (eq. 1)
    h^n_t = LSTM(W_{i hn} x_t + W_{h(n-1) hn} h^{n-1}_t + W_{hn hn} h^n_{t-1} + b^n)       (eq. 2)
    ŷ_t   = b_y + Σ_n W_{hn y} h^n_t                                                       (eq. 3)
    Pr(x_{t+1} = k | y_t) = y^k_t = exp(ŷ^k_t) / Σ_k' exp(ŷ^k'_t)                          (eq. 12)

Inputs are symbol ids ``x_ids (T, B)``; the id :data:`NULL` (−1) is the null input vector (all zeros)
that begins every sequence (Section 2: x_1 is null, so the net predicts x_2 with no prior information).

Two ways to compute ``W_{i hn} x_t`` for a one-hot ``x_t``, with the same parameters and the same maths
(``tests/test_text_task.py`` proves them equal, values and gradients):

* **dense**: build the one-hot ``(T, B, V)`` and run :class:`graves.nn.lstm.DeepLSTM` on it; fine for
  characters and bytes (V ≤ a few hundred);
* **lookup**: one-hot × W_ih is column ``x_t`` of W_ih, so the input projection is a gather of the
  columns ``W_ih[:, :V][:, x_ids]`` — for the 10,000-word vocabulary a dense one-hot would be a
  (T·B, 10⁴) × (10⁴, 4H) product per layer in each direction.

The model owns no recurrent state: ``state`` (one :class:`LSTMState` per layer) is passed in and
returned, so truncated BPTT, dynamic evaluation, priming and sampling all use the same ``forward``.

Shapes: T time, B batch, V vocabulary, H cells per layer, N layers (``docs/internals.md``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graves.config import ModelConfig
from graves.nn.clip import clip_gradient
from graves.nn.lstm import DeepLSTM, LSTMState, PeepholeLSTM, lstm_fused, lstm_reference

__all__ = ["NULL", "LOOKUP_THRESHOLD", "TextPredictor", "one_hot_null"]

#: The id of the null input vector (all zeros) that begins a sequence (Section 2).
NULL = -1

#: Vocabularies larger than this use the lookup input path by default (``lookup=None``).
LOOKUP_THRESHOLD = 512


def one_hot_null(x_ids: Tensor, V: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot vectors of ``x_ids (...)`` → ``(..., V)``; the id :data:`NULL` gives the zero vector."""
    valid = x_ids >= 0  # (...)
    x = F.one_hot(x_ids.clamp(min=0), V).to(dtype)  # (..., V)
    return x * valid.unsqueeze(-1).to(dtype)


class TextPredictor(nn.Module):
    """Deep peephole LSTM text predictor (eqs. 1–3, 7–11, 12).

    Args:
        cfg: the ``[model]`` table: ``hidden_size`` H, ``num_layers`` N, ``lstm_clip`` (derivative
            clipping of the gate pre-activations, Section 2.1; 1.0 for the text nets), ``output_clip``
            (clipping of ∂L/∂ŷ; the paper uses none for text), ``fused``.
        vocab_size: V, the number of input and output classes (49 for PTB characters, 10,000 for PTB
            words, 205 for enwik8 bytes).
        lookup: compute the one-hot input projection as a column lookup (True), as a dense one-hot
            product (False), or choose by size (None: lookup when V > :data:`LOOKUP_THRESHOLD`).

    Parameters: ``lstm`` (a :class:`DeepLSTM` with input size V: layer n's ``weight_ih`` is
    ``(4H, V + H·[n>1])``, the first V columns being W_{i hn}) and ``output`` (``nn.Linear(N·H, V)``,
    eq. 3). The state dict is the same whichever input path is used.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, lookup: bool | None = None):
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        self.vocab_size = vocab_size
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.num_layers
        self.output_clip = cfg.output_clip
        self.lookup = vocab_size > LOOKUP_THRESHOLD if lookup is None else bool(lookup)
        self.lstm = DeepLSTM(vocab_size, cfg.hidden_size, cfg.num_layers, clip=cfg.lstm_clip, fused=cfg.fused)
        self.output = nn.Linear(cfg.num_layers * cfg.hidden_size, vocab_size)  # (eq. 3)

    def zero_state(self, batch_size: int, device=None, dtype=None) -> list[LSTMState]:
        """One zero ``LSTMState`` per layer, each tensor ``(B, H)``."""
        return self.lstm.zero_state(batch_size, device, dtype)

    def forward(self, x_ids: Tensor, state: list[LSTMState] | None = None) -> tuple[Tensor, list[LSTMState]]:
        """Run the net over a sequence of symbols.

        Args:
            x_ids: ``(T, B)`` long, symbol ids in [0, V) or :data:`NULL` for the null input.
            state: one ``LSTMState`` per layer (each ``(B, H)``), or None for zeros.

        Returns:
            ``logits (T, B, V)``, the unnormalised ŷ_t of eq. 3 (the softmax of eq. 12 is applied by
            the loss / sampler), and the final state of each layer.
        """
        if x_ids.dim() != 2:
            raise ValueError(f"x_ids must be (T, B), got shape {tuple(x_ids.shape)}")
        if state is None:
            state = self.zero_state(x_ids.shape[1], x_ids.device)
        if self.lookup:
            h_all, state = self._deep_lstm_lookup(x_ids, state)  # (T, B, N·H)
        else:
            x = one_hot_null(x_ids, self.vocab_size, self.output.weight.dtype)  # (T, B, V)
            h_all, state = self.lstm(x, state)  # (T, B, N·H)   (eqs. 1–2)
        y_hat = self.output(h_all)  # (T, B, V)   (eq. 3)
        return clip_gradient(y_hat, self.output_clip), state

    # ----------------------------------------------------------------------------------------------
    # lookup input path
    # ----------------------------------------------------------------------------------------------

    def _deep_lstm_lookup(self, x_ids: Tensor, state: list[LSTMState]) -> tuple[Tensor, list[LSTMState]]:
        """Eqs. 1–2 with W_{i hn} x_t computed as a column gather; same values as the dense path."""
        V = self.vocab_size
        valid = (x_ids >= 0).unsqueeze(-1)  # (T, B, 1): the null input projects to zero
        ids = x_ids.clamp(min=0)  # (T, B)
        outputs, new_state = [], []
        h = None
        for layer, s in zip(self.lstm.layers, state):
            # one-hot x_t × W_{i hn}ᵀ = row x_t of W_{i hn}ᵀ   (eqs. 1–2)
            x_proj = F.embedding(ids, layer.weight_ih[:, :V].t()) * valid  # (T, B, 4H)
            h, s_new = _layer_with_projection(layer, h, x_proj, s, V)  # (T, B, H)
            outputs.append(h)
            new_state.append(s_new)
        return torch.cat(outputs, dim=2), new_state  # (T, B, N·H)


def _layer_with_projection(
    layer: PeepholeLSTM, h_below: Tensor | None, x_proj: Tensor, state: LSTMState, V: int
) -> tuple[Tensor, LSTMState]:
    """One layer of eq. 1 (``h_below`` None) or eq. 2 with the input term given precomputed.

    Args:
        layer: the layer, whose ``weight_ih`` is ``(4H, V + H·[h_below given])``.
        h_below: ``(T, B, H)`` the layer below's outputs h^{n-1}, or None for layer 1.
        x_proj: ``(T, B, 4H)`` W_{i hn} x_t for every step.
        state: ``LSTMState`` each ``(B, H)``.

    Returns:
        ``h (T, B, H)`` and the final ``LSTMState``.
    """
    if h_below is None:
        x = x_proj.new_zeros(*x_proj.shape[:2], 0)  # (T, B, 0): layer 1 has no other input
    else:
        x = h_below  # (T, B, H)
    run = lstm_fused if layer.fused else lstm_reference
    return run(x, LSTMState(*state), layer.weight_ih[:, V:], layer.weight_hh, layer.bias, layer.w_ci, layer.w_cf,
               layer.w_co, layer.clip, x_proj=x_proj)
