"""Validate rendered objects: the Kubeflow kinds against the real CRDs in ../shared/crds (strict:
unknown fields rejected, as the API server's field validation does; their CEL
`x-kubernetes-validations` rules evaluated with cel-python, transition rules only on an update),
core objects against the Kubernetes JSON schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import copy
import functools

import jsonschema
import yaml

from conftest import CRDS

K8S_VERSION = "1.32.0"
_CRD_FILES = {
    "TFJob": "kubeflow.org_tfjobs.yaml",
    "PyTorchJob": "kubeflow.org_pytorchjobs.yaml",
    "XGBoostJob": "kubeflow.org_xgboostjobs.yaml",
    "JAXJob": "kubeflow.org_jaxjobs.yaml",
    "PaddleJob": "kubeflow.org_paddlejobs.yaml",
}


def _strict(schema: dict) -> dict:
    """Copy of an OpenAPI schema where objects with properties reject unknown keys."""
    s = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
                    and not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(s)
    return s


@functools.cache
def crd_schema(kind: str) -> dict:
    """The v1 openAPIV3Schema of a Kubeflow kind's CRD."""
    crd = yaml.safe_load((CRDS / _CRD_FILES[kind]).read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


@functools.cache
def crd_validator(kind: str) -> jsonschema.Validator:
    schema = _strict(crd_schema(kind))
    # metadata is validated by the API server itself, not the CRD schema.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def cel_rules(schema: dict, path: str = "") -> list[tuple[str, dict]]:
    """(path of the node, rule) of every x-kubernetes-validations rule in a schema; map values are
    `*`, list items `[]`."""
    out = [(path, rule) for rule in schema.get("x-kubernetes-validations") or []]
    for name, sub in (schema.get("properties") or {}).items():
        out += cel_rules(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("additionalProperties"), dict):
        out += cel_rules(schema["additionalProperties"], f"{path}.*")
    if isinstance(schema.get("items"), dict):
        out += cel_rules(schema["items"], f"{path}[]")
    return out


def _values_at(obj, path: str) -> list:
    """The values of `obj` at a rule's path (absent ones left out)."""
    values = [obj]
    for part in path.replace("[]", ".[]").split(".") if path else []:
        nxt = []
        for v in values:
            if part == "*" and isinstance(v, dict):
                nxt += list(v.values())
            elif part == "[]" and isinstance(v, list):
                nxt += v
            elif isinstance(v, dict) and part in v:
                nxt.append(v[part])
        values = nxt
    return values


def cel_problems(kind: str, obj: dict, old: dict | None = None) -> list[str]:
    """The CEL rules of the kind's CRD that `obj` breaks: on create (`old` None) the rules without
    oldSelf, on an update from `old` also the transition rules where both objects have the value
    (as the API server evaluates them)."""
    import celpy

    env = celpy.Environment()
    problems = []
    for path, rule in cel_rules(crd_schema(kind)):
        transition = "oldSelf" in rule["rule"]
        if transition and old is None:
            continue
        program = env.program(env.compile(rule["rule"]))
        new_values, old_values = _values_at(obj, path), (_values_at(old, path) if old is not None else [])
        pairs = list(zip(new_values, old_values)) if transition else [(v, None) for v in new_values]
        for value, before in pairs:
            activation = {"self": celpy.json_to_cel(value)}
            if transition:
                activation["oldSelf"] = celpy.json_to_cel(before)
            result = program.evaluate(activation)
            if isinstance(result, celpy.CELEvalError) or not result:
                problems.append(f"{path}: {rule.get('message') or rule['rule']}")
    return problems


def validate_object(obj: dict) -> list[str]:
    """Problems with one rendered object (empty when valid)."""
    kind = obj.get("kind")
    if kind in _CRD_FILES:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator(kind).iter_errors(obj)]
        return errors + cel_problems(kind, obj)
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []
