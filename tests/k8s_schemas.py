"""Validate rendered objects: TFJob/PyTorchJob against the real Kubeflow CRDs in ../shared/crds
(strict: unknown fields rejected, as the API server's field validation does), core objects
against the Kubernetes JSON schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import copy
import functools

import jsonschema
import yaml

from conftest import CRDS

K8S_VERSION = "1.32.0"
_CRD_FILES = {"TFJob": "kubeflow.org_tfjobs.yaml", "PyTorchJob": "kubeflow.org_pytorchjobs.yaml"}


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
def crd_validator(kind: str) -> jsonschema.Validator:
    crd = yaml.safe_load((CRDS / _CRD_FILES[kind]).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    # metadata is validated by the API server itself, not the CRD schema.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def validate_object(obj: dict) -> list[str]:
    """Problems with one rendered object (empty when valid)."""
    kind = obj.get("kind")
    if kind in _CRD_FILES:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator(kind).iter_errors(obj)]
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []
