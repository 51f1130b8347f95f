"""The limit: this machine's fp32 matmul peak, measured in the same run as everything else.

A large square `torch.mm` is the best case for the BLAS library torch uses, so its
GFLOP/s (2 n^3 / t, best of several) is the ceiling any MLP step can approach; the
trainer's achieved FLOP/s is reported as a fraction of it in the Targets table.
"""

from __future__ import annotations

from typing import Any

import torch

from .common import sync, time_call


def matmul_peak(device: torch.device, n: int, repeats: int) -> dict[str, Any]:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    times = time_call(lambda: torch.mm(a, b, out=out), device, repeats, warmup=1)
    sync(device)
    best = min(times)
    return {"n": n, "repeats": repeats, "best_ms": round(best * 1e3, 3),
            "gflops": round(2 * n**3 / best / 1e9, 2), "median_gflops": round(2 * n**3 / sorted(times)[len(times) // 2] / 1e9, 2)}


def run(rec: Any, device: torch.device, n: int, repeats: int) -> None:
    rec.emit("matmul_peak", dtype="float32", **matmul_peak(device, n, repeats))
