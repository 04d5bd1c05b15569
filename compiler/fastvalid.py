"""Validate a valid spec without importing pydantic: a walk over pydantic's own core schema.

Importing pydantic and building the spec models costs a `specc render` ~250 ms, most of a cold
run. compiler/spec_schema.json is pydantic-core's schema of those models made plain JSON
(compiler/snapshot.py writes it; tests fail when it is stale). `validate_spec` walks that schema
in strict mode over a loaded document and returns plain records with the same attributes and
values the models would have. It only ever accepts: on anything it does not fully understand,
and on every invalid value, it returns None and the caller validates with pydantic, which is
the authority and reports the problems. The snapshot is ignored unless the SHA-256 of the model
sources matches the one recorded in it, so a model edited without regenerating it cannot drift.
SPECC_NO_FASTPATH=1 turns the walker off (pydantic validates everything).
"""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path

from compiler.digest import sha256

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent
SNAPSHOT = _HERE / "spec_schema.json"
FORMAT = 1
#: The files the snapshot depends on (their SHA-256 is recorded in it and checked before use).
SOURCES = ("compiler/spec.py", "compiler/specdefs.py", "runtime/config.py", "runtime/rules.py")
#: Modules a snapshot may name validator functions from: they import no pydantic.
LIGHT_MODULES = ("compiler.specdefs", "runtime.rules")


class Unfit(Exception):
    """The value is invalid, or uses a schema feature this walker leaves to pydantic."""


class Record:
    """A validated model value: the model's fields as attributes, in field order."""

    __slots__ = ("__dict__",)

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)

    def model_dump(self, *, mode: str = "python", exclude_none: bool = False) -> dict:  # noqa: ARG002 - values are JSON-native
        """The fields as plain data, nested records included (pydantic's model_dump)."""
        return {k: _dump(v, exclude_none) for k, v in self.__dict__.items() if not (exclude_none and v is None)}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


def _dump(v: Any, exclude_none: bool) -> Any:
    if isinstance(v, Record):
        return v.model_dump(exclude_none=exclude_none)
    if isinstance(v, dict):
        return {k: _dump(x, exclude_none) for k, x in v.items()}
    if isinstance(v, list):
        return [_dump(x, exclude_none) for x in v]
    return v


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def source_digest(repo: Path = _REPO) -> str:
    """SHA-256 over the model source files (names and bytes)."""
    h = sha256()
    for rel in SOURCES:
        h.update(rel.encode() + b"\0" + (repo / rel).read_bytes() + b"\0")
    return h.hexdigest()


def _pattern(p: str) -> re.Pattern:
    """pydantic-core's (Rust) `^...$` pattern in Python's re: `$` there never matches before a newline."""
    if (not p.endswith("$") or p.endswith("\\$") or p.count("$") != 1
            or any(rust in p for rust in ("(?", "[[:", "\\p", "\\P", "\\z"))):  # syntax the engines read differently
        raise Unfit(f"pattern {p!r}")
    try:
        return re.compile(p[:-1] + r"\Z")
    except re.error:
        raise Unfit(f"pattern {p!r}") from None


#: The keys each core-schema type may carry for the walker to take it; anything else -> pydantic.
_KEYS = {
    "definitions": {"schema", "definitions"},
    "definition-ref": {"schema_ref"},
    "model": {"cls", "schema", "config", "custom_init", "root_model"},
    "model-fields": {"fields", "model_name", "computed_fields"},
    "default": {"schema", "default", "default_factory", "default_factory_takes_data"},
    "nullable": {"schema"},
    "str": {"min_length", "max_length", "pattern"},
    "int": {"ge", "gt", "le", "lt"},
    "float": {"ge", "gt", "le", "lt"},
    "bool": set(),
    "literal": {"expected"},
    "dict": {"keys_schema", "values_schema", "min_length", "max_length"},
    "list": {"items_schema", "min_length", "max_length"},
    "tagged-union": {"choices", "discriminator", "strict", "from_attributes"},
    "union": {"choices"},
    "function-before": {"function", "schema"},
    "function-after": {"function", "schema"},
}


class Validator:
    """The snapshot's models, each schema node turned into a checking function on first use."""

    def __init__(self, doc: dict):
        if doc.get("format") != FORMAT:
            raise Unfit("snapshot format")
        self.roots: dict[str, dict] = doc["roots"]
        self.refs: dict[str, dict] | None = None
        self.classes: dict[str, type] = {}
        self.made: dict[int, Callable] = {}

    def _ref(self, name: str) -> dict:
        if self.refs is None:  # pydantic keeps referenced schemas in the roots' definitions
            self.refs = {d["ref"]: d for root in self.roots.values() if root.get("type") == "definitions"
                         for d in root["definitions"] if isinstance(d.get("ref"), str)}
        if name not in self.refs:  # else look everywhere (an inline schema with a ref)
            for root in self.roots.values():
                self._index(root)
        if name not in self.refs:
            raise Unfit(f"ref {name}")
        return self.refs[name]

    def _index(self, node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("ref"), str):
                self.refs[node["ref"]] = node
            for v in node.values():
                self._index(v)
        elif isinstance(node, list):
            for v in node:
                self._index(v)

    def validate(self, root: str, data: Any) -> Any:
        """The validated value of `data` as model `root`, or raise Unfit."""
        return self.fn(self.roots[root])(data)

    def fn(self, s: dict) -> Callable[[Any], Any]:
        """The checking function of schema node `s` (made once; Unfit for what the walker leaves to pydantic)."""
        f = self.made.get(id(s))
        if f is None:
            # Made on first use, so a render pays only for the parts of the schema its specs use.
            kind = s.get("type")
            if kind not in _KEYS or set(s) - _KEYS[kind] - {"type", "ref"}:
                raise Unfit(f"schema {kind}")
            f = self.made[id(s)] = getattr(self, "m_" + kind.replace("-", "_"))(s)
        return f

    # One maker per core-schema type, in pydantic-core's strict mode.
    def m_definitions(self, s):
        return self.fn(s["schema"])

    def m_definition_ref(self, s):
        return self._lazy(lambda: self._ref(s["schema_ref"]))

    def _lazy(self, schema: Callable[[], dict]) -> Callable[[Any], Any]:
        """The checking function of schema(), made on its first call."""
        made: list = []

        def f(x):
            if not made:
                made.append(self.fn(schema()))
            return made[0](x)
        return f

    def m_model(self, s):
        cfg = s.get("config", {})
        if s.get("custom_init") or s.get("root_model") or cfg.get("extra_fields_behavior") != "forbid" or cfg.get("strict") is not True:
            raise Unfit("model")
        cls, fields = self._class(s["cls"]["$class"]), self.fn(s["schema"])

        def f(x):
            if type(x) is not dict:
                raise Unfit("not a mapping")
            return cls(fields(x))
        return f

    def _class(self, name: str) -> type:
        cls = self.classes.get(name)
        if cls is None:
            cls = self.classes[name] = type(name, (Record,), {"__slots__": ()})
        return cls

    def m_model_fields(self, s):
        if s.get("computed_fields"):
            raise Unfit("computed fields")
        plan = []
        for name, field in s["fields"].items():
            if field.get("type") != "model-field" or set(field) - {"type", "schema", "frozen"}:
                raise Unfit("field")
            fs = field["schema"]
            if fs.get("type") == "default":
                if set(fs) - _KEYS["default"] - {"type", "ref"} or fs.get("default_factory_takes_data"):
                    raise Unfit("default")
                plan.append((name, self._lazy(lambda fs=fs: fs["schema"]), self._default(fs)))
            else:
                plan.append((name, self._lazy(lambda fs=fs: fs), None))
        names = frozenset(s["fields"])

        def f(x):
            if x.keys() - names:
                raise Unfit("unknown key")
            out = {}
            for name, check, default in plan:
                if name in x:
                    out[name] = check(x[name])
                elif default is not None:
                    out[name] = default()
                else:
                    raise Unfit(f"missing {name}")
            return out
        return f

    def m_default(self, s):
        if s.get("default_factory_takes_data"):
            raise Unfit("default")
        return self.fn(s["schema"])

    def _default(self, s: dict) -> Callable[[], Any]:
        """A function making a fresh default value, as pydantic does for a missing field."""
        if "default_factory" in s:
            spec = s["default_factory"]
            if "$factory" in spec:
                return {"dict": dict, "list": list}[spec["$factory"]]
            model = self._lazy(lambda: s["schema"])
            return lambda: model({})  # a model class as factory: the model with its defaults
        d = s["default"]
        if isinstance(d, dict) and "$model" in d:
            model, data = self._lazy(lambda: s["schema"]), d["$model"]
            return lambda: model(_copy(data))
        return lambda: _copy(d)

    def m_nullable(self, s):
        inner = self.fn(s["schema"])
        return lambda x: None if x is None else inner(x)

    @staticmethod
    def _length(s: dict) -> Callable[[int], bool]:
        lo, hi = s.get("min_length", 0), s.get("max_length")
        return (lambda n: lo <= n) if hi is None else (lambda n: lo <= n <= hi)

    def m_str(self, s):
        ok_len, pattern, rx = self._length(s), s.get("pattern"), []

        def f(x):
            if type(x) is not str or not ok_len(len(x)):
                raise Unfit("str")
            if pattern is not None:
                if not rx:
                    rx.append(_pattern(pattern).search)  # compiled on first use: ~0.3 ms each
                if not rx[0](x):
                    raise Unfit("pattern")
            return x
        return f

    @staticmethod
    def _bounds(s: dict) -> Callable[[Any], bool]:
        tests = []
        if "ge" in s:
            tests.append(lambda x, b=s["ge"]: x >= b)
        if "gt" in s:
            tests.append(lambda x, b=s["gt"]: x > b)
        if "le" in s:
            tests.append(lambda x, b=s["le"]: x <= b)
        if "lt" in s:
            tests.append(lambda x, b=s["lt"]: x < b)
        return lambda x: all(t(x) for t in tests)

    def m_int(self, s):
        ok = self._bounds(s)

        def f(x):
            if type(x) is not int or not ok(x):
                raise Unfit("int")
            return x
        return f

    def m_float(self, s):
        ok = self._bounds(s)

        def f(x):
            if type(x) is not float and type(x) is not int:
                raise Unfit("float")
            try:
                x = float(x)  # strict mode takes an int for a float, as a float
            except OverflowError:
                raise Unfit("float") from None
            if x != x or x in (_INF, -_INF) or not ok(x):
                raise Unfit("float")  # nan / inf: pydantic's answer depends on the constraints
            return x
        return f

    def m_bool(self, s):
        def f(x):
            if type(x) is not bool:
                raise Unfit("bool")
            return x
        return f

    def m_literal(self, s):
        expected = [(type(e), e) for e in s["expected"]]

        def f(x):
            for t, e in expected:
                if type(x) is t and x == e:
                    return x
            raise Unfit("literal")
        return f

    def m_dict(self, s):
        if "keys_schema" not in s or "values_schema" not in s:
            raise Unfit("dict")
        ok_len, keys, values = self._length(s), self.fn(s["keys_schema"]), self.fn(s["values_schema"])

        def f(x):
            if type(x) is not dict or not ok_len(len(x)):
                raise Unfit("dict")
            return {keys(k): values(v) for k, v in x.items()}
        return f

    def m_list(self, s):
        if "items_schema" not in s:
            raise Unfit("list")
        ok_len, items = self._length(s), self.fn(s["items_schema"])

        def f(x):
            if type(x) is not list or not ok_len(len(x)):
                raise Unfit("list")
            return [items(i) for i in x]
        return f

    def m_tagged_union(self, s):
        disc = s["discriminator"]
        if not isinstance(disc, str):
            raise Unfit("tagged-union")
        choices = {tag: self.fn(c) for tag, c in s["choices"].items()}

        def f(x):
            if type(x) is not dict:
                raise Unfit("tagged-union")
            check = choices.get(x.get(disc)) if type(x.get(disc)) is str else None
            if check is None:
                raise Unfit("tag")
            return check(x)
        return f

    def m_union(self, s):
        if any(isinstance(c, list) for c in s["choices"]):
            raise Unfit("labelled union choice")
        choices = [self.fn(c) for c in s["choices"]]

        def f(x):
            results = []
            for check in choices:
                try:
                    results.append(check(x))
                except Unfit:
                    continue
            if len(results) != 1:
                raise Unfit("union")  # none, or more than one: pydantic's smart mode decides
            return results[0]
        return f

    def _function(self, s: dict) -> Callable:
        f = s["function"]
        if f.get("type") != "no-info" or set(f) != {"type", "function"}:
            raise Unfit("function")
        mod, name = f["function"]["$fn"].split(":")
        if mod not in LIGHT_MODULES:
            raise Unfit(mod)
        rule = getattr(importlib.import_module(mod), name)

        def call(x):
            try:
                return rule(x)
            except Exception:  # noqa: BLE001 - a rule that refuses the value: pydantic will say why
                raise Unfit("rule") from None
        return call

    def m_function_before(self, s):
        rule, inner = self._function(s), self.fn(s["schema"])
        return lambda x: inner(rule(x))

    def m_function_after(self, s):
        rule, inner = self._function(s), self.fn(s["schema"])
        return lambda x: rule(inner(x))


