"""A sweep's specification: the fixed config, the swept fields, and how trials are chosen; pure (no ray, no torch).

    {"name": "lr-levels", "base": {...RunConfig JSON...},
     "grid": {"encoding.levels": ["4", "8", "16"]},
     "random": {"optim.lr": "log:1e-4:1e-1"}, "samples": 24, "seeds": [0, 1],
     "metric": "dense_psnr", "scheduler": "asha", "search": "random", ...}

The same JSON is written to `sweeps/<name>/spec.json` and read back by `--spec` and
`--resume`. `check` refuses a bad spec before anything starts: every grid point's config
and both ends of every random range are built through `RunConfig.with_overrides`, so an
unknown field or a value out of range is refused with the field named.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random as _random
from dataclasses import dataclass, field
from typing import Any

from .. import limits, metricinfo
from ..config import RunConfig
from ..configio import parse_seeds
from ..errors import ConfigError

DISTRIBUTIONS = ("uniform", "log", "int", "choice")
SCHEDULERS = ("none", "asha")
SEARCHES = ("random", "tpe")
# Dense accuracy thresholds whose first step results.csv records for binary runs.
THRESHOLDS = (0.9, 0.95, 0.99)


@dataclass(frozen=True)
class RandomDim:
    """One randomly sampled field: `kind` uniform / log / int over [low, high], or choice of `choices`."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, key: str, text: str) -> RandomDim:
        """`uniform:a:b`, `log:a:b`, `int:a:b` or `choice:x,y` (the `--random key=...` value)."""
        kind, _, rest = str(text).partition(":")
        if kind not in DISTRIBUTIONS:
            raise ConfigError(f"unknown distribution {kind!r} in {text!r}; use one of {', '.join(d + ':...' for d in DISTRIBUTIONS)}", field=key)
        if kind == "choice":
            choices = tuple(c.strip() for c in rest.split(",") if c.strip())
            if not choices:
                raise ConfigError(f"choice needs at least one value, got {text!r}", field=key)
            return cls(kind, choices=choices)
        low_text, colon, high_text = rest.partition(":")
        try:
            low, high = (int(low_text), int(high_text)) if kind == "int" else (float(low_text), float(high_text))
        except ValueError:
            raise ConfigError(f"expected {kind}:LOW:HIGH with numbers, got {text!r}", field=key) from None
        if not colon or not (math.isfinite(low) and math.isfinite(high)):
            raise ConfigError(f"expected {kind}:LOW:HIGH, got {text!r}", field=key)
        if low > high:
            raise ConfigError(f"low {low:g} is greater than high {high:g}", field=key)
        if kind == "log" and low <= 0:
            raise ConfigError(f"a log range needs low > 0, got {low:g}", field=key)
        return cls(kind, low, high)

    def text(self) -> str:
        if self.kind == "choice":
            return "choice:" + ",".join(self.choices)
        return f"{self.kind}:{_num(self.low)}:{_num(self.high)}"

    def ends(self) -> list[str]:
        """The values `check` builds a config from: both range ends, or every choice."""
        return list(self.choices) if self.kind == "choice" else [_num(self.low), _num(self.high)]

    def sample(self, rng: _random.Random) -> Any:
        if self.kind == "choice":
            return rng.choice(self.choices)
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        if self.kind == "log":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class SweepSpec:
    """Everything a sweep is: the fixed config (`base`, RunConfig JSON) and the dimensions swept over it."""

    name: str
    base: dict[str, Any]
    grid: dict[str, tuple[str, ...]] = field(default_factory=dict)
    random: dict[str, RandomDim] = field(default_factory=dict)
    samples: int = 1
    seeds: tuple[int, ...] = ()
    """The seeds every configuration runs with (`--seeds 0-4`, `configio.parse_seeds`); () the base config's seed alone."""
    metric: str = "dense_acc"
    scheduler: str = "none"
    search: str = "random"
    max_concurrent: int | None = None
    grace_period: int = 1
    max_failures: int = 2

    @property
    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.base)

    @property
    def mode(self) -> str:
        """'max' or 'min': the direction in which `metric` improves (the metric registry's)."""
        return metricinfo.direction(self.metric)

    @property
    def swept(self) -> list[str]:
        """The swept fields, in order (seed last when there are several seeds)."""
        return [*self.grid, *self.random, *(["seed"] if len(self.seed_values()) > 1 else [])]

    def seed_values(self) -> list[int]:
        """The seeds each configuration runs with: `seeds`, or the base config's seed alone."""
        return list(self.seeds) or [self.config.seed]

    def grid_points(self) -> list[dict[str, str]]:
        """Every combination of grid values and seeds (each a dict of dotted overrides, strings)."""
        keys = list(self.grid)
        points = [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]
        return [{**p, "seed": str(s)} for p in points for s in self.seed_values()]

    def trial_count(self) -> int:
        """Trials the sweep runs: grid points x seeds x samples (TPE: `samples` in all)."""
        return self.samples if self.search == "tpe" else len(self.grid_points()) * self.samples

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["grid"] = {k: list(v) for k, v in self.grid.items()}
        data["random"] = {k: d.text() for k, d in self.random.items()}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, ints beyond Python's digit limit, absurd nesting
            raise ConfigError(f"not valid JSON: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        if not isinstance(data, dict):
            raise ConfigError("a sweep spec is a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown sweep spec key {unknown[0]!r}; known: {', '.join(sorted(known))}", field=unknown[0])
        return build(**data)


def build(name: str, base: dict[str, Any], grid: dict[str, Any] | None = None, random: dict[str, str] | None = None,
          **options: Any) -> SweepSpec:
    """A checked spec from plain values (grid values as lists or 'a,b,c'; random dims as 'log:a:b')."""
    grids: dict[str, tuple[str, ...]] = {}
    for key, values in (grid or {}).items():
        items = values.split(",") if isinstance(values, str) else list(values)
        items = [str(v).strip() for v in items if str(v).strip()]
        if not items:
            raise ConfigError("empty grid: give at least one value (key=v1,v2,...)", field=key)
        grids[key] = tuple(items)
    dims = {key: text if isinstance(text, RandomDim) else RandomDim.parse(key, text) for key, text in (random or {}).items()}
    for key in set(grids) & set(dims):
        raise ConfigError("swept both by --grid and --random; choose one", field=key)
    if "seeds" in options:
        options["seeds"] = _seeds(options["seeds"], base)
    spec = SweepSpec(name=name, base=dict(base), grid=grids, random=dims, **options)
    check(spec)
    return spec


def _seeds(value: Any, base: dict[str, Any]) -> tuple[int, ...]:
    """A spec's seeds from a list of seeds, the command line's text ('0-4', '0,3,5': `configio.parse_seeds`), or a
    count (how spec.json held them before: that many seeds from the base config's seed on; 1 is that seed alone)."""
    if isinstance(value, str):
        return tuple(parse_seeds(value))
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"must be a list of seeds such as [0, 1, 2], got {value!r}", field="seeds")
        first = RunConfig.from_dict(base).seed
        return tuple(range(first, first + value)) if value > 1 else ()
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        if len(set(value)) != len(value):
            raise ConfigError(f"lists a seed twice: {list(value)}", field="seeds")
        return tuple(value)
    raise ConfigError(f"must be a list of seeds such as [0, 1, 2] (or '0-2'), got {value!r}", field="seeds")


