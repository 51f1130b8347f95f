"""Many runs of one shape trained as one: K models, one batched forward and backward pass per step.

Each run keeps its own `Trainer`: its model, optimizer, random streams, history and
events. So each one samples its own batches, records into its own run folder, and
checkpoints and resumes exactly as if it had trained alone; only the arithmetic is
shared. The K models' weights are stacked along a leading dimension at every step
(the stack is differentiable, so gradients land in each model's own parameters) and
multiplied with batched matmuls; models are grouped by activation, and losses are
computed per model with `torch.func.vmap` over the registry's own loss functions.

What may differ between the runs: seed, learning rate and its decay, Adam's
constants, init, input range, activation (and w0), loss. What must agree (the stack's
shape): the hidden widths, BatchNorm, the encoding (`none`: the MLP on the scaled
coordinates), the picture and mode, the batch size, the device and the precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .config import RunConfig
from .configio import get_path
from .errors import ConfigError
from .losses import LOSSES
from .training import Callbacks, Trainer, TrainingDiverged, TrainResult

# Config fields that must agree across a stack, and why (the message names the first that differs).
SHAPE_FIELDS = ("model.hidden", "model.batchnorm", "encoding.kind", "data.mode", "optim.batch_size", "device", "precision")


def check_stackable(configs: Sequence[RunConfig]) -> None:
    """Refuse configs that cannot share one stack, naming the first field that differs or is unsupported."""
    if not configs:
        raise ConfigError("no runs to train")
    first = configs[0]
    for cfg in configs[1:]:
        for key in SHAPE_FIELDS:
            if get_path(cfg, key) != get_path(first, key):
                raise ConfigError(f"runs trained together must agree on {key} ({get_path(first, key)!r} vs {get_path(cfg, key)!r}); "
                                  "train them separately", field=key)
    if first.encoding.kind != "none":
        raise ConfigError(f"stacked training supports encoding.kind none, not {first.encoding.kind!r}; train these runs one at a time",
                          field="encoding.kind")


def stack_key(cfg: RunConfig) -> tuple[Any, ...] | None:
    """What runs trained together must share; None for a run that cannot be stacked (it trains alone)."""
    if cfg.encoding.kind != "none":
        return None
    return tuple(get_path(cfg, key) for key in SHAPE_FIELDS)


# On a CPU, a stack pays off only while it is small and of one activation: a batched matmul runs no faster than
# separate ones there, so stacking saves only per-step Python work, and K models' activations side by side soon
# leave the cache (and mixed activations are copied per group). Measured on a 2-core AVX2 CPU, ms per model-step of
# the reproduction's 10 same-shape runs: 6.7 one after another, 8.4 as one mixed stack, 6.0 in stacks of at most 4
# of one activation. On a GPU, one stack of everything is what fills the device.
CPU_STACK = 4


def _on_cpu(cfg: RunConfig) -> bool:
    return cfg.device.split(":")[0] == "cpu"


def stack_groups(configs: Sequence[RunConfig]) -> list[list[int]]:
    """Indices of `configs` in groups that train as one stack, in order of first appearance.

    Runs of one shape share a stack; on a CPU, only runs of one activation, at most CPU_STACK to a stack.
    """
    groups: dict[Any, list[int]] = {}
    for i, cfg in enumerate(configs):
        key = stack_key(cfg)
        if key is not None and _on_cpu(cfg):
            key = (*key, cfg.model.activation, cfg.model.w0)
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    out: list[list[int]] = []
    for members in groups.values():
        size = CPU_STACK if _on_cpu(configs[members[0]]) else len(members)
        out += [members[j:j + size] for j in range(0, len(members), size)]
    return out


@dataclass(frozen=True)
class _Group:
    """Models [start, end) of the stack share an activation: applied to their slice at once."""

    start: int
    end: int
    fn: Any
    w0: float


def _runs(keys: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """Maximal runs of equal consecutive keys: (start, end, key)."""
    out: list[tuple[int, int, Any]] = []
    for i, key in enumerate(keys):
        if out and out[-1][2] == key:
            out[-1] = (out[-1][0], i + 1, key)
        else:
            out.append((i, i + 1, key))
    return out


class StackedTrainer:
    """K `Trainer`s of one shape, stepped together. `run` trains them all; each emits its own events."""

    def __init__(self, trainers: Sequence[Trainer]) -> None:
        check_stackable([t.cfg for t in trainers])
        # Models with the same activation next to each other, so each activation is one call on a slice.
        order = sorted(range(len(trainers)), key=lambda i: (trainers[i].cfg.model.activation, trainers[i].cfg.model.w0))
        self.trainers = [trainers[i] for i in order]
        self.order = order  # stacked position -> index as given
        self.precision = trainers[0].cfg.precision
        self.device = trainers[0].device

    # -- the stacked step ------------------------------------------------------------

    def _forward_backward(self, active: Sequence[Trainer], yx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-model losses (K,) of one batch each, their gradients accumulated into each model's parameters.

        yx: (K, B, 2) pixel coordinates; y: (K, B) labels or (K, B, C) values.
        """
        models = [t.model for t in active]
        scale = torch.stack([m.scaling.scale for m in models])[:, None, :]  # (K, 1, 2)
        offset = torch.stack([m.scaling.offset for m in models])[:, None, :]
        h = torch.addcmul(offset, yx, scale)  # (K, B, 2); the encoding is the identity
        acts = _runs([(t.cfg.model.activation, t.cfg.model.w0) for t in active])
        groups = [_Group(s, e, _activation_fn(models[s]), key[1]) for s, e, key in acts]
        layers = list(models[0].mlp)
        with (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16" else contextlib.nullcontext()):
            i = 0
            while i < len(layers):
                weight = torch.stack([m.mlp[i].weight for m in models])  # (K, out, in)
                bias = torch.stack([m.mlp[i].bias for m in models])  # (K, out)
                h = torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))
                i += 1
                if i < len(layers) and isinstance(layers[i], nn.BatchNorm1d):
                    h = _stacked_batchnorm(h, [m.mlp[i] for m in models])
                    i += 1
                if i < len(layers) and not isinstance(layers[i], nn.Linear):
                    h = torch.cat([g.fn(h[g.start:g.end], g.w0) for g in groups]) if len(groups) > 1 else groups[0].fn(h, groups[0].w0)
                    i += 1
        out = h.float()
        losses = torch.cat([
            torch.func.vmap(LOSSES[name])(out[s:e], y[s:e]) for s, e, name in _runs([t.cfg.loss_name for t in active])
        ])
        losses.sum().backward()
        return losses.detach()

    def _step(self, active: Sequence[Trainer]) -> torch.Tensor:
        batches = [t.prepare_step() for t in active]
        yx = torch.stack([b[0] for b in batches])
        y = torch.stack([b[1] for b in batches])
        losses = self._forward_backward(active, yx, y)
        for t in active:
            t.apply_step()
        return losses

    # -- the loop --------------------------------------------------------------------

    def run(self, callbacks: Sequence[Callbacks] | None = None, until: int | None = None) -> list[TrainResult]:
        """Train every run to its `schedule.steps` (or `until`); `callbacks[k]` watches the k-th run as given.

        A run that stops (its own stop request, `until`, or its last step) or diverges leaves
        the stack; the others go on. A diverged run's result has `diverged` set (its events
        end at its last good evaluation). Results come back in the order the trainers were given.
        """
        given = list(callbacks) if callbacks is not None else [None] * len(self.trainers)
        if len(given) != len(self.trainers):
            raise ValueError(f"{len(self.trainers)} runs but {len(given)} callbacks")
        loops = [t.loop(given[k], until) for t, k in zip(self.trainers, self.order)]  # by stacked position
        diverged: dict[int, TrainingDiverged] = {}

        def guarded(pos: int, action: Callable[[], None]) -> None:
            try:
                action()
            except TrainingDiverged as e:  # this run leaves the stack; the others go on
                diverged[pos] = e

        for pos, loop in enumerate(loops):
            guarded(pos, loop.begin)
        active = [pos for pos, loop in enumerate(loops) if pos not in diverged and loop.active]
        while active:
            losses = self._step([self.trainers[pos] for pos in active])
            for k, pos in enumerate(active):
                guarded(pos, lambda loop=loops[pos], loss=losses[k]: loop.record(loss))
            active = [pos for pos in active if pos not in diverged and loops[pos].active]
        results: list[TrainResult | None] = [None] * len(loops)
        for pos, (t, loop) in enumerate(zip(self.trainers, loops)):
            result = loop.finish() if pos not in diverged else \
                TrainResult(t.cfg, t.target, t.model, t.history, t.step, True, diverged[pos])
            results[self.order[pos]] = result  # back in the order given
        return results  # type: ignore[return-value]


