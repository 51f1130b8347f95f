"""A config and a training result show themselves in a notebook: a table of fields, and the prediction with its curves."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

import overfit
from overfit.config import RunConfig


def test_a_config_shows_every_field_with_the_changed_ones_in_bold():
    page = RunConfig().with_overrides({"optim.lr": 0.001, "data.text": "<b>HI</b>"})._repr_html_()
    assert "<code>optim.lr</code></td><td style='text-align:left'><b>0.001</b>" in page
    assert "<code>optim.batch_size</code></td><td style='text-align:left'>1024<" in page  # a default: plain
    assert "&lt;b&gt;HI&lt;/b&gt;" in page and "<b>HI</b>" not in page  # values are escaped
    assert page.count("<tr>") == len(re.findall(r"<code>", page)) > 20


def test_a_result_shows_its_headline_its_prediction_of_the_whole_picture_and_its_curves():
    result = overfit.train(RunConfig().with_overrides({"data.text": "A", "data.width": 40, "data.height": 20,
                                                        "schedule.steps": 20, "schedule.eval_every": 10}))
    page = result._repr_html_()
    assert "relu_1: trained to step 20, accuracy " in page
    pictures = [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r"base64,([A-Za-z0-9+/=]+)'", page)]
    assert len(pictures) == 2
    prediction = np.asarray(pictures[0])
    assert prediction.shape == (20, 40) and prediction.dtype == np.uint8  # one value per pixel of the picture
    assert result.model.training  # the view put the model back as it was
