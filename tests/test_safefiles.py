"""Tests for overfit.safefiles: a run folder's files opened as untrusted input, and safetensors headers checked unread."""

from __future__ import annotations

import json
import os

import pytest

from overfit.safefiles import NotPlainFile, check_tensors, limit, open_plain_file, read_plain, safetensors_header


def safetensors_bytes(entries: dict, data: bytes) -> bytes:
    header = json.dumps(entries).encode()
    return len(header).to_bytes(8, "little") + header + data


def test_a_fifo_a_folder_and_an_oversized_file_are_refused_by_name_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "metrics.jsonl")
    (tmp_path / "frames").mkdir()
    (tmp_path / "config.json").write_bytes(b"{}")
    os.truncate(tmp_path / "config.json", limit("config") + 1)  # sparse: no disk, no read
    with pytest.raises(NotPlainFile, match="^metrics.jsonl is not a regular file"):
        open_plain_file(tmp_path, "metrics.jsonl")  # O_NONBLOCK: returns at once, no writer needed
    with pytest.raises(NotPlainFile, match="^frames is not a regular file"):
        open_plain_file(tmp_path, "frames")
    with pytest.raises(NotPlainFile, match=r"^config.json is 1,048,577 bytes, more than the 1,048,576 a config"):
        read_plain(tmp_path, "config.json", kind="config")
    (tmp_path / "ending.json").write_text("{}")
    assert read_plain(tmp_path, "ending.json", kind="ending") == b"{}"


def test_a_run_folder_named_through_a_link_is_followed_only_when_asked(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    (tmp_path / "alias").symlink_to(tmp_path / "run")
    with pytest.raises(NotPlainFile, match="alias is a symbolic link"):
        open_plain_file(tmp_path / "alias", "config.json")
    with open_plain_file(tmp_path / "alias", "config.json", follow_folder=True) as f:
        assert f.read() == b"{}"


@pytest.mark.parametrize("entries, data, words", [
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(16), None),
    ({"w": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 4 << 30]}}, bytes(16), "accounts for"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, bytes(12), "does not lie where"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [4, 20]}}, bytes(20), "does not lie where"),
    ({"w": {"dtype": "PICKLE", "shape": [4], "data_offsets": [0, 16]}}, bytes(16), "no valid dtype"),
    ({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, bytes(16), "no valid dtype"),
    ({"__metadata__": {"step": 3}}, b"", "not a map of strings"),
])
def test_a_safetensors_header_is_checked_against_itself_and_the_file_size(tmp_path, entries, data, words):
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(entries, data))
    with open(tmp_path / "w.safetensors", "rb") as f:
        if words is None:
            assert safetensors_header(f, "w.safetensors")[0] == {"w": ("F32", (4,))}
        else:
            with pytest.raises(NotPlainFile, match=words):
                safetensors_header(f, "w.safetensors")


def test_a_header_longer_than_its_limit_or_its_file_is_refused_unread(tmp_path):
    (tmp_path / "w.safetensors").write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    with open(tmp_path / "w.safetensors", "rb") as f, pytest.raises(NotPlainFile, match="its header declares 1,099,511,627,776 bytes"):
        safetensors_header(f, "w.safetensors")


def test_tensors_that_are_not_the_models_are_named():
    found = {"a": ("F16", (2, 3)), "b": ("F16", (3,))}
    check_tensors("x", found, {"a": (2, 3), "b": (3,)})
    with pytest.raises(NotPlainFile, match=r"x: a is \[2, 3\] where the config's model has \[3, 2\]"):
        check_tensors("x", found, {"a": (3, 2), "b": (3,)})
    with pytest.raises(NotPlainFile, match="missing c; unexpected b"):
        check_tensors("x", found, {"a": (2, 3), "c": (1,)})


def test_a_sibling_reproductions_results_that_are_a_fifo_or_a_link_are_skipped_not_waited_on(tmp_path):
    # `overfit reproduce` compares with the other reproductions beside its folder: those are read as untrusted files.
    import json
    import threading

    from overfit.reproduce.analysis import sibling_variants

    for name in ("mine", "fifo", "link", "plain"):
        (tmp_path / name / "report").mkdir(parents=True)
    os.mkfifo(tmp_path / "fifo" / "report" / "results.json")
    results = {"meta": {"loss": "double_softmax", "init": "torch", "steps": 100}, "findings": [{"id": 1, "verdict": "HOLDS"}]}
    (tmp_path / "plain" / "report" / "results.json").write_text(json.dumps(results))
    (tmp_path / "link" / "report" / "results.json").symlink_to(tmp_path / "plain" / "report" / "results.json")
    found: list = []
    reader = threading.Thread(target=lambda: found.append(sibling_variants(tmp_path / "mine")), daemon=True)
    reader.start()
    reader.join(30)
    assert found == [[{"name": "loss double_softmax, init torch, 100 steps", "folder": "../plain", "verdicts": {"1": "HOLDS"}}]]
