"""How much memory this process can take now, as the operating system says.

    available_memory()   # bytes: what the OS has available, within any cgroup limit

budget.py's default budget is a share of this (`budget.default_budget`). It is read
afresh on each call (where from on each system: `available_memory`), and is
FALLBACK_MEMORY where the system does not say. Standard library only: no torch, nothing
of ours.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["available_memory"]

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
