"""This process's memory: how much it can take now, as the operating system says, and what
a failed allocation becomes.

    available_memory()   # bytes: what the OS has available, within any cgroup limit
    with raising_allocation_errors("starting the run", ("model.hidden",)):
        ...              # MemoryError or torch's "out of memory" -> AllocationError, one line

budget.py's default budget is a share of this (`budget.default_budget`). It is read
afresh on each call (where from on each system: `available_memory`), and is
FALLBACK_MEMORY where the system does not say. Standard library and `errors` only: no torch.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterable, Iterator

from .errors import AllocationError, first_line

__all__ = ["allocation_error", "available_memory", "is_allocation_failure", "raising_allocation_errors"]

# Assumed available memory where the operating system does not say (neither Linux, macOS nor Windows).
FALLBACK_MEMORY = 8 * 10**9
CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_memory() -> int:
    """Bytes of memory this process can take now: what the OS has available, within any cgroup limit.

    Linux: MemAvailable from /proc/meminfo (else `os.sysconf`'s available pages), and a
    cgroup's limit less its usage where one is set. macOS: physical memory (it does not
    say what is available). Windows: the available physical memory. Elsewhere FALLBACK_MEMORY.
    """
    found = [n for n in (_meminfo_available(), _cgroup_room(CGROUP_ROOT)) if n is not None]
    if not found:
        found = [n for n in (_sysconf_memory(), _windows_available()) if n is not None]
    return min(found) if found else FALLBACK_MEMORY


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room(root: Path) -> int | None:
    """A cgroup's memory limit less what it uses (v2: memory.max, v1: memory.limit_in_bytes), or None without a limit."""
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = (root / limit_file).read_text().strip()
            usage = int((root / usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max", or v1's huge number, means no limit
            return max(0, int(limit) - usage)
    return None


def _sysconf_memory() -> int | None:
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            n = os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            continue
        if n > 0:
            return n
    return None


def _windows_available() -> int | None:
    if sys.platform != "win32":
        return None
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong), ("ullTotalPhys", ctypes.c_ulonglong),
                    ("ullAvailPhys", ctypes.c_ulonglong), ("ullTotalPageFile", ctypes.c_ulonglong),
                    ("ullAvailPageFile", ctypes.c_ulonglong), ("ullTotalVirtual", ctypes.c_ulonglong),
                    ("ullAvailVirtual", ctypes.c_ulonglong), ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return None
    return int(status.ullAvailPhys)


# -- allocation failures ------------------------------------------------------------------------

# What torch says when an allocation fails: CPU ("can't allocate memory"), CUDA, MPS and others ("out of memory").
_OUT_OF_MEMORY = ("out of memory", "can't allocate", "cannot allocate")


def is_allocation_failure(e: BaseException) -> bool:
    """Whether `e` is a failed allocation: MemoryError, or torch's out of memory on any device."""
    if isinstance(e, (MemoryError, AllocationError)):
        return True
    return isinstance(e, RuntimeError) and any(words in str(e).lower() for words in _OUT_OF_MEMORY)


def allocation_error(e: BaseException, doing: str, fields: tuple[str, ...] = ()) -> AllocationError:
    """The `AllocationError` that words a failed allocation `e` (see `is_allocation_failure`) met while `doing`."""
    if isinstance(e, AllocationError):
        return e
    reason = first_line(e)
    return AllocationError(f"ran out of memory while {doing} ({reason[:200]})", fields=fields)


@contextlib.contextmanager
def raising_allocation_errors(doing: str, fields: Iterable[str] = ()) -> Iterator[None]:
    """Turn a failed allocation inside into an `AllocationError` (anything else passes through)."""
    try:
        yield
    except Exception as e:
        if not is_allocation_failure(e):
            raise
        raise allocation_error(e, doing, tuple(fields)) from None
