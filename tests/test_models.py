"""Tests for overfit.models and overfit.activations: shapes, layer order, both inits, input scaling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from overfit.activations import ACTIVATIONS
from overfit.config import ModelConfig
from overfit.coords import input_affine
from overfit.models import ActivationLayer, CoordinateMLP, InputScaling, build_model, original_init_

H, W = 300, 1000


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


# -- shapes and structure -------------------------------------------------------------


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_output_shape_for_every_activation(activation, batchnorm):
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(8, 16), activation=activation, batchnorm=batchnorm), H, W)
    assert isinstance(model, CoordinateMLP)
    yx = torch.rand(5, 2) * torch.tensor([H - 1.0, W - 1.0])
    out = model(yx)
    assert out.shape == (5, 2)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_layer_order_with_batchnorm(activation):
    model = build_model(ModelConfig(hidden=(8, 16), activation=activation, batchnorm=True), H, W)
    act = ActivationLayer
    assert [type(m) for m in model.mlp] == [nn.Linear, nn.BatchNorm1d, act, nn.Linear, nn.BatchNorm1d, act, nn.Linear]
    assert [m.name for m in model.mlp if isinstance(m, act)] == [activation, activation]
    assert [m.num_features for m in model.mlp if isinstance(m, nn.BatchNorm1d)] == [8, 16]


def test_layer_order_without_batchnorm():
    model = build_model(ModelConfig(hidden=(8, 16), activation="tanh"), H, W)
    assert [type(m) for m in model.mlp] == [nn.Linear, ActivationLayer, nn.Linear, ActivationLayer, nn.Linear]
    assert [m.name for m in model.mlp if isinstance(m, ActivationLayer)] == ["tanh", "tanh"]


@pytest.mark.parametrize("hidden", [(64, 256, 64), (5,), (3, 4, 5, 6)])
def test_linear_layers_and_their_sizes(hidden):
    model = build_model(ModelConfig(hidden=hidden), H, W)
    linears = _linears(model)
    assert len(linears) == len(hidden) + 1
    sizes = [2, *hidden, 2]
    assert [(m.in_features, m.out_features) for m in linears] == list(zip(sizes[:-1], sizes[1:]))


def test_forward_matches_a_hand_written_mlp():
    torch.manual_seed(1)
    model = build_model(ModelConfig(hidden=(6, 5), activation="relu", input_range=1.0), H, W)
    yx = torch.tensor([[0.0, 0.0], [150.0, 500.0], [299.0, 999.0], [12.3, 456.7]])
    l1, l2, l3 = _linears(model)
    h = torch.stack([yx[:, 0] / 150 - 1, yx[:, 1] / 500 - 1], dim=1)
    h = torch.clamp(h @ l1.weight.T + l1.bias, min=0)
    h = torch.clamp(h @ l2.weight.T + l2.bias, min=0)
    expected = h @ l3.weight.T + l3.bias
    torch.testing.assert_close(model(yx), expected, rtol=1e-5, atol=1e-6)


# -- initialisation -------------------------------------------------------------------


def test_original_init_zero_biases_and_normal_weights():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(64, 256, 64), init="original"), H, W)
    linears = _linears(model)
    for m in linears:
        assert torch.count_nonzero(m.bias) == 0
    # The 256-wide layers hold 16384 weights each: the sample std is within ~0.6 % of
    # sqrt(1 / fan_in) (1 sigma), so 5 % is a safe and still discriminating tolerance.
    for m in linears[1:3]:
        assert m.weight.numel() == 64 * 256
        target = math.sqrt(1.0 / m.in_features)
        assert m.weight.std().item() == pytest.approx(target, rel=0.05)
        assert abs(m.weight.mean().item()) < 4 * target / math.sqrt(m.weight.numel())
    # Normal, not uniform: some weights beyond 1 / sqrt(fan_in), which PyTorch's default never has.
    wide = linears[1]
    assert (wide.weight.abs() > 1 / math.sqrt(wide.in_features)).float().mean().item() == pytest.approx(0.317, abs=0.03)


def test_original_init_resets_batchnorm_and_linear_parameters():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(8, 8), batchnorm=True, init="torch"), H, W)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.Linear)):
                m.weight.fill_(5.0)
                m.bias.fill_(3.0)
    original_init_(model)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(bns) == 2
    for bn in bns:
        assert torch.equal(bn.weight, torch.ones(8))
        assert torch.equal(bn.bias, torch.zeros(8))
    for m in _linears(model):
        assert torch.count_nonzero(m.bias) == 0
        assert (m.weight != 5.0).all()


def test_original_init_batchnorm_model():
    model = build_model(ModelConfig(hidden=(8, 8), batchnorm=True, init="original"), H, W)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            assert torch.equal(m.weight, torch.ones(8)) and torch.equal(m.bias, torch.zeros(8))


def test_torch_init_is_pytorchs_default():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(64, 256, 64), init="torch"), H, W)
    for m in _linears(model):
        bound = 1 / math.sqrt(m.in_features)
        assert m.weight.abs().max().item() <= bound
        assert m.bias.abs().max().item() <= bound
        assert torch.count_nonzero(m.bias) == m.bias.numel()
    # Uniform on [-b, b]: std b / sqrt(3).
    wide = _linears(model)[1]
    assert wide.weight.std().item() == pytest.approx(1 / math.sqrt(64) / math.sqrt(3), rel=0.05)


def test_same_seed_same_initial_weights():
    cfg = ModelConfig(hidden=(8, 8))
    torch.manual_seed(3)
    a = build_model(cfg, H, W).state_dict()
    torch.manual_seed(3)
    b = build_model(cfg, H, W).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- input scaling -------------------------------------------------------------------------


@pytest.mark.parametrize("r", [1.0, 3.0, None])
def test_model_scaling_equals_input_affine(r):
    model = build_model(ModelConfig(hidden=(4,), input_range=r), H, W)
    yx = torch.tensor([[0.0, 0.0], [150.0, 500.0], [299.0, 999.0], [33.3, 777.7]])
    scale, offset = input_affine(H, W, r)
    torch.testing.assert_close(model.scaling(yx), yx * scale + offset, rtol=1e-6, atol=1e-6)


def test_model_scaling_by_hand_for_r1():
    model = build_model(ModelConfig(hidden=(4,), input_range=1.0), H, W)
    out = model.scaling(torch.tensor([[0.0, 0.0], [150.0, 500.0], [299.0, 999.0]]))
    expected = torch.tensor([[-1.0, -1.0], [0.0, 0.0], [299 / 150 - 1, 999 / 500 - 1]])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_model_scaling_none_is_identity():
    model = build_model(ModelConfig(hidden=(4,), input_range=None), H, W)
    yx = torch.tensor([[0.0, 0.0], [299.0, 999.0], [1.5, 2.5]])
    assert torch.equal(model.scaling(yx), yx)


def test_scaling_is_saved_with_the_model_and_not_trained():
    model = build_model(ModelConfig(hidden=(4,), input_range=3.0), H, W)
    state = model.state_dict()
    torch.testing.assert_close(state["scaling.scale"], torch.tensor([3 / 150, 3 / 500]))
    torch.testing.assert_close(state["scaling.offset"], torch.tensor([-3.0, -3.0]))
    assert not any(name.startswith("scaling.") for name, _ in model.named_parameters())


def test_input_scaling_module():
    scaling = InputScaling(torch.tensor([2.0, 0.5]), torch.tensor([-1.0, 3.0]))
    out = scaling(torch.tensor([[1.0, 4.0], [0.0, 0.0]]))
    assert out.tolist() == [[1.0, 5.0], [-1.0, 3.0]]


