"""Inside the network: what each hidden layer does, how big its gradients and updates are, and each unit's picture.

    record = layer_record(model, yx, before)     # one dict per Linear layer, for metrics.jsonl
    maps = unit_maps(model, height, width)       # per hidden layer, (units, h, w) activations over the picture

A hidden layer is Linear -> (BatchNorm) -> activation. On one batch of coordinates (the
evaluation batch) it reports the fraction of **dead** units (the activation's `dead`
predicate holds on every sample: a ReLU that outputs 0 everywhere passes no gradient and
never recovers) and of **saturated** units (`saturated` on every sample: tanh or sigmoid
pinned at an end), and the mean and standard deviation of its pre-activations (after
BatchNorm where there is one, i.e. what the activation sees). Every Linear layer, the
output layer too, reports its weight norm, the gradient norm of the last step (what is
left in `.grad` after the optimizer's step) and the last step's update relative to the
weights, ||W - W_before|| / ||W_before||, from `snapshot` taken just before that step.
Norms are Frobenius norms of the weight matrices (biases left out).

`LayerStatistics` is the probe (`overfit.probes`) that records these at every evaluation,
as "layers"; `default_probes()` is what every run recorded in a run folder measures.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from .activations import ACTIVATIONS
from .coords import region_grid
from .probes import Probe
from .spectrum import BandErrors


def hidden_layers(model: nn.Module) -> list[tuple[nn.Linear, nn.BatchNorm1d | None, Any]]:
    """(Linear, BatchNorm or None, ActivationLayer) for each hidden layer of a CoordinateMLP, in order."""
    from .models import ActivationLayer

    layers, pending = [], list(model.mlp)
    while pending:
        linear = pending.pop(0)
        if not pending:  # the output layer
            break
        norm = pending.pop(0) if isinstance(pending[0], nn.BatchNorm1d) else None
        act = pending.pop(0)
        assert isinstance(linear, nn.Linear) and isinstance(act, ActivationLayer), model.mlp
        layers.append((linear, norm, act))
    return layers


def linears(model: nn.Module) -> list[nn.Linear]:
    """Every Linear layer of the MLP, the output layer last."""
    return [m for m in model.mlp if isinstance(m, nn.Linear)]


@torch.no_grad()
def forward_layers(model: nn.Module, yx: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(pre-activation, activation) of each hidden layer for coordinates yx (N, 2): each (N, units)."""
    h = model.encoding(model.scaling(yx))
    out = []
    for linear, norm, act in hidden_layers(model):
        pre = linear(h)
        if norm is not None:
            pre = norm(pre)
        h = act(pre)
        out.append((pre, h))
    return out


def snapshot(model: nn.Module) -> list[torch.Tensor]:
    """Copies of the Linear weights, for the update ratio of the step about to be taken."""
    return [m.weight.detach().clone() for m in linears(model)]


def _number(x: float) -> float | None:
    """A JSON-safe float: None for NaN or infinity."""
    return x if math.isfinite(x) else None


@contextmanager
def capture(model: nn.Module) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """While open, record each hidden layer's (pre-activation, activation) of the model's forward passes.

    Lets an evaluation that runs the model anyway (its batch metrics) supply the layer
    statistics without a second forward pass. The list holds one pair per hidden layer once
    the block ends (several passes are concatenated along the batch).
    """
    chunks: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in hidden_layers(model)]

    def hook(i: int) -> Any:
        return lambda module, inputs, output: chunks[i].append((inputs[0].detach(), output.detach()))

    handles = [act.register_forward_hook(hook(i)) for i, (_, _, act) in enumerate(hidden_layers(model))]
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()
        if all(chunks):  # one pass (the usual case) is used as it is, several are joined
            seen.extend(c[0] if len(c) == 1 else (torch.cat([p for p, _ in c]), torch.cat([a for _, a in c])) for c in chunks)


