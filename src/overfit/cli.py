"""The `overfit` command line: train, presets (and room for reproduce, lab, render, export).

Every option maps onto a `RunConfig` field; any field can also be set by its
dotted name (`--model.init torch`, `--schedule.log_every=50`). Errors in the
user's input print one `Error: ...` line and exit non-zero; runs already on
disk are never overwritten.
"""

from __future__ import annotations

import math
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click

from . import __version__
from .activations import ACTIVATIONS
from .config import BINARY_LOSSES, ENCODING_NAMES, INIT_NAMES, LOSS_NAMES, MODES, ConfigError, RunConfig, field_docs
from .errors import OverfitError
from .presets import DEFAULT_PRESET, PRESETS, get_preset


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="overfit")
def main() -> None:
    """overfit: fit pictures with coordinate neural networks.

    A network is shown random pixel coordinates (y, x) of a black-and-white
    picture and learns to answer "ink or background". `overfit train` fits the
    built-in OVERFIT with the original recipe; `overfit presets` lists the
    original experiment's six configurations.
    """


# -- overfit presets -----------------------------------------------------------

@main.command("presets")
def presets_cmd() -> None:
    """List the presets with one-line descriptions."""
    from .presets import MODERN_PRESETS, ORIGINAL_PRESETS

    width = max(len(n) for n in PRESETS)
    groups = (("The original experiment (binary pictures):", ORIGINAL_PRESETS),
              ("Modern encodings (any --mode: binary, gray, rgb):", MODERN_PRESETS))
    for i, (title, names) in enumerate(groups):
        click.echo(("\n" if i else "") + title)
        for name in names:
            marker = "*" if name == DEFAULT_PRESET else " "
            click.echo(f"{marker} {name:<{width}}  {PRESETS[name].description}")
    click.echo("\n* is the default. Run one with: overfit train PRESET")


# -- overfit train -------------------------------------------------------------

def _dotted_help() -> str:
    lines = ["Every config field can be set by its dotted name, e.g. --model.init torch:", "", "\b"]
    for key, (tp, default) in field_docs().items():
        lines.append(f"  --{key} ({tp}, default {default})")
    return "\n".join(lines)


def _parse_rest(rest: tuple[str, ...]) -> tuple[str | None, dict[str, str]]:
    """Split the free arguments into the preset name and dotted overrides."""
    preset: str | None = None
    overrides: dict[str, str] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        if token.startswith("--"):
            key, eq, value = token[2:].partition("=")
            if "." not in key and key not in ("seed", "loss", "device", "preset", "compile"):
                raise click.UsageError(f"no such option: {token}")
            if not eq:
                if i + 1 >= len(rest):
                    raise click.UsageError(f"option {token} needs a value")
                value = rest[i + 1]
                i += 1
            overrides[key.replace("-", "_")] = value
        elif token.startswith("-") and len(token) > 1 and not _is_number(token):
            raise click.UsageError(f"no such option: {token}")
        elif preset is None:
            preset = token
        else:
            raise click.UsageError(f"unexpected extra argument {token!r} (only one PRESET is taken)")
        i += 1
    return preset, overrides


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def target_options(f: Any) -> Any:
    """The options that choose the picture, shared by every command that fits one."""
    for option in reversed([
        click.option("--text", help="Fit this text, rendered black on white ('\\n' for a new line)."),
        click.option("--image", type=click.Path(), help="Fit this picture (PNG, JPEG, BMP, GIF, WebP, TIFF)."),
        click.option("--size", metavar="WxH", help="Canvas for --text, e.g. 1000x300 (the default)."),
        click.option("--font-size", type=int, help="Font size in pixels for --text (default: fill the canvas)."),
        click.option("--max-pixels", type=int, help="Refuse pictures larger than this (default 50000000)."),
    ]):
        f = option(f)
    return f


