"""What bf16 changes in the findings: steps to 90 % dense accuracy, fp32 against bf16, eight seeds, relu_1, cos_3 and bn_relu.

Each run stops at 90 % (evaluations every 250 steps, at most 40,000 steps); the eight seeds of a
preset and precision train as one stack. Needs a CPU with native bf16 (or a bf16 GPU). Run alone:

    python -m bench.bf16_findings          # writes bench/bf16_findings.json
"""
import json
import time

from overfit.presets import get_preset
from overfit.training import train_configs

SEEDS = range(8)
out = {}
for preset in ("relu_1", "cos_3", "bn_relu"):
    for precision in ("fp32", "bf16"):
        configs = [get_preset(preset).with_overrides({"seed": s, "precision": precision, "schedule.steps": 40000,
                                                      "schedule.eval_every": 250}) for s in SEEDS]
        reached = [{} for _ in configs]
        def watcher(i):
            def on(e):
                if e.kind == "eval":
                    for th in (0.90, 0.95):
                        if e.metrics["dense_acc"] >= th and th not in reached[i]:
                            reached[i][th] = e.step
                    if 0.90 in reached[i]:
                        e.trainer.request_stop()
            return on
        t = time.time()
        train_configs(configs, [watcher(i) for i in range(len(configs))])
        out[f"{preset} {precision}"] = [{str(k): v for k, v in r.items()} for r in reached]
        print(preset, precision, round(time.time() - t), "s", out[f"{preset} {precision}"], flush=True)
json.dump(out, open("bench/bf16_findings.json", "w"), indent=1)