def unit_states(activation: str, a: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(dead, saturated) per unit of activations `a` (samples, units): whether the state holds on every sample;
    None where the activation has no such state."""
    act = ACTIVATIONS[activation]
    dead = act.dead(a).all(dim=0) if act.dead is not None else None
    saturated = act.saturated(a).all(dim=0) if act.saturated is not None else None
    return dead, saturated


@torch.no_grad()
def layer_record(model: nn.Module, yx: torch.Tensor | None = None, before: list[torch.Tensor] | None = None,
                 seen: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> list[dict[str, Any]]:
    """One dict per Linear layer (hidden layers first, then "output"), JSON-ready.

    The hidden layers' statistics come from `seen` (what `capture` recorded) or from a
    forward pass of coordinates `yx`. Hidden layers: units, dead, saturated (fractions of
    units; None where the activation has no such state), pre_mean, pre_std. Every layer:
    weight_norm, grad_norm (None before the first step), update_ratio (None without `before`).
    """
    records: list[dict[str, Any]] = []
    names = [layer.name for _, _, layer in hidden_layers(model)]
    if not seen:
        if yx is None:
            raise ValueError("layer_record needs coordinates or captured activations")
        seen = forward_layers(model, yx)
    for i, (pre, a) in enumerate(seen):
        dead, saturated = unit_states(names[i], a)
        records.append({
            "layer": str(i + 1), "units": int(a.shape[1]),
            "dead": float(dead.float().mean()) if dead is not None else None,
            "saturated": float(saturated.float().mean()) if saturated is not None else None,
            "pre_mean": _number(float(pre.mean())), "pre_std": _number(float(pre.std())),
        })
    records.append({"layer": "output", "units": int(linears(model)[-1].out_features)})
    for k, (record, linear) in enumerate(zip(records, linears(model))):
        weight = linear.weight.detach()
        norm = float(weight.norm())
        record["weight_norm"] = _number(norm)
        record["grad_norm"] = _number(float(linear.weight.grad.norm())) if linear.weight.grad is not None else None
        record["update_ratio"] = (_number(float((weight - before[k]).norm()) / max(float(before[k].norm()), 1e-30))
                                  if before is not None else None)
    return records


class LayerStatistics(Probe):
    """Probe: record["layers"] = `layer_record` of the evaluation batch's own forward pass (no second pass),
    with the update ratio of the step that led to the evaluation (weights copied just before it)."""

    def __init__(self) -> None:
        self._before: tuple[int, list[torch.Tensor]] | None = None  # (the evaluation's step, the weights before its update)
        self._yx: torch.Tensor | None = None
        self._seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def before_update(self, trainer: Any) -> None:
        self._before = (trainer.step + 1, snapshot(trainer.model))

    @contextmanager
    def around_batch(self, trainer: Any, yx: torch.Tensor) -> Iterator[None]:
        self._yx = yx
        with capture(trainer.model) as seen:
            self._seen = seen  # filled when the block ends
            yield

    def after_dense(self, trainer: Any, record: dict[str, Any], prediction: Any) -> None:
        before = self._before[1] if self._before is not None and self._before[0] == trainer.step else None
        record["layers"] = layer_record(trainer.model, self._yx, before, self._seen)
        self._yx, self._seen = None, []


def default_probes() -> list[Probe]:
    """What every run recorded in a run folder measures at each evaluation, fresh for one trainer:
    "layers" (`LayerStatistics`) and "bands" (`spectrum.BandErrors`), in that order."""
    return [LayerStatistics(), BandErrors()]


def low_res_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) with the picture's aspect ratio and the longer side `long_side` (never more than the picture)."""
    scale = min(1.0, long_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@torch.no_grad()
def unit_maps(model: nn.Module, height: int, width: int, long_side: int = 64) -> list[np.ndarray]:
    """Each hidden unit's activation over the whole picture on a low-resolution grid: per layer (units, h, w) float32.

    Row 0 is the top of the picture, as in every picture overfit writes. The model is put
    in eval mode for the pass (BatchNorm uses its running statistics) and restored after.
    """
    h, w = low_res_size(height, width, long_side)
    device = next(model.parameters()).device
    yx = region_grid(-0.5, height - 0.5, -0.5, width - 0.5, h, w, device=device)
    training = model.training
    model.eval()
    try:
        layers = forward_layers(model, yx)
    finally:
        model.train(training)
    return [a.float().T.reshape(a.shape[1], h, w).cpu().numpy() for _, a in layers]


def layer_weights(model: nn.Module, layer: int) -> np.ndarray:
    """The incoming weights of hidden layer `layer` (1-based): (units, fan_in) float32."""
    return linears(model)[layer - 1].weight.detach().float().cpu().numpy()
