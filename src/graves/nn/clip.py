"""Elementwise derivative clipping inside backpropagation (Section 2.1; Section 4.2).

The paper clips *derivatives*, not weights or global gradient norms: for handwriting the derivatives of
the loss with respect to the network outputs ŷ_t (eq. 17) are clamped to [−100, 100]. This module gives
the building block: a function that is the identity in the forward pass and clamps the incoming gradient
in the backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["clip_gradient"]


class _ClipGradient(torch.autograd.Function):
    """Identity forward; backward clamps the gradient elementwise to [−bound, bound]."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:  # noqa: D102
        ctx.bound = float(bound)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        return grad.clamp(-ctx.bound, ctx.bound), None


def clip_gradient(x: Tensor, bound: float | None) -> Tensor:
    """Return ``x`` unchanged; in the backward pass clamp ∂L/∂x elementwise to [−bound, bound].

    Used on the output activations ŷ_t (eq. 17) with ``bound=100`` for the handwriting nets (Section 4.2).
    ``bound=None`` is the identity in both passes (no clipping).

    Args:
        x: any tensor, shape ``(...)``.
        bound: the clip range a > 0, or ``None``.

    Returns:
        a tensor equal to ``x``, shape ``(...)``.
    """
    if bound is None:
        return x
    if bound <= 0:
        raise ValueError(f"clip bound must be positive, got {bound}")
    return _ClipGradient.apply(x, bound)
