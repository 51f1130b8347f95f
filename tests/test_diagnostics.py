"""Inside the network: dead and saturated units of hand-built layers, gradient norms against autograd, update ratios,
live band errors against the ones a report computes from the frames, and per-unit pictures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_config

from overfit import diagnostics
from overfit.diagnostics import LayerStatistics, default_probes
from overfit.config import RunConfig
from overfit.models import model_for
from overfit.runs import RunFolder
from overfit.session import Session
from overfit.spectrum import BandAnalyzer
from overfit.stacked import StackedTrainer
from overfit.training import Trainer

def _cfg(**overrides: str) -> RunConfig:
    """The shared tiny run on "HI", with a 4-3 network and a log record at every step."""
    return tiny_config({"data.text": "HI", "model.hidden": "4,3", "schedule.eval_batch_size": 128, "schedule.log_every": 1}, **overrides)


def _set_first_layer(model: torch.nn.Module, weight: list[list[float]], bias: list[float]) -> None:
    first = diagnostics.linears(model)[0]
    with torch.no_grad():
        first.weight.copy_(torch.tensor(weight))
        first.bias.copy_(torch.tensor(bias))


def _coords(n: int = 500) -> torch.Tensor:
    """Pixel coordinates of a 16 x 32 picture, spread over all of it."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 2, generator=gen) * torch.tensor([15.0, 31.0])


def test_relu_units_that_are_zero_on_every_sample_are_dead_and_only_those():
    model = model_for(_cfg(**{"model.input_range": "1"}), 16, 32)
    # Inputs are in [-1, 1]: units 0 and 2 stay below zero everywhere, unit 1 is positive, unit 3 changes sign.
    _set_first_layer(model, [[0.1, 0.1], [0.1, 0.1], [0.0, 0.0], [1.0, 0.0]], [-5.0, 5.0, -1.0, 0.0])
    record = diagnostics.layer_record(model, _coords())
    assert record[0]["layer"] == "1" and record[0]["units"] == 4
    assert record[0]["dead"] == 0.5 and record[0]["saturated"] is None
    pre, _ = diagnostics.forward_layers(model, _coords())[0]
    assert record[0]["pre_mean"] == pytest.approx(float(pre.mean())) and record[0]["pre_std"] == pytest.approx(float(pre.std()))
    assert [r["layer"] for r in record] == ["1", "2", "output"]


def test_tanh_units_pinned_at_either_end_on_every_sample_are_saturated():
    model = model_for(_cfg(**{"model.input_range": "1", "model.activation": "tanh"}), 16, 32)
    # Unit 0 at +1, unit 1 at -1 everywhere; unit 2 crosses zero; unit 3 saturates on part of the picture only.
    _set_first_layer(model, [[0.1, 0.0], [0.0, 0.1], [1.0, 0.0], [0.0, 20.0]], [9.0, -9.0, 0.0, 0.0])
    record = diagnostics.layer_record(model, _coords())
    assert record[0]["saturated"] == 0.5 and record[0]["dead"] is None


def test_raw_coordinates_kill_a_quarter_of_the_first_relu_layer_and_scaled_ones_none():
    # With (y, x) >= 0, a unit whose two weights are negative and bias is 0 is zero everywhere.
    raw = Trainer(_cfg(**{"model.input_range": "none", "model.hidden": "64,64", "model.init": "original"}), probes=default_probes())
    scaled = Trainer(_cfg(**{"model.input_range": "1", "model.hidden": "64,64", "model.init": "original"}), probes=default_probes())
    w = diagnostics.linears(raw.model)[0].weight.detach()
    both_negative = float(((w[:, 0] < 0) & (w[:, 1] < 0)).float().mean())
    assert raw.evaluate()[0]["layers"][0]["dead"] == pytest.approx(both_negative, abs=1 / 64)
    assert scaled.evaluate()[0]["layers"][0]["dead"] == 0.0


