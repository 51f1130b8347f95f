"""Test-only: holds a run in the middle (a sweep trial, an `overfit train`), so a test can kill or interrupt it there.

A test starts a process (`overfit train`, a sweep with Ray inside it, a Ray node: tests/helpers.py
`Hold`, `RayCluster`) with this folder on PYTHONPATH and OVERFIT_TEST_HOLD_DIR set; every Python
process started from there
(Ray's workers included) runs this file at start-up. Nothing happens until, while the file
`hold` exists in that folder, a run's `Recorder` meets
- an evaluation past step 0, at or past the step written in `hold` (if any): the evaluation
  is recorded (metrics, frame, checkpoint) as usual, then the run holds; or, if `hold` says
  `end`, the end of the run: it holds before recording it (no final pictures, no videos yet).
Holding, the run writes `held-<pid>` (its run folder and step) and waits until `hold` is
removed. Elsewhere (no OVERFIT_TEST_HOLD_DIR) this file is inert.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import time

HOLD_DIR = os.environ.get("OVERFIT_TEST_HOLD_DIR")


def _hold_in_recorder(recorder_class: type) -> None:
    record = recorder_class.__call__
    hold = os.path.join(HOLD_DIR, "hold")

    def wanted(event) -> bool:
        try:
            with open(hold) as f:
                at = f.read().strip()
        except FileNotFoundError:
            return False
        if at == "end":
            return event.kind == "end"
        return event.kind == "eval" and event.step > 0 and event.step >= int(at or 0)

    def held(self, event) -> None:
        if event.kind == "end" and wanted(event):
            wait(self, event)
        record(self, event)
        if event.kind == "eval" and wanted(event):
            wait(self, event)

    def wait(self, event) -> None:
        marker = os.path.join(HOLD_DIR, f"held-{os.getpid()}")
        with open(marker + ".tmp", "w") as f:
            f.write(f"{self.folder.path}\n{event.step}\n")
        os.replace(marker + ".tmp", marker)  # whole or absent: the test reads it as soon as it appears
        while os.path.exists(hold):
            time.sleep(0.05)

    recorder_class.__call__ = held


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches overfit.recorder as it is imported (importing it here would load overfit into every Ray process)."""

    def find_spec(self, name, path, target=None):
        if name != "overfit.recorder":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module) -> None:
            exec_module(module)
            _hold_in_recorder(module.Recorder)

        spec.loader.exec_module = exec_and_patch
        return spec


if HOLD_DIR:
    sys.meta_path.insert(0, _PatchOnImport())
