"""The metric registry: what each number in an evaluation record means, and how to show it.

`metrics.py` computes the numbers (and imports torch); this module only describes them, so
`overfit --help`, the lab's form metadata and the sweep's spec check can read it for free.
A record's key is a scope and a metric: `dense_acc` is the accuracy (`acc`) over every
pixel (`dense_`); `fit_psnr` and `test_psnr` the PSNR over a split's training and held-out
pixels; `train_loss` the mean loss of the training steps since the last evaluation. Tables
of finished runs put one more word in front (`final_dense_acc`, `best_dense_psnr`).

Every reader asks here instead of knowing its own list: the sweep (which way a metric
improves, which names it accepts), the reports (column labels, units, digits), the lab
(any curve a run records, served by `web/meta.py`) and the progress bar (`format_value`).
`parse` is the one place that takes a key apart; `scoped` the one place that builds the
same metric over other pixels.

To add a metric: an entry in `METRICS` here, and the code that computes it in `metrics.py`
(or the mode's own metric function).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Metric:
    """One quantity an evaluation measures, whatever pixels it is measured over."""

    name: str
    """The key's last part: `acc`, `psnr`, ..."""
    label: str
    """How people call it: 'accuracy', 'PSNR'."""
    unit: str
    """Written after the shown value ('%', 'dB'), or ''."""
    direction: str
    """'max' where larger is better, 'min' where smaller is."""
    bounds: tuple[float, float] | None
    """The range its values can take (for chart axes), where it has one."""
    digits: int
    """Decimals shown after scaling."""
    scale: float = 1.0
    """Shown value = value * scale (accuracy 0.5 is shown as 50 %)."""

    def format(self, value: float) -> str:
        """`value` as people read it: '97.3 %', '24.51 dB', '0.0123'."""
        text = f"{value * self.scale:.{self.digits}f}"
        return f"{text} {self.unit}" if self.unit else text


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("acc", "accuracy", "%", "max", (0.0, 1.0), 1, scale=100.0),
    Metric("iou", "ink IoU", "", "max", (0.0, 1.0), 3),
    Metric("psnr", "PSNR", "dB", "max", None, 2),
    Metric("ssim", "SSIM", "", "max", (-1.0, 1.0), 4),
    Metric("loss", "loss", "", "min", None, 4),
    # Near 0 or 1: a binary prediction has collapsed to all ink or all background; neither end is better.
    Metric("pred_bg", "predicted background", "%", "min", (0.0, 1.0), 1, scale=100.0),
)}

# Which pixels (or steps) a record's metric is measured over, by the key's first part.
SCOPES: dict[str, str] = {
    "dense_": "every pixel",
    "batch_": "an evaluation batch",
    "train_": "the training steps",
    "fit_": "the training pixels",
    "test_": "the held-out pixels",
}
# A split's two parts (data.holdout): what the run fits and what it never sees.
FIT, TEST = "fit_", "test_"
# Words in front of a record's key in tables of finished runs (sweep results).
OUTER = ("final_", "best_")


class Key(NamedTuple):
    """A record key taken apart: `final_test_acc` -> ('final_', 'test_', METRICS['acc'])."""

    outer: str
    scope: str
    metric: Metric


def parse(key: str) -> Key | None:
    """The parts of a metric's key, or None when `key` names no registered metric (`step`, `train_seconds`)."""
    outer = next((o for o in OUTER if key.startswith(o)), "")
    rest = key[len(outer):]
    scope = next((s for s in SCOPES if rest.startswith(s)), None)
    if scope is None:
        return None
    metric = METRICS.get(rest[len(scope):])
    return Key(outer, scope, metric) if metric is not None else None


def known(key: str) -> bool:
    return parse(key) is not None


def info(key: str) -> Metric:
    """The registered metric a key names; KeyError naming the key where none is."""
    parts = parse(key)
    if parts is None:
        raise KeyError(f"{key!r} names no metric; a metric's key is one of {', '.join(SCOPES)} then one of {', '.join(METRICS)}")
    return parts.metric


def direction(key: str) -> str:
    """'max' or 'min': the way `key`'s metric improves."""
    return info(key).direction


def scoped(key: str, scope: str) -> str:
    """The same metric over other pixels: scoped('dense_acc', 'test_') == 'test_acc' (the outer word is kept)."""
    parts = parse(key)
    if parts is None:
        raise KeyError(f"{key!r} names no metric")
    return parts.outer + scope + parts.metric.name


def label(key: str) -> str:
    """'accuracy', or with the pixels it is over where those are not every pixel: 'PSNR (the held-out pixels)'."""
    parts = parse(key)
    if parts is None:
        return key
    return parts.metric.label if parts.scope == "dense_" else f"{parts.metric.label} ({SCOPES[parts.scope]})"


def format_value(key: str, value: Any) -> str:
    """A record's value as people read it ('97.3 %'); '-' where it is missing or not a finite number."""
    if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        return "-"
    return info(key).format(float(value))


def served() -> dict[str, Any]:
    """The registry as the lab's page reads it (`web/meta.py`): every scope's key with its label and format."""
    table = {}
    for scope, where in SCOPES.items():
        for name, m in METRICS.items():
            entry = asdict(m)
            entry["bounds"] = list(m.bounds) if m.bounds is not None else None
            table[scope + name] = {**entry, "key": scope + name, "scope": scope, "where": where, "label": label(scope + name)}
    return table
