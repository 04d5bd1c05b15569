"""The plan of a local run: rendered manifests in, the replicas to start out.

`read` finds the one workload among the manifests and everything a cluster would need instead of
this machine (LocalRunError). `make` turns it into one Replica per pod: argv (`specc-runtime`
becomes `python -m runtime`, or what a launcher returns), the environment the operator gives it
(the kind module's `replica_env` with loopback addresses), the pod's volumes as local folders
(through SPECC_PATH_MAP) and the folders and ConfigMap files to lay out, which only `prepare`
writes. Everything the kind decides comes from its module in compiler/kinds.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Mapping

from compiler.kinds import WORKLOADS, by_kind
from localrun.lifecycle import Member
from runtime.contract import CONFIG_ENV, PATH_MAP_ENV, RUNTIME_COMMAND
from runtime.errors import RuntimeFailure
from runtime.storage import local_path

#: launcher(container, replica_type, index) -> argv, run in place of `python -m runtime`.
Launcher = Callable[[dict, str, int], list[str]]

LOOPBACK = "127.0.0.1"
#: Kubernetes' default terminationGracePeriodSeconds.
DEFAULT_GRACE = 30.0
#: Never inherited from the caller's environment: what the operator sets for any kind, the path
#: map, and torchrun's per-process rank (a stale one would mislead a replica).
NOT_INHERITED = frozenset({PATH_MAP_ENV, "LOCAL_RANK", *(name for k in WORKLOADS for name in k.OPERATOR_ENV),
                           *(name for k in WORKLOADS for name in getattr(k, "NODE_ENV", ()))})
_PYTHON_RE = re.compile(r"^python(3(\.\d+)?)?$")
_VAR_REF_RE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


class LocalRunError(Exception):
    """The job cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class Workload:
    """The one workload object among the manifests, read as the operator reads it."""

    kind: ModuleType  #: its module in compiler/kinds
    obj: dict
    members: tuple[Member, ...]  #: every replica, in start order
    templates: dict[str, dict]  #: replica type -> pod template
    containers: dict[str, dict]  #: replica type -> the container that runs
    configmaps: dict[str, dict]

    @property
    def name(self) -> str:
        return _name(self.obj)

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "default")

    @property
    def spec(self) -> dict:
        return self.obj.get("spec") or {}


@dataclass(frozen=True)
class Replica(Member):
    """One replica as it runs here: its process's argv, environment and folders."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    path_map: dict[str, str]  #: mountPath -> local folder (SPECC_PATH_MAP)
    empty_dirs: tuple[Path, ...]  #: emptied again when its pod is recreated


@dataclass(frozen=True)
class Plan:
    """A job ready to run: its replicas, and what `prepare` lays out on disk."""

    workload: Workload
    replicas: tuple[Replica, ...]
    work_dir: Path
    folders: tuple[Path, ...]
    files: dict[Path, bytes]  #: ConfigMap files
    warnings: tuple[str, ...]
    grace: float  #: the pods' terminationGracePeriodSeconds (the longest)

    def replica(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)


def read(manifests: list[dict]) -> Workload:
    """The workload of a job's manifests; LocalRunError for one that can only run in a cluster."""
    jobs = [m for m in manifests if isinstance(m, dict) and by_kind(m.get("kind")) is not None]
    if len(jobs) != 1:
        names = [k.KIND for k in WORKLOADS]
        found = ", ".join(sorted(str(m.get("kind")) for m in jobs)) or "none"
        raise LocalRunError(f"expected exactly one {', '.join(names[:-1])} or {names[-1]} to run, found {found}")
    obj = jobs[0]
    kind = by_kind(obj["kind"])
    name = _name(obj)
    if hasattr(kind, "resolve"):  # a TrainJob reads its runtime too
        try:
            obj = kind.resolve(obj, manifests)
        except ValueError as exc:
            raise LocalRunError(f"{kind.KIND} {name}: {exc}") from None
    spec = obj.get("spec") or {}
    reason = kind.cluster_only(spec)
    if reason:
        raise LocalRunError(f"{kind.KIND} {name} {reason}; it can only run in a cluster")
    try:
        replicas = kind.read_replicas(spec)
    except ValueError as exc:
        raise LocalRunError(f"{kind.KIND} {name}: {exc}") from None
    templates = {rtype: template for rtype, (_, _, template) in replicas.items()}
    containers = {rtype: _main_container(kind, f"{kind.KIND} {name} {rtype}", template)
                  for rtype, template in templates.items()}
    members = tuple(Member(rtype, i, kind.pod_name(name, rtype, i), policy, str(containers[rtype].get("name")))
                    for rtype, (count, policy, _) in replicas.items() for i in range(count))
    configmaps = {str((m.get("metadata") or {}).get("name")): m
                  for m in manifests if isinstance(m, dict) and m.get("kind") == "ConfigMap"}
    return Workload(kind, obj, members, templates, containers, configmaps)


