"""The sweep spec: expansion of grid x random x seeds, and every bad spec refused with its field named (no ray, no folder)."""

from __future__ import annotations

import random
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from overfit.cli import main
from overfit.config import RunConfig
from overfit.errors import ConfigError
from overfit.sweep.spec import RandomDim, SweepSpec, build, expand

BASE = RunConfig().to_dict()


def test_grid_random_and_seeds_expand_to_every_combination():
    spec = build("x", BASE, grid={"model.activation": "relu,tanh,cos"}, random={"optim.lr": "log:1e-4:1e-1"}, samples=2, seeds="0-1")
    trials = expand(spec, random.Random(1))
    assert spec.trial_count() == len(trials) == 3 * 2 * 2
    combos = {(t["model.activation"], t["seed"]) for t in trials}
    assert combos == {(a, s) for a in ("relu", "tanh", "cos") for s in ("0", "1")}
    lrs = sorted({float(t["optim.lr"]) for t in trials})
    assert len(lrs) == 2 and all(1e-4 <= lr <= 1e-1 for lr in lrs)  # one draw per sample, shared by its grid points
    assert spec.swept == ["model.activation", "optim.lr", "seed"]


def test_seeds_are_a_list_like_trains_and_tpe_counts_samples():
    assert build("x", BASE, seeds="0-2,7").seeds == (0, 1, 2, 7) == build("x", BASE, seeds=[0, 1, 2, 7]).seeds
    assert [p["seed"] for p in build("x", RunConfig(seed=5).to_dict(), seeds="3,9").grid_points()] == ["3", "9"]
    alone = build("x", RunConfig(seed=5).to_dict())  # no seeds: the base config's seed alone, not swept
    assert [p["seed"] for p in alone.grid_points()] == ["5"] and alone.swept == []
    assert build("x", BASE, seeds="4").swept == [] and build("x", BASE, seeds="4").seed_values() == [4]
    assert build("x", BASE, grid={"model.activation": "relu,tanh"}, samples=7, search="tpe").trial_count() == 7


def test_a_spec_file_from_before_with_a_count_of_seeds_reads_as_that_many_from_the_base_seed():
    text = build("x", RunConfig(seed=5).to_dict()).to_json().replace('"seeds": []', '"seeds": 3')
    assert '"seeds": 3' in text
    assert SweepSpec.from_json(text).seed_values() == [5, 6, 7]
    assert SweepSpec.from_json(text.replace('"seeds": 3', '"seeds": 1')).seeds == ()  # the base seed alone


@pytest.mark.parametrize("seeds", [0, -2, "a", "3-1", "0-5000", [1, 1], [-1], [True], 1.5, "1.5"])
def test_bad_seeds_are_refused_naming_seeds(seeds):
    with pytest.raises(ConfigError) as info:
        build("x", BASE, seeds=seeds)
    assert info.value.field == "seeds"


def test_the_sweep_command_takes_trains_seed_list(tmp_path, monkeypatch):
    from overfit.cli import options

    specs = []
    monkeypatch.setattr("overfit.cli.sweep._run", lambda spec, sweep_dir, address, resume: specs.append(spec))
    common = ["sweep", "--text", "HI", "--size", "32x16", "--sweeps-dir", str(tmp_path), "--name", "s", "--steps", "10"]
    result = CliRunner().invoke(main, [*common, "--seeds", "0-2,7", "--grid", "model.activation=relu,tanh"])
    assert result.exit_code == 0, result.output
    assert specs[0].seed_values() == [0, 1, 2, 7] == options.parse_seeds("0-2,7") and specs[0].trial_count() == 8
    assert specs[0].config.schedule.steps == 10 and specs[0].config.data.text == "HI"
    result = CliRunner().invoke(main, [*common, "--seeds", "2"])  # one seed, seed 2 (not two seeds)
    assert result.exit_code == 0 and specs[1].seed_values() == [2] and specs[1].config.schedule.steps == 10
    for args, words in ((["--seeds", "x"], "--seeds"), (["--seed", "3", "--seeds", "0-1"], "either --seed or --seeds")):
        result = CliRunner().invoke(main, [*common, *args])
        assert result.exit_code == 2 and words in result.output
    assert len(specs) == 2


