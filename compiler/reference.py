"""Write docs/spec-reference.md, the field reference, from the spec models' JSON Schema.

For every field: its path, type, default, bounds, what it does and a short example. A test fails
when the committed file is stale, and when a field lacks a description or an example: run
`python -m compiler.reference` after changing a model.

Usage: python -m compiler.reference [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "spec-reference.md"

# What the JSON Schema cannot say: rules across fields (compiler/checks.py, compiler/kinds/*,
# compiler/credentials.py), enforced by `specc validate` / `render`.
RULES_ACROSS_FIELDS = (
    "exactly one of `spec.trainer` (a built-in trainer) and `spec.container` (a custom image); `spec.image` only with a trainer",
    "a built-in trainer runs under its frameworks only (recommender: tensorflow; income: sklearn; mnist: tensorflow or pytorch); "
    "xgboost, jax and paddle take a custom image only",
    "replica types per framework: tensorflow Chief, Master, PS, Worker, Evaluator (at most one of Chief and Master); "
    "pytorch Master and Worker (both, Master exactly 1; with `elasticPolicy` Workers, a Master optional); xgboost Master "
    "(exactly 1) and Worker; jax Worker; paddle Worker and optional Master; sklearn and python one Worker with count 1 and "
    "no restartPolicy Always",
    "Chief and Master have exactly one replica",
    "`elasticPolicy` and `nprocPerNode` with pytorch only, `successPolicy` with tensorflow only; "
    "`runPolicy.cleanPodPolicy` and `schedulingPolicy` not on a batch/v1 Job; `elasticPolicy.minReplicas` <= `maxReplicas`",
    "`elasticPolicy.metrics` as the API server validates a HorizontalPodAutoscaler: each sets the one source its `type` "
    "names; the target type is one its source takes (Resource, ContainerResource: Utilization or AverageValue; Pods: "
    "AverageValue; Object, External: Value or AverageValue) and sets that type's field only, positive; metric names not "
    "`.` or `..`; selector operators In and NotIn with values, Exists and DoesNotExist without",
    "`runPolicy.suspend` not with `scheduling.queue` (Kueue owns it)",
    "`metadata.name` short enough that every pod name `<job>-<type>-<index>` (and the hash suffix) fits 63 characters",
    "volumes: exactly one source each; unique names and mount paths; names starting with `specc-` and mounts over "
    "/etc/specc are specc's",
    "env: no variable specc or the operator sets (SPECC_CONFIG, TF_CONFIG, MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, PET_*, "
    "WORKER_ADDRS, WORKER_PORT, COORDINATOR_*, NUM_PROCESSES, PROCESS_ID, PADDLE_*, POD_IP_DUMMY; "
    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY with `storage.credentials`); a reference names exactly one source",
    "limits at least their requests (`cpuLimit` >= `cpu`, `memoryLimit` >= `memory`, `ephemeralStorageLimit` >= "
    "`ephemeralStorage`)",
    "tolerations as the API server checks them: no key only with operator Exists; Exists without a value; "
    "tolerationSeconds only with effect NoExecute",
    "a trainer that reads or writes s3:// needs `spec.storage.endpoint`; the recommender needs `export_directory` or "
    "`directory_uri`; `replicas.<Type>.command` only with a custom container",
    "no literal credentials anywhere (rule literal-credential; `spec.lint.allow` accepts one field at a time)",
    "podTemplate: not the fields specc sets (the pod's restartPolicy, the main container's image, command and args, "
    "reserved env, specc- volumes, specc's labels); the merged pod has an image for every container, unique container "
    "names, mounts of existing volumes, requests within limits, and extended resources requested only at their limit",
    "every rendered object must fit what client-side apply stores (262,144 bytes of annotations)",
)


def _resolve(node: dict, defs: dict) -> dict:
    while "$ref" in node:
        node = {**defs[node["$ref"].split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _options(node: dict, defs: dict) -> list[dict]:
    node = _resolve(node, defs)
    opts = node.get("anyOf") or node.get("oneOf")
    if not opts:
        return [node]
    out = []
    for o in opts:
        out += _options(o, defs)
    return [o for o in out if o.get("type") != "null"]


def _type(node: dict, defs: dict) -> str:
    parts = []
    for o in _options(node, defs):
        if "const" in o:
            parts.append(json.dumps(o["const"]))
        elif "enum" in o:
            parts.append(" \\| ".join(json.dumps(e) for e in o["enum"]))
        elif "title" in o and o.get("type") == "object" and "properties" in o:
            parts.append(o["title"])
        elif o.get("type") == "array":
            parts.append(f"list of {_type(o.get('items', {}), defs)}")
        elif o.get("type") == "object" and isinstance(o.get("additionalProperties"), dict):
            parts.append(f"map of {_type(o['additionalProperties'], defs)}")
        elif o.get("type") == "object" and o.get("properties") and "title" not in o:
            parts.append("Kubernetes PodSpec")
        else:
            parts.append(o.get("type", "any"))
    return " or ".join(dict.fromkeys(parts))


def _bounds(node: dict, defs: dict) -> str:
    from compiler.patterns import RULES

    out = []
    for o in _options(node, defs):
        for key, words in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"),
                           ("minLength", "length >="), ("maxLength", "length <="), ("minItems", "items >="),
                           ("maxItems", "items <="), ("maxProperties", "entries <=")):
            if key in o:
                out.append(f"{words} {o[key]:,}" if isinstance(o[key], int) else f"{words} {o[key]}")
        if "pattern" in o:
            pattern = o["pattern"].removesuffix("(?!\\n)")
            out.append(RULES.get(pattern, f"pattern `{pattern}`"))
        names = o.get("propertyNames", {})
        if "pattern" in names:
            out.append("keys: " + RULES.get(names["pattern"].removesuffix("(?!\\n)"), names["pattern"]))
        if "enum" in names:
            out.append("keys: " + ", ".join(names["enum"]))
    return "; ".join(dict.fromkeys(out))


def _example(field: dict, node: dict, defs: dict):
    for src in (field, node):
        if src.get("examples"):
            return src["examples"][0]
    if field.get("default") not in (None, [], {}, ""):
        return field["default"]
    for o in _options(node, defs):
        if "const" in o:
            return o["const"]
        if o.get("enum"):
            return o["enum"][0]
        if o.get("type") == "boolean":
            return True
    raise ValueError("no example")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _rows(node: dict, path: str, defs: dict, out: list, missing: list) -> None:
    node = _resolve(node, defs)
    for name, field in node.get("properties", {}).items():
        fpath = f"{path}.{name}" if path else name
        sub = _resolve(field, defs)
        desc = field.get("description") or sub.get("description")
        if not desc:
            missing.append(f"{fpath}: no description")
        try:
            example = _example(field, sub, defs)
        except ValueError:
            missing.append(f"{fpath}: no example")
            example = None
        default = json.dumps(field["default"]) if "default" in field and field["default"] is not None else ""
        out.append(f"| `{fpath}` | {_cell(_type(field, defs))} | {_cell(default)} | {_cell(_bounds(field, defs))} | "
                   f"{_cell(desc or '')} | `{_cell(json.dumps(example, ensure_ascii=False))}` |")
        for o in _options(field, defs):
            if o.get("title") == "PodTemplate" or fpath.endswith("podTemplate.spec"):
                continue
            if "properties" in o and "title" in o:
                trainer = o["properties"].get("name", {}).get("const")
                _rows(o, f"{fpath}" + (f" (name: {trainer})" if trainer else ""), defs, out, missing)
            elif o.get("type") == "array" and "properties" in _resolve(o.get("items", {}), defs):
                _rows(o["items"], f"{fpath}[]", defs, out, missing)
            elif o.get("type") == "object" and isinstance(o.get("additionalProperties"), dict):
                for v in _options(o["additionalProperties"], defs):
                    if "properties" in v and "title" in v:
                        key = "<Type>" if name == "replicas" else "<name>"
                        _rows(v, f"{fpath}.{key}", defs, out, missing)
        if name == "podTemplate":
            _rows(sub if "properties" in sub else _options(field, defs)[0], fpath, defs, out, missing)


def build() -> tuple[str, list[str]]:
    """The reference text, and what is missing (fields without a description or an example)."""
    from compiler.schema import json_schema

    schema = json_schema()
    defs = schema["$defs"]
    rows: list[str] = []
    missing: list[str] = []
    _rows(schema, "", defs, rows, missing)
    text = [
        "# Spec reference",
        "",
        "Every field of a spec (`apiVersion: specc.dev/v1alpha1`, `kind: TrainingJob`), generated from the models by",
        "`python -m compiler.reference` (a test fails when this file is stale). `specc schema` prints the same as a JSON",
        "Schema for editors. `<Type>` is a replica type (Worker, Master, Chief, PS, Evaluator); `[]` an item of a list.",
        "A podTemplate's `spec` is any Kubernetes PodSpec field, checked against the pinned Kubernetes schema (see the",
        "Kubernetes API reference for PodSpec).",
        "",
        "## Rules across fields",
        "",
        "The JSON Schema cannot express these; `specc validate` and `specc render` check them:",
        "",
        *[f"- {r}" for r in RULES_ACROSS_FIELDS],
        "",
        "## Fields",
        "",
        "| field | type | default | bounds | what it does | example |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    return "\n".join(text), missing


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text, missing = build()
    if missing:
        print("fields need a description and an example:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    if "--check" in args:
        if not REFERENCE.exists() or REFERENCE.read_text(encoding="utf-8") != text:
            print(f"{REFERENCE.name} is stale: run python -m compiler.reference", file=sys.stderr)
            return 1
        return 0
    REFERENCE.write_text(text, encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