def _activation_fn(model: nn.Module) -> Any:
    """The activation function of `model`'s hidden layers (every one uses the same)."""
    from .models import ActivationLayer

    layer = next(m for m in model.mlp if isinstance(m, ActivationLayer))
    return layer.fn


def _stacked_batchnorm(h: torch.Tensor, norms: Sequence[nn.BatchNorm1d]) -> torch.Tensor:
    """BatchNorm of each model's batch, (K, B, C), with each model's own statistics and running averages.

    The K models' channels side by side, (B, K * C), are exactly K separate BatchNorm1d
    layers of C channels: one `batch_norm` call, then the updated running statistics
    are copied back into each layer.
    """
    k, b, c = h.shape
    weight = torch.cat([n.weight for n in norms])
    bias = torch.cat([n.bias for n in norms])
    training = norms[0].training
    running_mean = torch.cat([n.running_mean for n in norms])
    running_var = torch.cat([n.running_var for n in norms])
    first = norms[0]
    out = torch.nn.functional.batch_norm(h.transpose(0, 1).reshape(b, k * c), running_mean, running_var, weight, bias,
                                         training, first.momentum, first.eps)
    if training:
        with torch.no_grad():
            for j, n in enumerate(norms):
                n.running_mean.copy_(running_mean[j * c:(j + 1) * c])
                n.running_var.copy_(running_var[j * c:(j + 1) * c])
                n.num_batches_tracked.add_(1)
    return out.reshape(b, k, c).transpose(0, 1)


