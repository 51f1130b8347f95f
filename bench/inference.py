"""Inference throughput: megapixels per second of each `overfit render --backend`, side by side.

A relu_1 model (freshly initialised: speed does not depend on the weights) is rendered
through `overfit.render.predict`, the path `overfit render` takes, by every backend of
`overfit.inference.BACKENDS`: the 1000 x 300 picture at its own size, then a 16-megapixel
render of it (7303 x 2191). All backends are made first (`setup_s`: the one-off cost,
torch.compile's compile or the ONNX export and session), then each size is timed for
each backend in turn: the median of `repeats` renders after one warm-up render.
`max_abs_diff` is the largest difference of the 1000 x 300 render from eager PyTorch's;
`precision` says whether the compiled backend chose bf16 (see `inference_backend`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

from overfit.errors import OverfitError
from overfit.inference import BACKENDS, inference_backend
from overfit.loading import LoadedRun
from overfit.models import model_for
from overfit.presets import get_preset
from overfit.render import Region, predict

from .common import note, time_call

HEIGHT, WIDTH = 300, 1000
BIG_SCALE = 7.303  # 7303 x 2191 = 16.0 megapixels
QUICK_BIG_SCALE = 2.0


def run(rec: Any, device: str, repeats: int, big_scale: float = BIG_SCALE) -> None:
    cfg = get_preset("relu_1").with_overrides({"device": device})
    torch.manual_seed(cfg.seed)
    dev = torch.device(device)
    model = model_for(cfg, HEIGHT, WIDTH).eval().to(dev)
    loaded = LoadedRun(model, cfg, HEIGHT, WIDTH, 0)
    region = Region.whole(HEIGHT, WIDTH)
    sizes = [(HEIGHT, WIDTH), (round(HEIGHT * big_scale), round(WIDTH * big_scale))]

    backends: dict[str, Any] = {}
    setup: dict[str, float] = {}
    for name in BACKENDS:
        t = time.perf_counter()
        try:
            backends[name] = inference_backend(loaded, name, dev)
        except OverfitError as e:
            note(f"inference: backend {name} not measured: {e}")
            for h, w in sizes:
                rec.emit("inference", backend=name, width=w, height=h, measured=False, reason=str(e))
            continue
        setup[name] = time.perf_counter() - t

    reference = predict(model, cfg.data.mode, HEIGHT, WIDTH, region, device=dev)
    diffs = {name: float(np.abs(predict(fn, cfg.data.mode, HEIGHT, WIDTH, region, device=dev) - reference).max())
             for name, fn in backends.items()}

    for h, w in sizes:
        megapixels = h * w / 1e6
        eager = None
        for name, fn in backends.items():
            times = time_call(lambda fn=fn, h=h, w=w: predict(fn, cfg.data.mode, h, w, region, device=dev), dev, repeats, warmup=1)
            med = statistics.median(times)
            mps = megapixels / med
            if name == "torch":
                eager = mps
            rec.emit("inference", backend=name, precision=fn.precision, width=w, height=h, measured=True, megapixels=round(megapixels, 3),
                     repeats=repeats, ms=round(med * 1e3, 1), ms_min=round(min(times) * 1e3, 1),
                     megapixels_per_s=round(mps, 3), x_eager=round(mps / eager, 3) if eager else None,
                     setup_s=round(setup[name], 2), max_abs_diff=diffs[name])
