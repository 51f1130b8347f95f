"""TensorBoard events of a run, read back with TensorBoard's own reader: written while training (--tensorboard,
through a resume) and afterwards by `overfit tensorboard`, equal to the run folder's metrics, frames and weights."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import tiny_args, tiny_config
from PIL import Image

from overfit.cli import main
from overfit.errors import DISTRIBUTION
from overfit.images import read_png
from overfit.runs import RunFolder

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata  # noqa: E402

from overfit.tensorboard import TENSORBOARD, events_in, scalars  # noqa: E402

# The tiny run with held-out pixels (fit/* and test/* scalars), evaluated at steps 0, 20 and 40.
RUN_FIELDS = {"data.holdout": "checkerboard", "seed": 3}
RUN = tiny_args(RUN_FIELDS)
EVERYTHING = {"scalars": 0, "images": 0, "histograms": 0, "tensors": 0}  # keep every event, not a sample


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def read(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run / TENSORBOARD), size_guidance=EVERYTHING)
    events.Reload()
    return events


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/live: with `tensorboard` set, trained to step 20 as the lab trains (a chunk), then resumed to the end by
    `overfit train --resume`; runs/plain: the same run trained without it, then converted by `overfit tensorboard`."""
    from overfit.session import Session

    runs = tmp_path_factory.mktemp("runs")
    with Session.start(tiny_config(RUN_FIELDS, tensorboard=True), runs, "live") as session:
        session.run(until=20)
    assert invoke("train", "--resume", str(runs / "live"), "-q").exit_code == 0
    assert invoke("train", *RUN, "--runs-dir", str(runs), "--name", "plain", "-q").exit_code == 0
    assert not (runs / "plain" / TENSORBOARD).exists()
    result = invoke("tensorboard", str(runs / "plain"))
    assert result.exit_code == 0 and "3 evaluations, 3 pictures, weight histograms at 3" in result.output
    return runs


def scalar_values(events: EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)  # stored as float32


@pytest.mark.parametrize("name", ["live", "plain"])
def test_the_scalars_equal_metrics_jsonl(runs, name):
    records = RunFolder(runs / name).metrics()
    assert [r["step"] for r in records] == [0, 20, 40]
    got = scalar_values(read(runs / name))
    # Every number of every record, each once per evaluation (the resumed run's second file repeats nothing).
    expected: dict[str, list[tuple[int, float]]] = {}
    for i, record in enumerate(records):
        for tag, value in scalars(record, records[i - 1] if i else None).items():
            expected.setdefault(tag, []).append((record["step"], value))
    assert sorted(got) == sorted(expected)
    for tag, points in expected.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert all(same(g, e) for (_, g), (_, e) in zip(got[tag], points)), tag
    # The tags by hand, against the records' own keys.
    last, before = records[-1], records[-2]
    checks = {"dense/acc": last["dense_acc"], "fit/iou": last["fit_iou"], "test/loss": last["test_loss"],
              "train/loss": last["train_loss"], "batch/acc": last["batch_acc"], "time/train_seconds": last["train_seconds"],
              "bands/1": last["bands"][0], "bands/8": last["bands"][7], "layers/1/dead": last["layers"][0]["dead"],
              "layers/output/grad_norm": last["layers"][1]["grad_norm"]}
    for tag, value in checks.items():
        assert got[tag][-1][0] == 40 and same(got[tag][-1][1], value), tag
    if last["train_seconds"] > before["train_seconds"]:
        assert same(got["time/steps_per_s"][-1][1], 20 / (last["train_seconds"] - before["train_seconds"]))


def test_the_converted_run_has_the_live_runs_scalars(runs):
    live, plain = scalar_values(read(runs / "live")), scalar_values(read(runs / "plain"))
    assert sorted(live) == sorted(plain)
    for tag in live:
        if not tag.startswith("time/"):  # the same seed trains the same numbers; only the clock differs
            assert [s for s, _ in live[tag]] == [s for s, _ in plain[tag]], tag
            assert all(same(a, b) for (_, a), (_, b) in zip(live[tag], plain[tag])), tag


@pytest.mark.parametrize("name", ["live", "plain"])
def test_the_images_are_the_frames(runs, name):
    folder, events = RunFolder(runs / name), read(runs / name)
    images = events.Images("prediction")
    assert [image.step for image in images] == folder.frame_steps() == [0, 20, 40]
    for image in images:
        pixels = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("L"))
        assert np.array_equal(pixels, read_png(folder.frame_path(image.step)))
    (target,) = events.Images("target")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(target.encoded_image_string)).convert("L")),
                          read_png(folder.path / "target.png"))