def train_stacks(trainers: Sequence[Trainer], callbacks: Sequence[Callbacks] | None = None,
                 until: int | None = None) -> list[TrainResult]:
    """Train every trainer, those of one shape stacked together (`stack_groups`); results in the order given."""
    given = list(callbacks) if callbacks is not None else [None] * len(trainers)
    results: list[TrainResult | None] = [None] * len(trainers)
    for group in stack_groups([t.cfg for t in trainers]):
        if len(group) == 1:  # alone, the plain step is quicker than a stack of one (and may be compiled)
            t = trainers[group[0]]
            try:
                results[group[0]] = t.run(given[group[0]], until)
            except TrainingDiverged as e:
                results[group[0]] = TrainResult(t.cfg, t.target, t.model, t.history, t.step, True, e)
            continue
        out = StackedTrainer([trainers[i] for i in group]).run([given[i] for i in group], until)
        for i, result in zip(group, out):
            results[i] = result
    return results  # type: ignore[return-value]


def train_many(configs: Sequence[RunConfig], callbacks: Sequence[Callbacks] | None = None, target: Any = None) -> list[TrainResult]:
    """Train several runs (no files written), those of one shape stacked together; results in the order given.

    A run whose loss diverges in a stack has `diverged` set in its result; the others go on.
    """
    return train_stacks([Trainer(cfg, target) for cfg in configs], callbacks)
