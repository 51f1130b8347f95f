"""Tests for overfit.sampling: batch shapes, range, labels against the original rule, seeding, coverage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from overfit.sampling import Sampler

H, W = 5, 7


def _picture(seed: int = 0) -> torch.Tensor:
    """A random (H, W) picture of labels in {0, 1}, int64 as the trainer builds it."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (H, W), generator=gen, dtype=torch.long)


def _sample(n: int, seed: int, picture: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    picture = _picture() if picture is None else picture
    return Sampler(picture).sample(n, seed, 0)


def test_shapes_and_dtypes():
    yx, labels = _sample(100, seed=0)
    assert yx.shape == (100, 2)
    assert yx.dtype == torch.float32
    assert labels.shape == (100,)
    assert labels.dtype == torch.long


def test_sampler_records_the_picture_size():
    sampler = Sampler(_picture())
    assert (sampler.height, sampler.width) == (H, W)


def test_coordinates_lie_within_the_picture():
    yx, _ = _sample(5000, seed=1)
    assert yx[:, 0].min() >= 0 and yx[:, 0].max() <= H - 1
    assert yx[:, 1].min() >= 0 and yx[:, 1].max() <= W - 1


def test_labels_follow_the_original_rule():
    picture = _picture(seed=2)
    yx, labels = _sample(2000, seed=3, picture=picture)
    # Naive reference: label = picture[H - 1 - round(y), round(x)], numpy rounding (half to even).
    pic = picture.numpy()
    expected = [pic[H - 1 - int(np.round(y)), int(np.round(x))] for y, x in yx.numpy()]
    assert labels.tolist() == expected


def test_labels_follow_the_rule_on_a_picture_of_distinct_values():
    # Distinct values catch a flipped axis or an off-by-one row that a binary picture could hide.
    picture = torch.arange(H * W).reshape(H, W)
    yx, labels = _sample(500, seed=4, picture=picture)
    rows = H - 1 - np.round(yx[:, 0].numpy()).astype(int)
    cols = np.round(yx[:, 1].numpy()).astype(int)
    assert np.array_equal(labels.numpy(), picture.numpy()[rows, cols])


def test_same_seed_same_batch():
    a = _sample(256, seed=11)
    b = _sample(256, seed=11)
    assert torch.equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_different_seeds_differ():
    a, _ = _sample(256, seed=11)
    b, _ = _sample(256, seed=12)
    assert not torch.equal(a, b)
    assert (a != b).float().mean() > 0.99


def test_successive_steps_of_one_stream_differ_and_each_step_is_its_own_function():
    sampler = Sampler(_picture())
    a, _ = sampler.sample(64, 0, 0)
    b, _ = sampler.sample(64, 0, 1)
    assert not torch.equal(a, b)
    assert torch.equal(sampler.sample(64, 0, 1)[0], b)  # no state: step 1 again is the same batch


def test_coverage_is_roughly_uniform():
    n = 20_000
    yx, _ = _sample(n, seed=5)
    # Uniform over [0, L]: mean L / 2, standard error L / sqrt(12 n) ~ 0.002 L here.
    assert yx[:, 0].mean().item() == pytest.approx((H - 1) / 2, abs=0.02 * (H - 1))
    assert yx[:, 1].mean().item() == pytest.approx((W - 1) / 2, abs=0.02 * (W - 1))
    assert yx[:, 0].std().item() == pytest.approx((H - 1) / 12**0.5, rel=0.03)
    # Every pixel is hit, and interior pixels about (1 / (H - 1)) * (1 / (W - 1)) of the time.
    counts = np.zeros((H, W))
    np.add.at(counts, (np.round(yx[:, 0].numpy()).astype(int), np.round(yx[:, 1].numpy()).astype(int)), 1)
    assert counts.min() > 0
    interior = counts[1:-1, 1:-1] / n
    np.testing.assert_allclose(interior, 1 / ((H - 1) * (W - 1)), rtol=0.2)


def test_labels_are_long_for_a_uint8_picture():
    # targets.Target.labels is uint8; F.cross_entropy needs int64 class indices.
    picture = _picture().to(torch.uint8)
    _, labels = _sample(10, seed=0, picture=picture)
    assert labels.dtype == torch.long


def test_counter_bits_are_distinct_within_a_step_uniform_and_a_function_of_seed_and_step():
    from overfit.sampling import _hash32, counter_bits, stream_keys

    keys = [stream_keys(0), stream_keys(1), stream_keys(2**40 + 7)]
    bits = counter_bits(keys, [0, 5, 5], 4096, 2)
    assert bits.shape == (3, 4096, 2) and bits.dtype == torch.int64
    assert int(bits.min()) >= 0 and int(bits.max()) < 2**32
    for k in range(3):
        assert bits[k].unique().numel() == 4096 * 2  # a bijection of the element index within a step
    # Each stream and step on its own equals the same stream and step drawn beside others.
    assert torch.equal(counter_bits(keys[1:2], [5], 4096, 2)[0], bits[1])
    assert not torch.equal(counter_bits(keys[1:2], [6], 4096, 2)[0], bits[1])
    # Uniform: each of 16 equal bins of the 32-bit range holds 1/16 of 24,576 values, within 5 standard errors.
    counts = torch.bincount((bits >> 28).reshape(-1), minlength=16).double()
    expected = bits.numel() / 16
    assert float((counts - expected).abs().max()) < 5 * (expected * (15 / 16)) ** 0.5
    # The host's hash (used for the per-step keys) is the device's.
    values = torch.tensor([0, 1, 2**31, 2**32 - 1, 123456789])
    assert _hash32(values).tolist() == [_hash32(int(v)) for v in values]
