"""The spec validator: pydantic-core's SchemaValidator over the spec models' own core schema.

compiler/spec.py and runtime/config.py define the models. Their pydantic-core schema is committed
as plain JSON (compiler/spec_schema.json, written by `python -m compiler.snapshot`) and becomes a
SchemaValidator here whose model classes are light `Record` classes, so a render imports neither
pydantic nor its typing machinery. Every validated value is a Record. When the model sources no
longer match the digest recorded in the snapshot (a model edited in a checkout), the schema is
taken from the models themselves, through the same conversion.

`Located` maps an error's pydantic-core location back onto the document (union and
discriminator tags removed, dictionary-key errors marked), and `fields_at` lists the fields a
location accepts, for "did you mean".
"""

from __future__ import annotations

import json
import os
import sys

from compiler.digest import sha256

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Any

# os.path rather than pathlib: validation runs on every render, and pathlib is a slow import.
_HERE = os.path.dirname(os.path.realpath(__file__))
SNAPSHOT = os.path.join(_HERE, "spec_schema.json")
FORMAT = 2
#: The models the snapshot holds a validator for, and their modules.
ROOTS = {"TrainingJob": "compiler.spec", "Replica": "compiler.spec", "RuntimeConfig": "runtime.config"}
#: The files the schema comes from (their SHA-256 is recorded in the snapshot).
SOURCES = ("compiler/spec.py", "compiler/patterns.py", "runtime/config.py", "runtime/contract.py")


class Record:
    """A validated model value: its fields as read-only attributes, set by pydantic-core."""

    __slots__ = ("__dict__", "__pydantic_extra__", "__pydantic_private__", "__pydantic_fields_set__")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    @property
    def model_fields_set(self) -> set[str]:
        """The fields the document set (the others hold defaults)."""
        return self.__pydantic_fields_set__

    def model_dump(self, *, mode: str = "python", exclude_none: bool = False) -> dict:  # noqa: ARG002 - values are JSON-native
        """The fields as plain data, nested records included."""
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


def source_digest() -> str:
    """SHA-256 over the model source files (names and bytes) and the replica type names the
    kinds define (the spec's replica keys)."""
    from compiler.kinds import REPLICA_TYPES

    h = sha256()
    for rel in SOURCES:
        with open(os.path.join(os.path.dirname(_HERE), rel), "rb") as f:
            h.update(rel.encode() + b"\0" + f.read() + b"\0")
    h.update(repr(REPLICA_TYPES).encode())
    return h.hexdigest()


def _core() -> Any:
    """pydantic-core's extension module. Loaded from its file when the package is not imported
    yet: the package's __init__ builds typing-heavy schema helpers that cost a render more than
    everything else it does. Any surprise falls back to the ordinary import."""
    mod = sys.modules.get("pydantic_core._pydantic_core")
    if mod is not None:
        return mod
    try:
        import importlib.machinery as machinery  # importlib.util would pull in contextlib and more

        spec = machinery.PathFinder.find_spec("pydantic_core")
        folder = os.path.dirname(spec.origin)
        for suffix in machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, f"_pydantic_core{suffix}")
            if os.path.isfile(path):
                name = "pydantic_core._pydantic_core"
                loader = machinery.ExtensionFileLoader(name, path)
                mod = loader.create_module(machinery.ModuleSpec(name, loader, origin=path))
                loader.exec_module(mod)
                sys.modules[name] = mod
                return mod
    except Exception:  # noqa: BLE001 - any oddity: the ordinary import below
        pass
    import pydantic_core

    return pydantic_core._pydantic_core


def validation_error() -> type:
    """The exception class a failed validation raises."""
    return _core().ValidationError