def test_histograms_per_layer(runs):
    live, plain = read(runs / "live"), read(runs / "plain")
    names = sorted(RunFolder(runs / "plain").read_weights(40))
    assert "mlp.0.weight" in names and "mlp.2.bias" in names
    for events in (live, plain):
        for name in names:
            assert [e.step for e in events.Histograms(f"weights/{name}")] == [0, 20, 40], name
    # Gradients exist only while training: the last step's, at every evaluation after step 0.
    gradients = sorted(tag for tag in live.Tags()["histograms"] if tag.startswith("gradients/"))
    assert gradients == sorted(f"gradients/{n}" for n in names if n.startswith("mlp."))
    assert [e.step for e in live.Histograms("gradients/mlp.0.weight")] == [20, 40]
    assert not [tag for tag in plain.Tags()["histograms"] if tag.startswith("gradients/")]
    # The histograms are of the weights: the live one of the final model, the converted one of the stored weights.
    final = RunFolder(runs / "live").checkpoint()["model"]["mlp.0.weight"]
    histogram = live.Histograms("weights/mlp.0.weight")[-1].histogram_value
    assert histogram.num == final.numel() and histogram.min == float(final.min()) and histogram.max == float(final.max())
    stored = RunFolder(runs / "plain").read_weights(20)["mlp.2.weight"]
    histogram = plain.Histograms("weights/mlp.2.weight")[1].histogram_value
    assert histogram.num == stored.numel() and math.isclose(histogram.sum, float(stored.sum()), rel_tol=1e-5)


@pytest.mark.parametrize("name", ["live", "plain"])
def test_the_config_as_text_and_hparams(runs, name):
    events = read(runs / name)
    texts = events.Tensors("config/text_summary")  # the resumed run's config again where it resumed
    assert [text.step for text in texts] == ([0, 40] if name == "live" else [0])
    text = texts[-1].tensor_proto.string_val[0].decode()
    assert json.loads("\n".join(line[4:] for line in text.splitlines())) == json.loads((runs / name / "config.json").read_text())
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["model.hidden"].string_value == "8"
    assert start.hparams["seed"].number_value == 3
    assert start.hparams["data.holdout"].string_value == "checkerboard"
    assert start.hparams["model.batchnorm"].bool_value is False
    assert start.hparams["optim.lr_final"].string_value == "none"
    assert metadata.SESSION_END_INFO_TAG in content  # finished


def test_the_resumed_run_appended_a_file(runs):
    assert len(events_in(runs / "live")) == 2 and len(events_in(runs / "plain")) == 1


def test_converting_again_needs_force(runs, tmp_path):
    result = invoke("tensorboard", str(runs / "plain"))
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "already holds TensorBoard events; replace them with --force" in result.output
    # A bad folder among good ones: nothing is written.
    (tmp_path / "empty").mkdir()
    result = invoke("tensorboard", str(runs / "live"), str(tmp_path / "empty"), "--force")
    assert result.exit_code == 1 and result.output == f"Error: {tmp_path / 'empty'} is not a run folder: it has no config.json\n"
    assert len(events_in(runs / "live")) == 2


def test_without_the_package_one_line_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard raises ImportError
    line = f"TensorBoard logging needs the tensorboard package: pip install '{DISTRIBUTION}[tensorboard]'"
    result = invoke("train", *RUN, "--runs-dir", str(tmp_path), "--name", "r", "--tensorboard", "-q")
    assert result.exit_code == 1 and result.output == f"Error: --tensorboard: {line}\n"
    assert not (tmp_path / "r").exists()
    result = invoke("tensorboard", str(tmp_path / "r"))
    assert result.exit_code == 1 and result.output == f"Error: {line}\n"


def test_a_diverged_run_is_a_failed_session_in_the_hparams_tab(tmp_path):
    # Evaluated at every step, so the run has events before its loss leaves the numbers.
    result = invoke("train", *tiny_args({"schedule.steps": 200, "schedule.eval_every": 1}), "--lr", "1e30", "--input-range",
                    "none", "--tensorboard", "--runs-dir", str(tmp_path), "--name", "nan", "-q")
    assert result.exit_code != 0 and "diverged" in result.output
    content = read(tmp_path / "nan").PluginTagToContent(metadata.PLUGIN_NAME)
    from tensorboard.plugins.hparams import api_pb2

    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_FAILURE
    # The same from the folder afterwards (`overfit tensorboard --force`): the ending it recorded.
    assert invoke("tensorboard", str(tmp_path / "nan"), "--force").exit_code == 0
    content = read(tmp_path / "nan").PluginTagToContent(metadata.PLUGIN_NAME)
    assert metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG]).status == api_pb2.STATUS_FAILURE


def test_a_finished_run_is_a_successful_session(runs):
    from tensorboard.plugins.hparams import api_pb2

    for name in ("live", "plain"):
        content = read(runs / name).PluginTagToContent(metadata.PLUGIN_NAME)
        assert metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG]).status == api_pb2.STATUS_SUCCESS
