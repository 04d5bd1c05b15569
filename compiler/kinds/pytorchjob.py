"""PyTorch -> kubeflow.org/v1 PyTorchJob."""

from __future__ import annotations

from compiler.kinds import v1
from compiler.kinds.pod import SUCCEEDED, job_labels, metadata
# The operator's rules every v1 kind shares, re-exported as this kind's own.
from compiler.kinds.v1 import EVENTS, exit_action, fail_job_rule, limits, pod_name, status  # noqa: F401

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Iterator, Mapping, Sequence

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
#: Variables the operator sets in every container (a spec cannot set them); it also sets
#: PYTHONUNBUFFERED=1, which a spec may set to the same effect.
OPERATOR_ENV = ("MASTER_ADDR", "MASTER_PORT", "PET_MASTER_ADDR", "PET_MASTER_PORT", "WORLD_SIZE", "RANK",
                "PET_NODE_RANK", "PET_NPROC_PER_NODE", "PET_NNODES")
SPEC_FIELDS = ("elasticPolicy", "nprocPerNode")
HEALTH_LUA = v1.HEALTH_LUA
IMMUTABLE_FIELDS = v1.IMMUTABLE_FIELDS

# The operator's rules (pytorchjob_controller.go), as the local runner reproduces them.
#: The order the local runner walks replica types for the status (the operator's is a map's).
STATUS_ORDER = ("Master", "Worker")
#: What happened -> (condition type, reason, message); fields {namespace} {name} {rtype} {count}.
CONDITIONS = v1.conditions(KIND, {
    "Created": "PyTorchJob {name} is created.",
    "Running": "PyTorchJob {name} is running.",
    "Restarting": "PyTorchJob {name} is restarting because {rtype} replica(s) failed.",
    "Succeeded": "PyTorchJob {name} is successfully completed.",
    "ReplicaFailed": "PyTorchJob {name} is failed because {count} {rtype} replica(s) failed.",
})


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
        spec["nprocPerNode"] = str(job.spec.nprocPerNode)
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


def read_replicas(spec: dict) -> dict[str, tuple[int, str, dict]]:
    """{type: (replicas, restartPolicy, pod template)} of a rendered PyTorchJob's spec."""
    return v1.read_replicas(spec, REPLICA_SPECS_KEY, REPLICA_TYPES, DEFAULT_RESTART_POLICY)


def cluster_only(spec: dict) -> str | None:
    """Elastic training needs the operator's rendezvous and scaling."""
    return "uses elasticPolicy" if spec.get("elasticPolicy") else None


def replica_env(spec: dict, rtype: str, index: int, container: str,
                addresses: Mapping[str, Sequence[tuple[str, int]]]) -> dict[str, str]:
    """What the operator adds to every container's env: PYTHONUNBUFFERED, the master's address
    and port, WORLD_SIZE (replicas x nprocPerNode, 1 when not a number), RANK (master 0, worker i
    i+1) and the PET_* variables of torchrun. `addresses` lists (host, port) of every replica by
    type."""
    total = sum(len(a) for a in addresses.values())
    nproc = str(spec.get("nprocPerNode") or "auto")
    env = {"PYTHONUNBUFFERED": "1"}
    if addresses.get("Master"):
        host, port = addresses["Master"][0]
        rank = str(index + 1 if rtype == "Worker" else index)
        world = total * (int(nproc) if nproc.isdigit() else 1)
        env.update({"MASTER_PORT": str(port), "PET_MASTER_PORT": str(port), "MASTER_ADDR": host,
                    "PET_MASTER_ADDR": host, "WORLD_SIZE": str(world), "RANK": rank, "PET_NODE_RANK": rank})
    env["PET_NPROC_PER_NODE"] = nproc
    env["PET_NNODES"] = str(total)
    return env


def succeeded(spec: dict, states: Mapping[str, Sequence[str]]) -> bool:
    """The job succeeds with its Master (without one, with every worker)."""
    rtype = "Master" if "Master" in states else "Worker"
    return rtype in states and all(s == SUCCEEDED for s in states[rtype])


def failed(spec: dict, states: Mapping[str, Sequence[str]]) -> tuple[int, str] | None:
    """(count, type) of the failed replicas that fail the job: any."""
    return v1.first_failed(STATUS_ORDER, states)