def test_the_spec_round_trips_through_json():
    spec = build("x", BASE, grid={"encoding.levels": [4, 8]}, random={"model.w0": "uniform:10:40", "model.activation": "choice:relu,cos"},
                 seeds="0-1", metric="dense_loss", scheduler="asha")
    again = SweepSpec.from_json(spec.to_json())
    assert again == spec and again.mode == "min" and spec.grid["encoding.levels"] == ("4", "8")


@pytest.mark.parametrize("dist, kind, low, high", [("uniform:0.5:2", "uniform", 0.5, 2.0), ("log:1e-4:1e-1", "log", 1e-4, 1e-1),
                                                    ("int:3:9", "int", 3, 9)])
def test_random_dims_parse_and_sample_within_their_range(dist, kind, low, high):
    dim = RandomDim.parse("k", dist)
    assert (dim.kind, dim.low, dim.high) == (kind, low, high)
    rng = random.Random(0)
    assert all(low <= dim.sample(rng) <= high for _ in range(200))


@pytest.mark.parametrize("grid, rand, options, field", [
    ({"model.activaton": "relu"}, {}, {}, "model.activaton"),           # unknown field
    ({"nonsense.key": "1"}, {}, {}, "nonsense.key"),
    ({"model.activation": ""}, {}, {}, "model.activation"),             # empty grid
    ({"model.activation": []}, {}, {}, "model.activation"),
    ({"optim.lr": "1e-3,-1"}, {}, {}, "optim.lr"),                      # out of range
    ({"model.activation": "relu,nope"}, {}, {}, "model.activation"),
    ({}, {"optim.lr": "log:1e-1:1e-4"}, {}, "optim.lr"),                # low > high
    ({}, {"optim.lr": "uniform:-1:1"}, {}, "optim.lr"),                 # range end out of range
    ({}, {"optim.lr": "gauss:1:2"}, {}, "optim.lr"),                    # bad distribution
    ({}, {"optim.lr": "log:a:b"}, {}, "optim.lr"),
    ({}, {"optim.lr": "log:0:1"}, {}, "optim.lr"),
    ({}, {"model.activation": "choice:"}, {}, "model.activation"),
    ({}, {"optim.lr": "uniform:1e-4:1e-2"}, {"samples": 0}, "samples"),
    ({}, {}, {"metric": "accuracy_of_vibes"}, "metric"),
    ({}, {}, {"scheduler": "hyperband"}, "scheduler"),
])
def test_bad_specs_are_refused_with_the_field_named(grid, rand, options, field):
    with pytest.raises(ConfigError) as info:
        build("x", BASE, grid=grid, random=rand, **options)
    assert info.value.field == field


def test_a_spec_file_with_an_unknown_key_is_refused():
    text = build("x", BASE).to_json().replace('"samples"', '"sampels"')
    with pytest.raises(ConfigError) as info:
        SweepSpec.from_json(text)
    assert info.value.field == "sampels"


@pytest.mark.parametrize("args, flag", [
    (["--grid", "model.activaton=relu,tanh"], "--model.activaton"),
    (["--grid", "model.activation="], "--model.activation"),
    (["--grid", "optim.lr=1e-3,-1"], "--optim.lr"),
    (["--random", "optim.lr=log:1:0.1"], "--optim.lr"),
    (["--random", "optim.lr=normal:0:1"], "--optim.lr"),
])
def test_the_command_refuses_a_bad_spec_in_one_line_and_makes_no_folder(tmp_path, args, flag):
    result = CliRunner().invoke(main, ["sweep", "--text", "HI", "--size", "32x16", "--sweeps-dir", str(tmp_path / "sweeps"), *args])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {flag}:") and result.output.count("\n") == 1
    assert not (tmp_path / "sweeps").exists()


