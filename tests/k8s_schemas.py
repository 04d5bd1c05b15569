"""Validate rendered objects: TFJob/PyTorchJob against the real Kubeflow CRDs in ../shared/crds,
TrainJob and (Cluster)TrainingRuntime against the Trainer v2.3.0 CRDs in ../shared/crds/trainer-v2
(strict: unknown fields rejected, as the API server's field validation does; and their CEL rules
that hold on create, evaluated with cel-python), core objects against the Kubernetes JSON
schemas (kubernetes-validate, strict)."""

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
    """(path, rule, message) of every x-kubernetes-validations rule of a kind's CRD."""
    out = []

    def walk(node: dict, path: str) -> None:
        for r in node.get("x-kubernetes-validations") or []:
            out.append((path or ".", r["rule"], r.get("message", r["rule"])))
        for k, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}{{}}")

    walk(crd_schema(kind), "")
    return out


@functools.cache
def _cel_program(rule: str):
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(rule))


def cel_problems(obj: dict) -> list[str]:
    """The CRD's CEL rules that `obj` breaks on create (rules reading oldSelf apply to updates
    only). The API server gives CEL only metadata.name and generateName of the object."""
    import celpy

    kind = obj.get("kind")
    out: list[str] = []

    def walk(node: dict, value, path: str) -> None:
        for r in node.get("x-kubernetes-validations") or []:
            if "oldSelf" in r["rule"]:
                continue
            ok = _cel_program(r["rule"]).evaluate({"self": celpy.json_to_cel(value)})
            if ok is not True and not (isinstance(ok, celpy.celtypes.BoolType) and bool(ok)):
                out.append(f"{path or '.'}: {r.get('message', r['rule'])} ({r['rule']})")
        if isinstance(value, dict):
            props = node.get("properties") or {}
            extra = node.get("additionalProperties")
            for k, v in value.items():
                child = props.get(k) if k in props else (extra if isinstance(extra, dict) else None)
                if child is not None:
                    walk(child, v, f"{path}.{k}")
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            for i, v in enumerate(value):
                walk(node["items"], v, f"{path}[{i}]")

    meta = obj.get("metadata") or {}
    seen = {**obj, "metadata": {k: meta[k] for k in ("name", "generateName") if k in meta}}
    walk(crd_schema(kind), seen, "")
    return out


def validate_object(obj: dict) -> list[str]:
    """Problems with one rendered object (empty when valid)."""
    kind = obj.get("kind")
    if kind in _CRD_FILES:
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator(kind).iter_errors(obj)]
        if _CRD_FILES[kind][1] == "v1alpha1":
            problems += cel_problems(obj)
        return problems
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []
