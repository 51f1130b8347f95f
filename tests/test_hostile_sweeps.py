"""Hostile sweep folders: a sweep folder copied from elsewhere, then made to lie, against everything that reads one.

No Ray starts here. One tiny run is trained once per module and copied in as two trial folders
of a sweep folder made by hand: spec.json, Ray's saved state (a few small files) signed with a
test key as a stopped sweep leaves it, and runs/trial-a, runs/trial-b. Each case copies that
folder, does one hostile thing to the copy (a FIFO, a link to a file or folder outside, a hard
link, a sparse huge file, truncated or bit-flipped JSON, PNG or state) and runs what reads it:

- `overfit sweep --resume` up to where Ray would start (`tune.connect` is replaced by a refusal
  that says so): spec.json, ray.sig and every file of Ray's state are read, and the folders the
  sweep writes into are checked;
- the results and the report of the sweep's trials (`results.rows`, `write_csv`, `write_report`),
  which read each trial's metrics, config, final picture and frames and write results.csv,
  report.md and report/.

Each answers in one line or works, never with a traceback, in bounded time (a hang guard: a
FIFO blocks whoever reads it), and nothing outside the folder changes (a sentinel folder,
hashed before and after, is what the links point to).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from helpers import tiny_config
from hostile import cut, digest, fifo, flip, guarded, link, sparse
from overfit.errors import OverfitError
from overfit.sweep import results
from overfit.sweep import spec as sweep_spec
from overfit.sweep import state, tune

STEPS = 20
LAST_FRAME = f"runs/trial-a/frames/{STEPS:08d}.png"
RAY_STARTS = "Ray would start here"  # what the resume answers once every check before Ray has passed


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    """The sweep folder to copy, its spec, a sentinel folder outside it (what links point to), and the test's key."""
    from overfit.session import Session, train_sessions

    root = tmp_path_factory.mktemp("hostile-sweeps")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(state, "KEY_FILE", root / "home" / "sweep.key")
        mp.setattr(tune, "connect", _no_ray)
        cfg = tiny_config({"schedule.steps": STEPS, "schedule.eval_every": 10})
        spec = sweep_spec.build("hostile", cfg.to_dict(), grid={"optim.lr": ["1e-2", "1e-3"]})
        base = root / "base"
        train_sessions([Session.start(cfg, base / "runs", "trial-a")], interruptible=False)
        shutil.copytree(base / "runs" / "trial-a", base / "runs" / "trial-b")
        (base / "spec.json").write_text(spec.to_json())
        saved = base / "ray" / state.EXPERIMENT
        (saved / "trial-a").mkdir(parents=True)
        (saved / "experiment_state.pkl").write_bytes(os.urandom(4096))
        (saved / "trial-a" / "result.json").write_text('{"dense_acc": 0.5}\n' * 50)
        state.sign_state(base)
        sentinel = root / "sentinel"
        sentinel.mkdir()
        (sentinel / "secret.txt").write_text("outside the sweep\n")
        shutil.copy(base / "spec.json", sentinel / "spec.json")
        shutil.copytree(base / "ray", sentinel / "ray")  # signed state elsewhere: the signature alone would pass it
        shutil.copytree(base / "runs", sentinel / "runs")
        shutil.copytree(base / "runs" / "trial-a", sentinel / "run")
        (sentinel / "report").mkdir()
        yield {"root": root, "base": base, "spec": spec, "sentinel": sentinel}


def _no_ray(address: str | None, timeout_s: float = 5.0) -> None:
    raise OverfitError(RAY_STARTS)




# -- the cases: each does one hostile thing to a copy of the sweep folder -----------------------------






def hard_link(name: str) -> Callable[[Path, Path], None]:
    """`name` is another name of a file outside: reading it is harmless, writing through it must not happen."""
    def apply(sweep: Path, sentinel: Path) -> None:
        outside = sentinel / ("hard-" + name.replace("/", "-"))
        if (sweep / name).exists():
            shutil.move(sweep / name, outside)
        else:
            outside.write_text("outside the sweep\n")
        os.link(outside, sweep / name)
    return apply








