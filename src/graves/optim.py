"""Optimisers: Graves' RMSprop (Section 4.2, eqs. 38–45) and a small factory.

Graves' RMSprop is a *centred* RMSprop with momentum: it divides each gradient by a running estimate of
its standard deviation (not its root mean square), with ℸ inside the square root:

    n_i = ℵ n_i + (1 − ℵ) ε_i²                        (eq. 38)
    g_i = ℵ g_i + (1 − ℵ) ε_i                         (eq. 39)
    Δ_i = ℶ Δ_i − ג ε_i / √(n_i − g_i² + ℸ)           (eq. 40)
    w_i = w_i + Δ_i                                    (eq. 41)

with ε_i = ∂L/∂w_i, ℵ = 0.95 (eq. 42), ℶ = 0.9 (eq. 43), ג = 1e-4 (eq. 44), ℸ = 1e-4 (eq. 45).
Here ℵ is ``alpha``, ℶ ``momentum``, ג ``lr`` and ℸ ``eps``. n, g and Δ start at zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from graves.config import ConfigError

__all__ = ["GravesRMSprop", "build_optimizer"]


class GravesRMSprop(torch.optim.Optimizer):
    """Centred RMSprop with momentum, exactly as eqs. 38–45 (ℸ inside the square root).

    State per parameter: ``n`` (eq. 38), ``g`` (eq. 39), ``delta`` (Δ, eq. 40) and ``step`` — all tensors,
    so ``state_dict()`` / ``load_state_dict()`` round-trip and can be stored as safetensors.

    Args:
        params: parameters or parameter groups.
        lr: ג (eq. 44).
        alpha: ℵ, the decay of the running averages (eq. 42).
        momentum: ℶ (eq. 43).
        eps: ℸ, added inside the square root (eq. 45).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,
        alpha: float = 0.95,
        momentum: float = 0.9,
        eps: float = 1e-4,
    ) -> None:
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"invalid alpha {alpha}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"invalid momentum {momentum}")
        if eps <= 0:
            raise ValueError(f"invalid eps {eps}")
        super().__init__(params, dict(lr=lr, alpha=alpha, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter with a gradient (eqs. 38–41)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, alpha, momentum, eps = group["lr"], group["alpha"], group["momentum"], group["eps"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                if w.grad.is_sparse:
                    raise RuntimeError("GravesRMSprop does not support sparse gradients")
                epsilon = w.grad  # ε_i = ∂L/∂w_i
                state = self.state[w]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["n"] = torch.zeros_like(w, memory_format=torch.preserve_format)
                    state["g"] = torch.zeros_like(w, memory_format=torch.preserve_format)
                    state["delta"] = torch.zeros_like(w, memory_format=torch.preserve_format)
                n, g, delta = state["n"], state["g"], state["delta"]
                state["step"] += 1
                n.mul_(alpha).addcmul_(epsilon, epsilon, value=1 - alpha)  # (eq. 38)
                g.mul_(alpha).add_(epsilon, alpha=1 - alpha)  # (eq. 39)
                # n − g² ≥ 0 exactly; the clamp only removes float rounding below zero.
                denom = n.addcmul(g, g, value=-1).clamp_(min=0).add_(eps).sqrt_()  # √(n − g² + ℸ)
                delta.mul_(momentum).addcdiv_(epsilon, denom, value=-lr)  # (eq. 40)
                w.add_(delta)  # (eq. 41)
        return loss


def build_optimizer(name: str, params: Iterable[Tensor] | Iterable[dict[str, Any]], **kw: Any) -> torch.optim.Optimizer:
    """An optimiser by name; keyword arguments go to its constructor.

    - ``"sgd"``: ``torch.optim.SGD`` with momentum (the text nets, Section 3; the paper uses lr 1e-4 and
      momentum 0.99 for Penn Treebank, 0.9 for enwik8 — set them from the config). Defaults here:
      lr 1e-4, momentum 0.9. Torch's form v ← μv + ε, w ← w − lr·v follows the same trajectory as
      Δ ← μΔ − lr·ε, w ← w + Δ at a constant learning rate.
    - ``"rmsprop"``: `GravesRMSprop` (eqs. 38–45) with the paper's defaults.
    - ``"adam"``: ``torch.optim.Adam`` (not in the paper) with torch's defaults.
    """
    key = name.lower()
    if key == "sgd":
        kw.setdefault("lr", 1e-4)
        kw.setdefault("momentum", 0.9)
        return torch.optim.SGD(params, **kw)
    if key == "rmsprop":
        return GravesRMSprop(params, **kw)
    if key == "adam":
        return torch.optim.Adam(params, **kw)
    raise ConfigError(f"unknown optimizer {name!r}; expected 'sgd', 'rmsprop' or 'adam'")


def optimizer_from_config(o: Any, params: Iterable[Tensor] | Iterable[dict[str, Any]]) -> torch.optim.Optimizer:
    """The optimiser of an ``[optim]`` table (`graves.config.OptimConfig`), given only the settings it takes."""
    key = o.name.lower()
    if key == "sgd":
        return build_optimizer(key, params, lr=o.lr, momentum=o.momentum)
    if key == "rmsprop":
        return build_optimizer(key, params, lr=o.lr, momentum=o.momentum, alpha=o.alpha, eps=o.eps)
    return build_optimizer(o.name, params, lr=o.lr)
