"""The report's HTML page, index.html: findings, video, figures, tables, configurations.

The page opens from disk: its CSS (report.css, beside this module) is inlined, every link
is relative, nothing is fetched from the network. All text that comes from `results` is
escaped (html.escape) before it goes into the page.
"""

from __future__ import annotations

import functools
import html
import json
import math
from importlib import resources
from typing import Any

from .figures import SPECTRUM_VMAX
from .formatting import (
    format_seconds,
    format_steps,
    format_value,
    intro,
    final_columns,
    outcome_name,
    outcome_unit,
    outcome_word,
    num,
    pct_label,
    preset_colors,
    run_facts,
    share_texts,
    step_keys,
    variant_finding,
    variant_status,
    variant_verdict,
    variants_intro,
    wall_text,
    wall_time,
)

# Verdict -> (badge background, badge text). Green / red / blue / amber, readable as solid pills.
# PASS and FAIL are the verdicts of older reports, still shown beside these as variants.
VERDICT_COLORS = {
    "HOLDS": ("#1a7f37", "#ffffff"),
    "DOES NOT HOLD": ("#cf222e", "#ffffff"),
    "SOMETIMES": ("#0969da", "#ffffff"),
    "INCONCLUSIVE": ("#e3a008", "#2b1d00"),
    "PASS": ("#1a7f37", "#ffffff"),
    "FAIL": ("#cf222e", "#ffffff"),
}
UNKNOWN_VERDICT = ("#6e7781", "#ffffff")


@functools.cache
def stylesheet() -> str:
    """The page's CSS, report.css from the package data."""
    return resources.files(__package__).joinpath("report.css").read_text(encoding="utf-8")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _badge(verdict: str | None) -> str:
    if verdict is None:
        return '<span class="none">—</span>'
    bg, fg = VERDICT_COLORS.get(verdict, UNKNOWN_VERDICT)
    return f'<span class="badge" style="background:{bg};color:{fg}">{_e(verdict)}</span>'


def _dot(color: str) -> str:
    return f'<span class="dot" style="background:{color}"></span>'


def _status_class(status: str) -> str:
    return "bad" if "diverged" in status or "fail" in status else "ok"


def _kv_html(finding: dict) -> str:
    parts = []
    for group, key in (("measured", "numbers"), ("thresholds", "thresholds")):
        items = finding.get(key) or {}
        if not items:
            continue
        parts.append(f'<div class="group">{group}</div>')
        parts += [f"<dt>{_e(k)}</dt><dd>{_e(format_value(v))}</dd>" for k, v in items.items()]
    return f'<dl class="kv">{"".join(parts)}</dl>' if parts else ""


def _share_svg(share: dict | None, color: str) -> str:
    """The share of seeds where a finding holds on a 0-100 % line: its interval as a bar, the share as a dot,
    the verdict bounds as ticks; '' without a share (older reports)."""
    if not share or share.get("share") is None or not share.get("interval"):
        return ""
    width, pad = 240, 6

    def x(value: float) -> float:
        return pad + (width - 2 * pad) * min(max(value, 0.0), 1.0)

    low, high = share["interval"]
    ticks = "".join(f'<line x1="{x(b):.1f}" y1="2" x2="{x(b):.1f}" y2="16" stroke="#8c959f" stroke-dasharray="2,2"/>'
                    for b in (share.get("bounds") or []))
    label = f"{share['holds']} of {share['of']} {share.get('unit', 'seeds')} hold, {100 * low:.0f}-{100 * high:.0f} % interval"
    return (f'<svg class="share" width="{width}" height="18" role="img" aria-label="{_e(label)}">'
            f'<line x1="{x(0):.1f}" y1="9" x2="{x(1):.1f}" y2="9" stroke="#d8dee4" stroke-width="2"/>{ticks}'
            f'<line x1="{x(low):.1f}" y1="9" x2="{x(high):.1f}" y2="9" stroke="{color}" stroke-width="6" stroke-linecap="round" opacity=".45"/>'
            f'<circle cx="{x(share["share"]):.1f}" cy="9" r="4.5" fill="{color}"/></svg>')