def target_overrides(text: str | None, image: str | None, size: str | None, font_size: int | None,
                     max_pixels: int | None) -> dict[str, str]:
    """Dotted config overrides for the target options."""
    overrides: dict[str, str] = {}
    if text is not None:
        # A shell passes "\n" literally; it means a line break here.
        overrides["data.text"] = text.replace("\\n", "\n")
        overrides["data.image"] = "none"
    if image is not None:
        overrides["data.image"] = str(Path(image).expanduser().resolve())
    if size is not None:
        w, _, h = size.lower().partition("x")
        if not (w.isdigit() and h.isdigit()):
            raise click.BadParameter(f"expected WxH like 1000x300, got {size!r}", param_hint="--size")
        overrides["data.width"], overrides["data.height"] = w, h
    if font_size is not None:
        overrides["data.font_size"] = str(font_size)
    if max_pixels is not None:
        overrides["data.max_pixels"] = str(max_pixels)
    return overrides


_OPTION_FIELDS = {
    "steps": "schedule.steps",
    "eval_every": "schedule.eval_every",
    "batch_size": "optim.batch_size",
    "lr": "optim.lr",
    "seed": "seed",
    "activation": "model.activation",
    "input_range": "model.input_range",
    "batchnorm": "model.batchnorm",
    "hidden": "model.hidden",
    "init": "model.init",
    "loss": "loss",
    "mode": "data.mode",
    "encoding": "encoding.kind",
    "device": "device",
    "compile_": "compile",
}


@main.command(
    "train",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": False},
    epilog=_dotted_help(),
)
@click.argument("rest", nargs=-1, type=click.UNPROCESSED, metavar="[PRESET] [--section.field VALUE]...")
@target_options
@click.option("--steps", type=int, help="Training steps (default 100000).")
@click.option("--batch-size", type=int, help="Coordinates per step (default 1024).")
@click.option("--lr", type=float, help="Adam learning rate (default 1e-4).")
@click.option("--eval-every", type=int, help="Evaluate every N steps (default 2000).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--activation", type=click.Choice(list(ACTIVATIONS)), help="Hidden-layer activation.")
@click.option("--input-range", metavar="none|R", help="Scale (y, x) to [-R, R], or 'none' for raw pixel units.")
@click.option("--batchnorm/--no-batchnorm", default=None, help="BatchNorm after each hidden Linear.")
@click.option("--hidden", metavar="W1,W2,...", help="Hidden widths (default 64,256,64).")
@click.option("--init", type=click.Choice(list(INIT_NAMES)), help="Weight init: original (MegEngine's) or torch.")
@click.option("--loss", type=click.Choice(list(LOSS_NAMES)), help="auto (default: cross_entropy for binary, mse otherwise), cross_entropy, double_softmax (the original code's) or mse.")
@click.option("--mode", type=click.Choice(list(MODES)), help="binary (ink or background, the default), gray or rgb (fit pixel values).")
@click.option("--encoding", type=click.Choice(list(ENCODING_NAMES)), help="Input encoding: none (default), fourier, positional, grid.")
@click.option("--device", help="Torch device: cpu (default), cuda, mps.")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the step: faster after a few seconds of compiling.")
@click.option("--config", "config_path", type=click.Path(), help="Start from this config.json instead of a preset.")
@click.option("--name", help="Run folder name (default: PRESET-YYYYmmdd-HHMMSS).")
@click.option("--runs-dir", type=click.Path(), default="runs", show_default=True, help="Where run folders go.")
@click.option("--resume", "resume_path", type=click.Path(), help="Continue the run in this folder (only --steps, --device and --compile may change).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; print only the result.")
def train_cmd(rest: tuple[str, ...], text: str | None, image: str | None, size: str | None, font_size: int | None,
              max_pixels: int | None, config_path: str | None, name: str | None, runs_dir: str,
              resume_path: str | None, quiet: bool, **options: Any) -> None:
    """Fit a picture: PRESET (default relu_1) on the built-in OVERFIT, or --text / --image.

    \b
    Examples:
      overfit train                         # the original recipe on OVERFIT
      overfit train cos_3 --steps 20000
      overfit train --text "HELLO" --activation tanh
      overfit train fast                    # 99.9 % in about a second
      overfit train grid --mode rgb --image photo.jpg
      overfit train relu_1 --model.init torch --name relu_torch_init
      overfit train --resume runs/relu_1-20261127-120000
    """
    preset_name, overrides = _parse_rest(rest)
    for key, value in options.items():
        if value is not None:
            overrides[_OPTION_FIELDS[key]] = str(value).lower() if isinstance(value, bool) else str(value)
    overrides.update(target_overrides(text, image, size, font_size, max_pixels))

    try:
        if resume_path is not None:
            _resume(resume_path, preset_name, overrides, quiet)
        else:
            cfg = _build_config(preset_name, config_path, overrides)
            _train_new(cfg, runs_dir, name, quiet)
    except OverfitError as e:
        raise _fail(str(e)) from None


