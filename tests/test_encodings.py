"""Tests for overfit.encodings and the SIREN/gauss activations: shapes, formulas, init statistics,
grid interpolation against F.grid_sample and hashed lookups against a naive loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from overfit.activations import ACTIVATIONS, siren_init
from overfit.config import ConfigError, EncodingConfig, ModelConfig, RunConfig
from overfit.encodings import ENCODINGS
from overfit.encodings.fourier import FourierFeatures
from overfit.encodings.grid import HASH_PRIMES, GridEncoding, grid_resolutions
from overfit.encodings.positional import PositionalEncoding
from overfit.models import ActivationLayer, model_for


def _cfg(**over: object) -> RunConfig:
    return RunConfig().with_overrides({k: v for k, v in over.items()})


# -- Fourier features and positional encoding ---------------------------------------------


def test_fourier_features_formula_and_shape():
    torch.manual_seed(0)
    enc = FourierFeatures(features=8, sigma=3.0)
    v = torch.tensor([[0.1, -0.4], [0.7, 0.2], [0.0, 0.0]])
    out = enc(v)
    assert out.shape == (3, 16) and enc.out_features == 16
    B = enc.B.numpy().astype(np.float64)
    angles = 2 * np.pi * v.numpy().astype(np.float64) @ B
    np.testing.assert_allclose(out.numpy(), np.concatenate([np.sin(angles), np.cos(angles)], axis=1), atol=1e-5)
    # The origin encodes to sin 0 = 0 and cos 0 = 1.
    assert torch.equal(out[2], torch.cat([torch.zeros(8), torch.ones(8)]))


def test_fourier_frequencies_have_the_configured_spread():
    torch.manual_seed(1)
    enc = FourierFeatures(features=4096, sigma=10.0)
    assert enc.B.shape == (2, 4096)
    assert abs(float(enc.B.std()) - 10.0) < 0.3
    assert abs(float(enc.B.mean())) < 0.3


def test_positional_encoding_is_nerfs():
    enc = PositionalEncoding(frequencies=3)
    v = torch.tensor([[0.25, -0.5]])
    out = enc(v)[0]
    assert out.shape == (2 + 4 * 3,) and enc.out_features == 14
    expected = [0.25, -0.5]
    angles = [0.25 * math.pi * 2**k for k in range(3)] + [-0.5 * math.pi * 2**k for k in range(3)]
    expected += [math.sin(a) for a in angles] + [math.cos(a) for a in angles]
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


# -- the grid --------------------------------------------------------------------------------


def test_grid_resolutions_grow_geometrically_to_one_cell_per_pixel():
    res = grid_resolutions(levels=16, base=16, per_level_scale=None, height=300, width=1000)
    assert len(res) == 16
    assert res[0] == (5, 16)  # the longer side gets `base` cells, the shorter proportionally
    assert res[-1] == (300, 1000)  # finest: one cell per pixel, vertices on pixel centres
    longer = [cx for _, cx in res]
    ratios = [b / a for a, b in zip(longer, longer[1:])]
    assert max(ratios) / min(ratios) < 1.05  # geometric growth, up to rounding
    assert grid_resolutions(2, 4, 2.0, 64, 64) == [(4, 4), (8, 8)]


def _grid(resolutions, features=2, log2=19, r=1.0, seed=0):
    torch.manual_seed(seed)
    enc = GridEncoding(resolutions, features, log2, r)
    with torch.no_grad():  # features large enough that interpolation errors would show
        for p in enc.parameters():
            p.uniform_(-1, 1)
    return enc


def test_dense_levels_match_grid_sample_on_the_same_tables():
    enc = _grid([(3, 5), (7, 11)], features=3)
    assert enc.is_hashed == [False, False]
    torch.manual_seed(2)
    v = torch.rand(500, 2) * 2 - 1
    out = enc(v)
    assert out.shape == (500, 6)
    for level, table in enumerate(enc.dense):
        # Independent reference: grid_sample on the level's table, (x, y) order, align_corners.
        ref = F.grid_sample(table, v.flip(1)[None, :, None, :], mode="bilinear", align_corners=True)[0, :, :, 0].t()
        torch.testing.assert_close(out[:, 3 * level:3 * level + 3], ref)
        # The explicit-gather path (used for hashed levels) gives the same on a dense table.
        flat = table[0].permute(1, 2, 0).reshape(-1, 3)
        torch.testing.assert_close(enc.gather_level(flat, enc.unit(v), level, hashed=False), ref, rtol=1e-5, atol=1e-6)


def test_vertices_return_their_stored_features_exactly():
    enc = _grid([(4, 4)], features=1)
    table = enc.dense[0][0, 0]  # (5, 5): row iy, column ix
    for iy in range(5):
        for ix in range(5):
            v = torch.tensor([[iy / 4 * 2 - 1, ix / 4 * 2 - 1]])
            with torch.no_grad():
                assert float(enc(v)) == pytest.approx(float(table[iy, ix]), abs=1e-6)


def _naive_hashed(enc: GridEncoding, table: torch.Tensor, level: int, v: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of a hashed level with Python integers, one point at a time."""
    cy, cx = enc.resolutions[level]
    out = []
    for y, x in v.tolist():
        uy = min(max((y / enc.input_range + 1) / 2, 0.0), 1.0) * cy
        ux = min(max((x / enc.input_range + 1) / 2, 0.0), 1.0) * cx
        iy, ix = min(int(math.floor(uy)), cy - 1), min(int(math.floor(ux)), cx - 1)
        fy, fx = uy - iy, ux - ix
        acc = torch.zeros(table.shape[1], dtype=torch.float64)
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            row = ((ix + dx) * HASH_PRIMES[0] ^ (iy + dy) * HASH_PRIMES[1]) % (1 << 8)
            acc += w * table[row].double()
        out.append(acc)
    return torch.stack(out).float()


