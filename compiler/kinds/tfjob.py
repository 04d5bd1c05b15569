"""TensorFlow -> kubeflow.org/v1 TFJob."""

from __future__ import annotations

from compiler.kinds import v1
from compiler.kinds.pod import job_labels, metadata

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Iterator

    from compiler.naming import Names
    from compiler.spec import TrainingJob

API_VERSION = v1.API_VERSION
KIND = "TFJob"
FRAMEWORKS = ("tensorflow",)
#: Canonical replica types in the order they are rendered (the webhook lets `worker` through;
#: specc writes the canonical case).
REPLICA_TYPES = ("Chief", "Master", "PS", "Worker", "Evaluator")
REPLICA_SPECS_KEY = "tfReplicaSpecs"
DEFAULT_REPLICAS = {"Worker": 1}
#: Replica types of which there is exactly one.
SINGLETONS = ("Chief", "Master")
DEFAULT_RESTART_POLICY = "Never"
CONTAINER = "tensorflow"
PORT = ("tfjob-port", 2222)
#: Spec fields only this kind uses.
#: Variables the operator sets in the main container (a spec cannot set them).
OPERATOR_ENV = ("TF_CONFIG",)
SPEC_FIELDS = ("successPolicy",)
HEALTH_LUA = v1.HEALTH_LUA
IMMUTABLE_FIELDS = v1.IMMUTABLE_FIELDS


def name_budget(job: TrainingJob) -> int:
    return v1.name_budget(job, DEFAULT_REPLICAS)


def check(job: TrainingJob) -> Iterator[tuple]:
    """TFJob rules beyond the replica types."""
    given = job.spec.replicas or {}
    if "Chief" in given and "Master" in given:
        yield ("spec", "replicas", "Master"), "a TFJob has at most one of Chief and Master"


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The TFJob object of a tensorflow spec."""
    spec: dict = {}
    rp = v1.run_policy(job)
    if rp:
        spec["runPolicy"] = rp
    if job.spec.successPolicy is not None:
        spec["successPolicy"] = job.spec.successPolicy
    spec[REPLICA_SPECS_KEY] = v1.replica_specs(job, names, types=REPLICA_TYPES, default=DEFAULT_REPLICAS,
                                               policy=DEFAULT_RESTART_POLICY, container=CONTAINER, port=PORT)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(job, names.job, extra_labels=job_labels(job), source=source),
        "spec": spec,
    }

