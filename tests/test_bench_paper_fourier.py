"""The Fourier-features benchmark builds the notebook's mappings (`bench/paper_fourier.py`).

The reference is the notebook's own construction of B (Tancik et al. 2020,
`Experiments/2d_image_regression.ipynb`), rewritten in numpy here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench import paper_fourier as pf


def notebook_posenc(scale: int, embedding_size: int = 256) -> np.ndarray:
    """The notebook's 'posenc_new' bvals, (embedding_size, 2)."""
    b = 2.0 ** np.linspace(0, scale, embedding_size // 2) - 1
    b = np.stack([b, np.zeros_like(b)], -1)
    return np.concatenate([b, np.roll(b, 1, axis=-1)], 0)


@pytest.mark.parametrize("kind, scale", [("natural", 6), ("text", 5)])
def test_positional_is_the_notebooks_log_spaced_axis_aligned_frequencies(kind, scale):
    b = pf.paper_frequencies("positional", kind, 512)
    np.testing.assert_allclose(b.T.numpy(), notebook_posenc(scale), rtol=1e-6, atol=1e-6)
    # A smaller picture holds the same periods per lattice point: frequencies scale with the side.
    np.testing.assert_allclose(pf.paper_frequencies("positional", kind, 128).numpy(), b.numpy() / 4, rtol=1e-6)


def test_basic_none_and_gaussian_frequencies():
    assert pf.paper_frequencies("none", "natural", 512) is None
    assert torch.equal(pf.paper_frequencies("basic", "text", 512), torch.eye(2))
    g = pf.paper_frequencies("gaussian", "text", 512)
    assert g.shape == (2, 256)
    assert abs(float(g.std()) - 14.0) < 14.0 * 0.15  # 512 draws of N(0, 14^2)
    assert torch.equal(g, pf.paper_frequencies("gaussian", "text", 512))  # fixed by its seed


def test_the_encoding_is_the_notebooks_input_encoder_up_to_a_shift_of_the_coordinates():
    """overfit's fourier encoding with the paper's B equals [sin, cos](2 pi v B^T) at v = the notebook's [0, 1) coordinates - 1/2."""
    from overfit.models import model_for

    side = 16
    cfg = pf.mapping_config("positional", "natural", side, "cpu")
    net = model_for(cfg, side, side)
    b = pf.paper_frequencies("positional", "natural", side)
    net.encoding.B.copy_(b)
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    yx = torch.stack([(side - 1 - rows).flatten().float(), cols.flatten().float()], 1)  # pixel centres, y up
    got = net.encoding(net.scaling(yx))
    v = torch.stack([(side - 1 - rows).flatten() / side, cols.flatten() / side], 1).double() - 0.5  # notebook's v, shifted
    angles = 2 * math.pi * v @ b.double()
    np.testing.assert_allclose(got.numpy(), torch.cat([angles.sin(), angles.cos()], 1).numpy(), atol=2e-5)
    assert got.shape == (side * side, 512)


def test_a_full_batch_fit_learns_and_scores_the_held_out_lattice():
    picture = (np.indices((16, 16)).sum(0)[..., None] % 7 * 36).repeat(3, 2).astype(np.uint8)
    cfg = pf.mapping_config("gaussian", "natural", 16, "cpu")
    before, _, _ = pf.fit_full_batch(cfg, picture, 0, pf.paper_frequencies("gaussian", "natural", 16))
    after, params, seconds = pf.fit_full_batch(cfg, picture, 30, pf.paper_frequencies("gaussian", "natural", 16))
    assert after["fit_psnr"] > before["fit_psnr"] + 3
    assert {"test_psnr", "fit_psnr", "dense_psnr"} <= after.keys()
    assert params == 512 * 256 + 256 + 2 * (256 * 256 + 256) + 256 * 3 + 3 and seconds >= 0


def records(natural: dict[str, float], text: dict[str, float], side: int = 128, steps: int = 300) -> list[dict]:
    out = []
    for kind, psnrs in (("natural", natural), ("text", text)):
        for method in (*pf.MAPPINGS, *pf.PRESETS):
            value = psnrs.get(method, 20.0)
            out.append({"set": kind, "picture": f"{kind}0", "method": method, "side": side, "steps": steps, "test_psnr": value,
                        "train_psnr": value + 5, "all_psnr": value + 2, "params": 1000, "train_s": 1.0})
    return out


def test_the_section_says_whether_the_papers_ordering_holds_and_which_pair_breaks_it():
    rows = records({"none": 15, "basic": 19, "positional": 20, "gaussian": 21.5},
                   {"none": 22, "basic": 23.4, "positional": 22.0, "gaussian": 22.9})
    text = pf.section(rows, "run-1", "AMD EPYC", {"OMP_NUM_THREADS": "1"})
    assert text.startswith(pf.TITLE + "\n")
    assert "natural: none < basic < positional < Gaussian holds (15.00 / 19.00 / 20.00 / 21.50 dB)." in text
    assert "text: none < basic < positional < Gaussian does not hold" in text and "basic 23.40 >= positional 22.00, by 1.400 dB" in text
    assert "| gaussian | 21.50 | 25.57 | 22.90 | 30.47 | 26.50 / 23.50 |" in text
    assert "--quick" in text and "not measured here" in text
    full = pf.section(records({}, {}, side=512, steps=2000), "run-2", "H200", {})
    assert "--quick" not in full and "not measured" not in full


def test_a_section_replaces_its_namesake_and_keeps_the_others(tmp_path):
    from bench.common import merge_sections, write_section

    path = tmp_path / "RESULTS.md"
    path.write_text("# results\n\nintro\n\n## A\n\nold a\n\n## B\n\nb text\n")
    write_section(path, "## A\n\nnew a\n")
    write_section(path, "## C\n\nc text\n")
    assert path.read_text() == "# results\n\nintro\n\n## A\n\nnew a\n\n## B\n\nb text\n\n## C\n\nc text\n"
    # A rewrite of the suite's own sections keeps what other benchmarks wrote.
    merged = merge_sections("# results\n\n## A\n\nsuite a\n", path.read_text())
    assert merged == "# results\n\n## A\n\nsuite a\n\n## B\n\nb text\n\n## C\n\nc text\n"


def test_the_suites_results_page_carries_the_paper_section_from_its_records(tmp_path):
    """`python -m bench` renders the section from the records its paper_fourier section emitted."""
    from bench import report
    from bench.common import Recorder

    rec = Recorder(torch.device("cpu"), quick=True, path=tmp_path / "results.jsonl")
    for row in records({"none": 15, "basic": 19, "positional": 20, "gaussian": 21.5}, {}):
        rec.emit("paper_fourier", **row)
    page = report.markdown(rec, {"quick": True})
    assert pf.TITLE in page and "natural: none < basic < positional < Gaussian holds" in page
    assert page.index(pf.TITLE) < page.index("## Targets")