def test_hashed_levels_match_a_naive_loop():
    # 2^8 = 256 rows: the (4 x 4)-cell level (25 vertices) stays dense, the (40 x 60) one is hashed.
    enc = _grid([(4, 4), (40, 60)], features=2, log2=8, r=3.0)
    assert enc.is_hashed == [False, True]
    assert enc.hashed is not None and enc.hashed.shape == (1, 256, 2)
    torch.manual_seed(3)
    v = (torch.rand(200, 2) * 2 - 1) * 3.0
    out = enc(v)
    torch.testing.assert_close(out[:, 2:4], _naive_hashed(enc, enc.hashed[0].detach(), 1, v), rtol=1e-5, atol=1e-5)


def test_hash_index_is_instant_ngps_hash():
    enc = _grid([(100, 100)], log2=10)
    vertex = torch.tensor([[0, 0], [1, 0], [0, 1], [37, 91]])
    expected = [((ix * 1) ^ (iy * 2654435761)) % 1024 for iy, ix in vertex.tolist()]
    assert enc.hash_index(vertex).tolist() == expected


def test_grid_gradients_reach_only_the_four_surrounding_vertices():
    enc = _grid([(4, 4)], features=1)
    enc(torch.tensor([[-0.6, 0.1]])).sum().backward()  # u = (0.2, 0.55) -> cell (0, 2)
    grad = enc.dense[0].grad[0, 0]
    touched = (grad != 0).nonzero().tolist()
    assert touched == [[0, 2], [0, 3], [1, 2], [1, 3]]
    assert float(grad.sum()) == pytest.approx(1.0)  # bilinear weights sum to one


def test_points_outside_the_picture_clamp_to_the_edge():
    enc = _grid([(4, 4)], features=1)
    inside = enc(torch.tensor([[1.0, -1.0]]))
    assert torch.equal(enc(torch.tensor([[5.0, -9.0]])), inside)


def test_grid_table_init_is_instant_ngps():
    cfg = _cfg(**{"encoding.kind": "grid"})
    torch.manual_seed(0)
    model = model_for(cfg, 300, 1000)
    enc = model.encoding
    assert isinstance(enc, GridEncoding) and enc.out_features == 32
    values = torch.cat([p.detach().flatten() for p in enc.parameters()])
    assert float(values.abs().max()) <= 1e-4
    assert values.numel() == sum((cy + 1) * (cx + 1) * 2 for cy, cx in enc.resolutions)  # all dense at T = 19


def test_grid_finer_than_four_times_the_picture_is_refused():
    cfg = _cfg(**{"encoding.kind": "grid", "encoding.per_level_scale": 2.0})
    with pytest.raises(ConfigError, match=r"^encoding.per_level_scale: .*524288 cells across a 1000-pixel side"):
        model_for(cfg, 300, 1000)


def test_grid_needs_scaled_inputs():
    with pytest.raises(ConfigError, match="^model.input_range: the grid encoding needs scaled inputs"):
        _cfg(**{"encoding.kind": "grid", "model.input_range": "none"})


@pytest.mark.parametrize("key, value", [("encoding.sigma", 0), ("encoding.sigma", -1), ("model.w0", 0),
                                        ("encoding.features", 0), ("encoding.levels", 0), ("encoding.per_level_scale", 0.5),
                                        ("encoding.kind", "hash"), ("encoding.log2_hashmap_size", 40)])
def test_bad_encoding_values_name_their_field(key, value):
    with pytest.raises(ConfigError, match=f"^{key}: "):
        _cfg(**{key: value})


# -- the registry: each encoding's fields, checks and size --------------------------------------


@pytest.mark.parametrize("kind", ENCODINGS)
def test_every_encoding_sizes_itself_without_being_built(kind):
    cfg = _cfg(**{"encoding.kind": kind, "encoding.levels": "5", "encoding.log2_hashmap_size": "9", "encoding.features": "24",
                  "data.width": "40", "data.height": "24"})
    assert ENCODINGS[kind].size is not None
    module = ENCODINGS[kind].build(cfg.encoding, cfg.model.input_range, 24, 40)
    size = ENCODINGS[kind].size_of(cfg.encoding, cfg.model.input_range, 24, 40)
    assert size.outputs == module.out_features
    assert size.params == sum(p.numel() for p in module.parameters())
    assert size.buffers == sum(b.numel() for b in module.buffers())


