"""Is the original's "flipping between all black and all white" of ReLU on raw coordinates in the network, or in the plot?

The original program showed, every 2,000 steps, `plt.scatter(x, y, c=pred[:, 1], s=4)` of 4,096
random pixels: the network's softmax output for class 1, coloured by matplotlib's default,
auto-scaled colour map. A colour map scaled to the values shown maps the smallest value to its
lowest colour and the largest to its highest; when every value is the same (vmin == vmax),
matplotlib maps them all to the lowest colour. So a network whose output is pinned at exactly
1.0 everywhere is drawn in the lowest colour, and the same network with a single point at
0.99999 is drawn almost all in the highest: a "flip" on screen with no change in what the
network predicts.

This study trains relu_raw (no input scaling) with the original's double softmax for SEEDS
seeds and, every EVERY steps, shows each network a fresh batch of 4,096 random pixels as the
original did. Per showing it records what the network predicts (the share of pixels whose
argmax is background; whether the batch is all background or all ink) and what the original's
plot showed (the mean of the auto-scaled colour values: near 0 the lowest colour, near 1 the
highest; and whether the values were all exactly equal). It counts flips of each between
consecutive showings and draws two consecutive showings of one run as the original's plot
drew them, beside what the network predicted (bench/flip_study.png).

    python -m bench.flip_study [--seeds 10] [--steps 10000] [--every 500]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from overfit.metrics import BACKGROUND
from overfit.presets import get_preset
from overfit.stacked import train_stacks
from overfit.training import Trainer

SHOWN = 4096  # pixels per showing, as the original's validation batch


def _display(values: np.ndarray) -> np.ndarray:
    """The colour values matplotlib's default Normalize gives `values`: scaled to [0, 1] by their own range, all 0 when
    the range is empty (matplotlib's choice for vmin == vmax)."""
    from matplotlib.colors import Normalize

    return np.ma.filled(Normalize()(values), 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench/flip_study.json"))
    args = parser.parse_args()
    base = get_preset("relu_raw").with_overrides({"loss": "double_softmax", "compile": False, "schedule.steps": args.steps,
                                                  "schedule.eval_every": args.steps, "schedule.log_every": args.every})
    trainers = [Trainer(base.with_overrides({"seed": seed})) for seed in range(args.seeds)]
    target = trainers[0].target
    shows: list[list[dict[str, Any]]] = [[] for _ in trainers]
    kept: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def watch(k: int) -> Any:
        g = torch.Generator().manual_seed(1000 + k)

        def on_event(event: Any) -> None:
            if event.kind != "log" or event.step % args.every:
                return
            index = torch.randint(0, target.height * target.width, (SHOWN,), generator=g)
            yx = torch.stack([index // target.width, index % target.width], 1).float()
            with torch.no_grad():
                p = trainers[k].model(yx).softmax(dim=1)[:, BACKGROUND].numpy()  # the original's pred[:, 1]
            shown = _display(p)
            kept[(k, event.step)] = (yx.numpy(), p)
            shows[k].append({"step": event.step, "background_share": float((p > 0.5).mean()), "min": float(p.min()),
                             "max": float(p.max()), "all_equal": bool(p.min() == p.max()), "display_mean": float(shown.mean())})
        return on_event

    train_stacks(trainers, [watch(k) for k in range(len(trainers))])
    real = shown_flips = all_ink = all_background = equal = total = 0
    for runs in shows:
        for a, b in zip(runs, runs[1:]):
            real += (a["background_share"] > 0.5) != (b["background_share"] > 0.5)
            shown_flips += (a["display_mean"] > 0.5) != (b["display_mean"] > 0.5)
        for s in runs:
            total += 1
            all_ink += s["background_share"] == 0.0
            all_background += s["background_share"] == 1.0
            equal += s["all_equal"]
    summary = {"showings": total, "all_background": all_background, "all_ink": all_ink, "all_values_equal": equal,
               "flips_in_prediction": real, "flips_in_plot": shown_flips}
    print(f"{args.seeds} seeds x {args.steps:,} steps, a showing every {args.every}: {total} showings")
    print(f"  all background: {all_background}, all ink: {all_ink}, every value exactly equal: {equal}")
    print(f"  flips between consecutive showings: in what the network predicts {real}, in what the plot shows {shown_flips}")
    _figure(shows, kept, target, args.out.with_suffix(".png"))
    args.out.write_text(json.dumps({"seeds": args.seeds, "steps": args.steps, "every": args.every, "summary": summary,
                                    "runs": shows}, indent=1) + "\n")


def _figure(shows: list[list[dict[str, Any]]], kept: dict, target: Any, path: Path) -> None:
    """Two consecutive showings whose plot flipped, as the original drew them (top) and as predicted (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pair = next(((k, a, b) for k, runs in enumerate(shows) for a, b in zip(runs, runs[1:])
                 if (a["display_mean"] > 0.5) != (b["display_mean"] > 0.5)), None)
    if pair is None:
        return
    k, a, b = pair
    fig, axes = plt.subplots(2, 2, figsize=(10, 4.2))
    for col, show in enumerate((a, b)):
        yx, p = kept[(k, show["step"])]
        axes[0, col].scatter(yx[:, 1], yx[:, 0], c=p, s=4)  # the original's plot_scatter: default, auto-scaled colours
        axes[0, col].set_title(f"seed {k}, step {show['step']:,}: as the original plotted it", fontsize=9)
        axes[1, col].scatter(yx[:, 1], yx[:, 0], c=p, s=4, vmin=0.0, vmax=1.0)
        axes[1, col].set_title(f"fixed scale 0-1: background share {show['background_share']:.0%}, "
                               f"values {show['min']:.6f}-{show['max']:.6f}", fontsize=9)
        for row in range(2):
            axes[row, col].set_xlim(0, target.width)
            axes[row, col].set_ylim(0, target.height)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
