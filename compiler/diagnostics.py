"""Located problems (`file:line:col: field: message`), the error that carries them, and exit codes."""

from __future__ import annotations

from enum import IntEnum

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Iterable


class ExitCode(IntEnum):
    """Exit statuses of `specc`."""

    OK = 0
    DIFF = 1  # `specc render --check` / `diff`: rendered output differs from what is on disk; `plan --fail-on`: a gated action
    INVALID = 2  # invalid input (spec, YAML, file) or bad usage
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class Diagnostic:
    """One problem at a 1-based line and column of a file; `field` is a dotted path or "".

    Immutable and hashable. A plain class, not a dataclass: importing dataclasses (and through
    it inspect) would slow every `specc render` down.
    """

    __slots__ = ("path", "line", "col", "field", "message", "severity", "rule")

    def __init__(self, path: str, line: int, col: int, field: str, message: str,
                 severity: str = "error", rule: str | None = None):
        for name, value in zip(self.__slots__, (path, line, col, field, message, severity, rule)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Diagnostic is immutable: cannot set {name}")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is Diagnostic and other._values() == self._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"Diagnostic({', '.join(f'{n}={v!r}' for n, v in zip(self.__slots__, self._values()))})"

    def __str__(self) -> str:
        where = f"{one_line(self.path)}:{self.line}:{self.col}: "
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"

    def to_dict(self) -> dict:
        """Plain dict of the fields (stable key order)."""
        return dict(zip(self.__slots__, self._values()))

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.col, self.field, self.message)


class SpecError(Exception):
    """Raised by the load/validate stages with every problem found, sorted by path, line, col."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: list[Diagnostic] = sorted(set(diagnostics), key=Diagnostic.sort_key)
        super().__init__(format_text(self.diagnostics))

    def __str__(self) -> str:
        return format_text(self.diagnostics)


def one_line(text: str) -> str:
    """`text` as is when it is printable on one line, else quoted with escapes (JSON style)."""
    if text.isprintable():
        return text
    import json

    return json.dumps(text)


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
