"""The one training engine: K >= 1 runs of one kind trained as one, one forward and backward pass and one Adam update per step.

Every run trains here; a run alone is a stack of one (`Trainer.run`). Each run keeps its own
`Trainer`: its model, optimizer, random streams, probes, history and events. So each one
samples its own batches, records into its own run folder, and checkpoints and resumes
exactly as if it had trained alone. While runs train, their parameters, buffers and Adam
state live stacked along a leading dimension of K, and each model's own tensors are views
of its slice. The step is `CoordinateMLP.forward_stacked` over the stacked tensors (one
`baddbmm` per Linear layer for all K models, the activation fused where it can be, BatchNorm
through torch's kernel, encodings under `torch.vmap`: `stackops`), the K losses, one
backward pass, and one Adam update with each run's learning rate (and its decay), betas and
eps as (K,) tensors. With `compile`, forward, losses and backward are one torch.compile graph
per shape.

What may differ between the runs of one stack: seed, learning rate and its decay, Adam's
constants, init, input range (except for an encoding that reads it), the picture (of
one size where the encoding's shape follows it). What must agree: the tensors' shapes
(hidden widths, BatchNorm, mode, batch size), device, precision and compile (SHAPE_FIELDS),
and the constants of the forward pass (activation, w0 where it reads it, loss, and
the encoding with all its fields). `stack_groups` sorts any set of runs into stacks.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from .activations import ACTIVATIONS
from .config import RunConfig
from .configio import get_path
from .encodings import ENCODINGS
from .errors import ConfigError
from .losses import LOSSES
from .sampling import counter_bits, stream_keys

# A stack's parameters are columns of one (K, P) tensor, so their strides are not those of a dense tensor of their
# shape; torch warns once that accumulating their gradients in place "may impair performance" (the step measured no slower).
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")

if TYPE_CHECKING:  # training imports this module (a run alone trains as a stack of one)
    from .training import Callbacks, Trainer, TrainResult
from .errors import TrainingDiverged

# Config fields that set the stacked tensors' shapes, or that one batched step needs shared.
SHAPE_FIELDS = ("model.hidden", "model.batchnorm", "data.mode", "optim.batch_size", "device", "precision", "compile")
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


# On a CPU, a stack pays off only while it is small: K models' activations side by side soon leave the cache. Median
# ms per relu_1 model-step (bench/RESULTS.md, `python -m bench.engine`, 2-core AVX-512 CPU): fp32 1.95 at K = 4,
# 1.99 at K = 8, 2.13 at K = 16; bf16 1.31, 1.14 and 1.16. Eight is the best of both. On a GPU, one stack of
# everything of one kind is what fills the device.
CPU_STACK = 8


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


def _tensor_shapes(trainer: Trainer) -> tuple[Any, ...]:
    """Names, shapes and dtypes of a run's parameters and buffers, and its picture's size: what stacking needs equal.

    The picture's size, because an encoding may hold constants that follow it beyond its tensors' shapes (a hash
    grid's level resolutions), and one forward pass serves the whole stack.
    """
    model = trainer.model
    tensors = tuple((name, tuple(t.shape), t.dtype) for name, t in [*model.named_parameters(), *model.named_buffers()])
    return (*tensors, (trainer.target.height, trainer.target.width))


class StackedTrainer:
    """K `Trainer`s of one kind (`check_stackable`), stepped together. `run` trains them all; each emits its own events.

    While a set of runs trains as one (`_bind`), their parameters, buffers and Adam state live
    stacked in (K, ...) tensors, and each model's own parameters and buffers are views of its
    slice: evaluations, probes and checkpoints see the run as it is, and no step copies the
    weights into a stack or the gradients out of it. One Adam update (`_adam`) serves the
    whole stack, with each run's learning rate (and its decay), betas and eps as (K,) tensors;
    the arithmetic is torch's Adam's. When runs leave the stack (stopped, diverged), the rest
    is stacked again; at the end every model gets its own tensors back and every run's
    optimizer holds its state, so it resumes alone or in any other stack.
    """

    def __init__(self, trainers: Sequence[Trainer]) -> None:
        check_stackable([t.cfg for t in trainers])
        shapes = _tensor_shapes(trainers[0])
        for t in trainers[1:]:
            if _tensor_shapes(t) != shapes:  # e.g. a grid encoding's levels follow the picture's size
                raise ConfigError("runs trained as one stack must have models of the same shape and pictures of the same size "
                                  "(a grid encoding's levels follow the picture's size); train them in separate stacks")
        self.trainers = list(trainers)
        self.precision = trainers[0].cfg.precision
        self.device = trainers[0].device
        self.loss_fn = LOSSES[trainers[0].cfg.loss_name]
        base = trainers[0].model
        self.param_names = [name for name, _ in base.named_parameters()]
        self.buffer_names = [name for name, _ in base.named_buffers()]
        self.bound: list[int] = []  # the stacked positions whose tensors live in the stack now
        self._step_losses: Callable[..., torch.Tensor] = self._compiled_step if trainers[0].cfg.compile else _step_losses

    # -- the stack's tensors ------------------------------------------------------------

    def _bind(self, positions: Sequence[int]) -> None:
        """Stack the parameters, buffers and Adam state of the runs at `positions`; their models' tensors become views.

        The K runs' parameters live in one (K, P) tensor (P: a model's parameter count), and so
        do their gradients and Adam's two moments: each parameter of the stack (`leaves`) is a
        view of its columns, its gradient accumulates in place into the gradient tensor, and
        one Adam update of a few passes over (K, P) serves every parameter of every run.
        """
        self._unbind()
        trainers = [self.trainers[pos] for pos in positions]
        params = [[dict(t.model.named_parameters())[name] for t in trainers] for name in self.param_names]
        buffers = [[dict(t.model.named_buffers())[name] for t in trainers] for name in self.buffer_names]
        k = len(trainers)
        sizes = [ps[0].numel() for ps in params]
        columns = [slice(start, start + n) for start, n in zip([0, *itertools.accumulate(sizes)], sizes)]
        width = sum(sizes)

        def flat(values: Callable[[int, int], torch.Tensor]) -> torch.Tensor:
            """(K, P) of values(i, k): parameter i of the k-th run, each in its columns."""
            out = torch.zeros(k, width, device=self.device)
            for i, cols in enumerate(columns):
                out[:, cols] = torch.stack([values(i, j).reshape(-1) for j in range(k)])
            return out

        # -- every stacked tensor made first, so a failure (out of memory) leaves the models as they were --
        with torch.no_grad():
            states = [[t.optimizer.state.get(p, {}) for t, p in zip(trainers, ps)] for ps in params]
            zero = torch.zeros((), device=self.device)
            weights = flat(lambda i, j: params[i][j].detach())
            exp_avg = flat(lambda i, j: states[i][j].get("exp_avg", zero.expand(params[i][j].shape)))
            exp_avg_sq = flat(lambda i, j: states[i][j].get("exp_avg_sq", zero.expand(params[i][j].shape)))
            grads = torch.zeros(k, width, device=self.device)
            stacked_buffers = [torch.stack(list(bs)) for bs in buffers]
        first = states[0] if states else [{} for _ in trainers]
        # -- each run's Adam constants: per-run columns against (K, P); its step count and rate kept on the host --
        self.optims = [t.cfg.optim for t in trainers]
        self.run_steps = [t.cfg.schedule.steps for t in trainers]
        self.count = [int(float(st.get("step", 0))) for st in first]
        self.last_lr: list[float | None] = [None] * len(trainers)
        column = lambda values: torch.tensor(values, dtype=torch.float32, device=self.device).unsqueeze(1)  # noqa: E731
        self.one_minus = (column([1 - o.beta1 for o in self.optims]), column([1 - o.beta2 for o in self.optims]))
        self.beta2_f, self.eps_f = column([o.beta2 for o in self.optims]), column([o.eps for o in self.optims])
        # -- then the models' own tensors become views of their slices --
        self.bound, self.params, self.columns = list(positions), params, columns
        self.weights, self.grads, self.exp_avg, self.exp_avg_sq = weights, grads, exp_avg, exp_avg_sq
        self.leaves = []
        for cols, ps in zip(columns, params):
            leaf = weights[:, cols].view(k, *ps[0].shape).requires_grad_()
            leaf.grad = grads[:, cols].view(k, *ps[0].shape)  # backward adds into it, in place
            self.leaves.append(leaf)
        self.buffers = stacked_buffers
        self.tensors = {**dict(zip(self.param_names, self.leaves)), **dict(zip(self.buffer_names, self.buffers))}
        # -- the runs' training streams, and the runs whose batches come from the same picture and split --
        self.train_keys = [stream_keys(t.seeds["train"]) for t in trainers]
        self.batch_size = trainers[0].cfg.optim.batch_size
        self.sampler_groups: list[tuple[list[int], Any]] = []
        for j, t in enumerate(trainers):
            for members, sampler in self.sampler_groups:
                if sampler.same_batches(t.sampler):
                    members.append(j)
                    break
            else:
                self.sampler_groups.append(([j], t.sampler))
        for stacked, members in [*zip(self.leaves, params), *zip(stacked_buffers, buffers)]:
            for j, tensor in enumerate(members):
                tensor.data = stacked.detach()[j]

    def _unbind(self) -> None:
        """Every bound run's state back in its own model and optimizer (own tensors, not views); the stack let go."""
        if not self.bound:
            return
        self.write_back(self.bound)
        with torch.no_grad():
            for members in [*self.params, *([dict(self.trainers[pos].model.named_buffers())[name] for pos in self.bound]
                                            for name in self.buffer_names)]:
                for tensor in members:
                    tensor.data = tensor.data.clone()
                    tensor.grad = None  # a probe's view of the stack's gradients
        self.bound = []
        self.leaves = self.buffers = self.params = self.columns = []
        self.tensors = {}

    def write_back(self, positions: Sequence[int]) -> None:
        """The Adam state of the bound runs at `positions` into their own optimizers (what their checkpoints save)."""
        for pos in positions:
            k = self.bound.index(pos)
            optimizer = self.trainers[pos].optimizer
            if self.last_lr[k] is not None:  # the rate of its last update, as torch's Adam holds it
                for group in optimizer.param_groups:
                    group["lr"] = self.last_lr[k]
            for cols, ps in zip(self.columns, self.params):
                optimizer.state[ps[k]] = {
                    "step": torch.tensor(float(self.count[k]), dtype=torch.float32, device=self.device),
                    "exp_avg": self.exp_avg[k, cols].view(ps[k].shape).clone(),
                    "exp_avg_sq": self.exp_avg_sq[k, cols].view(ps[k].shape).clone()}

    # -- the stacked step ------------------------------------------------------------

    def _forward_backward(self, yx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-model losses (K,) of one batch each, their gradients in the stack's gradient tensor.

        yx: (K, B, 2) pixel coordinates; y: (K, B) labels or (K, B, C) values.
        """
        base = self.trainers[self.bound[0]].model  # its structure; the tensors are the stack's
        self.grads.zero_()
        return self._step_losses(base, self.tensors, yx, y, self.loss_fn, self.precision == "bf16")

    def _compiled_step(self, *args: Any) -> torch.Tensor:
        """`_step_losses` through torch.compile (one graph per shape, cached on disk); eager from then on if compiling fails."""
        try:
            return _compiled_step_losses()(*args)
        except Exception as e:  # no C++ compiler, an unsupported backend, ...
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); training eagerly")
            self.grads.zero_()
            self._step_losses = _step_losses
            return _step_losses(*args)

    @torch.no_grad()
    def _adam(self) -> None:
        """One Adam step of every bound run (torch's Adam: no weight decay, no amsgrad), each with its own constants."""
        # Each run's rate (`OptimConfig.lr_at` at the count before this update) and bias corrections, on the host.
        self.last_lr = [o.lr_at(c, steps) for o, c, steps in zip(self.optims, self.count, self.run_steps)]
        self.count = [c + 1 for c in self.count]
        step_size = [lr / (1 - o.beta1 ** c) for lr, o, c in zip(self.last_lr, self.optims, self.count)]
        bias2_sqrt = [math.sqrt(1 - o.beta2 ** c) for o, c in zip(self.optims, self.count)]
        step_size_t, bias2_sqrt_t = torch.tensor([step_size, bias2_sqrt], dtype=torch.float32, device=self.device).unsqueeze(2)
        (one_minus_beta1, one_minus_beta2), beta2, eps = self.one_minus, self.beta2_f, self.eps_f
        g, m, v = self.grads, self.exp_avg, self.exp_avg_sq
        m.lerp_(g, one_minus_beta1)
        v.mul_(beta2).addcmul_(g, g * one_minus_beta2)
        denom = v.sqrt().div_(bias2_sqrt_t).add_(eps)
        self.weights.sub_(m.div(denom).mul_(step_size_t))

    def _batches(self, trainers: list[Trainer]) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's batch of every bound run (each run's `next_batch`): (K, B, 2) coordinates and (K, B, ...) targets.

        The bits of every run whose sampler gives the same batches from the same bits (one picture, one split) are
        drawn in one call and turned into batches in one more.
        """
        parts = []
        for members, sampler in self.sampler_groups:
            keys, steps = [self.train_keys[j] for j in members], [trainers[j].step for j in members]
            parts.append(sampler.draw_many(counter_bits(keys, steps, self.batch_size, sampler.bits_per_sample, self.device)))
        if len(parts) == 1:
            return parts[0]
        order = [k for members, _ in self.sampler_groups for k in members]
        inverse = torch.tensor(order, device=self.device).argsort()
        return torch.cat([yx for yx, _ in parts])[inverse], torch.cat([y for _, y in parts])[inverse]

    def step(self, active: Sequence[int] | None = None) -> torch.Tensor:
        """One training step of the runs at stacked positions `active` (all by default); their losses (K,) on the device."""
        positions = list(range(len(self.trainers))) if active is None else list(active)
        if positions != self.bound:
            self._bind(positions)
        trainers = [self.trainers[pos] for pos in positions]
        losses = self._forward_backward(*self._batches(trainers))
        for k, t in enumerate(trainers):
            if t.probes and t.cfg.schedule.evaluates_at(t.step + 1):  # that evaluation may report on this update
                for leaf, members in zip(self.leaves, self.params):
                    members[k].grad = leaf.grad[k]  # the run's own gradients, as a probe of a run alone reads them
                for probe in t.probes:
                    probe.before_update(t)
        self._adam()
        for t in trainers:
            t.step += 1
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
        try:
            while active:
                losses = self.step(active)
                # A run about to evaluate or stop writes its checkpoint: its optimizer gets its Adam state first.
                self.write_back([pos for pos in active if loops[pos].evaluates_next()])
                for k, pos in enumerate(active):
                    guarded(pos, lambda loop=loops[pos], loss=losses[k]: loop.record(loss))
                active = [pos for pos in active if pos not in diverged and loops[pos].active]
        finally:
            self._unbind()
        # -- each run's closing event, or its divergence --
        return [loop.finish() if pos not in diverged else loop.diverged(diverged[pos]) for pos, loop in enumerate(loops)]


def _step_losses(model: torch.nn.Module, tensors: dict[str, torch.Tensor], yx: torch.Tensor, y: torch.Tensor,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], bf16: bool) -> torch.Tensor:
    """Forward, per-model losses and backward of models of `model`'s shape over their stacked `tensors`: the losses (k,).

    BatchNorm updates its running statistics in place, in the stacked buffers (each model's slice).
    """
    out = model.forward_stacked(tensors, yx, bf16=bf16)  # (k, B, out), float32
    losses = loss_fn(out, y)  # (k,): each run's own loss (the registry's losses take leading batch dimensions)
    losses.sum().backward()
    return losses.detach()


@functools.cache
def _compiled_step_losses() -> Callable[..., torch.Tensor]:
    """`_step_losses` through torch.compile: one function for every stack, so a model's shape compiles once per process."""
    return torch.compile(_step_losses, dynamic=False)


def train_stacks(trainers: Sequence[Trainer], callbacks: Sequence[Callbacks] | None = None,
                 until: int | None = None, on_result: Callable[[int, TrainResult], None] | None = None) -> list[TrainResult]:
    """Train every trainer, those of one kind stacked together (`stack_groups`); results in the order given.

    A stack trains to the end (or `until`) before the next starts; `on_result(index, result)`
    hears of each run as soon as its stack is done. A run whose loss diverges has `diverged`
    set in its result; the others go on.
    """
    given = list(callbacks) if callbacks is not None else [None] * len(trainers)
    results: list[TrainResult | None] = [None] * len(trainers)
    groups: list[list[int]] = []
    for group in stack_groups([t.cfg for t in trainers]):  # then by the models' tensors (a grid follows the picture's size)
        by_shape: dict[Any, list[int]] = {}
        for i in group:
            by_shape.setdefault(_tensor_shapes(trainers[i]), []).append(i)
        groups += by_shape.values()
    for group in groups:
        out = StackedTrainer([trainers[i] for i in group]).run([given[i] for i in group], until)
        for i, result in zip(group, out):
            results[i] = result
            if on_result is not None:
                on_result(i, result)
    return results  # type: ignore[return-value]
