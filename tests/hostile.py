"""The hostile corpus's pieces, shared by tests/test_hostile_folders.py (run folders) and tests/test_hostile_sweeps.py
(sweep folders): the things done to a copied folder, the digest that shows nothing outside changed, the hang guard.

Each case is `apply(folder, sentinel)`: it does one hostile thing to the copy in `folder`; links point into
`sentinel`, a folder outside that must stay as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

# A hang guard, not a speed limit: a command reading a FIFO never returns.
HANG_SECONDS = 60
BIG = 50 << 30  # a sparse file's size: 50 GB that take no disk

Case = Callable[[Path, Path], None]


def digest(folder: Path) -> str:
    """Names, kinds and contents of everything under `folder` (links not followed)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_symlink():
            h.update(b"link:" + os.readlink(path).encode())
        elif path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def fifo(name: str) -> Case:
    def apply(folder: Path, sentinel: Path) -> None:
        (folder / name).unlink(missing_ok=True)
        os.mkfifo(folder / name)
    return apply


def link(name: str, to: str) -> Case:
    """`name` (a file or a folder, or nothing yet) becomes a link to `to` in the sentinel."""
    def apply(folder: Path, sentinel: Path) -> None:
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            shutil.rmtree(folder / name)
        else:
            (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(sentinel / to)
    return apply


def sparse(name: str) -> Case:
    def apply(folder: Path, sentinel: Path) -> None:
        os.truncate(folder / name, BIG)
    return apply


def cut(name: str) -> Case:
    def apply(folder: Path, sentinel: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return apply


def flip(name: str, at: float) -> Case:
    """One bit flipped at fraction `at` of the file."""
    def apply(folder: Path, sentinel: Path) -> None:
        data = bytearray((folder / name).read_bytes())
        data[int(len(data) * at)] ^= 0x10
        (folder / name).write_bytes(bytes(data))
    return apply


def guarded(fn: Callable[[], Any]) -> Any:
    """`fn()` in a thread, with a hang guard: a FIFO read blocks forever, and the test must say so, not hang."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below, on the test's thread
            box["error"] = e

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive(), f"hung for {HANG_SECONDS} s (a FIFO read blocks)"
    if "error" in box:
        raise box["error"]
    return box.get("value")