def test_importing_the_spec_imports_neither_ray_nor_torch():
    code = "import sys, overfit.sweep.spec; print(any(m in sys.modules for m in ('ray', 'torch')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("missing, args, message", [
    ("ray", [], "Error: overfit sweep needs the ray[tune] package: pip install 'overfit-lab[sweep]'"),
    ("optuna", ["--search", "tpe", "--samples", "2"], "Error: overfit sweep --search tpe needs the optuna package: pip install 'overfit-lab[sweep]'"),
])
def test_a_missing_extra_is_one_line_naming_what_to_install(tmp_path, missing, args, message):
    # A package on the path that cannot be imported stands in for one that is not installed.
    (tmp_path / "shadow" / missing).mkdir(parents=True)
    (tmp_path / "shadow" / missing / "__init__.py").write_text(f'raise ImportError("No module named {missing}")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    done = subprocess.run([sys.executable, "-m", "overfit.cli", "sweep", "--text", "HI", "--size", "32x16", "--steps", "10",
                           "--grid", "model.activation=relu,tanh", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == message + "\n"
    assert not (tmp_path / "sweeps").exists()


def test_the_most_evaluations_covers_swept_schedules():
    from overfit.sweep.spec import most_evaluations

    spec = build("s", BASE | {"schedule": {**BASE["schedule"], "steps": 100, "eval_every": 10}},
                 grid={"schedule.steps": "100,300"}, random={"schedule.eval_every": "int:5:20"})
    # The most: 300 steps, an evaluation every 5 (the random range's low end), and step 0: 61.
    assert most_evaluations(spec) == 61
    assert most_evaluations(build("t", BASE | {"schedule": {**BASE["schedule"], "steps": 100, "eval_every": 10}})) == 11


def test_a_held_out_metric_needs_every_trial_to_hold_pixels_out():
    held = RunConfig().with_overrides({"data.holdout": "checkerboard"}).to_dict()
    spec = build("x", held, grid={"model.activation": "relu,tanh"}, metric="test_acc")
    assert spec.mode == "max" and build("x", held, metric="fit_loss").mode == "min"
    for base, grid in ((BASE, {}), (held, {"data.holdout": "checkerboard,none"})):
        with pytest.raises(ConfigError) as info:
            build("x", base, grid=grid, metric="test_acc")
        assert info.value.field == "metric" and "hold pixels out" in str(info.value)


class FlakyRay:
    """Stands in for `ray`: ray.init fails as a busy Ray Client head does, `failures` times, then joins."""

    def __init__(self, failures: int, message: str = "Initialization failure from server: Starting Ray client server failed"):
        self.failures, self.message, self.inits, self.shutdowns = failures, message, 0, 0

    def init(self, **kwargs):
        self.inits += 1
        if self.inits <= self.failures:
            raise ConnectionError(self.message)

    def shutdown(self):
        self.shutdowns += 1


def test_joining_through_ray_client_retries_a_head_that_failed_to_start_the_clients_server(monkeypatch, capsys):
    from overfit.sweep import tune

    waits = []
    monkeypatch.setattr(tune.time, "sleep", waits.append)
    ray = FlakyRay(failures=2)
    tune._join(ray, "ray://head:10001")
    assert (ray.inits, ray.shutdowns, waits) == (3, 2, [2, 4])
    said = capsys.readouterr().err.splitlines()  # each wait is said, so a slow start is not silent
    assert said == [f"the Ray Client server at ray://head:10001 did not start in time; trying again in {s} s" for s in (2, 4)]
    with pytest.raises(ConnectionError):  # at most four tries
        tune._join(FlakyRay(failures=4), "ray://head:10001")
    for ray, address in ((FlakyRay(failures=1), "head:6379"), (FlakyRay(failures=1, message="refused"), "ray://head:10001")):
        with pytest.raises(ConnectionError):  # only Ray Client's start-up failure is tried again
            tune._join(ray, address)
        assert ray.inits == 1


@pytest.mark.parametrize("metric", ["dense_<img src=x onerror=alert(1)>acc", "dense_acc<script>", "final_dense_acc"])
def test_a_metric_that_is_no_registered_key_is_refused_before_it_reaches_a_report(metric):
    # The report writes the metric's name into its HTML: only registry keys get there (and are escaped there too).
    with pytest.raises(ConfigError, match="unknown metric") as info:
        build("x", BASE, metric=metric)
    assert info.value.field == "metric"
