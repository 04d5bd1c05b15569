"""Write compiler/spec_schema.json: the spec models' pydantic-core schema as plain JSON.

Model classes become `{"$class": name}` and default factories `{"$factory": "dict" | "list"}` or
`{"$factory_model": name}`; keys that only serve serialization or JSON Schema are dropped. The
models hold no validator functions, so nothing else needs translating. compiler/validator.py
builds pydantic-core's SchemaValidator from the file, which is how a render validates without
importing pydantic. The file records the SHA-256 of the model sources; when they changed,
validator.py takes the schema from `build()` instead. Tests fail when the committed file is
stale: run `python -m compiler.snapshot` after changing a model.

Usage: python -m compiler.snapshot [--check | --print]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from compiler.validator import FORMAT, ROOTS, SNAPSHOT, source_digest

# Keys of pydantic's core schema that only serve serialization or JSON Schema.
_DROP = {"metadata", "serialization"}
# pydantic appends the id() of a model class to its ref ("...Replica:1402..."): not stable.
_REF_ID = re.compile(r":\d+$")


class SnapshotError(Exception):
    """The models use something the snapshot cannot express."""


def _plain(value, key: str | None = None):
    from pydantic import BaseModel

    if isinstance(value, dict):
        out = {}
        node = isinstance(value.get("type"), str)  # a schema node, not a map of field names
        for k, v in value.items():
            if node and k in _DROP:
                continue
            if k in ("ref", "schema_ref"):
                out[k] = _REF_ID.sub("", v)
            elif k == "default_factory":
                out[k] = _factory(v)
            else:
                out[k] = _plain(v, k)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"$class": value.__name__}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, BaseModel):
        raise SnapshotError(f"{key}: a model instance as default; use Field(default_factory={type(value).__name__})")
    raise SnapshotError(f"cannot snapshot {key}={value!r} ({type(value).__name__}): the models must hold data only "
                        "(types, bounds, patterns, unions), no validator functions")


def _factory(f) -> dict:
    from pydantic import BaseModel

    if f is dict or f is list:
        return {"$factory": f.__name__}
    if isinstance(f, type) and issubclass(f, BaseModel):
        return {"$factory_model": f.__name__}
    raise SnapshotError(f"default_factory {f!r} is not dict, list or a model")


def build() -> dict:
    """The snapshot document for the models as they are now."""
    import importlib

    roots = {}
    for name, module in ROOTS.items():
        cls = getattr(importlib.import_module(module), name)
        cls.model_rebuild(force=True)
        roots[name] = _plain(cls.__pydantic_core_schema__)
    return {"format": FORMAT, "sources": source_digest(), "roots": roots}


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=False, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = dumps(build())
    if "--print" in args:
        sys.stdout.write(text)
        return 0
    snapshot = Path(SNAPSHOT)
    if "--check" in args:
        current = snapshot.read_text(encoding="utf-8") if snapshot.exists() else ""
        if current != text:
            print(f"{snapshot.name} is stale: run python -m compiler.snapshot", file=sys.stderr)
            return 1
        return 0
    snapshot.write_text(text, encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
