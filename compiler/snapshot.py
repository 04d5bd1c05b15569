"""Write the pydantic-core schema snapshot that compiler/fastvalid.py validates with.

The snapshot is pydantic's own core schema of the spec models (TrainingJob, Replica,
RuntimeConfig), made plain JSON: model classes become their names, validator functions their
`module:name` (only from modules that import no pydantic), defaults plain values. It is
committed as compiler/spec_schema.json together with the SHA-256 of the model sources it came
from; tests regenerate it and fail when it is stale (SPECC_UPDATE_GOLDEN=1 rewrites it).

Run it in a fresh process: pydantic's schema of a model depends on which models were built
before it in the same process.

Usage: python -m compiler.snapshot [--check | --print]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from compiler.fastvalid import FORMAT, LIGHT_MODULES, SNAPSHOT, source_digest

REPO = Path(__file__).resolve().parents[1]
#: Models the snapshot can validate, and where they live.
ROOTS = {"TrainingJob": "compiler.spec", "Replica": "compiler.spec", "RuntimeConfig": "runtime.config"}
# Keys of pydantic's core schema that only serve serialization or JSON Schema.
_DROP = {"metadata", "serialization"}
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
            elif k == "default" and isinstance(v, BaseModel):
                out[k] = {"$model": v.model_dump(mode="python")}
            else:
                out[k] = _plain(v, k)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"$class": value.__name__}
    if callable(value):
        mod, name = getattr(value, "__module__", None), getattr(value, "__qualname__", "")
        if mod not in LIGHT_MODULES or "." in name or getattr(sys.modules[mod], name, None) is not value:
            raise SnapshotError(f"validator {mod}.{name} must be a top-level function of one of {', '.join(LIGHT_MODULES)}")
        return {"$fn": f"{mod}:{name}"}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise SnapshotError(f"cannot snapshot {key}={value!r} ({type(value).__name__})")


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
    if "--check" in args:
        current = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
        if current != text:
            print(f"{SNAPSHOT.relative_to(REPO)} is stale: run python -m compiler.snapshot", file=sys.stderr)
            return 1
        return 0
    SNAPSHOT.write_text(text, encoding="utf-8")
    print(f"wrote {SNAPSHOT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
