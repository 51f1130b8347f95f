"""Many runs of one kind trained as one: K models, one vmapped forward and backward pass per step.

Each run keeps its own `Trainer`: its model, optimizer, random streams, probes, history
and events. So each one samples its own batches, records into its own run folder, and
checkpoints and resumes exactly as if it had trained alone; only the arithmetic is
shared. This is PyTorch's model-ensembling recipe: at every step the K models'
parameters and buffers are stacked along a leading dimension (`torch.stack` is
differentiable, so gradients land in each model's own parameters) and one model's own
`forward` runs over them with `torch.func.functional_call` under `torch.vmap`. There is
no second copy of the forward pass: any encoding, BatchNorm, any activation works.
BatchNorm's running statistics are updated in the stacked buffers and copied back, so
each model's are those it would have had alone.

What may differ between the runs of one stack: seed, learning rate and its decay, Adam's
constants, init, input range (except for an encoding that reads it), the picture (of
one size where the encoding's shape follows it). What must agree: the tensors' shapes
(hidden widths, BatchNorm, mode, batch size) and device and precision (SHAPE_FIELDS),
and the constants of the forward pass (activation, w0 where it reads it, loss, and
the encoding with all its fields). `stack_groups` sorts any set of runs into stacks.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import torch
from torch.func import functional_call

from .activations import ACTIVATIONS
from .config import RunConfig
from .configio import get_path
from .encodings import ENCODINGS
from .errors import ConfigError
from .losses import LOSSES
from .training import Callbacks, Trainer, TrainingDiverged, TrainResult

# Config fields that set the stacked tensors' shapes, or that one batched step needs shared.
SHAPE_FIELDS = ("model.hidden", "model.batchnorm", "data.mode", "optim.batch_size", "device", "precision")
# Config fields that are Python constants of the forward pass and the loss, which one vmapped call shares.
FORWARD_FIELDS = ("model.activation", "model.w0", "loss", "encoding.kind")


def _stack_fields(cfg: RunConfig) -> list[str]:
    """Every field runs of one stack must share with this one, in the order a refusal names them."""
    encoding = ENCODINGS[cfg.encoding.kind]
    keys = [*SHAPE_FIELDS, *FORWARD_FIELDS, *encoding.fields]
    if "model.w0" not in ACTIVATIONS[cfg.model.activation].fields:
        keys.remove("model.w0")  # an activation that ignores w0 computes the same for any
    if encoding.needs_scaled_inputs:
        keys.append("model.input_range")  # the encoding maps [-r, r] itself (a constant of its forward)
    return keys


def _value(cfg: RunConfig, key: str) -> Any:
    return cfg.loss_name if key == "loss" else get_path(cfg, key)  # "auto" resolved: the loss actually computed


def check_stackable(configs: Sequence[RunConfig]) -> None:
    """Refuse configs that cannot share one stack, naming the first field that differs."""
    if not configs:
        raise ConfigError("no runs to train")
    first = configs[0]
    for cfg in configs[1:]:
        for key in dict.fromkeys([*_stack_fields(first), *_stack_fields(cfg)]):
            if _value(first, key) != _value(cfg, key):
                raise ConfigError(f"runs trained as one stack must agree on {key} ({_value(first, key)!r} vs {_value(cfg, key)!r}); "
                                  "train them in separate stacks (`train_stacks` sorts them)", field=key)


def stack_key(cfg: RunConfig) -> tuple[Any, ...]:
    """What runs trained as one stack must share (`check_stackable`): equal keys, one stack."""
    return tuple((key, _value(cfg, key)) for key in _stack_fields(cfg))


# On a CPU, a stack pays off only while it is small: a batched matmul runs no faster than separate ones there, so
# stacking saves only per-step Python work, and K models' activations side by side soon leave the cache. Measured
# (with the earlier hand-written stacked forward) on a 2-core AVX2 CPU, ms per model-step of the reproduction's 10
# same-shape runs: 6.7 one after another, 8.4 as one mixed stack, 6.0 in stacks of at most 4 of one activation.
# On a GPU, one stack of everything of one kind is what fills the device.
CPU_STACK = 4


def _on_cpu(cfg: RunConfig) -> bool:
    return cfg.device.split(":")[0] == "cpu"


def stack_groups(configs: Sequence[RunConfig]) -> list[list[int]]:
    """Indices of `configs` in groups that train as one stack (equal `stack_key`), in order of first appearance.

    On a CPU, at most CPU_STACK runs to a stack.
    """
    groups: dict[Any, list[int]] = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(stack_key(cfg), []).append(i)
    out: list[list[int]] = []
    for members in groups.values():
        size = CPU_STACK if _on_cpu(configs[members[0]]) else len(members)
        out += [members[j:j + size] for j in range(0, len(members), size)]
    return out


def _tensor_shapes(model: torch.nn.Module) -> tuple[Any, ...]:
    """Names, shapes and dtypes of a model's parameters and buffers: what stacking them needs equal."""
    return tuple((name, tuple(t.shape), t.dtype) for name, t in [*model.named_parameters(), *model.named_buffers()])