def check(spec: SweepSpec) -> None:
    """Refuse a spec that cannot run, naming the field: every config it can make is built and validated."""
    for key, value, lowest in (("samples", spec.samples, 1), ("grace_period", spec.grace_period, 1),
                               ("max_failures", spec.max_failures, 0), ("max_concurrent", spec.max_concurrent or 1, 1)):
        if not isinstance(value, int) or value < lowest:
            raise ConfigError(f"must be an integer >= {lowest}, got {value!r}", field=key)
    if spec.scheduler not in SCHEDULERS:
        raise ConfigError(f"unknown scheduler {spec.scheduler!r}; use {' or '.join(SCHEDULERS)}", field="scheduler")
    if spec.search not in SEARCHES:
        raise ConfigError(f"unknown search {spec.search!r}; use {' or '.join(SEARCHES)}", field="search")
    if spec.name.strip() == "" or "/" in spec.name or spec.name.startswith("."):
        raise ConfigError(f"not a usable folder name: {spec.name!r}", field="name")
    base = spec.config
    if "seed" in spec.grid or "seed" in spec.random:
        if spec.seeds:
            raise ConfigError("swept and set by --seeds; choose one", field="seed")
    for key in [*spec.grid, *spec.random]:
        if key == "preset":
            raise ConfigError("is a label, not something to sweep", field=key)
    # Its size, from the counts alone: a grid of many keys must be refused before its points are made.
    limits.LIMITS["sweep_random_dims"].check(len(spec.random))
    trials = spec.samples if spec.search == "tpe" else math.prod(len(v) for v in spec.grid.values()) * len(spec.seed_values()) * spec.samples
    limits.LIMITS["sweep_trials"].check(trials)
    # Every grid point (with the first value of each random dim), then each random end with the first grid point.
    built = configs(spec)
    if not _known_metric(spec.metric):
        raise ConfigError(f"unknown metric {spec.metric!r}; use an evaluation record's key: one of {', '.join(metricinfo.SCOPES)} "
                          f"then one of {', '.join(metricinfo.METRICS)}, such as dense_acc or dense_psnr "
                          "(test_psnr, fit_psnr with data.holdout)", field="metric")
    # Held-out metrics exist only in runs that hold pixels out: every trial must (data.holdout may be swept).
    if metricinfo.parse(spec.metric).scope in (metricinfo.FIT, metricinfo.TEST) and any(cfg.data.holdout == "none" for cfg in built):
        raise ConfigError(f"{spec.metric} is measured on held-out pixels, but some trials hold none out; "
                          "hold pixels out in the base config (data.holdout, --holdout: checkerboard or a fraction such as 0.25)", field="metric")


