"""The Markdown form of a plan, for a pull-request comment or GitHub's step summary, rendered
from the template compiler/templates/plan.md.jinja2 (jinja2 is imported only here).

Every string the template prints goes through one of these filters; the environment refuses
any other string (`finalize`), so a value cannot reach the page unescaped:

- `text`: inline text. Backslash escapes (CommonMark) for every character that could start
  inline syntax: emphasis, code, links, images, raw HTML, entities, strikethrough, math, table
  pipes. GitHub turns `@name`, `#123`, `GH-123`, e-mail addresses, `www.` and `scheme://` into
  links or notifications *after* Markdown, where a backslash no longer counts (cmark-gfm issues
  181 and 278, github/markup issue 1168), so a zero-width space (U+200B) is put after `@`, `#`,
  `GH`, `www` and `:` of `://`: the text reads the same and links to nothing.
- `code` / `cell`: a code span (outside / inside a table: GFM splits table cells on `|` even
  inside code, so there it is `\\|`). The fence is longer than any backtick run in the value.
  GitHub links nothing inside code; a mention-shaped `@name` still gets a zero-width space for
  the plain-text e-mail copy of a comment.

Line breaks, control and invisible characters never reach the page: compiler/plan/changes.py
`text` shows them as escapes first, so every value is one line. The template only ever prints a
value after text of its own on the same line (never where a line starts), so list, heading and
quote markers in a value stay text.
"""

from __future__ import annotations

import re
from importlib import resources

from compiler import quantity
from compiler.plan import changes, output
from compiler.plan.compare import Plan

ZWSP = "\u200b"
TEMPLATE = "templates/plan.md.jinja2"
# Characters that start inline syntax anywhere in a line (CommonMark + GFM + GitHub's math).
_INLINE = re.compile(r"([\\`*_~\[\]()<>&|#$!])")
# GitHub's after-Markdown links, broken by a zero-width space.
_LINKISH = re.compile(r"(@|#|(?i:\bgh)(?=-[0-9])|(?i:\bwww)(?=\.)|:(?=//))")
_MENTION = re.compile(r"(?<![A-Za-z0-9_`])@(?=[A-Za-z0-9])")


class Md(str):
    """Markdown that is safe to print as it is."""


def text(s: str, limit: int | None = None) -> Md:
    """User text as inline Markdown that renders as the text (on one line) and nothing else."""
    out = _INLINE.sub(r"\\\1", changes.text(str(s), limit))
    return Md(_LINKISH.sub(lambda m: m.group() + ZWSP, out))


def code(s: str, *, table: bool = False, limit: int | None = None) -> Md:
    """User text as a code span (in a table cell with `table`)."""
    s = _MENTION.sub("@" + ZWSP, changes.text(str(s), limit))
    if table:
        s = s.replace("|", "\\|")
    if s == "":
        return Md("` `")
    fence = "`" * (max((len(run) for run in re.findall("`+", s)), default=0) + 1)
    # CommonMark strips one space from each end when both ends have one (not when all spaces).
    pad = " " if s[0] == "`" or s[-1] == "`" or (s[0] == " " and s[-1] == " " and s.strip(" ")) else ""
    return Md(f"{fence}{pad}{s}{pad}{fence}")


def cell(s: str) -> Md:
    """A code span in a table cell."""
    return code(s, table=True)


def value(v) -> Md:
    """A field's value: a code span, or `(not set)`."""
    if v is changes.ABSENT:
        return Md("(not set)")
    return code(changes.value(v))


def _printable(v):
    if isinstance(v, Md) or (isinstance(v, int) and not isinstance(v, bool)) or v is None:
        return "" if v is None else v
    raise TypeError(f"the plan template printed {type(v).__name__} {v!r} without a Markdown filter")


def render(plan: Plan) -> str:
    """The plan as GitHub-flavoured Markdown."""
    import jinja2

    env = jinja2.Environment(
        autoescape=False, undefined=jinja2.StrictUndefined, finalize=_printable,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters.update(text=text, code=code, cell=cell, value=value)
    source = resources.files("compiler").joinpath(TEMPLATE).read_text(encoding="utf-8")
    totals = plan.totals
    return env.from_string(source).render(
        plan=plan,
        header=output.header(plan),
        listed=[e for e in plan.entries if e.action != "unchanged"],
        changed=[e for e in plan.entries if e.action in ("rerun", "update") and e.changes],
        totals=totals,
        gpus=output.gpus(totals),
        cpu=quantity.format_cpu(totals.cpu),
        memory=quantity.approx_memory(totals.memory),
        warnings=output.warnings(plan),
    )
