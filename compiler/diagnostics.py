"""Located problems (`file:line:col: field: message`), the error that carries them, and exit codes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Iterable


class ExitCode(IntEnum):
    """Exit statuses of `specc`."""

    OK = 0
    DIFF = 1  # `specc render --check` / `diff`: rendered output differs from what is on disk
    INVALID = 2  # invalid input (spec, YAML, file) or bad usage


@dataclass(frozen=True)
class Diagnostic:
    """One problem at a 1-based line and column of a file; `field` is a dotted path or ""."""

    path: str
    line: int
    col: int
    field: str
    message: str
    severity: str = "error"
    rule: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}: "
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"

    def to_dict(self) -> dict:
        """Plain dict with the dataclass fields (stable key order)."""
        return asdict(self)

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.col, self.field, self.message)


class SpecError(Exception):
    """Raised by the load/validate stages with every problem found, sorted by path, line, col."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: list[Diagnostic] = sorted(set(diagnostics), key=Diagnostic.sort_key)
        super().__init__(format_text(self.diagnostics))

    def __str__(self) -> str:
        return format_text(self.diagnostics)


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """Suggest the closest option to a misspelt `word` ("did you mean 'replicas'?"), or None."""
    import difflib

    opts = [o for o in options if isinstance(o, str)]
    if not isinstance(word, str) or not opts:
        return None
    lower = word.lower()
    for o in opts:  # same word with different case: always the best hint
        if o.lower() == lower and o != word:
            return f"did you mean {o!r}?"
    by_lower: dict[str, str] = {}
    for o in opts:
        by_lower.setdefault(o.lower(), o)
    best = difflib.get_close_matches(lower, list(by_lower), n=1, cutoff=0.6)
    if not best or by_lower[best[0]] == word:
        return None
    return f"did you mean {by_lower[best[0]]!r}?"


def format_text(diags: Iterable[Diagnostic]) -> str:
    """One `path:line:col: field: message` line per diagnostic."""
    return "\n".join(str(d) for d in diags)


def format_json(diags: Iterable[Diagnostic]) -> str:
    """Stable JSON document: {"diagnostics": [...], "errors": N} (N counts severity "error")."""
    import json

    items = [d.to_dict() for d in diags]
    errors = sum(1 for d in items if d["severity"] == "error")
    return json.dumps({"diagnostics": items, "errors": errors}, indent=2, sort_keys=True)
