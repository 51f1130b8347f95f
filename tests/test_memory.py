"""Tests for overfit.memory: how much memory this process can take now."""

from __future__ import annotations

from overfit import memory


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
