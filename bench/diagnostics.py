"""What recording the inside of the network costs: relu_1's training step and evaluation with diagnostics on and off.

"On" is a run as `Session` trains it: the probes of `diagnostics.default_probes()` record the
per-layer statistics at every evaluation (`LayerStatistics`, from the evaluation batch's own
forward pass, with the weights copied at the step before for the update ratio) and the band
errors (`spectrum.BandErrors`). "Off" is the same trainer with no probes. The variants are
interleaved and repeated; medians and ranges are reported, with the ratio on / off.

    python -m bench.diagnostics [--rounds 7]      # JSON lines
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from typing import Any, Callable

from overfit import diagnostics
from overfit.presets import get_preset
from overfit.spectrum import BandErrors
from overfit.stacked import StackedTrainer
from overfit.training import Trainer


@contextlib.contextmanager
def diagnostics_off(trainer: Trainer) -> Any:
    """The trainer with its probes (layer statistics, band errors, weight copies) taken away for the block."""
    saved, trainer.probes = trainer.probes, []
    try:
        yield trainer
    finally:
        trainer.probes = saved


def _seconds(fn: Callable[[], Any], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200, help="steps per timed block (an evaluation every 50 of them)")
    args = parser.parse_args()
    import torch

    from bench.common import cpu_model

    # Evaluations every 50 steps inside the step blocks: the weight copy before each is part of "on".
    cfg = get_preset("relu_1").with_overrides({"schedule.steps": 10**6, "schedule.eval_every": 50})
    trainer = Trainer(cfg, probes=diagnostics.default_probes())
    engine = StackedTrainer([trainer])  # the training engine, a run alone being a stack of one
    trainer.evaluate()
    for _ in range(20):
        engine.step()
    times: dict[str, list[float]] = {"step_on": [], "step_off": [], "eval_on": [], "eval_off": []}
    for _ in range(args.rounds):
        times["step_on"].append(_seconds(engine.step, args.steps))
        times["eval_on"].append(_seconds(trainer.evaluate, 3))
        with diagnostics_off(trainer):
            times["step_off"].append(_seconds(engine.step, args.steps))
            times["eval_off"].append(_seconds(trainer.evaluate, 3))
    # The evaluation's own time swings between levels on a shared machine (a dense pass of 0.45 or 0.95 s here),
    # which an on / off ratio of whole evaluations inherits; the added work itself is timed directly too.
    trainer.model.eval()
    yx, labels = trainer.sampler.sample(cfg.schedule.eval_batch_size, trainer.eval_gen)
    _, prediction = trainer.mode.dense_metrics(trainer.model, trainer.target_tensor, trainer.loss_fn)

    def batch_plain() -> None:
        trainer.mode.batch_metrics(trainer.model, yx, labels, trainer.loss_fn)

    def batch_captured() -> None:
        with diagnostics.capture(trainer.model):
            trainer.mode.batch_metrics(trainer.model, yx, labels, trainer.loss_fn)

    with diagnostics.capture(trainer.model) as seen:
        batch_plain()
    bands = BandErrors()
    added: dict[str, list[float]] = {"capture": [], "layer_record": [], "band_errors": []}
    for _ in range(args.rounds):
        added["capture"].append(max(0.0, _seconds(batch_captured, 10) - _seconds(batch_plain, 10)))
        added["layer_record"].append(_seconds(lambda: diagnostics.layer_record(trainer.model, None, None, seen), 10))
        added["band_errors"].append(_seconds(lambda: bands.after_dense(trainer, {}, prediction), 10))
    trainer.model.train()
    med = {k: statistics.median(v) for k, v in times.items()}
    extra = {k: statistics.median(v) for k, v in added.items()}
    print(json.dumps({
        "bench": "diagnostics", "what": "eval_added_work", "ms": {k: round(v * 1e3, 3) for k, v in extra.items()},
        "ms_total": round(sum(extra.values()) * 1e3, 3), "share_of_eval_off": round(sum(extra.values()) / med["eval_off"], 4),
        "share_of_fastest_eval_off": round(sum(extra.values()) / min(times["eval_off"]), 4),
    }))
    for what in ("step", "eval"):
        on, off = med[f"{what}_on"], med[f"{what}_off"]
        print(json.dumps({
            "bench": "diagnostics", "what": what, "device": cpu_model(), "threads": torch.get_num_threads(),
            "rounds": args.rounds, "ms_on": round(on * 1e3, 3), "ms_off": round(off * 1e3, 3),
            "range_on": [round(min(times[f"{what}_on"]) * 1e3, 3), round(max(times[f"{what}_on"]) * 1e3, 3)],
            "range_off": [round(min(times[f"{what}_off"]) * 1e3, 3), round(max(times[f"{what}_off"]) * 1e3, 3)],
            "on_over_off": round(on / off, 3),
        }))


if __name__ == "__main__":
    main()