def write(name: str, data: bytes) -> Callable[[Path, Path], None]:
    def apply(sweep: Path, sentinel: Path) -> None:
        (sweep / name).parent.mkdir(parents=True, exist_ok=True)
        (sweep / name).write_bytes(data)
    return apply


def report_links(sweep: Path, sentinel: Path) -> None:
    """A report left behind whose every file is a link to a file outside: each is replaced, never written through."""
    (sweep / "report").mkdir()
    for name in ("report/index.html", "report/best_trial-a.png", "report/best.mp4", "report/metric_vs_optim_lr.png",
                 "report/parallel.png", "report.md", "results.csv"):
        (sweep / name).symlink_to(sentinel / "secret.txt")


STATE = f"ray/{state.EXPERIMENT}/experiment_state.pkl"
SPEC_CASES = {"fifo-spec": fifo("spec.json"), "link-spec": link("spec.json", "spec.json"), "sparse-spec": sparse("spec.json"),
              "cut-spec": cut("spec.json"), "flip-spec": flip("spec.json", 0.0), "hard-link-spec": hard_link("spec.json"),
              "deep-spec": write("spec.json", b"[" * 100_000), "huge-number-spec": write("spec.json", b'{"samples": 1' + b"0" * 5000 + b"}")}
STATE_CASES = {"fifo-sig": fifo(state.SIGNATURE), "link-sig": link(state.SIGNATURE, "secret.txt"), "sparse-sig": sparse(state.SIGNATURE),
               "cut-sig": cut(state.SIGNATURE), "flip-sig": flip(state.SIGNATURE, 0.5),
               "not-ascii-sig": write(state.SIGNATURE, "\u00e9".encode() * 64),
               "fifo-state": fifo(STATE), "link-state": link(STATE, "secret.txt"), "sparse-state": sparse(STATE),
               "cut-state": cut(STATE), "flip-state": flip(STATE, 0.5), "added-fifo-state": fifo(f"ray/{state.EXPERIMENT}/added"),
               "link-ray": link("ray", "ray"), "link-ray-tune": link(f"ray/{state.EXPERIMENT}", f"ray/{state.EXPERIMENT}"),
               "link-runs": link("runs", "runs"), "link-report": link("report", "report")}
TRIAL_CASES = {"link-trial": link("runs/trial-a", "run"), "link-frames": link("runs/trial-a/frames", "run/frames"),
               "hard-link-metrics": hard_link("runs/trial-a/metrics.jsonl"), "report-links": report_links,
               "hard-link-results": hard_link("results.csv")}
for _name, _path in (("metrics", "runs/trial-a/metrics.jsonl"), ("config", "runs/trial-a/config.json"),
                     ("final", "runs/trial-a/final.png"), ("frame", LAST_FRAME)):
    TRIAL_CASES.update({f"fifo-{_name}": fifo(_path), f"link-{_name}": link(_path, "secret.txt"), f"sparse-{_name}": sparse(_path),
                        f"cut-{_name}": cut(_path), f"flip-{_name}": flip(_path, 0.6)})
CASES = {**SPEC_CASES, **STATE_CASES, **TRIAL_CASES}

# What the resume must refuse (a substring of its one line); every other case may reach RAY_STARTS.
RESUME_REFUSES = {
    "fifo-spec": "not a regular file", "link-spec": "symbolic link", "sparse-spec": "more than the", "cut-spec": "not valid JSON",
    "flip-spec": "not valid JSON", "deep-spec": "not valid JSON", "huge-number-spec": "not valid JSON",
    **{case: "signature does not match" for case in ("fifo-sig", "link-sig", "sparse-sig", "cut-sig", "flip-sig", "not-ascii-sig",
                                                     "cut-state", "flip-state")},
    "fifo-state": "not a regular file", "link-state": "signature does not match", "sparse-state": "more than the",
    "added-fifo-state": "not a regular file", "link-ray": "ray is a symbolic link", "link-ray-tune": "tune is a symbolic link",
    "link-runs": "runs is a symbolic link", "link-report": "report is a symbolic link",
}
# What the report must refuse as a whole; and the cases where trial-a's row must carry an error (the others report it).
REPORT_REFUSES = {"link-report": "report is a symbolic link"}
ROW_ERRORS = {"link-trial": "not one of this sweep's run folders", "fifo-metrics": "not a regular file",
              "link-metrics": "symbolic link", "sparse-metrics": "more than the"}


