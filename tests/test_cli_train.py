"""Tests for `overfit train`: a full small run, the run folder, resume, and bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import LEARNS, tiny_args
from PIL import Image

from overfit.cli import main
from overfit.runs import CHECKPOINT, RunFolder

SMALL = tiny_args(base=LEARNS)  # tests set --steps and --eval-every, which win over the dotted options


def read_metrics(run) -> list[dict]:
    return RunFolder(run).metrics()


def load_checkpoint(run) -> dict:
    return RunFolder(run).checkpoint()


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_line_error(result, *fragments: str) -> str:
    """The run failed with a single 'Error: ...' line containing every fragment, and no traceback."""
    assert result.exit_code != 0, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_train_writes_a_complete_run_folder(tmp_path):
    result = invoke("train", *SMALL, "--steps", "300", "--eval-every", "100", "--runs-dir", str(tmp_path), "--name", "r", "-q")
    assert result.exit_code == 0, result.output
    run = tmp_path / "r"
    for name in ("config.json", "metrics.jsonl", "samples.png", "final.png", "progress.mp4", "progress.gif", CHECKPOINT, "target.png"):
        assert (run / name).is_file(), name
    records = read_metrics(run)
    assert [r["step"] for r in records] == [0, 100, 200, 300]
    assert sorted(p.name for p in (run / "frames").glob("*.png")) == [f"{s:08d}.png" for s in (0, 100, 200, 300)]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["text"] == "HI" and cfg["model"]["hidden"] == [32, 32] and cfg["optim"]["lr"] == 3e-3
    state = load_checkpoint(run)
    assert state["step"] == 300
    assert f"dense accuracy {records[-1]['dense_acc']:.4f}" in result.output
    # No temporary files left behind by the atomic writes.
    assert not [p for p in run.rglob("*.tmp")]


def test_config_json_reruns_the_same_run(tmp_path):
    invoke("train", *SMALL, "--steps", "100", "--eval-every", "50", "--runs-dir", str(tmp_path), "--name", "a", "-q")
    result = invoke("train", "--config", str(tmp_path / "a" / "config.json"), "--runs-dir", str(tmp_path), "--name", "b", "-q")
    assert result.exit_code == 0, result.output
    strip = lambda rs: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rs]  # noqa: E731
    assert strip(read_metrics(tmp_path / "a")) == strip(read_metrics(tmp_path / "b"))


def test_preset_with_dotted_overrides(tmp_path):
    result = invoke("train", "cos_3", *SMALL, "--model.init", "torch", "--steps", "20", "--eval-every", "20",
                    "--runs-dir", str(tmp_path), "--name", "c", "-q")
    assert result.exit_code == 0, result.output
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    assert cfg["preset"] == "cos_3" and cfg["model"]["activation"] == "cos" and cfg["model"]["input_range"] == 3.0
    assert cfg["model"]["init"] == "torch"


def test_existing_run_folder_is_never_overwritten(tmp_path):
    invoke("train", *SMALL, "--steps", "20", "--eval-every", "20", "--runs-dir", str(tmp_path), "--name", "x", "-q")
    before = {p: p.read_bytes() for p in (tmp_path / "x").rglob("*") if p.is_file()}
    result = invoke("train", *SMALL, "--steps", "20", "--runs-dir", str(tmp_path), "--name", "x", "-q")
    one_line_error(result, "already exists", "--resume")
    after = {p: p.read_bytes() for p in (tmp_path / "x").rglob("*") if p.is_file()}
    assert before == after


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path):
    common = [*SMALL, "--steps", "300", "--eval-every", "100", "--runs-dir", str(tmp_path), "-q"]
    assert invoke("train", *common, "--name", "straight").exit_code == 0

    # Interrupt a second run at step 150, through the same callback the CLI's Ctrl-C uses.
    from overfit.cli.options import build_config
    from overfit.session import Session

    cfg = build_config(None, None, {"data.text": "HI", "data.width": "48", "data.height": "24", "model.hidden": "32,32",
                                    "optim.lr": "3e-3", "optim.batch_size": "256", "schedule.eval_batch_size": "512",
                                    "schedule.log_every": "50", "schedule.steps": "300", "schedule.eval_every": "100"})
    assert cfg == RunFolder.open(tmp_path / "straight").config()

    def stop(event):
        if event.kind == "log" and event.step == 150:
            event.trainer.request_stop()

    with Session.start(cfg, tmp_path, "broken") as session:  # recorded as the CLI records it
        assert session.run([stop]).interrupted
    assert load_checkpoint(tmp_path / "broken")["step"] == 150

    result = invoke("train", "--resume", str(tmp_path / "broken"), "-q")
    assert result.exit_code == 0, result.output
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "broken")
    assert a["step"] == b["step"] == 300
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [r["step"] for r in read_metrics(tmp_path / "broken")] == [0, 100, 200, 300]
    assert (tmp_path / "broken" / "progress.mp4").is_file()


def test_resume_refuses_config_changes_and_finished_runs(tmp_path):
    invoke("train", *SMALL, "--steps", "20", "--eval-every", "20", "--runs-dir", str(tmp_path), "--name", "d", "-q")
    one_line_error(invoke("train", "--resume", str(tmp_path / "d"), "--lr", "1"), "optim.lr cannot change")
    one_line_error(invoke("train", "--resume", str(tmp_path / "d")), "already at step 20", "--steps")
    one_line_error(invoke("train", "--resume", str(tmp_path / "nope")), "does not exist")
    result = invoke("train", "--resume", str(tmp_path / "d"), "--steps", "40", "-q")
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in read_metrics(tmp_path / "d")] == [0, 20, 40]


def test_resume_help_and_refusal_name_every_flag_a_resume_may_change(tmp_path):
    help_text = " ".join(invoke("train", "--help").output.split())
    assert "only --steps, --device, --compile, --precision and --tensorboard may change" in help_text
    invoke("train", *SMALL, "--steps", "20", "--eval-every", "20", "--runs-dir", str(tmp_path), "--name", "h", "-q")
    one_line_error(invoke("train", "--resume", str(tmp_path / "h"), "--lr", "1"),
                   "only --steps, --device, --compile, --precision and --tensorboard can")


def test_corrupt_checkpoint_is_refused(tmp_path):
    invoke("train", *SMALL, "--steps", "20", "--eval-every", "20", "--runs-dir", str(tmp_path), "--name", "e", "-q")
    (tmp_path / "e" / CHECKPOINT).write_bytes(b"not a checkpoint")
    one_line_error(invoke("train", "--resume", str(tmp_path / "e"), "--steps", "40"), "cannot be read")


def test_divergence_exits_nonzero_and_keeps_the_last_good_checkpoint(tmp_path):
    result = invoke("train", *SMALL, "--lr", "1e30", "--input-range", "none", "--steps", "500", "--eval-every", "1",
                    "--runs-dir", str(tmp_path), "--name", "nan", "-q")
    line = one_line_error(result, "diverged", "at step", "last good checkpoint")
    step = int(line.split("at step ")[1].split(";")[0])
    state = load_checkpoint(tmp_path / "nan")
    assert state["step"] < step
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--image", "{tmp}/missing.png"], ["not found", "missing.png"]),
        (["--image", "{tmp}"], ["directory"]),
        (["--image", "{tmp}/notes.png"], ["not an image"]),
        (["--image", "{tmp}/cut.png"], ["truncated or corrupt"]),
        (["--image", "{tmp}/dot.png"], ["1 x 1", "at least 2 x 2"]),
        (["--image", "{tmp}/big.png", "--max-pixels", "100"], ["above the limit of 100", "--max-pixels"]),
        (["--text", ""], ["data.text", "is empty"]),
        (["--lr", "-1"], ["optim.lr", "positive"]),
        (["--batch-size", "0"], ["optim.batch_size"]),
        (["--input-range", "0"], ["model.input_range"]),
        (["--input-range", "abc"], ["model.input_range"]),
        (["--hidden", "64,x"], ["model.hidden"]),
        (["--model.activaton", "relu"], ["model.activaton", "unknown config key"]),
        (["--steps", "0"], ["--steps: must be at least 1"]),
        (["nopreset"], ["unknown preset 'nopreset'", "relu_1"]),
        (["--device", "gpu0"], ["unknown device"]),
        (["--config", "{tmp}/nothere.json"], ["config file not found"]),
        (["--config", "{tmp}/bad.json"], ["model.widths", "unknown config key"]),
        (["--name", "../escape"], ["not a plain folder name"]),
        (["--text", "A", "--size", "64x32", "--font-size", "60000"], ["--data.font_size: 60,000 points: more than the limit of 4,096"]),
        (["--text", "A", "--size", "64x32", "--font-size", "1000"], ["--data.font_size", "64 x 32 canvas warrants"]),
        (["--schedule.eval_batch_size", "2000000"], ["--schedule.eval_batch_size", "limit of 1,048,576"]),
        (["--steps", "10000000", "--eval-every", "1"], ["--schedule.eval_every", "10,000,001 evaluations"]),
        (["--hidden", ",".join(["1"] * 65)], ["--model.hidden: 65 hidden layers: more than the limit of 64"]),
        (["--hidden", "65536,65536", "--max-memory", "40GB"],
         ["run needs ~126 GB", "(model.hidden: 17.2 GB of weights x4 with gradients and Adam state)",
          "but the budget is 40.0 GB (--max-memory); lower --model.hidden or raise --max-memory"]),
        (["--max-memory", "12XB"], ["--max-memory: unknown unit 'XB'"]),
        (["--max-memory", "lots"], ["--max-memory: expected a size like 32GB"]),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, args, fragments):
    (tmp_path / "notes.png").write_text("this is not a picture")
    Image.new("L", (1, 1)).save(tmp_path / "dot.png")
    Image.new("L", (20, 20)).save(tmp_path / "big.png")
    full = tmp_path / "full.png"
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)).save(full)
    (tmp_path / "cut.png").write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    (tmp_path / "bad.json").write_text(json.dumps({"model": {"widths": [1]}}))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    runs = tmp_path / "runs"
    result = invoke("train", *args, "--steps", "5", "--runs-dir", str(runs), "-q") if "--steps" not in args else \
        invoke("train", *args, "--runs-dir", str(runs), "-q")
    one_line_error(result, *fragments)
    # Nothing was created for a run that could not start.
    assert not runs.exists() or not any(runs.iterdir())


CPU_OOM = "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes."


def test_run_over_half_the_available_memory_is_refused_and_max_memory_raises_the_budget(tmp_path, monkeypatch):
    from overfit import budget, memory
    from overfit.cli.options import build_config

    args = [*SMALL, "--hidden", "1024,1024", "--steps", "2", "--eval-every", "2", "--runs-dir", str(tmp_path), "-q"]
    needed = budget.estimate(build_config(None, None, {"data.text": "HI", "data.width": "48", "data.height": "24",
                                                       "model.hidden": "1024,1024", "optim.batch_size": "256",
                                                       "schedule.eval_batch_size": "512"})).total
    monkeypatch.setattr(memory, "available_memory", lambda: needed)
    one_line_error(invoke("train", *args), "(half the available memory); lower --", "or raise --max-memory")
    assert list(tmp_path.iterdir()) == []
    result = invoke("train", *args, "--max-memory", str(needed), "--name", "fits")
    assert result.exit_code == 0, result.output
    one_line_error(invoke("train", "--resume", str(tmp_path / "fits"), "--steps", "4", "--max-memory", "1MB"),
                   "but the budget is 1.0 MB (--max-memory)")


def test_runs_trained_together_must_fit_the_budget_together(tmp_path):
    from overfit import budget
    from overfit.cli.options import build_config

    cfg = build_config(None, None, {"data.text": "HI", "data.width": "48", "data.height": "24", "model.hidden": "1024,1024",
                                    "optim.batch_size": "256", "schedule.eval_batch_size": "512"})
    one = budget.estimate(cfg).total
    result = invoke("train", "relu_1", "tanh_1", "--seeds", "0-3", *SMALL, "--hidden", "1024,1024", "--steps", "2",
                    "--max-memory", str(int(1.2 * one)), "--runs-dir", str(tmp_path), "-q")
    one_line_error(result, "8 runs trained together need", "for each of 8 runs", "raise --max-memory")
    assert list(tmp_path.iterdir()) == []


def test_out_of_memory_in_training_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch):
    from overfit.training import Trainer

    def out_of_memory(self):
        raise RuntimeError(CPU_OOM)

    monkeypatch.setattr(Trainer, "evaluate", out_of_memory)
    result = invoke("train", *SMALL, "--steps", "20", "--eval-every", "10", "--runs-dir", str(tmp_path), "--name", "oom", "-q")
    assert result.exit_code == 1
    one_line_error(result, "ran out of memory while training (step 0) ([enforce fail at alloc_cpu.cpp:117]", "; lower --")
    assert list(tmp_path.iterdir()) == []


def test_out_of_memory_after_a_checkpoint_keeps_the_run(tmp_path, monkeypatch):
    from overfit.training import Trainer

    evaluate = Trainer.evaluate

    def out_of_memory_later(self):
        if self.step > 0:
            raise MemoryError
        return evaluate(self)

    monkeypatch.setattr(Trainer, "evaluate", out_of_memory_later)
    result = invoke("train", *SMALL, "--steps", "20", "--eval-every", "10", "--runs-dir", str(tmp_path), "--name", "oom", "-q")
    one_line_error(result, "ran out of memory while training (step 10) (MemoryError)", f"the checkpoint is kept in {tmp_path / 'oom'}")
    assert load_checkpoint(tmp_path / "oom")["step"] == 0


def test_out_of_memory_in_stacked_runs_removes_the_runs_without_a_checkpoint(tmp_path, monkeypatch):
    from overfit.training import Trainer

    monkeypatch.setattr(Trainer, "evaluate", lambda self: (_ for _ in ()).throw(MemoryError()))
    result = invoke("train", "--seeds", "0-2", *SMALL, "--steps", "4", "--eval-every", "2", "--runs-dir", str(tmp_path), "-q")
    one_line_error(result, "ran out of memory while training")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_runs_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(invoke("train", *SMALL, "--steps", "5", "--runs-dir", str(blocker / "runs"), "-q"), "cannot create runs folder")


def test_all_one_class_warns(tmp_path):
    Image.new("L", (16, 16), 255).save(tmp_path / "white.png")
    result = invoke("train", "--image", str(tmp_path / "white.png"), "--hidden", "8", "--steps", "5", "--eval-every", "5",
                    "--runs-dir", str(tmp_path / "runs"), "-q")
    assert result.exit_code == 0, result.output
    assert "nothing to learn" in result.output


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    cmd = [sys.executable, "-m", "overfit.cli", "train", *SMALL, "--steps", "1000000", "--eval-every", "100",
           "--runs-dir", str(tmp_path), "--name", "int"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "int" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not metrics.exists() or len(read_metrics(tmp_path / "int")) < 2):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    step = load_checkpoint(tmp_path / "int")["step"]
    assert step >= 100
    result = invoke("train", "--resume", str(tmp_path / "int"), "--steps", str(step + 50), "-q")
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tmp_path / "int")["step"] == step + 50


# -- modes and encodings -------------------------------------------------------------------------


def test_gray_and_rgb_runs_write_pictures_of_their_kind_and_resume(tmp_path):
    result = invoke("train", "fast", "--mode", "rgb", "--text", "HI", "--size", "48x24", "--steps", "40", "--eval-every", "20",
                    "--runs-dir", str(tmp_path), "--name", "c", "-q")
    assert result.exit_code == 0, result.output
    run = tmp_path / "c"
    records = read_metrics(run)
    assert "PSNR" in result.output and f"{records[-1]['dense_psnr']:.2f} dB" in result.output
    assert records[-1]["dense_psnr"] > records[0]["dense_psnr"] + 5
    assert Image.open(run / "target.png").mode == "RGB"
    assert Image.open(run / "frames" / "00000040.png").mode == "RGB"
    assert Image.open(run / "final.png").size[0] > 0
    # The run continues from its own RGB copy of the target.
    result = invoke("train", "--resume", str(run), "--steps", "60", "-q")
    assert result.exit_code == 0, result.output
    assert read_metrics(run)[-1]["step"] == 60

    result = invoke("train", "fast", "--mode", "gray", "--text", "HI", "--size", "48x24", "--steps", "20", "--eval-every", "20",
                    "--runs-dir", str(tmp_path), "--name", "g", "-q")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "g" / "frames" / "00000020.png").mode == "L"


@pytest.mark.parametrize("args, fragments", [
    (["--mode", "rgb", "--loss", "cross_entropy"], ["loss: 'cross_entropy' does not fit data.mode rgb"]),
    (["--mode", "binary", "--loss", "mse"], ["loss: 'mse' does not fit data.mode binary"]),
    (["--encoding", "fourier", "--encoding.sigma", "0"], ["encoding.sigma: must be a positive number"]),
    (["--activation", "siren", "--model.w0", "-1"], ["model.w0: must be a positive number"]),
    (["--encoding", "grid", "--encoding.per_level_scale", "3"], ["encoding.per_level_scale:", "more than 4x the picture"]),
    (["--encoding", "grid", "--input-range", "none"], ["model.input_range: the grid encoding needs scaled inputs"]),
    (["--mode", "cmyk"], ["Invalid value for '--mode'"]),
])
def test_bad_mode_and_encoding_combinations_are_refused(tmp_path, args, fragments):
    result = CliRunner().invoke(main, ["train", *SMALL, "--steps", "10", "--runs-dir", str(tmp_path), *args])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert not list(tmp_path.iterdir())  # nothing created


def test_a_diverging_siren_stops_with_the_divergence_message(tmp_path):
    # SIREN on raw pixel coordinates with an absurd rate: the loss overflows within a few steps.
    result = CliRunner().invoke(main, ["train", "siren", "--mode", "gray", "--text", "HI", "--size", "48x24", "--hidden", "32,32",
                                       "--input-range", "none", "--lr", "1e30", "--steps", "50", "--eval-every", "25",
                                       "--runs-dir", str(tmp_path), "--name", "d", "-q"])
    one_line_error(result, "training diverged: loss is", "at step")
    assert result.exit_code == 1


def test_train_and_sweep_take_the_config_options_from_one_module_and_neither_imports_the_other():
    import ast
    import inspect

    from overfit.cli import options, sweep, train

    names = {p.name for p in train.command.params} & {p.name for p in sweep.command.params}
    assert {*options.OPTION_FIELDS, *options.PICTURE_OPTIONS, "seeds_text", "config_path"} <= names
    for module, other in ((train, "train"), (sweep, "sweep")):
        imported = {node.module for node in ast.walk(ast.parse(inspect.getsource(module))) if isinstance(node, ast.ImportFrom)}
        assert "options" in imported and not imported & {"train", "sweep"} - {other}, module.__name__
    # The same words for the same mistakes, in both commands.
    for command in ("train", "sweep"):
        result = invoke(command, "--seeds", "3-1")
        assert result.exit_code == 2 and "'3-1' is not a range of at most 1024 seeds" in result.output
        result = invoke(command, "--modle.init", "torch")
        assert result.exit_code != 0 and "modle" in result.output
