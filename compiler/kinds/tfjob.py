"""TensorFlow -> kubeflow.org/v1 TFJob."""

from __future__ import annotations

from compiler.kinds import v1
from compiler.kinds.pod import SUCCEEDED
# The operator's rules every v1 kind shares, re-exported as this kind's own.
from compiler.kinds.v1 import (  # noqa: F401
    EVENTS, exit_action, fail_job_rule, limits, local_warnings, pod_name, status,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Collection, Iterator, Mapping, Sequence

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
#: Variables the operator sets in the main container (a spec cannot set them).
OPERATOR_ENV = ("TF_CONFIG",)
#: Spec fields only this kind uses.
SPEC_FIELDS = ("successPolicy",)
HEALTH_LUA = v1.HEALTH_LUA
IMMUTABLE_FIELDS = v1.IMMUTABLE_FIELDS

# The operator's rules (tfjob_controller.go), as the local runner reproduces them.
#: The order the operator walks replica types when it updates the status.
STATUS_ORDER = ("Chief", "Evaluator", "Master", "PS", "Worker")
#: What happened -> (condition type, reason, message); fields {namespace} {name} {rtype} {count}.
CONDITIONS = v1.conditions(KIND, {
    "Created": "TFJob {name} is created.",
    "Running": "TFJob {namespace}/{name} is running.",
    "Restarting": "TFJob {name} is restarting because {rtype} replica(s) failed.",
    "Succeeded": "TFJob {namespace}/{name} successfully completed.",
    "ReplicaFailed": "TFJob {namespace}/{name} has failed because {count} {rtype} replica(s) failed.",
})


def name_budget(job: TrainingJob) -> int:
    return v1.name_budget(job, DEFAULT_REPLICAS)


def check(job: TrainingJob) -> Iterator[tuple]:
    """TFJob rules beyond the replica types."""
    given = job.spec.replicas or {}
    if "Chief" in given and "Master" in given:
        yield ("spec", "replicas", "Master"), "a TFJob has at most one of Chief and Master"


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The TFJob object of a tensorflow spec."""
    extra = {"successPolicy": job.spec.successPolicy} if job.spec.successPolicy is not None else {}
    return v1.build(job, names, source, KIND, extra)



def read_replicas(spec: dict) -> dict[str, tuple[int, str, dict]]:
    """{type: (replicas, restartPolicy, pod template)} of a rendered TFJob's spec."""
    return v1.read_replicas(spec, REPLICA_SPECS_KEY, REPLICA_TYPES, DEFAULT_RESTART_POLICY)


def cluster_only(spec: dict) -> str | None:
    """Every TFJob can run on one machine."""
    return None


def replica_env(spec: dict, rtype: str, index: int, container: str,
                addresses: Mapping[str, Sequence[tuple[str, int]]], *, job: str) -> dict[str, str]:
    """What the operator adds to a container's env: TF_CONFIG (compact JSON, cluster first, types
    lower-cased and sorted), only in the `tensorflow` container of a job of more than one replica.
    `addresses` lists (host, port) of every replica by type."""
    if sum(len(a) for a in addresses.values()) <= 1 or container != CONTAINER:
        return {}
    import json

    cluster = {t.lower(): [f"{host}:{port}" for host, port in addresses[t]] for t in sorted(addresses, key=str.lower)}
    doc = {"cluster": cluster, "task": {"type": rtype.lower(), "index": index}, "environment": "cloud"}
    return {"TF_CONFIG": json.dumps(doc, separators=(",", ":"))}


def job_conditions(types: Collection[str]) -> dict[str, tuple[str, str, str]]:
    """The conditions a TFJob writes, whatever its replica types."""
    return CONDITIONS


def succeeded(spec: dict, states: Mapping[str, Sequence[str]]) -> bool:
    """The job succeeds with its Chief (or Master); without one, with worker 0, or with every
    worker under successPolicy AllWorkers."""
    leaders = [t for t in ("Chief", "Master") if t in states]
    if leaders:
        return all(s == SUCCEEDED for t in leaders for s in states[t])
    workers = states.get("Worker")
    if not workers:
        return False
    if all(s == SUCCEEDED for s in workers):
        return True
    return spec.get("successPolicy") != "AllWorkers" and workers[0] == SUCCEEDED


def failed(spec: dict, states: Mapping[str, Sequence[str]]) -> tuple[int, str] | None:
    """(count, type) of the failed replicas that fail the job; workers under enableDynamicWorker
    fail alone."""
    return v1.first_failed(STATUS_ORDER, states, ("Worker",) if spec.get("enableDynamicWorker") else ())
