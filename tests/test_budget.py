"""Tests for overfit.budget: a run's memory from its config, the budget, the refusal and allocation failures."""

from __future__ import annotations

import pickle

import pytest
import torch
from test_export_families import FAMILIES, H, W, small_config

from overfit import budget, memory, modes
from overfit.budget import Estimate, check, check_together, estimate, format_bytes, parse_size
from overfit.config import RunConfig
from overfit.errors import ConfigError, MemoryBudgetError
from overfit.models import model_for
from overfit.training import Trainer

HUGE = {"model.hidden": "65536,65536"}


# -- the estimate ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_parameters_and_weights_match_the_model_that_is_built(name):
    cfg = small_config(FAMILIES[name])
    model = model_for(cfg, H, W)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    est = estimate(cfg, (H, W))
    assert est.parameters == params
    # Weights, gradients and Adam's two moments per parameter, and the buffers once, in float32.
    assert est.part("model").bytes == 4 * (4 * params + buffers)


@pytest.mark.parametrize("name", FAMILIES)
def test_training_batch_covers_what_autograd_saves_for_the_backward_pass(name):
    """Independent reference: the bytes of every tensor autograd keeps from a real forward pass."""
    cfg = small_config({**FAMILIES[name], "optim.batch_size": "512"})
    model = model_for(cfg, H, W)
    saved = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    yx = torch.rand(512, 2) * torch.tensor([H - 1.0, W - 1.0])
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(model(yx), torch.zeros(512, dtype=torch.long))
    loss.backward()
    # The estimate adds the backward pass's gradients (and the plotted sample) to what is saved.
    est = estimate(cfg, (H, W)).part("training batch").bytes - 512 * budget.SAMPLE_PLOT_BYTES
    assert sum(saved) <= est <= 3 * sum(saved)


def test_picture_size_drives_the_dense_evaluation_of_a_large_colour_picture():
    est = estimate(RunConfig().with_overrides({"data.mode": "rgb", "data.width": "20000", "data.height": "2500"}))
    dense = est.part("dense evaluation")
    assert dense.fields == ("data.width", "data.height")
    # Prediction, squared error and SSIM's float64 arrays over 50 million pixels x 3 channels: gigabytes.
    assert dense.bytes > 50_000_000 * 3 * 8 * modes.SSIM_ARRAYS
    picture = estimate(small_config({"data.image": "/pictures/cat.png"}), (1000, 2000))
    assert picture.part("target").fields == ("data.image",) and "use a smaller picture" in picture.part("target").advice


def test_flops_per_step_are_six_per_multiply_add_of_the_batch():
    cfg = small_config({"model.hidden": "32,16", "optim.batch_size": "100"})
    macs = 2 * 32 + 32 * 16 + 16 * 2
    assert estimate(cfg, (H, W)).flops_per_step == 6 * 100 * macs


def test_runs_trained_together_add_up_what_they_hold_but_not_what_each_makes_in_turn():
    one = estimate(small_config({}), (H, W))
    eight = Estimate.together([one] * 8)
    assert eight.runs == 8 and eight.parameters == 8 * one.parameters
    assert eight.part("model").bytes == 8 * one.part("model").bytes
    assert eight.part("training batch").bytes == 8 * one.part("training batch").bytes
    assert eight.part("frames").bytes == one.part("frames").bytes  # one run's video at a time
    assert eight.part("checkpoint").bytes == one.part("checkpoint").bytes


# -- the refusal --------------------------------------------------------------------------------


def test_a_huge_model_is_refused_naming_the_size_the_budget_and_the_field():
    with pytest.raises(MemoryBudgetError) as info:
        check(RunConfig().with_overrides(HUGE), 12 * 10**9)
    e = info.value
    assert e.field == "model.hidden" and e.fields == ("model.hidden",) and e.budget == 12 * 10**9 and e.needed > 68 * 10**9
    # (2 x 65536 + 65536) + (65536 x 65536 + 65536) + (65536 x 2 + 2) parameters of 4 bytes: 17.2 GB, x4 with Adam.
    assert "model.hidden: 17.2 GB of weights x4 with gradients and Adam state" in str(e)
    assert "but the budget is 12.0 GB (max_memory); lower model.hidden or raise max_memory" in str(e)
    assert "\n" not in str(e)
    # Flags, for the command line, come from the caller: no message text is parsed.
    assert e.keys == ("model.hidden", "max_memory")
    flags = {key: "--" + key.replace("_", "-") for key in e.keys}
    assert e.words(flags).endswith("but the budget is 12.0 GB (--max-memory); lower --model.hidden or raise --max-memory")
    again = pickle.loads(pickle.dumps(e))  # crosses process boundaries (sweeps)
    assert str(again) == str(e) and again.fields == e.fields


