"""Function-preserving widening (Net2Net's "wider" operator with zero-initialised fan-in).

Loads the weights of a trained network into a wider network of the same structure, so that the
wider one computes exactly what the trained one did and training continues from there with more
channels. For every tensor of the target whose name is in the source:

* same shape: copied;
* same rank and every dimension at least the source's: the source fills the leading slice
  ``[:n0, :n1, ...]``; the target's other entries keep their fresh initialisation, except the
  *fan-in of the old channels from the new ones* (a conv or linear weight ``[out, in, ...]``:
  ``[:out_old, in_old:]``), which is set to zero. Old channels therefore read only old channels
  and keep their values; the new channels start random and feed nothing until training moves
  the zeroed weights (the LoRA trick: one side zero, the other random, so both receive gradients
  once the first step has moved the zeros).

Valid for convs, linears and batch norms (per-channel vectors and running statistics are
leading-sliced; a new channel's statistics start at mean 0, variance 1). A source tensor larger
than its target, a rank change, or a target tensor the source lacks is refused by name: widening
never drops a trained weight silently and never guesses where a new layer goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class WidenReport:
    """What :func:`widen_into` did, tensor by tensor names."""

    copied: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.copied)} tensors copied, {len(self.widened)} widened"


def _leading(shape: torch.Size) -> tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)


def widen_into(source: dict[str, torch.Tensor], model: nn.Module) -> WidenReport:
    """Load ``source`` (a state dict of the narrower network) into ``model`` (the wider one), in place.

    Raises ``ValueError`` naming the tensors that cannot be widened (missing from the source, missing
    from the model, a different rank, or a dimension that shrinks).
    """
    target = model.state_dict()
    missing = sorted(set(target) - set(source))
    unexpected = sorted(set(source) - set(target))
    if missing or unexpected:
        raise ValueError(f"cannot widen: tensors missing from the source {missing[:5]}, not in the model {unexpected[:5]}")
    bad = [f"{k} {tuple(source[k].shape)} -> {tuple(t.shape)}" for k, t in target.items()
           if source[k].dim() != t.dim() or any(s > n for s, n in zip(source[k].shape, t.shape))]
    if bad:
        raise ValueError(f"cannot widen (rank change or a smaller dimension): {bad[:5]}")
    report = WidenReport()
    new_state: dict[str, torch.Tensor] = {}
    for name, t in target.items():
        s = source[name].to(t.dtype)
        if s.shape == t.shape:
            new_state[name] = s.clone()
            report.copied.append(name)
            continue
        w = t.clone()
        if w.dim() >= 2 and s.shape[1] < w.shape[1]:  # old outputs must not read the new inputs
            w[: s.shape[0], s.shape[1]:] = 0
        w[_leading(s.shape)] = s
        new_state[name] = w
        report.widened.append(name)
    model.load_state_dict(new_state, strict=True)
    return report


__all__ = ["WidenReport", "widen_into"]
