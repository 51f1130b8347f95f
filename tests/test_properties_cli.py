"""Property tests of `overfit train`'s arguments: any argument list exits 0, 1 or 2 with no traceback.

Argument lists are generated from the command's options, dotted config keys, presets,
unknown flags and values of every kind (numbers at and beyond their limits, names,
paths to a picture, a config, a run folder, garbage, a folder, nothing). Everything up
to training runs for real (parsing, the config, the picture, the memory budget, the run
folder); the training loop itself is replaced by a stand-in, so each example takes
milliseconds. A few examples at the end train for real, one step on a tiny picture.
Examples are derandomized.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from overfit.cli import main
from overfit.config import RunConfig
from overfit.fields import CHOICES, field_docs
from overfit.presets import PRESETS

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
# Appended to every argument list, so they win over generated ones: the runs stay in a temporary
# folder, and no run may plan more memory than a small machine has.
GUARD = ["--max-memory", "256MB"]

FLAGS = ["--steps", "--batch-size", "--lr", "--eval-every", "--seed", "--activation", "--input-range", "--batchnorm",
         "--no-batchnorm", "--hidden", "--init", "--loss", "--mode", "--encoding", "--device", "--compile", "--no-compile",
         "--precision", "--seeds", "--config", "--name", "--resume", "--max-memory", "-q", "--quiet", "--text", "--image",
         "--size", "--font-size", "--max-pixels", "--help", "-h"]
DOTTED = ["--" + key for key in field_docs()]
UNKNOWN = ["--nope", "-x", "--", "-", "--model", "--model.", "--.", "--model.hidden.x", "--data", "--seed.x", "---steps",
           "--model.a\nb", "--a\rb.c", "--seed.\x00"]
NUMBERS = ["0", "1", "2", "-1", "3", "16", "64", "65536", "65537", "2147483648", "9223372036854775808", "1" + "0" * 30,
           "1" * 5000, "1e-3", "0.5", "1e400", "-1e400", "nan", "inf", "-inf", "1e-320", "0x10", "1_000", "²", "١٢"]
WORDS = (["", " ", "\n", "none", "None", "null", "true", "false", "yes", "off", "0-7", "0-1023", "0-5000", "3-1", "0,3,5",
          "0,,3", "1,2,", ",", "64,256,64", "8,8", "0,8", "-8", "32x16", "16x8", "1x1", "0x0", "99999999x99999999", "x",
          "32GB", "1kB", "0B", "12 parsecs", "cpu", "cuda", "cuda:7", "meta", "mps", "../escape", "a\nb", "A", "HI\\nHO",
          "\x00", "\u202e", "run.1", "-run"] + sorted(PRESETS) + [name for names in CHOICES.values() for name in names])


@contextlib.contextmanager
def stand_ins() -> Iterator[list[RunConfig]]:
    """Training and the samples plot replaced by stand-ins that record what would have trained; the rest runs for real."""
    trained: list[RunConfig] = []

    def train_and_report(sessions, quiet):  # cli.lifecycle: every new or resumed run, one or many, was built and validated
        assert all(isinstance(s.trainer.cfg, RunConfig) for s in sessions)
        trained.extend(s.trainer.cfg for s in sessions)
        for session in sessions:
            session.close()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("overfit.cli.train.train_and_report", train_and_report)
        mp.setattr("overfit.plots.save_samples_plot", lambda *args, **kwargs: None)  # a second of matplotlib per run
        yield trained


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Paths a generated argument may name: pictures, configs, a run folder, things that are none of those."""
    root = tmp_path_factory.mktemp("cli")
    picture = np.full((8, 16), 255, np.uint8)
    picture[2:6, 4:12] = 0
    Image.fromarray(picture).save(root / "picture.png")
    Image.fromarray(picture[:1]).save(root / "strip.png")
    (root / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (root / "folder").mkdir()
    tiny = RunConfig().with_overrides({"data.text": "A", "data.width": "32", "data.height": "16", "model.hidden": "4",
                                       "schedule.steps": "1", "optim.batch_size": "16", "schedule.eval_batch_size": "16"})
    (root / "config.json").write_text(tiny.to_json())
    (root / "bad-config.json").write_text('{"model": {"hidden": "wide"}}')
    (root / "not-json.json").write_text("{")
    (root / "binary.json").write_bytes(b"\xff\xfe\x00")
    with stand_ins():  # a run folder, made but not trained
        result = CliRunner().invoke(main, ["train", "--config", str(root / "config.json"), "--runs-dir", str(root / "runs"),
                                           "--name", "made", "-q"])
    assert result.exit_code == 0, result.output
    return {"picture": str(root / "picture.png"), "strip": str(root / "strip.png"), "garbage": str(root / "garbage.png"),
            "folder": str(root / "folder"), "missing": str(root / "missing.png"), "config": str(root / "config.json"),
            "bad-config": str(root / "bad-config.json"), "not-json": str(root / "not-json.json"),
            "binary": str(root / "binary.json"), "run": str(root / "runs" / "made"), "runs": str(root / "runs")}


values = st.sampled_from(NUMBERS) | st.sampled_from(WORDS) | st.text(max_size=8) | st.sampled_from(["<picture>", "<config>", "<run>"])
paths = st.sampled_from(["picture", "strip", "garbage", "folder", "missing", "config", "bad-config", "not-json", "binary", "run"])
tokens = st.one_of(
    st.tuples(st.sampled_from(FLAGS + DOTTED), values),          # an option and a value
    st.tuples(st.sampled_from(["--image", "--config", "--resume"]), paths.map(lambda p: f"<{p}>")),
    st.tuples(st.sampled_from(DOTTED), values).map(lambda kv: (f"{kv[0]}={kv[1]}",)),
    st.tuples(st.sampled_from(FLAGS + DOTTED + UNKNOWN)),       # an option alone (a flag, or a value missing)
    st.tuples(st.sampled_from(sorted(PRESETS)) | values),       # a positional: a preset or anything
)


def resolve(args: list[str], files: dict[str, str]) -> list[str]:
    return [files[a[1:-1]] if a.startswith("<") and a.endswith(">") and a[1:-1] in files else a for a in args]


@st.composite
def argument_lists(draw: st.DrawFn) -> list[str]:
    args = [token for group in draw(st.lists(tokens, max_size=6)) for token in group]
    if draw(st.integers(0, 3)) > 0:  # mostly a tiny picture, so a valid list starts quickly
        args += ["--text", "A", "--size", "32x16", "--hidden", "4"]
    return args


def check_exit(result) -> None:
    """Exit 0, 1 or 2; no traceback; a failure says why in exactly one `Error:` line."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    if result.exit_code != 0:
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.output
    if result.exit_code == 1:  # overfit's own refusals: nothing but warnings and the one line
        assert all(line.startswith(("Error:", "Warning:")) for line in result.output.splitlines()), result.output


def invoke(args: list[str], files: dict[str, str]):
    return CliRunner().invoke(main, ["train", *resolve(args, files), "--runs-dir", files["runs"], *GUARD])


def test_any_train_arguments_exit_0_1_or_2_without_a_traceback(files):
    codes = set()

    @SETTINGS
    @given(argument_lists())
    @example(["--model.a\nb", "1"])  # a key that would break the error's line
    @example(["--seed.x\ry", "1", "--text", "A"])
    def check(args):
        result = invoke(args, files)
        check_exit(result)
        codes.add(result.exit_code)

    with stand_ins() as trained:
        check()
    # The generator makes lists that start runs as well as both kinds of refusal (else the property proves little).
    assert codes == {0, 1, 2} and trained


def test_any_command_line_exits_0_1_or_2_without_a_traceback(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `overfit train PRESET` writes into ./runs

    @settings(SETTINGS, max_examples=40)
    @given(st.lists(st.sampled_from(sorted(PRESETS)) | values, max_size=3),
           st.lists(st.sampled_from(["--help", "--version", "-h", "--nope", "train", "presets"]), max_size=2))
    def check(command, options):
        args = [*options, *resolve(command, files)]
        result = CliRunner().invoke(main, args + (GUARD if "train" in args else []))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output, result.output

    with stand_ins():
        check()


# -- real training, one step ---------------------------------------------------------------------

TINY_RUN = ["--steps", "1", "--text", "A", "--size", "32x16", "--hidden", "4", "--schedule.eval_batch_size", "16", "-q"]
model_options = st.fixed_dictionaries({}, optional={
    "--activation": st.sampled_from(CHOICES["model.activation"]),
    "--init": st.sampled_from(CHOICES["model.init"]),
    "--loss": st.sampled_from(CHOICES["loss"]),
    "--mode": st.sampled_from(CHOICES["data.mode"]),
    "--encoding": st.sampled_from(CHOICES["encoding.kind"]),
    "--input-range": st.sampled_from(["none", "1", "0.5", "1000"]),
    "--batch-size": st.sampled_from(["1", "2", "16"]),
    "--lr": st.sampled_from(["1e-4", "1", "1e10"]),
    "--seed": st.sampled_from(["0", "7", "9223372036854775807", "18446744073709551616"]),
    "--model.w0": st.sampled_from(["1", "30", "1e6"]),
    "--encoding.features": st.sampled_from(["1", "8"]),
    "--encoding.frequencies": st.sampled_from(["1", "30"]),
})


@settings(SETTINGS, max_examples=6)
@given(model_options, st.booleans())
def test_one_real_step_of_any_model_exits_0_1_or_2_without_a_traceback(tmp_path_factory, options, batchnorm):
    if batchnorm:
        options = {**options, "--batchnorm": ""}
    args = [token for key, value in options.items() for token in ((key,) if value == "" else (key, value))]
    runs = tmp_path_factory.mktemp("real")
    check_exit(CliRunner().invoke(main, ["train", *args, *TINY_RUN, "--runs-dir", str(runs), *GUARD]))


def test_batchnorm_with_a_batch_of_one_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["train", "--batchnorm", "--batch-size", "1", *TINY_RUN, "--runs-dir", str(tmp_path), *GUARD])
    check_exit(result)
    assert result.exit_code == 1 and ("--batch-size" in result.output or "optim.batch_size" in result.output)
