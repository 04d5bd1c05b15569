"""Cross-field rules of a validated spec, each reported at the location it concerns.

`check(job)` returns `(loc, message)` pairs; compiler/validate.py turns them into located
diagnostics. Pydantic handles types and ranges; these are the rules that span fields.
"""

from __future__ import annotations

import re
from compiler.specdefs import JOB_REPLICA_TYPES, PYTORCH_REPLICA_TYPES, TF_REPLICA_TYPES
from runtime.rules import CONFIG_MOUNT_DIR, TRAINER_FRAMEWORKS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:  # the models; at run time a job may also be a snapshot record (compiler/fastvalid.py)
    from typing import Iterator

    from compiler.spec import TrainingJob

Loc = tuple[str | int, ...]

#: Length of the content-hash suffix appended to hashed names ("-" + 8 hex digits).
HASH_SUFFIX_LEN = 9
#: Volume name reserved for the runtime config ConfigMap.
CONFIG_VOLUME = "specc-config"

# Env names that hold credentials: their values must come from a Secret.
_SECRET_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|ACCESSKEY|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIAL)", re.I
)
# Values that look like credentials whatever their name (AWS access key ids, private keys...).
_SECRET_VALUE = re.compile(r"(AKIA|ASIA)[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|(ghp|gho|github_pat)_[A-Za-z0-9_]{20,}")


def replica_types(framework: str) -> tuple[str, ...]:
    """The canonical replica type names allowed for a framework."""
    if framework == "tensorflow":
        return TF_REPLICA_TYPES
    if framework == "pytorch":
        return PYTORCH_REPLICA_TYPES
    return JOB_REPLICA_TYPES


def default_replicas(framework: str) -> dict[str, int]:
    """Replica types and counts used when a spec names none."""
    return {"Master": 1, "Worker": 1} if framework == "pytorch" else {"Worker": 1}


def name_budget(job: TrainingJob) -> int:
    """The longest job name whose pods `<job>-<type>-<index>` (and hash suffix) fit 63 chars."""
    spec = job.spec
    replicas = {k: r.count for k, r in (spec.replicas or {}).items()} or default_replicas(spec.framework)
    longest = max(len(t) for t in replicas)
    digits = len(str(max(replicas.values()) - 1))
    suffix = HASH_SUFFIX_LEN if spec.naming == "hashed" else 0
    if spec.framework in ("sklearn", "python"):
        # batch/v1 Job pods are named <job>-<5 random chars>; the Job controller also labels
        # pods with the job name (63 max).
        return 63 - 6 - suffix
    return 63 - 2 - longest - digits - suffix


def check(job: TrainingJob) -> list[tuple]:
    """All cross-field problems of a spec as (loc, message[, "key"]); "key" places it at the key."""
    return list(_check(job))


