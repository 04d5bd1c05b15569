"""Cross-field rules of a validated spec, each reported at the location it concerns.

`check(job)` returns `(loc, message[, "key"])` tuples; compiler/validate.py turns them into
located diagnostics. The models (compiler/spec.py) handle types and ranges; these are the rules
that span fields. Rules of one output kind live in its module (`check` in compiler/kinds/).
"""

from __future__ import annotations

from compiler import kinds
from compiler.kinds.pod import CONFIG_VOLUME
from runtime.contract import CONFIG_ENV, CONFIG_MOUNT_DIR, TRAINER_FRAMEWORKS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Iterator

    from compiler.spec import TrainingJob

Loc = tuple[str | int, ...]

def check(job: TrainingJob) -> list[tuple]:
    """All cross-field problems of a spec as (loc, message[, "key"]); "key" places it at the key."""
    return list(_check(job)) or list(_check_admission(job))


def _check(job: TrainingJob) -> Iterator[tuple]:
    spec = job.spec
    fw = spec.framework
    kind = kinds.workload(job)
    types = kinds.framework_kind(job)  # the kind whose replica types the spec is written in
    # What runs.
    if (spec.trainer is None) == (spec.container is None):
        yield ("spec",), "set exactly one of 'trainer' (a built-in trainer) or 'container' (a custom image)"
    if spec.trainer is not None:
        allowed = TRAINER_FRAMEWORKS[spec.trainer.name]
        if fw not in allowed:
            yield ("spec", "trainer", "name"), (
                f"trainer '{spec.trainer.name}' runs under framework {' or '.join(allowed)}, not {fw}"
            )
        if spec.trainer.name == "recommender" and spec.trainer.export_directory is None and spec.trainer.directory_uri is None:
            yield ("spec", "trainer", "directory_uri"), "set export_directory or directory_uri (where the export folder name is read)"
    if spec.container is not None and spec.image is not None:
        yield ("spec", "image"), "'image' is the runtime image for built-in trainers; set container.image instead"

    # Replicas.
    replicas = spec.replicas
    if replicas is not None:
        if not replicas:
            yield ("spec", "replicas"), "name at least one replica type"
        for rtype, rep in replicas.items():
            if rtype not in types.REPLICA_TYPES:
                hint = next((t for t in types.REPLICA_TYPES if t.lower() == rtype.lower()), None)
                msg = f"unknown replica type '{rtype}' for {fw}; use one of {', '.join(types.REPLICA_TYPES)}"
                if hint:
                    msg = f"replica type must be written '{hint}' (canonical case), not '{rtype}'"
                yield ("spec", "replicas", rtype), msg, "key"
            elif rtype in types.SINGLETONS and (rep if isinstance(rep, int) else rep.count) != 1:
                yield ("spec", "replicas", rtype, "count"), f"{rtype} must have exactly 1 replica"
    yield from kinds.check_target(job)
    yield from kind.check(job)
    reps = [(t, r) for t, r in (replicas or {}).items() if not isinstance(r, int)]

    # Fields of other kinds.
    for other in kinds.WORKLOADS:
        if other is kind or other is types:
            continue
        for field in other.SPEC_FIELDS:
            if getattr(spec, field) is not None:
                yield ("spec", field), f"{field} applies to framework {' or '.join(other.FRAMEWORKS)} only"
    if spec.scheduling.queue is not None and spec.runPolicy.suspend is not None:
        yield ("spec", "runPolicy", "suspend"), "Kueue owns suspend when scheduling.queue is set; remove runPolicy.suspend"

    # Name budget.
    budget = kind.name_budget(job)
    if len(job.metadata.name) > budget:
        yield ("metadata", "name"), (
            f"name is {len(job.metadata.name)} characters; at most {budget} fit so that every pod name "
            f"{getattr(kind, 'POD_NAME_PATTERN', '<job>-<type>-<index>')}"
            f"{' and the hash suffix' if spec.naming == 'hashed' else ''} stays within 63"
        )

    # Volumes.
    seen_names: dict[str, int] = {}
    seen_paths: dict[str, int] = {}
    for i, vol in enumerate(spec.volumes):
        if (vol.persistentVolumeClaim is None) == (vol.emptyDir is None):
            yield ("spec", "volumes", i), "set exactly one of persistentVolumeClaim or emptyDir"
        if vol.name == CONFIG_VOLUME:
            yield ("spec", "volumes", i, "name"), f"volume name '{CONFIG_VOLUME}' is reserved for the runtime config"
        elif vol.name in seen_names:
            yield ("spec", "volumes", i, "name"), f"duplicate volume name '{vol.name}' (first at volumes[{seen_names[vol.name]}])"
        seen_names.setdefault(vol.name, i)
        path = vol.mountPath.rstrip("/") or "/"
        if spec.trainer is not None and (path == CONFIG_MOUNT_DIR or CONFIG_MOUNT_DIR.startswith(path + "/") or path.startswith(CONFIG_MOUNT_DIR + "/") or path == "/"):
            yield ("spec", "volumes", i, "mountPath"), f"mountPath {vol.mountPath} would hide the runtime config at {CONFIG_MOUNT_DIR}"
        elif path in seen_paths:
            yield ("spec", "volumes", i, "mountPath"), f"duplicate mountPath {vol.mountPath} (first at volumes[{seen_paths[path]}])"
        seen_paths.setdefault(path, i)

    # Resources: a limit below its request is refused by the API server.
    res = [(("spec", "resources"), spec.resources)] + [(("spec", "replicas", t, "resources"), r.resources) for t, r in reps]
    for base, r in res:
        if r is None:
            continue
        for request, limit in (("cpu", "cpuLimit"), ("memory", "memoryLimit")):
            yield from _request_within_limit(base, r, request, limit)

    # Tolerations, as the API server validates them.
    for i, tol in enumerate(spec.scheduling.tolerations):
        loc = ("spec", "scheduling", "tolerations", i)
        operator = tol.operator or "Equal"
        if not tol.key and operator != "Exists":
            yield (*loc, "operator"), "a toleration without a key matches every taint and needs operator: Exists"
        if operator == "Exists" and tol.value:
            yield (*loc, "value"), "operator Exists matches any value: remove value (or use operator: Equal)"
        if tol.tolerationSeconds is not None and tol.effect != "NoExecute":
            yield (*loc, "tolerationSeconds"), "tolerationSeconds applies only to effect: NoExecute"

    # Env: no clash with the variables specc sets; references name exactly one source.
    envs: list[tuple[Loc, dict]] = [(("spec", "env"), spec.env)]
    envs += [(("spec", "replicas", t, "env"), r.env) for t, r in reps]
    reserved = {CONFIG_ENV, *(name for k in kinds.WORKLOADS for name in k.OPERATOR_ENV)}
    if spec.storage is not None and spec.storage.credentials is not None:
        reserved |= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for base, env in envs:
        for name, value in env.items():
            if name in reserved:
                yield (*base, name), f"{name} is set by specc or the training operator; do not set it here"
            elif not isinstance(value, str):
                refs = [k for k in ("secretKeyRef", "configMapKeyRef", "fieldRef") if getattr(value, k) is not None]
                if len(refs) != 1:
                    yield (*base, name), "set exactly one of secretKeyRef, configMapKeyRef or fieldRef"

    # Storage.
    if spec.trainer is not None and spec.storage is None and _uses_s3(spec.trainer):
        yield ("spec", "trainer"), "the trainer reads or writes s3:// URIs: set spec.storage.endpoint (and credentials)"


def _check_admission(job: TrainingJob) -> Iterator[tuple]:
    """A kind's last word, asked only of a spec that passed every other rule."""
    kind = kinds.workload(job)
    if hasattr(kind, "admission_check"):
        yield from kind.admission_check(job)


def _request_within_limit(base: Loc, r, request: str, limit: str) -> Iterator[tuple]:
    req, lim = getattr(r, request), getattr(r, limit)
    if req is None or lim is None:
        return
    from compiler.quantity import parse_quantity

    if parse_quantity(req) > parse_quantity(lim):
        yield (*base, limit), f"{limit} {lim} is below the {request} request {req}; a limit must be at least the request"


def _uses_s3(trainer) -> bool:
    return any(isinstance(v, str) and v.startswith("s3://") for v in trainer.model_dump().values())
