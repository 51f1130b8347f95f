"""`python -m bench`: run the benchmark sections in one process and write the results.

Sections, in order (choose with --only): throughput (overfit eager and compiled, the
plain PyTorch port, the MegEngine original), peak (fp32 matmul), accuracy (time to
90/95/99 % for the six presets), dense (evaluation of the 1000 x 300 picture), scaling
(0.3 to 16 megapixels, one fresh process each), inference (megapixels/s of each render
backend: eager, compiled, onnxruntime), encodings (the fast and grid presets against their
targets, PSNR at equal time for relu, fourier, siren and grid), startup (`overfit --help`,
`presets`, `train --help` and a whole `train fast` as fresh processes), paper_fourier (Table 1
of Tancik et al. 2020 on held-out pixels, always in its --quick form here: the whole table is
`python -m bench.paper_fourier`), and with --full the real 100000-step run.
Thread settings (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, ...) are left as they are.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from overfit.training import DeviceError, resolve_device

from . import accuracy, dense, encodings, full_run, inference, paper_fourier, peak, report, scaling, stacked, startup, throughput
from .common import RESULTS_JSONL, RESULTS_MD, RESULTS_QUICK_MD, Recorder, note

SECTIONS = ("throughput", "peak", "stacked", "accuracy", "dense", "scaling", "inference", "encodings", "startup", "paper_fourier", "full")
DEFAULT_SECTIONS = SECTIONS[:-1]  # "full" takes minutes: only with --full or --only full


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny counts: a smoke test of under a minute, not a measurement (writes RESULTS-quick.md)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda; the same code runs on both")
    p.add_argument("--only", default=None, help=f"comma-separated sections: {','.join(SECTIONS)}")
    p.add_argument("--cap", type=int, default=None, help="step cap per preset for time to accuracy (default 20000)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per throughput row (default 3000)")
    p.add_argument("--tta-compile", choices=("auto", "on", "off"), default="auto",
                   help="torch.compile for time to accuracy; auto: when the throughput section found it faster over the cap")
    p.add_argument("--full", action="store_true", help="also run the real 100000-step relu_1 run (several minutes)")
    p.add_argument("--no-megengine", action="store_true", help="skip the MegEngine baseline")
    args = p.parse_args(argv)
    sections = DEFAULT_SECTIONS + (("full",) if args.full else ())
    if args.only:
        sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
        bad = [s for s in sections if s not in SECTIONS]
        if bad:
            p.error(f"unknown section {bad[0]!r}; choose from {', '.join(SECTIONS)}")
    args.sections = sections
    return args


def use_compile_for_accuracy(rec: Recorder, choice: str, cap: int) -> bool:
    """on/off as asked; auto: compile when cap x compiled step + compile beats cap x eager step."""
    if choice != "auto":
        return choice == "on"
    eager = rec.first("train_throughput", impl="overfit_eager")
    compiled = rec.first("train_throughput", impl="overfit_compiled")
    if not eager or not compiled:
        note("time to accuracy: no throughput figures to choose compile from; training eagerly")
        return False
    return cap * compiled["ms_per_step"] / 1e3 + max(compiled["warmup_s"], 0.0) < cap * eager["ms_per_step"] / 1e3


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
    except DeviceError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    q = args.quick
    steps = args.steps or (300 if q else 3000)
    block = 50 if q else 100
    cap = args.cap or (500 if q else 20_000)
    eval_every = 250 if q else 1000

    rec = Recorder(device, q)
    note(f"device {rec.info['device']}, {rec.info['threads']} threads, torch {torch.__version__}; sections: {','.join(args.sections)}")
    start = time.perf_counter()
    for section in args.sections:
        t = time.perf_counter()
        if section == "throughput":
            throughput.run(rec, args.device, steps, block, megengine=not args.no_megengine)
        elif section == "peak":
            peak.run(rec, device, n=512 if q else 2048, repeats=3 if q else 8)
        elif section == "stacked":
            stacked.run(rec, device, quick=q)
        elif section == "accuracy":
            compile = use_compile_for_accuracy(rec, args.tta_compile, cap)
            accuracy.run(rec, args.device, compile, cap, eval_every)
        elif section == "dense":
            dense.run(rec, args.device, repeats=5 if q else 10)
        elif section == "scaling":
            sizes = scaling.QUICK_SIZES if q else scaling.SIZES
            scaling.run(rec, args.device, sizes, steps=150 if q else 400, block=50 if q else 100, timeout=600)
        elif section == "inference":
            inference.run(rec, args.device, repeats=2 if q else 3,
                          big_scale=inference.QUICK_BIG_SCALE if q else inference.BIG_SCALE)
        elif section == "encodings":
            encodings.run(rec, args.device, quick=q)
        elif section == "startup":
            startup.run(rec, repeats=2 if q else 5)
        elif section == "paper_fourier":  # the quick form only: the full table takes hours on a CPU
            note("paper_fourier (--quick form):\n" + paper_fourier.run(rec, args.device, quick=True))
        elif section == "full":
            compile = use_compile_for_accuracy(rec, args.tta_compile, 100_000)
            full_run.run(rec, args.device, compile, steps=2000 if q else 100_000, eval_every=500 if q else 2000)
        note(f"{section}: {time.perf_counter() - t:.1f} s")

    for t in report.targets(rec):
        rec.emit("target", **t)
    options = {"quick": q, "device": args.device, "sections": ",".join(args.sections), "cap": cap, "throughput_steps": steps}
    md = RESULTS_QUICK_MD if q else RESULTS_MD
    report.write(rec, options, md)
    note(f"total {time.perf_counter() - start:.1f} s; wrote bench/{md.name} and appended to bench/{RESULTS_JSONL.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