# -- what reads a sweep folder -----------------------------------------------------------------------


def resume(sweep: Path) -> str:
    """`overfit sweep --resume` in this process, up to where Ray would start: its one line (a traceback fails the test)."""
    from overfit.cli import main

    result = CliRunner().invoke(main, ["sweep", "--resume", str(sweep)], catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def report(sweep: Path, spec: Any) -> str | None:
    """The sweep's results and report from its trial folders, as the command writes them: None, or the one line."""
    records = [{"trial_id": f"trial-{t}", "params": {"optim.lr": lr}, "last": {}, "error": None, "wall_s": 1.0,
                "run_folder": str(sweep / "runs" / f"trial-{t}"), "node_ip": "127.0.0.1", "node_id": "n"}
               for t, lr in (("a", "1e-2"), ("b", "1e-3"))]
    try:
        table = results.rows(spec, sweep, records)
        results.write_csv(table, sweep / "results.csv")
        results.write_report(spec, sweep, table)
    except OverfitError as e:
        assert "\n" not in str(e), str(e)
        return str(e)
    return None




@pytest.fixture()
def patched(world, monkeypatch):
    monkeypatch.setattr(state, "KEY_FILE", world["root"] / "home" / "sweep.key")
    monkeypatch.setattr(tune, "connect", _no_ray)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_sweep_folder_gets_one_line_or_works_and_nothing_outside_changes(case, world, patched):
    sweep = world["root"] / "cases" / case
    shutil.copytree(world["base"], sweep)
    CASES[case](sweep, world["sentinel"])
    before = digest(world["sentinel"])

    line = guarded(lambda: resume(sweep))
    if case in RESUME_REFUSES:
        assert RAY_STARTS not in line and RESUME_REFUSES[case] in line, line
    if case in TRIAL_CASES or case in REPORT_REFUSES:
        answer = guarded(lambda: report(sweep, world["spec"]))
        if case in REPORT_REFUSES:
            assert answer is not None and REPORT_REFUSES[case] in answer, answer
        else:
            assert answer is None, answer
            with open(sweep / "results.csv", newline="") as f:
                rows = {row["trial"]: row for row in csv.DictReader(f)}
            assert rows["trial-b"]["stop"] == "done" and rows["trial-b"]["error"] == ""
            if case in ROW_ERRORS:
                assert rows["trial-a"]["stop"] == "error" and ROW_ERRORS[case] in rows["trial-a"]["error"], rows["trial-a"]
            assert (sweep / "report" / "index.html").is_file() and not (sweep / "report" / "index.html").is_symlink()
    assert digest(world["sentinel"]) == before


def test_the_untouched_copy_resumes_up_to_ray_and_reports_every_trial(world, patched):
    sweep = world["root"] / "cases" / "plain"
    shutil.copytree(world["base"], sweep)
    assert resume(sweep) == f"Error: {RAY_STARTS}"
    assert report(sweep, world["spec"]) is None
    with open(sweep / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["trial"], r["stop"], r["steps"], r["error"]) for r in rows] == [("trial-a", "done", str(STEPS), ""),
                                                                              ("trial-b", "done", str(STEPS), "")]
    page = (sweep / "report" / "index.html").read_text()
    assert "best_trial-a.png" in page and "best.mp4" in page
    assert (sweep / "report" / "best_trial-a.png").read_bytes() == (sweep / "runs" / "trial-a" / "final.png").read_bytes()


def test_a_spec_naming_a_fifo_as_its_picture_is_refused_without_blocking(world, tmp_path):
    """A resumed sweep sizes its trials from the spec's picture (`tune.trial_memory`): a FIFO there is refused, not read."""
    from overfit.errors import TargetError

    os.mkfifo(tmp_path / "picture.png")
    spec = sweep_spec.build("fifo", {**world["spec"].config.to_dict(), "data": {**world["spec"].config.to_dict()["data"],
                                                                                 "image": str(tmp_path / "picture.png")}})
    with pytest.raises(TargetError, match="not a regular file"):
        guarded(lambda: tune.trial_memory(spec))
