"""Load stage: spec files -> plain Python data plus the line/column of every key and value.

YAML is parsed to events (libyaml through PyYAML's C parser when installed, far faster; else
ruamel.yaml's pure-Python parser) and built into plain values here with YAML 1.2 core-schema
scalars (so `yes`/`no`/`2024-01-01` stay strings, `0o17` is octal). Every problem found is
reported as a `Diagnostic` at `file:line:col` inside one `SpecError`; parsing continues past
problems that do not break the YAML itself (duplicate keys, tags, non-string keys).

Resource bounds (a spec is a small hand-written file; anything else is an attack or a mistake):
see `MAX_FILE_BYTES`, `MAX_SCALAR_CHARS`, `MAX_DEPTH`, `MAX_NODES`, `MAX_EXPANDED_CHARS`. Aliases are expanded while
counting nodes, so a "billion laughs" document is rejected after at most `MAX_NODES` nodes.
"""

from __future__ import annotations

import math
import os
import re
from compiler.diagnostics import Diagnostic, SpecError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Iterator, Sequence


MAX_SCALAR_CHARS = 64 << 10
"""Longest single scalar (64 Ki characters)."""

MAX_DEPTH = 64
"""Deepest nesting of mappings/sequences (counting aliased content where it is used)."""

MAX_NODES = 10_000
"""Most nodes (scalars + collections) in a document after expanding aliases."""

MAX_EXPANDED_CHARS = 1 << 20
"""Most characters of text (scalars) in a document after expanding aliases."""

from compiler.discover import MAX_FILE_BYTES, SPEC_SUFFIXES, discover, read_spec  # noqa: E402,F401  (re-exported)

_BACKEND = os.environ.get("SPECC_YAML_BACKEND", "")  # "libyaml", "ruamel" or "" (best available)

# Characters YAML 1.2 does not allow in a stream (complement of c-printable). Spelled as the small
# set of bad characters: the negated class of good ones is slow to compile at import.
_NON_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")

_TAG_PREFIX = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG_PREFIX + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _TAG_PREFIX + "map", _TAG_PREFIX + "seq"

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution)
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_SPECIAL_FLOATS = {
    **{s + v: sign * math.inf for v in (".inf", ".Inf", ".INF") for s, sign in (("", 1), ("+", 1), ("-", -1))},
    **{v: math.nan for v in (".nan", ".NaN", ".NAN")},
}
_MAYBE_NOT_STR = frozenset("0123456789+-.~nNtTfF")


# --------------------------------------------------------------------------- public API


