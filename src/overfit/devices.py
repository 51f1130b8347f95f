"""Torch devices: resolving a name to a usable device, and what the device's hardware does natively."""

from __future__ import annotations

import torch

from .errors import DeviceError


def resolve_device(name: str) -> torch.device:
    """`name` as a torch device, or a DeviceError saying why it cannot be used here."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps", field="device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} is not available: this torch build or machine has no CUDA GPU", field="device")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r} is not available: only {torch.cuda.device_count()} CUDA device(s)", field="device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r} is not available: no Apple MPS backend here", field="device")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {name!r} cannot train or render; use cpu, cuda, cuda:N or mps", field="device")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX on a CPU; a bf16 GPU)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


def matmul_peak(device: torch.device | str = "cpu", n: int = 2048, repeats: int = 3) -> float:
    """This device's fp32 matmul rate now, in FLOP/s: the best of `repeats` n x n x n products after one warm-up.

    A large square product is the best case of the BLAS torch uses, so it is the ceiling a
    training step can approach: what `overfit reproduce` divides its arithmetic by. Measured
    once per process for each device, size and torch thread count (a report of several
    variants, or several reports, ask again): later calls return that first measurement.
    """
    import time

    device = torch.device(device)
    key = (str(device), n, repeats, torch.get_num_threads())
    if key in _PEAKS:
        return _PEAKS[key]
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    best = float("inf")
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first is the warm-up
            best = min(best, time.perf_counter() - start)
    _PEAKS[key] = 2 * n**3 / best
    return _PEAKS[key]


_PEAKS: dict[tuple[str, int, int, int], float] = {}  # matmul_peak's measurements in this process
