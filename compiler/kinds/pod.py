"""Pod pieces every workload kind shares: names, labels, the main container, the pod template."""

from __future__ import annotations

from compiler.naming import SOURCE_ANNOTATION, Names
from runtime.contract import CONFIG_ENV, CONFIG_MOUNT_DIR, CONFIG_PATH, DEFAULT_IMAGE, RUNTIME_COMMAND, RUNTIME_UID

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:  # validated records of these models (compiler/validator.py)
    from compiler.spec import EnvFrom, Replica, Resources, TrainingJob

KUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: Volume holding the runtime config ConfigMap (reserved: a spec cannot name a volume so).
CONFIG_VOLUME = "specc-config"
#: The memory-backed emptyDir at /dev/shm that resources.shm asks for.
SHM_VOLUME, SHM_MOUNT = "specc-shm", "/dev/shm"
#: Pod security of built-in trainer pods: the Pod Security "restricted" profile, run as the
#: runtime image's non-root user, with volumes (a PVC at /train) group-writable for it.
BUILTIN_POD_SECURITY = {
    "fsGroup": RUNTIME_UID,
    "fsGroupChangePolicy": "OnRootMismatch",
    "runAsGroup": RUNTIME_UID,
    "runAsNonRoot": True,
    "runAsUser": RUNTIME_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}

#: What a kind's `exit_action` does with a replica whose container exited: nothing more (it
#: ended), restart the container in place, recreate its pod (the old one is deleted), or create
#: another pod (the failed one stays, as a Job's do).
END, RESTART, RECREATE, REPLACE = "end", "restart", "recreate", "replace"
#: A replica's phase as a status counts it.
ACTIVE, SUCCEEDED, FAILED = "active", "succeeded", "failed"


def labels(job: TrainingJob) -> dict[str, str]:
    """Labels on every object: the user's, plus specc's own identity labels."""
    out = dict(job.metadata.labels)
    out["app.kubernetes.io/managed-by"] = "specc"
    out["app.kubernetes.io/name"] = job.metadata.name
    out["specc.dev/job"] = job.metadata.name
    return dict(sorted(out.items()))


def metadata(job: TrainingJob, name: str, *, extra_labels: dict[str, str] | None = None, source: str | None = None) -> dict:
    """metadata block: name, namespace, labels, annotations (sorted)."""
    lab = labels(job)
    if extra_labels:
        lab = dict(sorted({**lab, **extra_labels}.items()))
    ann = dict(job.metadata.annotations)
    if source:
        ann[SOURCE_ANNOTATION] = source
    md: dict = {"name": name, "namespace": job.metadata.namespace, "labels": lab}
    if ann:
        md["annotations"] = dict(sorted(ann.items()))
    return md


def replicas(job: TrainingJob, types: tuple[str, ...], default: dict[str, int]) -> dict[str, Replica]:
    """The spec's replica types in canonical order with their settings (`Worker: 2` expanded,
    `default` when the spec names none). Types outside `types` are left out (checks report them)."""
    from compiler.validator import validate

    given = job.spec.replicas or default
    out = {}
    for t in types:
        rep = given.get(t)
        if rep is not None:
            out[t] = validate({"count": rep}, "Replica") if isinstance(rep, int) else rep
    return out


def pod_name_budget(job: TrainingJob, types: dict[str, int], *, suffix: int) -> int:
    """The longest job name whose pods `<job>-<type>-<index>` fit 63 characters with a name
    suffix of `suffix` characters (the content hash)."""
    longest = max(len(t) for t in types)
    digits = len(str(max(types.values()) - 1))
    return 63 - 2 - longest - digits - suffix


def _env_entry(name: str, value: str | EnvFrom) -> dict:
    if isinstance(value, str):
        return {"name": name, "value": value}
    if value.secretKeyRef is not None:
        ref = value.secretKeyRef
        src = {"secretKeyRef": _ref(ref)}
    elif value.configMapKeyRef is not None:
        src = {"configMapKeyRef": _ref(value.configMapKeyRef)}
    else:
        src = {"fieldRef": {"fieldPath": value.fieldRef.fieldPath}}
    return {"name": name, "valueFrom": src}


