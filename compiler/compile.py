"""Compile stage: a validated TrainingJob -> its Kubernetes objects (plain dicts), named."""

from __future__ import annotations

from compiler import kinds
from compiler.compiled import CompiledJob
from compiler.kinds import configmap
from compiler.naming import Names, content_hash

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from compiler.spec import TrainingJob


def objects(job: TrainingJob, names: Names, source: str | None) -> list[dict]:
    """The objects of a job under the given names, in apply order (ConfigMap first)."""
    out = []
    if job.spec.trainer is not None:
        out.append(configmap.build(job, names, source=source))
    out.append(kinds.workload(job).build(job, names, source=source))
    return out


def job_name(job: TrainingJob) -> str:
    """metadata.name, plus the content hash of the job's objects under hashed naming."""
    base = job.metadata.name
    if job.spec.naming == "fixed":
        return base
    return f"{base}-{content_hash(objects(job, Names.for_job(base), None))}"


def compile_job(job: TrainingJob, source: str) -> CompiledJob:
    """The named objects of a spec read from `source`."""
    name = job_name(job)
    return CompiledJob(
        source=source,
        spec_name=job.metadata.name,
        namespace=job.metadata.namespace,
        job_name=name,
        objects=tuple(objects(job, Names.for_job(name), source)),
    )
