"""Pod template fragments (`spec.podTemplate`, `spec.replicas.<Type>.podTemplate`): the pinned
Kubernetes PodTemplateSpec schema they are checked against, and the strategic merge that lays
them over the pod template specc generates.

The schema is the PodTemplateSpec embedded in the pinned training-operator v1.9.4 CRDs (every v1
kind embeds the same one), made a JSON Schema: descriptions dropped, objects closed
(`additionalProperties: false`, as the API server's strict field validation), int32/int64 formats
as bounds. `python -m compiler.podtemplate` writes compiler/podtemplate.schema.json from
../shared/crds; a test fails when it is stale. Its `x-kubernetes-list-map-keys` are the merge
keys: containers and volumes merge by name, volumeMounts by mountPath, ports by containerPort
and protocol; lists without keys are replaced, maps merge key by key.

Usage: python -m compiler.podtemplate [--check] [CRD]
"""

from __future__ import annotations

import json
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Any, Iterator

SCHEMA_FILE = Path(__file__).with_name("podtemplate.schema.json")
_SOURCE_CRD = "kubeflow.org_tfjobs.yaml"
_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_SCHEMA: dict | None = None
_FRAGMENT: dict | None = None


def schema() -> dict:
    """The PodTemplateSpec JSON Schema (loaded once)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return _SCHEMA


# ---------------------------------------------------------------------------- checking


def fragment_schema() -> dict:
    """The schema of a fragment: a PodTemplateSpec without its PodSpec's required `containers`
    (a fragment adds to the generated pod, which has them)."""
    global _FRAGMENT
    if _FRAGMENT is None:
        import copy

        _FRAGMENT = copy.deepcopy(schema())
        _FRAGMENT["properties"]["spec"].pop("required", None)
    return _FRAGMENT


_VALIDATOR: Any = None


def problems(fragment: Any) -> Iterator[tuple[tuple, str, bool]]:
    """(location in the fragment, message, at the key?) for everything the schema refuses."""
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema

        _VALIDATOR = jsonschema.Draft202012Validator(fragment_schema())
    validator = _VALIDATOR
    for err in sorted(validator.iter_errors(fragment), key=lambda e: (list(map(str, e.absolute_path)), e.validator)):
        yield from _explain(err)


def _explain(err) -> Iterator[tuple[tuple, str, bool]]:
    from compiler.diagnostics import did_you_mean

    loc = tuple(err.absolute_path)
    kind, want, value = err.validator, err.validator_value, err.instance
    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(err.schema.get("properties", {}))
        for key in value:
            if key not in known:
                hint = did_you_mean(key, known)
                yield (*loc, key), f"unknown field '{key}' in a Kubernetes pod template{'; ' + hint if hint else ''}", True
    elif kind == "required":
        for name in want:
            if not isinstance(value, dict) or name not in value:
                yield loc, f"missing required field '{name}'", True
    elif kind == "type":
        words = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
                 "number": "a number", "boolean": "true or false"}
        wanted = want if isinstance(want, list) else [want]
        got = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
        hint = '; quote it: "' + str(value) + '"' if "string" in wanted and isinstance(value, (int, float)) else ""
        yield loc, f"must be {' or '.join(words.get(w, w) for w in wanted)}, got {got}{hint}", False
    elif kind == "anyOf":
        yield loc, "must be an integer or a string (a number or a quantity like 500m / a port name)", False
    elif kind == "enum":
        hint = did_you_mean(str(value), [str(w) for w in want]) if isinstance(value, str) else None
        yield loc, f"must be one of {', '.join(map(repr, want))}{'; ' + hint if hint else ''}", False
    elif kind in ("maximum", "minimum"):
        yield loc, f"must be {'at most' if kind == 'maximum' else 'at least'} {want}", False
    else:
        yield loc, err.message.split("\n")[0][:200], False


def list_keys(path: tuple) -> tuple[str, ...] | None:
    """The merge keys of the list at `path` in a pod template (None: not a keyed list)."""
    node = _node_at(path)
    return tuple(node["x-kubernetes-list-map-keys"]) if node and "x-kubernetes-list-map-keys" in node else None


def _node_at(path: tuple) -> dict | None:
    node: Any = schema()
    for part in path:
        if not isinstance(node, dict):
            return None
        if isinstance(part, int):
            node = node.get("items")
        elif "properties" in node and part in node["properties"]:
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node if isinstance(node, dict) else None


# ---------------------------------------------------------------------------- merging


def merge(base: Any, patch: Any, path: tuple = ()) -> Any:
    """`patch` laid over `base` as a strategic merge patch: maps key by key, keyed lists item by
    item (new items appended, in the patch's order), other lists and scalars replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v, (*path, k)) if k in base else v
        return out
    if isinstance(base, list) and isinstance(patch, list):
        keys = list_keys(path)
        if keys and all(isinstance(x, dict) for x in (*base, *patch)):
            out = list(base)
            index = {_key(x, keys): i for i, x in enumerate(out)}
            for item in patch:
                i = index.get(_key(item, keys))
                if i is None:
                    index[_key(item, keys)] = len(out)
                    out.append(item)
                else:
                    out[i] = merge(out[i], item, (*path, 0))
            return out
    return patch


def _key(item: dict, keys: tuple[str, ...]) -> tuple:
    # A port without a protocol is TCP (the API's default), so it merges with the generated one.
    return tuple(item.get(k, "TCP" if k == "protocol" else None) for k in keys)


# ---------------------------------------------------------------------------- the schema file


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if k not in ("description", "default")}
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.get("format") in _FORMATS and out.get("type") == "integer":
        low, high = _FORMATS[out["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def build(crds: Path) -> dict:
    """The JSON Schema derived from the pinned CRDs."""
    import yaml

    crd = yaml.safe_load((crds / _SOURCE_CRD).read_text(encoding="utf-8"))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    template = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tfReplicaSpecs"][
        "additionalProperties"]["properties"]["template"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": f"PodTemplateSpec of {_SOURCE_CRD} (training-operator v1.9.4), by python -m compiler.podtemplate",
            **_strict(template)}


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=0, sort_keys=True, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    crds = Path(next((a for a in args if not a.startswith("-")), Path(__file__).resolve().parents[2] / "shared" / "crds"))
    text = dumps(build(crds))
    if "--check" in args:
        if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text(encoding="utf-8") != text:
            print(f"{SCHEMA_FILE.name} is stale: run python -m compiler.podtemplate", file=sys.stderr)
            return 1
        return 0
    SCHEMA_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