class StackedTrainer:
    """K `Trainer`s of one kind (`check_stackable`), stepped together. `run` trains them all; each emits its own events."""

    def __init__(self, trainers: Sequence[Trainer]) -> None:
        check_stackable([t.cfg for t in trainers])
        shapes = _tensor_shapes(trainers[0].model)
        for t in trainers[1:]:
            if _tensor_shapes(t.model) != shapes:  # e.g. a grid encoding's levels follow the picture's size
                raise ConfigError("runs trained as one stack must have models of the same shape "
                                  "(a grid encoding's levels follow the picture's size); train them in separate stacks")
        self.trainers = list(trainers)
        self.precision = trainers[0].cfg.precision
        self.device = trainers[0].device
        self.loss_fn = LOSSES[trainers[0].cfg.loss_name]
        base = trainers[0].model
        self.param_names = [name for name, _ in base.named_parameters()]
        self.buffer_names = [name for name, _ in base.named_buffers()]
        # Each model's tensors by stacked position, listed once (resuming copies into these same tensors).
        self.params = [list(t.model.parameters()) for t in self.trainers]
        self.buffers = [list(t.model.buffers()) for t in self.trainers]
        # The buffers a training forward pass changes in place (BatchNorm's running statistics), copied back each step.
        norms = {name for name, m in base.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
        self.updated = [i for i, name in enumerate(self.buffer_names) if name.rpartition(".")[0] in norms]

    # -- the stacked step ------------------------------------------------------------

    def _forward_backward(self, active: Sequence[int], yx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-model losses (K,) of one batch each, their gradients accumulated into each model's parameters.

        active: stacked positions of the K models; yx: (K, B, 2) pixel coordinates; y: (K, B) labels or (K, B, C) values.
        """
        params = [torch.stack(ts) for ts in zip(*(self.params[pos] for pos in active))]  # each (K, ...)
        buffers = [torch.stack(ts) for ts in zip(*(self.buffers[pos] for pos in active))]
        base = self.trainers[active[0]].model  # its forward and its train/eval mode; the tensors are the stack's

        def forward(p: list[torch.Tensor], b: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (dict(zip(self.param_names, p)), dict(zip(self.buffer_names, b))), (coords,))

        with (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16" else contextlib.nullcontext()):
            out = torch.vmap(forward)(params, buffers, yx)  # (K, B, out)
        losses = torch.vmap(self.loss_fn)(out.float(), y)  # the loss in float32, as a run alone computes it
        losses.sum().backward()
        if self.updated and base.training:
            with torch.no_grad():
                for k, pos in enumerate(active):
                    for i in self.updated:
                        self.buffers[pos][i].copy_(buffers[i][k])
        return losses.detach()

    def step(self, active: Sequence[int] | None = None) -> torch.Tensor:
        """One training step of the runs at stacked positions `active` (all by default); their losses (K,) on the device."""
        positions = list(range(len(self.trainers))) if active is None else list(active)
        batches = [self.trainers[pos].prepare_step() for pos in positions]
        yx = torch.stack([b[0] for b in batches])
        y = torch.stack([b[1] for b in batches])
        losses = self._forward_backward(positions, yx, y)
        for pos in positions:
            self.trainers[pos].apply_step()
        return losses

    # -- the loop --------------------------------------------------------------------

    def run(self, callbacks: Sequence[Callbacks] | None = None, until: int | None = None) -> list[TrainResult]:
        """Train every run to its `schedule.steps` (or `until`); `callbacks[k]` watches the k-th run.

        A run that stops (its own stop request, `until`, or its last step) or diverges leaves
        the stack; the others go on. A diverged run's result has `diverged` set (its events
        end at its last good evaluation). Results come back in the order the trainers were given.
        """
        given = list(callbacks) if callbacks is not None else [None] * len(self.trainers)
        if len(given) != len(self.trainers):
            raise ValueError(f"{len(self.trainers)} runs but {len(given)} callbacks")
        loops = [t.loop(watch, until) for t, watch in zip(self.trainers, given)]
        diverged: dict[int, TrainingDiverged] = {}

        def guarded(pos: int, action: Callable[[], None]) -> None:
            try:
                action()
            except TrainingDiverged as e:  # this run leaves the stack; the others go on
                diverged[pos] = e

        # -- each run's first evaluation (a fresh run's untrained network) --
        for pos, loop in enumerate(loops):
            guarded(pos, loop.begin)
        # -- one stacked step of every run still going, then each run's own bookkeeping --
        active = [pos for pos, loop in enumerate(loops) if pos not in diverged and loop.active]
        while active:
            losses = self.step(active)
            for k, pos in enumerate(active):
                guarded(pos, lambda loop=loops[pos], loss=losses[k]: loop.record(loss))
            active = [pos for pos in active if pos not in diverged and loops[pos].active]
        # -- each run's closing event, or its divergence --
        return [loop.finish() if pos not in diverged else TrainResult(t.cfg, t.target, t.model, t.history, t.step, True, diverged[pos])
                for pos, (t, loop) in enumerate(zip(self.trainers, loops))]


def train_stacks(trainers: Sequence[Trainer], callbacks: Sequence[Callbacks] | None = None,
                 until: int | None = None) -> list[TrainResult]:
    """Train every trainer, those of one kind stacked together (`stack_groups`); results in the order given.

    A stack trains to the end (or `until`) before the next starts. A run whose loss diverges
    has `diverged` set in its result; the others go on.
    """
    given = list(callbacks) if callbacks is not None else [None] * len(trainers)
    results: list[TrainResult | None] = [None] * len(trainers)
    groups: list[list[int]] = []
    for group in stack_groups([t.cfg for t in trainers]):  # then by the models' tensors (a grid follows the picture's size)
        by_shape: dict[Any, list[int]] = {}
        for i in group:
            by_shape.setdefault(_tensor_shapes(trainers[i].model), []).append(i)
        groups += by_shape.values()
    for group in groups:
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


def train_configs(configs: Sequence[RunConfig], callbacks: Sequence[Callbacks] | None = None, target: Any = None) -> list[TrainResult]:
    """Train a fresh run for each config (no files written, no probes), stacked where they can be; results in the order given.

    A run whose loss diverges in a stack has `diverged` set in its result; the others go on.
    """
    return train_stacks([Trainer(cfg, target) for cfg in configs], callbacks)
