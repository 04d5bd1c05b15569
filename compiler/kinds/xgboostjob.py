"""XGBoost (or LightGBM) in a custom container -> kubeflow.org/v1 XGBoostJob.

The operator's behaviour is read from kubeflow/trainer v1.9.4: pkg/controller.v1/xgboost/xgboost.go
(the env), xgboostjob_controller.go (status), pkg/apis/kubeflow.org/v1/xgboost_types.go and
xgboost_defaults.go (names and defaults), pkg/webhooks/xgboost/xgboostjob_webhook.go (a Master of
exactly 1 replica is required).
"""

from __future__ import annotations

from compiler.kinds import v1
from compiler.kinds.pod import SUCCEEDED
# The operator's rules every v1 kind shares, re-exported as this kind's own.
from compiler.kinds.v1 import EVENTS, exit_action, fail_job_rule, limits, pod_name, status  # noqa: F401

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Collection, Iterator, Mapping, Sequence

    from compiler.naming import Names
    from compiler.spec import TrainingJob

API_VERSION = v1.API_VERSION
KIND = "XGBoostJob"
FRAMEWORKS = ("xgboost",)
REPLICA_TYPES = ("Master", "Worker")
REPLICA_SPECS_KEY = "xgbReplicaSpecs"
DEFAULT_REPLICAS = {"Master": 1, "Worker": 1}
SINGLETONS = ("Master",)
DEFAULT_RESTART_POLICY = "Never"
CONTAINER = "xgboost"
PORT = ("xgboostjob-port", 9999)
#: Variables the operator sets in every container (a spec cannot set them); it also sets
#: PYTHONUNBUFFERED=1, which a spec may set to the same effect.
OPERATOR_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "WORKER_ADDRS", "WORKER_PORT")
SPEC_FIELDS = ()
HEALTH_LUA = v1.HEALTH_LUA
IMMUTABLE_FIELDS = v1.IMMUTABLE_FIELDS

#: The order the local runner walks replica types for the status (the operator's is a map's).
STATUS_ORDER = ("Master", "Worker")
#: What happened -> (condition type, reason, message); fields {namespace} {name} {rtype} {count}.
CONDITIONS = v1.conditions(KIND, {
    "Created": "XGBoostJob {name} is created.",
    "Running": "XGBoostJob {name} is running.",
    "Restarting": "XGBoostJob {name} is restarting because {rtype} replica(s) failed.",
    "Succeeded": "XGBoostJob {name} is successfully completed.",
    "ReplicaFailed": "XGBoostJob {name} is failed because {count} {rtype} replica(s) failed.",
})


def name_budget(job: TrainingJob) -> int:
    return v1.name_budget(job, DEFAULT_REPLICAS)


def check(job: TrainingJob) -> Iterator[tuple]:
    """XGBoostJob rules: a Master (its webhook refuses a job without one)."""
    given = job.spec.replicas
    if given and "Master" not in given:
        yield ("spec", "replicas"), "an XGBoostJob needs a Master replica (exactly 1; Workers optional)"


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The XGBoostJob object of an xgboost spec."""
    return v1.build(job, names, source, KIND)


def read_replicas(spec: dict) -> dict[str, tuple[int, str, dict]]:
    """{type: (replicas, restartPolicy, pod template)} of a rendered XGBoostJob's spec; ValueError
    without a Master."""
    found = v1.read_replicas(spec, REPLICA_SPECS_KEY, REPLICA_TYPES, DEFAULT_RESTART_POLICY)
    if "Master" not in found:
        raise ValueError("no Master replica (the operator's webhook refuses an XGBoostJob without one)")
    return found


def cluster_only(spec: dict) -> str | None:
    """Every XGBoostJob can run on one machine."""
    return None


def local_warnings(spec: dict) -> tuple[str, ...]:
    """WORKER_ADDRS and WORKER_PORT (LightGBM's machine list) name every worker at one port: on
    one machine two workers cannot both listen on it."""
    workers = (read_replicas(spec).get("Worker") or (0,))[0]
    if workers < 2:
        return ()
    return (f"WORKER_ADDRS lists {workers} workers at 127.0.0.1 with one WORKER_PORT, as the operator sets them: "
            "a LightGBM job cannot form its machine list on one machine (XGBoost's tracker at MASTER_ADDR / "
            "MASTER_PORT is not affected)",)


def replica_env(spec: dict, rtype: str, index: int, container: str,
                addresses: Mapping[str, Sequence[tuple[str, int]]], *, job: str) -> dict[str, str]:
    """What the operator adds to every container's env (xgboost.go SetPodEnv): MASTER_PORT and
    MASTER_ADDR (the Master's), WORLD_SIZE (every replica), RANK (master 0, worker i i+1),
    PYTHONUNBUFFERED, and with more than one replica WORKER_PORT (worker 0's: in a cluster every
    worker listens on the same port) and WORKER_ADDRS (the workers' hosts, comma-separated).
    `addresses` lists (host, port) of every replica by type."""
    total = sum(len(a) for a in addresses.values())
    host, port = addresses["Master"][0]
    rank = index + (len(addresses["Master"]) if rtype == "Worker" else 0)
    env = {"MASTER_PORT": str(port), "MASTER_ADDR": host, "WORLD_SIZE": str(total), "RANK": str(rank),
           "PYTHONUNBUFFERED": "1"}
    if total > 1:
        workers = addresses["Worker"]
        env["WORKER_PORT"] = str(workers[0][1])
        env["WORKER_ADDRS"] = ",".join(h for h, _ in workers[:total - 1])
    return env


def job_conditions(types: Collection[str]) -> dict[str, tuple[str, str, str]]:
    """The conditions an XGBoostJob writes, whatever its replica types."""
    return CONDITIONS


def succeeded(spec: dict, states: Mapping[str, Sequence[str]]) -> bool:
    """The job succeeds with its Master."""
    return "Master" in states and all(s == SUCCEEDED for s in states["Master"])


def failed(spec: dict, states: Mapping[str, Sequence[str]]) -> tuple[int, str] | None:
    """(count, type) of the failed replicas that fail the job: any."""
    return v1.first_failed(STATUS_ORDER, states)
