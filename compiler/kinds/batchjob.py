"""scikit-learn / plain Python -> batch/v1 Job (no training operator needed)."""

from __future__ import annotations

from compiler.kinds.pod import job_labels, metadata, pod_template, replicas
from compiler.naming import HASH_SUFFIX_LEN
from runtime.errors import FIRST_RETRYABLE

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Iterator

    from compiler.naming import Names
    from compiler.spec import TrainingJob

API_VERSION = "batch/v1"
KIND = "Job"
FRAMEWORKS = ("sklearn", "python")
REPLICA_TYPES = ("Worker",)
DEFAULT_REPLICAS = {"Worker": 1}
SINGLETONS = ()
#: The spec's restartPolicy default; ExitCode becomes pod restartPolicy Never plus a podFailurePolicy.
DEFAULT_RESTART_POLICY = "Never"
CONTAINER = "trainer"
PORT = None
#: Variables the operator sets in the main container (a spec cannot set them).
OPERATOR_ENV = ()
SPEC_FIELDS = ()
#: Argo CD has a built-in health check for batch/v1 Job.
HEALTH_LUA = None
#: The operator's ExitCode semantics on a Job: a permanent exit fails the Job at once, a
#: retryable one (>= 128) retries the pod.
PERMANENT_EXIT_CODES = list(range(1, FIRST_RETRYABLE))
#: Fields of a Job that the API server refuses to change (ValidateJobSpecUpdate), of those specc renders.
IMMUTABLE_FIELDS = ("spec.completions", "spec.podFailurePolicy", "spec.template")
#: The Job controller's default spec.backoffLimit.
DEFAULT_BACKOFF_LIMIT = 6


def name_budget(job: TrainingJob) -> int:
    """Job pods are named <job>-<5 random chars>; the Job controller also labels pods with the
    job name (63 characters at most)."""
    return 63 - 6 - (HASH_SUFFIX_LEN if job.spec.naming == "hashed" else 0)


def check(job: TrainingJob) -> Iterator[tuple]:
    """A batch/v1 Job runs one pod: count 1, no restartPolicy Always, no operator runPolicy."""
    fw = job.spec.framework
    for rtype, rep in (job.spec.replicas or {}).items():
        if rtype not in REPLICA_TYPES:
            continue
        count = rep if isinstance(rep, int) else rep.count
        if count != 1:
            yield ("spec", "replicas", rtype, "count"), f"a {fw} job runs as one batch/v1 Job pod: count must be 1"
        if not isinstance(rep, int) and rep.restartPolicy == "Always":
            yield ("spec", "replicas", rtype, "restartPolicy"), "a batch/v1 Job cannot use restartPolicy Always; use OnFailure, ExitCode or Never"
    rp = job.spec.runPolicy
    for field in ("cleanPodPolicy", "schedulingPolicy"):
        if getattr(rp, field) is not None:
            yield ("spec", "runPolicy", field), f"{field} applies to TFJob / PyTorchJob only"


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The batch/v1 Job of an sklearn / python spec."""
    (rtype, rep), = replicas(job, REPLICA_TYPES, DEFAULT_REPLICAS).items()
    policy = rep.restartPolicy or DEFAULT_RESTART_POLICY
    pod_policy = "Never" if policy == "ExitCode" else policy
    spec: dict = {}
    rp = job.spec.runPolicy
    if rp.activeDeadlineSeconds is not None:
        spec["activeDeadlineSeconds"] = rp.activeDeadlineSeconds
    spec["backoffLimit"] = rp.backoffLimit if rp.backoffLimit is not None else DEFAULT_BACKOFF_LIMIT
    spec["completions"] = 1
    spec["parallelism"] = 1
    if policy == "ExitCode":
        spec["podFailurePolicy"] = {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": PERMANENT_EXIT_CODES}},
        ]}
    if job.spec.scheduling.queue is None and rp.suspend is not None:
        spec["suspend"] = rp.suspend
    spec["template"] = pod_template(job, names, rep, container_name=CONTAINER, port=None, restart_policy=pod_policy)
    if rp.ttlSecondsAfterFinished is not None:
        spec["ttlSecondsAfterFinished"] = rp.ttlSecondsAfterFinished
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(job, names.job, extra_labels=job_labels(job), source=source),
        "spec": spec,
    }
