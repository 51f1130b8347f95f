"""Table 1 (2D image regression) of Tancik et al. 2020, "Fourier Features Let Networks Learn High
Frequency Functions in Low Dimensional Domains", reproduced with overfit's encodings and held-out pixels.

`python -m bench.paper_fourier [--quick] [--device cuda]`

Protocol (the paper's notebook `Experiments/2d_image_regression.ipynb`): RGB pictures in [0, 1];
train on the even lattice (`picture[::2, ::2]`, 256 x 256 of a 512 x 512 picture), test on the odd
lattice (`picture[1::2, 1::2]`): overfit's `data.holdout = checkerboard`. An MLP of 3 hidden layers
of 256 ReLU units, a sigmoid output, full-batch Adam for 2,000 steps at lr 1e-3 (1e-2 for no
mapping and the basic mapping on natural pictures), MSE loss; PSNR on the held-out pixels, mean
over the set. The paper's numbers (natural / text): none 19.32 / 18.40, basic 21.71 / 20.48,
positional 24.95 / 27.57, Gaussian 25.57 / 30.47.

How each mapping is built from overfit: the notebook feeds every mapping through one
`input_encoder`, [sin(2 pi v B^T), cos(2 pi v B^T)] with a mapping-specific B; that is overfit's
`fourier` encoding (`encodings.fourier.FourierFeatures`, B (2, m)), so each mapping here is a
`RunConfig` with `encoding.kind fourier` whose B is set to the notebook's matrix (`paper_frequencies`)
after `models.model_for` builds input scaling -> encoding -> MLP, and a sigmoid is put after it:

- coordinates: the notebook feeds v in [0, 1); overfit scales pixel (y, x) by
  `model.input_range` r to r ((y, x) / (H // 2) - 1), so r = 0.5 spans the same unit interval
  (shifted by -0.5, y pointing up: a phase shift and sign of every feature, the same function class).
- none: the scaled coordinates (`encoding.kind none`). Same as the paper.
- basic: B = I (sin and cos of 2 pi y and 2 pi x: 4 features). Same as the paper.
- positional: the notebook's "posenc_new": 128 frequencies 2^linspace(0, s, 128) - 1 on each axis
  alone (0 to 2^s - 1 periods across the picture), s = 6 natural and 5 text: 512 features. Same.
- Gaussian: 256 frequencies B ~ N(0, sigma^2), sigma 10 (natural) and 14 (text): 512 features.
  Same as the paper (B drawn from torch's generator, not JAX's).
- init: overfit's `original` (N(0, 1/fan_in) weights, zero biases), the variance of the paper's
  Glorot-normal for the square layers; the paper's biases are N(0, 1e-6).

Training: overfit's own loop (`Trainer`) draws random minibatches and has no sigmoid head, so
the four mappings train in a small full-batch loop here (`fit_full_batch`), on exactly the
lattice's pixel centres; evaluation is overfit's (`metrics.dense_regression_metrics` with the
checkerboard `Split`): test PSNR on the odd lattice, and the whole picture's PSNR (what the
notebook's last cell reports as "test"). The presets `siren` and `grid` run through overfit's
`Trainer` unchanged (their own batches, learning rates, steps and linear output) with
`data.holdout = checkerboard`, so they are scored on the same held-out pixels.

Pictures, not the paper's (DIV2K photographs and its own text set, downloaded by its notebook):
- natural: scikit-image's bundled photographs astronaut, chelsea, coffee and rocket, centre-cropped
  to a square and resized (Lanczos) to the side;
- text: `text_picture(seed)`: on white, 32 random strings of 3 to 12 letters and digits, each in
  DejaVu Sans or DejaVu Sans Bold (`overfit.fonts`) at a random size of 4 to 16 % of the side, a
  random RGB colour and a random position; numpy's generator seeded by 1000 + index.

--quick: 1 picture per set, the centre 128 x 128 crop of its 512 x 512 picture (a 64 x 64
lattice), and 300 steps (the presets: their steps scaled by the same 300 / 2000): a smoke test of
minutes on a CPU, not the paper's numbers. A crop keeps the picture's detail per pixel as it is
(a picture shrunk to 128 would put 4 times the detail between two lattice points: measured, every
mapping then fits the text picture no better than its mean colour); the mappings' frequencies,
in periods across the picture, are scaled by 128 / 512 so they too keep their periods per pixel:
sigma 2.5 and 3.5, positional up to 15.75 and 7.75 periods.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .common import RESULTS_MD, Recorder, note, write_section

# Table 1 of the paper: PSNR (dB) on held-out pixels, mean over each set.
PAPER = {
    "natural": {"none": 19.32, "basic": 21.71, "positional": 24.95, "gaussian": 25.57},
    "text": {"none": 18.40, "basic": 20.48, "positional": 27.57, "gaussian": 30.47},
}
MAPPINGS = ("none", "basic", "positional", "gaussian")
PRESETS = ("siren", "grid")
NATURAL = ("astronaut", "chelsea", "coffee", "rocket")
TEXT_PICTURES = 4
TEXT_STRINGS = 32  # strings per text picture: ink over about a third of it (8 left the centre blank)
SIGMA = {"natural": 10.0, "text": 14.0}  # the paper's Gaussian scales
POSENC_SCALE = {"natural": 6, "text": 5}  # the notebook's posenc_scale for its table
EMBEDDING = 256  # the notebook's embedding_size: B's rows for positional and Gaussian
STEPS, QUICK_STEPS = 2000, 300
SIDE, QUICK_SIDE = 512, 128
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


# -- pictures -------------------------------------------------------------------------------------

def natural_picture(name: str, side: int) -> np.ndarray:
    """scikit-image's bundled photograph `name`, centre-cropped square and resized to side x side: (side, side, 3) uint8."""
    from PIL import Image

    try:
        from skimage import data
    except ImportError:
        raise SystemExit("bench.paper_fourier needs scikit-image for its photographs: pip install scikit-image") from None
    picture = getattr(data, name)()
    h, w = picture.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = Image.fromarray(np.ascontiguousarray(picture[top:top + s, left:left + s, :3]))
    return np.asarray(square.resize((side, side), Image.LANCZOS))


