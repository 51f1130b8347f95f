"""Tests for held-out pixels (`data.holdout`): the split, samplers that never touch a test pixel, fit and test metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn
from helpers import tiny_config

import overfit.metrics
from overfit.cli import main
from overfit.config import DataConfig, RunConfig
from overfit.coords import bilinear_at, label_at, pixel_grid, pixel_index
from overfit.errors import ConfigError
from overfit.losses import cross_entropy
from overfit.metrics import dense_metrics, dense_regression_metrics, psnr
from overfit.modes import MODES
from overfit.runs import RunFolder
from overfit.sampling import Sampler, ValueSampler, counter_bits, holdout_split, stream_keys, unit
from overfit.training import Trainer, derived_seeds

H, W = 9, 12  # odd height and even width: both parities of the lattice's edges


# -- the split ---------------------------------------------------------------------------------

def test_checkerboard_trains_on_even_rows_and_columns_and_tests_on_odd_ones():
    split = holdout_split("checkerboard", H, W, seed=0)
    train, test = split.train.numpy(), split.test.numpy()
    rows, cols = np.indices((H, W))
    np.testing.assert_array_equal(train, (rows % 2 == 0) & (cols % 2 == 0))
    np.testing.assert_array_equal(test, (rows % 2 == 1) & (cols % 2 == 1))
    assert train.sum() == 5 * 6 and test.sum() == 4 * 6  # picture[::2, ::2] and picture[1::2, 1::2]
    assert not (train & test).any()
    # The paper's 512 x 512: a 256 x 256 lattice each.
    big = holdout_split("checkerboard", 512, 512, seed=0)
    assert int(big.train.sum()) == int(big.test.sum()) == 256 * 256


def test_a_random_fraction_is_seeded_and_the_right_size():
    a = holdout_split("0.25", H, W, seed=3)
    assert int(a.test.sum()) == round(0.25 * H * W) == 27
    assert torch.equal(a.train, ~a.test)
    assert torch.equal(a.test, holdout_split("0.25", H, W, seed=3).test)
    assert not torch.equal(a.test, holdout_split("0.25", H, W, seed=4).test)
    # At least one pixel on each side, however extreme the fraction.
    assert int(holdout_split("1e-9", H, W, seed=0).test.sum()) == 1
    assert int(holdout_split("0.999999", H, W, seed=0).train.sum()) == 1


def test_none_is_no_split():
    assert holdout_split("none", H, W, seed=0) is None


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "nan", "inf", "half", "Checkerboard", ""])
def test_bad_holdout_values_are_refused_naming_the_field(value):
    with pytest.raises(ConfigError, match="'none', 'checkerboard' or a fraction") as info:
        RunConfig().with_overrides({"data.holdout": value})
    assert info.value.field == "data.holdout"


def test_a_non_string_holdout_is_refused():
    with pytest.raises(ConfigError, match="expected a string") as info:
        DataConfig(holdout=0.25)  # type: ignore[arg-type]
    assert info.value.field == "data.holdout"
    with pytest.raises(ConfigError, match="expected str, got 0.25"):
        RunConfig.from_dict({"data": {"holdout": 0.25}})


def test_checkerboard_needs_two_lattice_points_a_side():
    with pytest.raises(ConfigError, match="at least 3 x 3") as info:
        holdout_split("checkerboard", 2, 10, seed=0)
    assert info.value.field == "data.holdout"


@pytest.mark.parametrize("value", ["none", "checkerboard", "0.25"])
def test_holdout_round_trips_through_json(value):
    cfg = RunConfig().with_overrides({"data.holdout": value})
    assert cfg.data.holdout == value
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_the_holdout_seed_is_a_new_stream_that_leaves_the_others_alone():
    seeds = derived_seeds(7)
    children = np.random.SeedSequence(7).spawn(4)  # the four streams before held-out pixels existed
    old = {n: int(c.generate_state(1, dtype=np.uint64)[0] >> 1) for n, c in zip(("init", "train", "eval", "preview"), children)}
    assert {k: seeds[k] for k in old} == old
    assert seeds["holdout"] not in old.values()


# -- samplers ----------------------------------------------------------------------------------

def _labels(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 2, (H, W), generator=torch.Generator().manual_seed(seed), dtype=torch.long).to(torch.uint8)


def _values(channels: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(H, W, channels, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("holdout", ["checkerboard", "0.3"])
def test_binary_samples_lie_in_training_pixels_only(holdout):
    split = holdout_split(holdout, H, W, seed=1)
    labels = _labels()
    yx, y = Sampler(labels, split).sample(20_000, 2, 0)
    rows, cols = pixel_index(yx, H)  # the nearest pixel: what the sample teaches
    assert bool(split.train[rows, cols].all())
    assert not bool(split.test[rows, cols].any())
    assert torch.equal(y, labels[rows, cols].long())
    # Inside the picture, as without held-out pixels, and spread over every training pixel.
    assert float(yx.min()) >= 0 and float(yx[:, 0].max()) <= H - 1 and float(yx[:, 1].max()) <= W - 1
    hits = torch.zeros(H, W, dtype=torch.long)
    hits.index_put_((rows, cols), torch.ones_like(rows), accumulate=True)
    assert bool((hits[split.train] > 0).all())
    # Not just the centres: the coordinates fill the pixels' cells.
    assert float((yx - yx.round()).abs().max()) > 0.4


def test_gray_checkerboard_values_come_from_the_even_lattice_only():
    split = holdout_split("checkerboard", H, W, seed=0)
    values = _values(2)
    poisoned = values.clone()
    poisoned[~split.train] = float("nan")  # any weight on another pixel, even zero, would give nan
    yx, v = ValueSampler(poisoned, split).sample(20_000, 3, 0)
    assert bool(torch.isfinite(v).all())
    # The lattice's own bilinear interpolation, computed naively: lattice point (i, j) is pixel (2 i, 2 j).
    lattice = values[::2, ::2].numpy()
    for (y, x), got in zip(yx[:200].numpy(), v[:200].numpy()):
        r, c = (H - 1 - y) / 2, x / 2
        r0, c0 = min(int(r), lattice.shape[0] - 2), min(int(c), lattice.shape[1] - 2)
        fr, fc = r - r0, c - c0
        want = ((1 - fr) * (1 - fc) * lattice[r0, c0] + (1 - fr) * fc * lattice[r0, c0 + 1]
                + fr * (1 - fc) * lattice[r0 + 1, c0] + fr * fc * lattice[r0 + 1, c0 + 1])
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Coordinates span the lattice: rows 0 .. 8 and columns 0 .. 10 of the picture as stored.
    assert float(yx[:, 0].min()) < 0.05 and float(yx[:, 0].max()) > H - 1 - 0.05
    assert float(yx[:, 1].min()) < 0.05 and float(yx[:, 1].max()) > 10 - 0.05 and float(yx[:, 1].max()) <= 10


def test_gray_random_fraction_draws_training_pixel_centres_exactly():
    split = holdout_split("0.4", H, W, seed=5)
    values = _values(3)
    poisoned = values.clone()
    poisoned[split.test] = float("nan")
    yx, v = ValueSampler(poisoned, split).sample(20_000, 4, 0)
    assert torch.equal(yx, yx.round())
    rows, cols = pixel_index(yx, H)
    assert bool(split.train[rows, cols].all())
    assert torch.equal(v, values[rows, cols])


def test_without_holdout_the_samplers_draw_uniform_coordinates_and_their_targets():
    # Uniform over [0, H - 1] x [0, W - 1] from the step's bits, the nearest pixel's label, or the bilinear value.
    extent = torch.tensor([H - 1, W - 1], dtype=torch.float32)
    labels, values = _labels(), _values(3)
    keys = [stream_keys(9)]
    for step in range(3):
        want = unit(counter_bits(keys, [step], 100, 2)[0]) * extent
        yx, y = Sampler(labels).sample(100, 9, step)
        assert torch.equal(yx, want) and torch.equal(y, label_at(labels, want).long())
        yx, v = ValueSampler(values, None).sample(100, 9, step)
        assert torch.equal(yx, want) and torch.equal(v, bilinear_at(values, want))


# -- metrics -----------------------------------------------------------------------------------

class Wave(nn.Module):
    """A fixed function of the coordinates with `out` channels, different at every pixel."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.out = out

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        k = torch.arange(1, self.out + 1, dtype=torch.float32)
        return 0.6 * torch.sin(yx[:, :1] * k + 0.7 * yx[:, 1:] * k) + 0.5


@pytest.mark.parametrize("holdout", ["checkerboard", "0.3"])
def test_binary_fit_and_test_metrics_match_a_hand_computation(monkeypatch, holdout):
    monkeypatch.setattr(overfit.metrics, "DENSE_CHUNK", 7)  # masks cut across chunks
    split = holdout_split(holdout, H, W, seed=2)
    labels, model = _labels(1), Wave(2)
    record, _ = dense_metrics(model, labels, cross_entropy, split=split)
    logits = model(pixel_grid(H, W)).reshape(H, W, 2)
    for prefix, mask in (("fit_", split.train), ("test_", split.test)):
        lg, lb = logits[mask], labels[mask].long()
        pred = lg.argmax(dim=1)
        inter = ((pred == 0) & (lb == 0)).sum().item()
        union = ((pred == 0) | (lb == 0)).sum().item()
        assert record[prefix + "acc"] == pytest.approx((pred == lb).double().mean().item(), abs=1e-12)
        assert record[prefix + "iou"] == pytest.approx(inter / union if union else 1.0, abs=1e-12)
        assert record[prefix + "loss"] == pytest.approx(F.cross_entropy(lg, lb).item(), rel=1e-5)
    assert "fit_pred_bg" not in record and "dense_pred_bg" in record
    # dense_* still means every pixel.
    assert record["dense_acc"] == pytest.approx((logits.argmax(dim=2) == labels).double().mean().item(), abs=1e-12)
    assert record == pytest.approx(dense_metrics(model, labels, cross_entropy, split=split)[0])


@pytest.mark.parametrize("holdout", ["checkerboard", "0.3"])
def test_regression_fit_and_test_metrics_match_a_hand_computation(monkeypatch, holdout):
    monkeypatch.setattr(overfit.metrics, "DENSE_CHUNK", 7)
    split = holdout_split(holdout, H, W, seed=2)
    values, model = _values(3), Wave(3)  # Wave reaches above 1 and below 0: raw and shown values differ
    record, _ = dense_regression_metrics(model, values, split=split)
    out = model(pixel_grid(H, W)).reshape(H, W, 3).double()
    target = values.double()
    for prefix, mask in (("fit_", split.train), ("test_", split.test)):
        raw = ((out[mask] - target[mask]) ** 2).mean().item()
        shown = ((out[mask].clamp(0, 1) - target[mask]) ** 2).mean().item()
        assert record[prefix + "loss"] == pytest.approx(raw, rel=1e-5)
        assert record[prefix + "psnr"] == pytest.approx(-10 * math.log10(shown), abs=1e-4)
        assert prefix + "ssim" not in record
    assert record["fit_psnr"] != pytest.approx(record["test_psnr"])


def test_without_holdout_records_hold_no_split_keys():
    labels, values = _labels(), _values(1)
    binary, _ = dense_metrics(Wave(2), labels, cross_entropy)
    regression, _ = dense_regression_metrics(Wave(1), values)
    assert sorted(binary) == ["dense_acc", "dense_iou", "dense_loss", "dense_pred_bg"]
    assert sorted(regression) == ["dense_loss", "dense_psnr", "dense_ssim"]


# -- the trainer, the modes and the command line -------------------------------------------------

def _cfg(holdout: str, mode: str = "binary") -> RunConfig:
    return tiny_config({"data.mode": mode, "data.holdout": holdout, "model.hidden": "16", "schedule.steps": 4, "schedule.eval_every": 2})