def _per_seed_html(finding: dict) -> str:
    rows = finding.get("per_seed") or []
    if not rows:
        return ""
    items = "".join(f'<li><b>{_e(outcome_name(r))}</b>: {_e(outcome_word(r))} — {_e(r.get("note", ""))}</li>' for r in rows)
    return f'<details class="seeds"><summary>per {_e(outcome_unit(finding))}</summary><ul>{items}</ul></details>'


def _finding_html(finding: dict) -> str:
    verdict = finding.get("verdict")
    border = VERDICT_COLORS.get(verdict, UNKNOWN_VERDICT)[0]
    effects = "".join(f"<li>{_e(e.get('text', ''))}</li>" for e in finding.get("effects") or [])
    return (
        f'<article class="card" style="border-left-color:{border}">'
        f'<header><h3><span class="num">{_e(finding.get("id", ""))}.</span>{_e(finding.get("title", ""))}</h3>{_badge(verdict)}</header>'
        + (f'<p class="sentence">{_e(finding["sentence"])}</p>' if finding.get("sentence") else "")
        + _share_svg(finding.get("share"), border)
        + (f'<ul class="effects">{effects}</ul>' if effects else "")
        + f'<p>{_e(finding.get("summary", ""))}</p>'
        + (f'<p class="evidence"><b>Inside the network:</b> {_e(finding["evidence"])}</p>' if finding.get("evidence") else "")
        + f'{_kv_html(finding)}{_per_seed_html(finding)}</article>'
    )


def _rules_html(rules: list[str]) -> str:
    if not rules:
        return ""
    return '<h3 class="rules">Rules</h3><ul class="rules">' + "".join(f"<li>{_e(r)}</li>" for r in rules) + "</ul>"


def _inside_html(results: dict) -> list[str]:
    """The dead / saturated units figure and each preset's network view at its chosen steps."""
    inside = results.get("inside") or {}
    if not inside:
        return []
    parts = [
        "<h2>Inside the network</h2>",
        '<figure><a href="inside.svg"><img src="inside.png" alt="dead and saturated units over the steps"></a>'
        "<figcaption>Fraction of each hidden layer's units that are dead (solid: a ReLU that outputs 0 on every "
        "evaluation point) or saturated (dashed: tanh beyond ±0.99 on every point), seed 0. "
        '<a href="inside.svg">SVG</a></figcaption></figure>',
    ]
    for preset, data in inside.items():
        steps = data.get("view_steps") or []
        if not steps:
            continue
        cells = "".join(f'<figure class="net"><img src="net-{_e(preset)}-{step}.png" alt="{_e(preset)} at step {step:,}">'
                        f"<figcaption>step {step:,}</figcaption></figure>" for step in steps)
        parts.append(f"<h3>{_e(preset)}</h3><div class=\"nets\">{cells}</div>")
    parts.append('<p class="files">Each tile is one hidden unit\'s activation over the whole picture (blue negative, '
                 "white 0, red positive, one scale per layer); dead units are framed in red, saturated ones in orange. "
                 "Steps: the first evaluation, the one where the run " + "first reached 90 % dense accuracy (or the middle "
                 "evaluation), and the last. Any step: <code>overfit inspect RUN --step N -o net.png</code>.</p>")
    return parts