class Schema:
    """The snapshot document and the validators built from it (one per root, on first use)."""

    def __init__(self, doc: dict):
        self.doc = doc
        self._classes: dict[str, type] = {}
        self._validators: dict[str, Any] = {}
        self._models: dict[str, tuple[str, dict]] = {}  # class name -> (root, its model node)
        for root, node in doc["roots"].items():
            self._index(root, node)

    def _index(self, root: str, node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "model":
                self._models.setdefault(node["cls"]["$class"], (root, node))
            for v in node.values():
                self._index(root, v)
        elif isinstance(node, list):
            for v in node:
                self._index(root, v)

    def record_class(self, name: str) -> type:
        """The Record subclass standing for model `name`."""
        cls = self._classes.get(name)
        if cls is None:
            cls = self._classes[name] = type(name, (Record,), {"__slots__": ()})
        return cls

    def validator(self, root: str) -> Any:
        """pydantic-core's SchemaValidator of a root model."""
        v = self._validators.get(root)
        if v is None:
            v = self._validators[root] = _core().SchemaValidator(self._materialize(self.doc["roots"][root]))
        return v

    def _model_validator(self, name: str) -> Any:
        key = "$model:" + name
        v = self._validators.get(key)
        if v is None:
            root, node = self._models[name]
            top = self.doc["roots"][root]
            schema = self._materialize(node)
            if top.get("type") == "definitions":
                schema = {"type": "definitions", "schema": schema, "definitions": self._materialize(top["definitions"])}
            v = self._validators[key] = _core().SchemaValidator(schema)
        return v

    def _materialize(self, node: Any) -> Any:
        if isinstance(node, dict):
            if "$class" in node:
                return self.record_class(node["$class"])
            if "$factory" in node:
                return {"dict": dict, "list": list}[node["$factory"]]
            if "$factory_model" in node:
                name = node["$factory_model"]
                return lambda: self._model_validator(name).validate_python({})
            return {k: self._materialize(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._materialize(v) for v in node]
        return node


_SCHEMA: Schema | None = None


def schema() -> Schema:
    """The schema of the models as they are: the committed snapshot when it is current."""
    global _SCHEMA
    if _SCHEMA is None:
        try:
            with open(SNAPSHOT, "rb") as f:
                doc = json.loads(f.read())
            current = doc.get("format") == FORMAT and doc.get("sources") == source_digest()
        except (OSError, ValueError):
            current = False
        if not current:
            from compiler import snapshot

            doc = snapshot.build()
        _SCHEMA = Schema(doc)
    return _SCHEMA


def validate(data: Any, root: str = "TrainingJob") -> Record:
    """The validated Record of `data`; raises validation_error() listing every problem."""
    return schema().validator(root).validate_python(data)


# ------------------------------------------------------------------------ locations


def _choices(node: dict) -> list[dict]:
    return [c[0] if isinstance(c, list) else c for c in node["choices"]]


class Located:
    """Where a pydantic-core error location points in the document.

    `loc`: the path in the data (tags removed); `key`: the error is about the mapping key at
    `loc` itself; `unions`: the unions the location passed through, outermost first, each as
    (its path in the data, the schema node of the member the error came from).
    """

    __slots__ = ("loc", "key", "unions")

    def __init__(self, raw: tuple, root: str = "TrainingJob"):
        doc = schema().doc["roots"][root]
        defs: dict[str, dict] = {}
        node: Any = doc
        out: list = []
        self.key = False
        self.unions: list[tuple[tuple, dict]] = []
        parts = list(raw)
        i = 0
        while i < len(parts):
            node = _resolve(node, defs)
            t = node.get("type") if isinstance(node, dict) else None
            part = parts[i]
            if t == "model":
                node = node["schema"]
                continue
            if t == "union":
                choices = [_resolve(c, defs) for c in _choices(node)]
                node = _member(choices, part)
                self.unions.append((tuple(out), node))
                i += 1
                continue
            if t == "tagged-union":
                node = node["choices"].get(part) if isinstance(part, str) else None
                i += 1
                if node is None:
                    break
                continue
            out.append(part)
            i += 1
            if t == "model-fields":
                field = node["fields"].get(part)
                node = field["schema"] if field else None
            elif t == "dict":
                if i < len(parts) and parts[i] == "[key]":
                    self.key = True
                    i += 1
                    node = node.get("keys_schema")
                else:
                    node = node.get("values_schema")
            elif t == "list":
                node = node.get("items_schema")
            else:
                node = None
            if node is None:
                out += [p for p in parts[i:] if p != "[key]"]
                break
        self.loc = tuple(out)


def _member(choices: list[dict], tag: Any) -> dict:
    """The union member pydantic-core names `tag` in an error location: a model by its class
    name, others by their type (`int`, `constrained-int`, `literal[-1]`, ...)."""
    tag = str(tag)
    for c in choices:
        if c.get("type") == "model" and c["cls"]["$class"] == tag:
            return c
    kind = "literal" if tag.startswith("literal[") else tag.removeprefix("constrained-")
    return next((c for c in choices if c.get("type") == kind), choices[0])


def _resolve(node: Any, defs: dict[str, dict]) -> Any:
    """Unwrap definitions, references, defaults and nullables down to the node that validates."""
    while isinstance(node, dict):
        t = node.get("type")
        if t == "definitions":
            for d in node.get("definitions", []):
                defs[d["ref"]] = d
            node = node["schema"]
        elif t == "definition-ref":
            node = defs[node["schema_ref"]]
        elif t in ("default", "nullable"):
            node = node["schema"]
        else:
            return node
    return node


def fields_at(loc: tuple, data: Any, root: str = "TrainingJob") -> list[str]:
    """The field names the model at document location `loc` accepts (empty if not a model)."""
    defs: dict[str, dict] = {}
    node: Any = schema().doc["roots"][root]
    value = data
    for part in (*loc, None):
        node = _resolve(node, defs)
        t = node.get("type") if isinstance(node, dict) else None
        if t == "tagged-union":
            tag = value.get(node["discriminator"]) if isinstance(value, dict) and isinstance(node.get("discriminator"), str) else None
            node = _resolve(node["choices"].get(tag) if isinstance(tag, str) else None, defs)
        elif t == "union" and isinstance(value, dict):
            node = next((_resolve(c, defs) for c in _choices(node) if _resolve(c, defs).get("type") == "model"), None)
        t = node.get("type") if isinstance(node, dict) else None
        if t == "model":
            node = node["schema"]
            t = "model-fields"
        if part is None:
            return list(node["fields"]) if t == "model-fields" else []
        if t == "model-fields" and part in node["fields"]:
            node = node["fields"][part]["schema"]
        elif t == "dict":
            node = node.get("values_schema")
        elif t == "list":
            node = node.get("items_schema")
        else:
            return []
        value = value.get(part) if isinstance(value, dict) else (
            value[part] if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value) else None)
    return []