def _build_config(preset_name: str | None, config_path: str | None, overrides: dict[str, str]) -> RunConfig:
    if config_path is not None:
        if preset_name is not None:
            raise click.UsageError("give either a PRESET or --config, not both")
        path = Path(config_path)
        if not path.is_file():
            raise _fail(f"config file not found: {path}")
        try:
            cfg = RunConfig.from_json(path.read_text())
        except (OSError, UnicodeDecodeError) as e:
            raise _fail(f"cannot read config file {path}: {e}") from None
        except ConfigError as e:
            raise _fail(f"{path}: {e}") from None
    else:
        cfg = get_preset(preset_name or DEFAULT_PRESET)
    return cfg.with_overrides(overrides)


def _load_target(cfg: RunConfig):
    from .targets import load_target

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        target = load_target(cfg.data)
    for w in caught:
        click.echo(f"Warning: {w.message}", err=True)
    return target


def _train_new(cfg: RunConfig, runs_dir: str, name: str | None, quiet: bool) -> None:
    from .runs import RunFolder
    from .training import Trainer

    # Fail on bad input before any folder is made.
    target = _load_target(cfg)
    trainer = Trainer(cfg, target)
    folder = RunFolder.create(runs_dir, name, cfg.preset)
    try:
        folder.start(trainer)
        _run(trainer, folder, quiet)
    finally:
        folder.unlock()


def _resume(path: str, preset_name: str | None, overrides: dict[str, str], quiet: bool) -> None:
    from .runs import RunFolder, load_checkpoint
    from .training import Trainer

    if preset_name is not None:
        raise click.UsageError("--resume continues a run with its own config; drop the PRESET argument")
    changeable = {"schedule.steps", "device", "compile"}
    fixed = sorted(set(overrides) - changeable)
    if fixed:
        raise _fail(
            f"--resume keeps the run's config; {fixed[0]} cannot change (only --steps, --device and --compile can). "
            f"Start a new run from it with: overfit train --config {Path(path) / 'config.json'} ..."
        )
    folder = RunFolder.open(path)
    folder.lock()
    try:
        cfg = folder.config().with_overrides(overrides)
        state = load_checkpoint(folder.path)
        if state["step"] >= cfg.schedule.steps:
            raise _fail(f"run {folder.path} is already at step {state['step']} of {cfg.schedule.steps}; raise --steps to train further")
        trainer = Trainer(cfg, folder.target())
        folder.prepare_resume(trainer, state)
        if not quiet:
            click.echo(f"Resuming {folder.path} at step {trainer.step:,} of {cfg.schedule.steps:,}", err=True)
        _run(trainer, folder, quiet)
    finally:
        folder.unlock()


