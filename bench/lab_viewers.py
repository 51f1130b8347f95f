"""How many browser tabs can watch a lab run before training slows: `python -m bench.lab_viewers`.

Starts `overfit lab` in its own process with an empty runs folder, creates one relu_1
run on the built-in OVERFIT (no evaluations inside the measured windows), and for 0,
1 and 5 viewers (WebSocket clients in this process, reading every message as a
browser would) trains for a fixed window and reports, as one JSON line each:
training steps/s measured by the wall clock from the run's step counter (so the
live previews' cost is included), the trainer's own steps/s, and the preview frames
per second each viewer received. With 0 viewers no previews are drawn at all, so it
is the baseline. The load average before each window is recorded: on a shared
machine, compare only windows taken together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Iterator

from .common import cpu_model

RUN = {"preset": "relu_1", "schedule": {"steps": 10**9, "eval_every": 10**9}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(*options: str, prefix: str = "lab-bench-") -> Iterator[tuple[str, int]]:
    """`overfit lab` in its own process on a free port with an empty runs folder, until it answers: (base URL, port).

    `options`: more `overfit lab` options (e.g. "--max-runs", "4"). The process is stopped and its runs
    folder removed when the block ends.
    """
    port = free_port()
    base, runs_dir = f"http://127.0.0.1:{port}", tempfile.mkdtemp(prefix=prefix)
    # --no-token (loopback only): the benchmark's clients measure load, not the login.
    server = subprocess.Popen([sys.executable, "-m", "overfit.cli", "lab", "--no-browser", "--no-token", "--port", str(port),
                               "--runs-dir", runs_dir, *options], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                call(base, "GET", "/api/meta")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the lab did not start") from None
                time.sleep(0.1)
        yield base, port
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(runs_dir, ignore_errors=True)


def call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


async def watch(url: str, seconds: float, counts: dict[str, Any]) -> None:
    """One viewer: read every message for `seconds`, counting previews and their bytes."""
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=left)
            except asyncio.TimeoutError:
                break
            msg = json.loads(text)
            if msg["type"] == "preview":
                counts["previews"] += 1
                counts["bytes"] += len(msg["png"]) * 3 // 4


async def window(base: str, ws_url: str, run_id: str, viewers: int, seconds: float) -> dict[str, Any]:
    counts = [{"previews": 0, "bytes": 0} for _ in range(viewers)]
    load = os.getloadavg()[0]
    # Viewers connect first, then the counter is read: the window holds only steady state.
    tasks = [asyncio.create_task(watch(ws_url, seconds + 1.0, c)) for c in counts]
    await asyncio.sleep(1.0)
    s0, t0 = (await asyncio.to_thread(call, base, "GET", f"/api/runs/{run_id}"))["step"], time.perf_counter()
    await asyncio.sleep(seconds)
    detail = await asyncio.to_thread(call, base, "GET", f"/api/runs/{run_id}")
    s1, t1 = detail["step"], time.perf_counter()
    await asyncio.gather(*tasks)
    fps = [c["previews"] / (seconds + 1.0) for c in counts]
    return {
        "viewers": viewers,
        "steps_per_s": round((s1 - s0) / (t1 - t0), 1),
        "trainer_steps_per_s": round(detail["steps_per_s"] or 0.0, 1),
        "preview_fps_per_viewer": round(statistics.mean(fps), 2) if fps else None,
        "preview_fps_min": round(min(fps), 2) if fps else None,
        "preview_kb": round(sum(c["bytes"] for c in counts) / max(1, sum(c["previews"] for c in counts)) / 1024, 1) if fps else None,
        "load_avg_1min_before": round(load, 2),
        "window_s": seconds,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.lab_viewers", description=__doc__.splitlines()[0])
    p.add_argument("--viewers", default="0,1,5", help="viewer counts to measure, in order (default 0,1,5)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each measured window")
    args = p.parse_args(argv)
    counts = [int(v) for v in args.viewers.split(",")]

    with lab_server("--max-runs", "1") as (base, port):
        run_id = call(base, "POST", "/api/runs", {"config": RUN})["id"]
        call(base, "POST", f"/api/runs/{run_id}/start")
        time.sleep(3.0)  # past the first evaluation and the chunk-size warm-up
        ws_url = f"ws://127.0.0.1:{port}/api/runs/{run_id}/live"
        baseline = None
        for n in counts:
            result = asyncio.run(window(base, ws_url, run_id, n, args.seconds))
            if n == 0 and baseline is None:
                baseline = result["steps_per_s"]
            result["slowdown_vs_0_viewers"] = round(1 - result["steps_per_s"] / baseline, 3) if baseline else None
            print(json.dumps({"bench": "lab_viewers", "device": cpu_model(), "cores": os.cpu_count(), "preset": "relu_1",
                              "target": "OVERFIT 1000x300", **result}), flush=True)
        call(base, "POST", f"/api/runs/{run_id}/pause")


if __name__ == "__main__":
    main()
