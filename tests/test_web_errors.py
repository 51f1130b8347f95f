"""Tests of the lab's refusals (`web.errors`): overfit's error types map to HTTP statuses and form fields by type, never by text."""

from __future__ import annotations

import pytest
from web_client import create, lab, make_lab, refusal  # noqa: F401  (fixtures)

from overfit.errors import (ConfigError, DeviceError, OverfitError, RunBusyError, RunExistsError, RunFolderError, TargetError,
                            TrainingDiverged)
from overfit.web.errors import LabError, lab_error, runs_dir_names


@pytest.mark.parametrize("error, status, field", [
    # The texts say nothing about what went wrong: only the types and fields decide.
    (RunExistsError("all is well", "/somewhere/runs/x"), 409, "name"),
    (RunBusyError("all is well"), 409, None),
    (RunFolderError("all is well", field="schedule.steps"), 409, "schedule.steps"),
    (RunFolderError("all is well", field="runs_dir"), 500, "runs_dir"),
    (ConfigError("all is well", field="model.hidden"), 422, "model.hidden"),
    (TargetError("all is well", field="data.font_size"), 422, "data.font_size"),
    (TargetError("all is well"), 422, "data.text"),
    (DeviceError("all is well"), 422, "device"),
    (TrainingDiverged(3, float("nan")), 422, None),
    (OverfitError("all is well"), 422, None),
])
def test_overfit_errors_map_to_a_status_and_field_by_type(error, status, field):
    e = lab_error(error)
    assert (e.status, e.field, e.detail) == (status, field, error.detail)
    assert e.payload() == {"error": error.detail, **({"field": field} if field else {})}


def test_a_lab_error_passes_through_and_its_payload_is_the_bare_message():
    e = LabError(429, "too many", field="x")
    assert lab_error(e) is e and e.payload() == {"error": "too many", "field": "x"}


def test_server_paths_are_replaced_by_the_names_the_page_knows(tmp_path):
    runs = tmp_path / "runs"
    e = lab_error(RunExistsError(f"run folder {runs}/first already exists in {runs}", f"{runs}/first"), hide=runs_dir_names(runs))
    assert e.detail == "run folder first already exists in the runs folder"
    upload = f"{runs}/.uploads/{'0' * 64}.png"
    e = lab_error(TargetError(f"picture {upload} is truncated or corrupt", field="data.image"), hide=runs_dir_names(runs), upload=upload)
    assert (e.status, e.field, e.detail) == (422, "upload", "picture the uploaded file is truncated or corrupt")


def test_a_run_name_taken_on_disk_is_a_conflict_naming_the_field(lab):
    create(lab, name="taken")
    message = refusal(lab.post("/api/runs", json={"config": {"data": {"text": "OV", "width": 64, "height": 32}}, "name": "taken"}), 409, "name")
    assert "taken" in message and "already exists" in message


def test_a_model_above_the_labs_memory_cap_is_refused_before_any_folder_is_made(lab, tmp_path):
    from overfit.web.forms import LAB_MAX_MEMORY, lab_memory_budget

    assert lab_memory_budget() <= LAB_MAX_MEMORY
    # 16384 x 16384 weights: ~1.1 GB of floats, x4 with gradients and Adam state, over the lab's cap.
    config = {"data": {"text": "OV", "width": 64, "height": 32}, "model": {"hidden": [16384, 16384]}}
    message = refusal(lab.post("/api/runs", json={"config": config, "name": "huge"}), 422, "model.hidden")
    assert "needs" in message and "budget" in message
    assert lab.get("/api/runs").json()["runs"] == []