def _ref(ref) -> dict:
    out = {"name": ref.name, "key": ref.key}
    if ref.optional is not None:
        out["optional"] = ref.optional
    return out


def env(job: TrainingJob, replica: Replica) -> list[dict]:
    """Container env: specc's own variables, storage credentials, then spec and replica env (sorted)."""
    spec = job.spec
    out: list[dict] = []
    if spec.trainer is not None:
        out.append({"name": CONFIG_ENV, "value": CONFIG_PATH})
    if spec.storage is not None and spec.storage.credentials is not None:
        cred = spec.storage.credentials
        out.append({"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": cred.secretName, "key": cred.accessKeyKey}}})
        out.append({"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": cred.secretName, "key": cred.secretKeyKey}}})
    merged = {**spec.env, **replica.env}
    out += [_env_entry(k, merged[k]) for k in sorted(merged)]
    return out


_RESOURCE_FIELDS = ("cpu", "memory", "cpuLimit", "memoryLimit", "gpus", "extended", "ephemeralStorage",
                    "ephemeralStorageLimit", "shm")


def merged_resources(job: TrainingJob, replica: Replica) -> dict:
    """A replica's resource fields: each one the replica sets, else the spec's."""
    spec_res, rep_res = job.spec.resources, replica.resources
    out = {}
    for f in _RESOURCE_FIELDS:
        if rep_res is not None and f in rep_res.model_fields_set:
            out[f] = getattr(rep_res, f)
        elif spec_res is not None:
            out[f] = getattr(spec_res, f)
    if spec_res is not None and rep_res is not None:
        out["extended"] = {**spec_res.extended, **rep_res.extended}
    return out


def quantity(value) -> str:
    """A quantity as Kubernetes writes it: a number becomes its decimal string."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    from decimal import Decimal

    return format(Decimal(repr(value)), "f")


def resources(res: dict) -> dict | None:
    """requests/limits from merged resource fields (see merged_resources)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if res.get("cpu") is not None:
        requests["cpu"] = quantity(res["cpu"])
    if res.get("cpuLimit") is not None:
        limits["cpu"] = quantity(res["cpuLimit"])
    for name, request, limit in (("memory", "memory", "memoryLimit"),
                                 ("ephemeral-storage", "ephemeralStorage", "ephemeralStorageLimit")):
        if res.get(request) is not None:
            requests[name] = quantity(res[request])
            limits[name] = quantity(res.get(limit) if res.get(limit) is not None else res[request])
        elif res.get(limit) is not None:
            limits[name] = quantity(res[limit])
    if res.get("gpus"):
        limits["nvidia.com/gpu"] = str(res["gpus"])
    for name, count in (res.get("extended") or {}).items():
        limits[name] = str(count)
    out: dict = {}
    if limits:
        out["limits"] = dict(sorted(limits.items()))
    if requests:
        out["requests"] = dict(sorted(requests.items()))
    return out or None