def test_a_run_without_holdout_trains_on_the_batches_it_always_drew():
    trainer = Trainer(_cfg("none"))
    assert trainer.split is None
    reference = Sampler(trainer.target_tensor)
    for step in range(3):
        trainer.step = step
        yx, y = trainer.next_batch()
        want_yx, want_y = reference.sample(64, trainer.seeds["train"], step)
        assert torch.equal(yx, want_yx) and torch.equal(y, want_y)
    record, _ = trainer.evaluate()
    assert not any(k.startswith(("fit_", "test_")) for k in record)


@pytest.mark.parametrize("mode", ["binary", "rgb"])
def test_a_run_with_holdout_trains_on_training_pixels_and_reports_both_splits(mode):
    trainer = Trainer(_cfg("checkerboard", mode))
    for _ in range(5):
        yx, _ = trainer.next_batch()
        if mode == "binary":
            rows, cols = pixel_index(yx, trainer.target.height)
            assert bool(trainer.split.train[rows, cols].all())
    record, _ = trainer.evaluate()
    m = MODES[mode]
    assert m.fit_headline in record and m.test_headline in record
    assert "held-out pixels" in m.summary(record) and "held out" in m.caption("p", record)
    assert record[m.test_headline] == pytest.approx(
        m.dense_metrics(trainer.model, trainer.target_tensor, trainer.loss_fn, trainer.split)[0][m.test_headline])


def test_train_holdout_option_writes_test_metrics(tmp_path):
    args = ["train", "--text", "A", "--size", "32x16", "--hidden", "16", "--batch-size", "64", "--steps", "4",
            "--eval-every", "2", "--schedule.eval_batch_size", "64", "--runs-dir", str(tmp_path), "-q"]
    result = CliRunner().invoke(main, [*args, "--holdout", "0.25", "--name", "r"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "held-out pixels accuracy" in result.output
    last = RunFolder(tmp_path / "r").metrics()[-1]
    assert {"fit_acc", "test_acc", "test_iou", "test_loss", "dense_acc", "train_loss"} <= set(last)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"]["holdout"] == "0.25"

    bad = CliRunner().invoke(main, [*args, "--holdout", "most", "--name", "bad"], catch_exceptions=False)
    assert bad.exit_code != 0
    assert [line for line in bad.output.splitlines() if line.startswith("Error:")] == [
        "Error: --holdout: must be 'none', 'checkerboard' or a fraction of pixels in (0, 1) such as 0.25, got 'most'"]
    assert not (tmp_path / "bad").exists()


def test_stacked_runs_with_holdout_equal_separate_runs():
    from overfit.stacked import StackedTrainer

    configs = [_cfg("0.25").with_overrides({"seed": str(s), "schedule.steps": "6"}) for s in (0, 1)]
    alone = [Trainer(cfg) for cfg in configs]
    for t in alone:
        t.run()
    together = [Trainer(cfg) for cfg in configs]
    StackedTrainer(together).run()
    assert not torch.equal(alone[0].split.test, alone[1].split.test)  # each seed holds out its own pixels
    for a, b in zip(alone, together):
        assert torch.equal(a.split.test, b.split.test)
        for key in ("fit_acc", "test_acc", "test_loss"):
            assert b.history[-1][key] == pytest.approx(a.history[-1][key], abs=1e-3)


@pytest.mark.parametrize("holdout, mode", [("checkerboard", "binary"), ("0.3", "gray"), ("0.3", "rgb"), ("none", "binary")])
def test_a_runs_preview_batch_from_its_config_is_the_trainers(holdout, mode):
    from overfit.loading import run_preview_batch

    trainer = Trainer(_cfg(holdout, mode))
    want_yx, want_values = trainer.preview_batch()
    yx, values = run_preview_batch(trainer.cfg, trainer.target)  # what the lab's batch layer draws
    assert yx.shape == (trainer.cfg.optim.batch_size, 2)
    assert np.array_equal(yx, want_yx) and np.array_equal(values, want_values)
    if trainer.split is not None:  # from the training pixels only
        rows, cols = pixel_index(torch.from_numpy(yx), trainer.target.height)
        assert bool(trainer.split.train[rows, cols].all())
