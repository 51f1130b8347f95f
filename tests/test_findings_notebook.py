"""docs/notebooks/findings.ipynb, executed headless with nbclient at its tiny budget: every cell runs, each
finding's cell prints its verdict with numbers, the curves are drawn, and nothing is left in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from overfit.reproduce.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, SOMETIMES

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "findings.ipynb"
VERDICT = re.compile(rf"^Verdict: ({'|'.join(re.escape(v) for v in (HOLDS, DOES_NOT_HOLD, SOMETIMES, INCONCLUSIVE))})$", re.M)


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream")


def _figures(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.outputs)


def test_the_committed_notebook_has_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert "FULL = False" in code[0].source


@pytest.mark.slow  # a kernel starts, imports torch and trains the six presets
def test_the_findings_notebook_runs_headless_and_prints_each_verdict(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("anywidget")
    monkeypatch.setenv("OVERFIT_NOTEBOOK_BUDGET", "tiny")  # the kernel inherits this process's environment
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's run folders go under tempfile's directory
    beside = sorted(NOTEBOOK.parent.iterdir())
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # kernel "python3" is launched with this interpreter (jupyter_client swaps a spec's bare "python" for sys.executable)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o["output_type"] != "error" for c in code for o in c.outputs)
    assert f"Budget 'tiny': 48 x 24 picture, 80 steps, seeds [0], runs in {tmp_path}" in _text(code[0])
    judged = {}
    for cell in code:
        text = _text(cell)
        for number, verdict in re.findall(r"^Finding (\d): .*\nVerdict: (.+)$", text, re.M):
            assert VERDICT.search(text) and re.search(r"\d", text.split("Verdict:", 1)[1].split("\n", 2)[1]), text
            judged[int(number)] = (verdict, cell)
    assert sorted(judged) == [1, 2, 3, 4, 5, 6]
    # Every finding's cell draws its figure: the accuracy curves, or the band errors for finding 6.
    assert all(_figures(cell) == 1 for _, cell in judged.values())
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for c in code for o in c.outputs)
    # The closing cell's verdicts, from `overfit reproduce`'s analysis of the same run folders, agree with each cell's.
    summary = dict(re.findall(r"^(\d)\. .*: (.+)$", _text(code[-1]), re.M))
    assert {int(k): v for k, v in summary.items()} == {n: v for n, (v, _) in judged.items()}
    assert not list(tmp_path.glob("overfit-findings-*"))  # the run folders were removed at the end
    assert sorted(NOTEBOOK.parent.iterdir()) == beside  # and nothing was written beside the notebook