def test_gradient_norms_are_those_of_the_last_step_computed_by_autograd():
    trainer = Trainer(_cfg(**{"schedule.steps": "3", "schedule.eval_every": "3"}), probes=[LayerStatistics()])
    engine = StackedTrainer([trainer])  # the training engine; a run alone is a stack of one
    engine.step()
    engine.step()
    # The third step by hand: the same batch stream, gradients from torch.autograd.grad.
    yx, labels = trainer.next_batch()  # a function of the step: the batch the engine's third step draws
    weights = [m.weight for m in diagnostics.linears(trainer.model)]
    expected = [float(g.norm()) for g in torch.autograd.grad(trainer.loss_fn(trainer.model(yx), labels), weights)]
    before = [w.detach().clone() for w in weights]
    engine.step()
    layers = trainer.evaluate()[0]["layers"]
    assert [r["grad_norm"] for r in layers] == pytest.approx(expected, rel=1e-5)
    ratios = [float((w.detach() - b).norm() / b.norm()) for w, b in zip(weights, before)]
    assert [r["update_ratio"] for r in layers] == pytest.approx(ratios, rel=1e-5)
    assert [r["weight_norm"] for r in layers] == pytest.approx([float(w.detach().norm()) for w in weights])


def test_the_first_evaluation_has_no_gradient_or_update_yet():
    layers = Trainer(_cfg(), probes=default_probes()).evaluate()[0]["layers"]
    assert all(r["grad_norm"] is None and r["update_ratio"] is None and r["weight_norm"] > 0 for r in layers)


def test_live_band_errors_equal_those_computed_from_the_frames_on_disk(tmp_path):
    cfg = _cfg(**{"schedule.steps": "30", "schedule.eval_every": "10"})
    with Session.start(cfg, tmp_path, "bands") as session:
        session.run()
    folder = RunFolder(tmp_path / "bands")
    history = folder.metrics()
    analyzer = BandAnalyzer(session.trainer.target.labels.astype(np.float64))  # as `overfit reproduce` reads a run
    frames = folder.read_frames([r["step"] for r in history])
    assert len(frames) == len(history) == 4
    for record, (step, frame) in zip(history, frames):
        assert record["step"] == step
        expected = [None if np.isnan(e) else float(e) for e in analyzer.errors(frame.astype(np.float64) / 255.0)]
        assert record["bands"] == pytest.approx(expected)


def test_gray_runs_record_bands_and_layers_too():
    trainer = Trainer(_cfg(**{"data.mode": "gray", "model.activation": "sin"}), probes=default_probes())
    record = trainer.evaluate()[0]
    assert len(record["bands"]) == 8 and all(r["dead"] is None and r["saturated"] is None for r in record["layers"][:2])


def test_the_layer_statistics_come_from_the_evaluation_batch_itself_not_a_second_pass():
    trainer = Trainer(_cfg(**{"schedule.steps": "2", "schedule.eval_every": "2"}), probes=[LayerStatistics()])
    calls = []
    handle = diagnostics.linears(trainer.model)[0].register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    record = trainer.evaluate()[0]
    handle.remove()
    # The model ran on the evaluation batch (128 points) and the dense grid (16 x 32), nothing else.
    assert sorted(calls) == [128, 16 * 32] and "bands" not in record
    assert record["layers"][0]["units"] == 4 and record["layers"][0]["grad_norm"] is None


def test_default_probes_are_fresh_layer_statistics_then_band_errors():
    assert [type(p).__name__ for p in default_probes()] == ["LayerStatistics", "BandErrors"]
    first, second = default_probes(), default_probes()
    assert all(a is not b for a, b in zip(first, second))  # fresh ones for each trainer: probes keep state


def test_unit_maps_show_each_unit_over_the_picture_upright():
    model = model_for(_cfg(**{"model.input_range": "1"}), 16, 32)
    # Unit 0 is the height above the bottom row (y grows upwards), unit 1 the distance from the left edge.
    _set_first_layer(model, [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]], [1.0, 1.0, 0.0, 0.0])
    maps = diagnostics.unit_maps(model, 16, 32, long_side=16)
    assert [m.shape for m in maps] == [(4, 8, 16), (3, 8, 16)]
    assert maps[0][0, 0, 0] > maps[0][0, -1, 0]  # top row brighter than the bottom row
    assert maps[0][1, 0, -1] > maps[0][1, 0, 0]  # right brighter than left
    assert np.all(np.diff(maps[0][0][:, 0]) <= 0) and np.all(np.diff(maps[0][1][0]) >= 0)
    assert model.training  # the pass leaves the mode as it found it
