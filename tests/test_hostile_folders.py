"""Hostile run folders: a folder copied from elsewhere, then made to lie, against every command that reads one.

One small run is trained once per module (a 32 x 16 "A", paused at step 20 of 40: a checkpoint,
frames and weights at steps 0 and 20). Each case copies it, does one hostile thing to the copy
(a FIFO, a link to a file or folder outside, a hard link, odd file names, a sparse huge file,
truncated or bit-flipped JSON, PNG, checkpoint, a forged safetensors header) and runs `overfit
render`, `export`, `inspect`, `train --resume` (as far as it goes before training) and the lab's
run endpoints on it, in this process. Each answers in one line (or a 4xx) or works, never with a
traceback, in bounded time (each command runs in a thread with a hang guard: a FIFO blocks
whoever reads it), and nothing outside the folder changes (a sentinel folder, hashed before and
after, is what the links point to).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from helpers import tiny_config
from hostile import cut, digest, fifo, flip, guarded, link, sparse
from overfit import budget
from overfit.errors import OverfitError, RunFolderError

PAUSED, STEPS = 20, 40


# -- the run, the sentinel and the lab, made once ----------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def small_budget():
    """A memory budget of 2 GB whatever the machine: a refusal by budget is the same everywhere."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(budget, "default_budget", lambda: 2 << 30)
        yield


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """The paused run, a sentinel folder outside every run (what links point to) and the lab's runs folder."""
    from overfit.session import Session

    root = tmp_path_factory.mktemp("hostile")
    with Session.start(tiny_config({"schedule.steps": STEPS, "schedule.eval_every": PAUSED}), root / "base", "base") as s:
        s.run(until=PAUSED)
    base = root / "base" / "base"
    sentinel = root / "sentinel"
    (sentinel / "frames").mkdir(parents=True)
    (sentinel / "weights").mkdir()
    (sentinel / "secret.txt").write_text("outside the run\n")
    shutil.copy(base / "target.png", sentinel / "picture.png")
    shutil.copy(base / "checkpoint.pt", sentinel / "checkpoint.pt")
    # Steps after the checkpoint: what a rewind through a linked folder would delete.
    shutil.copy(base / "frames" / f"{PAUSED:08d}.png", sentinel / "frames" / "00000999.png")
    shutil.copy(base / "weights" / f"{PAUSED:08d}.safetensors", sentinel / "weights" / "00000999.safetensors")
    return {"root": root, "base": base, "sentinel": sentinel, "runs": root / "runs", "out": root / "out"}


@pytest.fixture(scope="module")
def lab(world) -> TestClient:
    from overfit.web import create_app

    app = create_app(world["runs"])
    token = getattr(app.state, "token", None)
    client = TestClient(app, base_url="http://127.0.0.1", headers={"authorization": f"Bearer {token}"} if token else {})
    with client:
        yield client




# -- the cases: each does one hostile thing to a copy of the run ---------------------------------------












def hard_link(run: Path, sentinel: Path) -> None:
    """metrics.jsonl is another name of a file outside: appending to it, or rewinding it, must not change that file."""
    shutil.move(run / "metrics.jsonl", sentinel / "records.jsonl")
    os.link(sentinel / "records.jsonl", run / "metrics.jsonl")


def odd_names(run: Path, sentinel: Path) -> None:
    shutil.copy(run / "frames" / f"{PAUSED:08d}.png", run / "frames" / "\u00b2.png")  # '²'.isdigit(), and int() refuses it
    shutil.copy(run / "weights" / f"{PAUSED:08d}.safetensors", run / "weights" / "\u0663.safetensors")  # Arabic-Indic 3


def huge_model(run: Path, sentinel: Path) -> None:
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["hidden"] = [65536, 65536]  # 17 GB of weights
    (run / "config.json").write_text(json.dumps(cfg))


def forged_weights(run: Path, sentinel: Path) -> None:
    """A safetensors header declaring a 4 GB tensor over a sparse file of that size."""
    header = json.dumps({"net.0.weight": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 4 << 30]}}).encode()
    path = run / "weights" / f"{PAUSED:08d}.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    os.truncate(path, 8 + len(header) + (4 << 30))


def wrong_weights(run: Path, sentinel: Path) -> None:
    from safetensors.torch import save_file
    import torch

    save_file({"w": torch.zeros(3)}, run / "weights" / f"{PAUSED:08d}.safetensors")


def forged_checkpoint(model: Any) -> Callable[[Path, Path], None]:
    def apply(run: Path, sentinel: Path) -> None:
        import torch

        state = torch.load(run / "checkpoint.pt", weights_only=True)
        state["model"] = model
        torch.save(state, run / "checkpoint.pt")
    return apply


