"""Tests for overfit.activations: each entry computes its function, has a shader form, names real fields, costs no torch import."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from overfit.activations import ACTIVATIONS
from overfit.fields import CHOICES, field_docs
from overfit.models import ActivationLayer


# -- the activation registry ----------------------------------------------------------------


def test_activation_names_equal_the_registry_keys_and_the_config_choices():
    assert CHOICES["model.activation"] == tuple(ACTIVATIONS)
    assert set(ACTIVATIONS) == {"relu", "tanh", "cos", "sin", "siren", "gauss", "gelu", "sigmoid", "leaky_relu"}


REFERENCE = {
    "relu": lambda v: max(v, 0.0),
    "tanh": math.tanh,
    "cos": math.cos,
    "sin": math.sin,
    "siren": lambda v: math.sin(30.0 * v),
    "gauss": lambda v: math.exp(-((30.0 * v) ** 2)),
    "gelu": lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))),
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
    "leaky_relu": lambda v: v if v > 0 else 0.01 * v,
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_computes_its_function(name):
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    out = ActivationLayer(name, 30.0)(x)
    expected = torch.tensor([REFERENCE[name](v) for v in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_cos_and_sin_modules_match_torch():
    x = torch.linspace(-10, 10, 101)
    assert torch.equal(ActivationLayer("cos", 30.0)(x), torch.cos(x))
    assert torch.equal(ActivationLayer("sin", 30.0)(x), torch.sin(x))
    assert torch.equal(ActivationLayer("gelu", 30.0)(x), F.gelu(x))
    assert torch.equal(ActivationLayer("relu", 30.0)(x), torch.relu(x))
    assert torch.equal(ActivationLayer("leaky_relu", 30.0)(x), F.leaky_relu(x))


def test_importing_the_registry_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; import overfit.activations, overfit.encodings, overfit.modes, overfit.losses; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_has_a_shader_form_of_its_argument(name):
    glsl = ACTIVATIONS[name].glsl("s", 30.0)
    assert "s" in glsl and glsl.count("(") == glsl.count(")")


def test_fields_name_real_config_keys():
    keys = set(field_docs())
    for entry in ACTIVATIONS.values():
        assert set(entry.fields) <= keys
