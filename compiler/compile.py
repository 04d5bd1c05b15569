"""Compile stage: a validated TrainingJob -> its Kubernetes objects (plain dicts)."""

from __future__ import annotations

import hashlib
from compiler.build import configmap, job as batch_job, pytorchjob, tfjob
from compiler.build.common import Names
from compiler.compiled import CompiledJob
from compiler.emit import dump_json_compatible
from compiler.spec import TrainingJob

#: Bump when the compiled shape changes in a way that should re-run jobs.
FORMAT_VERSION = "1"

_WORKLOADS = {"tensorflow": tfjob.build, "pytorch": pytorchjob.build, "sklearn": batch_job.build, "python": batch_job.build}


def _objects(job: TrainingJob, names: Names, source: str | None) -> list[dict]:
    objs = []
    if job.spec.trainer is not None:
        objs.append(configmap.build(job, names, source=source))
    objs.append(_WORKLOADS[job.spec.framework](job, names, source=source))
    return objs


def content_hash(job: TrainingJob) -> str:
    """8 hex digits of SHA-256 over the objects compiled under the spec's own name."""
    base = _objects(job, Names.for_job(job.metadata.name), None)
    return hashlib.sha256((FORMAT_VERSION + dump_json_compatible(base)).encode()).hexdigest()[:8]


def compile_job(job: TrainingJob, source: str) -> CompiledJob:
    """The ConfigMap (for built-in trainers) and workload object of a spec."""
    name = job.metadata.name
    if job.spec.naming == "hashed":
        name = f"{name}-{content_hash(job)}"
    names = Names.for_job(name)
    return CompiledJob(
        source=source,
        spec_name=job.metadata.name,
        namespace=job.metadata.namespace,
        job_name=name,
        objects=tuple(_objects(job, names, source)),
    )
