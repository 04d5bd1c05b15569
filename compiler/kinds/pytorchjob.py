"""PyTorch -> kubeflow.org/v1 PyTorchJob."""

from __future__ import annotations

from compiler.kinds import v1
from compiler.kinds.pod import job_labels, metadata

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Iterator

    from compiler.naming import Names
    from compiler.spec import TrainingJob

API_VERSION = v1.API_VERSION
KIND = "PyTorchJob"
FRAMEWORKS = ("pytorch",)
REPLICA_TYPES = ("Master", "Worker")
REPLICA_SPECS_KEY = "pytorchReplicaSpecs"
DEFAULT_REPLICAS = {"Master": 1, "Worker": 1}
SINGLETONS = ("Master",)
DEFAULT_RESTART_POLICY = "OnFailure"
CONTAINER = "pytorch"
PORT = ("pytorchjob-port", 23456)
#: Variables the operator sets in the main container (a spec cannot set them).
OPERATOR_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")
SPEC_FIELDS = ("elasticPolicy", "nprocPerNode")
HEALTH_LUA = v1.HEALTH_LUA
IMMUTABLE_FIELDS = v1.IMMUTABLE_FIELDS


def name_budget(job: TrainingJob) -> int:
    return v1.name_budget(job, DEFAULT_REPLICAS)


def check(job: TrainingJob) -> Iterator[tuple]:
    """PyTorchJob rules: a Master and Workers; a sound elasticPolicy."""
    given = job.spec.replicas
    if given:
        for need in REPLICA_TYPES:
            if need not in given:
                yield ("spec", "replicas"), f"a PyTorchJob needs a {need} replica (Master exactly 1, Worker >= 1)"
    ep = job.spec.elasticPolicy
    if ep is not None and ep.minReplicas and ep.maxReplicas and ep.minReplicas > ep.maxReplicas:
        yield ("spec", "elasticPolicy", "minReplicas"), "minReplicas must not exceed maxReplicas"


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The PyTorchJob object of a pytorch spec."""
    spec: dict = {}
    ep = job.spec.elasticPolicy
    if ep is not None:
        spec["elasticPolicy"] = ep.model_dump(exclude_none=True)
    if job.spec.nprocPerNode is not None:
        spec["nprocPerNode"] = job.spec.nprocPerNode
    spec[REPLICA_SPECS_KEY] = v1.replica_specs(job, names, types=REPLICA_TYPES, default=DEFAULT_REPLICAS,
                                               policy=DEFAULT_RESTART_POLICY, container=CONTAINER, port=PORT)
    rp = v1.run_policy(job)
    if rp:
        spec["runPolicy"] = rp
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(job, names.job, extra_labels=job_labels(job), source=source),
        "spec": spec,
    }
