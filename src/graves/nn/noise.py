"""Weight noise and adaptive weight noise (Section 3.1; Graves 2011, "Practical variational inference").

Both regularisers evaluate the loss and its gradient at *perturbed* weights and apply the update to
the *unperturbed* ones. They are implemented the same way, so they work with any model code (fused
paths, step-by-step loops, ``torch.compile``) without changing parameter names or checkpoints:

1. on entering ``noise.sample(generator)`` the clean weights are saved and the noise is added to the
   model's parameters in place;
2. inside, the caller runs forward **and backward**: ``.grad`` receives ∂L/∂w at the noisy weights;
3. on exit the clean weights are copied back exactly, so ``optimizer.step()`` (called after the
   ``with`` block) applies that gradient to the noise-free weights.

The model must read its parameters during forward (not cache tensors derived from them across calls).
Calling ``optimizer.step()`` inside the block is an error (detected through the tensors' version
counters), since restoring the clean weights would undo it.

**Noise per sequence.** The paper draws fresh weights for every training sequence. Each class has a
``per_sequence`` flag (default ``True``, the paper): `noisy_backward` then runs the forward and
backward passes one sequence at a time, each under a fresh draw, accumulating gradients. With
``per_sequence=False`` one draw is shared by the whole minibatch — a named deviation (faster: one
batched pass instead of B passes); the two coincide at batch size 1. Between the two, ``group_size=G``
(a deviation too) gives each run of G consecutive sequences of the batch its own draw: ⌈B / G⌉ batched
passes, each over G sequences (the last over what is left; ``group_size=1`` is the paper's draw per
sequence). `noisy_backward` reads the resulting ``group_size`` attribute.

Trainer recipe, fixed weight noise (text nets, Table 1)::

    noise = WeightNoise(model, std=0.075, per_sequence=True)   # model already holds the previous run's weights
    gen = torch.Generator(device=device).manual_seed(seed)
    opt.zero_grad()
    loss = noisy_backward(noise, lambda idx: sequence_loss(model, batch, idx), batch_size, gen)
    opt.step()

Adaptive weight noise (MDL / variational loss; Tables 1, 3, 4)::

    model.load_state_dict(previous_weights)                     # μ starts from the previous run
    awn = AdaptiveWeightNoise(model, init_std=0.075)            # after model.to(device)
    opt = GravesRMSprop([*model.parameters(), *awn.parameters()])
    ...
    opt.zero_grad()
    loss = noisy_backward(awn, lambda idx: sequence_loss(model, batch, idx), batch_size, gen)
    (awn.kl() * (batch_size / num_train_sequences)).backward()  # KL / S for each sequence in the loss
    opt.step()
    # evaluate and save the model as it is (its parameters are μ outside `sample`);
    # save awn.state_dict() (log s) with the checkpoint to resume.

``sequence_loss(model, batch, idx)`` must return the loss of sequences ``batch[idx]`` in the same
normalisation as the whole-batch loss (e.g. summed over points and sequences), so that per-sequence
gradients add up to the batch gradient. If the loss is a mean over the batch's sequences, scale the
KL term by ``1 / num_train_sequences`` instead of ``batch_size / num_train_sequences``; but with
``s_gradient="fisher"`` the s gradient scales with the square of the loss, so return the sum (each
sequence's log-loss in nats) and divide every gradient by the batch size after the backward passes, as
``graves.train.training_step`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = ["S_GRADIENTS", "AdaptiveWeightNoise", "WeightNoise", "awn_kl", "noisy_backward"]

#: The estimates of adaptive weight noise's s gradient (`AdaptiveWeightNoise`): SPEC's, then Graves 2011's.
S_GRADIENTS = ("reparam", "fisher")


def _standard_normal(like: Tensor, generator: torch.Generator) -> Tensor:
    """ξ ~ N(0, 1) shaped like ``like``, drawn on the generator's device, then moved to ``like``'s device."""
    xi = torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype)
    return xi.to(like.device)


def _draw_generator(like: Tensor, generator: torch.Generator) -> torch.Generator:
    """The generator for one sample's draws of weights on ``like``'s device: ``generator`` itself when it
    is on that device (so CPU runs draw exactly as before), else a generator on that device seeded with
    one draw from ``generator``: a GPU run then draws its noise where its weights are, instead of drawing
    every weight on the CPU and copying it over (a blocking copy per weight per sequence), and the
    checkpointed CPU generator still fixes every draw. (The ``meta`` device, a test stand-in for a GPU, has
    no generators: it draws on the CPU.)"""
    if like.device == generator.device or like.device.type == "meta":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator(device=like.device).manual_seed(seed)


def _params_of(params: nn.Module | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(params, nn.Module):
        return [p for p in params.parameters() if p.requires_grad]
    return list(params)


class _ModifiedInside(RuntimeError):
    pass


def _check_versions(tensors: list[Tensor], versions: list[int]) -> None:
    if any(t._version != v for t, v in zip(tensors, versions)):
        raise _ModifiedInside(
            "parameters were modified inside noise.sample(); call optimizer.step() after leaving the block"
        )


def _group_size(per_sequence: bool, group_size: int | None) -> int | None:
    """Sequences per draw: ``group_size`` when given, else 1 (per sequence) or None (the whole batch)."""
    if group_size is None:
        return 1 if per_sequence else None
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be an integer ≥ 1 (sequences per draw), got {group_size!r}")
    return group_size


class _Draws:
    """How many sequences of a minibatch share one draw of the weights (`noisy_backward` reads it)."""

    group_size: int | None  # 1: a draw per sequence (the paper); None: one per minibatch; G: one per G sequences

    @property
    def per_sequence(self) -> bool:
        """True when every sequence gets its own draw (the paper)."""
        return self.group_size == 1


class WeightNoise(_Draws):
    """Fixed-variance Gaussian weight noise: w + N(0, std²) for the forward and backward passes (Section 3.1).

    Args:
        params: a module (all its trainable parameters, biases included) or a list of parameters.
        std: the noise standard deviation (0.075 in the paper).
        per_sequence: ``True`` draws fresh noise for each training sequence (the paper); ``False`` one
            draw per minibatch (deviation).
        group_size: if given, one draw for each G consecutive sequences of a minibatch (deviation unless
            1); it replaces ``per_sequence``.
    """

    def __init__(self, params: nn.Module | Iterable[Tensor], std: float = 0.075, per_sequence: bool = True,
                 group_size: int | None = None) -> None:
        self.params = _params_of(params)
        if std < 0:
            raise ValueError(f"noise std must be ≥ 0, got {std}")
        self.std = float(std)
        self.group_size = _group_size(per_sequence, group_size)
        self._clean: list[Tensor] | None = None

    @contextmanager
    def sample(self, generator: torch.Generator) -> Iterator[None]:
        """Add fresh noise to the parameters; restore the clean values on exit (gradients are kept).

        Run forward and backward inside the block, ``optimizer.step()`` after it.
        """
        if self._clean is not None:
            raise RuntimeError("WeightNoise.sample() is not re-entrant")
        with torch.no_grad():
            self._clean = [p.detach().clone() for p in self.params]
            g = _draw_generator(self.params[0], generator)
            for p in self.params:
                p.add_(_standard_normal(p, g), alpha=self.std)  # w + std·ξ
        versions = [p._version for p in self.params]
        try:
            yield
            _check_versions(self.params, versions)
        finally:
            with torch.no_grad():
                for p, clean in zip(self.params, self._clean):
                    p.copy_(clean)
            self._clean = None

    def clean_parameters(self) -> list[Tensor]:
        """The noise-free values (copies inside `sample`, the parameters themselves outside)."""
        return list(self._clean) if self._clean is not None else list(self.params)


def awn_kl(mu_list: Iterable[Tensor], s_list: Iterable[Tensor]) -> Tensor:
    """KL(Q ‖ P) of the adaptive-weight-noise posterior from its prior, with the prior at its optimum.

    Q = Π_i N(μ_i, s_i²); P = N(μ_p, s_p²) for every weight, with the closed-form optimal
    μ_p = mean_i μ_i and s_p² = mean_i (s_i² + (μ_i − μ_p)²) (SPEC §2; Graves 2011). Then

        KL = Σ_i [ log(s_p / s_i) + (s_i² + (μ_i − μ_p)²) / (2 s_p²) − 1/2 ].

    Differentiable in μ and s (the prior's own dependence on them contributes nothing at its optimum).

    Args:
        mu_list: posterior means, tensors of any shapes.
        s_list: posterior standard deviations, matching shapes, > 0.

    Returns:
        the KL in nats, a scalar.
    """
    mu = torch.cat([m.reshape(-1) for m in mu_list])  # (W,)
    s = torch.cat([t.reshape(-1) for t in s_list])  # (W,)
    if mu.shape != s.shape:
        raise ValueError("mu_list and s_list must hold the same number of weights")
    mu_p = mu.mean()
    spread = s * s + (mu - mu_p) ** 2  # s_i² + (μ_i − μ_p)², (W,)
    s2_p = spread.mean()  # s_p²
    return (0.5 * torch.log(s2_p) - torch.log(s) + spread / (2 * s2_p) - 0.5).sum()


class AdaptiveWeightNoise(_Draws):
    """Adaptive weight noise (Graves 2011): a diagonal Gaussian posterior N(μ_i, s_i²) over the weights.

    μ are the model's own parameters (so loading a previous run's weights into the model starts μ
    there, and the model outside `sample` is the posterior mean, used for evaluation). s is held here
    as ``log_s`` (s = exp(log_s), initialised to ``init_std``), one tensor per parameter.

    Inside ``sample(generator)`` the model's parameters are w = μ + s ⊙ ξ, ξ ~ N(0, I) (one sample). On
    exit the gradients are formed from the ∂L/∂w that backward accumulated inside the block: ∂L/∂μ =
    ∂L/∂w (left in ``param.grad``), and for s (added to ``log_s.grad``) one of two estimates of
    ∂E_Q[L]/∂log s, by ``s_gradient``:

    - ``"reparam"`` (SPEC §2's choice): ∂L/∂w ⊙ ξ ⊙ s, the same gradient as autograd through
      w = μ + s ξ. Unbiased, but its sign follows ξ: for most weights it is noise around a small mean;
    - ``"fisher"`` (Graves 2011's estimate): ∂E_Q[L]/∂s² = ½ E_Q[∂²L/∂w²] (exact for a Gaussian Q), with
      the curvature of one sequence's log-loss taken as its squared gradient (the diagonal empirical
      Fisher), so ∂L/∂log s ≈ 2 s² · ½ (∂L/∂w)² = s² (∂L/∂w)². Biased, and never negative whatever the
      draw: the data always ask for less noise, the KL term for more. It scales with the square of the
      loss, so ``loss_fn`` must return each sequence's own log-loss in nats, summed over its points
      and over the slice's sequences (not a mean, not per point, not in bits). With a draw per
      sequence each square is of one sequence's gradient, as Graves 2011 has it; with one draw for G
      sequences it is the square of their summed gradient, whose cross terms (the products of
      gradients taken at the same draw) make it too large in expectation, by about (G − 1) times the
      squared mean gradient at the draw per sequence (a deviation with ``per="group"`` or ``"batch"``).

    The training loss per sequence is E_{w~Q}[L(x|w)] + KL(Q ‖ P) / S with S the number of training
    sequences (`kl`, with the optimal Gaussian prior of `awn_kl`). See the module docstring for the loop.

    Args:
        model: the network; its trainable parameters (or those named in ``names``) get a posterior.
        init_std: initial s for every weight (0.075 in the paper).
        per_sequence: ``True``: one weight sample per sequence (the paper); ``False``: one per minibatch.
        group_size: if given, one weight sample for each G consecutive sequences of a minibatch (a
            deviation unless 1); it replaces ``per_sequence``.
        names: optional subset of ``model.named_parameters()`` names.
        max_std: an upper bound on every s (``None``: none, the paper). It holds from construction on:
            `load_state_dict` and `bound_` (call it after each optimiser step) project log s onto it.
        s_gradient: ``"reparam"`` or ``"fisher"``, the estimate of the s gradient (above).
    """

    def __init__(
        self,
        model: nn.Module,
        init_std: float = 0.075,
        per_sequence: bool = True,
        names: Iterable[str] | None = None,
        max_std: float | None = None,
        group_size: int | None = None,
        s_gradient: str = "reparam",
    ) -> None:
        if init_std <= 0:
            raise ValueError(f"init_std must be > 0, got {init_std}")
        if s_gradient not in S_GRADIENTS:
            raise ValueError(f"s_gradient must be one of {', '.join(S_GRADIENTS)}, got {s_gradient!r}")
        self.s_gradient = s_gradient
        if max_std is not None and not (math.isfinite(max_std) and max_std >= init_std):
            raise ValueError(f"max_std must be a finite number ≥ init_std ({init_std}), got {max_std}")
        self.max_std = max_std
        wanted = None if names is None else set(names)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and (wanted is None or n in wanted)]
        if wanted is not None and len(named) != len(wanted):
            missing = wanted - {n for n, _ in named}
            raise KeyError(f"no trainable parameters named {sorted(missing)}")
        self.model = model
        self.names = [n for n, _ in named]
        self.mu = [p for _, p in named]
        self.log_s = [nn.Parameter(torch.full_like(p.detach(), math.log(init_std))) for p in self.mu]  # log s
        self.group_size = _group_size(per_sequence, group_size)
        self._clean: list[Tensor] | None = None

    def parameters(self) -> Iterator[nn.Parameter]:
        """The log s parameters, to give to the optimiser beside the model's."""
        return iter(self.log_s)

    def bound_(self) -> None:
        """Project every s onto ``s ≤ max_std`` in place (a no-op without a bound)."""
        if self.max_std is None:
            return
        top = math.log(self.max_std)
        with torch.no_grad():
            for ls in self.log_s:
                ls.clamp_(max=top)

    def s(self) -> list[Tensor]:
        """Posterior standard deviations s = exp(log s), differentiable."""
        return [ls.exp() for ls in self.log_s]

    def kl(self) -> Tensor:
        """KL(Q ‖ P) over all the noisy weights with the optimal prior (`awn_kl`); call outside `sample`."""
        if self._clean is not None:
            raise RuntimeError("call kl() outside sample(): the parameters hold sampled weights there")
        return awn_kl(self.mu, self.s())

    @contextmanager
    def sample(self, generator: torch.Generator) -> Iterator[None]:
        """Swap in one weight sample w = μ + s ξ; on exit restore μ and add the s gradient.

        Run forward and backward inside the block, ``optimizer.step()`` after it.
        """
        if self._clean is not None:
            raise RuntimeError("AdaptiveWeightNoise.sample() is not re-entrant")
        with torch.no_grad():
            self._clean = [p.detach().clone() for p in self.mu]
            g = _draw_generator(self.mu[0], generator)
            xi = [_standard_normal(p, g) for p in self.mu]  # ξ ~ N(0, I)
            for p, log_s, x in zip(self.mu, self.log_s, xi):
                p.add_(log_s.exp() * x)  # w = μ + s ξ
            outer_grads = [p.grad for p in self.mu]  # gradients from before this sample, kept aside
            for p in self.mu:
                p.grad = None
        watched = self.mu + self.log_s
        versions = [t._version for t in watched]
        try:
            yield
            _check_versions(watched, versions)
        except BaseException:
            with torch.no_grad():  # discard this sample's partial gradients
                for p, clean, g in zip(self.mu, self._clean, outer_grads):
                    p.copy_(clean)
                    p.grad = g
            self._clean = None
            raise
        with torch.no_grad():
            for p, log_s, x, clean, g_outer in zip(self.mu, self.log_s, xi, self._clean, outer_grads):
                dL_dw = p.grad  # ∂L/∂w at w = μ + s ξ
                p.copy_(clean)  # back to μ
                if dL_dw is None:
                    p.grad = g_outer
                    continue
                if self.s_gradient == "fisher":  # Graves 2011: ½ (∂L/∂w)² for ∂L/∂s², times ∂s²/∂log s = 2 s²
                    dL_dlog_s = dL_dw.square().mul_(log_s.exp().square())
                else:
                    dL_dlog_s = dL_dw * x * log_s.exp()  # reparameterised: ∂L/∂log s = ∂L/∂w · ξ · s
                log_s.grad = dL_dlog_s if log_s.grad is None else log_s.grad.add_(dL_dlog_s)
                p.grad = dL_dw if g_outer is None else g_outer.add_(dL_dw)  # ∂L/∂μ = ∂L/∂w
        self._clean = None

    def mean_state_dict(self) -> dict[str, Tensor]:
        """The model's state dict with the posterior means μ (clean even inside `sample`), for evaluation."""
        state = dict(self.model.state_dict())
        if self._clean is not None:
            for name, clean in zip(self.names, self._clean):
                state[name] = clean
        return state

    def state_dict(self) -> dict[str, Tensor]:
        """log s per parameter name, to checkpoint with the model and resume training."""
        return {name: ls.detach() for name, ls in zip(self.names, self.log_s)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load log s saved by `state_dict` (the same parameter names and shapes)."""
        if set(state) != set(self.names):
            raise KeyError(f"log s names differ: missing {sorted(set(self.names) - set(state))}, "
                           f"unexpected {sorted(set(state) - set(self.names))}")
        with torch.no_grad():
            for name, ls in zip(self.names, self.log_s):
                ls.copy_(state[name])
        self.bound_()


def noisy_backward(
    noise: WeightNoise | AdaptiveWeightNoise,
    loss_fn: Callable[[slice], Tensor],
    batch_size: int,
    generator: torch.Generator,
) -> Tensor:
    """Forward and backward passes under weight noise; gradients accumulate in ``.grad``.

    With ``noise.group_size`` G each run of G sequences gets its own draw:
    ``loss_fn(slice(i, min(i + G, batch_size))).backward()`` under a fresh ``noise.sample(generator)``, for
    i = 0, G, 2G, … < batch_size. G = 1 is the paper's draw per sequence; ``group_size=None`` (deviation)
    is one draw for ``loss_fn(slice(0, batch_size))``. The clean weights are restored afterwards; call
    ``optimizer.step()`` next.

    Args:
        noise: a `WeightNoise` or `AdaptiveWeightNoise`.
        loss_fn: maps a slice of the batch's sequences to their scalar loss.
        batch_size: number of sequences in the batch.
        generator: the `torch.Generator` for every draw.

    Returns:
        the summed loss, detached (a scalar).
    """
    G = noise.group_size or max(batch_size, 1)
    slices = [slice(i, min(i + G, batch_size)) for i in range(0, batch_size, G)]
    total = None
    for idx in slices:
        with noise.sample(generator):
            loss = loss_fn(idx)
            loss.backward()
        total = loss.detach() if total is None else total + loss.detach()
    return total
