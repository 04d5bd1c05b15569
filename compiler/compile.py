"""Compile stage: a validated TrainingJob -> its Kubernetes objects (plain dicts), named."""

from __future__ import annotations

from compiler import kinds
from compiler.compiled import CompiledJob
from compiler.kinds import configmap
from compiler.naming import Names, content_hash

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from compiler.spec import TrainingJob


#: Client-side apply (`kubectl apply`, Argo CD's default) stores the whole object as JSON in this
#: annotation, and the API server caps an object's annotations at 256 KiB in total.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_ANNOTATION_BYTES = 262_144


def applied_size(obj: dict) -> int:
    """Bytes of annotations an object carries once client-side apply has stored it."""
    import json

    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    own = obj.get("metadata", {}).get("annotations") or {}
    return len(LAST_APPLIED) + len(body) + sum(len(k.encode()) + len(v.encode()) for k, v in own.items())


def too_large(objects: list[dict]) -> list[str]:
    """A message for each object the API server would refuse under client-side apply."""
    out = []
    for obj in objects:
        size = applied_size(obj)
        if size > MAX_ANNOTATION_BYTES:
            out.append(f"the rendered {obj['kind']} is too large to apply: with its last-applied-configuration "
                       f"annotation it needs {size:,} bytes of annotations, and Kubernetes allows {MAX_ANNOTATION_BYTES:,} "
                       "(kubectl apply and Argo CD store the whole object there); make the spec smaller")
    return out


def objects(job: TrainingJob, names: Names, source: str | None, config: str | None = None) -> list[dict]:
    """The objects of a job under the given names, in apply order (ConfigMap first, the workload
    last); `config` is the trainer's config.json when already made."""
    kind = kinds.workload(job)
    if hasattr(kind, "objects"):
        return kind.objects(job, names, source, config)
    out = []
    if job.spec.trainer is not None:
        out.append(configmap.build(job, names, source=source, text=config))
    out.append(kind.build(job, names, source=source))
    return out


def job_name(job: TrainingJob, config: str | None = None) -> str:
    """metadata.name, plus the content hash of the job's objects under hashed naming."""
    base = job.metadata.name
    if job.spec.naming == "fixed":
        return base
    objs = objects(job, Names.for_job(base), None, config)
    kind = kinds.workload(job)
    if hasattr(kind, "hash_view"):
        objs = kind.hash_view(objs)
    return f"{base}-{content_hash(objs)}"


def compile_job(job: TrainingJob, source: str) -> CompiledJob:
    """The named objects of a spec read from `source`: built once under the spec's own name for
    the hash, and once under the final name."""
    config = configmap.config_text(job) if job.spec.trainer is not None else None
    name = job_name(job, config)
    return CompiledJob(
        source=source,
        spec_name=job.metadata.name,
        namespace=job.metadata.namespace,
        job_name=name,
        objects=tuple(objects(job, Names.for_job(name), source, config)),
    )
