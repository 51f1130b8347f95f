"""Tests for overfit.memory: how much memory this process can take now, and what a failed allocation becomes."""

from __future__ import annotations

import pytest

from overfit import memory
from overfit.errors import AllocationError


def test_available_memory_reads_meminfo_and_a_cgroup_limit(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n")
    assert memory._meminfo_available(str(meminfo)) == 20_000_000 * 1024
    assert memory._meminfo_available(str(tmp_path / "missing")) is None
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    assert memory._cgroup_room(cgroup) is None
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("100\n")
    assert memory._cgroup_room(cgroup) is None  # no limit
    (cgroup / "memory.max").write_text("4000000000\n")
    assert memory._cgroup_room(cgroup) == 4_000_000_000 - 100
    monkeypatch.setattr(memory, "CGROUP_ROOT", cgroup)
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 20_000_000 * 1024)
    assert memory.available_memory() == 4_000_000_000 - 100  # the tighter of the two
    monkeypatch.setattr(memory, "CGROUP_ROOT", tmp_path / "none")
    monkeypatch.setattr(memory, "_meminfo_available", lambda: None)
    monkeypatch.setattr(memory, "_sysconf_memory", lambda: None)
    monkeypatch.setattr(memory, "_windows_available", lambda: None)
    assert memory.available_memory() == memory.FALLBACK_MEMORY


@pytest.mark.parametrize(("error", "is_oom"), [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB"), True),
    (RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"), True),
    (MemoryError(), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x2 and 3x4)"), False),
    (ValueError("out of memory"), False),
])
def test_allocation_failures_are_recognised(error, is_oom):
    assert memory.is_allocation_failure(error) is is_oom


def test_an_allocation_failure_becomes_one_line_naming_the_fields():
    error = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 10 bytes.\nmore detail")
    e = memory.allocation_error(error, "starting the run", ("model.hidden",))
    assert isinstance(e, AllocationError) and e.field == "model.hidden"
    assert str(e) == ("ran out of memory while starting the run (DefaultCPUAllocator: can't allocate memory: "
                      "you tried to allocate 10 bytes.); lower model.hidden")
    assert memory.allocation_error(MemoryError(), "training").words() == "ran out of memory while training (MemoryError)"


def test_raising_allocation_errors_converts_only_allocation_failures():
    with pytest.raises(AllocationError, match="while building"):
        with memory.raising_allocation_errors("building", ("optim.batch_size",)):
            raise MemoryError
    with pytest.raises(KeyError):
        with memory.raising_allocation_errors("building"):
            raise KeyError("x")
