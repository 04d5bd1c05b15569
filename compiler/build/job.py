"""scikit-learn / plain Python -> batch/v1 Job (no training operator needed)."""

from __future__ import annotations

from compiler.build.common import Names, job_labels, metadata, pod_template, replica_map

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:  # the models; at run time a job may also be a snapshot record (compiler/fastvalid.py)
    from compiler.spec import TrainingJob

CONTAINER = "trainer"
#: ExitCode semantics on a Job: exit 1..127 fails the Job at once, >= 128 retries the pod.
PERMANENT_EXIT_CODES = list(range(1, 128))


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The batch/v1 Job for an sklearn / python spec."""
    (rtype, rep), = replica_map(job).items()
    policy = rep.restartPolicy or "Never"
    pod_policy = "Never" if policy == "ExitCode" else policy
    spec: dict = {}
    rp = job.spec.runPolicy
    if rp.activeDeadlineSeconds is not None:
        spec["activeDeadlineSeconds"] = rp.activeDeadlineSeconds
    spec["backoffLimit"] = rp.backoffLimit if rp.backoffLimit is not None else 6
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
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(job, names.job, extra_labels=job_labels(job), source=source),
        "spec": spec,
    }
