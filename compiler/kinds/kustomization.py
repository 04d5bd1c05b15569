"""The kustomization.yaml listing every rendered job folder."""

from __future__ import annotations


def build(resources: list[str]) -> dict:
    """A Kustomization whose resources are the given relative paths (sorted)."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(resources),
    }
