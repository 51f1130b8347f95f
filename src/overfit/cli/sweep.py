"""`overfit sweep`: a hyperparameter sweep on Ray Tune, one ordinary run folder per trial.

The fixed values take the same options as `overfit train` (`cli.options`); the swept
ones come from --grid, --random, --seeds (or one --spec JSON). The spec is checked in full before Ray starts
or any folder is made. The library is `overfit.sweep`; this module adds options and words.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from .errors import fail, reported
from .options import build_config, config_options, dotted_help, read_command_line


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUES, got {item!r}", param_hint=option)
        out[key.strip()] = value
    return out


@click.command("sweep", context_settings={"ignore_unknown_options": True, "allow_extra_args": False}, epilog=dotted_help())
@click.argument("rest", nargs=-1, type=click.UNPROCESSED, metavar="[PRESET] [--section.field VALUE]...")
@config_options(seeds_help="Run every configuration with each of these seeds, e.g. 0-4 or 0,3,5 (default: --seed alone).")
@click.option("--grid", "grids", multiple=True, metavar="KEY=V1,V2,...", help="Sweep a config field over these values (every combination).")
@click.option("--random", "randoms", multiple=True, metavar="KEY=DIST",
              help="Sample a field: uniform:a:b, log:a:b, int:a:b or choice:x,y (--samples draws).")
@click.option("--samples", type=int, default=1, show_default=True, help="Random draws (each over the whole grid; TPE: trials in all).")
@click.option("--metric", default=None, help="Metric to rank, stop early and search on (default dense_acc, dense_psnr for gray/rgb).")
@click.option("--scheduler", type=click.Choice(["none", "asha"]), default="none", show_default=True,
              help="asha: stop the worst trials early at each evaluation.")
@click.option("--grace-period", type=int, default=1, show_default=True, help="ASHA: evaluations before a trial may be stopped.")
@click.option("--search", type=click.Choice(["random", "tpe"]), default="random", show_default=True,
              help="tpe: Optuna's TPE chooses each next trial (grid values become choices).")
@click.option("--max-concurrent", type=int, help="At most this many trials at once (default: one per free core).")
@click.option("--max-failures", type=int, default=2, show_default=True, help="Retries of a trial whose worker died (from its last checkpoint).")
@click.option("--address", help="Join the Ray cluster at HOST:PORT or ray://HOST:PORT (default: Ray in this process).")
@click.option("--spec", "spec_path", type=click.Path(), help="Run the sweep in this spec.json (another sweep's, or written by hand).")
@click.option("--name", help="Sweep folder name (default: sweep-YYYYmmdd-HHMMSS).")
@click.option("--sweeps-dir", type=click.Path(), default="sweeps", show_default=True, help="Where sweep folders go.")
@click.option("--resume", "resume_path", type=click.Path(), help="Continue the stopped sweep in this folder; finished trials are kept.")
def command(rest: tuple[str, ...], grids: tuple[str, ...], randoms: tuple[str, ...], samples: int,
            metric: str | None, scheduler: str, grace_period: int, search: str, max_concurrent: int | None,
            max_failures: int, address: str | None, spec_path: str | None, config_path: str | None, name: str | None,
            sweeps_dir: str, resume_path: str | None, **options: Any) -> None:
    """Sweep hyperparameters on Ray Tune: every trial is a run folder under sweeps/NAME/runs.

    \b
    Examples:
      overfit sweep relu_1 --grid model.activation=relu,tanh,cos --grid model.input_range=none,1,3
      overfit sweep grid --image photo.jpg --mode gray --grid encoding.levels=4,8,16 \\
          --random optim.lr=log:1e-4:1e-1 --samples 24 --seeds 0-1 --scheduler asha --name lr-levels
      overfit sweep --spec sweeps/lr-levels/spec.json --name again --address ray://head:10001
      overfit sweep --resume sweeps/lr-levels
    """
    from ..sweep.spec import build

    with reported():
        if resume_path is not None:
            from ..sweep.state import check_resumable

            sweep_dir = Path(resume_path).resolve()
            if not (sweep_dir / "spec.json").exists() and not (sweep_dir / "spec.json").is_symlink():
                raise fail(f"{resume_path} is not a sweep folder: it has no spec.json")
            spec = _read_spec(sweep_dir / "spec.json", in_sweep=True)
            check_resumable(sweep_dir)  # links, Ray's state and its signature: refused here, before Ray starts
            _run(spec, sweep_dir, address, resume=True)
            return
        if spec_path is not None:
            if rest or grids or randoms or options.get("seeds_text") is not None:
                raise click.UsageError("--spec holds the whole sweep; drop the PRESET, --grid, --random and --seeds arguments")
            spec = _read_spec(Path(spec_path))
            if name is not None:
                spec = dataclasses.replace(spec, name=name)
        else:
            line = read_command_line(rest, options)
            if len(line.presets) > 1:
                raise click.UsageError("give one PRESET; sweep the differences with --grid")
            base = build_config(line.presets[0] if line.presets else None, config_path, line.overrides)
            if metric is None:
                from ..modes import get_mode

                metric = get_mode(base.data.mode).headline
            import datetime

            spec = build(name or datetime.datetime.now().strftime("sweep-%Y%m%d-%H%M%S"), base.to_dict(),
                         grid=_pairs(grids, "--grid"), random=_pairs(randoms, "--random"), samples=samples, seeds=line.seeds or [],
                         metric=metric, scheduler=scheduler, search=search, max_concurrent=max_concurrent,
                         grace_period=grace_period, max_failures=max_failures)
        sweep_dir = Path(sweeps_dir).resolve() / spec.name
        if sweep_dir.exists():
            raise fail(f"sweep folder {sweep_dir} already exists; continue it with --resume {sweep_dir} or choose another --name")
        _run(spec, sweep_dir, address, resume=False)


def _read_spec(path: Path, in_sweep: bool = False) -> Any:
    """The spec in `path`: a regular file of at most its limit, never a FIFO; inside a sweep folder (`in_sweep`) no
    link either (one named with --spec may be: the user chose it)."""
    from ..safefiles import read_plain
    from ..sweep.spec import SweepSpec

    if not in_sweep:
        if not path.exists():
            raise fail(f"spec file not found: {path}")
        path = path.resolve()
    try:
        text = read_plain(path.parent, path.name, kind="sweep spec", follow_folder=True)
        return SweepSpec.from_json(text.decode())
    except (ConfigError, OSError) as e:
        raise fail(f"{path}: {e}") from None
    except UnicodeDecodeError:
        raise fail(f"{path}: not UTF-8 text") from None


def _run(spec: Any, sweep_dir: Path, address: str | None, resume: bool) -> None:
    from ..sweep import results, tune

    tune.require_ray(spec.search)
    tune.connect(address)  # an unreachable cluster fails here, before any folder is made
    import ray

    try:
        if not resume:
            sweep_dir.mkdir(parents=True)
            from ..files import write_atomic

            write_atomic(sweep_dir / "spec.json", spec.to_json())
        click.echo(f"Sweep {spec.name}: {spec.trial_count()} trials, results in {sweep_dir}", err=True)
        with tune.remembered_interrupt() as interrupted:
            try:
                grid = tune.resume_sweep(spec, sweep_dir) if resume else tune.run_sweep(spec, sweep_dir)
            except KeyboardInterrupt:
                grid = None
        if grid is None or interrupted() or tune.unfinished(grid, spec.trial_count()):
            click.echo(f"Interrupted; continue with: overfit sweep --resume {sweep_dir}", err=True)
            sys.exit(130)
        table = results.rows(spec, sweep_dir, tune.trial_records(grid))
    finally:
        ray.shutdown()
    results.write_csv(table, sweep_dir / "results.csv")
    page = results.write_report(spec, sweep_dir, table)
    stops = {s: sum(r["stop"] == s for r in table) for s in ("done", "asha-stopped", "error")}
    best = results.ranked(spec, table)
    click.echo(f"{len(table)} trials: {stops['done']} done, {stops['asha-stopped']} stopped early, {stops['error']} failed")
    if best:
        click.echo(f"best {spec.metric} {best[0]['final_' + spec.metric]:.4g}: {best[0]['run_folder']}")
    click.echo(f"{sweep_dir / 'results.csv'}\n{page}")

