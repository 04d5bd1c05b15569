"""Integer bounds agree with the pinned CRDs: every integer field of the spec that reaches a
Kubeflow object is bounded by its CRD field's format (int32 / int64), so the API server never sees
an overflow. A new integer field must be added to FIELDS (or to NOT_RENDERED with the reason)."""

from __future__ import annotations

import functools

import pytest
import yaml

from compiler.spec import TrainingJob
from conftest import CRDS

FORMAT_MAX = {"int32": 2**31 - 1, "int64": 2**63 - 1}

# spec field (dotted, * for map keys, [] for list items) -> (CRD file, path in the CRD's spec)
FIELDS = {
    "spec.replicas.*.count": ("kubeflow.org_tfjobs.yaml", "tfReplicaSpecs.*.replicas"),
    "spec.runPolicy.backoffLimit": ("kubeflow.org_tfjobs.yaml", "runPolicy.backoffLimit"),
    "spec.runPolicy.activeDeadlineSeconds": ("kubeflow.org_tfjobs.yaml", "runPolicy.activeDeadlineSeconds"),
    "spec.runPolicy.ttlSecondsAfterFinished": ("kubeflow.org_tfjobs.yaml", "runPolicy.ttlSecondsAfterFinished"),
    "spec.runPolicy.schedulingPolicy.minAvailable": ("kubeflow.org_tfjobs.yaml", "runPolicy.schedulingPolicy.minAvailable"),
    "spec.runPolicy.schedulingPolicy.scheduleTimeoutSeconds": ("kubeflow.org_tfjobs.yaml", "runPolicy.schedulingPolicy.scheduleTimeoutSeconds"),
    "spec.elasticPolicy.minReplicas": ("kubeflow.org_pytorchjobs.yaml", "elasticPolicy.minReplicas"),
    "spec.elasticPolicy.maxReplicas": ("kubeflow.org_pytorchjobs.yaml", "elasticPolicy.maxReplicas"),
    "spec.elasticPolicy.maxRestarts": ("kubeflow.org_pytorchjobs.yaml", "elasticPolicy.maxRestarts"),
    "spec.elasticPolicy.rdzvPort": ("kubeflow.org_pytorchjobs.yaml", "elasticPolicy.rdzvPort"),
    **{f"spec.elasticPolicy.metrics[].{source}.target.averageUtilization":
       ("kubeflow.org_pytorchjobs.yaml", f"elasticPolicy.metrics[].{source}.target.averageUtilization")
       for source in ("resource", "containerResource", "pods", "object", "external")},
    "spec.scheduling.tolerations[].tolerationSeconds": ("kubeflow.org_tfjobs.yaml", "tfReplicaSpecs.*.template.spec.tolerations[].tolerationSeconds"),
}
NOT_RENDERED = {
    "spec.resources.gpus": "rendered as a quantity string (nvidia.com/gpu)",
    "spec.replicas.*.resources.gpus": "rendered as a quantity string (nvidia.com/gpu)",
    "spec.replicas.*": "the count shorthand: the same bound as count",
}


def _integer_fields() -> dict[str, dict]:
    """Dotted path -> JSON Schema of every integer field of the spec (trainer configs excluded:
    they go into the ConfigMap's JSON, read by the runtime)."""
    schema = TrainingJob.model_json_schema()
    defs = schema.get("$defs", {})
    out: dict[str, dict] = {}

    def walk(node: dict, path: str) -> None:
        if "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        for option in node.get("anyOf", []):
            walk(option, path)
        if node.get("type") == "integer":
            out[path] = node
        for name, sub in node.get("properties", {}).items():
            if name != "trainer":
                walk(sub, f"{path}.{name}" if path else name)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(schema, "")
    return out


@functools.cache
def _crd_spec(name: str) -> dict:
    crd = yaml.safe_load((CRDS / name).read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _crd_field(name: str, path: str) -> dict:
    node = _crd_spec(name)
    for part in path.replace("[]", ".[]").split("."):
        if part == "*":
            node = node["additionalProperties"]
        elif part == "[]":
            node = node["items"]
        else:
            node = node["properties"][part]
    return node


# Quantities (and nprocPerNode) take a number but are rendered as strings, as Kubernetes wants them.
_QUANTITIES = ("cpu", "cpuLimit", "memory", "memoryLimit", "ephemeralStorage", "ephemeralStorageLimit", "shm", "sizeLimit")


def _rendered_as_string(path: str) -> bool:
    return path.rsplit(".", 1)[-1] in _QUANTITIES or path == "spec.nprocPerNode" or ".extended." in path \
        or ".minResources." in path or path.endswith((".target.value", ".target.averageValue"))


def test_every_integer_field_is_mapped():
    rendered = {p for p in _integer_fields() if not _rendered_as_string(p)}
    assert rendered == set(FIELDS) | set(NOT_RENDERED)


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_bounds_fit_the_crd_format(field):
    ours = _integer_fields()[field]
    crd = _crd_field(*FIELDS[field])
    assert crd["type"] == "integer" and crd["format"] in FORMAT_MAX
    top = FORMAT_MAX[crd["format"]]
    assert "maximum" in ours and ours["maximum"] <= top, (field, ours, crd["format"])
    assert ours.get("minimum", -top - 1) >= -top - 1
