"""PyTorch -> kubeflow.org/v1 PyTorchJob."""

from __future__ import annotations

from compiler.build.common import Names, job_labels, metadata, replica_specs, run_policy

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:  # the models; at run time a job may also be a snapshot record (compiler/fastvalid.py)
    from compiler.spec import TrainingJob

CONTAINER = "pytorch"
PORT = ("pytorchjob-port", 23456)


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The PyTorchJob object for a pytorch spec."""
    specs = replica_specs(job, names, default_policy="OnFailure", container_name=CONTAINER, port=PORT)
    spec: dict = {}
    ep = job.spec.elasticPolicy
    if ep is not None:
        d = ep.model_dump(exclude_none=True)
        spec["elasticPolicy"] = d
    if job.spec.nprocPerNode is not None:
        spec["nprocPerNode"] = job.spec.nprocPerNode
    spec["pytorchReplicaSpecs"] = specs
    rp = run_policy(job)
    if rp:
        spec["runPolicy"] = rp
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": metadata(job, names.job, extra_labels=job_labels(job), source=source),
        "spec": spec,
    }
