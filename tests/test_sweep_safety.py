"""A sweep folder is untrusted input: its size is bounded before it is expanded, a trial checkpoint cannot point a
retry outside the sweep, Ray's pickled state is restored only with this user's signature, and trials reserve memory.

No Ray starts here: these are the checks in front of it (the real resume is in tests/test_sweep.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from overfit.budget import estimate
from overfit.config import RunConfig
from overfit.errors import ConfigError, OverfitError
from overfit.sweep import spec as sweep_spec
from overfit.sweep import state as sweep_state
from overfit.sweep import tune

BASE = RunConfig().with_overrides({"data.text": "A", "schedule.steps": "10"}).to_dict()


def test_a_grid_too_large_is_refused_from_its_counts_before_any_point_is_made(monkeypatch):
    grid = {f"model.w0": [str(i) for i in range(1, 11)], "optim.lr": [str(10.0 ** -i) for i in range(1, 11)],
            "optim.beta1": [str(0.5 + i / 100) for i in range(10)], "optim.eps": [str(10.0 ** -i) for i in range(5, 15)]}
    def never(spec):
        raise AssertionError("the points were built")

    monkeypatch.setattr(sweep_spec, "configs", never)
    with pytest.raises(ConfigError) as e:
        sweep_spec.build("big", BASE, grid=grid, seeds="0-9")
    assert e.value.field == "grid" and str(e.value).startswith("grid: 100,000 trials: more than the limit of 10,000")
    random = {f"optim.{k}": "uniform:0.1:0.2" for k in ("lr", "beta1", "beta2", "eps", "weight_decay")}
    random.update({"model.w0": "uniform:1:30", "model.input_range": "uniform:0.5:3", "optim.lr_decay": "uniform:0.1:0.9", "encoding.sigma": "uniform:1:20"})
    with pytest.raises(ConfigError) as e:
        sweep_spec.build("wide", BASE, random=random)
    assert e.value.field == "random" and "9 randomly drawn fields: more than the limit of 8" in str(e.value)


def test_a_trial_checkpoint_can_name_only_a_trial_folder_of_its_own_sweep(tmp_path):
    runs = tmp_path / "sweeps" / "s" / "runs"
    runs.mkdir(parents=True)
    assert tune.trial_folder(runs, str(runs / "trial-ab12")) == runs.resolve() / "trial-ab12"
    (tmp_path / "precious").mkdir()
    (runs / "trial-link").symlink_to(tmp_path / "precious")
    for named in (str(tmp_path / "precious"), str(runs / ".." / "trial-x"), "/etc", str(runs / "notatrial"),
                  str(runs / "trial-link"), str(runs / "trial-a" / "trial-b")):
        with pytest.raises(OverfitError, match="not one of this sweep's run folders") as e:
            tune.trial_folder(runs, named)
        assert e.value.field == "resume"
    assert (tmp_path / "precious").is_dir()


@pytest.fixture()
def key(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_state, "KEY_FILE", tmp_path / "home" / "sweep.key")
    return tmp_path / "home" / "sweep.key"


def test_the_users_key_is_made_once_and_a_key_made_meanwhile_by_another_sweep_wins(key, monkeypatch):
    made = sweep_state._user_key()
    assert len(made) == 32 and key.stat().st_mode & 0o777 == 0o600 and sweep_state._user_key() == made
    key.unlink()
    # Another sweep writes its key between this one finding none and creating it: this one uses that key.
    real_read = Path.read_bytes

    def read_then_race(path: Path) -> bytes:
        if path == key and not key.exists():
            key.write_bytes(b"k" * 32)
            raise FileNotFoundError(path)
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_then_race)
    assert sweep_state._user_key() == b"k" * 32


def _state(sweep: Path) -> Path:
    state = sweep / "ray" / sweep_state.EXPERIMENT
    (state / "trial_1").mkdir(parents=True)
    (state / "experiment_state.pkl").write_bytes(b"pickled")
    (state / "trial_1" / "result.json").write_text("{}")
    return state


def test_rays_saved_state_is_restored_only_with_this_users_signature(tmp_path, key):
    sweep = tmp_path / "sweep"
    state = _state(sweep)
    with pytest.raises(OverfitError, match="signature does not match"):  # never signed (copied, or its sweep was killed)
        sweep_state.check_state(sweep)
    sweep_state.sign_state(sweep)
    sweep_state.check_state(sweep)
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    (state / "experiment_state.pkl").write_bytes(b"pickled, then edited")
    with pytest.raises(OverfitError, match="never unpickled") as e:
        sweep_state.check_state(sweep)
    assert e.value.field == "resume"
    sweep_state.sign_state(sweep)
    (state / "trial_2").mkdir()
    (state / "trial_2" / "extra.pkl").write_bytes(b"added")
    with pytest.raises(OverfitError):
        sweep_state.check_state(sweep)
    # Signed by another user (another key) and copied here: refused.
    sweep_state.sign_state(sweep)
    key.write_bytes(os.urandom(32))
    with pytest.raises(OverfitError):
        sweep_state.check_state(sweep)


def test_a_trial_reserves_the_memory_of_the_sweeps_largest_run(tmp_path):
    from overfit.targets import load_target

    spec = sweep_spec.build("mem", BASE, grid={"model.hidden": ["16", "512,512"]})
    big = spec.config.with_overrides({"model.hidden": "512,512"})
    target = load_target(spec.config.data)
    shape = (target.height, target.width)
    assert tune.trial_memory(spec) == estimate(big, shape).total > estimate(spec.config.with_overrides({"model.hidden": "16"}), shape).total
