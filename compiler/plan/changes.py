"""Field-level changes between two validated specs, with credentials masked, and the one-line
display of values and user text shared by the text and Markdown formats.

Values are the specs' validated data (`model_dump(exclude_none=True)`), so defaults are filled
in and a field that is not set is absent (JSON null in `--format json`), never null.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from compiler.credentials import argv_findings, named_findings
from compiler.validate import dotted
from runtime.credentials import credential_in, secret_name

#: What a masked value is replaced with.
MASK = "***"
# Keys whose value names a Secret or one of its keys rather than holding a credential.
_REFERENCE_KEYS = frozenset(("secretKeyRef", "configMapKeyRef", "fieldRef", "secretName", "accessKeyKey", "secretKeyKey"))
# Maps whose keys name their values for the literal-credential rule (env variables, annotations).
_NAMED_MAPS = ("env", "annotations")
#: Longest value shown by the text and Markdown formats (JSON shows every value whole).
MAX_SHOWN = 200


class _Absent:
    """A field that is not set on one side."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass(frozen=True)
class Change:
    """One field that differs: its dotted path and both values (ABSENT where not set; MASK
    where the value is or holds a credential)."""

    path: str
    old: Any
    new: Any

    def to_json(self) -> dict:
        return {"path": self.path, "old": None if self.old is ABSENT else self.old,
                "new": None if self.new is ABSENT else self.new}


def diff(old: Any, new: Any) -> list[Change]:
    """Every leaf that differs between two spec documents, in document order, masked."""
    out: list[Change] = []
    _diff(old, new, (), out)
    return out


def same(a: Any, b: Any) -> bool:
    """Equal with equal types all the way down (1 and 1.0 render differently)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def _diff(old: Any, new: Any, loc: tuple, out: list[Change], parents: tuple = (None, None)) -> None:
    """`parents`: the mappings that hold `old` and `new` (an env list item's name says what its value is)."""
    if same(old, new):
        return
    if isinstance(old, dict) or isinstance(new, dict):
        if isinstance(old, (dict, _Absent)) and isinstance(new, (dict, _Absent)):
            a = old if isinstance(old, dict) else {}
            b = new if isinstance(new, dict) else {}
            for k in [*a, *(k for k in b if k not in a)]:
                _diff(a.get(k, ABSENT), b.get(k, ABSENT), (*loc, k), out, (a, b))
            return
    elif _records(old) and _records(new) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            _diff(a, b, (*loc, i), out)
        return
    out.append(Change(dotted(loc), mask(loc, old, parents[0]), mask(loc, new, parents[1])))


def _records(v: Any) -> bool:
    """A list of mappings (volumes, tolerations): compared item by item."""
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def mask(loc: tuple, value: Any, parent: dict | None = None) -> Any:
    """`value` with every credential in it replaced by MASK: what the literal-credential rule
    finds (compiler/credentials.py: a string that looks like a credential, a value under a
    credential's name or a random-looking one under a key-ish name, the value of a `--password`
    flag) and, broader, everything under a credential-named key, a random-looking string under a
    key-ish name anywhere above it (neither when a key names a reference to a Secret), and the
    item after a `--password` flag whatever it holds. `parent`: the mapping that holds `value`."""
    if value is ABSENT:
        return value
    names = [k for k in loc if isinstance(k, str)]
    reference = any(k in _REFERENCE_KEYS for k in names)
    if not reference and any(secret_name(k) for k in names):
        return MASK
    if isinstance(value, str):
        own = _rule_name(loc, parent)
        under = ([own] if own is not None else []) + ([] if reference else names)
        if credential_in(value) or any(next(named_findings(loc, name, value), None) for name in under):
            return MASK
        return value
    if isinstance(value, dict):
        return {k: mask((*loc, k), v, value) for k, v in value.items()}
    if isinstance(value, list):
        out = [mask((*loc, i), v) for i, v in enumerate(value)]
        for at, _ in argv_findings(value, loc):
            out[at[-1]] = MASK
        for i in range(len(out) - 1):
            if isinstance(value[i], str) and value[i].startswith("-") and "=" not in value[i] \
                    and secret_name(value[i].lstrip("-")) and isinstance(out[i + 1], str):
                out[i + 1] = MASK
        return out
    return value


def _rule_name(loc: tuple, parent: dict | None) -> str | None:
    """The name the literal-credential rule reads a value under: its key in an env or annotations
    map, or, in a Kubernetes env list (`[{name, value}]`), its item's name."""
    if len(loc) > 1 and loc[-2] in _NAMED_MAPS and isinstance(loc[-1], str):
        return loc[-1]
    if (len(loc) > 2 and loc[-1] == "value" and isinstance(loc[-2], int) and loc[-3] == "env"
            and isinstance(parent, dict) and isinstance(parent.get("name"), str)):
        return parent["name"]
    return None


# Characters shown escaped: C0/C1 controls, line and paragraph separators, and the invisible
# ones a reviewer must see (zero-width, bidirectional overrides: "Trojan Source").
# Tag characters (U+E0000..U+E007F) spell invisible ASCII.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
                     "\ufff9-\ufffb\U000e0000-\U000e007f]")


def _escape_hidden(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def text(s: str, limit: int | None = None) -> str:
    """User text on one line: controls, line breaks and invisible characters shown as escapes
    (`\\n`, `\\u202e`); longer than `limit` cut with a count of what was left out."""
    out = _HIDDEN.sub(_escape_hidden, s)
    if limit is not None and len(out) > limit:
        out = f"{out[:limit]}... ({len(out) - limit} more characters)"
    return out


def value(v: Any, limit: int | None = MAX_SHOWN) -> str:
    """A value on one line: `(not set)` when absent, `***` when masked, else compact JSON (strings
    quoted) with hidden characters escaped."""
    if v is ABSENT:
        return "(not set)"
    if v == MASK:
        return MASK
    return text(json.dumps(v, ensure_ascii=False, separators=(", ", ": ")), limit)
