"""The Targets table and bench/RESULTS.md, computed from the records of one suite run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import paper_fourier
from .common import MLP_MACS, TRAIN_FLOPS_PER_SAMPLE, Recorder, fmt, merge_sections

FULL_STEPS, FULL_EVAL_EVERY = 100_000, 2000
FULL_EVALS = FULL_STEPS // FULL_EVAL_EVERY + 1  # one before the first step, then every 2000


def best_overfit(rec: Recorder) -> dict[str, Any] | None:
    """The faster of overfit's eager and compiled trainers (compiled: after its one-off compile)."""
    rows = [r for r in rec.find("train_throughput") if r["impl"].startswith("overfit_")]
    return min(rows, key=lambda r: r["ms_per_step"]) if rows else None


def full_run_estimates(rec: Recorder) -> list[dict[str, Any]]:
    """100000 x ms/step + 51 x Trainer.evaluate (+ the compile), for each overfit trainer measured."""
    evaluate = rec.first("dense_eval", method="trainer_evaluate")
    if evaluate is None:
        return []
    out = []
    for r in rec.find("train_throughput"):
        if not r["impl"].startswith("overfit_"):
            continue
        seconds = FULL_STEPS * r["ms_per_step"] / 1e3 + FULL_EVALS * evaluate["ms"] / 1e3
        if r["impl"] == "overfit_compiled":
            seconds += max(r["warmup_s"], 0.0)
        out.append({"impl": r["impl"], "seconds": seconds})
    return out


