"""How the lab answers under load while it trains: `python -m bench.lab_load [--quick]`.

Starts `overfit lab` in its own process on a free port with an empty runs folder and
4 runs training tiny text pictures (64 x 32, a 32-32 network, no evaluations inside
the measured windows). First an idle window: training alone, its steps/s summed over
the runs (the baseline). Then a loaded window of the same length, all at once:
20 WebSocket viewers (5 per run, each reading every message as a browser would),
50 concurrent creates of new runs, and a stream of GETs, one after another: a run's
state (GET /api/runs/ID, round robin) and, every tenth request, the list of runs.

Reported, one JSON line each: the idle steps/s; then for the loaded window the p50 and
p95 latency of each kind of GET, of a WebSocket's first message (connect -> snapshot)
and of the gaps between a viewer's messages (how stale the live view gets), the
creates' latency, and the training slowdown (steps/s loaded vs idle). The goal to
report against: p95 of a GET under 100 ms on 2 cores while training. The load
average before each window is recorded: on a shared machine, compare only windows
taken together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from typing import Any

from .common import cpu_model
from .lab_viewers import lab_server

RUN = {
    "data": {"text": "LOAD", "width": 64, "height": 32},
    "model": {"hidden": [32, 32]},
    "schedule": {"steps": 10**9, "eval_every": 10**9, "log_every": 50},
}
NEW_RUN = {"data": {"text": "NEW", "width": 64, "height": 32}, "model": {"hidden": [16, 16]}, "schedule": {"steps": 100}}
GOAL_GET_P95_MS = 100.0
LIST_EVERY = 10  # every tenth GET of the stream lists the runs


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def ms(values: list[float], name: str) -> dict[str, Any]:
    """p50, p95 and count of `values` (seconds) as milliseconds."""
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return {f"{name}_p50_ms": None if p50 is None else round(p50 * 1e3, 1),
            f"{name}_p95_ms": None if p95 is None else round(p95 * 1e3, 1), f"{name}_n": len(values)}


async def total_steps(client: Any, run_ids: list[str]) -> int:
    steps = 0
    for run_id in run_ids:
        steps += (await client.get(f"/api/runs/{run_id}")).json()["step"]
    return steps


async def steps_per_s(client: Any, run_ids: list[str], seconds: float) -> float:
    """Steps per second summed over the runs, by their step counters over `seconds`."""
    s0, t0 = await total_steps(client, run_ids), time.perf_counter()
    await asyncio.sleep(seconds)
    s1, t1 = await total_steps(client, run_ids), time.perf_counter()
    return (s1 - s0) / (t1 - t0)


async def viewer(url: str, until: float, snapshot: list[float], gaps: list[float], failures: list[str]) -> None:
    """One browser tab: connect, wait for the snapshot, then read every message until `until`."""
    import websockets

    started = time.perf_counter()
    try:
        async with websockets.connect(url, max_size=None, open_timeout=30) as ws:
            await ws.recv()
            last = time.perf_counter()
            snapshot.append(last - started)
            while (left := until - time.perf_counter()) > 0:
                try:
                    await asyncio.wait_for(ws.recv(), timeout=left)
                except asyncio.TimeoutError:
                    break
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
    except Exception as e:  # a refused or dropped viewer is a result, not a crash of the bench
        failures.append(f"{type(e).__name__}: {e}")


async def creator(client: Any, latencies: list[float], statuses: list[int]) -> None:
    started = time.perf_counter()
    r = await client.post("/api/runs", json={"config": NEW_RUN})
    latencies.append(time.perf_counter() - started)
    statuses.append(r.status_code)


async def get_stream(client: Any, run_ids: list[str], until: float, interval: float, run_get: list[float], list_get: list[float]) -> None:
    """GETs one after another until `until`, one every `interval` seconds (or as fast as they come back)."""
    i = 0
    while time.perf_counter() < until:
        listing = i % LIST_EVERY == LIST_EVERY - 1
        path = "/api/runs" if listing else f"/api/runs/{run_ids[i % len(run_ids)]}"
        started = time.perf_counter()
        r = await client.get(path)
        took = time.perf_counter() - started
        r.raise_for_status()
        (list_get if listing else run_get).append(took)
        i += 1
        await asyncio.sleep(max(0.0, interval - took))


async def measure(base: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    import httpx

    limits = httpx.Limits(max_connections=args.creates + 16, max_keepalive_connections=args.creates + 16)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        run_ids = []
        for _ in range(args.runs):
            r = await client.post("/api/runs", json={"config": RUN})
            r.raise_for_status()
            run_ids.append(r.json()["id"])
        for run_id in run_ids:
            (await client.post(f"/api/runs/{run_id}/start")).raise_for_status()
        await asyncio.sleep(args.warmup)  # past the first evaluation and the chunk size's warm-up

        load = os.getloadavg()[0]
        idle = await steps_per_s(client, run_ids, args.seconds)
        common = {"bench": "lab_load", "device": cpu_model(), "cores": os.cpu_count(), "runs": args.runs,
                  "target": "text 64x32, hidden 32-32", "window_s": args.seconds, "quick": args.quick}
        results = [{**common, "phase": "idle", "steps_per_s": round(idle, 1), "load_avg_1min_before": round(load, 2)}]

        load = os.getloadavg()[0]
        until = time.perf_counter() + args.seconds
        snapshot: list[float] = []
        gaps: list[float] = []
        failures: list[str] = []
        created: list[float] = []
        statuses: list[int] = []
        run_get: list[float] = []
        list_get: list[float] = []
        ws_base = base.replace("http://", "ws://")
        tasks = [viewer(f"{ws_base}/api/runs/{run_ids[i % len(run_ids)]}/live", until, snapshot, gaps, failures)
                 for i in range(args.viewers)]
        tasks += [creator(client, created, statuses) for _ in range(args.creates)]
        tasks.append(get_stream(client, run_ids, until, 1.0 / args.gets_per_s, run_get, list_get))
        s0, t0 = await total_steps(client, run_ids), time.perf_counter()
        await asyncio.gather(*tasks)
        s1, t1 = await total_steps(client, run_ids), time.perf_counter()
        loaded = (s1 - s0) / (t1 - t0)
        results.append({
            **common, "phase": "load", "viewers": args.viewers, "creates": args.creates, "gets_per_s": args.gets_per_s,
            **ms(run_get, "get_run"), **ms(list_get, "get_list"), **ms(snapshot, "ws_snapshot"), **ms(gaps, "ws_gap"),
            **ms(created, "create"),
            "creates_ok": sum(1 for s in statuses if s == 201), "create_statuses": sorted(set(statuses)),
            "viewer_failures": len(failures), "viewer_failure": failures[0] if failures else None,
            "steps_per_s": round(loaded, 1), "slowdown_vs_idle": round(1 - loaded / idle, 3) if idle else None,
            "goal_get_p95_ms": GOAL_GET_P95_MS,
            "goal_met": all(p is not None and p * 1e3 < GOAL_GET_P95_MS for p in (percentile(run_get, 95), percentile(list_get, 95))),
            "load_avg_1min_before": round(load, 2), "measured_s": round(t1 - t0, 2),
        })
        for run_id in run_ids:
            await client.post(f"/api/runs/{run_id}/pause")
        return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.lab_load", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short windows and fewer creates: a smoke test of under a minute")
    p.add_argument("--seconds", type=float, default=None, help="length of each measured window (default 15; 4 with --quick)")
    p.add_argument("--runs", type=int, default=4, help="runs training throughout (default 4)")
    p.add_argument("--viewers", type=int, default=20, help="WebSocket viewers, spread over the runs (default 20)")
    p.add_argument("--creates", type=int, default=None, help="concurrent creates at the start of the loaded window (default 50; 10 with --quick)")
    p.add_argument("--gets-per-s", type=float, default=20.0, help="rate of the GET stream (default 20)")
    args = p.parse_args(argv)
    args.seconds = args.seconds or (4.0 if args.quick else 15.0)
    args.creates = args.creates if args.creates is not None else (10 if args.quick else 50)
    args.warmup = 2.0 if args.quick else 4.0

    viewers_per_run = -(-args.viewers // max(1, args.runs))
    with lab_server("--max-runs", str(args.runs), "--max-viewers", str(max(16, viewers_per_run)), prefix="lab-load-") as (base, _):
        for result in asyncio.run(measure(base, args)):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
