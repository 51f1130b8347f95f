"""Why tanh_1 under the original code's double softmax is trapped at "all background" in some seeds and escapes in others.

The reading of the maths: the network's output passes through a softmax, and the loss applies
a second one, so the loss sees s = p_bg - p_ink in [-1, 1] and P(background) = sigmoid(s).
For a constant prediction the loss's slope in s is sigmoid(s) - q, q the background share
(0.80 on the default picture): while sigmoid(s) < q it pushes s up, and sigmoid(1) = 0.731 < q,
so it pushes towards "all background" without end. s can only approach 1 by the first
softmax's logit margin z_bg - z_ink growing, which the tanh units can only give by growing
their pre-activations: they saturate, their gradients (1 - tanh^2) vanish, and the run
freezes there, unless the picture's structure is picked up before that happens.

This study measures it: tanh_1 with the double softmax, SEEDS seeds per init (`original` and
PyTorch's `torch`), trained together (the one engine) for STEPS steps. Every LOG_EVERY steps it
records, on a fixed sample of 4,096 pixels: the mean logit margin z_bg - z_ink, the share of
tanh activations pinned (|a| > 0.99, the activation registry's `saturated`) over the hidden
layers, and the share of units saturated on every sample; every EVAL_EVERY steps the dense ink
IoU. A run has escaped when its dense ink IoU passes 0.01 (as bench/escape_study.py). It
prints, per init, escaped vs trapped seeds and the medians of each measure at steps 250, 500
and 1,000 in each group, and writes everything to the JSON file.

    python -m bench.trap_study [--seeds 20] [--steps 3000] [--out bench/trap_study.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from overfit.activations import ACTIVATIONS
from overfit.diagnostics import forward_layers
from overfit.metrics import BACKGROUND
from overfit.presets import get_preset
from overfit.stacked import train_stacks
from overfit.training import Trainer

ESCAPED_IOU = 0.01
LOG_EVERY = 50
EVAL_EVERY = 500
AT = (0, 250, 500, 1000)


def _measure(trainer: Trainer, yx: torch.Tensor) -> dict[str, float]:
    model = trainer.model
    with torch.no_grad():
        layers = forward_layers(model, yx)
        z = model(yx)
    pinned = ACTIVATIONS["tanh"].saturated
    return {
        "margin": float((z[:, BACKGROUND] - z[:, 1 - BACKGROUND]).mean()),
        "saturated_share": statistics.fmean(float(pinned(a).float().mean()) for _, a in layers),
        "saturated_units": statistics.fmean(float(pinned(a).all(dim=0).float().mean()) for _, a in layers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("bench/trap_study.json"))
    args = parser.parse_args()
    base = get_preset("tanh_1").with_overrides({"loss": "double_softmax", "compile": False, "schedule.steps": args.steps,
                                                "schedule.eval_every": EVAL_EVERY, "schedule.log_every": LOG_EVERY})
    configs = [base.with_overrides({"model.init": init, "seed": seed}) for init in ("original", "torch") for seed in range(args.seeds)]
    trainers = [Trainer(cfg) for cfg in configs]
    target = trainers[0].target
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, target.height * target.width, (4096,), generator=g)
    yx = torch.stack([index // target.width, index % target.width], 1).float()
    traces: list[list[dict[str, Any]]] = [[] for _ in trainers]

    def watch(k: int) -> Any:
        def on_event(event: Any) -> None:
            if event.kind in ("log", "eval") and (not traces[k] or traces[k][-1]["step"] != event.step):
                traces[k].append({"step": event.step, **_measure(trainers[k], yx)})
            if event.kind == "eval":
                traces[k][-1]["dense_iou"] = event.metrics["dense_iou"]
        return on_event

    train_stacks(trainers, [watch(k) for k in range(len(trainers))])
    runs = []
    for cfg, trace in zip(configs, traces):
        first = next((r["step"] for r in trace if r["step"] > 0 and r.get("dense_iou", 0.0) > ESCAPED_IOU), None)
        runs.append({"init": cfg.model.init, "seed": cfg.seed, "escaped_at": first, "trace": trace})
    summary: dict[str, Any] = {}
    for init in ("original", "torch"):
        mine = [r for r in runs if r["init"] == init]
        groups = {"escaped": [r for r in mine if r["escaped_at"] is not None], "trapped": [r for r in mine if r["escaped_at"] is None]}
        summary[init] = {"seeds_escaped": len(groups["escaped"]), "seeds_trapped": len(groups["trapped"]), "medians": {}}
        print(f"{init}: {len(groups['escaped'])} of {len(mine)} seeds escaped by step {args.steps:,}")
        for name, group in groups.items():
            for step in AT:
                rows = [next((r for r in run["trace"] if r["step"] == step), None) for run in group]
                rows = [r for r in rows if r is not None]
                if not rows:
                    continue
                med = {key: statistics.median(r[key] for r in rows) for key in ("margin", "saturated_share", "saturated_units")}
                summary[init]["medians"].setdefault(name, {})[str(step)] = med
                print(f"  {name:8s} step {step:5,}: margin {med['margin']:+.3f}  pinned activations {med['saturated_share']:.1%}  "
                      f"saturated units {med['saturated_units']:.1%}  (median of {len(rows)})")
    args.out.write_text(json.dumps({"steps": args.steps, "seeds": args.seeds, "summary": summary, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
