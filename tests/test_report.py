"""Tests for overfit.report: the files of a reproduction report, their links and contents.

A synthetic `results` dict (six presets x two seeds, simple curves, one diverged run) on a
tiny 24 x 48 target is rendered into a temporary folder; the HTML is parsed with
html.parser, the Markdown read as text, and the MP4 read back frame by frame.
"""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import imageio.v2 as iio
import numpy as np
import pytest

from overfit import report, video
from overfit.report import htmlpage, markdown

PRESETS = ("relu_raw", "relu_1", "tanh_1", "cos_1", "cos_3", "bn_relu")
VERDICTS = ("HOLDS", "DOES NOT HOLD", "INCONCLUSIVE", "SOMETIMES", "HOLDS", "DOES NOT HOLD")
RULES = ["HOLDS: the interval's lower bound is at least 67 %.", "Converging: <90 %> & more."]
FILES = ("index.html", "report.md", "grid.mp4", "grid.gif", "accuracy.png", "accuracy.svg", "loss.png", "loss.svg", "spectrum.png", "spectrum.svg")


def fake_target(height: int, width: int) -> np.ndarray:
    """(H, W) uint8: white background with two black bars, about 20 % ink."""
    gray = np.full((height, width), 255, dtype=np.uint8)
    gray[height // 4 : 3 * height // 4, width // 8 : width // 4] = 0
    gray[height // 3 : 2 * height // 3, width // 2 : 5 * width // 8] = 0
    return gray


def fake_results(height: int = 24, width: int = 48, steps: int = 2000, eval_every: int = 250, seeds=(0, 1), diverged_at: int = 1000):
    """A `results` dict, seed-0 frames and target for six presets; bn_relu seed 0 diverges."""
    target = fake_target(height, width)
    eval_steps = list(range(0, steps + 1, eval_every))
    presets, table, spectrum, frames = {}, [], {}, {}
    n_bands = 8
    for p, name in enumerate(PRESETS):
        tau = steps * (0.1 + 0.08 * p)
        runs = []
        for seed in seeds:
            diverged = name == "bn_relu" and seed == 0
            history = []
            for s in eval_steps:
                if diverged and s > diverged_at:
                    break
                if name == "relu_raw":
                    acc = 0.8 if (s // eval_every + seed) % 2 else 0.2  # flips all-background / all-ink
                else:
                    acc = 1.0 - 0.2 * math.exp(-s / tau) * (1 + 0.05 * seed)
                rec = {"step": s, "dense_acc": acc, "dense_iou": max(0.0, 5 * acc - 4), "dense_loss": -math.log(max(acc, 1e-3)) + 0.01, "dense_pred_bg": 0.8}
                if diverged and s == diverged_at:
                    rec["dense_loss"] = None  # NaN loss is written as null
                if s > 0:
                    rec["train_loss"] = rec["dense_loss"]
                history.append(rec)
            runs.append(
                {
                    "seed": seed,
                    "run_dir": f"runs/{name}-s{seed}",
                    "status": "diverged" if diverged else "done",
                    "diverged_step": diverged_at if diverged else None,
                    "wall_seconds": 10.0 + p + seed,
                    "history": history,
                }
            )
            if seed == 0:
                frames[name] = []
                for rec in history:
                    progress = 0.0 if name == "relu_raw" else 1.0 - math.exp(-rec["step"] / tau)
                    gray = np.round(128 + (target.astype(np.float64) - 128) * progress).astype(np.uint8)
                    frames[name].append((rec["step"], gray))
        presets[name] = {"description": f"{name} <test> & description", "config": {"preset": name, "steps": steps}, "runs": runs}
        table.append(
            {
                "preset": name,
                "steps_to": {
                    "0.9": {"mean": 500.0 * (p + 1), "spread": 50.0, "reached": 2, "of": 2},
                    "0.95": {"mean": 800.0 * (p + 1), "spread": None, "reached": 1, "of": 2},
                    "0.99": {"mean": None, "spread": None, "reached": 0, "of": 2},
                },
                "final_acc": {"mean": 0.98, "spread": 0.004},
                "final_iou": {"mean": 0.9, "spread": 0.01},
                "wall_seconds": {"mean": 10.5 + p, "spread": 0.5},
                "status": "1 of 2 diverged" if name == "bn_relu" else "2/2 done",
            }
        )
        errors = [[max(0.0, 1.6 - s / (tau * (1 + b / 3))) if b != 7 or s else None for b in range(n_bands)] for s in eval_steps]
        first = [next((s for s, row in zip(eval_steps, errors) if row[b] is not None and row[b] < 0.5), None) for b in range(n_bands)]
        spectrum[name] = {"steps": eval_steps, "errors": errors, "first_below": first}
    findings = [
        {
            "id": i + 1,
            "title": f"Finding {i + 1} about {PRESETS[i]}",
            "verdict": VERDICTS[i],
            "sentence": f"Holds in {i} of 5 seeds: {VERDICTS[i]}.",
            "share": {"holds": i, "of": 5, "undecided": 0, "unit": "seeds", "share": i / 5, "interval": [0.1, 0.9],
                      "bounds": [1 / 3, 2 / 3]},
            "effects": [{"threshold": 0.9, "median_ratio": 0.5, "interval": [0.4, 0.6], "seeds": 5,
                         "text": f"Steps to 90 %: {PRESETS[i]} needs 0.50 times the other's."}] if i in (3, 4) else [],
            "summary": f"Measured {i} < {i + 1} for {PRESETS[i]}.",
            "numbers": {f"{PRESETS[i]}_final_acc": 0.95, "steps": 12000, "label": "x", "missing": None},
            "thresholds": {"min_acc": 0.9},
            "per_seed": [{"seed": s, "holds": s < i, "note": f"seed note {s}"} for s in range(5)],
        }
        for i in range(6)
    ]
    findings[5]["per_seed"] = [{"run": "relu_1-s0", "holds": None, "note": "fewer than two bands"}]
    findings[5]["share"]["unit"] = "runs"
    results = {
        "meta": {
            "title": "OVERFIT reproduction",
            "target": 'text "OVERFIT"',
            "height": height,
            "width": width,
            "majority_rate": 0.8,
            "steps": steps,
            "eval_every": eval_every,
            "seeds": list(seeds),
            "loss": "cross_entropy",
            "init": "original",
            "started": "2026-11-27T14:00:00",
            "wall_seconds": 612.3,
            "command": "overfit reproduce",
            "machine": {"cpu": "Test CPU", "cores": 2, "threads": 2, "platform": "Linux"},
            "versions": {"overfit": "0.1.0", "python": "3.11.7", "torch": "2.13.0", "numpy": "2.0"},
        },
        "presets": presets,
        "table": table,
        "spectrum": {"band_edges": [0.5 * k / n_bands for k in range(n_bands + 1)], "threshold": 0.5, "presets": spectrum},
        "findings": findings,
        "rules": RULES,
        # An older report beside this one, judged with the verdicts of its time.
        "variants": [{"name": "loss double_softmax", "verdicts": {str(i + 1): v for i, v in enumerate(("PASS", "FAIL") * 3)}}],
    }
    return results, frames, target


class _Links(HTMLParser):
    """Collects src/href attributes, rows of the table with id steps-table, and text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.table_stack: list[str | None] = []
        self.in_tbody = False
        self.steps_rows = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key):
                self.links.append(attrs[key])
        if tag == "table":
            self.table_stack.append(attrs.get("id"))
        elif tag == "tbody":
            self.in_tbody = True
        elif tag == "tr" and self.in_tbody and self.table_stack and self.table_stack[-1] == "steps-table":
            self.steps_rows += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self.table_stack.pop()
        elif tag == "tbody":
            self.in_tbody = False

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    results, frames, target = fake_results()
    out = tmp_path_factory.mktemp("report") / "report"  # not created yet: write_report makes it
    report.write_report(out, results, frames, target)
    return out, results, frames


def count_mp4_frames(path) -> tuple[int, tuple[int, ...]]:
    # Iterate: the reader's len() is inf, so list(reader) does not work.
    reader = iio.get_reader(path, format="FFMPEG")
    try:
        n, shape = 0, ()
        for frame in reader:
            n, shape = n + 1, frame.shape
        return n, shape
    finally:
        reader.close()


# ----------------------------------------------------------------------------- files


def test_all_files_written_and_non_empty(written):
    out, _, _ = written
    for name in FILES:
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


def test_html_links_are_relative_and_exist(written):
    out, _, _ = written
    parser = _Links()
    parser.feed((out / "index.html").read_text(encoding="utf-8"))
    for name in ("grid.mp4", "grid.gif", "accuracy.png", "loss.png", "spectrum.png"):
        assert name in parser.links, name
        assert (out / name).is_file()
    assert not [link for link in parser.links if re.match(r"(https?:)?//", link)]
    # Links into the folder itself resolve; run folders are siblings of the report (../runs/...).
    for link in parser.links:
        if not link.startswith("../") and link != "results.json":
            assert (out / link).exists(), link
    assert "../runs/relu_1-s0/" in parser.links


def test_html_contents(written):
    out, results, _ = written
    page = (out / "index.html").read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(page)
    text = " ".join(parser.text)
    for name in PRESETS:
        assert name in text
    for verdict in (*VERDICTS, "PASS", "FAIL"):  # older reports' verdicts as variants
        assert re.search(rf'class="badge"[^>]*>{verdict}<', page), verdict
    assert parser.steps_rows == 6
    # Text from results is escaped, not interpreted.
    assert "&lt;test&gt; &amp; description" in page
    assert "<test>" not in page
    assert "12,000" in page and "not reached" in page and "(1/2 seeds)" in page
    assert 'id="variants-table"' in page and "loss double_softmax" in page
    assert '<video src="grid.mp4"' in page


def test_html_shows_share_interval_effect_sentence_and_rules(written):
    out, results, _ = written
    page = (out / "index.html").read_text(encoding="utf-8")
    for f in results["findings"]:
        assert f'<p class="sentence">{f["sentence"]}</p>' in page
    assert page.count('<svg class="share"') == 6
    assert 'aria-label="3 of 5 seeds hold, 10-90 % interval"' in page
    # The interval bar spans 10-90 % of the line, the bounds are ticks at 1/3 and 2/3.
    assert 'x1="28.8" y1="9" x2="211.2" y2="9"' in page and 'x1="82.0" y1="2"' in page and 'x1="158.0" y1="2"' in page
    assert "Steps to 90 %: cos_1 needs 0.50 times the other&#x27;s." in page
    assert "<summary>per seed</summary>" in page and "<b>seed 2</b>: holds — seed note 2" in page
    assert "<summary>per run</summary>" in page and "<b>relu_1-s0</b>: cannot decide — fewer than two bands" in page
    assert '<h3 class="rules">Rules</h3>' in page and "Converging: &lt;90 %&gt; &amp; more." in page


def test_older_results_without_shares_still_render():
    results, frames, target = fake_results()
    for f in results["findings"]:
        for key in ("sentence", "share", "effects", "per_seed"):
            f.pop(key)
    del results["rules"]
    page = htmlpage.html_page(results)
    assert "<svg" not in page and "Rules" not in page and "per seed" not in page and "Finding 1 about relu_raw" in page
    md = markdown.markdown_page(results)
    assert "### 1. Finding 1 about relu_raw — **HOLDS**\n\nMeasured 0 < 1 for relu_raw." in md and "## Rules" not in md


def test_html_inlines_the_stylesheet(written):
    # The page opens from disk: report.css (package data) is inside it, nothing is linked.
    out, _, _ = written
    page = (out / "index.html").read_text(encoding="utf-8")
    css = htmlpage.stylesheet()
    assert css.startswith(":root {") and ".findings {" in css
    assert f"<style>\n{css}</style>" in page
    assert "<link" not in page


def test_markdown_has_findings_and_table(written):
    out, results, _ = written
    md = (out / "report.md").read_text(encoding="utf-8")
    for f in results["findings"]:
        assert f"### {f['id']}. {f['title']} — **{f['verdict']}**\n\n**{f['sentence']}**\n" in md
    assert "- Steps to 90 %: cos_3 needs 0.50 times the other's.\n" in md
    assert "- seed 1: holds — seed note 1" in md and "- seed 4: does not hold — seed note 4" in md
    assert "## Rules\n\n- HOLDS: the interval's lower bound is at least 67 %.\n- Converging: <90 %> & more.\n" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in PRESETS]
    assert [r.split("|")[1].strip() for r in rows] == list(PRESETS)
    assert "| relu_1 | 1,000 ± 50 | 1,600 (1/2 seeds) | not reached |" in md
    for image in ("grid.gif", "accuracy.png", "loss.png", "spectrum.png"):
        assert f"]({image})" in md


def test_variants_report_has_a_column_per_variant_with_share_and_interval(tmp_path):
    from overfit.reproduce import Variant, compare_variants

    first, _, _ = fake_results()
    second, _, _ = fake_results(seeds=(0, 1, 2))
    second["findings"][0] = {**second["findings"][0], "verdict": "DOES NOT HOLD", "sentence": "Holds in 0 of 3 seeds.",
                             "share": {"holds": 0, "of": 3, "undecided": 1, "unit": "seeds", "interval": [0.0, 0.5615]}}
    variants = [Variant((("loss", "cross_entropy"), ("model.init", "torch"))), Variant((("loss", "double_softmax"), ("model.init", "torch")))]
    results = compare_variants(first["meta"], [(v, f"variants/{v.name}", r) for v, r in zip(variants, (first, second))])
    assert results["meta"]["axes"] == {"loss": ["cross_entropy", "double_softmax"], "model.init": ["torch"]}
    out = tmp_path / "report"
    report.write_variants_report(out, results, [first, second])
    for name in ("index.html", "report.md", "accuracy.png", "accuracy.svg", "loss.png", "loss.svg"):
        assert (out / name).stat().st_size > 0, name
    page = (out / "index.html").read_text(encoding="utf-8")
    head = re.search(r'<table id="variants-table"><thead><tr>(.*?)</tr>', page).group(1)
    assert re.findall(r"<th[^>]*>(.*?)</th>", head) == ["finding", "loss=cross_entropy,model.init=torch", "loss=double_softmax,model.init=torch"]
    row = re.search(r'<table id="variants-table">.*?<tbody><tr>(.*?)</tr>', page).group(1)
    assert re.findall(r'class="badge"[^>]*>([^<]*)<', row) == ["HOLDS", "DOES NOT HOLD"]
    assert "0/5 seeds<br>" in row and "0/3 seeds (1 undecided)<br>" in row and "0–56 %" in row and "10–90 %" in row
    assert "Holds in 0 of 3 seeds." in page and 'href="../variants/loss=double_softmax,model.init=torch/report/index.html"' in page
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| finding | loss=cross_entropy,model.init=torch | loss=double_softmax,model.init=torch |" in md
    assert "**DOES NOT HOLD** 0/3 seeds (1 undecided), 0–56 %" in md
    assert "- **DOES NOT HOLD** loss=double_softmax,model.init=torch: Holds in 0 of 3 seeds." in md


def test_grid_video_frames_and_width(written):
    out, _, frames = written
    union = sorted({s for pairs in frames.values() for s, _ in pairs})
    n, shape = count_mp4_frames(out / "grid.mp4")
    assert n == len(union) + video.held_frames(report.GRID_FPS)
    assert shape[1] <= report.GRID_MAX_WIDTH
    with iio.get_reader(out / "grid.gif") as gif:
        assert gif.get_data(0).shape[1] <= report.GIF_MAX_WIDTH


def test_grid_frames_hold_and_mark_diverged_panel():
    results, frames, target = fake_results()
    grid, steps = report.grid_frames(results, frames, target)
    assert steps == list(range(0, 2001, 250))
    assert len(grid) == len(steps)
    assert len({g.shape for g in grid}) == 1 and grid[0].shape[1] <= report.GRID_MAX_WIDTH
    # The 48 px target is enlarged by an integer factor (crisp), at least MIN_PANEL_WIDTH wide.
    pw, ph = report.panel_size(24, 48)
    assert (pw, ph) == (240, 120)
    # bn_relu (last panel) diverged at step 1000: its red outline appears after, never before.
    red = np.array(report.DIVERGED_RGB)

    def has_red(frame):
        return bool(np.any(np.all(frame == red, axis=-1)))

    assert not has_red(grid[steps.index(750)])
    assert has_red(grid[steps.index(1250)]) and has_red(grid[-1])


def test_grid_video_reads_stored_frames_lazily_and_thins(tmp_path, monkeypatch):
    # The report gets each preset's frames as a run folder's StoredFrames: a PNG is read only
    # when a drawn grid frame shows it, and the MP4 keeps at most GRID_MAX_FRAMES frames.
    import weakref

    from overfit import images, runs
    from overfit.report import gridvideo

    results, frames, target = fake_results()  # 9 evaluation steps
    reads, alive, peak = [0], [0], [0]
    real_read = images.read_png

    def counted_read(path, *args, **kwargs):
        picture = real_read(path, *args, **kwargs)
        reads[0] += 1
        alive[0] += 1
        peak[0] = max(peak[0], alive[0])
        weakref.finalize(picture, lambda: alive.__setitem__(0, alive[0] - 1))
        return picture

    monkeypatch.setattr(runs, "read_png", counted_read)  # what a run folder's StoredFrames decodes each frame with
    stored, folders = {}, []
    for name, pairs in frames.items():
        folder = runs.RunFolder.create(tmp_path / "runs", name, name)
        folders.append(folder)
        for step, gray in pairs:
            folder.write_frame(step, gray)
        stored[name] = folder.read_frames([s for s, _ in pairs])
    try:
        grid, steps = report.grid_frames(results, stored, target)
        assert reads[0] == 0 and len(grid) == len(steps) == 9  # nothing read before a frame is drawn
        monkeypatch.setattr(gridvideo, "GRID_MAX_FRAMES", 4)
        gridvideo.write_grid_video(tmp_path, results, stored, target)
    finally:
        for folder in folders:
            folder.unlock()
    n, _ = count_mp4_frames(tmp_path / "grid.mp4")
    assert n == 4 + video.held_frames(report.GRID_FPS)
    assert 0 < peak[0] <= 2  # one prediction at a time, never a preset's whole run


@pytest.mark.parametrize(("height", "width", "panel"), [(300, 1000, (384, 115)), (1000, 300, (90, 300))])
def test_grid_frames_fit_large_targets(height, width, panel):
    # 3 x 384 + 4 gaps of 12 = 1200 for the default wide picture; tall ones are capped in height.
    assert report.panel_size(height, width) == panel
    results, frames, target = fake_results(height=height, width=width, steps=500, eval_every=250)
    grid, _ = report.grid_frames(results, frames, target)
    assert grid[0].shape[1] <= report.GRID_MAX_WIDTH
    assert grid[0].shape[0] % 2 == 0 and grid[0].shape[1] % 2 == 0


# ----------------------------------------------------------------------------- format_steps


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({"mean": 12000.0, "spread": 500.0, "reached": 2, "of": 2}, "12,000 ± 500"),
        ({"mean": 12000.0, "spread": None, "reached": 1, "of": 2}, "12,000 (1/2 seeds)"),
        ({"mean": 11500.0, "spread": 250.0, "reached": 2, "of": 3}, "11,500 ± 250 (2/3 seeds)"),
        ({"mean": None, "spread": None, "reached": 0, "of": 2}, "not reached"),
        ({"mean": 3000.0, "spread": 0.0, "reached": 1, "of": 1}, "3,000"),
        ({"mean": 1234.6, "spread": 0.4, "reached": 2, "of": 2}, "1,235 ± 0"),
    ],
)
def test_format_steps(entry, text):
    assert report.format_steps(entry) == text