def _name(obj: dict) -> str:
    return str((obj.get("metadata") or {}).get("name") or "job")


def _main_container(kind: ModuleType, what: str, template: dict) -> dict:
    """The kind's named container, or the only one; it must run the runtime."""
    containers = (template.get("spec") or {}).get("containers") or []
    named = [c for c in containers if c.get("name") == kind.CONTAINER]
    if named:
        container = named[0]
    elif len(containers) == 1:
        container = containers[0]
    else:
        raise LocalRunError(f"{what}: cannot tell which of {len(containers)} containers to run")
    if runtime_argv(container) is None:
        raise LocalRunError(f"spec uses custom image {container.get('image') or '(no image)'}; it can only run in a cluster")
    volumes = {v.get("name") for v in (template.get("spec") or {}).get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        if mount.get("mountPath") and mount.get("name") not in volumes:
            raise LocalRunError(f"{what}: volumeMount {mount.get('name')} has no volume")
    return container


def runtime_argv(container: dict) -> list[str] | None:
    """The `python -m runtime ...` argv for a built-in trainer container, else None."""
    command = [str(c) for c in container.get("command") or []]
    if command[:1] == [RUNTIME_COMMAND]:
        rest = command[1:]
    elif len(command) >= 3 and _PYTHON_RE.match(os.path.basename(command[0])) and command[1:3] == ["-m", "runtime"]:
        rest = command[3:]
    else:
        return None
    return [sys.executable, "-m", "runtime", *rest, *[str(a) for a in container.get("args") or []]]


def make(workload: Workload, *, ports: Mapping[str, int], work_dir: Path, volumes_dir: Path,
         env: Mapping[str, str], hostname: str, launcher: Launcher | None = None) -> Plan:
    """The plan to run `workload` here: `ports` maps each replica's name to its loopback port,
    `env` is the caller's environment, `hostname` this machine's (for spec.nodeName)."""
    kind, spec = workload.kind, workload.spec
    layout = _Layout(work_dir, volumes_dir, workload.configmaps)
    for warning in kind.local_warnings(spec):
        layout.warn(warning)
    addresses: dict[str, list[tuple[str, int]]] = {t: [] for t in workload.templates}
    for m in workload.members:
        addresses[m.rtype].append((LOOPBACK, ports[m.name]))
    replicas = []
    for m in workload.members:
        template, container = workload.templates[m.rtype], workload.containers[m.rtype]
        cwd = work_dir / "replicas" / m.name
        layout.folder(cwd)
        path_map, empty_dirs = layout.volumes(cwd, container, template)
        fields = {"metadata.name": m.pod, "metadata.namespace": workload.namespace, "status.podIP": LOOPBACK,
                  "status.hostIP": LOOPBACK, "spec.nodeName": hostname}
        if hasattr(kind, "pod_fields"):
            fields.update(kind.pod_fields(workload.obj, m.index))
        replica_env = _container_env(container, env, workload.configmaps, fields, layout.warn)
        replica_env.update(kind.replica_env(spec, m.rtype, m.index, m.container, addresses, job=workload.name))
        if path_map:
            replica_env[PATH_MAP_ENV] = json.dumps(path_map, sort_keys=True)
            if CONFIG_ENV in replica_env:
                replica_env[CONFIG_ENV] = map_path(replica_env[CONFIG_ENV], path_map)
        mapped = dict(container, args=[map_arg(str(a), path_map) for a in container.get("args") or []])
        argv = launcher(mapped, m.rtype, m.index) if launcher is not None else runtime_argv(mapped)
        replicas.append(Replica(**vars(m), argv=tuple(str(a) for a in argv), env=replica_env, cwd=cwd,
                                path_map=path_map, empty_dirs=tuple(empty_dirs)))
    graces = [(t.get("spec") or {}).get("terminationGracePeriodSeconds") for t in workload.templates.values()]
    graces = [float(g) for g in graces if g is not None]
    return Plan(workload, tuple(replicas), work_dir, tuple(layout.folders), layout.files, tuple(layout.warnings),
                max(graces, default=DEFAULT_GRACE))


def prepare(plan: Plan) -> None:
    """Lay the plan out on disk: its folders and ConfigMap files (the one step that writes)."""
    for folder in plan.folders:
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True)
    for path, data in plan.files.items():
        path.write_bytes(data)