def targets(rec: Recorder) -> list[dict[str, Any]]:
    """One row per target: what, measured, required, ratio (>= 1 means met), met."""
    rows: list[dict[str, Any]] = []
    best = best_overfit(rec)
    plain = rec.first("train_throughput", impl="plain_port")
    mge = rec.first("train_throughput", impl="megengine_original")
    peak = rec.first("matmul_peak")
    label = f" ({best['impl'].removeprefix('overfit_')})" if best else ""

    def add(name: str, measured: str, required: str, ratio: float | None, why: str = "", at_peak: str | None = None) -> None:
        rows.append({"target": name, "measured": measured, "required": required,
                     "ratio": None if ratio is None else round(ratio, 3),
                     "met": None if ratio is None else ratio >= 1.0, "at_peak": at_peak, "note": why})

    # What each figure would be if overfit ran at the measured matmul peak: the hardware's ceiling.
    peak_gflops = peak["gflops"] if peak else None
    step_at_peak = TRAIN_FLOPS_PER_SAMPLE * 1024 / (peak_gflops * 1e9) if peak_gflops else None

    name = "overfit training vs MegEngine original, samples/s"
    if best and mge and mge.get("measured"):
        x = best["samples_per_s"] / mge["samples_per_s"]
        add(name, f"{x:.2f}x{label}", ">= 6x", x / 6,
            at_peak=f"{peak_gflops / mge['achieved_gflops']:.2f}x" if peak_gflops else None)
    else:
        add(name, "not measured", ">= 6x", None, (mge or {}).get("reason", "throughput section not run"))

    name = "overfit training vs plain PyTorch port, samples/s"
    if best and plain:
        x = best["samples_per_s"] / plain["samples_per_s"]
        add(name, f"{x:.2f}x{label}", ">= 2.5x", x / 2.5,
            at_peak=f"{peak_gflops / plain['achieved_gflops']:.2f}x" if peak_gflops else None)
    else:
        add(name, "not measured", ">= 2.5x", None, "throughput section not run")

    name = "overfit training FLOP/s as a share of the fp32 matmul peak"
    if best and peak:
        share = best["achieved_gflops"] / peak["gflops"]
        add(name, f"{share:.1%} ({best['achieved_gflops']:.1f} of {peak['gflops']:.1f} GFLOP/s){label}", ">= 75%", share / 0.75,
            at_peak="100%")
    else:
        add(name, "not measured", ">= 75%", None, "needs the throughput and peak sections")

    name = "full relu_1 run, 100000 steps, evaluation every 2000"
    full = rec.first("full_run")
    if full and full["steps"] != FULL_STEPS:
        full = None  # a --quick stand-in, not the real length
    if full:
        add(name + " (measured)", f"{full['wall_s']:.0f} s", "< 180 s", 180 / full["wall_s"])
    estimates = full_run_estimates(rec)
    dense = rec.first("dense_eval", method="dense_metrics")
    dense_at_peak = 2 * MLP_MACS * dense["width"] * dense["height"] / (peak_gflops * 1e9) if dense and peak_gflops else None
    if estimates:
        e = min(estimates, key=lambda r: r["seconds"])
        add(name + " (estimate)", f"{e['seconds']:.0f} s ({e['impl'].removeprefix('overfit_')})", "< 180 s", 180 / e["seconds"],
            "estimate: 100000 x ms/step + 51 x Trainer.evaluate" + (" + compile" if e["impl"] == "overfit_compiled" else ""),
            at_peak=f"{FULL_STEPS * step_at_peak + FULL_EVALS * dense_at_peak:.0f} s" if step_at_peak and dense_at_peak else None)
    elif not full:
        add(name, "not measured", "< 180 s", None, "needs the throughput and dense sections")

    name = "dense evaluation of 1000 x 300 (dense_metrics)"
    if dense:
        add(name, f"{dense['ms']:.1f} ms", "< 50 ms", 50 / dense["ms"],
            at_peak=f"{dense_at_peak * 1e3:.0f} ms" if dense_at_peak else None)
    else:
        add(name, "not measured", "< 50 ms", None, "dense section not run")

    # The largest render measured (16 megapixels in a full run): the best backend against eager PyTorch.
    name = "best render backend vs eager PyTorch, megapixels/s"
    inference = [r for r in rec.find("inference") if r.get("measured")]
    if inference:
        pixels = max(r["width"] * r["height"] for r in inference)
        at_size = [r for r in inference if r["width"] * r["height"] == pixels]
        eager = next((r for r in at_size if r["backend"] == "torch"), None)
        best = max(at_size, key=lambda r: r["megapixels_per_s"])
        if eager:
            x = best["megapixels_per_s"] / eager["megapixels_per_s"]
            peak_mps = peak_gflops * 1e9 / (2 * MLP_MACS) / 1e6 if peak_gflops else None
            add(f"{name} ({best['width']} x {best['height']})", f"{x:.2f}x ({best['backend']}, {best.get('precision', 'fp32')})", ">= 2x", x / 2,
                at_peak=f"{peak_mps / eager['megapixels_per_s']:.2f}x" if peak_mps else None)
    else:
        add(name, "not measured", ">= 2x", None, "inference section not run")

    # The modern presets (encodings section): training seconds, set-up excluded.
    fast = rec.first("fast_overfit")
    name = "fast preset: 99.9 % dense accuracy on OVERFIT, training seconds"
    if fast and fast["reached"]:
        add(name, f"{fast['train_s']:.2f} s ({fast['steps']} steps)", "< 1 s", 1.0 / fast["train_s"],
            f"set-up excluded: import {fast['import_s']:.2f} s, target {fast['target_s']:.2f} s, model {fast['setup_s']:.2f} s")
    else:
        add(name, "not reached" if fast else "not measured", "< 1 s", 0.0 if fast else None,
            f"final accuracy {fast['final_acc']:.4f}" if fast else "encodings section not run")
    for level, limit in ((40.0, 5.0), (50.0, 30.0)):
        hit = rec.first("grid_camera", target_db=level)
        name = f"grid preset: {level:.0f} dB PSNR on the 512 x 512 camera, training seconds"
        if hit and hit["reached"]:
            add(name, f"{hit['train_s']:.2f} s ({hit['steps']} steps)", f"< {limit:.0f} s", limit / hit["train_s"])
        else:
            add(name, "not reached" if hit else "not measured", f"< {limit:.0f} s", 0.0 if hit else None,
                f"final {hit['final_db']} dB after {hit['final_s']} s" if hit else "encodings section not run (needs scikit-image)")
    return rows


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return out + [""]