def test_the_default_budget_is_half_the_available_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 3 * 10**9)
    assert budget.default_budget() == 1_500_000_000
    cfg = small_config({"optim.batch_size": str(1 << 20), "model.hidden": "1024"})
    with pytest.raises(MemoryBudgetError, match=r"but the budget is 1\.5 GB \(half the available memory\); lower optim\.batch_size"):
        check(cfg, None, (H, W))
    assert check(small_config({}), None, (H, W)).total < 1_500_000_000


def test_runs_trained_together_are_checked_together():
    cfg = small_config({"model.hidden": "1024,1024"})
    one = check(cfg, 10**9, (H, W))
    with pytest.raises(MemoryBudgetError, match="64 runs trained together need"):
        check_together([cfg] * 64, 10 * one.total, [(H, W)] * 64)


def test_loading_checks_the_weights_not_the_training():
    cfg = RunConfig().with_overrides({"model.hidden": "8192,8192"})
    with pytest.raises(MemoryBudgetError):
        check(cfg, 2 * 10**9)
    est = check(cfg, 2 * 10**9, training=False)  # 0.27 GB of weights, twice while loading
    assert est.part("model").bytes < 10**9
    with pytest.raises(MemoryBudgetError, match="^loading the model needs"):
        check(RunConfig().with_overrides(HUGE), 2 * 10**9, training=False)


@pytest.mark.parametrize(("text", "size"), [
    ("32GB", 32 * 10**9), ("32 gb", 32 * 10**9), ("500MB", 500 * 10**6), ("1.5GiB", 3 * 2**29), ("4g", 4 * 10**9),
    ("123", 123), ("2TB", 2 * 10**12), ("64KiB", 65536), (" 7 B ", 7), (1000, 1000),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "12XB", "-5GB", "0", "0.1", "1e9", "32 GB GB", "nan", "inf", "1,000"])
def test_parse_size_refuses_anything_else_naming_the_field(text):
    with pytest.raises(ConfigError) as info:
        parse_size(text)
    assert info.value.field == "max_memory" and "\n" not in str(info.value)


def test_sizes_read_as_three_digits_at_most():
    assert [format_bytes(n) for n in (900, 1000, 55_049_000, 68_719_476_736, 1.2e15)] == [
        "900 B", "1.0 kB", "55.0 MB", "68.7 GB", "1.2 PB"]


# -- allocation failures ----------------------------------------------------------------------


def test_estimating_allocates_nothing(monkeypatch):
    """The estimate comes from the config alone: building a model or a trainer would be a failure here."""
    def refuse(*args, **kwargs):
        raise AssertionError("estimate must not build anything")

    monkeypatch.setattr(Trainer, "__init__", refuse)
    monkeypatch.setattr("overfit.models.CoordinateMLP.__init__", refuse)
    est = estimate(RunConfig().with_overrides({"encoding.kind": "grid", "encoding.log2_hashmap_size": "26", "encoding.levels": "32",
                                               "encoding.features_per_level": "16"}))
    assert est.parameters > 10**7


# -- held-out pixels ------------------------------------------------------------------------------


def test_held_out_pixels_are_counted_from_the_masks_and_the_random_splits_indices():
    """Independent reference: the bytes of the tensors `sampling.holdout_split` and its sampler keep."""
    from overfit.sampling import ValueSampler, holdout_split

    assert all(p.name != "held-out pixels" for p in estimate(small_config({}), (H, W)).parts)
    for holdout in ("checkerboard", "0.25"):
        cfg = small_config({"data.mode": "rgb", "data.holdout": holdout})
        split = holdout_split(holdout, H, W, 0)
        sampler = ValueSampler(torch.zeros(H, W, 3), split)
        kept = split.train.nbytes + split.test.nbytes
        if sampler._pixels is not None:  # a random split's training indices
            kept += sampler._pixels.flat.nbytes
        part = estimate(cfg, (H, W)).part("held-out pixels")
        assert kept <= part.bytes <= 4 * kept + H * W * modes.MODES["rgb"].memory.held_out
        assert part.fields[-1] == "data.holdout"


def test_runs_together_count_the_held_out_pixels_of_those_that_hold_some_out():
    plain = estimate(small_config({}), (H, W))
    held = estimate(small_config({"data.holdout": "0.5"}), (H, W))
    both = Estimate.together([plain, held, held])
    assert both.part("held-out pixels").bytes == 2 * held.part("held-out pixels").bytes
    assert both.part("model").bytes == 3 * plain.part("model").bytes


@pytest.mark.parametrize("width", [10, 300, 1000, 1777, 5000])
def test_the_gif_estimate_counts_the_caption_band_as_captions_draws_it(width):
    import math

    from overfit.captions import band_height

    height = 300
    band = band_height(width)  # the reference: the band `annotate` adds
    scale = min(1.0, budget.GIF_SIDE / max(width, height + band))
    assert budget._gif_bytes(height, width, 7) == 7 * math.ceil((height + band) * scale) * math.ceil(width * scale) * 4
