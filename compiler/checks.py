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
            custom_only = all(fw not in frameworks for frameworks in TRAINER_FRAMEWORKS.values())
            yield ("spec", "trainer", "name"), (
                (f"framework {fw} runs a custom image only: set spec.container instead of a trainer; " if custom_only else "")
                + f"trainer '{spec.trainer.name}' runs under framework {' or '.join(allowed)}, not {fw}"
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
    said = set()  # where the kind has its own word (a TrainJob's reserved env): said once
    for problem in kind.check(job):
        said.add(problem[0])
        yield problem
    reps = [(t, r) for t, r in (replicas or {}).items() if not isinstance(r, int)]
    if spec.trainer is not None:
        for t, r in reps:
            if r.command is not None:
                yield ("spec", "replicas", t, "command"), "command applies to custom containers (spec.container) only; a built-in trainer runs specc's runtime"

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
        if sum(getattr(vol, src) is not None for src in _VOLUME_SOURCES) != 1:
            yield ("spec", "volumes", i), f"set exactly one of {', '.join(_VOLUME_SOURCES)}"
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
    yield from _requests_within_limits(job)

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

    # Pod template fragments.
    yield from _pod_templates(job, kind, reps)

    # Env: no clash with the variables specc sets; references name exactly one source.
    envs: list[tuple[Loc, dict]] = [(("spec", "env"), spec.env)]
    envs += [(("spec", "replicas", t, "env"), r.env) for t, r in reps]
    reserved = _reserved_env(job)
    for base, env in envs:
        for name, value in env.items():
            if name in reserved and (*base, name) not in said:
                yield (*base, name), f"{name} is set by specc or the training operator; do not set it here"
            elif not isinstance(value, str):
                refs = [k for k in ("secretKeyRef", "configMapKeyRef", "fieldRef") if getattr(value, k) is not None]
                if len(refs) != 1:
                    yield (*base, name), "set exactly one of secretKeyRef, configMapKeyRef or fieldRef"

    # Storage.
    if spec.trainer is not None and spec.storage is None and _uses_s3(spec.trainer):
        yield ("spec", "trainer"), "the trainer reads or writes s3:// URIs: set spec.storage.endpoint (and credentials)"


_VOLUME_SOURCES = ("persistentVolumeClaim", "emptyDir", "configMap", "secret")


def _reserved_env(job: TrainingJob) -> set[str]:
    """Env variables specc or the operator sets in the main container."""
    names = {CONFIG_ENV, *(name for k in kinds.WORKLOADS for name in k.OPERATOR_ENV)}
    if job.spec.storage is not None and job.spec.storage.credentials is not None:
        names |= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    return names


_FIRST_CLASS = {
    "image": "spec.replicas.<Type>.image (or spec.image / spec.container.image)",
    "command": "spec.replicas.<Type>.command (or spec.container.command)",
    "args": "spec.replicas.<Type>.args (or spec.container.args)",
}
_OWN_LABELS = ("app.kubernetes.io/managed-by", "app.kubernetes.io/name", "specc.dev/job")


def _pod_templates(job: TrainingJob, kind, reps: list) -> Iterator[tuple]:
    """podTemplate fragments: valid against the pinned PodTemplateSpec schema, off the fields specc
    owns, and, merged, a pod Kubernetes accepts."""
    spec = job.spec
    fragments = [(("spec", "podTemplate"), spec.podTemplate)] + [
        (("spec", "replicas", t, "podTemplate"), r.podTemplate) for t, r in reps]
    fragments = [(base, f) for base, f in fragments if f is not None]
    if not fragments:
        return
    from compiler.podtemplate import problems

    for base, frag in fragments:
        for key in (frag.metadata.labels if frag.metadata else {}):
            if key in _OWN_LABELS:
                yield (*base, "metadata", "labels", key), f"label {key} is specc's (it identifies the job's pods); use another key", "key"
        if frag.spec is None:
            continue
        for loc, message, at_key in problems({"spec": frag.spec}):
            yield ((*base, *loc), message, "key") if at_key else ((*base, *loc), message)
        yield from _owned(job, kind, (*base, "spec"), frag.spec)
    yield from _merged_pods(job, kind, fragments)


def _owned(job: TrainingJob, kind, base: Loc, pod: dict) -> Iterator[tuple]:
    """Fields of a fragment's PodSpec that specc sets: a located error, never a silent override."""
    if "restartPolicy" in pod:
        yield (*base, "restartPolicy"), ("the operator sets the pod's restartPolicy from the replica's: "
                                          "set spec.replicas.<Type>.restartPolicy"), "key"
    for i, vol in enumerate(pod.get("volumes") or []):
        if isinstance(vol, dict) and str(vol.get("name", "")).startswith("specc-"):
            yield (*base, "volumes", i, "name"), "volume names starting with specc- are specc's (the runtime config, /dev/shm)"
    reserved = _reserved_env(job)
    for i, c in enumerate(pod.get("containers") or []):
        if not isinstance(c, dict) or c.get("name") != kind.CONTAINER:
            continue
        where = (*base, "containers", i)
        for field, instead in _FIRST_CLASS.items():
            if field in c and job.spec.trainer is not None and field != "image":
                yield (*where, field), (f"the built-in trainer's {field} is specc's runtime; pass extra arguments "
                                        "with spec.replicas.<Type>.args"), "key"
            elif field in c:
                yield (*where, field), f"the {kind.CONTAINER} container's {field} is set by specc: use {instead}", "key"
        for j, e in enumerate(c.get("env") or []):
            if isinstance(e, dict) and e.get("name") in reserved:
                yield (*where, "env", j, "name"), f"{e['name']} is set by specc or the training operator; do not set it here"
        for j, m in enumerate(c.get("volumeMounts") or []):
            if isinstance(m, dict) and (str(m.get("name", "")).startswith("specc-") or m.get("mountPath") == CONFIG_MOUNT_DIR):
                yield (*where, "volumeMounts", j), f"{CONFIG_MOUNT_DIR} and the specc- volumes are mounted by specc"


_NATIVE = ("cpu", "memory", "ephemeral-storage")


def _merged_pods(job: TrainingJob, kind, fragments: list) -> Iterator[tuple]:
    """What Kubernetes checks on the pod once the fragments are merged in: images, unique container
    names, mounts of existing volumes, requests within limits, extended resources not overcommitted."""
    from compiler.kinds.pod import pod_template
    from compiler.naming import Names
    from compiler.quantity import parse_quantity

    names = Names.for_job(job.metadata.name)
    where_of = dict(fragments)
    for rtype, rep in kinds.replicas(job).items():
        base = next((b for b in ((("spec", "replicas", rtype, "podTemplate")), ("spec", "podTemplate")) if b in where_of), None)
        if base is None:
            continue
        try:
            pod = pod_template(job, names, rep, container_name=kind.CONTAINER, port=kind.PORT)["spec"]
        except (TypeError, AttributeError, ValueError):
            continue  # a malformed fragment, reported by the schema
        containers = [("containers", c) for c in pod.get("containers") or []] + \
                     [("initContainers", c) for c in pod.get("initContainers") or []]
        # Requests against limits where a fragment sets a container's resources (the rest is
        # spec.resources, checked by _requests_within_limits).
        sized = {c.get("name") for b in (("spec", "podTemplate"), ("spec", "replicas", rtype, "podTemplate"))
                 if b in where_of and where_of[b].spec
                 for field in ("containers", "initContainers") for c in where_of[b].spec.get(field) or []
                 if isinstance(c, dict) and "resources" in c}
        seen: set = set()
        volumes = {v.get("name") for v in pod.get("volumes") or [] if isinstance(v, dict)}
        for field, c in containers:
            if not isinstance(c, dict):
                continue
            name = c.get("name")
            if name in seen:
                yield base, f"{rtype} pods have two containers named {name!r} (containers and initContainers share names)"
            seen.add(name)
            if not c.get("image"):
                yield base, (f"{rtype} pods: container {name!r} has no image; the main container is named "
                             f"{kind.CONTAINER!r} (a fragment naming another container adds one)")
            for m in c.get("volumeMounts") or []:
                if isinstance(m, dict) and m.get("name") not in volumes:
                    yield base, f"{rtype} pods: container {name!r} mounts volume {m.get('name')!r}, which the pod does not have"
            res = (c.get("resources") or {}) if name in sized else {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            for rname, req in requests.items():
                lim = limits.get(rname)
                try:
                    over = lim is not None and parse_quantity(req) > parse_quantity(lim)
                    unequal = rname not in _NATIVE and not rname.startswith("hugepages-") and (
                        lim is None or parse_quantity(req) != parse_quantity(lim))
                except ValueError:
                    continue  # not a quantity: the schema or the API says so
                if over:
                    yield base, f"{rtype} pods: container {name!r} limits {rname} to {lim}, below its request {req}"
                elif unequal:
                    yield base, (f"{rtype} pods: container {name!r} requests {rname} {req} without an equal limit; "
                                 "an extended resource cannot be overcommitted: set its limit to the request")


def _check_admission(job: TrainingJob) -> Iterator[tuple]:
    """A kind's last word, asked only of a spec that passed every other rule."""
    kind = kinds.workload(job)
    if hasattr(kind, "admission_check"):
        yield from kind.admission_check(job)


_LIMITS = (("cpu", "cpuLimit"), ("memory", "memoryLimit"), ("ephemeralStorage", "ephemeralStorageLimit"))


def _requests_within_limits(job: TrainingJob) -> Iterator[tuple]:
    """Each replica's merged resources (a replica's fields over the spec's, as rendered): no limit
    below its request. Located at the limit where the replica sets it, else at the replica's
    request, else at the spec's limit."""
    from compiler.kinds.pod import merged_resources, quantity

    seen = set()
    for rtype, rep in kinds.replicas(job).items():
        merged = merged_resources(job, rep)
        own = rep.resources.model_fields_set if rep.resources is not None else set()
        for request, limit in _LIMITS:
            req, lim = merged.get(request), merged.get(limit)
            if req is None or lim is None:
                continue
            from compiler.quantity import parse_quantity  # only here: fractions is a slow import

            if parse_quantity(quantity(req)) <= parse_quantity(quantity(lim)):  # as rendered (1.5 -> "1.5")
                continue
            field = limit if limit in own or request not in own else request
            base = ("spec", "replicas", rtype, "resources") if field in own else ("spec", "resources")
            if (*base, field) not in seen:
                seen.add((*base, field))
                yield (*base, field), f"{limit} {lim} is below the {request} request {req}; a limit must be at least the request"


def _uses_s3(trainer) -> bool:
    return any(isinstance(v, str) and v.startswith("s3://") for v in trainer.model_dump().values())
