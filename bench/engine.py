"""The training engine against the hardware's limit: share of the fp32 matmul peak per model-step, side by side.

One relu_1 model-step is fixed arithmetic (6 x 33,024 multiply-adds x 1,024 samples = 203
MFLOP); divided by this machine's fp32 matmul peak (a 2048^3 `torch.mm`, measured in every
round) it is the limit. Rows: the engine (`StackedTrainer`) with K = 1, 2, 4, 8, 16 models,
fp32 and bf16 (where the device has it natively), eager and compiled (K = 1 and 8), and the
plain PyTorch port (bench/plain_port.py: host sampling, `loss.item()` every step) stepped the
same way. Every variant runs once per round, rounds interleaved, so a machine that changes
speed spreads over all of them; each row is the median over rounds of (limit / time per
model-step), with the round's own peak. Run alone:

    python -m bench.engine [--rounds 5] [--steps 40] [--out bench/engine.json]
    python -m bench.engine --device cuda --ks 1,8,64,256,1024    # a GPU: also TF32, no plain port

On a GPU the fp32 peak is the fp32 matmul's (TF32 off); the "tf32" rows allow TF32 for the
whole step, and their share may exceed 100 % of that peak.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from overfit.devices import matmul_peak, native_bf16
from overfit.presets import get_preset
from overfit.stacked import StackedTrainer
from overfit.training import Trainer

from .common import TRAIN_FLOPS_PER_SAMPLE, cpu_model
from .plain_port import make_network, minibatch_generator

KS = (1, 2, 4, 8, 16)
COMPILED_KS = (1, 8)


def engine(k: int, precision: str, compile: bool, device: str = "cpu") -> Callable[[], Any]:
    tf32 = precision == "tf32"
    base = get_preset("relu_1").with_overrides({"precision": "fp32" if tf32 else precision, "compile": compile, "device": device,
                                                "schedule.steps": 10**9,
                                                "schedule.eval_every": 10**9, "schedule.log_every": 10**9})
    stack = StackedTrainer([Trainer(base.with_overrides({"seed": seed})) for seed in range(k)])
    if not tf32:
        return stack.step

    def step() -> Any:
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            return stack.step()
        finally:
            torch.backends.cuda.matmul.allow_tf32 = False
    return step


def plain_port() -> Callable[[], Any]:
    picture = Trainer(get_preset("relu_1")).target.labels
    height, width = picture.shape
    net = make_network()
    adam = torch.optim.Adam(net.parameters(), lr=1e-4)
    scaler = torch.tensor([[height // 2, width // 2]], dtype=torch.float32)
    batches = minibatch_generator(picture, 1024)

    def step() -> float:
        batch = next(batches)
        inp = torch.tensor(batch["data"]) / scaler - 1.0
        gt = torch.tensor(batch["label"], dtype=torch.long)
        adam.zero_grad()
        loss = F.cross_entropy(net(inp), gt)
        loss.backward()
        adam.step()
        return loss.item()
    return step


def seconds(step: Callable[[], Any], steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = [step() for _ in range(steps)]
    if out and isinstance(out[-1], torch.Tensor):
        float(out[-1].sum())  # the engine's losses stay on the device until read
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="steps per variant per round")
    parser.add_argument("--ks", default=",".join(map(str, KS)))
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    np.random.seed(0)
    device = torch.device(args.device)
    ks = [int(k) for k in args.ks.split(",")]
    precisions = ["fp32"] + (["tf32"] if device.type == "cuda" else []) + (["bf16"] if native_bf16(device) else [])
    variants: dict[tuple[str, int, str, str], tuple[Callable[[], Any], int]] = {}
    if device.type == "cpu":
        variants[("plain port", 1, "fp32", "eager")] = (plain_port(), 1)
    for precision in precisions:
        for k in ks:
            variants[("engine", k, precision, "eager")] = (engine(k, precision, False, args.device), k)
        if not args.no_compile:
            for k in sorted({min(COMPILED_KS), max(ks)} if device.type == "cuda" else COMPILED_KS):
                variants[("engine", k, precision, "compiled")] = (engine(k, precision, True, args.device), k)
    compile_seconds = {}
    for key, (step, _) in variants.items():  # warm-up: kernels, allocator, the compile
        start = time.perf_counter()
        seconds(step, 3, device)
        compile_seconds[key] = time.perf_counter() - start
    flops = TRAIN_FLOPS_PER_SAMPLE * 1024
    share: dict[Any, list[float]] = {key: [] for key in variants}
    ms: dict[Any, list[float]] = {key: [] for key in variants}
    peaks = []
    for _ in range(args.rounds):
        peak = matmul_peak(device, 2048 if device.type == "cpu" else 8192, 2)
        peaks.append(peak)
        for key, (step, k) in variants.items():
            per_model_step = seconds(step, args.steps, device) / (args.steps * k)
            ms[key].append(per_model_step * 1e3)
            share[key].append(flops / peak / per_model_step)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = sorted({f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in cpuinfo})
    rows = []
    one = statistics.median(ms[("engine", min(ks), "fp32", "eager")]) * min(ks)  # per model-step of the smallest stack
    for key in variants:
        impl, k, precision, mode = key
        rows.append({"impl": impl, "k": k, "precision": precision, "mode": mode,
                     "ms_per_model_step": round(statistics.median(ms[key]), 3),
                     "share_of_peak": round(statistics.median(share[key]), 3),
                     "share_range": [round(min(share[key]), 3), round(max(share[key]), 3)],
                     "vs_one_fp32_run": round(one / statistics.median(ms[key]), 2),
                     "first_steps_s": round(compile_seconds[key], 1)})
    info = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(), "flags": flags, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "peak_gflops_median": round(statistics.median(peaks) / 1e9, 1),
            "peak_gflops_range": [round(min(peaks) / 1e9, 1), round(max(peaks) / 1e9, 1)],
            "limit_ms_per_model_step": round(flops / statistics.median(peaks) * 1e3, 3), "rounds": args.rounds, "steps": args.steps}
    print(json.dumps(info))
    print("| engine | K | precision | step | ms per model-step | share of fp32 peak (range) | vs one fp32 run | first 3 steps, s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['k']} | {r['precision']} | {r['mode']} | {r['ms_per_model_step']} | "
              f"{r['share_of_peak'] * 100:.0f} % ({r['share_range'][0] * 100:.0f}-{r['share_range'][1] * 100:.0f}) | "
              f"{r['vs_one_fp32_run']:.2f}x | {r['first_steps_s']} |")
    if args.out:
        args.out.write_text(json.dumps({"machine": info, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
