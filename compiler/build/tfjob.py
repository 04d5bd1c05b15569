"""TensorFlow -> kubeflow.org/v1 TFJob."""

from __future__ import annotations

from compiler.build.common import Names, job_labels, metadata, replica_specs, run_policy

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:  # the models; at run time a job may also be a snapshot record (compiler/fastvalid.py)
    from compiler.spec import TrainingJob

CONTAINER = "tensorflow"
PORT = ("tfjob-port", 2222)


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The TFJob object for a tensorflow spec."""
    specs = replica_specs(job, names, default_policy="Never", container_name=CONTAINER, port=PORT)
    spec: dict = {}
    rp = run_policy(job)
    if rp:
        spec["runPolicy"] = rp
    if job.spec.successPolicy is not None:
        spec["successPolicy"] = job.spec.successPolicy
    spec["tfReplicaSpecs"] = specs
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": metadata(job, names.job, extra_labels=job_labels(job), source=source),
        "spec": spec,
    }
