"""Atomic file writes: every file overfit leaves is written beside its final name and renamed into place.

A crash, a `kill -9` or a reader polling a folder therefore never sees half a file:
it sees the old file or the new one. The rename is made durable too (the folder is synced
after it), so after a power loss a file that was reported written is there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)
# Temporary names: ".<final name>.<random>.tmp<suffix>", so a folder's stale ones are recognisable.
TMP_PREFIX, TMP_MARK = ".", ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    The temporary name keeps `path`'s extension last, for writers (ffmpeg) that pick the
    format from it.
    """
    final = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{final.name}.", suffix=f"{TMP_MARK}{final.suffix}", dir=final.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide outputs from other users
        os.replace(tmp, final)
        sync_folder(final.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def sync_folder(folder: str | os.PathLike) -> None:
    """fsync a folder, so the names just created or renamed in it survive a power loss (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename itself has happened
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write `data` to `path` through a temporary file in the same folder, synced, then renamed."""
    raw = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())


def remove_stale_temporaries(folders: list[Path]) -> None:
    """Remove the temporaries a process killed mid-write left in `folders` (the real files beside them are intact)."""
    for folder in folders:
        if folder.is_dir():
            for tmp in folder.glob(f"{TMP_PREFIX}*{TMP_MARK}*"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