_INF = float("inf")


_validator: Validator | None | bool = False


def validator() -> Validator | None:
    """The snapshot's validator; None when it is missing, unreadable or stale (then pydantic validates)."""
    global _validator
    if os.environ.get("SPECC_NO_FASTPATH", "") not in ("", "0"):
        return None
    if _validator is False:
        try:
            doc = json.loads(SNAPSHOT.read_bytes())
            _validator = Validator(doc) if doc.get("sources") == source_digest() else None
        except (OSError, ValueError, KeyError, TypeError, Unfit):
            _validator = None
    return _validator


def validate_spec(data: Any):
    """The TrainingJob of a loaded document as records, or None (invalid, or not for this walker)."""
    v = validator()
    if v is None:
        return None
    try:
        return v.validate("TrainingJob", data)
    except Exception:  # noqa: BLE001 - Unfit, or a snapshot the walker misreads: pydantic decides
        return None


def construct_like(obj: Any, name: str, data: dict) -> Any:
    """Validate `data` as model `name` (a snapshot root) the way `obj` was: records or pydantic."""
    if isinstance(obj, Record):
        v = validator()
        if v is not None:
            try:
                return v.validate(name, data)
            except Exception:  # noqa: BLE001 - as validate_spec: pydantic decides
                pass
    from compiler.snapshot import ROOTS

    return getattr(importlib.import_module(ROOTS[name]), name).model_validate(data)