class _Progress:
    """tqdm progress bar fed by training events."""

    def __init__(self, trainer: Any, quiet: bool, desc: str | None = None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.cfg.schedule.steps, initial=trainer.step, unit="step", disable=quiet,
                        dynamic_ncols=True, file=sys.stderr, smoothing=0.1, desc=desc, leave=desc is None)
        self.key, self.label = ("dense_acc", "acc") if trainer.cfg.data.mode == "binary" else ("dense_psnr", "PSNR")
        self.score = trainer.history[-1][self.key] if trainer.history else math.nan
        self.loss = math.nan

    def __call__(self, event: Any) -> None:
        if event.kind == "log":
            self.loss = event.metrics["loss"]
            self.bar.update(event.step - self.bar.n)
        elif event.kind == "eval":
            self.score = event.metrics[self.key]
        loss = f"{self.loss:.4g}" if math.isfinite(self.loss) else "-"
        score = f"{self.score:.2f} dB" if self.label == "PSNR" else f"{self.score:.3f}"
        self.bar.set_postfix_str(f"loss {loss}  {self.label} {score}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _run(trainer: Any, folder: Any, quiet: bool) -> None:
    from .runs import CHECKPOINT
    from .training import TrainingDiverged

    progress = _Progress(trainer, quiet)

    def on_event(event: Any) -> None:
        progress(event)
        folder(event)

    # Ctrl-C asks the loop to stop after the current step; the checkpoint is saved there.
    previous = signal.signal(signal.SIGINT, lambda signum, frame: trainer.request_stop())
    started = time.perf_counter()
    try:
        result = trainer.run(on_event)
    except TrainingDiverged as e:
        progress.close()
        last = trainer.history[-1]["step"] if trainer.history else None
        kept = f"; the last good checkpoint (step {last:,}) is kept in {folder.path}" if last is not None and (folder.path / CHECKPOINT).exists() else ""
        raise _fail(f"{e}{kept}") from None
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()

    if result.interrupted:
        click.echo(f"Interrupted at step {result.step:,}; checkpoint saved. Continue with: overfit train --resume {folder.path}", err=True)
        sys.exit(130)
    last = result.history[-1]
    if "dense_psnr" in last:
        score = f"PSNR {last['dense_psnr']:.2f} dB, SSIM {last['dense_ssim']:.4f}"
    else:
        score = f"dense accuracy {last['dense_acc']:.4f}, ink IoU {last['dense_iou']:.4f}"
    click.echo(f"{folder.path}: {score} after {result.step:,} steps "
               f"({trainer.train_seconds:.1f} s training, {time.perf_counter() - started:.0f} s in all)")


# -- overfit render --------------------------------------------------------------

@main.command("render")
@click.argument("run", type=click.Path())
@click.option("--scale", type=float, help="Output size as a multiple of the region's size in pixels (default 1).")
@click.option("--width", "out_width", type=click.IntRange(1), help="Output width in pixels (height follows the aspect ratio unless given).")
@click.option("--height", "out_height", type=click.IntRange(1), help="Output height in pixels.")
@click.option("--region", nargs=4, type=float, metavar="Y0 Y1 X0 X1",
              help="Part of the picture to draw, in its pixel coordinates (y up from the bottom row, x from the left); default: all of it.")
@click.option("--mode", "render_mode", type=click.Choice(["probability", "class"]), default="probability", show_default=True,
              help="Binary runs: gray probability of background, or pure black and white classes.")
@click.option("--device", default="cpu", show_default=True, help="Torch device to evaluate on.")
@click.option("--backend", default="torch", show_default=True, metavar="torch|compiled|onnxruntime",
              help="Evaluate eagerly, with torch.compile (a few seconds to compile), or with onnxruntime (CPU).")
@click.option("-o", "--output", type=click.Path(), required=True, help="PNG file to write.")
def render_cmd(run: str, scale: float | None, out_width: int | None, out_height: int | None,
               region: tuple[float, float, float, float] | None, render_mode: str, device: str, backend: str,
               output: str) -> None:
    """Draw a fitted run at any size or zoom: the network is a continuous picture.

    \b
    Examples:
      overfit render runs/fast-20261127-120000 --scale 4 -o big.png
      overfit render runs/grid-... --width 4000 -o wide.png
      overfit render runs/relu_1-... --region 100 200 0 300 --scale 8 -o zoom.png
    """
    from . import render as rd
    from .export import inference_backend, load
    from .training import resolve_device

    try:
        if not output.lower().endswith(".png"):
            raise rd.RenderError(f"-o: {output} must end in .png")
        dev = resolve_device(device)
        loaded = load(run, dev)  # a run folder or a .safetensors export
        area = rd.Region(*region) if region else rd.Region.whole(loaded.height, loaded.width)
        area.check()
        out_h, out_w = rd.output_size(loaded.height, loaded.width, area, scale, out_width, out_height)
        rd.check_render_mode(loaded.mode, render_mode)
        network = inference_backend(loaded, backend, dev)
        started = time.perf_counter()
        values = rd.predict(network, loaded.mode, out_h, out_w, area, dev)
        rd.save_png(rd.render_image(values, loaded.mode, render_mode), output)
    except OverfitError as e:
        raise _fail(str(e)) from None
    seconds = time.perf_counter() - started
    click.echo(f"{output}: {out_w} x {out_h} pixels from {run} (step {loaded.step:,}) in {seconds:.1f} s "
               f"({out_w * out_h / 1e6 / max(seconds, 1e-9):.1f} megapixels/s)")


# -- overfit reproduce -----------------------------------------------------------

@main.command("reproduce")
@click.option("--steps", type=click.IntRange(1), default=None, help="Steps per run (default 20000; 100000 is the original's).")
@click.option("--eval-every", type=click.IntRange(1), default=None, help="Evaluate every N steps (default 500).")
@click.option("--seeds", type=click.IntRange(1, 100), default=None, help="Seeds per preset, for mean and spread (default 2).")
@target_options
@click.option("--loss", type=click.Choice(list(BINARY_LOSSES)), default="cross_entropy", show_default=True,
              help="double_softmax re-judges the findings with the original code's loss.")
@click.option("--init", type=click.Choice(list(INIT_NAMES)), default="original", show_default=True,
              help="torch re-judges them with PyTorch's default initialisation.")
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option("--compile/--no-compile", "compile_", default=True, show_default=True,
              help="torch.compile each run's step (falls back to eager where it cannot).")
@click.option("--out", type=click.Path(), help="Output folder (default reports/reproduce[-variant]).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def reproduce_cmd(steps: int | None, eval_every: int | None, seeds: int | None, text: str | None, image: str | None,
                  size: str | None, font_size: int | None, max_pixels: int | None, loss: str, init: str, device: str,
                  compile_: bool, out: str | None, quiet: bool) -> None:
    """Run the six presets and judge the original experiment's findings.

    Trains relu_raw, relu_1, tanh_1, cos_1, cos_3 and bn_relu on the same target
    for each seed, then writes OUT/report/index.html (open it from disk) with
    the verdicts, a grid video, curves, spectral heatmaps and a table. Running
    the same command again resumes an interrupted reproduction.
    """
    from . import reproduce as rp

    steps = steps or rp.DEFAULT_STEPS
    eval_every = eval_every or min(rp.DEFAULT_EVAL_EVERY, steps)
    seeds = seeds or rp.DEFAULT_SEEDS
    out_dir = Path(out) if out else rp.default_out(loss, init)
    overrides = {**target_overrides(text, image, size, font_size, max_pixels), "loss": loss, "model.init": init, "device": device,
                 "compile": compile_}
    try:
        runs = rp.plan(overrides, steps, eval_every, seeds)
        target = _load_target(runs[0].config)
        meta = rp.make_meta(target, steps, eval_every, seeds, loss, init, "overfit reproduce " + " ".join(sys.argv[2:]))
        click.echo(f"Reproducing in {out_dir}: 6 presets x {seeds} seed(s), {steps:,} steps each", err=True)

        def make_callback(planned: Any, trainer: Any) -> Any:
            progress = _Progress(trainer, quiet, desc=planned.name)
            signal.signal(signal.SIGINT, lambda signum, frame: trainer.request_stop())

            def on_event(event: Any) -> None:
                progress(event)
                if event.kind in ("end", "interrupt"):
                    progress.close()
            return on_event

        previous = signal.getsignal(signal.SIGINT)
        try:
            results = rp.reproduce(out_dir, target, runs, meta, make_callback, lambda line: click.echo(line, err=True))
        finally:
            signal.signal(signal.SIGINT, previous)
    except OverfitError as e:
        raise _fail(str(e)) from None
    if not results:
        click.echo("Interrupted; run the same command again to continue.", err=True)
        sys.exit(130)
    for f in results["findings"]:
        click.echo(f"{f['verdict']:<12} {f['id']}. {f['title']}")
    click.echo(f"Report: {out_dir / 'report' / 'index.html'}")


# -- overfit lab -----------------------------------------------------------------

@main.command("lab")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback lets other machines in, and the lab has no login.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where run folders go, and where existing runs are listed from.")
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser tab.")
@click.option("--max-runs", type=click.IntRange(1), default=None, help="Most runs training at once (default: the number of CPU cores).")
def lab_cmd(host: str, port: int, runs_dir: str, no_browser: bool, max_runs: int | None) -> None:
    """Start the live lab: fit pictures in the browser and watch training happen.

    Pick a target and presets, press Start, and watch the prediction, the curves and
    up to four runs side by side. Runs are ordinary run folders in --runs-dir
    (continue one with `overfit train --resume runs/NAME`); closing the tab does not
    stop them. Ctrl-C stops the lab and pauses running runs at a checkpoint.
    """
    import errno
    import socket
    import threading
    import webbrowser

    import uvicorn

    from .web.app import create_app, is_loopback

    # Bind here, before anything is printed, so a busy port is one clear error line.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except socket.gaierror as e:
        raise _fail(f"--host: cannot resolve {host!r}: {e.strerror or e}") from None
    except OSError as e:
        hint = "; another program uses it, choose another with --port" if e.errno == errno.EADDRINUSE else ""
        raise _fail(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None
    port = sock.getsockname()[1]
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    url = f"http://{local}:{port}/"
    if not is_loopback(host):
        click.echo(f"Warning: listening on {host}, so other machines can reach this lab. It has no login: anyone who "
                   "can connect can start training and upload pictures. Use the default --host 127.0.0.1 unless you "
                   "mean that.", err=True)
    app = create_app(runs_dir, max_runs=max_runs, host=host)
    click.echo(f"overfit lab: {url}   (runs in {Path(runs_dir).resolve()}; Ctrl-C to stop)")
    if not no_browser:
        threading.Timer(0.5, lambda: webbrowser.open(url)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])


# -- overfit export ----------------------------------------------------------------

@main.command("export")
@click.argument("run", type=click.Path())
@click.option("--format", "-f", "fmt", required=True, metavar="pt2|onnx|safetensors|html",
              help="pt2 (torch.export), onnx (opset 18), safetensors (weights + config) or html (a zoomable viewer).")
@click.option("--output", "-o", type=click.Path(), help="Output file (default RUN/export/model.EXT).")
def export_cmd(run: str, fmt: str, output: str | None) -> None:
    """Export the fitted network of run folder RUN, to serve it anywhere.

    Every format takes (N, 2) pixel coordinates (y, x) in the run's convention and gives
    P(background) for binary runs, or pixel values in [0, 1] for gray and rgb runs.
    The html file is a self-contained viewer: open it from disk, zoom with the wheel or
    a pinch, drag to pan; it evaluates the network on the GPU with WebGL2.

    \b
    Examples:
      overfit export runs/relu_1-20261127-120000 --format html
      overfit export runs/my_run -f onnx -o my_run.onnx
    """
    from .export import export_run

    try:
        path = export_run(run, fmt.lower(), output)
    except OverfitError as e:
        raise _fail(str(e)) from None
    click.echo(f"{path} ({path.stat().st_size / 1024:,.0f} KiB)")


if __name__ == "__main__":
    main()
