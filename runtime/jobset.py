"""A Kubeflow Trainer v2 node's place in its job, from what JobSet and Trainer give its pod.

Trainer v2 (trainer.kubeflow.org/v1alpha1) runs a TrainJob as a JobSet whose replicated job
`node` is one Indexed Job of numNodes pods. No operator writes TF_CONFIG there, and only a torch
runtime sets rendezvous variables (PET_*, for torchrun). `environment` builds what the trainers
read (runtime/context.py) from:

- the torch plugin's PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR, PET_MASTER_PORT
  (kubeflow/trainer v2.3.0 pkg/runtime/framework/plugins/torch/torch.go);
- otherwise the node index JOB_COMPLETION_INDEX, which Kubernetes sets in every Indexed Job pod,
  the node count SPECC_NUM_NODES (the TrainJob's trainer.env) and the JobSet's name
  SPECC_JOBSET_NAME (label jobset.sigs.k8s.io/jobset-name through the downward API). Node i is
  `<jobset>-node-0-<i>.<jobset>`: JobSet names an Indexed Job's pods `<jobset>-<job>-<k>-<i>`,
  turns DNS hostnames on and creates a headless Service named after the JobSet by default
  (kubernetes-sigs/jobset v0.12.0 pkg/webhooks/jobset_webhook.go Default,
  pkg/controllers/jobset_controller.go GetSubdomain). SPECC_NODE_ADDRESSES (the local runner)
  replaces those names with `host:port` by index.

TensorFlow gets TF_CONFIG for MultiWorkerMirroredStrategy (every node a worker; worker 0 is the
chief); PyTorch gets MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE (one process per node).
"""

from __future__ import annotations

import json
from typing import Mapping

from runtime.contract import (
    COMPLETION_INDEX_ENV, JOBSET_NAME_ENV, NODE_ADDRESSES_ENV, NUM_NODES_ENV, TF_NODE_PORT, TORCH_NODE_PORT, node_host,
)
from runtime.errors import ConfigError

#: The torch plugin's variables.
PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR, PET_MASTER_PORT = "PET_NNODES", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT"


def environment(env: Mapping[str, str], framework: str) -> dict[str, str]:
    """The variables to add for a node of a Trainer v2 JobSet (nothing when `env` already has
    TF_CONFIG or WORLD_SIZE and RANK, or is not such a node)."""
    if env.get("TF_CONFIG", "").strip() or ("WORLD_SIZE" in env and "RANK" in env):
        return {}
    if PET_NNODES in env and PET_NODE_RANK in env and PET_MASTER_ADDR in env:
        return _from_torch_plugin(env, framework)
    if COMPLETION_INDEX_ENV in env and NUM_NODES_ENV in env:
        return _from_jobset(env, framework)
    return {}


def _int(env: Mapping[str, str], name: str, low: int) -> int:
    raw = env[name]
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < low:
        raise ConfigError(f"{name}={value} must be at least {low}")
    return value


def _from_torch_plugin(env: Mapping[str, str], framework: str) -> dict[str, str]:
    if framework != "pytorch":
        raise ConfigError(f"a torch runtime's environment (PET_*) cannot run the {framework} trainers: "
                          "they need specc's TrainingRuntime")
    nodes, rank = _int(env, PET_NNODES, 1), _int(env, PET_NODE_RANK, 0)
    if rank >= nodes:
        raise ConfigError(f"{PET_NODE_RANK}={rank} is outside {PET_NNODES}={nodes}")
    port = env.get(PET_MASTER_PORT) or str(TORCH_NODE_PORT)
    return {"MASTER_ADDR": env[PET_MASTER_ADDR], "MASTER_PORT": port, "RANK": str(rank), "WORLD_SIZE": str(nodes)}


def addresses(env: Mapping[str, str], nodes: int, port: int) -> list[str]:
    """`host:port` of every node, by index: SPECC_NODE_ADDRESSES, else the JobSet's DNS names."""
    given = env.get(NODE_ADDRESSES_ENV, "").strip()
    if given:
        out = [a.strip() for a in given.split(",")]
        if len(out) != nodes or not all(a.rpartition(":")[0] and a.rpartition(":")[2].isdigit() for a in out):
            raise ConfigError(f"{NODE_ADDRESSES_ENV} must list {nodes} host:port addresses, got {given!r}")
        return out
    jobset = env.get(JOBSET_NAME_ENV, "").strip()
    if not jobset:
        raise ConfigError(f"{JOBSET_NAME_ENV} is not set: it names the JobSet whose nodes this one trains with")
    return [f"{node_host(jobset, i)}:{port}" for i in range(nodes)]


def _from_jobset(env: Mapping[str, str], framework: str) -> dict[str, str]:
    nodes, index = _int(env, NUM_NODES_ENV, 1), _int(env, COMPLETION_INDEX_ENV, 0)
    if index >= nodes:
        raise ConfigError(f"{COMPLETION_INDEX_ENV}={index} is outside {NUM_NODES_ENV}={nodes}")
    if framework == "tensorflow":
        if nodes == 1:
            return {}  # alone, as a TFJob of one replica gets no TF_CONFIG
        cluster = {"worker": addresses(env, nodes, TF_NODE_PORT)}
        doc = {"cluster": cluster, "task": {"type": "worker", "index": index}, "environment": "cloud"}
        return {"TF_CONFIG": json.dumps(doc, separators=(",", ":"))}
    if framework == "pytorch":
        host, _, port = addresses(env, nodes, TORCH_NODE_PORT)[0].rpartition(":")
        return {"MASTER_ADDR": host, "MASTER_PORT": port, "RANK": str(index), "WORLD_SIZE": str(nodes)}
    return {}
