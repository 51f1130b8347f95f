"""Shared fixtures: one real Ray cluster and one headless Chromium per test session, started on first use.

Tiny configurations and the other plain helpers are in tests/helpers.py.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from helpers import RayCluster

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster():
    """A head and a worker node (`helpers.RayCluster`), shared by the whole session; use `cluster` in tests."""
    pytest.importorskip("ray.tune")
    cluster = RayCluster(free_port(), free_port())
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(ray_cluster):
    """The session's two-node cluster, with its worker node up again if an earlier test killed it."""
    ray_cluster.ensure_worker()
    return ray_cluster


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session (Playwright); tests open their own pages in it."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