def test_an_entry_without_a_size_is_measured_on_the_meta_device():
    import dataclasses

    cfg = _cfg(**{"encoding.kind": "grid", "encoding.levels": "4", "encoding.log2_hashmap_size": "8"}).encoding
    unsized = dataclasses.replace(ENCODINGS["grid"], size=None)
    measured, declared = unsized.size_of(cfg, 1.0, 30, 50), ENCODINGS["grid"].size_of(cfg, 1.0, 30, 50)
    assert measured[:3] == declared[:3] == (8, declared.params, 0) and declared.params > 0
    assert (measured.floats, measured.macs) == (4 * 8, 4 * 8)  # the guess: four floats and MACs per output


def test_every_encoding_field_is_read_by_some_encoding_and_checked_by_it():
    import dataclasses

    read = {key for entry in ENCODINGS.values() for key in entry.fields}
    assert read == {f"encoding.{f.name}" for f in dataclasses.fields(EncodingConfig)} - {"encoding.kind"}
    # A bad value is refused by the encoding that reads it, whichever encoding is chosen.
    for kind, entry in ENCODINGS.items():
        for key in entry.fields:
            with pytest.raises(ConfigError, match=f"^{key}: "):
                entry.check(dataclasses.replace(EncodingConfig(), **{key.split(".")[1]: -1}))
        with pytest.raises(ConfigError, match="^encoding.features: "):
            EncodingConfig(kind=kind, features=0)


def test_the_budget_names_the_fields_that_make_an_encoding_large():
    from overfit.budget import estimate

    big = _cfg(**{"encoding.kind": "grid", "encoding.log2_hashmap_size": "24", "encoding.levels": "16"})
    assert estimate(big, (300, 1000)).part("model").fields[:2] == ENCODINGS["grid"].size_fields
    assert estimate(_cfg(), (300, 1000)).part("model").fields == ("model.hidden",)


# -- SIREN -------------------------------------------------------------------------------------


def test_siren_init_follows_the_reference_code():
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(256, 256, 256), activation="siren", w0=30.0)
    model = model_for(RunConfig(model=cfg), 300, 1000)
    linears = [m for m in model.mlp if isinstance(m, nn.Linear)]
    first, rest = linears[0], linears[1:]
    # First layer: U(-1/n, 1/n), n = fan_in = 2.
    assert float(first.weight.detach().abs().max()) <= 0.5
    assert float(first.weight.detach().std()) == pytest.approx(0.5 / math.sqrt(3), rel=0.15)
    # Later layers: U(-sqrt(6/n)/w0, sqrt(6/n)/w0), n = 256; std of a uniform is bound / sqrt(3).
    bound = math.sqrt(6 / 256) / 30
    for layer in rest:
        assert float(layer.weight.detach().abs().max()) <= bound
        assert float(layer.weight.detach().std()) == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert [type(m).__name__ for m in model.mlp][:2] == ["Linear", "ActivationLayer"] and model.mlp[1].name == "siren"


def test_siren_preactivations_stay_unit_scale_through_depth():
    # SIREN sec. 3.2: with this init, every hidden layer's input to sin(w0 .) keeps a standard deviation near 1.
    torch.manual_seed(0)
    linears = [nn.Linear(2, 256), *[nn.Linear(256, 256) for _ in range(4)]]
    siren_init(linears, 30.0)
    h = torch.rand(20000, 2) * 2 - 1
    stds = []
    for layer in linears:
        pre = 30.0 * layer(h)
        stds.append(float(pre.detach().std()))
        h = torch.sin(pre)
    assert all(0.5 < s < 2.0 for s in stds[1:]), stds


def test_activation_registry_knows_siren_and_gauss():
    assert ACTIVATIONS["siren"].init is siren_init and ACTIVATIONS["siren"].fields == ("model.w0",)
    x = torch.tensor([0.0, 0.1])
    torch.testing.assert_close(ActivationLayer("siren", 30.0)(x), torch.sin(30 * x))
    torch.testing.assert_close(ActivationLayer("gauss", 5.0)(x), torch.exp(-(5 * x) ** 2))


# -- models per mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ENCODINGS))
@pytest.mark.parametrize("mode, channels", [("binary", 2), ("gray", 1), ("rgb", 3)])
def test_every_encoding_builds_for_every_mode(kind, mode, channels):
    cfg = _cfg(**{"encoding.kind": kind, "data.mode": mode, "model.hidden": "16", "encoding.features": 8, "encoding.levels": 4})
    model = model_for(cfg, 30, 40)
    out = model(torch.rand(9, 2) * torch.tensor([29.0, 39.0]))
    assert out.shape == (9, channels)
    assert model.mlp[0].in_features == model.encoding.out_features
