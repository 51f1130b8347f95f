"""A short torch.profiler look at where overfit's time goes: the training step or a dense evaluation.

Not part of the suite's measurements: it explains them. Profiles `Trainer.run` for a
few hundred relu_1 steps (or `dense_metrics` on the 1000 x 300 picture) after warm-up
and prints the operators by self CPU time, with the share spent in matrix multiplies:

    python -m bench.profile_step              # training step, eager
    python -m bench.profile_step --compile    # training step, torch.compile
    python -m bench.profile_step --dense      # dense evaluation
"""

from __future__ import annotations

import argparse

from torch.profiler import ProfilerActivity, profile

from overfit import Trainer
from overfit.metrics import dense_metrics
from overfit.presets import get_preset
from overfit.training import Event

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "mkldnn", "mkl_")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--dense", action="store_true")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--shapes", action="store_true", help="group operators by input shape")
    args = p.parse_args()

    cfg = get_preset("relu_1").with_overrides({"device": args.device, "compile": args.compile,
                                               "schedule.eval_every": 10**9, "schedule.log_every": 100})
    trainer = Trainer(cfg)
    # Warm up (and compile) outside the profile.
    trainer.cfg = cfg.with_overrides({"schedule.steps": 200})
    trainer.run()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    if args.dense:
        dense_metrics(trainer.model, trainer.target_tensor, trainer.loss_fn)
        with profile(activities=activities, record_shapes=args.shapes) as prof:
            for _ in range(3):
                dense_metrics(trainer.model, trainer.target_tensor, trainer.loss_fn)
    else:
        last = 200 + args.steps
        trainer.cfg = cfg.with_overrides({"schedule.steps": last})
        prof = profile(activities=activities, record_shapes=args.shapes)

        def stop_before_evaluating(event: Event) -> None:
            # run() evaluates after its last step; the "log" event of that step comes first.
            if event.kind == "log" and event.step == last:
                prof.stop()

        prof.start()
        trainer.run(stop_before_evaluating)
    events = prof.key_averages(group_by_input_shape=args.shapes)
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in MATMUL_OPS))
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    print(f"self CPU total {total / 1e3:.1f} ms; matrix multiplies {mm / 1e3:.1f} ms = {mm / max(total, 1):.1%}")


if __name__ == "__main__":
    main()
