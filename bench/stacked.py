"""Many runs at once: model-steps per second of K stacked relu_1 models against K separate runs.

For K = 1, 2, 4, 8, 16 and each precision the device runs natively (fp32 always; bf16
where the CPU has AVX512-BF16 or AMX, or on a bf16 GPU), one training step of all K models
(`StackedTrainer`) against the same K models stepped one after another (`Trainer`). The
variants are interleaved and repeated, so a machine that changes speed mid-run spreads
over all of them; each row reports the median and the spread of ms per model-step, and
the ratio to one fp32 run stepped alone (the K = 1 separate row) in the same run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from overfit.devices import native_bf16
from overfit.presets import get_preset
from overfit.stacked import StackedTrainer
from overfit.training import Trainer

from .common import TRAIN_FLOPS_PER_SAMPLE, note, sync

KS = (1, 2, 4, 8, 16)
QUICK_KS = (1, 4)


def _trainers(device: str, k: int, precision: str) -> list[Trainer]:
    base = get_preset("relu_1").with_overrides({"device": device, "precision": precision, "schedule.steps": 10**9,
                                                "schedule.eval_every": 10**9, "schedule.log_every": 10**9})
    trainers = [Trainer(base.with_overrides({"seed": seed})) for seed in range(k)]
    for t in trainers:
        t.model.train()
    return trainers


def _block(step: Any, steps: int, device: torch.device) -> float:
    """Seconds for `steps` calls of `step` (each returns the step's losses), the losses read back at the end."""
    sync(device)
    start = time.perf_counter()
    losses = [step() for _ in range(steps)]
    float(torch.stack([torch.as_tensor(x).sum() for x in losses]).sum())  # waits for the device
    return time.perf_counter() - start


def run(rec: Any, device: torch.device, quick: bool = False) -> None:
    ks = QUICK_KS if quick else KS
    precisions = ["fp32"] + (["bf16"] if native_bf16(device) else [])
    if "bf16" not in precisions:
        note(f"stacked: bf16 is not native on {device} here; bf16 rows not measured")
    steps = 20 if quick else 60
    repeats = 3 if quick else 7
    variants: dict[tuple[str, int, str], Any] = {}
    for precision in precisions:
        for k in ks:
            trainers = _trainers(str(device), k, precision)
            stack = StackedTrainer(trainers)
            variants[("stacked", k, precision)] = (lambda s=stack: s.step(), k)
            if k == 1 or k == max(ks):
                separate = [StackedTrainer([t]) for t in _trainers(str(device), k, precision)]  # stacks of one
                variants[("separate", k, precision)] = (lambda ss=separate: [s.step() for s in ss], k)
    for step, _ in variants.values():  # warm-up: allocator, kernels, the first Adam step
        _block(step, 3, device)
    seconds: dict[tuple[str, int, str], list[float]] = {key: [] for key in variants}
    for _ in range(repeats):  # interleaved: every variant once per round
        for key, (step, k) in variants.items():
            seconds[key].append(_block(step, steps, device) / (steps * k))
    base = statistics.median(seconds[("separate", 1, "fp32")])
    batch = get_preset("relu_1").optim.batch_size
    for (impl, k, precision), values in seconds.items():
        median = statistics.median(values)
        rec.emit("stacked_throughput", impl=impl, k=k, precision=precision, steps=steps, repeats=repeats,
                 ms_per_model_step=round(median * 1e3, 4), ms_min=round(min(values) * 1e3, 4), ms_max=round(max(values) * 1e3, 4),
                 model_steps_per_s=round(1 / median, 1), vs_one_fp32_run=round(base / median, 2),
                 gflops=round(TRAIN_FLOPS_PER_SAMPLE * batch / median / 1e9, 1))
        note(f"stacked {impl:>8} K={k:<2} {precision}: {median * 1e3:.3f} ms per model-step "
             f"({min(values) * 1e3:.3f}-{max(values) * 1e3:.3f}), {base / median:.2f}x one fp32 run")
