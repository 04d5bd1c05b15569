"""scikit-learn / plain Python -> batch/v1 Job (no training operator needed)."""

from __future__ import annotations

from compiler.kinds.pod import END, REPLACE, RESTART, SUCCEEDED, pod_template, replicas, workload_object
from compiler.naming import HASH_SUFFIX_LEN
from runtime.errors import FIRST_RETRYABLE

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Collection, Iterator, Mapping, Sequence

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

# The Job controller's rules (pkg/controller/job), as the local runner reproduces them.
#: A rendered Job has no replica types: its one pod is the replica (`job-0` locally).
POD_REPLICA = "Job"
#: What happened -> (condition type, reason, message); fields {namespace} {pod} {container} {code} {rule}.
CONDITIONS = {
    "Succeeded": ("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
    "BackoffLimitExceeded": ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
    "DeadlineExceeded": ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline"),
    "PodFailurePolicy": ("Failed", "PodFailurePolicy", "Container {container} for pod {namespace}/{pod} failed "
                         "with exit code {code} matching FailJob rule at index {rule}"),
}
#: Events the controller records for the Job's pods: what -> (type, reason, message template).
EVENTS = {"created": ("Normal", "SuccessfulCreate", "Created pod: {pod}")}


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
            yield ("spec", "runPolicy", field), f"{field} applies to the training-operator kinds only, not a batch/v1 Job"


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
    return workload_object(job, names, source, API_VERSION, KIND, spec)


def read_replicas(spec: dict) -> dict[str, tuple[int, str, dict]]:
    """The Job's one pod as {POD_REPLICA: (1, the template's restartPolicy, pod template)}."""
    template = spec.get("template") or {}
    return {POD_REPLICA: (1, (template.get("spec") or {}).get("restartPolicy") or DEFAULT_RESTART_POLICY, template)}


def cluster_only(spec: dict) -> str | None:
    """A Job of more than one pod needs the Job controller."""
    parallelism, completions = int(spec.get("parallelism", 1) or 1), int(spec.get("completions", 1) or 1)
    if parallelism != 1 or completions != 1:
        return f"runs parallelism {parallelism} / completions {completions} (one pod runs locally)"
    return None


def pod_name(job: str, rtype: str, index: int) -> str:
    """The controller names a Job's pods `<job>-<5 random characters>`; the index stands in for them."""
    return f"{job}-{index}"


def replica_env(spec: dict, rtype: str, index: int, container: str,
                addresses: Mapping[str, Sequence[tuple[str, int]]], *, job: str) -> dict[str, str]:
    """The Job controller adds no variables."""
    return {}


def local_warnings(spec: dict) -> tuple[str, ...]:
    """Nothing the local run leaves out of the Job controller's behaviour."""
    return ()


def limits(spec: dict) -> tuple[int | None, float | None]:
    """(spec.backoffLimit, default DEFAULT_BACKOFF_LIMIT; spec.activeDeadlineSeconds or None)."""
    deadline = spec.get("activeDeadlineSeconds")
    return int(spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT)), (None if deadline is None else float(deadline))


def exit_action(policy: str, code: int) -> str:
    """A failed pod is retried: in place under restartPolicy OnFailure, else by another pod (the
    failed one stays)."""
    if code == 0:
        return END
    return RESTART if policy == "OnFailure" else REPLACE


def fail_job_rule(spec: dict, container: str, code: int) -> int | None:
    """The index of the podFailurePolicy rule that fails the Job at once on this exit (the first
    rule whose onExitCodes match decides; rules on pod conditions never match locally), or None."""
    if code == 0:
        return None
    for index, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules") or []):
        on = rule.get("onExitCodes")
        if not on or on.get("containerName") not in (None, container):
            continue
        if (code in (on.get("values") or [])) == (on.get("operator") == "In"):
            return index if rule.get("action") == "FailJob" else None
    return None


def job_conditions(types: Collection[str]) -> dict[str, tuple[str, str, str]]:
    """The conditions a Job writes, whatever its replica types."""
    return CONDITIONS


def succeeded(spec: dict, states: Mapping[str, Sequence[str]]) -> bool:
    """The Job succeeds with its pod."""
    return all(s == SUCCEEDED for s in states[POD_REPLICA])


def failed(spec: dict, states: Mapping[str, Sequence[str]]) -> tuple[int, str] | None:
    """A failed pod is retried, never failing the Job by itself: its limits and podFailurePolicy do."""
    return None


def status(conditions: list[dict], counts: Mapping[str, Mapping[str, int]]) -> dict:
    """The Job's status: conditions and its pods' active / succeeded / failed counts (zeros left out)."""
    return {**{k: v for k, v in counts[POD_REPLICA].items() if v}, "conditions": conditions}