def text_picture(seed: int, side: int) -> np.ndarray:
    """Random strings, fonts, sizes, colours and positions on white (the paper's text set, re-made): (side, side, 3) uint8."""
    from PIL import Image, ImageDraw

    from overfit.fonts import font

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for _ in range(TEXT_STRINGS):
        text = "".join(rng.choice(list(_ALPHABET), size=int(rng.integers(3, 13))))
        size = max(4, int(side * rng.uniform(0.04, 0.16)))
        face = font(size, bold=bool(rng.integers(0, 2)))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x, y = int(rng.integers(-side // 8, side)), int(rng.integers(-size // 2, side))
        draw.text((x, y), text, fill=colour, font=face)
    return np.asarray(image)


def centre(picture: np.ndarray, side: int) -> np.ndarray:
    """The centre side x side crop of a square picture."""
    top = (picture.shape[0] - side) // 2
    return picture[top:top + side, top:top + side]


def picture_sets(quick: bool) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Each set's pictures at SIDE x SIDE, or for --quick one picture of each, its centre QUICK_SIDE x QUICK_SIDE crop."""
    side = QUICK_SIDE if quick else SIDE
    count = 1 if quick else len(NATURAL)
    return {
        "natural": [(name, centre(natural_picture(name, SIDE), side)) for name in NATURAL[:count]],
        "text": [(f"text{i}", centre(text_picture(1000 + i, SIDE), side)) for i in range(count if quick else TEXT_PICTURES)],
    }


# -- the mappings as overfit configs ----------------------------------------------------------------

def paper_frequencies(mapping: str, kind: str, side: int) -> torch.Tensor | None:
    """The notebook's B for `mapping` on a side x side picture of set `kind`, as overfit's (2, m); None for no mapping.

    Frequencies are in periods across the picture, the notebook's at 512 pixels scaled by side / 512.
    """
    scale = side / SIDE
    if mapping == "none":
        return None
    if mapping == "basic":
        return torch.eye(2)
    if mapping == "positional":
        b = 2.0 ** torch.linspace(0, POSENC_SCALE[kind], EMBEDDING // 2, dtype=torch.float64) - 1  # (128,)
        zero = torch.zeros_like(b)
        rows = torch.cat([torch.stack([b, zero], 1), torch.stack([zero, b], 1)])  # (256, 2): y alone, then x alone
        return (rows.T * scale).float()
    generator = torch.Generator().manual_seed(10)  # the notebook's key is 10 (its draws are JAX's)
    return torch.randn(2, EMBEDDING, generator=generator) * SIGMA[kind] * scale


def mapping_config(mapping: str, kind: str, side: int, device: str) -> Any:
    """The RunConfig of one mapping: the paper's MLP (3 x 256 ReLU) behind overfit's encoding, rgb mode, checkerboard holdout."""
    from overfit.config import DataConfig, EncodingConfig, ModelConfig, OptimConfig, RunConfig

    b = paper_frequencies(mapping, kind, side)
    enc = EncodingConfig(kind="none") if b is None else EncodingConfig(kind="fourier", features=b.shape[1], sigma=1.0)
    lr = 1e-2 if kind == "natural" and mapping in ("none", "basic") else 1e-3
    return RunConfig(preset=f"paper_{mapping}", device=device,
                     data=DataConfig(mode="rgb", holdout="checkerboard", width=side, height=side),
                     model=ModelConfig(input_range=0.5, hidden=(256, 256, 256), activation="relu", init="original"),
                     encoding=enc, optim=OptimConfig(lr=lr, batch_size=(side // 2) ** 2))


class Sigmoid(nn.Module):
    """The paper's output head around an overfit model: values in (0, 1)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(yx))


def fit_full_batch(cfg: Any, picture: np.ndarray, steps: int, frequencies: torch.Tensor | None = None) -> tuple[dict[str, float], int, float]:
    """Full-batch Adam on the training lattice's pixel centres, with the fourier encoding's B set to `frequencies`
    where given; (overfit's evaluation record, parameters, training seconds)."""
    from overfit.coords import pixel_grid
    from overfit.devices import resolve_device
    from overfit.metrics import dense_regression_metrics
    from overfit.models import model_for
    from overfit.sampling import holdout_split
    from overfit.training import derived_seeds

    device = resolve_device(cfg.device)
    height, width = picture.shape[:2]
    seeds = derived_seeds(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds["init"])
        net = model_for(cfg, height, width)
    if frequencies is not None:
        net.encoding.B.copy_(frequencies)
    model = Sigmoid(net).to(device)
    values = torch.from_numpy(picture.astype(np.float32) / 255.0).to(device)  # (H, W, 3)
    split = holdout_split(cfg.data.holdout, height, width, seeds["holdout"], device)
    assert split is not None
    train = split.train.reshape(-1)
    x = pixel_grid(height, width, device)[train]  # (n, 2): the even lattice's centres
    y = values.reshape(-1, 3)[train]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    model.eval()
    record, _ = dense_regression_metrics(model, values, split=split)
    return record, sum(p.numel() for p in model.parameters()), seconds


def fit_preset(name: str, picture: np.ndarray, steps_scale: float, device: str) -> tuple[dict[str, float], int, float, int]:
    """An overfit preset through overfit's Trainer with the checkerboard held out: (last record, parameters, training s, steps)."""
    from overfit.presets import get_preset
    from overfit.targets import make_target
    from overfit.training import Trainer

    cfg = get_preset(name)
    steps = max(1, round(cfg.schedule.steps * steps_scale))
    height, width = picture.shape[:2]
    cfg = cfg.with_overrides({"device": device, "data.mode": "rgb", "data.holdout": "checkerboard", "data.width": str(width),
                              "data.height": str(height), "schedule.steps": str(steps), "schedule.eval_every": str(steps),
                              "schedule.log_every": str(min(50, steps))})
    trainer = Trainer(cfg, make_target(picture, name, "rgb"))
    result = trainer.run()
    return result.history[-1], sum(p.numel() for p in trainer.model.parameters()), trainer.train_seconds, steps


# -- the table ----------------------------------------------------------------------------------

def run(rec: Recorder, device: str, quick: bool) -> str:
    """Every mapping and preset on every picture, one JSON result each; returns the RESULTS.md section."""
    steps = QUICK_STEPS if quick else STEPS
    side = QUICK_SIDE if quick else SIDE
    records = []

    def emit(kind: str, picture: str, method: str, record: dict[str, float], params: int, seconds: float, **extra: Any) -> None:
        records.append(rec.emit(
            "paper_fourier", set=kind, picture=picture, method=method, side=side, **extra,
            test_psnr=round(record["test_psnr"], 3), train_psnr=round(record["fit_psnr"], 3),
            all_psnr=round(record["dense_psnr"], 3), params=params, train_s=round(seconds, 2)))

    for kind, pictures in picture_sets(quick).items():
        for picture_name, picture in pictures:
            for mapping in MAPPINGS:
                cfg = mapping_config(mapping, kind, side, device)
                record, params, seconds = fit_full_batch(cfg, picture, steps, paper_frequencies(mapping, kind, side))
                emit(kind, picture_name, mapping, record, params, seconds, steps=steps, lr=cfg.optim.lr)
            for preset in PRESETS:
                record, params, seconds, preset_steps = fit_preset(preset, picture, steps / STEPS, device)
                emit(kind, picture_name, preset, record, params, seconds, steps=preset_steps)
            note(f"paper_fourier: {kind} {picture_name} done")
    return section(records, rec.run_id, rec.info["device"], rec.info["thread_env"])


# -- the RESULTS.md section ---------------------------------------------------------------------------

TITLE = "## Tancik et al. 2020, Table 1 on held-out pixels (`python -m bench.paper_fourier`)"
ABOUT = """\
Fit versus generalise with `data.holdout checkerboard`: each picture's even lattice trains, its odd
lattice is scored (test PSNR). The four mappings are the notebook's (`Experiments/2d_image_regression.ipynb`):
its B matrices in overfit's `fourier` encoding, its MLP (3 x 256 ReLU, sigmoid output) and its full-batch
Adam; siren and grid run through overfit's `Trainer` with their own recipes on the same held-out pixels.
The pictures are not the paper's: scikit-image photographs instead of DIV2K and generated text pictures
instead of its text set (the module's docstring lists every difference), so only the ordering and the
rough size of the gaps compare with the paper's numbers."""


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def ordering(records: list[dict[str, Any]], kind: str) -> str:
    """Whether none < basic < positional < Gaussian holds on set `kind` (means of test PSNR), as a sentence."""
    means = [_mean([r for r in records if r["set"] == kind and r["method"] == m], "test_psnr") for m in MAPPINGS]
    broken = [f"{a} {x:.2f} >= {b} {y:.2f}, by {x - y:.3f} dB" for (a, x), (b, y) in zip(zip(MAPPINGS, means), zip(MAPPINGS[1:], means[1:]))
              if x >= y]
    values = " / ".join(f"{m:.2f}" for m in means)
    if not broken:
        return f"{kind}: none < basic < positional < Gaussian holds ({values} dB)."
    return f"{kind}: none < basic < positional < Gaussian does not hold ({values} dB; {', '.join(broken)})."


def section(records: list[dict[str, Any]], run_id: str, device: str, thread_env: dict[str, str]) -> str:
    """The RESULTS.md section of one run's `paper_fourier` records: each method's mean test PSNR per set beside the paper's."""
    side, steps = records[0]["side"], max(r["steps"] for r in records if r["method"] in MAPPINGS)
    quick = side != SIDE or steps != STEPS
    names = {kind: ", ".join(dict.fromkeys(r["picture"] for r in records if r["set"] == kind)) for kind in PAPER}
    env = ", ".join(f"{k}={v}" for k, v in thread_env.items()) or "no thread variables set"
    lines = [TITLE, "", ABOUT, "",
             f"Run id `{run_id}` on {device} ({env}): {'--quick, ' if quick else ''}{side} x {side} pictures (train the "
             f"{side // 2} x {side // 2} even lattice, test the odd one), {steps} full-batch steps for the mappings "
             f"(the notebook's frequencies scaled by {side}/{SIDE}){' on the centre crop of each picture' if side != SIDE else ''}; "
             f"natural: {names['natural']}; text: {names['text']}.", "",
             "| method | natural test PSNR | paper | text test PSNR | paper | natural train / all-pixel PSNR | params | train s (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for method in (*MAPPINGS, *PRESETS):
        nat = [r for r in records if r["set"] == "natural" and r["method"] == method]
        txt = [r for r in records if r["set"] == "text" and r["method"] == method]
        paper = PAPER["natural"].get(method), PAPER["text"].get(method)
        lines.append(
            f"| {method} | {_mean(nat, 'test_psnr'):.2f} | {paper[0] or '-'} | {_mean(txt, 'test_psnr'):.2f} | "
            f"{paper[1] or '-'} | {_mean(nat, 'train_psnr'):.2f} / {_mean(nat, 'all_psnr'):.2f} | "
            f"{nat[0]['params']:,} | {_mean(nat + txt, 'train_s'):.1f} |")
    lines += ["", ordering(records, "natural"), "", ordering(records, "text")]
    if quick:
        lines += ["", "A smoke test of the machinery on a crop of a sixteenth of each picture and fewer steps, not a reproduction. "
                      f"Full table ({len(NATURAL)} + {TEXT_PICTURES} pictures at {SIDE} x {SIDE}, {STEPS:,} steps): "
                      "not measured here (hours on a CPU; `python -m bench.paper_fourier --device cuda` on a GPU)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.paper_fourier", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 picture per set, 128 x 128, 300 steps: minutes on a CPU")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    p.add_argument("--no-write", action="store_true", help="print the section only; do not put it into bench/RESULTS.md")
    args = p.parse_args(argv)
    from overfit.training import DeviceError, resolve_device

    try:
        device = resolve_device(args.device)
    except DeviceError as e:
        print(f"bench.paper_fourier: {e}", file=sys.stderr)
        return 2
    rec = Recorder(device, args.quick)
    start = time.perf_counter()
    text = run(rec, args.device, args.quick)
    note(f"paper_fourier: {time.perf_counter() - start:.0f} s")
    print(text, file=sys.stderr)
    if not args.no_write:
        write_section(RESULTS_MD, text)
        note(f"wrote its section of {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
