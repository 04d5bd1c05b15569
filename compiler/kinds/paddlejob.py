"""PaddlePaddle in a custom container -> kubeflow.org/v1 PaddleJob.

With a Master the job runs in parameter-server mode (the Masters are the servers), without one in
collective mode (worker 0 is the rendezvous). The operator's behaviour is read from
kubeflow/trainer v1.9.4: pkg/controller.v1/paddlepaddle/envvar.go (the env),
paddlepaddle_controller.go (status), pkg/apis/kubeflow.org/v1/paddlepaddle_types.go and
paddlepaddle_defaults.go (names and defaults), pkg/webhooks/paddlepaddle/paddlepaddle_webhook.go.
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
KIND = "PaddleJob"
FRAMEWORKS = ("paddle",)
REPLICA_TYPES = ("Master", "Worker")
REPLICA_SPECS_KEY = "paddleReplicaSpecs"
DEFAULT_REPLICAS = {"Worker": 1}
SINGLETONS = ()
DEFAULT_RESTART_POLICY = "OnFailure"
CONTAINER = "paddle"
#: The operator's port name for the master endpoint is `master` (PaddleJobDefaultPortName).
PORT = ("master", 36543)
#: Variables the operator sets in every container (a spec cannot set them); it also sets
#: PYTHONUNBUFFERED=1, which a spec may set to the same effect.
OPERATOR_ENV = ("PADDLE_MASTER", "PADDLE_NNODES", "PADDLE_JOB_ID", "PADDLE_SERVER_NUM", "PADDLE_TRAINER_NUM",
                "POD_IP_DUMMY")
SPEC_FIELDS = ()
HEALTH_LUA = v1.HEALTH_LUA
IMMUTABLE_FIELDS = v1.IMMUTABLE_FIELDS

#: The order the local runner walks replica types for the status (the operator's is a map's).
STATUS_ORDER = ("Master", "Worker")
_MESSAGES = {
    "Created": "PaddleJob {name} is created.",
    "Restarting": "PaddleJob {name} is restarting because {rtype} replica(s) failed.",
    "ReplicaFailed": "PaddleJob {name} is failed because {count} {rtype} replica(s) failed.",
}
#: What happened -> (condition type, reason, message) with a Master; fields {namespace} {name}
#: {rtype} {count}.
CONDITIONS = v1.conditions(KIND, {
    **_MESSAGES,
    "Running": "PaddleJob {name} is running.",
    "Succeeded": "PaddleJob {name} is successfully completed.",
})
#: The same without a Master (collective mode): the workers' wording.
WORKER_CONDITIONS = v1.conditions(KIND, {
    **_MESSAGES,
    "Running": "PaddleJob {namespace}/{name} is running.",
    "Succeeded": "PaddleJob {namespace}/{name} successfully completed.",
})


def name_budget(job: TrainingJob) -> int:
    return v1.name_budget(job, DEFAULT_REPLICAS)


def check(job: TrainingJob) -> Iterator[tuple]:
    """PaddleJob rules: Workers (the trainers) in either mode."""
    given = job.spec.replicas
    if given and "Worker" not in given:
        yield ("spec", "replicas"), "a PaddleJob needs Worker replicas (with a Master: parameter-server mode)"


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The PaddleJob object of a paddle spec."""
    return v1.build(job, names, source, KIND)


def read_replicas(spec: dict) -> dict[str, tuple[int, str, dict]]:
    """{type: (replicas, restartPolicy, pod template)} of a rendered PaddleJob's spec."""
    return v1.read_replicas(spec, REPLICA_SPECS_KEY, REPLICA_TYPES, DEFAULT_RESTART_POLICY)


def cluster_only(spec: dict) -> str | None:
    """Every PaddleJob can run on one machine (the v1.9 controller reads no elasticPolicy)."""
    return None


def replica_env(spec: dict, rtype: str, index: int, container: str,
                addresses: Mapping[str, Sequence[tuple[str, int]]], *, job: str) -> dict[str, str]:
    """What the operator adds to every container's env (envvar.go setPodEnv): PYTHONUNBUFFERED,
    PADDLE_JOB_ID (the job's name), PADDLE_NNODES (every replica) and PADDLE_MASTER, the
    rendezvous `host:port` of master 0 (without a Master: worker 0). The rendezvous replica itself
    gets `$(POD_IP_DUMMY):port` with POD_IP_DUMMY its pod IP, which Kubernetes expands: both are
    given expanded. With a Master, PADDLE_SERVER_NUM=1 on masters and PADDLE_TRAINER_NUM=1 on
    workers. `addresses` lists (host, port) of every replica by type."""
    leader = "Master" if addresses.get("Master") else "Worker"
    host, port = addresses[leader][0]
    env = {"PYTHONUNBUFFERED": "1", "PADDLE_JOB_ID": job, "PADDLE_NNODES": str(sum(len(a) for a in addresses.values()))}
    if rtype == leader and index == 0:
        env["POD_IP_DUMMY"] = host
    env["PADDLE_MASTER"] = f"{host}:{port}"
    if leader == "Master":
        env["PADDLE_SERVER_NUM" if rtype == "Master" else "PADDLE_TRAINER_NUM"] = "1"
    return env


def job_conditions(types: Collection[str]) -> dict[str, tuple[str, str, str]]:
    """The conditions a job of these replica types writes: the wording differs without a Master."""
    return CONDITIONS if "Master" in types else WORKER_CONDITIONS


def succeeded(spec: dict, states: Mapping[str, Sequence[str]]) -> bool:
    """The job succeeds with its Masters; without one, when every worker has."""
    rtype = "Master" if "Master" in states else "Worker"
    return rtype in states and all(s == SUCCEEDED for s in states[rtype])


def failed(spec: dict, states: Mapping[str, Sequence[str]]) -> tuple[int, str] | None:
    """(count, type) of the failed replicas that fail the job: any."""
    return v1.first_failed(STATUS_ORDER, states)