def configs(spec: SweepSpec) -> list[RunConfig]:
    """The configs that bound the sweep's trials: every grid point with the first end of each random dim, then each
    random dim's ends with the first grid point (what `check` validates and a trial's memory is sized from)."""
    first_random = {k: d.ends()[0] for k, d in spec.random.items()}
    points = spec.grid_points()
    built = [_build(spec.config, {**point, **first_random}) for point in points]
    return built + [_build(spec.config, {**points[0], **first_random, key: value})
                    for key, dim in spec.random.items() for value in dim.ends()]


def most_evaluations(spec: SweepSpec) -> int:
    """The most evaluations a trial can make (schedule fields may be swept): every grid point with every combination
    of the random dims' ends (the count grows with steps and falls with eval_every, so its largest value is at ends)."""
    import itertools

    keys = list(spec.random)
    ends = itertools.product(*(spec.random[k].ends() for k in keys))
    combos = [dict(zip(keys, values)) for values in ends]
    return max(_build(spec.config, {**point, **combo}).schedule.evaluation_count()
               for point in spec.grid_points() for combo in combos)


def expand(spec: SweepSpec, rng: _random.Random | None = None) -> list[dict[str, str]]:
    """The trials of a random/grid sweep as dotted overrides: `samples` x grid points x seeds, random dims drawn from `rng`."""
    rng = rng or _random.Random(0)
    trials = []
    for _ in range(spec.samples):
        drawn = {k: _num(d.sample(rng)) if d.kind != "choice" else d.sample(rng) for k, d in spec.random.items()}
        trials += [{**point, **drawn} for point in spec.grid_points()]
    return trials


def _build(base: RunConfig, overrides: dict[str, str]) -> RunConfig:
    try:
        return base.with_overrides(overrides)
    except ConfigError as e:
        if e.field is None:  # name the swept key when the config could not
            raise ConfigError(e.detail, field=next(iter(overrides), None)) from None
        raise


def _known_metric(name: str) -> bool:
    """A key an evaluation record can hold (the registry's), not a table's `final_`/`best_` column."""
    parts = metricinfo.parse(name)
    return parts is not None and parts.outer == ""


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))
