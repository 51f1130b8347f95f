"""Shared fixtures, each made once per test session on first use: a trained run folder, a two-node Ray cluster, a headless Chromium.

Tiny configurations and the other plain helpers are in tests/helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import CHROMIUM, NETWORK, RayCluster, free_port, tiny_config

# WebGL in software (SwiftShader) for the exported viewer; the lab's page draws on 2D canvases and needs no more.
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A real run folder shared by the export, loading, inference and WebGL tests: relu_1 on a tiny 'OV'
    (tests/test_export_families.py), trained for 200 steps the way `overfit train` does. Tests read it; the one thing
    written into it, the WebGL test's export/model.html, is read by no other test."""
    from test_export_families import small_config  # here, not at the top: a session that never asks pays no torch import

    from overfit.recorder import Recorder
    from overfit.runs import RunFolder
    from overfit.targets import load_target
    from overfit.training import Trainer

    cfg = small_config({"optim.lr": "3e-3", "optim.batch_size": "256", "schedule.steps": "200", "schedule.eval_every": "100",
                        "schedule.eval_batch_size": "256"})
    trainer = Trainer(cfg, load_target(cfg.data))
    folder = RunFolder.create(tmp_path_factory.mktemp("runs"), "ov", cfg.preset)
    recorder = Recorder(folder)
    try:
        recorder.start(trainer)
        trainer.run([lambda event: recorder(event) if event.kind != "end" else None])  # no videos: not what is tested
    finally:
        folder.unlock()
    assert trainer.history[-1]["dense_acc"] > 0.8  # a picture worth comparing
    return folder.path


@pytest.fixture(scope="session")
def network_run(tmp_path_factory) -> Path:
    """A trained run folder, runs/net, of `helpers.NETWORK` (layers of 16 and 8 relu units, weights at steps 0, 10,
    20), read by the network-view tests of the package and of the lab."""
    from overfit.session import Session

    runs = tmp_path_factory.mktemp("runs")
    with Session.start(tiny_config(base=NETWORK), runs, "net") as session:
        session.run()
    return runs / "net"


@pytest.fixture(scope="session")
def ray_cluster():
    """A head and a worker node (`helpers.RayCluster`), shared by the whole session; use `cluster` in tests."""
    pytest.importorskip("ray.tune")
    cluster = RayCluster(free_port(), free_port())
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(ray_cluster):
    """The session's two-node cluster, with a new worker node if an earlier test killed it (joined by HOST:PORT)."""
    ray_cluster.ensure_worker(fresh_head=False)
    return ray_cluster


@pytest.fixture
def client_cluster(ray_cluster):
    """The session's two-node cluster for a Ray Client (ray://) test: a head that has not lost a node lately (see
    `RayCluster.ensure_worker`). Such tests run before the other cluster tests (`pytest_collection_modifyitems`), so
    they find the session's first head, not one made again."""
    ray_cluster.ensure_worker(fresh_head=True)
    return ray_cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Ray Client tests first among the tests of the two-node cluster, whose other tests may kill its worker node."""
    def uses(item: pytest.Item, *fixtures: str) -> bool:
        return bool(set(fixtures) & set(getattr(item, "fixturenames", ())))

    first = next((i for i, item in enumerate(items) if uses(item, "cluster", "client_cluster")), None)
    if first is not None:
        clients = [item for item in items if uses(item, "client_cluster")]
        rest = [item for item in items[first:] if not uses(item, "client_cluster")]
        items[first:] = clients + rest


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session (Playwright); each test opens its own pages (or context) in it."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (.ci/run and `make test` install it)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