class _Layout:
    """The folders and files a plan needs, and the warnings met while mapping volumes and env."""

    def __init__(self, work_dir: Path, volumes_dir: Path, configmaps: dict[str, dict]):
        self.work_dir, self.volumes_dir, self.configmaps = work_dir, volumes_dir, configmaps
        self.folders: list[Path] = []
        self.files: dict[Path, bytes] = {}
        self.warnings: list[str] = []
        self.folder(work_dir)
        self.folder(volumes_dir)

    def folder(self, path: Path) -> Path:
        if path not in self.folders:
            self.folders.append(path)
        return path

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def volumes(self, cwd: Path, container: dict, template: dict) -> tuple[dict[str, str], list[Path]]:
        """mountPath -> local folder for every volumeMount of the container, and its emptyDirs."""
        volumes = {v.get("name"): v for v in (template.get("spec") or {}).get("volumes") or []}
        path_map: dict[str, str] = {}
        empty_dirs: list[Path] = []
        for mount in container.get("volumeMounts") or []:
            mount_path = str(mount.get("mountPath") or "")
            if not mount_path:
                continue
            vol = volumes[mount.get("name")]
            local = self._volume(cwd, vol, mount_path, empty_dirs)
            if mount.get("subPath"):
                local = local / str(mount["subPath"])
                if "configMap" not in vol:
                    self.folder(local)
            path_map[mount_path.rstrip("/") or "/"] = str(local)
        return path_map, empty_dirs

    def _volume(self, cwd: Path, vol: dict, mount_path: str, empty_dirs: list[Path]) -> Path:
        name = str(vol.get("name"))
        if "configMap" in vol:
            ref = vol["configMap"] or {}
            cm_name = str(ref.get("name"))
            items = ref.get("items")
            folder = self.folder(self.work_dir / "configmaps" / (cm_name if not items else f"{cm_name}-{name}"))
            cm = self.configmaps.get(cm_name)
            if cm is None:
                self.warn(f"ConfigMap {cm_name} (mounted at {mount_path}) is not among the job's objects; {folder} is empty")
                return folder
            files = _configmap_files(cm)
            if items:
                files = {str(it.get("path")): files[str(it.get("key"))] for it in items if str(it.get("key")) in files}
            for rel, data in files.items():
                self.folder((folder / rel).parent)
                self.files[folder / rel] = data
            return folder
        if "persistentVolumeClaim" in vol:
            return self.folder(self.volumes_dir / str((vol["persistentVolumeClaim"] or {}).get("claimName")))
        if "hostPath" in vol:
            return Path(str((vol["hostPath"] or {}).get("path")))
        folder = cwd / "volumes" / name
        if "emptyDir" in vol:
            empty_dirs.append(folder)
        elif "secret" in vol:
            secret = str((vol["secret"] or {}).get("secretName"))
            folder = self.work_dir / "secrets" / secret
            self.warn(f"volume {name} mounts Secret {secret} at {mount_path}: put its files in {folder}")
        else:
            self.warn(f"volume {name} ({', '.join(k for k in vol if k != 'name')}) mounted at {mount_path} "
                      "is an empty folder locally")
        return self.folder(folder)