def _check(job: TrainingJob) -> Iterator[tuple[Loc, str]]:
    spec = job.spec
    fw = spec.framework
    # What runs.
    if (spec.trainer is None) == (spec.container is None):
        yield ("spec",), "set exactly one of 'trainer' (a built-in trainer) or 'container' (a custom image)"
    if spec.trainer is not None:
        allowed = TRAINER_FRAMEWORKS[spec.trainer.name]
        if fw not in allowed:
            yield ("spec", "trainer", "name"), (
                f"trainer '{spec.trainer.name}' runs under framework {' or '.join(allowed)}, not {fw}"
            )
    if spec.container is not None and spec.image is not None:
        yield ("spec", "image"), "'image' is the runtime image for built-in trainers; set container.image instead"

    # Replicas.
    allowed_types = replica_types(fw)
    replicas = spec.replicas
    if replicas is not None:
        if not replicas:
            yield ("spec", "replicas"), "name at least one replica type"
        for rtype, rep in replicas.items():
            if rtype not in allowed_types:
                hint = next((t for t in allowed_types if t.lower() == rtype.lower()), None)
                msg = f"unknown replica type '{rtype}' for {fw}; use one of {', '.join(allowed_types)}"
                if hint:
                    msg = f"replica type must be written '{hint}' (canonical case), not '{rtype}'"
                yield ("spec", "replicas", rtype), msg, "key"
                continue
            if rtype in ("Chief", "Master") and rep.count != 1:
                yield ("spec", "replicas", rtype, "count"), f"{rtype} must have exactly 1 replica"
            if fw in ("sklearn", "python"):
                if rep.count != 1:
                    yield ("spec", "replicas", rtype, "count"), f"a {fw} job runs as one batch/v1 Job pod: count must be 1"
                if rep.restartPolicy == "Always":
                    yield ("spec", "replicas", rtype, "restartPolicy"), "a batch/v1 Job cannot use restartPolicy Always; use OnFailure, ExitCode or Never"
        if fw == "tensorflow" and "Chief" in replicas and "Master" in replicas:
            yield ("spec", "replicas", "Master"), "a TFJob has at most one of Chief and Master"
        if fw == "pytorch":
            for need in PYTORCH_REPLICA_TYPES:
                if need not in replicas:
                    yield ("spec", "replicas"), f"a PyTorchJob needs a {need} replica (Master exactly 1, Worker >= 1)"

    # Framework-specific fields.
    if fw != "pytorch":
        if spec.elasticPolicy is not None:
            yield ("spec", "elasticPolicy"), "elasticPolicy applies to framework pytorch only"
        if spec.nprocPerNode is not None:
            yield ("spec", "nprocPerNode"), "nprocPerNode applies to framework pytorch only"
    if fw != "tensorflow" and spec.successPolicy is not None:
        yield ("spec", "successPolicy"), "successPolicy applies to framework tensorflow only"
    ep = spec.elasticPolicy
    if ep is not None and ep.minReplicas and ep.maxReplicas and ep.minReplicas > ep.maxReplicas:
        yield ("spec", "elasticPolicy", "minReplicas"), "minReplicas must not exceed maxReplicas"
    rp = spec.runPolicy
    if fw in ("sklearn", "python"):
        for field in ("cleanPodPolicy", "schedulingPolicy"):
            if getattr(rp, field) is not None:
                yield ("spec", "runPolicy", field), f"{field} applies to TFJob / PyTorchJob only"
    if spec.scheduling.queue is not None and rp.suspend is not None:
        yield ("spec", "runPolicy", "suspend"), "Kueue owns suspend when scheduling.queue is set; remove runPolicy.suspend"

    # Name budget.
    budget = name_budget(job)
    if len(job.metadata.name) > budget:
        yield ("metadata", "name"), (
            f"name is {len(job.metadata.name)} characters; at most {budget} fit so that every pod name "
            f"<job>-<type>-<index>{' and the hash suffix' if spec.naming == 'hashed' else ''} stays within 63"
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

    # Env: no literal credentials; no clash with the variables specc sets.
    envs: list[tuple[Loc, dict]] = [(("spec", "env"), spec.env)]
    envs += [(("spec", "replicas", t, "env"), r.env) for t, r in (replicas or {}).items()]
    reserved = {"SPECC_CONFIG", "TF_CONFIG", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"}
    if spec.storage is not None and spec.storage.credentials is not None:
        reserved |= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for base, env in envs:
        for name, value in env.items():
            if name in reserved:
                yield (*base, name), f"{name} is set by specc or the training operator; do not set it here"
            elif isinstance(value, str) and value and (_SECRET_NAME.search(name) or _SECRET_VALUE.search(value)):
                yield (*base, name), (
                    f"literal credential in {name}: reference a Kubernetes Secret instead "
                    "({secretKeyRef: {name: <secret>, key: <key>}})"
                )
            elif not isinstance(value, str):
                refs = [k for k in ("secretKeyRef", "configMapKeyRef", "fieldRef") if getattr(value, k) is not None]
                if len(refs) != 1:
                    yield (*base, name), "set exactly one of secretKeyRef, configMapKeyRef or fieldRef"
    # Credential-looking values in args and commands.
    arg_lists: list[tuple[Loc, list[str]]] = [(("spec", "replicas", t, "args"), r.args) for t, r in (replicas or {}).items()]
    if spec.container is not None:
        arg_lists += [(("spec", "container", "command"), spec.container.command), (("spec", "container", "args"), spec.container.args)]
    for base, args in arg_lists:
        for i, arg in enumerate(args):
            if _SECRET_VALUE.search(arg) or re.search(r"(?i)(password|secret|token|access[_-]?key)=\S", arg):
                yield (*base, i), "literal credential in an argument: pass it through env from a Secret"
    for key, value in job.metadata.annotations.items():
        if _SECRET_VALUE.search(value):
            yield ("metadata", "annotations", key), "literal credential in an annotation"

    # Storage.
    if spec.trainer is not None and spec.storage is None and _uses_s3(spec.trainer):
        yield ("spec", "trainer"), "the trainer reads or writes s3:// URIs: set spec.storage.endpoint (and credentials)"


def _uses_s3(trainer) -> bool:
    return any(isinstance(v, str) and v.startswith("s3://") for v in trainer.model_dump().values())