def markdown(rec: Recorder, options: dict[str, Any]) -> str:
    info = rec.info
    lines = ["# overfit benchmark results", "",
             "Written by `python -m bench` (`make bench`); every figure below is also a JSON line in",
             "`bench/results.jsonl` (run id `" + rec.run_id + "`). All sections ran in one process, one after",
             "another, on the machine below." + (" **Quick smoke-test settings: not representative.**" if rec.quick else ""), "",
             "## Machine", ""]
    lines += _table(["what", "value"], [
        ["device", info["device"]], ["CPU", info["cpu"]], ["cores (os.cpu_count)", info["cores"]],
        ["torch threads (torch.get_num_threads)", info["threads"]], ["CPU capability (torch)", info["cpu_capability"]],
        ["torch", info["torch"]], ["Python", info["python"]], ["platform", info["platform"]], ["date", info["date"]],
        ["thread env vars", ", ".join(f"{k}={v}" for k, v in info["thread_env"].items()) or "none set"],
        ["options", " ".join(f"{k}={v}" for k, v in options.items())],
    ])

    tp = rec.find("train_throughput")
    peak = rec.first("matmul_peak")
    if tp:
        plain = rec.first("train_throughput", impl="plain_port")
        mge = rec.first("train_throughput", impl="megengine_original")
        lines += ["## 1. Training throughput, original recipe (relu_1, batch 1024, Adam 1e-4)", "",
                  "Median block of steps after warm-up. GFLOP/s counts 6 x " + f"{MLP_MACS:,}" +
                  " multiply-adds per sample (" + f"{TRAIN_FLOPS_PER_SAMPLE:,}" + " FLOP, forward + backward).", ""]
        rows = []
        for r in tp:
            if not r.get("ms_per_step"):
                rows.append([r["impl"], "not measured: " + r.get("reason", ""), None, None, None, None, None, None])
                continue
            rows.append([
                r["impl"], r["ms_per_step"], r["samples_per_s"],
                r["samples_per_s"] / plain["samples_per_s"] if plain else None,
                r["samples_per_s"] / mge["samples_per_s"] if mge and mge.get("measured") else "not measured",
                r["achieved_gflops"], r["achieved_gflops"] / peak["gflops"] if peak else None,
                r.get("warmup_s"),
            ])
        lines += _table(["implementation", "ms/step", "samples/s", "x plain port", "x MegEngine", "GFLOP/s", "share of peak", "warm-up s (compile)"], rows)
        if mge and mge.get("measured"):
            lines += [f"MegEngine {mge['megengine']} ran on its default device `{mge['megengine_device']}`, in bench/.megengine-venv.", ""]
    if peak:
        lines += ["## 2. The limit: fp32 matmul peak", ""]
        lines += _table(["matmul", "best ms", "best GFLOP/s", "median GFLOP/s"],
                        [[f"{peak['n']}^3 x {peak['repeats']}", peak["best_ms"], peak["gflops"], peak["median_gflops"]]])

    tta = rec.find("time_to_accuracy")
    if tta:
        r0 = tta[0]
        lines += ["## 3. Time to accuracy on the built-in OVERFIT", "",
                  f"Dense accuracy every {r0['eval_every']} steps, cap {r0['cap']:,} steps, compile={r0['compile']}; "
                  "seconds are training only (the trainer's train_seconds, evaluations excluded"
                  + (", the one-off compile included" if r0["compile"] else "") + ").", ""]
        rows = []
        for r in tta:
            cells = [r["preset"]]
            for k in ("90", "95", "99"):
                cells += [r[f"steps_to_{k}"] if r[f"reached_{k}"] else "not reached", r[f"seconds_to_{k}"]]
            cells += [r["best_dense_acc"], r["steps_run"], r["train_seconds"]]
            rows.append(cells)
        lines += _table(["preset", "steps to 90%", "s", "steps to 95%", "s", "steps to 99%", "s", "best acc", "steps run", "train s"], rows)

    dense = rec.find("dense_eval")
    if dense:
        d0 = dense[0]
        lines += [f"## 4. Dense evaluation / rendering, {d0['width']} x {d0['height']}", "",
                  f"Median of {d0['repeats']} runs, relu_1 model.", ""]
        lines += _table(["method", "ms", "best ms", "megapixels/s"], [[r["method"], r["ms"], r["ms_min"], r["megapixels_per_s"]] for r in dense])

    sc = rec.find("scaling")
    if sc:
        lines += ["## 5. Scaling with picture size", "",
                  "Each size in a fresh process. Step: median log window of the real loop; evaluation: `Trainer.evaluate`",
                  "(the faster of the one before the first step and the one after the last). RSS growth: peak RSS minus the",
                  "baseline after imports and warm-up, also as a multiple of the picture's own size (1 byte per pixel).", ""]
        rows = []
        first = next((r for r in sc if r.get("measured")), None)
        for r in sc:
            if not r.get("measured"):
                rows.append([f"{r['width']} x {r['height']}", "not measured: " + r.get("reason", "")] + [None] * 8)
                continue
            extra_px = (r["width"] * r["height"] - first["width"] * first["height"]) if first else 0
            marginal = (r["rss_growth_mb"] - first["rss_growth_mb"]) * 2**20 / extra_px if extra_px > 0 else None
            rows.append([f"{r['width']} x {r['height']}", r["megapixels"], r["ms_per_step"], r["eval_ms"], r["eval_megapixels_per_s"],
                         r["peak_rss_mb"], r["rss_growth_mb"], r["rss_growth_x_picture"], marginal, r["render_s"]])
        lines += _table(["size", "megapixels", "ms/step", "eval ms", "eval MP/s", "peak RSS MB", "RSS growth MB",
                         "growth x picture", "extra bytes per extra pixel", "render s"], rows)
        lines += ["\"Extra bytes per extra pixel\": RSS growth beyond the smallest size divided by the extra pixels; a constant",
                  "here means memory grows linearly with the picture and the per-chunk cost stays fixed.", ""]

    inf = rec.find("inference")
    if inf:
        repeats = next((r["repeats"] for r in inf if r.get("measured")), "-")
        lines += ["## 6. Render backends (`overfit render --backend`), relu_1", "",
                  f"`overfit.render.predict` with each backend of `overfit.inference.inference_backend`; median of {repeats} renders",
                  "after a warm-up. Setup: the one-off cost of making the backend (compile, ONNX export). Max abs diff: largest",
                  "difference from eager PyTorch's 1000 x 300 render (values in [0, 1]; the compiled backend takes bf16 only where",
                  "its values stay within 1/255 of fp32 on probe points).", ""]
        rows = []
        for r in inf:
            if not r.get("measured"):
                rows.append([r["backend"], None, f"{r['width']} x {r['height']}", "not measured: " + r.get("reason", "")] + [None] * 6)
                continue
            rows.append([r["backend"], r.get("precision"), f"{r['width']} x {r['height']}", r["megapixels"], r["ms"], r["ms_min"],
                         r["megapixels_per_s"], r["x_eager"], r["setup_s"], f"{r['max_abs_diff']:.1e}"])
        lines += _table(["backend", "precision", "size", "megapixels", "ms", "best ms", "megapixels/s", "x eager", "setup s",
                         "max abs diff"], rows)

    fast, grid, equal = rec.first("fast_overfit"), rec.find("grid_camera"), rec.find("equal_time_camera")
    if fast or grid or equal:
        lines += ["## Encodings: the modern presets", "",
                  "Training seconds are the trainer's own clock (steps only; evaluations, import and set-up excluded).",
                  "`fast` on the built-in OVERFIT; `grid` and the equal-time comparison on scikit-image's 512 x 512",
                  "grayscale `camera` (`--mode gray`). Bytes per pixel: 4 bytes per parameter over the picture's pixels.", ""]
    if fast:
        lines += _table(["preset", "target", "reached", "train s", "steps", "final acc", "import s", "target s", "set-up s", "parameters"],
                        [["fast", "99.9 % dense accuracy", fast["reached"], fast["train_s"], fast["steps"], fast["final_acc"],
                          fast["import_s"], fast["target_s"], fast["setup_s"], fast["params"]]])
    if grid:
        lines += _table(["preset", "target", "reached", "train s", "steps", "final dB", "final train s", "parameters", "bytes/pixel"],
                        [["grid", f"{r['target_db']:.0f} dB", r["reached"], r["train_s"], r["steps"], r["final_db"], r["final_s"],
                          r["params"], r["bytes_per_pixel"]] for r in grid])
    if equal:
        lines += [f"PSNR at equal training time ({equal[0]['budget_s']:g} s each; each preset's own rate schedule fitted to the budget):", ""]
        lines += _table(["preset", "PSNR dB", "SSIM", "steps", "train s", "batch", "parameters", "bytes/pixel"],
                        [[r["preset"], r["psnr"], r["ssim"], r["steps"], r["train_s"], r["batch"], r["params"], r["bytes_per_pixel"]]
                         for r in equal])

    full = rec.first("full_run")
    if full:
        lines += ["## Full run (measured with --full)", ""]
        lines += _table(["steps", "evaluations", "wall s", "train s", "final dense acc"],
                        [[full["steps"], full["evaluations"], full["wall_s"], full["train_seconds"], full["final_dense_acc"]]])

    paper = rec.find("paper_fourier")
    if paper:
        lines += [paper_fourier.section(paper, rec.run_id, info["device"], info["thread_env"]), ""]

    lines += ["## Targets", "",
              "Ratio: measured over required (for \"<\" targets required over measured); 1 or more means met.",
              "\"At the peak\" is the hardware's ceiling: the figure overfit would reach if its training step and dense",
              "evaluation ran at the measured fp32 matmul peak (FLOPs as counted above; evaluation = 2 x multiply-adds per pixel).", ""]
    lines += _table(["target", "measured", "required", "ratio", "met?", "at the peak", "note"],
                    [[t["target"], t["measured"], t["required"], t["ratio"],
                      "not measured" if t["met"] is None else ("met" if t["met"] else "not met"), t["at_peak"], t["note"]]
                     for t in targets(rec)])
    return "\n".join(lines)


def write(rec: Recorder, options: dict[str, Any], path: Path) -> None:
    """Write the suite's Markdown to `path`, keeping the sections other benchmarks wrote there (not the suite's own)."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(merge_sections(markdown(rec, options), old), encoding="utf-8")
