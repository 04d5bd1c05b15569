"""Validate rendered objects: the Kubeflow v1 kinds against the training-operator CRDs in
../shared/crds, TrainJob and (Cluster)TrainingRuntime against the Trainer v2.3.0 CRDs in
../shared/crds/trainer-v2 (strict: unknown fields rejected, as the API server's field validation
does; and their CEL `x-kubernetes-validations` rules, evaluated with cel-python: on create the
rules without oldSelf, on an update also the transition rules), core objects against the
Kubernetes JSON schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import copy
import functools

import jsonschema
import yaml

from conftest import CRDS

K8S_VERSION = "1.32.0"
#: kind -> (CRD file under ../shared/crds, served version).
_CRD_FILES = {
    "TFJob": ("kubeflow.org_tfjobs.yaml", "v1"),
    "PyTorchJob": ("kubeflow.org_pytorchjobs.yaml", "v1"),
    "XGBoostJob": ("kubeflow.org_xgboostjobs.yaml", "v1"),
    "JAXJob": ("kubeflow.org_jaxjobs.yaml", "v1"),
    "PaddleJob": ("kubeflow.org_paddlejobs.yaml", "v1"),
    "TrainJob": ("trainer-v2/trainer.kubeflow.org_trainjobs.yaml", "v1alpha1"),
    "TrainingRuntime": ("trainer-v2/trainer.kubeflow.org_trainingruntimes.yaml", "v1alpha1"),
    "ClusterTrainingRuntime": ("trainer-v2/trainer.kubeflow.org_clustertrainingruntimes.yaml", "v1alpha1"),
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
    """The openAPIV3Schema of a kind's CRD, as the CRD file holds it."""
    name, served = _CRD_FILES[kind]
    crd = yaml.safe_load((CRDS / name).read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == served)["schema"]["openAPIV3Schema"]


@functools.cache
def crd_validator(kind: str) -> jsonschema.Validator:
    schema = _strict(crd_schema(kind))
    # metadata is validated by the API server itself, not the CRD schema.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def cel_rules(kind: str) -> list[tuple[str, str, str]]:
    """(path, rule, message) of every x-kubernetes-validations rule of a kind's CRD; map values are
    `*`, list items `[]`, the root `.`."""
    out = []

    def walk(node: dict, path: str) -> None:
        for r in node.get("x-kubernetes-validations") or []:
            out.append((path or ".", r["rule"], r.get("message", r["rule"])))
        for k, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{k}" if path else k)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")

    walk(crd_schema(kind), "")
    return out


@functools.cache
def _cel_program(rule: str):
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(rule))


_ABSENT = object()


def cel_problems(obj: dict, old: dict | None = None) -> list[str]:
    """The CRD rules `obj` breaks: on create (`old` None) the rules without oldSelf; on an update
    from `old` also the transition rules, where both objects have the value (as the API server
    evaluates them). The API server gives CEL only metadata.name and generateName of the object."""
    import celpy

    out: list[str] = []

    def ok(rule: str, value, before) -> bool:
        activation = {"self": celpy.json_to_cel(value)}
        if before is not _ABSENT:
            activation["oldSelf"] = celpy.json_to_cel(before)
        result = _cel_program(rule).evaluate(activation)
        return not isinstance(result, celpy.CELEvalError) and bool(result)

    def walk(node: dict, value, before, path: str) -> None:
        for r in node.get("x-kubernetes-validations") or []:
            transition = "oldSelf" in r["rule"]
            if transition and (old is None or before is _ABSENT):
                continue
            if not ok(r["rule"], value, before if transition else _ABSENT):
                out.append(f"{path or '.'}: {r.get('message', r['rule'])}")
        if isinstance(value, dict):
            props = node.get("properties") or {}
            extra = node.get("additionalProperties")
            for k, v in value.items():
                child = props.get(k) if k in props else (extra if isinstance(extra, dict) else None)
                if child is not None:
                    prior = before.get(k, _ABSENT) if isinstance(before, dict) else _ABSENT
                    walk(child, v, prior, f"{path}.{k}" if path else k)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            for i, v in enumerate(value):
                prior = before[i] if isinstance(before, list) and i < len(before) else _ABSENT
                walk(node["items"], v, prior, f"{path}[{i}]")

    def seen(o: dict) -> dict:
        meta = o.get("metadata") or {}
        return {**o, "metadata": {k: meta[k] for k in ("name", "generateName") if k in meta}}

    walk(crd_schema(obj.get("kind")), seen(obj), seen(old) if old is not None else _ABSENT, "")
    return out


def validate_object(obj: dict) -> list[str]:
    """Problems with one rendered object on create (empty when valid)."""
    kind = obj.get("kind")
    if kind in _CRD_FILES:
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator(kind).iter_errors(obj)]
        return problems + cel_problems(obj)
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []
