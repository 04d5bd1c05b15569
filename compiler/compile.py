"""Compile stage: a validated TrainingJob -> its Kubernetes objects (plain dicts)."""

from __future__ import annotations

from compiler.build import configmap, job as batch_job, pytorchjob, tfjob
from compiler.build.common import Names
from compiler.compiled import CompiledJob
from compiler.digest import sha256
from compiler.emit import dump_json_compatible

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:  # the models; at run time a job may also be a snapshot record (compiler/fastvalid.py)
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


SOURCE_ANNOTATION = "specc.dev/source"


def _without_source(obj: dict) -> dict:
    ann = obj["metadata"].get("annotations")
    if not ann or SOURCE_ANNOTATION not in ann:
        return obj
    md = dict(obj["metadata"])
    rest = {k: v for k, v in ann.items() if k != SOURCE_ANNOTATION}
    if rest:
        md["annotations"] = rest
    else:
        del md["annotations"]
    return {**obj, "metadata": md}


def _hash(objects: list[dict]) -> str:
    """8 hex digits of SHA-256 over the objects, ignoring which file they came from."""
    plain = [_without_source(o) for o in objects]
    return sha256((FORMAT_VERSION + dump_json_compatible(plain)).encode()).hexdigest()[:8]


def content_hash(job: TrainingJob) -> str:
    """8 hex digits of SHA-256 over the objects compiled under the spec's own name."""
    return _hash(_objects(job, Names.for_job(job.metadata.name), None))


def _rename(objects: list[dict], old: Names, new: Names) -> None:
    """Give compiled objects their final names: the workload, its ConfigMap and the
    ConfigMap volumes that refer to it (the only places a job's own name appears)."""
    for obj in objects:
        md = obj["metadata"]
        md["name"] = {old.job: new.job, old.config: new.config}[md["name"]]
        spec = obj.get("spec", {})
        templates = [rs["template"] for key in ("tfReplicaSpecs", "pytorchReplicaSpecs") for rs in spec.get(key, {}).values()]
        if "template" in spec:
            templates.append(spec["template"])
        for t in templates:
            for vol in t["spec"].get("volumes", []):
                if "configMap" in vol and vol["configMap"]["name"] == old.config:
                    vol["configMap"]["name"] = new.config


def compile_job(job: TrainingJob, source: str) -> CompiledJob:
    """The ConfigMap (for built-in trainers) and workload object of a spec."""
    base = Names.for_job(job.metadata.name)
    objects = _objects(job, base, source)
    name = base.job
    if job.spec.naming == "hashed":
        name = f"{base.job}-{_hash(objects)}"
        _rename(objects, base, Names.for_job(name))
    return CompiledJob(
        source=source,
        spec_name=job.metadata.name,
        namespace=job.metadata.namespace,
        job_name=name,
        objects=tuple(objects),
    )