def _variants_html(findings: list[dict], variants: list[dict]) -> str:
    head = "".join(f'<th class="c">{_e(v.get("name", ""))}</th>' for v in variants)
    rows = []
    for f in findings:
        cells = "".join(f'<td class="c">{_badge(variant_verdict(v, f.get("id")))}</td>' for v in variants)
        rows.append(f'<tr><td><span class="num">{_e(f.get("id", ""))}.</span> {_e(f.get("title", ""))}</td><td class="c">{_badge(f.get("verdict"))}</td>{cells}</tr>')
    return (
        "<h2>Does each finding hold under other settings?</h2>"
        "<p>The same six findings judged again with one setting changed for every preset.</p>"
        f'<table id="variants-table"><thead><tr><th>finding</th><th class="c">default</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _steps_table_html(table: list[dict], colors: dict[str, str]) -> str:
    keys = step_keys(table)
    sub = "".join(f'<th class="n">{_e(pct_label(k))}</th>' for k in keys)
    finals = [name for name, _ in final_columns({})]
    finals_head = "".join(f'<th class="n">{_e(name)}</th>' for name in finals)
    rows = []
    for row in table:
        name = row.get("preset", "")
        cells = []
        for k in keys:
            text = format_steps(row.get("steps_to", {}).get(k, {}))
            cells.append(f'<td class="n{" none" if text == "not reached" else ""}">{_e(text)}</td>')
        status = str(row.get("status", ""))
        rows.append(
            f"<tr><td>{_dot(colors.get(name, '#888'))}<strong>{_e(name)}</strong></td>{''.join(cells)}"
            + "".join(f'<td class="n">{_e(text)}</td>' for _, text in final_columns(row))
            + f'<td class="n">{_e(wall_time(row.get("wall_seconds")))}</td>'
            f'<td class="{_status_class(status)}">{_e(status)}</td></tr>'
        )
    return (
        '<table id="steps-table"><thead>'
        f'<tr class="super"><th></th><th class="span" colspan="{len(keys)}">steps to reach accuracy</th><th colspan="{len(finals) + 2}"></th></tr>'
        f'<tr><th>preset</th>{sub}{finals_head}<th class="n">wall time</th><th>status</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _configs_html(results: dict) -> str:
    parts = []
    for name, preset in results["presets"].items():
        runs = []
        for run in preset.get("runs", []):
            label = f"seed {run.get('seed')}"
            state = run["ending"]["text"] if run.get("ending") else run.get("status", "")
            if "ending" not in run and state == "diverged" and run.get("diverged_step") is not None:
                state += f" at step {run['diverged_step']:,}"
            state += f", {format_seconds(num(run.get('wall_seconds')))}"
            if run.get("run_dir"):
                # run_dir is relative to the report's parent folder.
                label = f'<a href="../{_e(run["run_dir"])}/">{_e(label)}</a>'
            else:
                label = _e(label)
            runs.append(f"{label} ({_e(state)})")
        config = json.dumps(preset.get("config", {}), indent=2)
        parts.append(
            f'<details><summary>{_e(name)} <span class="desc">— {_e(preset.get("description", ""))}</span></summary>'
            f'<div class="runs">runs: {" · ".join(runs)}</div><pre>{_e(config)}</pre></details>'
        )
    return "".join(parts)


def _rows_html(items: dict) -> str:
    return "".join(f"<tr><td>{_e(k)}</td><td>{_e(format_value(v))}</td></tr>" for k, v in items.items())


def _tally(findings: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.get("verdict", "?")] = counts.get(f.get("verdict", "?"), 0) + 1
    return counts


def html_page(results: dict) -> str:
    """index.html for `results`: one self-contained page (inline CSS, relative links, no network)."""
    meta = results["meta"]
    presets = results["presets"]
    colors = preset_colors(list(presets))
    findings = results.get("findings", [])
    variants = results.get("variants") or []
    title = str(meta.get("title", "OVERFIT reproduction"))
    threshold = num((results.get("spectrum") or {}).get("threshold"))
    edges = (results.get("spectrum") or {}).get("band_edges") or []

    meta_bits = [
        str(meta.get("target", "")),
        f"{meta.get('width', '?')} × {meta.get('height', '?')} px",
        f"{meta.get('steps', 0):,} steps",
        f"seeds {', '.join(str(s) for s in meta.get('seeds', []))}",
        str(meta.get("started", "")).replace("T", " ")[:16],
        f"took {wall_text(meta)}",
    ]
    tally = "".join(f"{_badge(v)}<span style='margin:0 10px 0 4px'>× {n}</span>" for v, n in _tally(findings).items())
    preset_list = "".join(
        f"<dt>{_dot(colors[n])}{_e(n)}</dt><dd>{_e(p.get('description', ''))}</dd>" for n, p in presets.items()
    )
    n_seeds = len(meta.get("seeds", []))
    band_text = ""
    if len(edges) >= 2:
        band_text = f" {len(edges) - 1} bands from {edges[0]:.3g} to {edges[-1]:.3g} cycles per pixel."
    threshold_text = f"{threshold:g}" if not math.isnan(threshold) else "the threshold"

    body = [
        f"<header><h1>{_e(title)}</h1>",
        f'<div class="meta">{"".join(f"<span>{_e(b)}</span>" for b in meta_bits if b)}</div>',
        f'<div class="tally">{tally}</div></header>',
        f'<section class="intro"><p>{_e(intro(meta, len(presets), len(findings)))}</p>',
        f'<dl class="presets">{preset_list}</dl></section>',
        "<h2>Findings</h2>",
        f'<div class="findings">{"".join(_finding_html(f) for f in findings)}</div>',
        _rules_html(results.get("rules") or []),
    ]
    if variants:
        body.append(_variants_html(findings, variants))
    body += [
        "<h2>Training, side by side</h2>",
        '<figure><video src="grid.mp4" autoplay loop muted controls playsinline>'
        '<img src="grid.gif" alt="the six presets training side by side"></video>'
        "<figcaption>Seed 0 of each preset: the predicted probability of background on every pixel "
        "(white = background, black = ink, gray = undecided), one frame per evaluation. "
        'Also as <a href="grid.gif">an animated GIF</a> and <a href="grid.mp4">MP4</a>.</figcaption></figure>',
        "<h2>Learning curves</h2>",
        '<figure><a href="accuracy.svg"><img src="accuracy.png" alt="dense accuracy vs step"></a>'
        f"<figcaption>Accuracy on all pixels, mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}"
        f"{' with the min–max range shaded' if n_seeds > 1 else ''}. The dashed line is the majority "
        'class: predicting background everywhere. <a href="accuracy.svg">SVG</a></figcaption></figure>',
        '<figure><a href="loss.svg"><img src="loss.png" alt="dense loss vs step"></a>'
        '<figcaption>Loss on all pixels, log scale, same layout. <a href="loss.svg">SVG</a></figcaption></figure>',
        "<h2>What is learned first: error per frequency band</h2>",
        '<figure><a href="spectrum.svg"><img src="spectrum.png" alt="band error heatmaps"></a>'
        "<figcaption>The error of the prediction in each band of spatial frequency, relative to the "
        f"target's content in that band (0 = exact; clipped at {SPECTRUM_VMAX:g}).{_e(band_text)} "
        f"White dots: the first evaluation at which a band's error fell below {_e(threshold_text)}; "
        'gray cells: no value (e.g. after a divergence). <a href="spectrum.svg">SVG</a></figcaption></figure>',
        *_inside_html(results),
        "<h2>Speed and final quality</h2>",
        _steps_table_html(results.get("table", []), colors),
        '<p class="files" style="margin-top:10px">Steps to reach an accuracy: mean ± half the range over the seeds '
        "that reached it; final accuracy and IoU after the last step; wall time per run.</p>",
        "<h2>Exact configurations</h2>",
        _configs_html(results),
        *_machine_and_footer({**run_facts(meta), **(meta.get("machine") or {})}, meta),
    ]
    return _page(title, body)


def _machine_and_footer(facts: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """The "Machine and versions" section (`facts` beside the versions) and the page's footer."""
    return [
        "<h2>Machine and versions</h2>",
        '<div class="two"><div><table><tbody>',
        _rows_html(facts),
        "</tbody></table></div><div><table><tbody>",
        _rows_html(meta.get("versions") or {}),
        "</tbody></table></div></div>",
        f"<footer>Generated by overfit {_e((meta.get('versions') or {}).get('overfit', ''))} · "
        'all numbers also in <a href="results.json">results.json</a> next to this report.</footer>',
    ]


def _page(title: str, body: list[str]) -> str:
    """A whole self-contained page: `body`'s parts under the report's stylesheet."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>\n{stylesheet()}</style></head>\n<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )


# ----------------------------------------------------------------------------- several variants


def _variant_cell(finding: dict | None) -> str:
    """A findings x variants cell: the verdict, the share 'k/n' and its 95 % interval."""
    if finding is None:
        return f'<td class="c">{_badge(None)}</td>'
    share, interval = share_texts(finding.get("share"))
    return (f'<td class="c">{_badge(finding.get("verdict"))}<div class="cell">{_e(share)}'
            + (f'<br><span class="ci">{_e(interval)}</span>' if interval else "") + "</div></td>")


def _variants_table_html(variants: list[dict], findings: list[dict]) -> str:
    head = "".join(f'<th class="c">{_e(v.get("name", ""))}</th>' for v in variants)
    rows = []
    for f in findings:
        cells = "".join(_variant_cell(variant_finding(v, f.get("id"))) for v in variants)
        rows.append(f'<tr><td><span class="num">{_e(f.get("id", ""))}.</span> {_e(f.get("title", ""))}</td>{cells}</tr>')
    return (f'<table id="variants-table"><thead><tr><th>finding</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _variant_sentences_html(variants: list[dict], finding: dict) -> str:
    """One finding's sentence under each variant."""
    items = []
    for v in variants:
        judged = variant_finding(v, finding.get("id")) or {}
        items.append(f'<li>{_badge(judged.get("verdict"))} <b>{_e(v.get("name", ""))}</b>: {_e(judged.get("sentence", ""))}</li>')
    border = UNKNOWN_VERDICT[0]
    return (f'<article class="card" style="border-left-color:{border}"><header><h3><span class="num">{_e(finding.get("id", ""))}.</span>'
            f'{_e(finding.get("title", ""))}</h3></header><ul class="variants">{"".join(items)}</ul></article>')


def variants_html_page(results: dict) -> str:
    """index.html of a reproduction with several variants: the findings x variants table, each finding's sentence per
    variant, curves per variant, and links to each variant's full report."""
    meta = results["meta"]
    variants = results.get("variants") or []
    findings = variants[0].get("findings", []) if variants else []
    title = str(meta.get("title", "OVERFIT reproduction"))
    axes = meta.get("axes") or {}
    meta_bits = [
        str(meta.get("target", "")),
        f"{meta.get('width', '?')} × {meta.get('height', '?')} px",
        f"{meta.get('steps', 0):,} steps",
        f"seeds {', '.join(str(s) for s in meta.get('seeds', []))}",
        f"{len(variants)} variants",
        str(meta.get("started", "")).replace("T", " ")[:16],
        f"took {wall_text(meta)}",
    ]
    links = "".join(
        f'<tr><td><strong>{_e(v.get("name", ""))}</strong></td>'
        f'<td><a href="../{_e(v.get("folder", ""))}/report/index.html">report</a> · '
        f'<a href="../{_e(v.get("folder", ""))}/runs/">runs</a></td>'
        f'<td>{_e(variant_status(v))}</td></tr>'
        for v in variants)
    body = [
        f"<header><h1>{_e(title)}</h1>",
        f'<div class="meta">{"".join(f"<span>{_e(b)}</span>" for b in meta_bits if b)}</div></header>',
        f'<section class="intro"><p>{_e(variants_intro(meta, len(variants), len(findings)))}</p></section>',
        "<h2>Does each finding hold under each variant?</h2>",
        _variants_table_html(variants, findings),
        '<p class="files" style="margin-top:10px">Each cell: the verdict, the seeds (or runs) in which the finding holds '
        "of those that decide it, and the 95 % Wilson interval of that share.</p>",
        _rules_html(results.get("rules") or []),
        "<h2>Findings, variant by variant</h2>",
        f'<div class="findings">{"".join(_variant_sentences_html(variants, f) for f in findings)}</div>',
        "<h2>Learning curves</h2>",
        '<figure><a href="accuracy.svg"><img src="accuracy.png" alt="dense accuracy vs step, per variant"></a>'
        "<figcaption>Accuracy on all pixels per variant, mean over the seeds with the min–max range shaded; the dashed "
        'line is the majority class. <a href="accuracy.svg">SVG</a></figcaption></figure>',
        '<figure><a href="loss.svg"><img src="loss.png" alt="dense loss vs step, per variant"></a>'
        '<figcaption>Loss on all pixels per variant, log scale. <a href="loss.svg">SVG</a></figcaption></figure>',
        "<h2>Each variant's report</h2>",
        "<p>Each variant's own report holds its video, spectral heatmaps, steps-to table, the network's insides and the "
        "exact configurations.</p>",
        f"<table><thead><tr><th>variant</th><th>folder</th><th>runs</th></tr></thead><tbody>{links}</tbody></table>",
        *_machine_and_footer({**{k: v for k, v in run_facts(meta).items() if k not in ("init", "loss")},
                              "variants": "; ".join(f"{k}: {', '.join(vs)}" for k, vs in axes.items()), **(meta.get("machine") or {})},
                             meta),
    ]
    return _page(title, body)
