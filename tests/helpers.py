"""Shared pieces of the tests (not a test module): tiny configurations, runs held mid-way, a real Ray cluster.

Test modules import them by name (`from helpers import tiny_config`); the fixtures built on
them live in tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from overfit.config import RunConfig

# The tiny run most tests train: a 32 x 16 "A", one layer of 8 units, 40 steps, evaluations at steps 0, 20 and 40.
TINY: dict[str, Any] = {
    "data.text": "A", "data.width": 32, "data.height": 16, "model.hidden": "8",
    "schedule.steps": 40, "schedule.eval_every": 20, "schedule.log_every": 10,
    "optim.batch_size": 64, "schedule.eval_batch_size": 64,
}
# A tiny run that learns something in a few hundred steps (48 x 24 "HI", 32-32 units): for tests that assert learning.
LEARNS: dict[str, Any] = {
    "data.text": "HI", "data.width": 48, "data.height": 24, "model.hidden": "32,32", "optim.lr": 3e-3,
    "optim.batch_size": 256, "schedule.steps": 300, "schedule.eval_every": 100, "schedule.eval_batch_size": 512,
    "schedule.log_every": 50,
}

# A run whose network view has something to show: raw coordinates into layers of 16 and 8 relu units, weights at
# steps 0, 10 and 20 (the `network_run` fixture in tests/conftest.py trains it once per session).
NETWORK: dict[str, Any] = {
    "data.text": "HI", "data.width": "32", "data.height": "16", "model.hidden": "16,8", "model.input_range": "none",
    "optim.batch_size": "64", "schedule.eval_batch_size": "128", "schedule.steps": "20", "schedule.eval_every": "10",
}


def tiny_config(overrides: Mapping[str, Any] | None = None, /, base: Mapping[str, Any] = TINY, **more: Any) -> RunConfig:
    """`base` (TINY unless told) with dotted overrides, given as a dict, keywords or both:
    `tiny_config({"model.hidden": "16", "schedule.steps": 4})`, `tiny_config(base=LEARNS)`."""
    return RunConfig().with_overrides({**base, **(overrides or {}), **more})


def tiny_args(overrides: Mapping[str, Any] | None = None, /, base: Mapping[str, Any] = TINY, **more: Any) -> list[str]:
    """The same run as command-line options (`--data.text A --data.width 32 ...`) for `overfit train` and `overfit sweep`."""
    return [part for key, value in {**base, **(overrides or {}), **more}.items() for part in (f"--{key}", str(value))]


CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium, for the browser tests (tests/conftest.py `chromium`)
RAY = str(Path(sys.executable).with_name("ray"))
HOLD_HOOK = Path(__file__).with_name("run_hold")  # its sitecustomize.py holds a run mid-way on request (`Hold`)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env(**extra: str) -> dict[str, str]:
    """This process's environment for Ray commands and sweeps: no inherited RAY_ADDRESS, one thread, no token."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # Token authentication is for real clusters; these clusters live and die inside one test session.
    return {**env, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", **extra}


class Hold:
    """Runs that wait in the middle, for as long as the test wants (tests/run_hold/sitecustomize.py does the waiting).

        with Hold(tmp_path / "hold", at_step=200) as hold:
            proc = subprocess.Popen([...], env=hold.env(ray_env()))   # or a Ray node started with hold.env(...)
            folder, step = hold.held(proc)                         # a run is now waiting at `step`
        # leaving the block lets any run still waiting go on
    """

    def __init__(self, folder: Path, at_step: int | str | None = None) -> None:
        """Runs hold after their first evaluation past step 0 and at or past `at_step`; with `at_step` "end", at the
        end of their run instead, before it is recorded (no final pictures or videos yet)."""
        self.folder, self.at_step = Path(folder), at_step
        self.folder.mkdir(parents=True, exist_ok=True)

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """`env` for a process whose runs may hold (Ray's workers inherit it from their node or driver)."""
        path = os.pathsep.join(filter(None, [str(HOLD_HOOK), env.get("PYTHONPATH")]))
        return {**env, "PYTHONPATH": path, "OVERFIT_TEST_HOLD_DIR": str(self.folder)}

    def __enter__(self) -> Hold:
        for marker in self.folder.glob("held-*"):
            marker.unlink()
        (self.folder / "hold").write_text("" if self.at_step is None else str(self.at_step))
        return self

    def __exit__(self, *exc: object) -> None:
        (self.folder / "hold").unlink(missing_ok=True)

    def held(self, proc: subprocess.Popen, timeout: float = 180) -> tuple[Path, int]:
        """Wait until a run holds; its run folder and step. Fails if `proc` ends first (its stderr in the message)."""
        deadline = time.monotonic() + timeout
        while not (markers := list(self.folder.glob("held-*[0-9]"))):
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"the process ended before a run held: {(err or out or '')[-3000:]}")
            assert time.monotonic() < deadline, "no run held within the time allowed"
            time.sleep(0.1)
        folder, step = markers[0].read_text().split()
        return Path(folder), int(step)


