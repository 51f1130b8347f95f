"""`overfit reproduce --address`: the reproduction's stacks as trials on the test session's real two-node Ray cluster.

Each reproduction runs as its own `python -m overfit.cli` process that joins the cluster
(`cluster` in tests/conftest.py), as a user's would. Where the test must kill a node while a
stack is in the middle of its runs, that stack holds there until the test lets it go
(`helpers.Hold`), so no outcome depends on how fast this machine trains.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

from helpers import ray_env  # noqa: E402
from overfit.reproduce import REPRODUCE_PRESETS  # noqa: E402
from overfit.runs import RunFolder  # noqa: E402

TINY = ["--text", "HI", "--size", "48x24", "--steps", "100", "--eval-every", "50", "--seeds", "0", "--no-compile", "-q"]


def reproduce(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "overfit.cli", "reproduce", *TINY, *args], cwd=cwd, env=ray_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def histories(folder: Path) -> dict[str, list[int]]:
    return {p.name: [r["step"] for r in RunFolder(p).metrics()] for p in sorted((folder / "runs").iterdir())}


@pytest.mark.slow
def test_a_reproduction_on_a_cluster_trains_its_stacks_on_both_nodes_and_survives_a_dying_worker(tmp_path, cluster):
    out = tmp_path / "rep"
    # Both nodes train: the stack on the worker node (only its processes hold: `RayCluster`) holds after its first
    # evaluation past step 0, then the node dies under it; the head trains the others and retries that one.
    with cluster.holding() as hold:
        proc = reproduce(tmp_path, "--address", cluster.address, "--out", str(out), "--variant", "loss=cross_entropy,double_softmax")
        held_folder, held_step = cluster.kill_worker_under(hold, proc)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    # Every run of both variants finished its budget, each evaluation recorded once: the killed stack's runs resumed
    # from their checkpoints (the held run at the step it held at), not from the start.
    variants = ["loss=cross_entropy", "loss=double_softmax"]
    for variant in variants:
        assert histories(out / "variants" / variant) == {f"{preset}-s0": [0, 50, 100] for preset in REPRODUCE_PRESETS}
    assert held_folder.resolve().parent.parent.parent == (out / "variants").resolve() and held_step == 50
    # The stacks as they train in-process (one per activation and BatchNorm, and per loss), and where each ended.
    stacks = json.loads((out / "cluster.json").read_text())["stacks"]
    expected = [sorted(f"{v}/{p}-s0" for p in group) for v in variants
                for group in (["bn_relu"], ["cos_1", "cos_3"], ["relu_1", "relu_raw"], ["tanh_1"])]
    assert sorted(sorted(s["runs"]) for s in stacks) == sorted(expected)
    assert all(s["node_id"] for s in stacks)  # each stack's last report came from a node (the head, by the end)
    # One report compares the variants, finding by finding.
    combined = json.loads((out / "report" / "results.json").read_text())
    assert [v["name"] for v in combined["variants"]] == variants
    assert all([f["id"] for f in v["findings"]] == [1, 2, 3, 4, 5, 6] for v in combined["variants"])
    assert "Report:" in stdout


def test_an_unreachable_cluster_is_one_line_and_trains_nothing(tmp_path):
    proc = reproduce(tmp_path, "--address", "127.0.0.1:1", "--out", str(tmp_path / "rep"))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert stderr.strip().splitlines()[-1].startswith("Error: --address: no Ray cluster answers at 127.0.0.1:1")
    assert not any((tmp_path / "rep" / "runs").iterdir())