CASES: dict[str, Callable[[Path, Path], None]] = {
    "fifo-config": fifo("config.json"),
    "fifo-metrics": fifo("metrics.jsonl"),
    "fifo-target": fifo("target.png"),
    "fifo-checkpoint": fifo("checkpoint.pt"),
    "fifo-ending": fifo("ending.json"),
    "fifo-frame": fifo(f"frames/{PAUSED:08d}.png"),
    "fifo-weights": fifo(f"weights/{PAUSED:08d}.safetensors"),
    "link-config": link("config.json", "secret.txt"),
    "link-metrics": link("metrics.jsonl", "secret.txt"),
    "link-target": link("target.png", "picture.png"),
    "link-checkpoint": link("checkpoint.pt", "checkpoint.pt"),
    "link-frames": link("frames", "frames"),
    "link-weights": link("weights", "weights"),
    "link-lock": link(".lock", "secret.txt"),
    "hard-link-metrics": hard_link,
    "odd-names": odd_names,
    "sparse-metrics": sparse("metrics.jsonl"),
    "sparse-config": sparse("config.json"),
    "sparse-target": sparse("target.png"),
    "sparse-checkpoint": sparse("checkpoint.pt"),
    "sparse-weights": sparse(f"weights/{PAUSED:08d}.safetensors"),
    "cut-config": cut("config.json"),
    "flip-config": flip("config.json", 0.0),
    "cut-metrics": cut("metrics.jsonl"),
    "flip-metrics": flip("metrics.jsonl", 0.3),
    "cut-target": cut("target.png"),
    "flip-target": flip("target.png", 0.6),
    "cut-checkpoint": cut("checkpoint.pt"),
    "flip-checkpoint": flip("checkpoint.pt", 0.5),
    "cut-weights": cut(f"weights/{PAUSED:08d}.safetensors"),
    "flip-weights": flip(f"weights/{PAUSED:08d}.safetensors", 0.004),
    "forged-weights": forged_weights,
    "wrong-weights": wrong_weights,
    "checkpoint-wrong-shapes": forged_checkpoint({"net.0.weight": [1.0, 2.0]}),
    "checkpoint-not-a-model": forged_checkpoint([1, 2, 3]),
    "huge-model": huge_model,
}

# What must be refused (a substring of the one line), where a case gives a command no way to work.
MUST_REFUSE: dict[str, dict[str, str]] = {
    "fifo-config": {"render": "", "export": "", "inspect": "", "resume": ""},
    "fifo-metrics": {"resume": "not a regular file"},
    "fifo-target": {"render": "target picture", "inspect": "target picture", "resume": ""},
    "fifo-checkpoint": {"render": "not a regular file", "export": "not a regular file", "resume": "not a regular file"},
    "fifo-weights": {"inspect": "not a regular file"},
    "link-config": {"render": "", "inspect": "", "resume": ""},
    "link-metrics": {"resume": "symbolic link"},
    "link-target": {"render": "target picture", "inspect": "target picture", "resume": ""},
    "link-checkpoint": {"render": "symbolic link", "export": "symbolic link", "resume": "symbolic link"},
    "link-frames": {"resume": "frames is a symbolic link"},
    "link-weights": {"resume": "weights is a symbolic link", "inspect": "weights is a symbolic link"},
    "link-lock": {"resume": ".lock is a symbolic link"},
    "sparse-metrics": {"resume": "more than the"},
    "sparse-config": {"render": "more than the", "inspect": "more than the", "resume": "more than the"},
    "sparse-target": {"render": "target picture", "resume": ""},
    "sparse-checkpoint": {"render": "more than the", "export": "more than the", "resume": "more than the"},
    "sparse-weights": {"inspect": "more than the"},
    "cut-config": {"render": "", "inspect": "", "resume": ""},
    "flip-config": {"render": "", "inspect": "", "resume": ""},
    "cut-target": {"resume": ""},
    "cut-checkpoint": {"render": "cannot be read", "export": "cannot be read", "resume": "cannot be read"},
    "cut-weights": {"inspect": ""},
    "forged-weights": {"inspect": ""},
    "wrong-weights": {"inspect": "does not hold the config's model"},
    "checkpoint-wrong-shapes": {"render": "do not fit the run's model", "export": "do not fit the run's model", "resume": ""},
    "checkpoint-not-a-model": {"render": "do not fit the run's model", "export": "do not fit the run's model", "resume": ""},
    "huge-model": {"render": "budget", "inspect": "budget", "resume": "budget"},
}
# Lab endpoints that must answer 4xx, by case (the others may answer 200).
LAB_MUST_REFUSE: dict[str, tuple[str, ...]] = {
    "fifo-metrics": ("", "/network"), "sparse-metrics": ("", "/network"), "link-frames": (f"/frames/{PAUSED:08d}.png",),
    "link-weights": ("/network",), "link-target": ("/batch", "/target.png"), "fifo-target": ("/batch", "/target.png"),
    "sparse-target": ("/batch",), "huge-model": ("/network",), "forged-weights": ("/network",),
    "fifo-frame": (f"/frames/{PAUSED:08d}.png",), "sparse-weights": ("/network",),
}


# -- the commands ------------------------------------------------------------------------------------


def cli(*args: str) -> str | None:
    """`overfit ARGS` in this process: None when it works, else its one line (a traceback fails the test)."""
    from overfit.cli import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    if result.exit_code == 0:
        return None
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def resume(run: Path) -> str | None:
    """`overfit train --resume` up to where it would train: the folder locked, config, records, checkpoint and picture read."""
    from overfit.session import Session

    try:
        Session.resume(run).close()
    except OverfitError as e:
        line = str(e)
        assert "\n" not in line, line
        return line
    return None