class RayCluster:
    """A real two-node Ray cluster on this machine: a head and a worker node, one CPU each.

    Each node is a `ray start --block` process; every process of a node (Ray's workers
    included, whatever their process group) carries the node's tag in its environment, so a
    node is stopped, or killed as a machine dies, by killing every process with its tag.
    (`ray stop` is never used: it stops every Ray on the machine.) The worker node runs with
    `Hold`'s hook: inside `holding()`, a trial on it holds after its first evaluation past
    step 0 until the block ends.
    """

    def __init__(self, port: int, client_port: int) -> None:
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
        self.hold_dir = Path(self.temp) / "hold"
        self.address = f"127.0.0.1:{port}"
        self.client = f"ray://127.0.0.1:{client_port}"
        self.head = self._start("head", ["--head", "--port", str(port), "--include-dashboard", "false",
                                         "--ray-client-server-port", str(client_port), "--temp-dir", self.temp], ray_env())
        self.worker: subprocess.Popen | None = None
        self._gcs: Any = None
        try:
            self._wait_for_nodes(lambda alive: len(alive) == 1)
            self.start_worker()
        except BaseException:
            self.stop()
            raise

    def _tag(self, node: str) -> str:
        return f"{self.temp}:{node}"

    def _start(self, node: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen([RAY, "start", *args, "--num-cpus", "1", "--block"], env={**env, NODE_TAG: self._tag(node)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def start_worker(self) -> None:
        """Start a worker node and wait until the cluster is the head and that new node, alive (a node killed before
        it declared dead, so no trial is placed on it)."""
        known = set(self._nodes())
        self.worker = self._start("worker", ["--address", self.address], Hold(self.hold_dir).env(ray_env()))
        self._wait_for_nodes(lambda alive: len(alive) == 2 and bool(alive - known))

    def ensure_worker(self, fresh_head: bool) -> None:
        """If a test killed the worker node, start a new one; with `fresh_head`, the whole cluster again, on new ports,
        since a head that lost a node in the last minute or so takes up to a minute to let a Ray Client connection in
        (7 s when fresh). A new worker node costs ~4 s, a new cluster ~12 s."""
        if self.worker is None or self.worker.poll() is not None:
            if fresh_head:
                self.stop()
                self.__init__(free_port(), free_port())
            else:
                self.start_worker()

    def kill_worker(self) -> None:
        """SIGKILL every process of the worker node, as when its machine dies."""
        _kill_tagged(self._tag("worker"))
        self.worker.wait(timeout=60)

    def holding(self) -> Hold:
        """While open, a trial on the worker node holds after its first evaluation past step 0 (see `Hold`)."""
        return Hold(self.hold_dir)

    def kill_worker_under(self, hold: Hold, proc: subprocess.Popen) -> tuple[Path, int]:
        """Inside `holding()`: wait until a run of `proc` holds on the worker node, then kill the node under it; that
        run's folder and step. `proc` is killed if it ends first or anything fails."""
        try:
            held = hold.held(proc)
            self.kill_worker()
        except BaseException:
            proc.kill()
            raise
        return held

    def _nodes(self) -> dict[str, bool]:
        """Every node the head's GCS knows (dead ones too), by id: whether it is alive. Asked in this process through
        Ray's GCS client, not the `ray status` command: that starts a Python process per call, and reports the
        autoscaler's view, which lags the GCS by seconds."""
        import ray._raylet
        from ray.core.generated.gcs_pb2 import GcsNodeInfo

        if self._gcs is None:
            self._gcs = ray._raylet.GcsClient(address=self.address)
        try:
            infos = self._gcs.get_all_node_info(timeout=5)
        except Exception:  # the GCS is not answering yet (starting)
            return {}
        return {node_id.hex(): info.state == GcsNodeInfo.ALIVE for node_id, info in infos.items()}

    def _wait_for_nodes(self, ready: Callable[[set[str]], bool], timeout: float = 120) -> None:
        """Wait until `ready(ids of the alive nodes)`."""
        deadline = time.monotonic() + timeout
        while not ready({node for node, alive in self._nodes().items() if alive}):
            if time.monotonic() > deadline or self.head.poll() is not None:
                raise RuntimeError("the Ray cluster did not reach the nodes it should have")
            time.sleep(0.2)

    def stop(self) -> None:
        for node, proc in (("worker", self.worker), ("head", self.head)):
            _kill_tagged(self._tag(node))
            if proc is not None:
                proc.wait(timeout=60)
        shutil.rmtree(self.temp, ignore_errors=True)


NODE_TAG = "OVERFIT_TEST_RAY_NODE"  # in the environment of every process of a test's Ray node


def _kill_tagged(tag: str) -> None:
    """SIGKILL every process of this user whose environment has NODE_TAG=tag (Linux: read from /proc), again until none
    is left (one may have started a process while the others were being killed)."""
    want = f"{NODE_TAG}={tag}".encode()
    for _ in range(100):  # a process being killed may still be listed for a moment: bounded, not a spin forever
        killed = False
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if want in environ.read_bytes().split(b"\0"):
                    os.kill(int(environ.parent.name), signal.SIGKILL)
                    killed = True
            except (OSError, ValueError):  # gone already, or not ours to read
                pass
        if not killed:
            return
        time.sleep(0.05)


def run_async(coroutine: Any) -> Any:
    """`asyncio.run(coroutine)` in a thread of its own: the session's Playwright (tests/conftest.py `chromium`) keeps an
    event loop running in the main thread once a browser test has run, and asyncio.run refuses to start beside it."""
    import asyncio
    import threading

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as e:  # raised again in the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
