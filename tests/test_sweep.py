"""`overfit sweep` on a real Ray: a local grid, ASHA stopping the bad trials, resume after Ctrl-C, an unreachable cluster, and a two-node cluster (TPE through Ray Client, a worker node dying).

Each sweep runs as its own `python -m overfit.cli` process (Ray starts inside it, as for a
user). The cluster tests start a real head and worker with `ray start`.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

from overfit.config import RunConfig  # noqa: E402
from overfit.runs import RunFolder  # noqa: E402

SMALL = ["--text", "HI", "--size", "32x16", "--hidden", "8", "--batch-size", "64", "--schedule.eval_batch_size", "64"]
TINY = [*SMALL, "--eval-every", "20"]
RAY = str(Path(sys.executable).with_name("ray"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # Token authentication is for real clusters; these clusters live and die inside one test.
    return {**env, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", **extra}


def sweep(cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overfit.cli", "sweep", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def read_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def final_metric(run_folder: str, metric: str = "dense_acc") -> float:
    lines = Path(run_folder, "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])[metric]


def test_a_local_sweep_stops_the_worse_trial_with_asha_and_its_results_agree_with_the_run_folders(tmp_path):
    # One Ray in this sweep's own process. One trial at a time, the good learning rate first: the bad one meets a
    # rung the good one already set, and ASHA stops it.
    done = sweep(tmp_path, *TINY, "--steps", "200", "--grid", "optim.lr=1e-2,1e-6", "--scheduler", "asha",
                 "--grace-period", "1", "--max-concurrent", "1", "--name", "grid")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = tmp_path / "sweeps" / "grid"
    rows = {r["optim.lr"]: r for r in read_rows(sweep_dir)}
    assert sorted(rows) == ["1e-2", "1e-6"]
    assert rows["1e-2"]["stop"] == "done" and rows["1e-2"]["steps"] == "200"
    assert rows["1e-6"]["stop"] == "asha-stopped" and int(rows["1e-6"]["steps"]) < 200
    assert "stopped early" in done.stdout
    for lr, row in rows.items():
        assert float(row["final_dense_acc"]) == final_metric(row["run_folder"])
        cfg = RunConfig.from_json(Path(row["run_folder"], "config.json").read_text())
        assert cfg.optim.lr == float(lr) and cfg.model.hidden == (8,)
        assert Path(row["run_folder"]).parent == sweep_dir / "runs"
    assert Path(rows["1e-2"]["run_folder"], "final.png").is_file()
    spec = json.loads((sweep_dir / "spec.json").read_text())
    assert spec["grid"] == {"optim.lr": ["1e-2", "1e-6"]} and spec["scheduler"] == "asha"
    page = (sweep_dir / "report" / "index.html").read_text()
    assert "metric_vs_optim_lr.png" in page and (sweep_dir / "report" / "metric_vs_optim_lr.png").is_file()
    assert (sweep_dir / "report" / "best.mp4").stat().st_size > 0 and (sweep_dir / "report.md").is_file()


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(tmp_path):
    # One trial at a time, a short one first; Ctrl-C once it has finished (the long one is running), then --resume.
    args = [*SMALL, "--eval-every", "100", "--grid", "schedule.steps=100,800", "--max-concurrent", "1", "--name", "resume"]
    proc = subprocess.Popen([sys.executable, "-m", "overfit.cli", "sweep", *args], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "sweeps" / "resume" / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs.glob("*/final.png")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "overfit sweep --resume" in err
    finished = {p.parent: p.parent.joinpath("metrics.jsonl").read_text() for p in runs.glob("*/final.png")}
    assert len(finished) == 1
    done = sweep(tmp_path, "--resume", str(tmp_path / "sweeps" / "resume"))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(tmp_path / "sweeps" / "resume")
    assert sorted(r["steps"] for r in rows) == ["100", "800"] and all(r["stop"] == "done" for r in rows)
    for folder, metrics in finished.items():  # finished trials were kept as they were
        assert folder.joinpath("metrics.jsonl").read_text() == metrics
    assert len({r["run_folder"] for r in rows}) == 2 and all(Path(r["run_folder"], "final.png").is_file() for r in rows)


def test_an_unreachable_address_is_one_error_line_within_seconds(tmp_path):
    started = time.monotonic()
    done = sweep(tmp_path, *TINY, "--steps", "40", "--grid", "model.activation=relu", "--address", "127.0.0.1:1", timeout=30)
    assert time.monotonic() - started < 15
    assert done.returncode == 1
    assert done.stderr.startswith("Error: --address:") and done.stderr.count("\n") == 1
    assert not (tmp_path / "sweeps").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A real two-node Ray cluster on this machine: a head and a worker (kept as a process the test may kill), one CPU each."""
    port, client_port = _free_port(), _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
    subprocess.run([RAY, "start", "--head", "--num-cpus", "1", "--port", str(port), "--include-dashboard", "false",
                    "--ray-client-server-port", str(client_port), "--temp-dir", temp], env=_env(), check=True, capture_output=True, timeout=120)
    worker = subprocess.Popen([RAY, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--block"],
                              env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_nodes(port, 2)
        yield {"address": f"127.0.0.1:{port}", "client": f"ray://127.0.0.1:{client_port}", "worker": worker}
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        subprocess.run([RAY, "stop", "--force"], env=_env(), capture_output=True, timeout=120)


def _wait_for_nodes(port: int, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = subprocess.run([RAY, "status", "--address", f"127.0.0.1:{port}"], env=_env(), capture_output=True, text=True)
        if status.stdout.count(" node_") >= count:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster did not reach {count} nodes")


@pytest.mark.slow
def test_a_tpe_sweep_through_ray_client_runs_trials_on_both_nodes_of_a_cluster(tmp_path, cluster):
    # ray://: the Ray Client address (the worker-death test below joins with the plain HOST:PORT). Optuna's TPE chooses
    # each trial; its draws must stay inside the random range.
    done = sweep(tmp_path, *TINY, "--steps", "40", "--grid", "model.activation=relu,tanh", "--random", "optim.lr=log:1e-4:1e-1",
                 "--search", "tpe", "--samples", "4", "--address", cluster["client"], "--name", "two")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(tmp_path / "sweeps" / "two")
    assert len(rows) == 4 and all(r["stop"] == "done" for r in rows)
    assert len({r["node_id"] for r in rows}) == 2
    for row in rows:
        assert float(row["final_dense_acc"]) == final_metric(row["run_folder"])
        cfg = RunConfig.from_json(Path(row["run_folder"], "config.json").read_text())
        assert 1e-4 <= cfg.optim.lr <= 1e-1 and float(row["optim.lr"]) == pytest.approx(cfg.optim.lr)
        assert cfg.model.activation == row["model.activation"] in ("relu", "tanh")


@pytest.mark.slow
def test_a_sweep_survives_its_worker_node_dying(tmp_path, cluster):
    # Long enough (about 30 evaluations) that the worker dies in the middle of its trial; one trial per node.
    args = [*SMALL, "--steps", "3000", "--eval-every", "100", "--grid", "model.activation=relu,tanh", "--address", cluster["address"],
            "--name", "kill", "--max-failures", "3"]
    proc = subprocess.Popen([sys.executable, "-m", "overfit.cli", "sweep", *args], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "sweeps" / "kill" / "runs"
    deadline = time.monotonic() + 120
    # Both nodes are busy once two trials have written an evaluation: kill the worker node then.
    while time.monotonic() < deadline and len(list(runs.glob("*/metrics.jsonl"))) < 2:
        time.sleep(0.5)
    os.killpg(cluster["worker"].pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    rows = read_rows(tmp_path / "sweeps" / "kill")
    assert len(rows) == 2
    assert any(r["resumed_at"] for r in rows), "no trial was retried: the worker died before or after its trial"
    for row in rows:
        assert row["stop"] in ("done", "error")
        assert row["stop"] == "done" or row["error"]
        RunConfig.from_json(Path(row["run_folder"], "config.json").read_text())
        state = RunFolder(row["run_folder"]).checkpoint()
        if row["stop"] == "done":
            assert int(state["step"]) == 3000 and float(row["final_dense_acc"]) == final_metric(row["run_folder"])