@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_folder_gets_one_line_or_works_and_nothing_outside_changes(case, world, lab):
    runs, sentinel, out = world["runs"], world["sentinel"], world["out"] / case
    run = runs / case
    shutil.copytree(world["base"], run)
    out.mkdir(parents=True)
    CASES[case](run, sentinel)
    before = digest(sentinel)

    answers = {
        "render": guarded(lambda: cli("render", str(run), "-o", str(out / "render.png"))),
        "export": guarded(lambda: cli("export", str(run), "-f", "safetensors", "-o", str(out / "model.safetensors"))),
        "inspect": guarded(lambda: cli("inspect", str(run), "-o", str(out / "net.png"))),
    }
    for path in ("", "/network", "/batch?n=16", "/target.png", f"/frames/{PAUSED:08d}.png"):
        response = guarded(lambda: lab.get(f"/api/runs/{case}{path}"))
        assert response.status_code < 500, (path, response.text)
        if path.split("?")[0] in LAB_MUST_REFUSE.get(case, ()):
            assert 400 <= response.status_code < 500 and "Traceback" not in response.text, (path, response.text)
    answers["resume"] = guarded(lambda: resume(run))  # last: it rewinds the folder

    for command, words in MUST_REFUSE.get(case, {}).items():
        assert answers[command] is not None and words in answers[command], (command, answers[command])
    assert digest(sentinel) == before


def test_hostile_folders_never_take_the_list_of_runs_down(world, lab):
    """The list reads every folder: the hostile ones (those of the cases above, or a few made here) are left out."""
    for case in ("fifo-metrics", "sparse-metrics", "link-config", "huge-model"):
        if not (world["runs"] / case).exists():
            shutil.copytree(world["base"], world["runs"] / case)
            CASES[case](world["runs"] / case, world["sentinel"])
    shutil.copytree(world["base"], world["runs"] / "listed")
    response = guarded(lambda: lab.get("/api/runs"))
    assert response.status_code == 200
    listed = {run["id"] for run in response.json()["runs"]}
    assert "listed" in listed and not listed & {"fifo-metrics", "sparse-metrics"}


def test_the_untouched_copy_works_everywhere(world, lab):
    run = world["runs"] / "plain"
    shutil.copytree(world["base"], run)
    out = world["out"] / "plain"
    out.mkdir(parents=True)
    assert cli("render", str(run), "-o", str(out / "render.png")) is None
    assert cli("inspect", str(run), "-o", str(out / "net.png")) is None
    for path in ("", "/network", "/batch?n=16", "/target.png", f"/frames/{PAUSED:08d}.png"):
        assert lab.get(f"/api/runs/plain{path}").status_code == 200, path
    assert resume(run) is None


# -- a safetensors export: its header is checked against its config's model before its data is read -----


def test_a_sparse_export_whose_header_declares_gigabytes_is_refused_unread(world, tmp_path):
    from overfit.errors import ExportError
    from overfit.loading import load_safetensors

    good = tmp_path / "good.safetensors"
    assert cli("export", str(world["base"]), "-f", "safetensors", "-o", str(good)) is None
    raw = good.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    name = next(k for k in header if k != "__metadata__")
    header[name] = {"dtype": "F32", "shape": [8 << 30], "data_offsets": [0, 32 << 30]}  # one 32 GB tensor
    forged = tmp_path / "forged.safetensors"
    text = json.dumps({"__metadata__": header["__metadata__"], name: header[name]}).encode()
    forged.write_bytes(len(text).to_bytes(8, "little") + text)
    os.truncate(forged, 8 + len(text) + (32 << 30))
    with pytest.raises(ExportError, match=f"{name}: its header|does not hold the config's model"):
        guarded(lambda: load_safetensors(forged))


def test_a_fifo_named_as_an_export_is_refused_without_blocking(tmp_path):
    from overfit.errors import ExportError
    from overfit.loading import load_safetensors

    os.mkfifo(tmp_path / "m.safetensors")
    with pytest.raises(ExportError, match="not a file|not a regular file"):
        guarded(lambda: load_safetensors(tmp_path / "m.safetensors"))


def test_a_symlinked_frames_folder_is_never_rewound(world, tmp_path):
    """`rewind` deletes frames and weights after the checkpoint: never those of a folder a link points to."""
    from overfit.runs import RunFolder

    run = tmp_path / "run"
    shutil.copytree(world["base"], run)
    outside = tmp_path / "outside"
    shutil.copytree(run / "frames", outside)
    shutil.copy(outside / f"{PAUSED:08d}.png", outside / "00000999.png")
    shutil.rmtree(run / "frames")
    (run / "frames").symlink_to(outside)
    folder = RunFolder(run)
    with pytest.raises(RunFolderError, match="frames is a symbolic link"):
        folder.rewind(PAUSED)
    with pytest.raises(RunFolderError, match="frames is a symbolic link"):
        folder.lock()
    assert (outside / "00000999.png").is_file()