class Loaded:
    """A loaded spec: its path (as given), plain data, source text and a position tree."""

    __slots__ = ("path", "data", "text", "_root")

    def __init__(self, path: str, data: Any, text: str, _root: tuple = (1, 1, None)):
        self.path, self.data, self.text, self._root = path, data, text, _root

    def __eq__(self, other: object) -> bool:
        return type(other) is Loaded and (other.path, other.data, other.text, other._root) == (
            self.path, self.data, self.text, self._root)

    __hash__ = None  # type: ignore[assignment]  # mutable data, as the dataclass it replaces

    def __repr__(self) -> str:
        return f"Loaded(path={self.path!r}, data={self.data!r}, text={self.text!r})"

    def pos(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value at `loc` (of its key with key=True).

        Parts of `loc` that are not in the data (pydantic adds union tags like 'recommender'
        or '[key]') are skipped. When the last part is missing (a missing required field) the
        answer is the nearest existing ancestor: its key if it is a mapping entry, else its value.
        """
        line, col, child = self._root
        kpos: tuple[int, int] | None = None
        found = True
        for part in loc:
            if type(child) is dict and isinstance(part, str) and part in child:
                kl, kc, line, col, child = child[part]
                kpos = (kl, kc)
                found = True
            elif type(child) is list and type(part) is int and -len(child) <= part < len(child):
                line, col, child = child[part]
                kpos = None
                found = True
            else:
                found = False
        if found:
            return kpos if key and kpos else (line, col)
        return kpos or (line, col)


def load_text(text: str, path: str) -> Loaded:
    """Parse one spec from `text`; raise SpecError with every located problem."""
    path = str(path)
    if len(text) > MAX_FILE_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise SpecError([_diag(path, 1, 1, f"file too large: more than {MAX_FILE_BYTES} bytes (limit {_human(MAX_FILE_BYTES)})")])
    body = text[1:] if text.startswith("\ufeff") else text
    bad = _NON_PRINTABLE.search(body)
    if bad:
        line, col = _line_col(body, bad.start())
        ch = bad.group()
        what = "binary data: NUL byte" if ch == "\0" else f"character U+{ord(ch):04X} is not allowed in YAML"
        raise SpecError([_diag(path, line, col, what)])
    diags: list[Diagnostic] = []
    data, root = _Builder(path, diags).build(_events(body))
    if diags:
        raise SpecError(diags)
    return Loaded(path, data, text, root)


def load_file(path: str | Path) -> Loaded:
    """Read and parse one spec file (UTF-8, optional BOM, at most MAX_FILE_BYTES)."""
    return load_bytes(read_spec(path), str(path))


def load_bytes(raw: bytes, name: str) -> Loaded:
    """Parse the bytes of a spec file already read (at most MAX_FILE_BYTES + 1 of them)."""
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError([_diag(name, 1, 1, f"file too large: more than {MAX_FILE_BYTES} bytes (limit {_human(MAX_FILE_BYTES)})")])
    nul = raw.find(b"\0")
    if nul >= 0:
        line, col = _byte_line_col(raw, nul)
        raise SpecError([_diag(name, line, col, "binary data: NUL byte (a spec must be UTF-8 text)")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _byte_line_col(raw, e.start)
        raise SpecError([_diag(name, line, col, f"not UTF-8: invalid byte 0x{raw[e.start]:02x} at byte offset {e.start}")]) from None
    return load_text(text, name)


# --------------------------------------------------------------------------- helpers


def _diag(path: str, line: int, col: int, message: str) -> Diagnostic:
    return Diagnostic(path, line, col, "", message)


def _human(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _byte_line_col(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    start = raw.rfind(b"\n", 0, offset) + 1
    return line, len(raw[start:offset].decode("utf-8", "replace")) + 1


class _Fatal(Exception):
    """Stop building: the diagnostic is already recorded."""


class _YamlSyntax(Exception):
    """A parser error from either backend, normalized."""

    def __init__(self, message: str, line: int, col: int):
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


# Event kinds
_SCALAR, _MAP_START, _SEQ_START, _END, _ALIAS, _DOC_START, _DOC_END, _STREAM_START, _STREAM_END = range(9)
_EVENT_NAMES = {
    "ScalarEvent": _SCALAR, "MappingStartEvent": _MAP_START, "SequenceStartEvent": _SEQ_START,
    "MappingEndEvent": _END, "SequenceEndEvent": _END, "AliasEvent": _ALIAS,
    "DocumentStartEvent": _DOC_START, "DocumentEndEvent": _DOC_END,
    "StreamStartEvent": _STREAM_START, "StreamEndEvent": _STREAM_END,
}


def _syntax_message(problem: str | None, context: str | None, context_mark: Any, text: str, line: int, col: int) -> str:
    lines = text.splitlines()
    row = lines[line - 1] if 0 < line <= len(lines) else ""
    if row[col - 1 : col] == "\t" and not row[: col - 1].strip(" \t"):
        return "tab character in indentation: YAML indents with spaces only"
    msg = f"invalid YAML: {problem or 'syntax error'}"
    if context:
        msg += f" ({context}"
        if context_mark is not None:
            msg += f" at line {context_mark.line + 1}, column {context_mark.column + 1}"
        msg += ")"
    if row[col - 1 : col] == "\t":
        msg += "; found a tab character here, use spaces"
    return msg


def _events(text: str) -> Iterator[tuple[int, Any]]:
    """Yield (kind, event) pairs from the fastest available backend; raise _YamlSyntax on errors."""
    backend = _BACKEND or ("libyaml" if _libyaml() is not None else "ruamel")
    if backend == "libyaml" and _libyaml() is not None:
        return _libyaml_events(text)
    return _ruamel_events(text)


_LIBYAML: Any = False


def _libyaml() -> Any:
    """PyYAML's module when its libyaml C parser is importable, else None (cached)."""
    global _LIBYAML
    if _LIBYAML is False:
        try:
            import yaml
            import yaml._yaml  # noqa: F401  (the C extension: CParser)

            _LIBYAML = yaml
        except ImportError:
            _LIBYAML = None
    return _LIBYAML


_KINDS_CACHE: dict[type, int] = {}


def _kind(ev: Any) -> int:
    t = type(ev)
    k = _KINDS_CACHE.get(t)
    if k is None:
        k = _KINDS_CACHE[t] = _EVENT_NAMES[t.__name__]
    return k


def _libyaml_events(text: str) -> Iterator[tuple[int, Any]]:
    yaml = _libyaml()
    parser = yaml._yaml.CParser(text)
    kinds = _KINDS_CACHE
    try:
        while True:
            try:
                ev = parser.get_event()
            except yaml.MarkedYAMLError as e:
                m = e.problem_mark
                line, col = (m.line + 1, m.column + 1) if m is not None else (1, 1)
                raise _YamlSyntax(_syntax_message(e.problem, e.context, e.context_mark, text, line, col), line, col) from None
            except yaml.YAMLError as e:  # ReaderError and friends
                raise _YamlSyntax(f"invalid YAML: {e}", 1, 1) from None
            k = kinds.get(type(ev))
            if k is None:
                k = _kind(ev)
            yield k, ev
            if k == _STREAM_END:
                return
    finally:
        parser.dispose()


_RUAMEL: Any = None


def _ruamel_parser_class() -> type:
    """A minimal ruamel Reader+Scanner+Parser (without importing ruamel.yaml's heavy __init__)."""
    global _RUAMEL
    if _RUAMEL is None:
        import importlib.util
        import sys

        stub = None
        before = set(sys.modules)
        if "ruamel.yaml" not in sys.modules:
            # Import only the parser modules under a stand-in package: ruamel.yaml's __init__
            # imports its whole API, several times the cost). Afterwards the stand-in and the
            # modules imported under it are dropped from sys.modules, so a later
            # `import ruamel.yaml` elsewhere gets a normal, complete package.
            spec = importlib.util.find_spec("ruamel.yaml")
            stub = sys.modules["ruamel.yaml"] = importlib.util.module_from_spec(spec)
        try:
            from ruamel.yaml.error import MarkedYAMLError
            from ruamel.yaml.parser import Parser
            from ruamel.yaml.reader import Reader
            from ruamel.yaml.scanner import Scanner
        finally:
            if stub is not None:
                for name in set(sys.modules) - before:
                    if name == "ruamel.yaml" or name.startswith("ruamel.yaml."):
                        del sys.modules[name]

        class _DocInfo:
            doc_version = None

            def __init__(self) -> None:
                self.tags: list = []

        class _RuamelParser(Reader, Scanner, Parser):
            marked_error = MarkedYAMLError

            def __init__(self, text: str) -> None:
                self.comment_handling = None
                self.processing_version = (1, 2)
                self._resolver = self
                self.doc_infos = [_DocInfo()]
                Reader.__init__(self, text, loader=self)
                Scanner.__init__(self, loader=self)
                Parser.__init__(self, loader=self)

        _RUAMEL = _RuamelParser
    return _RUAMEL


def _ruamel_events(text: str) -> Iterator[tuple[int, Any]]:
    cls = _ruamel_parser_class()
    parser = cls(text)
    while True:
        try:
            ev = parser.get_event()
        except cls.marked_error as e:
            m = e.problem_mark
            line, col = (m.line + 1, m.column + 1) if m is not None else (1, 1)
            raise _YamlSyntax(_syntax_message(e.problem, e.context, e.context_mark, text, line, col), line, col) from None
        except Exception as e:  # ruamel raises plain errors on some malformed tags/directives
            m = parser.get_mark()
            raise _YamlSyntax(f"invalid YAML: {type(e).__name__}: {e}", m.line + 1, m.column + 1) from None
        k = _kind(ev)
        yield k, ev
        if k == _STREAM_END:
            return


def _resolve_plain(v: str) -> Any:
    """YAML 1.2 core schema for an untagged plain scalar."""
    if not v:
        return None
    if v[0] not in _MAYBE_NOT_STR:
        return v
    if v in _NULLS:
        return None
    b = _BOOLS.get(v)
    if b is not None:
        return b
    if _INT_RE.match(v):
        try:
            return int(v)
        except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
            return v
    if v.startswith("0o") and len(v) > 2 and all(c in "01234567" for c in v[2:]):
        return int(v[2:], 8)
    if v.startswith("0x") and len(v) > 2 and all(c in "0123456789abcdefABCDEF" for c in v[2:]):
        return int(v[2:], 16)
    if _FLOAT_RE.match(v):
        # A number without a fractional part is an integer (2.0 reads as 2), as JSON and JSON
        # Schema (and so editors) see it; float fields take it as 2.0 again.
        f = float(v)
        return int(f) if f.is_integer() and abs(f) <= 2**63 else f
    f = _SPECIAL_FLOATS.get(v)
    return v if f is None else f


_TYPE_NAMES = {dict: "a mapping", list: "a list", int: "an integer", float: "a number", bool: "a boolean", type(None): "null"}


class _Frame:
    __slots__ = ("is_map", "value", "pos", "key", "kl", "kc", "line", "col", "anchor", "size", "height", "chars")

    def __init__(self, is_map: bool, line: int, col: int, anchor: str | None):
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.pos: Any = {} if is_map else []
        self.key: Any = _NOKEY
        self.kl = self.kc = 0
        self.line, self.col = line, col
        self.anchor = anchor
        self.size = 1
        self.height = 1
        self.chars = 0


_NOKEY = object()
_SKIP = object()  # a key that is reported (duplicate / not a string): drop its value
_BAD = object()  # a scalar already reported (bad tag, too long): no further complaints about it


def copy_tree(v: Any) -> Any:
    """A copy of a loaded document's dicts and lists (scalars shared)."""
    if type(v) is dict:
        return {k: copy_tree(x) for k, x in v.items()}
    if type(v) is list:
        return [copy_tree(x) for x in v]
    return v


class _Builder:
    """Turns one stream of events into (data, position tree), recording diagnostics."""

    def __init__(self, path: str, diags: list[Diagnostic]):
        self.path = path
        self.diags = diags
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, Any, int, int] | None] = {}
        self.count = 0
        self.chars = 0
        self.root: tuple | None = None

    def error(self, line: int, col: int, message: str) -> None:
        self.diags.append(Diagnostic(self.path, line, col, "", message))

    def fatal(self, line: int, col: int, message: str) -> _Fatal:
        self.error(line, col, message)
        return _Fatal()

    def build(self, events: Iterator[tuple[int, Any]]) -> tuple[Any, tuple]:
        try:
            self._run(events)
        except _YamlSyntax as e:
            self.error(e.line, e.col, e.message)
        except _Fatal:
            pass
        if self.diags:
            return None, (1, 1, None)
        if self.root is None:
            self.error(1, 1, "empty spec: the file has no YAML document")
            return None, (1, 1, None)
        value, line, col, child = self.root
        if value is None:
            self.error(line, col, "empty spec: the document is null")
        elif type(value) is not dict:
            self.error(line, col, f"a spec must be a mapping at the top level, found {_TYPE_NAMES.get(type(value), 'a string')}")
        return value, (line, col, child)

    def _run(self, events: Iterator[tuple[int, Any]]) -> None:
        stack = self.stack
        docs = 0
        for kind, ev in events:
            if kind == _SCALAR:
                m = ev.start_mark
                line, col = m.line + 1, m.column + 1
                self.count += 1
                if self.count > MAX_NODES:
                    self._count(0, line, col)
                v = ev.value
                if len(v) > MAX_SCALAR_CHARS:
                    self.error(line, col, f"scalar too long: {len(v)} characters (limit {MAX_SCALAR_CHARS})")
                    v = _BAD
                else:
                    tag = ev.tag
                    if tag is None:
                        if ev.implicit[0]:
                            v = _resolve_plain(v)
                            if v == "<<" and stack and stack[-1].is_map and stack[-1].key is _NOKEY:
                                self.error(line, col, "merge keys ('<<') are not supported (YAML 1.2); write the fields out or alias a whole value")
                    elif tag != _STR and tag != "!":
                        v = self._tagged_scalar(tag, v, line, col)
                chars = len(ev.value)
                self.chars += chars
                if self.chars > MAX_EXPANDED_CHARS:
                    self._count_chars(0, line, col)
                if ev.anchor is not None:
                    self._anchor(ev.anchor, v, None, 1, 0, chars)
                self._attach(v, line, col, None, 1, 0, chars)
            elif kind == _END:
                f = stack.pop()
                if f.anchor is not None:
                    self.anchors[f.anchor] = (f.value, f.pos, f.size, f.height, f.chars)
                if f.is_map and f.key is not _NOKEY and f.key is not _SKIP:  # cannot happen with a valid parser
                    f.value[f.key] = None
                self._attach(f.value, f.line, f.col, f.pos, f.size, f.height, f.chars)
            elif kind == _MAP_START or kind == _SEQ_START:
                m = ev.start_mark
                line, col = m.line + 1, m.column + 1
                if len(stack) >= MAX_DEPTH:
                    raise self.fatal(line, col, f"nesting deeper than {MAX_DEPTH} levels")
                self._count(1, line, col)
                tag = ev.tag
                if tag is not None and tag != "!" and tag != (_MAP if kind == _MAP_START else _SEQ):
                    self.error(line, col, _unsupported(tag))
                if ev.anchor is not None:
                    self.anchors[ev.anchor] = None  # being defined: an alias to it is recursive
                stack.append(_Frame(kind == _MAP_START, line, col, ev.anchor))
            elif kind == _ALIAS:
                m = ev.start_mark
                line, col = m.line + 1, m.column + 1
                name = ev.anchor
                if name not in self.anchors:
                    self.error(line, col, f"undefined alias '*{name}'")
                    self._attach(_BAD, line, col, None, 1, 0, 0)
                    continue
                target = self.anchors[name]
                if target is None:
                    raise self.fatal(line, col, f"recursive alias '*{name}' (refers to a node that contains it)")
                value, pos, size, height, chars = target
                self._count(size, line, col, alias=name)
                self._count_chars(chars, line, col, alias=name)
                if len(stack) + height > MAX_DEPTH:
                    raise self.fatal(line, col, f"nesting deeper than {MAX_DEPTH} levels (through alias '*{name}')")
                self._attach(copy_tree(value), line, col, pos, size, height, chars)
            elif kind == _DOC_START:
                docs += 1
                if docs > 1:
                    m = ev.start_mark
                    raise self.fatal(m.line + 1, m.column + 1, "one spec per file; found a second document here")
                self.anchors = {}

    def _count(self, n: int, line: int, col: int, alias: str | None = None) -> None:
        self.count += n
        if self.count > MAX_NODES:
            via = f" (alias '*{alias}' expands to {n} nodes)" if alias else ""
            raise self.fatal(line, col, f"document too large: more than {MAX_NODES} nodes after expanding aliases{via}")

    def _count_chars(self, n: int, line: int, col: int, alias: str | None = None) -> None:
        self.chars += n
        if self.chars > MAX_EXPANDED_CHARS:
            via = f" (alias '*{alias}' expands to {n} characters)" if alias else ""
            raise self.fatal(line, col, f"document too large: more than {MAX_EXPANDED_CHARS} characters of text "
                                        f"after expanding aliases{via}")

    def _anchor(self, name: str, value: Any, pos: Any, size: int, height: int, chars: int) -> None:
        self.anchors[name] = (value, pos, size, height, chars)

    def _tagged_scalar(self, tag: str, v: str, line: int, col: int) -> Any:
        """An explicitly tagged scalar: core-schema tags only."""
        if tag == _INT or tag == _FLOAT or tag == _BOOL or tag == _NULL:
            r = _resolve_plain(v)
            want = {_INT: int, _FLOAT: float, _BOOL: bool, _NULL: type(None)}[tag]
            if want is float and type(r) is int:
                r = float(r)
            if type(r) is want:
                return r
            self.error(line, col, f"cannot read {v!r} as {_short_tag(tag)}")
            return _BAD
        self.error(line, col, _unsupported(tag))
        return _BAD

    def _attach(self, v: Any, line: int, col: int, pos: Any, size: int, height: int, chars: int) -> None:
        stack = self.stack
        if not stack:
            self.root = (v, line, col, pos)
            return
        f = stack[-1]
        f.size += size
        f.chars += chars
        if height + 1 > f.height:
            f.height = height + 1
        if not f.is_map:
            f.value.append(v)
            f.pos.append((line, col, pos))
            return
        k = f.key
        if k is _NOKEY:  # this node is a key
            if type(v) is str:
                first = f.pos.get(v)
                if first is not None:
                    self.error(line, col, f"duplicate key {v!r} (first defined at line {first[0]})")
                    f.key = _SKIP
                else:
                    f.key, f.kl, f.kc = v, line, col
            elif v is _BAD:
                f.key = _SKIP
            else:
                what = _TYPE_NAMES.get(type(v), "a string")
                shown = f" {v!r}" if type(v) in (int, float, bool) else ""
                self.error(line, col, f"mapping keys must be strings, found {what}{shown} (quote it)")
                f.key = _SKIP
            return
        if k is not _SKIP:
            f.value[k] = v
            f.pos[k] = (f.kl, f.kc, line, col, pos)
        f.key = _NOKEY


def _unsupported(tag: str) -> str:
    return f"unsupported YAML tag {_short_tag(tag)} (only plain YAML data is allowed)"


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG_PREFIX):] if tag.startswith(_TAG_PREFIX) else tag
