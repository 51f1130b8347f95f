"""Does tanh_1 under the original code's double softmax leave the majority-class rate, and how soon: per seed and init.

Trains nothing itself; it reads run folders made by

    overfit train tanh_1 --loss double_softmax --init original --seeds 0-19 --steps 6000 --eval-every 250 --runs-dir R/original
    overfit train tanh_1 --loss double_softmax --init torch    --seeds 0-19 --steps 6000 --eval-every 250 --runs-dir R/torch

and prints, per init, how many seeds have left the majority-class rate (dense ink IoU above 0.01: the
untrained network's is 0-0.2, and every run falls to 0, all background, within 500 steps) by
each budget, with the 95 % Wilson interval at the last, and Fisher's exact test between the inits.

    python -m bench.escape_study R [--out bench/escape_study.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from overfit.reproduce.verdicts import wilson
from overfit.runs import RunFolder

ESCAPED_IOU = 0.01
BUDGETS = (1000, 2000, 3000, 4000, 5000, 6000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out: dict[str, dict] = {}
    for folder in sorted(p for p in args.root.iterdir() if p.is_dir()):
        runs = []
        for run in sorted(folder.iterdir()):
            records = RunFolder(run).metrics()
            first = next((r["step"] for r in records if r["step"] > 0 and r["dense_iou"] > ESCAPED_IOU), None)
            runs.append({"run": run.name, "first_escape": first, "final_iou": round(records[-1]["dense_iou"], 3),
                         "final_acc": round(records[-1]["dense_acc"], 4), "steps": records[-1]["step"]})
        escaped = {b: sum(1 for r in runs if r["first_escape"] is not None and r["first_escape"] <= b) for b in BUDGETS}
        low, high = wilson(escaped[BUDGETS[-1]], len(runs))
        out[folder.name] = {"runs": runs, "escaped_by_step": escaped, "n": len(runs), "wilson_95": [round(low, 3), round(high, 3)]}
        print(f"{folder.name}: escaped by step {escaped} of {len(runs)}; at {BUDGETS[-1]}: 95 % CI {low:.0%}-{high:.0%}")
    if len(out) == 2:
        from scipy.stats import fisher_exact

        (a, da), (b, db) = [(d["escaped_by_step"][BUDGETS[-1]], d["n"]) for d in out.values()]
        p = fisher_exact([[a, da - a], [b, db - b]]).pvalue
        out["fisher_exact_p"] = p
        print(f"Fisher's exact test, escaped at {BUDGETS[-1]} steps, between the two: p = {p:.2g}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
