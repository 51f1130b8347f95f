"""The report in Markdown, report.md: the same content as index.html, for places that render Markdown.

Images are linked, not embedded; the configurations are folded in <details> blocks, as
GitHub renders them.
"""

from __future__ import annotations

import html
import json
from typing import Any

from .formatting import (
    format_steps,
    format_value,
    intro,
    final_columns,
    outcome_name,
    outcome_unit,
    outcome_word,
    pct_label,
    run_facts,
    share_texts,
    step_keys,
    variant_finding,
    variant_verdict,
    variants_intro,
    wall_time,
)


def _md(text: Any) -> str:
    """Text for a Markdown table cell: pipes escaped, no newlines."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_page(results: dict) -> str:
    """report.md for `results`: the content of index.html in Markdown, images linked."""
    meta = results["meta"]
    presets = results["presets"]
    findings = results.get("findings", [])
    variants = results.get("variants") or []
    table = results.get("table", [])
    title = str(meta.get("title", "OVERFIT reproduction"))
    out = [f"# {title}", "", intro(meta, len(presets), len(findings)), ""]
    out += [f"- **{name}**: {p.get('description', '')}" for name, p in presets.items()]
    out += ["", "## Findings", ""]
    for f in findings:
        out += [f"### {f.get('id', '')}. {f.get('title', '')} — **{f.get('verdict', '')}**", ""]
        if f.get("sentence"):
            out += [f"**{f['sentence']}**", ""]
        effects = [f"- {e.get('text', '')}" for e in f.get("effects") or []]
        out += [*effects, *([""] if effects else []), str(f.get("summary", "")), ""]
        if f.get("evidence"):
            out += [f"Inside the network: {f['evidence']}", ""]
        for key, label in (("numbers", "measured"), ("thresholds", "threshold")):
            for k, v in (f.get(key) or {}).items():
                out.append(f"- {label} `{k}`: {format_value(v)}")
        out.append("")
        rows = f.get("per_seed") or []
        if rows:
            out += [f"<details><summary>per {outcome_unit(f)}</summary>", ""]
            out += [f"- {_md(outcome_name(r))}: {outcome_word(r)} — {_md(r.get('note', ''))}" for r in rows]
            out += ["", "</details>", ""]
    rules = results.get("rules") or []
    if rules:
        out += ["## Rules", "", *(f"- {r}" for r in rules), ""]
    if variants:
        out += ["## Does each finding hold under other settings?", ""]
        out.append("| finding | default | " + " | ".join(_md(v.get("name", "")) for v in variants) + " |")
        out.append("|---|---|" + "---|" * len(variants))
        for f in findings:
            cells = [_md(variant_verdict(v, f.get("id")) or "—") for v in variants]
            out.append(f"| {f.get('id', '')}. {_md(f.get('title', ''))} | {f.get('verdict', '')} | " + " | ".join(cells) + " |")
        out.append("")
    out += [
        "## Training, side by side",
        "",
        "![the six presets training side by side](grid.gif)",
        "",
        "Seed 0 of each preset, one frame per evaluation ([MP4](grid.mp4), [GIF](grid.gif)).",
        "",
        "## Learning curves",
        "",
        "![dense accuracy vs step](accuracy.png)",
        "",
        "![dense loss vs step](loss.png)",
        "",
        "## Error per frequency band",
        "",
        "![band error heatmaps](spectrum.png)",
        "",
        "## Speed and final quality",
        "",
    ]
    keys = step_keys(table)
    finals = [name for name, _ in final_columns({})]
    out.append("| preset | " + " | ".join([*(f"steps to {pct_label(k)}" for k in keys), *finals]) + " | wall time | status |")
    out.append("|---|" + "---:|" * (len(keys) + len(finals) + 1) + "---|")
    for row in table:
        cells = [format_steps(row.get("steps_to", {}).get(k, {})) for k in keys]
        cells += [text for _, text in final_columns(row)] + [wall_time(row.get("wall_seconds")), row.get("status", "")]
        out.append(f"| {_md(row.get('preset', ''))} | " + " | ".join(_md(c) for c in cells) + " |")
    out += ["", "## How each run ended", ""]
    for name, p in presets.items():
        for run in p.get("runs", []):
            if run.get("ending"):
                out.append(f"- {_md(name)}, seed {run.get('seed')}: {_md(run['ending']['text'])}")
    out += ["", "## Exact configurations", ""]
    for name, p in presets.items():
        out += [f"<details><summary>{html.escape(name)}</summary>", "", "```json", json.dumps(p.get("config", {}), indent=2), "```", "", "</details>", ""]
    out += ["## Machine and versions", "", "| | |", "|---|---|"]
    facts = {**run_facts(meta), **(meta.get("machine") or {}), **(meta.get("versions") or {})}
    out += [f"| {_md(k)} | {_md(format_value(v))} |" for k, v in facts.items()]
    out.append("")
    return "\n".join(out)


def variants_markdown_page(results: dict) -> str:
    """report.md of a reproduction with several variants: the content of its index.html in Markdown."""
    meta = results["meta"]
    variants = results.get("variants") or []
    findings = variants[0].get("findings", []) if variants else []
    out = [f"# {meta.get('title', 'OVERFIT reproduction')}", "", variants_intro(meta, len(variants), len(findings)), ""]
    out += ["## Does each finding hold under each variant?", ""]
    out.append("| finding | " + " | ".join(_md(v.get("name", "")) for v in variants) + " |")
    out.append("|---|" + "---|" * len(variants))
    for f in findings:
        cells = []
        for v in variants:
            judged = variant_finding(v, f.get("id"))
            share, interval = share_texts((judged or {}).get("share"))
            cells.append(f"**{(judged or {}).get('verdict', '—')}** {share}" + (f", {interval}" if interval else ""))
        out.append(f"| {f.get('id', '')}. {_md(f.get('title', ''))} | " + " | ".join(_md(c) for c in cells) + " |")
    out += ["", "Each cell: the verdict, the seeds (or runs) in which the finding holds of those that decide it, "
            "and the 95 % Wilson interval of that share.", ""]
    rules = results.get("rules") or []
    if rules:
        out += ["## Rules", "", *(f"- {r}" for r in rules), ""]
    out += ["## Findings, variant by variant", ""]
    for f in findings:
        out += [f"### {f.get('id', '')}. {f.get('title', '')}", ""]
        for v in variants:
            judged = variant_finding(v, f.get("id")) or {}
            out.append(f"- **{judged.get('verdict', '—')}** {v.get('name', '')}: {judged.get('sentence', '')}")
        out.append("")
    out += ["## Learning curves", "", "![dense accuracy vs step, per variant](accuracy.png)", "",
            "![dense loss vs step, per variant](loss.png)", "", "## Each variant's report", ""]
    out += [f"- {v.get('name', '')}: [report](../{v.get('folder', '')}/report/index.html), runs in `{v.get('folder', '')}/runs/`"
            for v in variants]
    out += ["", "## Machine and versions", "", "| | |", "|---|---|"]
    facts = {**{k: v for k, v in run_facts(meta).items() if k not in ("init", "loss")}, **(meta.get("machine") or {}),
             **(meta.get("versions") or {})}
    out += [f"| {_md(k)} | {_md(format_value(v))} |" for k, v in facts.items()]
    out.append("")
    return "\n".join(out)