def _container_env(container: dict, caller: Mapping[str, str], configmaps: dict[str, dict],
                   fields: Mapping[str, str], warn: Callable[[str], None]) -> dict[str, str]:
    """The caller's environment (less NOT_INHERITED), then the container's envFrom and env."""
    env = {k: v for k, v in caller.items() if k not in NOT_INHERITED}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        if "configMapRef" in source:
            cm_name = str((source["configMapRef"] or {}).get("name"))
            cm = configmaps.get(cm_name)
            if cm is None:
                warn(f"envFrom ConfigMap {cm_name} is not among the job's objects; its variables are unset")
                continue
            env.update({prefix + k: str(v) for k, v in (cm.get("data") or {}).items()})
        elif "secretRef" in source:
            warn(f"envFrom Secret {(source['secretRef'] or {}).get('name')}: its variables are taken from your "
                 "environment as they are")
    defined: dict[str, str] = {}
    for item in container.get("env") or []:
        name = str(item.get("name"))
        value = _env_value(item, caller, configmaps, fields, defined, warn)
        if value is None:
            env.pop(name, None)
            defined.pop(name, None)
        else:
            env[name] = defined[name] = value
    return env


def _env_value(item: dict, caller: Mapping[str, str], configmaps: dict[str, dict], fields: Mapping[str, str],
               defined: Mapping[str, str], warn: Callable[[str], None]) -> str | None:
    """One env entry's value: a literal (with `$(VAR)` expanded), a Secret key from the caller's
    variable of the same name, a ConfigMap key, or a field of the pod; None leaves it unset."""
    name = str(item.get("name"))
    if "valueFrom" not in item:
        return _expand(str(item.get("value", "")), defined)
    source = item.get("valueFrom") or {}
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"] or {}
        value = caller.get(name)
        if value is None and not ref.get("optional"):
            warn(f"{name} comes from Secret {ref.get('name')} key {ref.get('key')}: "
                 f"set {name} in your environment to pass it (left unset)")
        return value
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"] or {}
        cm = configmaps.get(str(ref.get("name")))
        value = None if cm is None else (cm.get("data") or {}).get(str(ref.get("key")))
        if value is None and not ref.get("optional"):
            warn(f"{name} comes from ConfigMap {ref.get('name')} key {ref.get('key')}, "
                 "which is not among the job's objects (left unset)")
        return None if value is None else str(value)
    if "fieldRef" in source:
        path = str((source["fieldRef"] or {}).get("fieldPath"))
        if path in fields:
            return fields[path]
    warn(f"{name}: {', '.join(source)} is not available locally (left unset)")
    return None


def _configmap_files(cm: dict) -> dict[str, bytes]:
    files = {str(k): str(v).encode("utf-8") for k, v in (cm.get("data") or {}).items()}
    files.update({str(k): base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return files


def map_path(path: str, path_map: Mapping[str, str]) -> str:
    """Map a container path as the replica's runtime will (runtime.storage.local_path); a path it
    would refuse is returned as-is."""
    try:
        return str(local_path(path, {PATH_MAP_ENV: json.dumps(path_map)}))
    except RuntimeFailure:
        return path


def map_arg(arg: str, path_map: Mapping[str, str]) -> str:
    """Map an argument that is a container path, or an `--opt=path`, through the path map."""
    if arg.startswith("-") and "=" in arg:
        opt, _, value = arg.partition("=")
        return f"{opt}={map_path(value, path_map)}" if value.startswith("/") else arg
    return map_path(arg, path_map) if arg.startswith("/") else arg


def _expand(value: str, defined: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion against the variables defined earlier in the env list."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return defined.get(m.group(1), m.group(0))
    return _VAR_REF_RE.sub(sub, value)
