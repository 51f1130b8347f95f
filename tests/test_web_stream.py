"""Tests of the lab's live message fan-out (`web.stream`)."""

from __future__ import annotations

import json

import numpy as np

from overfit.web.stream import encode


def test_stream_messages_are_strict_json():
    text = encode({"loss": float("nan"), "points": [(1, float("inf")), (2, 0.5)], "n": np.float32(0.25)})
    assert json.loads(text) == {"loss": None, "points": [[1, None], [2, 0.5]], "n": 0.25}
    assert "NaN" not in text and "Infinity" not in text
