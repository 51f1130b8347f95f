"""The notebook widget's front end as one ES module and one style sheet, built from the lab page's own files.

anywidget loads one module (`_esm`) and one style sheet (`_css`), and a notebook cannot
fetch the lab's files from a server. So the widget's module (`widget.js`, beside this file)
imports the lab's views, state and charts (web/static/js) by relative paths, as the page's
controller does, and `module_source` links them into one module: each file becomes a
function scope that returns its exports, in dependency order, and each
`import { a, b as c } from "./x.js"` becomes `const { a, b: c } = x`. Nothing is copied:
the widget draws with the very `Views` the page uses.

The style sheet is the lab's `style.css` scoped under `.overfit-widget` (CSS nesting),
its `:root` variables moved onto the widget's element and its `body` rule dropped, so
the lab's look does not leak into the notebook around it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
LAB_JS = HERE.parent / "web" / "static" / "js"
LAB_CSS = HERE.parent / "web" / "static" / "style.css"
ENTRY = "widget.js"
SCOPE = "overfit-widget"

# import { a, b as c } from "./x.js";   (the names may span lines)
IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"\./([\w-]+)\.js";?[ \t]*$', re.MULTILINE)
# export function f / export async function f / export class C / export const X / export let x
EXPORT = re.compile(r"^export\s+((?:async\s+)?function\*?|class|const|let)\s+([\w$]+)", re.MULTILINE)


def _file(name: str) -> Path:
    """A module by file name: the widget's own beside this file, else the lab page's."""
    own = HERE / name
    return own if own.is_file() else LAB_JS / name


def _link(name: str, order: list[str], seen: set[str], sources: dict[str, str]) -> None:
    """Depth first: every module `name` imports comes before it in `order`."""
    if name in seen:
        return
    seen.add(name)
    text = _file(name).read_text(encoding="utf-8")
    sources[name] = text
    for _, dep in IMPORT.findall(text):
        _link(f"{dep}.js", order, seen, sources)
    order.append(name)


def _var(name: str) -> str:
    return "__" + re.sub(r"\W", "_", name.removesuffix(".js"))


def _imports_read_linked(text: str) -> str:
    """`import { a, b as c } from "./x.js"` -> `const { a, b: c } = __x;` (x is linked before this module)."""
    def const(m: re.Match[str]) -> str:
        names = [n.strip().replace(" as ", ": ") for n in m.group(1).split(",") if n.strip()]
        return f"const {{ {', '.join(names)} }} = {_var(m.group(2))};"

    return IMPORT.sub(const, text)


def _scoped(name: str, text: str) -> str:
    """One module as a function scope returning its exports; its imports read the modules linked before it."""
    body = _imports_read_linked(text)
    exported = [m.group(2) for m in EXPORT.finditer(body)]
    body = EXPORT.sub(lambda m: f"{m.group(1)} {m.group(2)}", body)
    if re.search(r"^export\s", body, re.MULTILINE) and name != ENTRY:
        raise ValueError(f"{name}: only `export function/class/const/let NAME` is linked for the notebook widget")
    return f"// ---- {name}\nconst {_var(name)} = (() => {{\n{body}\nreturn {{ {', '.join(exported)} }};\n}})();\n"


@cache
def module_source() -> str:
    """The widget's ES module: the lab's modules it uses, each in its own scope, then the widget's `export default`."""
    order: list[str] = []
    sources: dict[str, str] = {}
    _link(ENTRY, order, set(), sources)
    parts = [_scoped(name, sources[name]) for name in order if name != ENTRY]
    return "\n".join(parts) + f"// ---- {ENTRY}\n" + _imports_read_linked(sources[ENTRY])


@cache
def style_source() -> str:
    """The lab's style sheet, scoped to the widget's element."""
    css = LAB_CSS.read_text(encoding="utf-8")
    css = re.sub(r"^body\s*\{[^}]*\}\s*$", "", css, flags=re.MULTILINE)  # the page's full-window layout
    css = re.sub(r"^:root\s*\{", "& {", css, flags=re.MULTILINE)
    css = re.sub(r"^\*\s*\{", "&, & * {", css, flags=re.MULTILINE)
    widget = (HERE / "widget.css").read_text(encoding="utf-8")
    return f".{SCOPE} {{\n{css}\n{widget}\n}}\n"
