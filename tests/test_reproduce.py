"""End-to-end tests of `overfit reproduce` on a tiny target, and its resume and divergence handling."""

from __future__ import annotations

import json
import re

import pytest

from click.testing import CliRunner

from overfit import reproduce as rp
from overfit.cli import main
from overfit.runs import RunFolder
from overfit.reproduce.verdicts import VERDICTS
from overfit.targets import load_target

def load_checkpoint(run) -> dict:
    return RunFolder(run).checkpoint()


TINY = ["--text", "HI", "--size", "48x24", "--steps", "100", "--eval-every", "50", "--seeds", "0", "--no-compile"]


def test_reproduce_writes_a_report_and_reuses_finished_runs(tmp_path):
    out = tmp_path / "rep"
    result = CliRunner().invoke(main, ["reproduce", *TINY, "--out", str(out), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = out / "report"
    for name in ("index.html", "report.md", "results.json", "grid.mp4", "grid.gif", "accuracy.png", "loss.png", "spectrum.png"):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    html = (report / "index.html").read_text()
    for name in ("grid.mp4", "grid.gif", "accuracy.png", "loss.png", "spectrum.png"):
        assert re.search(rf'(src|href)="{re.escape(name)}"', html), name
    results = json.loads((report / "results.json").read_text())
    assert [f["id"] for f in results["findings"]] == [1, 2, 3, 4, 5, 6]
    assert all(f["verdict"] in VERDICTS for f in results["findings"])
    # One seed: each finding counts it (each run but relu_raw for finding 6) as deciding it or not.
    for f in results["findings"]:
        assert f["share"]["of"] + f["share"]["undecided"] == (5 if f["id"] == 6 else 1) and f["sentence"]
    assert results["findings"][1]["per_seed"][0]["seed"] == 0
    assert any("Wilson" in rule for rule in results["rules"])
    assert "## Rules" in (report / "report.md").read_text() and '<h3 class="rules">Rules</h3>' in html
    assert [row["preset"] for row in results["table"]] == list(rp.REPRODUCE_PRESETS)
    for preset in rp.REPRODUCE_PRESETS:
        run = out / "runs" / f"{preset}-s0"
        assert load_checkpoint(run)["step"] == 100
        assert (run / "progress.mp4").is_file()
        assert results["presets"][preset]["runs"][0]["history"][-1]["step"] == 100
    # The wall time of the invocation that trained, beside the arithmetic limit of what it trained at this machine's peak.
    meta = results["meta"]
    assert meta["model_steps"] == 6 * 100 and meta["evaluations"] == 6 * 3 and meta["peak_gflops"] > 0
    assert 0 < meta["arithmetic_seconds"] < meta["wall_seconds"] == pytest.approx(json.loads((out / "wall.json").read_text())["seconds"], abs=0.1)
    assert "x the arithmetic limit" in (report / "report.md").read_text() and "arithmetic limit" in html
    assert "variants trained together" not in html  # one variant: the time is its own
    # So few steps learn no fine band, so the early stop could not fire, and the report says why.
    assert meta["early_stop"].startswith("no run stopped early, and none could here") and "band" in meta["early_stop"]
    assert meta["early_stop"] in (report / "report.md").read_text()
    # Every verdict is printed.
    for f in results["findings"]:
        assert f"{f['verdict']:<13} {f['id']}. {f['title']}\n{'':<13}    {f['sentence']}\n" in result.output

    # Running it again reuses the finished runs instead of training them again.
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("checkpoint.pt")}
    again = CliRunner().invoke(main, ["reproduce", *TINY, "--out", str(out), "-q"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert again.output.count(": reused") == 6
    assert before == {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("checkpoint.pt")}
    assert json.loads((out / "report" / "results.json").read_text())["meta"]["wall_seconds"] == meta["wall_seconds"]  # nothing trained


def test_interrupted_run_resumes_and_a_different_config_is_refused(tmp_path):
    runs = rp.plan({"data.text": "HI", "data.width": 48, "data.height": 24}, steps=100, eval_every=50, seeds=[0])
    target = load_target(runs[0].config.data)

    def stop_early(trainer):
        def on_event(event):
            if event.kind == "log" and event.step == 50:
                trainer.request_stop()
        return on_event

    def train(planned, callback):
        status, session = rp.open_run(planned, target, tmp_path)
        if session is None:
            return status
        return rp.train_all([(planned, session)], target, lambda p, trainer: callback(trainer))[planned.name]

    assert train(runs[1], stop_early) == "interrupted"
    assert load_checkpoint(tmp_path / runs[1].name)["step"] == 50
    assert train(runs[1], lambda trainer: (lambda event: None)) in ("done", "stopped")
    assert load_checkpoint(tmp_path / runs[1].name)["step"] in (50, 100)
    assert train(runs[1], lambda trainer: (lambda event: None)) in ("reused", "stopped")

    other = rp.plan({"data.text": "HI", "data.width": 48, "data.height": 24, "optim.lr": 1e-3}, 100, 50, [0])[1]
    try:
        train(other, lambda trainer: (lambda event: None))
    except rp.ReproduceError as e:
        assert "different config" in str(e)
    else:
        raise AssertionError("a run folder with another config was reused")


def test_a_run_stops_early_once_every_threshold_and_band_is_reached_and_says_so(tmp_path):
    # An easy picture (a few wide bars) and a quick recipe: relu_1 learns it all long before 3,000 steps.
    overrides = {"data.text": "I", "data.width": 32, "data.height": 16, "optim.lr": 3e-3}
    runs = rp.plan(overrides, steps=3000, eval_every=100, seeds=[0])
    relu_1 = next(p for p in runs if p.preset == "relu_1")
    target = load_target(relu_1.config.data)
    status, session = rp.open_run(relu_1, target, tmp_path)
    assert rp.train_all([(relu_1, session)], target, lambda p, t: (lambda e: None))[relu_1.name] == "stopped"
    folder = RunFolder(tmp_path / relu_1.name)
    record = json.loads((folder.path / "ending.json").read_text())
    history = folder.metrics()
    assert record["how"] == "stopped" and record["step"] == history[-1]["step"] < 3000
    assert max(r["dense_acc"] for r in history) >= 0.99
    assert "learned all 8 spectral bands" in record["reason"]
    assert folder.finished() and folder.finished(100_000)  # stopped on purpose: done whatever the budget
    # Stopped on purpose: reopening it trains nothing more.
    assert rp.open_run(relu_1, target, tmp_path) == ("stopped", None)
    from overfit.reproduce.plan import ending

    assert ending(folder.path, 3000, history)["reason"] == "stopped"


def test_evaluations_are_dense_early_and_sparse_late():
    runs = rp.plan({}, steps=100_000, eval_every=500, seeds=[0])
    steps = runs[0].config.schedule.evaluation_steps()
    assert steps[:3] == [0, 500, 1000] and 20_000 in steps and 20_500 not in steps
    assert steps[-3:] == [95_000, 97_500, 100_000] and len(steps) == 73


def test_diverging_presets_are_reported_not_fatal(tmp_path):
    # A huge learning rate on raw coordinates makes runs diverge.
    runs = rp.plan({"data.text": "HI", "data.width": 48, "data.height": 24, "optim.lr": 1e30, "model.input_range": None},
                   steps=20, eval_every=10, seeds=[0])
    target = load_target(runs[0].config.data)
    meta = rp.make_meta(target, steps=20, eval_every=10, seeds=[0], command="test")
    results = rp.reproduce(tmp_path / "div", target, runs, meta,
                           lambda planned, trainer: (lambda event: None), lambda line: None)
    statuses = {row["preset"]: row["status"] for row in results["table"]}
    assert any("diverged" in s for s in statuses.values()), statuses
    assert len(results["findings"]) == 6


def test_reproduce_takes_train_s_seed_lists_and_refuses_a_bad_one(tmp_path):
    from click.testing import CliRunner

    from overfit.cli import main

    result = CliRunner().invoke(main, ["reproduce", "--seeds", "3-1", "--out", str(tmp_path / "r")])
    assert result.exit_code != 0 and "Error: --seeds" in result.output and "3-1" in result.output, result.output
    assert not (tmp_path / "r").exists()
    assert [p.seed for p in rp.plan({}, steps=10, eval_every=10, seeds=[4, 7])] == [4] * 6 + [7] * 6


TWO_LOSSES = ["--variant", "loss=cross_entropy,double_softmax"]


def test_variants_train_together_into_one_report_and_an_interrupted_run_resumes(tmp_path):
    # Finished runs are reused the same way for one variant or many (plan.open_run): the single-variant test checks it.
    out = tmp_path / "var"
    names = ["loss=cross_entropy", "loss=double_softmax"]
    # A run of the second variant interrupted at step 50: the reproduction resumes it rather than starting it again.
    planned = rp.plan({**rp.BASE_SETTINGS, "data.text": "HI", "data.width": 48, "data.height": 24, "compile": False}, 100, 50, [0],
                      variants=rp.combinations([("loss", ["cross_entropy", "double_softmax"])]))
    cut = next(p for p in planned if p.label == "loss=double_softmax/relu_1-s0")
    target = load_target(cut.config.data)
    runs_dir = out / "variants" / "loss=double_softmax" / "runs"
    runs_dir.mkdir(parents=True)
    _, session = rp.open_run(cut, target, runs_dir)

    def stop_at_50(p, trainer):
        return lambda event: trainer.request_stop() if event.kind == "log" and event.step == 50 else None

    assert rp.train_all([(cut, session)], target, stop_at_50)[cut.label] == "interrupted"
    before = RunFolder(runs_dir / "relu_1-s0").metrics()
    assert [r["step"] for r in before] == [0, 50]

    result = CliRunner().invoke(main, ["reproduce", *TINY, *TWO_LOSSES, "--out", str(out), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # Every run of both variants in one memory budget and one call of the training.
    assert "Training 12 run(s) together; 0 already finished" in result.output
    for name, loss in zip(names, ("cross_entropy", "double_softmax")):
        folder = out / "variants" / name
        for preset in rp.REPRODUCE_PRESETS:
            run = RunFolder(folder / "runs" / f"{preset}-s0")
            assert run.config().loss == loss and load_checkpoint(run.path)["step"] == 100
        assert json.loads((folder / "report" / "results.json").read_text())["meta"]["loss"] == loss
        assert (folder / "report" / "index.html").is_file() and (folder / "report" / "grid.mp4").is_file()
        # Its wall time is of both variants, which trained together, and says so.
        assert "all 2 variants trained together" in (folder / "report" / "report.md").read_text()
        assert "all 2 variants trained together" in (folder / "report" / "index.html").read_text()
    resumed = RunFolder(runs_dir / "relu_1-s0").metrics()
    assert resumed[:2] == before and resumed[-1]["step"] == 100

    results = json.loads((out / "report" / "results.json").read_text())
    assert [v["name"] for v in results["variants"]] == names and results["meta"]["axes"] == {"loss": ["cross_entropy", "double_softmax"]}
    for variant in results["variants"]:
        assert [f["id"] for f in variant["findings"]] == [1, 2, 3, 4, 5, 6]
        assert all(f["verdict"] in VERDICTS and f["share"] is not None and f["sentence"] for f in variant["findings"])
        assert variant["folder"] == f"variants/{variant['name']}"
    for name in ("index.html", "report.md", "accuracy.png", "accuracy.svg", "loss.png", "loss.svg"):
        assert (out / "report" / name).stat().st_size > 0, name
    html = (out / "report" / "index.html").read_text()
    head = re.search(r'<table id="variants-table"><thead><tr>(.*?)</tr></thead>', html).group(1)
    assert re.findall(r"<th[^>]*>(.*?)</th>", head) == ["finding", *names]
    rows = re.search(r'<table id="variants-table">.*?<tbody>(.*?)</tbody>', html).group(1).split("</tr>")[:-1]
    assert len(rows) == 6 and all(row.count('class="badge"') == 2 for row in rows)
    first = results["variants"][1]["findings"][0]
    k_of_n = f"{first['share']['holds']}/{first['share']['of']} {first['share']['unit']}"
    assert k_of_n in rows[0] and f"{first['sentence']}" in html.replace("&#x27;", "'")
    for name in names:
        assert f'href="../variants/{name}/report/index.html"' in html
    # Every finding's verdict under each variant is printed.
    for variant in results["variants"]:
        for f in variant["findings"]:
            assert f"   {f['verdict']:<13} {variant['name']}: {f['sentence']}\n" in result.output


def _planned(monkeypatch, args):
    """What `overfit reproduce ARGS` would train and where, without training it."""
    seen = {}

    def fake(out_dir, target, runs, meta, make_callback, announce, address=None):
        seen.update(out=out_dir, runs=runs)
        return {"findings": []}

    monkeypatch.setattr(rp, "reproduce", fake)
    result = CliRunner().invoke(main, ["reproduce", "--text", "HI", "--size", "48x24", "--seeds", "0-1", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return seen["out"], [(p.preset, p.seed, p.config) for p in seen["runs"]]


def test_loss_and_init_are_shorthands_for_variants(monkeypatch):
    short = _planned(monkeypatch, ["--loss", "double_softmax", "--init", "torch"])
    long = _planned(monkeypatch, ["--variant", "loss=double_softmax", "--variant", "model.init=torch"])
    assert short == long and str(short[0]) == "reports/reproduce-double_softmax-init_torch"
    assert {(c.loss, c.model.init) for _, _, c in short[1]} == {("double_softmax", "torch")} and len(short[1]) == 12
    # No variant: the original's loss and init, written out as every reproduction has saved them.
    default = _planned(monkeypatch, [])
    assert str(default[0]) == "reports/reproduce" and {c.loss for _, _, c in default[1]} == {"cross_entropy"}
    assert default == _planned(monkeypatch, ["--variant", "loss=cross_entropy"])
    # Several combinations: every one of them, seed 0 of each first.
    out, runs = _planned(monkeypatch, ["--variant", "model.init=original,torch", "--loss", "double_softmax"])
    assert str(out) == "reports/reproduce-variants" and len(runs) == 2 * 2 * 6
    assert [(c.model.init, c.seed) for _, _, c in runs[::6]] == [("original", 0), ("torch", 0), ("original", 1), ("torch", 1)]


@pytest.mark.parametrize("args, words", [
    (["--variant", "model.nope=1,2"], "unknown config key 'model.nope'"),
    (["--variant", "model.init=original,glorot"], "model.init=glorot: unknown init 'glorot'"),
    (["--variant", "loss=mse"], "loss=mse"),
    (["--variant", "optim.lr=1e-4", "--variant", "optim.lr=1e-3"], "optim.lr is given twice"),
    (["--loss", "double_softmax", "--variant", "loss=cross_entropy"], "loss is given twice"),
    (["--variant", "optim.lr=1e-4,1e-4"], "given twice"),
    (["--variant", "optim.lr"], "is not KEY=V1,V2"),
    (["--variant", "data.text=A,B"], "data.text cannot vary"),
    (["--variant", "schedule.steps=10,20"], "use --steps"),
    (["--variant", "optim.lr=1,2,3,4,5", "--variant", "optim.batch_size=64,128,256,512"], "20 combinations is more than the 16"),
    (["--variant", "model.init=original,torch", "--seeds", "0-50"], "612 runs, more than the 600"),
])
def test_a_bad_variant_is_one_line_and_writes_nothing(tmp_path, args, words):
    result = CliRunner().invoke(main, ["reproduce", *args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and words in result.output, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: --"), result.output
    assert not (tmp_path / "r").exists()
