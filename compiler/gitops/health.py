"""Argo CD health checks for the workload kinds (Argo CD ships none for Kubeflow's kinds).

Each kind module holds its check (HEALTH_LUA, run by Argo CD's gopher-lua with Lua 5.1 semantics
and the live object as global `obj`); this module puts them under their argocd-cm keys.
"""

from __future__ import annotations


def config_key(kind_module) -> str:
    """The argocd-cm data key of a kind's health check: `resource.customizations.health.<group>_<Kind>`."""
    group = kind_module.API_VERSION.rpartition("/")[0]
    return f"resource.customizations.health.{group}_{kind_module.KIND}"


def scripts() -> dict[str, str]:
    """Kind -> its Lua health check, for every workload kind Argo CD has no check for."""
    from compiler.kinds import WORKLOADS

    return {k.KIND: k.HEALTH_LUA for k in WORKLOADS if k.HEALTH_LUA}


def argocd_cm_patch(namespace: str = "argocd") -> dict:
    """An `argocd-cm` ConfigMap carrying only the health checks (merge it into the live one)."""
    from compiler.kinds import WORKLOADS

    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-cm",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
        },
        "data": {config_key(k): k.HEALTH_LUA for k in WORKLOADS if k.HEALTH_LUA},
    }
