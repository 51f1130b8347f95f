"""What the lab's network view costs training: `python -m bench.lab_network [--seconds 10]`.

Starts `overfit lab` in its own process, trains one relu_1 run on the built-in OVERFIT
(an evaluation every `--eval-every` steps, so the weights the view reads keep coming),
and measures training steps/s (wall clock, from the run's step counter) in two windows,
each with one live viewer (a WebSocket reading every message, as today's page does):
"today" (the viewer only) and "network view open" (the viewer plus, at each evaluation
message, the page's request for GET /api/runs/{id}/network at the latest step, one at a
time). One JSON line per window and the slowdown; the target is at most 10 %. The load
average before each window is recorded: on a shared machine, compare windows taken together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from .common import cpu_model
from .lab_viewers import call, lab_server


async def window(base: str, ws_url: str, run_id: str, seconds: float, network: bool) -> dict:
    import websockets

    fetched, load = [0], os.getloadavg()[0]

    async def view() -> None:
        async with websockets.connect(ws_url, max_size=None) as ws:
            deadline = time.perf_counter() + seconds + 1.0
            while (left := deadline - time.perf_counter()) > 0:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=left))
                except asyncio.TimeoutError:
                    break
                if network and msg["type"] == "eval":
                    await asyncio.to_thread(call, base, "GET", f"/api/runs/{run_id}/network")
                    fetched[0] += 1

    task = asyncio.create_task(view())
    await asyncio.sleep(1.0)
    s0, t0 = (await asyncio.to_thread(call, base, "GET", f"/api/runs/{run_id}"))["step"], time.perf_counter()
    await asyncio.sleep(seconds)
    s1, t1 = (await asyncio.to_thread(call, base, "GET", f"/api/runs/{run_id}"))["step"], time.perf_counter()
    await task
    return {"network_view": network, "steps_per_s": round((s1 - s0) / (t1 - t0), 1), "network_requests": fetched[0],
            "load_avg_1min_before": round(load, 2), "window_s": seconds}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.lab_network", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="length of each measured window")
    p.add_argument("--eval-every", type=int, default=500, help="steps between evaluations")
    p.add_argument("--pairs", type=int, default=4, help="pairs of windows (without and with the view), alternating order")
    args = p.parse_args(argv)
    with lab_server("--max-runs", "1") as (base, port):
        run = {"preset": "relu_1", "schedule": {"steps": 1_000_000, "eval_every": args.eval_every}}
        run_id = call(base, "POST", "/api/runs", {"config": run})["id"]
        call(base, "POST", f"/api/runs/{run_id}/start")
        time.sleep(3.0)
        ws_url = f"ws://127.0.0.1:{port}/api/runs/{run_id}/live"
        # Pairs of windows, alternating which comes first: the machine's speed drifts between levels.
        slowdowns = []
        for pair in range(args.pairs):
            order = (False, True) if pair % 2 == 0 else (True, False)
            results = {network: asyncio.run(window(base, ws_url, run_id, args.seconds, network)) for network in order}
            today, opened = results[False], results[True]
            for result in (today, opened):
                result["slowdown_vs_today"] = round(1 - result["steps_per_s"] / today["steps_per_s"], 3) if today["steps_per_s"] else None
                print(json.dumps({"bench": "lab_network", "device": cpu_model(), "cores": os.cpu_count(), "preset": "relu_1",
                                  "target": "OVERFIT 1000x300", "eval_every": args.eval_every, "pair": pair, **result}), flush=True)
            slowdowns.append(opened["slowdown_vs_today"])
        known = sorted(s for s in slowdowns if s is not None)
        if known:
            print(json.dumps({"bench": "lab_network", "summary": True, "pairs": len(known), "slowdowns": known,
                              "median_slowdown": known[len(known) // 2] if len(known) % 2 else round(sum(known[len(known) // 2 - 1:len(known) // 2 + 1]) / 2, 3)}))
        call(base, "POST", f"/api/runs/{run_id}/pause")


if __name__ == "__main__":
    main()
