"""Tests for overfit.files: writes land whole or not at all, and leave no temporary behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from overfit import files


def test_atomic_path_replaces_on_success(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"old")
    with files.atomic_path(path) as tmp:
        # Beside the final file, hidden, the real extension last (ffmpeg picks the format from it).
        assert os.path.dirname(tmp) == str(tmp_path)
        assert os.path.basename(tmp).startswith(files.TMP_PREFIX + "out.mp4.")
        assert tmp.endswith(files.TMP_MARK + ".mp4")
        assert path.read_bytes() == b"old"  # untouched until the block succeeds
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_atomic_path_leaves_no_temp_on_failure(tmp_path):
    path = tmp_path / "out.gif"
    with pytest.raises(RuntimeError, match="encoder died"):
        with files.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half a gif")
            raise RuntimeError("encoder died")
    assert os.listdir(tmp_path) == []  # neither the final file nor the temporary


def test_exception_inside_block_keeps_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"step": 1}')
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write('{"st')
            raise KeyboardInterrupt  # BaseException too: a Ctrl-C mid-write keeps the old file
    assert path.read_text() == '{"step": 1}'
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_atomic_output_is_readable_by_others(tmp_path):
    # mkstemp makes 0600 files; outputs are shared (web viewer, colleagues), so the umask decides.
    path = tmp_path / "shared.txt"
    files.write_atomic(path, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize(("data", "raw"), [(b"\x00\x01bytes\xff", b"\x00\x01bytes\xff"), ("text · ünïcode\n", "text · ünïcode\n".encode())])
def test_write_atomic_content(tmp_path, data, raw):
    path = tmp_path / "f.bin"
    files.write_atomic(path, data)
    assert path.read_bytes() == raw
    files.write_atomic(path, b"second")  # replaces an existing file
    assert path.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_write_atomic_into_missing_folder_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        files.write_atomic(tmp_path / "missing" / "f.txt", "x")
    assert os.listdir(tmp_path) == []


def _synced(monkeypatch) -> list[str]:
    """Record what every os.fsync syncs (the path behind its descriptor)."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads descriptors' paths from /proc")
def test_an_atomic_write_syncs_the_file_and_then_its_folder(tmp_path, monkeypatch):
    seen = _synced(monkeypatch)
    files.write_atomic(tmp_path / "a.json", "{}")
    assert len(seen) == 2 and Path(seen[0]).parent == tmp_path and seen[1] == str(tmp_path)  # the rename is durable too


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads descriptors' paths from /proc")
def test_a_metrics_line_is_on_disk_before_the_checkpoint_that_follows_it(tmp_path, monkeypatch):
    from overfit.runs import RunFolder

    folder = RunFolder.create(tmp_path, "r", "relu_1")
    try:
        seen = _synced(monkeypatch)
        folder.append_metrics({"step": 10})
        assert seen == [str(folder.path / "metrics.jsonl")]
    finally:
        folder.unlock()


def test_a_new_run_writes_its_target_before_its_config(tmp_path, monkeypatch):
    # config.json makes a folder a run folder: a process killed between the two leaves one that is refused in one line.
    from overfit.config import RunConfig
    from overfit.recorder import Recorder
    from overfit.runs import RunFolder, RunFolderError
    from overfit.training import Trainer

    folder = RunFolder.create(tmp_path, "r", "relu_1")
    order: list[str] = []
    monkeypatch.setattr(folder, "write_picture", lambda name, picture: order.append(name))
    monkeypatch.setattr(folder, "write_config", lambda cfg: order.append("config.json"))
    try:
        Recorder(folder).start(Trainer(RunConfig().with_overrides({"data.text": "A", "data.width": 32, "data.height": 16})))
    finally:
        folder.unlock()
    assert order == ["target.png", "config.json"]
    with pytest.raises(RunFolderError, match="is not a run folder: it has no config.json"):
        RunFolder.open(folder.path)
