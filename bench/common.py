"""What every benchmark shares: the machine's description, timing helpers and the result log.

A result is one flat JSON object: {"bench": ..., "device": ..., "threads": ..., figures...}.
`Recorder` prints each as one line on stdout, appends it to bench/results.jsonl and
keeps it for RESULTS.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_JSONL = BENCH_DIR / "results.jsonl"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
# --quick smoke tests write here, so they never replace the real RESULTS.md.
RESULTS_QUICK_MD = BENCH_DIR / "RESULTS-quick.md"

# The MLP of the original recipe, 2-64-256-64-2: multiply-adds per sample, forward only.
MLP_MACS = 2 * 64 + 64 * 256 + 256 * 64 + 64 * 2
# Training FLOPs per sample: 2 FLOPs per multiply-add, backward ~ twice the forward.
TRAIN_FLOPS_PER_SAMPLE = 6 * MLP_MACS
# Thread settings a reader may want to know about; the suite never changes them.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS")


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """A human name for the device results were measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def machine_info(device: torch.device) -> dict[str, Any]:
    """Everything RESULTS.md says about where the numbers come from."""
    return {
        "device": device_name(device),
        "device_type": device.type,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
    }


def sync(device: torch.device) -> None:
    """Wait for queued device work, so a timer measures it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of `repeats` calls of fn after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def block_stats(block_seconds: Iterable[float], block: int, warmup_blocks: int, batch: int) -> dict[str, Any]:
    """Median ms/step and samples/s over timed blocks of `block` steps, the first `warmup_blocks` dropped."""
    blocks = list(block_seconds)
    timed = blocks[warmup_blocks:] or blocks
    med = statistics.median(timed) / block
    return {
        "ms_per_step": round(med * 1e3, 4),
        "samples_per_s": round(batch / med, 1),
        "ms_per_step_min": round(min(timed) / block * 1e3, 4),
        "ms_per_step_max": round(max(timed) / block * 1e3, 4),
        "blocks": len(timed),
        "block_steps": block,
        "warmup_blocks": len(blocks) - len(timed),
    }


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a Markdown table: 3 significant digits, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if abs(value) >= 10 ** digits:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


class Recorder:
    """Prints, appends and keeps the suite's results; every record gets device, threads and run id."""

    def __init__(self, device: torch.device, quick: bool, path: Path = RESULTS_JSONL) -> None:
        self.info = machine_info(device)
        self.path = path
        self.run_id = f"{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
        self.quick = quick
        self.records: list[dict[str, Any]] = []

    def emit(self, bench: str, **figures: Any) -> dict[str, Any]:
        record = {"bench": bench, "device": self.info["device"], "threads": self.info["threads"], **figures,
                  "run": self.run_id, "quick": self.quick}
        self.records.append(record)
        line = json.dumps(record)
        print(line, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        return record

    def find(self, bench: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.records if r["bench"] == bench and all(r.get(k) == v for k, v in match.items())]

    def first(self, bench: str, **match: Any) -> dict[str, Any] | None:
        found = self.find(bench, **match)
        return found[0] if found else None


def note(message: str) -> None:
    """Progress and skip messages go to stderr, so stdout stays one JSON line per result."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- RESULTS.md: sections by title -------------------------------------------------------------------

def sections(markdown: str) -> tuple[str, dict[str, str]]:
    """(the text before the first "## " heading, {heading line: the heading and its text}), in order."""
    head, out, title = [], {}, None
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line
            out[title] = []
        (out[title] if title else head).append(line)
    return "\n".join(head), {t: "\n".join(lines).rstrip() + "\n" for t, lines in out.items()}


def merge_sections(new: str, old: str) -> str:
    """`new` with the sections of `old` it lacks appended in their order: what other benchmarks wrote survives a rewrite."""
    _, have = sections(new)
    _, before = sections(old)
    kept = [text for title, text in before.items() if title not in have]
    return "\n".join([new.rstrip() + "\n", *kept])


def write_section(path: Path, text: str) -> None:
    """Put the section `text` (starting with its "## " heading) into the Markdown file at `path`: in place of the
    section of the same heading, or at the end; the file's other sections are kept as they are."""
    title = text.splitlines()[0]
    assert title.startswith("## "), title
    old = path.read_text(encoding="utf-8") if path.exists() else "# overfit benchmark results\n"
    head, parts = sections(old)
    parts[title] = text.rstrip() + "\n"
    path.write_text("\n".join([head.rstrip() + "\n", *parts.values()]), encoding="utf-8")
