"""JAX in a custom container -> kubeflow.org/v1 JAXJob.

The operator's behaviour is read from kubeflow/trainer v1.9.4: pkg/controller.v1/jax/envvar.go
(the env), jaxjob_controller.go (status), pkg/apis/kubeflow.org/v1/jax_types.go and jax_defaults.go
(names and defaults), pkg/webhooks/jax/jaxjob_webhook.go (Worker is the only replica type).
"""

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
KIND = "JAXJob"
FRAMEWORKS = ("jax",)
REPLICA_TYPES = ("Worker",)
REPLICA_SPECS_KEY = "jaxReplicaSpecs"
DEFAULT_REPLICAS = {"Worker": 1}
SINGLETONS = ()
DEFAULT_RESTART_POLICY = "Never"
CONTAINER = "jax"
PORT = ("jaxjob-port", 6666)
#: Variables the operator sets in every container (a spec cannot set them); it also sets
#: PYTHONUNBUFFERED=1, which a spec may set to the same effect.
OPERATOR_ENV = ("COORDINATOR_ADDRESS", "COORDINATOR_PORT", "NUM_PROCESSES", "PROCESS_ID")
SPEC_FIELDS = ()
HEALTH_LUA = v1.HEALTH_LUA
IMMUTABLE_FIELDS = v1.IMMUTABLE_FIELDS

STATUS_ORDER = REPLICA_TYPES
#: What happened -> (condition type, reason, message); fields {namespace} {name} {rtype} {count}.
CONDITIONS = v1.conditions(KIND, {
    "Created": "JAXJob {name} is created.",
    "Running": "JAXJob {namespace}/{name} is running.",
    "Restarting": "JAXJob {name} is restarting because {rtype} replica(s) failed.",
    "Succeeded": "JAXJob {namespace}/{name} successfully completed.",
    "ReplicaFailed": "JAXJob {name} is failed because {count} {rtype} replica(s) failed.",
})


def name_budget(job: TrainingJob) -> int:
    return v1.name_budget(job, DEFAULT_REPLICAS)


def check(job: TrainingJob) -> Iterator[tuple]:
    """No JAXJob rules beyond its one replica type."""
    return iter(())


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The JAXJob object of a jax spec."""
    return v1.build(job, names, source, KIND)


def read_replicas(spec: dict) -> dict[str, tuple[int, str, dict]]:
    """{type: (replicas, restartPolicy, pod template)} of a rendered JAXJob's spec."""
    return v1.read_replicas(spec, REPLICA_SPECS_KEY, REPLICA_TYPES, DEFAULT_RESTART_POLICY)


def cluster_only(spec: dict) -> str | None:
    """Every JAXJob can run on one machine."""
    return None


def replica_env(spec: dict, rtype: str, index: int, container: str,
                addresses: Mapping[str, Sequence[tuple[str, int]]], *, job: str) -> dict[str, str]:
    """What the operator adds to every container's env (envvar.go setPodEnv): PYTHONUNBUFFERED,
    COORDINATOR_PORT and COORDINATOR_ADDRESS (worker 0's port and host, apart), NUM_PROCESSES
    (every replica) and PROCESS_ID (the index). `addresses` lists (host, port) of every replica
    by type."""
    host, port = addresses["Worker"][0]
    return {"PYTHONUNBUFFERED": "1", "COORDINATOR_PORT": str(port), "COORDINATOR_ADDRESS": host,
            "NUM_PROCESSES": str(sum(len(a) for a in addresses.values())), "PROCESS_ID": str(index)}


def job_conditions(types: Collection[str]) -> dict[str, tuple[str, str, str]]:
    """The conditions a JAXJob writes, whatever its replica types."""
    return CONDITIONS


def succeeded(spec: dict, states: Mapping[str, Sequence[str]]) -> bool:
    """The job succeeds when every worker has."""
    return "Worker" in states and all(s == SUCCEEDED for s in states["Worker"])


def failed(spec: dict, states: Mapping[str, Sequence[str]]) -> tuple[int, str] | None:
    """(count, type) of the failed replicas that fail the job: any."""
    return v1.first_failed(STATUS_ORDER, states)