def container(job: TrainingJob, replica: Replica, *, name: str, port: tuple[str, int] | None) -> dict:
    """The main container of one replica type."""
    spec = job.spec
    c: dict = {"name": name}
    if spec.container is not None:
        c["image"] = replica.image or spec.container.image
        command = spec.container.command if replica.command is None else replica.command
        if command:
            c["command"] = list(command)
        args = [*spec.container.args, *replica.args]
        if spec.container.workingDir:
            c["workingDir"] = spec.container.workingDir
    else:
        c["image"] = replica.image or spec.image or DEFAULT_IMAGE
        c["command"] = [RUNTIME_COMMAND]
        args = ["--config", CONFIG_PATH, *replica.args]
    if args:
        c["args"] = args
    e = env(job, replica)
    if e:
        c["env"] = e
    if port is not None:
        c["ports"] = [{"containerPort": port[1], "name": port[0]}]
    res = merged_resources(job, replica)
    r = resources(res)
    if r:
        c["resources"] = r
    if spec.trainer is not None:
        c["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    mounts = []
    if spec.trainer is not None:
        mounts.append({"mountPath": CONFIG_MOUNT_DIR, "name": CONFIG_VOLUME, "readOnly": True})
    if res.get("shm") is not None:
        mounts.append({"mountPath": SHM_MOUNT, "name": SHM_VOLUME})
    for v in spec.volumes:
        m = {"mountPath": v.mountPath, "name": v.name}
        if v.readOnly or v.secret is not None:
            m["readOnly"] = True
        if v.subPath is not None:
            m["subPath"] = v.subPath
        mounts.append(m)
    if mounts:
        c["volumeMounts"] = mounts
    return c


def volumes(job: TrainingJob, names: Names, replica: Replica) -> list[dict]:
    """Pod volumes: the runtime config ConfigMap, /dev/shm, then the spec's PVCs and emptyDirs."""
    out = []
    if job.spec.trainer is not None:
        out.append({"name": CONFIG_VOLUME, "configMap": {"name": names.config}})
    shm = merged_resources(job, replica).get("shm")
    if shm is not None:
        out.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": quantity(shm)}})
    for v in job.spec.volumes:
        if v.persistentVolumeClaim is not None:
            src: dict = {"persistentVolumeClaim": {"claimName": v.persistentVolumeClaim}}
            if v.readOnly:
                src["persistentVolumeClaim"]["readOnly"] = True
        elif v.configMap is not None:
            src = {"configMap": {"name": v.configMap}}
        elif v.secret is not None:
            src = {"secret": {"secretName": v.secret}}
        else:
            ed: dict = {}
            if v.emptyDir.medium:
                ed["medium"] = v.emptyDir.medium
            if v.emptyDir.sizeLimit:
                ed["sizeLimit"] = quantity(v.emptyDir.sizeLimit)
            src = {"emptyDir": ed}
        out.append({"name": v.name, **src})
    return out


def pod_template(job: TrainingJob, names: Names, replica: Replica, *, container_name: str,
                 port: tuple[str, int] | None, restart_policy: str | None = None) -> dict:
    """A PodTemplateSpec for one replica type: what specc generates, then spec.podTemplate and the
    replica's podTemplate merged over it (compiler/podtemplate.py)."""
    spec = job.spec
    pod: dict = {}
    sched = spec.scheduling
    if sched.serviceAccountName:
        pod["serviceAccountName"] = sched.serviceAccountName
    if sched.priorityClassName:
        pod["priorityClassName"] = sched.priorityClassName
    if sched.nodeSelector:
        pod["nodeSelector"] = dict(sorted(sched.nodeSelector.items()))
    if sched.tolerations:
        pod["tolerations"] = [t.model_dump(exclude_none=True) for t in sched.tolerations]
    if restart_policy:
        pod["restartPolicy"] = restart_policy
    if spec.trainer is not None:
        pod["securityContext"] = dict(BUILTIN_POD_SECURITY)
    pod["containers"] = [container(job, replica, name=container_name, port=port)]
    vols = volumes(job, names, replica)
    if vols:
        pod["volumes"] = vols
    template = {"metadata": {"labels": labels(job)}, "spec": pod}
    for fragment in (spec.podTemplate, replica.podTemplate):
        if fragment is not None:
            from compiler.podtemplate import merge

            template = merge(template, fragment.model_dump(exclude_none=True))
    return template


def workload_object(job: TrainingJob, names: Names, source: str | None, api_version: str, kind: str, spec: dict) -> dict:
    """A workload object: apiVersion, kind, the job's metadata (and Kueue label) and `spec`."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata(job, names.job, extra_labels=job_labels(job), source=source),
        "spec": spec,
    }


def job_labels(job: TrainingJob) -> dict[str, str] | None:
    """Extra labels on the workload object itself (the Kueue queue)."""
    q = job.spec.scheduling.queue
    return {KUEUE_LABEL: q} if q else None
