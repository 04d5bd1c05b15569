"""Run one rendered training job on this machine, replica by replica, as the Kubeflow operator would.

`specc run SPEC --local` hands `run_local` the rendered objects of one job (a TFJob, PyTorchJob or
batch/v1 Job plus its ConfigMaps). Every replica becomes a subprocess (`python -m runtime` + the
container's args) with the environment the training operator v1.9 injects (see
../shared/docs/operator-contract.md, "What each replica receives"), service addresses mapped to
loopback ports, and the pod's volumes mapped to local folders through `SPECC_PATH_MAP`.

Lifecycle rules reproduced from the operator (training-operator v1.9, `tfjob_controller.go`,
`pytorchjob_controller.go`, `common/job.go`; batch/v1 Job from the Kubernetes job controller):

- restartPolicy (replica level; the pod template's value is overridden; defaults Never for TFJob,
  OnFailure for PyTorchJob): ExitCode restarts a replica that exits with >= 128 and fails it on
  1..127 (the pod is recreated: its emptyDir volumes start empty again); OnFailure restarts on any
  non-zero exit and Always even after exit 0 (in place: emptyDir kept). A replica under Always never
  counts as succeeded, so the other replicas decide the job (as for a PS).
- TFJob success (successPolicy "" = default): with a Chief or Master, the job succeeds when it
  succeeds; otherwise when worker 0 succeeds, or, with successPolicy AllWorkers, when every worker
  has. A replica that fails for good fails the job ("N <Type> replica(s) failed"), except workers
  under enableDynamicWorker. PyTorchJob succeeds when the Master succeeds. A Job succeeds when its
  pod does; it retries failed pods (restartPolicy Never: a new pod, OnFailure: in place).
- runPolicy.backoffLimit (Job: spec.backoffLimit, default 6) caps the restarts across the whole job:
  the failure that would need restart number backoffLimit+1 fails the job. (The operator counts
  container restarts of running pods, which is racy; this is the cap it approximates.)
- runPolicy.activeDeadlineSeconds (Job: spec.activeDeadlineSeconds) stops every replica (SIGTERM,
  SIGKILL after terminationGracePeriodSeconds) and fails the job.
- When the job finishes, replicas still running are stopped (locally always, whatever
  cleanPodPolicy says); on success they count as succeeded, as the operator records them.

Local-only behaviour: a job whose rules can never decide (e.g. no Chief, Master or Worker) ends
when no replica is left running, succeeding only if all exited 0. Ctrl-C stops every replica the
same way and fails the run. At the end the conditions, replica statuses and events are printed the
way `kubectl describe` shows them, then one line with the verdict (reason ReplicaFailed,
BackoffLimitExceeded, DeadlineExceeded or Interrupted).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TextIO

#: launcher(container, replica_type, index) -> argv, run in place of `python -m runtime`.
Launcher = Callable[[dict, str, int], list[str]]

_TF_TYPES = {"chief": "Chief", "master": "Master", "ps": "PS", "worker": "Worker", "evaluator": "Evaluator"}
#: The order the operator walks replica types when it updates a TFJob's status.
_TF_STATUS_ORDER = ("Chief", "Evaluator", "Master", "PS", "Worker")
_TORCH_TYPES = {"master": "Master", "worker": "Worker"}
#: Variables the operator owns: never inherited from the caller's environment.
_OPERATOR_VARS = frozenset({
    "TF_CONFIG", "MASTER_ADDR", "MASTER_PORT", "PET_MASTER_ADDR", "PET_MASTER_PORT", "WORLD_SIZE",
    "RANK", "LOCAL_RANK", "PET_NODE_RANK", "PET_NPROC_PER_NODE", "PET_NNODES", "SPECC_PATH_MAP",
})
_PYTHON_RE = re.compile(r"^python(3(\.\d+)?)?$")
_VAR_REF_RE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
_CONFIG_ENV = "SPECC_CONFIG"


class LocalRunError(Exception):
    """The job cannot run on this machine; the message says why."""


@dataclass
class _Condition:
    type: str
    status: str
    reason: str
    message: str


@dataclass
class _Replica:
    """One replica (one pod) and the process that currently plays it."""

    rtype: str  # canonical replica type, e.g. "Worker"; "Job" for a batch/v1 Job
    index: int
    container: dict
    policy: str
    pod_name: str
    cwd: Path
    empty_dirs: list[Path] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    state: str = "pending"  # running | restarting | succeeded | failed
    proc: subprocess.Popen | None = None
    attempt: int = 0
    restarts: int = 0
    failures: int = 0
    exit_code: int | None = None
    restart_at: float = 0.0
    recreate: bool = False
    stopped: bool = False
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.rtype.lower()}-{self.index}"


def run_local(
    manifests: list[dict],
    volumes_dir: Path | None = None,
    work_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    launcher: Launcher | None = None,
    *,
    restart_delay: float = 1.0,
    grace_period: float | None = None,
) -> int:
    """Run the job the manifests describe; return 0 if it succeeded, 1 otherwise.

    Raises LocalRunError for a job that can only run in a cluster. `restart_delay` is the pause
    before a replica restarts; `grace_period` overrides the pod's terminationGracePeriodSeconds.
    """
    run = LocalJob(manifests, volumes_dir=volumes_dir, work_dir=work_dir, env=env, out=out,
                   launcher=launcher, restart_delay=restart_delay, grace_period=grace_period)
    return 0 if run.run() else 1


class LocalJob:
    """A job being run locally: its replicas, conditions, events and the supervision loop."""

    def __init__(self, manifests: list[dict], *, volumes_dir: Path | None = None, work_dir: Path | None = None,
                 env: Mapping[str, str] | None = None, out: TextIO | None = None, launcher: Launcher | None = None,
                 restart_delay: float = 1.0, grace_period: float | None = None):
        self.out = out if out is not None else sys.stdout
        self.caller_env = dict(os.environ if env is None else env)
        self.launcher = launcher
        self.restart_delay = restart_delay
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._events: queue.Queue = queue.Queue()
        self.conditions: list[_Condition] = []
        self.events: list[tuple[str, str, str]] = []
        self.replicas: list[_Replica] = []
        self.total_restarts = 0
        self.finished = False
        self.succeeded = False
        self.verdict = ""
        self.verdict_message = ""

        self._parse(manifests)
        self._check_images()
        self.grace = grace_period if grace_period is not None else self._template_grace()
        self._temp_work = work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="specc-local-")) if work_dir is None else Path(work_dir)
        self.volumes_dir = Path(volumes_dir) if volumes_dir is not None else self.work_dir / "volumes"

    # ---------------------------------------------------------------- parsing
    def _parse(self, manifests: list[dict]) -> None:
        jobs = [m for m in manifests if isinstance(m, dict) and m.get("kind") in ("TFJob", "PyTorchJob", "Job")]
        if len(jobs) != 1:
            kinds = ", ".join(sorted(str(m.get("kind")) for m in jobs)) or "none"
            raise LocalRunError(f"expected exactly one TFJob, PyTorchJob or Job to run, found {kinds}")
        job = jobs[0]
        self.job = job
        self.kind = job["kind"]
        meta = job.get("metadata") or {}
        self.name = str(meta.get("name") or "job")
        self.namespace = str(meta.get("namespace") or "default")
        self.configmaps: dict[str, dict] = {}
        for m in manifests:
            if isinstance(m, dict) and m.get("kind") == "ConfigMap":
                self.configmaps[str((m.get("metadata") or {}).get("name"))] = m
        spec = job.get("spec") or {}
        # replica specs: canonical type -> (replicas, policy, pod template)
        self.specs: dict[str, tuple[int, str, dict]] = {}
        if self.kind == "Job":
            if int(spec.get("parallelism", 1) or 1) != 1 or int(spec.get("completions", 1) or 1) != 1:
                raise LocalRunError(f"Job {self.name}: only parallelism 1 / completions 1 runs locally; "
                                    "it can only run in a cluster")
            template = spec.get("template") or {}
            policy = (template.get("spec") or {}).get("restartPolicy") or "Never"
            self.specs["Job"] = (1, policy, template)
            self.backoff_limit: int | None = int(spec.get("backoffLimit", 6))
            deadline = spec.get("activeDeadlineSeconds")
            self.success_policy = ""
            self.dynamic_workers = False
        else:
            key, names, default_policy = (("tfReplicaSpecs", _TF_TYPES, "Never") if self.kind == "TFJob"
                                          else ("pytorchReplicaSpecs", _TORCH_TYPES, "OnFailure"))
            if self.kind == "PyTorchJob" and spec.get("elasticPolicy"):
                raise LocalRunError(f"PyTorchJob {self.name} uses elasticPolicy; it can only run in a cluster")
            raw = spec.get(key) or {}
            if not raw:
                raise LocalRunError(f"{self.kind} {self.name} has no spec.{key}")
            for rtype, rspec in raw.items():
                canon = names.get(str(rtype).lower())
                if canon is None:
                    raise LocalRunError(f"{self.kind} {self.name}: unknown replica type {rtype}")
                rspec = rspec or {}
                count = rspec.get("replicas")
                self.specs[canon] = (1 if count is None else int(count), rspec.get("restartPolicy") or default_policy,
                                     rspec.get("template") or {})
            run_policy = spec.get("runPolicy") or {}
            limit = run_policy.get("backoffLimit")
            self.backoff_limit = None if limit is None else int(limit)
            deadline = run_policy.get("activeDeadlineSeconds")
            self.success_policy = str(spec.get("successPolicy") or "")
            self.dynamic_workers = bool(spec.get("enableDynamicWorker"))
        self.deadline: float | None = None if deadline is None else float(deadline)
        self.nproc = str(spec.get("nprocPerNode") or "auto")

    def _main_container(self, rtype: str, template: dict) -> dict:
        containers = (template.get("spec") or {}).get("containers") or []
        wanted = {"TFJob": "tensorflow", "PyTorchJob": "pytorch"}.get(self.kind)
        named = [c for c in containers if c.get("name") == wanted] if wanted else []
        if named:
            return named[0]
        if len(containers) == 1:
            return containers[0]
        raise LocalRunError(f"{self.kind} {self.name} {rtype}: cannot tell which of {len(containers)} containers to run")

    def _runtime_argv(self, container: dict) -> list[str] | None:
        """The `python -m runtime ...` argv for a built-in trainer container, else None."""
        command = [str(c) for c in container.get("command") or []]
        if command[:1] == ["specc-runtime"]:
            rest = command[1:]
        elif len(command) >= 3 and _PYTHON_RE.match(os.path.basename(command[0])) and command[1:3] == ["-m", "runtime"]:
            rest = command[3:]
        else:
            return None
        return [sys.executable, "-m", "runtime", *rest, *[str(a) for a in container.get("args") or []]]

    def _check_images(self) -> None:
        for rtype, (_, _, template) in self.specs.items():
            c = self._main_container(rtype, template)
            if self._runtime_argv(c) is None:
                raise LocalRunError(f"spec uses custom image {c.get('image') or '(no image)'}; it can only run in a cluster")

    def _template_grace(self) -> float:
        values = [(t.get("spec") or {}).get("terminationGracePeriodSeconds") for _, _, t in self.specs.values()]
        values = [float(v) for v in values if v is not None]
        return max(values) if values else 30.0

    # ---------------------------------------------------------------- output
    def _write(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def note(self, message: str) -> None:
        """A line from the runner itself."""
        self._write(f"specc: {message}\n")

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.note(f"warning: {message}")

    # ---------------------------------------------------------------- preparation
    def _prepare(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.volumes_dir.mkdir(parents=True, exist_ok=True)
        if self._temp_work:
            self.note(f"work dir: {self.work_dir}")
        total = sum(n for n, _, _ in self.specs.values())
        # Stable loopback ports, one per replica (TF) or for the master (PyTorch): hold them all
        # open while choosing so no two replicas get the same one.
        socks: list[socket.socket] = []
        ports: dict[tuple[str, int], int] = {}
        try:
            for rtype, (n, _, _) in self.specs.items():
                for i in range(n):
                    s = socket.socket()
                    s.bind(("127.0.0.1", 0))
                    socks.append(s)
                    ports[(rtype, i)] = s.getsockname()[1]
        finally:
            for s in socks:
                s.close()
        cluster = {t.lower(): [f"127.0.0.1:{ports[(t, i)]}" for i in range(n)]
                   for t, (n, _, _) in sorted(self.specs.items(), key=lambda kv: kv[0].lower())}
        order = [t for t in ("Chief", "Master", "PS", "Worker", "Evaluator", "Job") if t in self.specs]
        for rtype in order:
            n, policy, template = self.specs[rtype]
            container = self._main_container(rtype, template)
            for i in range(n):
                pod = f"{self.name}-{rtype.lower()}-{i}" if self.kind != "Job" else f"{self.name}-0"
                rep = _Replica(rtype=rtype, index=i, container=container, policy=policy, pod_name=pod,
                               cwd=self.work_dir / "replicas" / f"{rtype.lower()}-{i}")
                operator_env = self._operator_env(rep, total, cluster, ports)
                path_map = self._path_map(rep, template)
                rep.env = self._replica_env(rep, template, operator_env, path_map)
                mapped = dict(container, args=[_map_arg(str(a), path_map) for a in container.get("args") or []])
                if self.launcher is not None:
                    rep.argv = [str(a) for a in self.launcher(mapped, rtype, i)]
                else:
                    rep.argv = self._runtime_argv(mapped) or []
                rep.cwd.mkdir(parents=True, exist_ok=True)
                self.replicas.append(rep)

    def _operator_env(self, rep: _Replica, total: int, cluster: dict, ports: dict) -> dict[str, str]:
        """What the operator appends to the container's env for this replica."""
        if self.kind == "TFJob":
            if total <= 1 or rep.container.get("name") != "tensorflow":
                return {}
            tf_config = {"cluster": cluster, "task": {"type": rep.rtype.lower(), "index": rep.index},
                         "environment": "cloud"}
            return {"TF_CONFIG": json.dumps(tf_config, separators=(",", ":"))}
        if self.kind == "PyTorchJob":
            env = {"PYTHONUNBUFFERED": "1"}
            if "Master" in self.specs:
                port = str(ports[("Master", 0)])
                nproc = int(self.nproc) if self.nproc.isdigit() else 1
                rank = rep.index + 1 if rep.rtype == "Worker" else rep.index
                env.update({"MASTER_PORT": port, "PET_MASTER_PORT": port, "MASTER_ADDR": "127.0.0.1",
                            "PET_MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": str(total * nproc),
                            "RANK": str(rank), "PET_NODE_RANK": str(rank)})
            env["PET_NPROC_PER_NODE"] = self.nproc
            env["PET_NNODES"] = str(total)
            return env
        return {}

    def _path_map(self, rep: _Replica, template: dict) -> dict[str, str]:
        """mountPath -> local folder for every volumeMount of the replica's container."""
        volumes = {v.get("name"): v for v in (template.get("spec") or {}).get("volumes") or []}
        result: dict[str, str] = {}
        for mount in rep.container.get("volumeMounts") or []:
            vol = volumes.get(mount.get("name"))
            mount_path = str(mount.get("mountPath") or "")
            if not mount_path:
                continue
            if vol is None:
                raise LocalRunError(f"{self.kind} {self.name} {rep.rtype}: volumeMount {mount.get('name')} has no volume")
            local = self._volume_dir(rep, vol, mount_path)
            if mount.get("subPath"):
                local = local / str(mount["subPath"])
                if not local.exists() and "configMap" not in vol:
                    local.mkdir(parents=True, exist_ok=True)
            result[mount_path.rstrip("/") or "/"] = str(local)
        return result

    def _volume_dir(self, rep: _Replica, vol: dict, mount_path: str) -> Path:
        name = str(vol.get("name"))
        if "configMap" in vol:
            ref = vol["configMap"] or {}
            cm_name = str(ref.get("name"))
            cm = self.configmaps.get(cm_name)
            items = ref.get("items")
            folder = self.work_dir / "configmaps" / (cm_name if not items else f"{cm_name}-{name}")
            folder.mkdir(parents=True, exist_ok=True)
            if cm is None:
                self._warn_once(f"ConfigMap {cm_name} (mounted at {mount_path}) is not among the job's objects; "
                                f"{folder} is empty")
                return folder
            files = _configmap_files(cm)
            if items:
                files = {str(it.get("path")): files[str(it.get("key"))] for it in items if str(it.get("key")) in files}
            for rel, data in files.items():
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            return folder
        if "persistentVolumeClaim" in vol:
            claim = str((vol["persistentVolumeClaim"] or {}).get("claimName"))
            folder = self.volumes_dir / claim
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        if "hostPath" in vol:
            return Path(str((vol["hostPath"] or {}).get("path")))
        folder = rep.cwd / "volumes" / name
        if "emptyDir" in vol:
            rep.empty_dirs.append(folder)
        elif "secret" in vol:
            secret = str((vol["secret"] or {}).get("secretName"))
            folder = self.work_dir / "secrets" / secret
            self._warn_once(f"volume {name} mounts Secret {secret} at {mount_path}: put its files in {folder}")
        else:
            self._warn_once(f"volume {name} ({', '.join(k for k in vol if k != 'name')}) mounted at {mount_path} "
                            "is an empty folder locally")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _replica_env(self, rep: _Replica, template: dict, operator_env: dict[str, str],
                     path_map: dict[str, str]) -> dict[str, str]:
        """Caller's environment, then the container's envFrom and env, then the operator's variables."""
        env = {k: v for k, v in self.caller_env.items() if k not in _OPERATOR_VARS}
        container = rep.container
        for source in container.get("envFrom") or []:
            prefix = str(source.get("prefix") or "")
            if "configMapRef" in source:
                cm_name = str((source["configMapRef"] or {}).get("name"))
                cm = self.configmaps.get(cm_name)
                if cm is None:
                    self._warn_once(f"envFrom ConfigMap {cm_name} is not among the job's objects; its variables are unset")
                    continue
                env.update({prefix + k: str(v) for k, v in (cm.get("data") or {}).items()})
            elif "secretRef" in source:
                secret = str((source["secretRef"] or {}).get("name"))
                self._warn_once(f"envFrom Secret {secret}: its variables are taken from your environment as they are")
        defined: dict[str, str] = {}
        for item in container.get("env") or []:
            name = str(item.get("name"))
            value = self._env_value(rep, item, defined)
            if value is None:
                env.pop(name, None)
                defined.pop(name, None)
            else:
                env[name] = defined[name] = value
        env.update(operator_env)
        if path_map:
            env["SPECC_PATH_MAP"] = json.dumps(path_map, sort_keys=True)
            if _CONFIG_ENV in env:
                env[_CONFIG_ENV] = _map_path(env[_CONFIG_ENV], path_map)
        return env

    def _env_value(self, rep: _Replica, item: dict, defined: dict[str, str]) -> str | None:
        name = str(item.get("name"))
        if "valueFrom" not in item:
            return _expand(str(item.get("value", "")), defined)
        source = item.get("valueFrom") or {}
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"] or {}
            value = self.caller_env.get(name)
            if value is None and not ref.get("optional"):
                self._warn_once(f"{name} comes from Secret {ref.get('name')} key {ref.get('key')}: "
                                f"set {name} in your environment to pass it (left unset)")
            return value
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"] or {}
            cm = self.configmaps.get(str(ref.get("name")))
            value = None if cm is None else (cm.get("data") or {}).get(str(ref.get("key")))
            if value is None and not ref.get("optional"):
                self._warn_once(f"{name} comes from ConfigMap {ref.get('name')} key {ref.get('key')}, "
                                "which is not among the job's objects (left unset)")
            return None if value is None else str(value)
        if "fieldRef" in source:
            path = str((source["fieldRef"] or {}).get("fieldPath"))
            fields = {"metadata.name": rep.pod_name, "metadata.namespace": self.namespace,
                      "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1", "spec.nodeName": socket.gethostname()}
            if path in fields:
                return fields[path]
        self._warn_once(f"{name}: {', '.join(source)} is not available locally (left unset)")
        return None

    # ---------------------------------------------------------------- status
    def _set_condition(self, ctype: str, reason: str, message: str) -> None:
        """Add a condition the way the operator's UpdateJobConditions does."""
        for c in self.conditions:
            if c.type == ctype and c.status == "True" and c.reason == reason:
                return
        kept = []
        for c in self.conditions:
            if c.type == ctype or {ctype, c.type} == {"Running", "Restarting"}:
                continue
            if ctype in ("Succeeded", "Failed") and c.type == "Running":
                c.status = "False"
            kept.append(c)
        kept.append(_Condition(ctype, "True", reason, message))
        self.conditions = kept

    def _event(self, etype: str, reason: str, message: str) -> None:
        self.events.append((etype, reason, message))

    def _msg(self, what: str) -> str:
        """The operator's message for a job-level transition."""
        k, n, full = self.kind, self.name, f"{self.namespace}/{self.name}"
        if k == "TFJob":
            return {"created": f"TFJob {n} is created.", "running": f"TFJob {full} is running.",
                    "succeeded": f"TFJob {full} successfully completed."}[what]
        return {"created": f"PyTorchJob {n} is created.", "running": f"PyTorchJob {n} is running.",
                "succeeded": f"PyTorchJob {n} is successfully completed."}[what]

    def _count(self, rtype: str, state: str) -> int:
        return sum(1 for r in self.replicas if r.rtype == rtype and r.state == state)

    def _evaluate(self) -> None:
        """Decide success or failure after a replica ended for good."""
        if self.kind == "Job":
            rep = self.replicas[0]
            if rep.state == "succeeded":
                self._finish(True, "Completed", "Complete", "CompletionsReached", "Reached expected number of succeeded pods")
            return

        def all_ok(t: str) -> bool:
            return t in self.specs and all(r.state == "succeeded" for r in self.replicas if r.rtype == t)

        if self.kind == "TFJob":
            if "Chief" in self.specs or "Master" in self.specs:
                done = all(all_ok(t) for t in ("Chief", "Master") if t in self.specs)
            elif "Worker" in self.specs:
                worker0 = next(r for r in self.replicas if r.rtype == "Worker" and r.index == 0)
                done = all_ok("Worker") or (self.success_policy != "AllWorkers" and worker0.state == "succeeded")
            else:
                done = all(r.state == "succeeded" for r in self.replicas)
        else:
            done = all_ok("Master") if "Master" in self.specs else all_ok("Worker")
        if done:
            self._finish(True, "Succeeded", "Succeeded", f"{self.kind}Succeeded", self._msg("succeeded"))
            return
        for rtype in _TF_STATUS_ORDER:
            failed = self._count(rtype, "failed")
            if not failed or (self.kind == "TFJob" and self.dynamic_workers and rtype == "Worker"):
                continue
            if self.kind == "TFJob":
                msg = f"TFJob {self.namespace}/{self.name} has failed because {failed} {rtype} replica(s) failed."
            else:
                msg = f"PyTorchJob {self.name} is failed because {failed} {rtype} replica(s) failed."
            self._finish(False, "ReplicaFailed", "Failed", f"{self.kind}Failed", msg)
            return
        if not any(r.state in ("running", "restarting") for r in self.replicas):
            ok = all(r.state == "succeeded" for r in self.replicas)
            msg = (f"{self.kind} {self.name}: no replica left running and no success rule applies; "
                   + ("all exited 0." if ok else "some failed."))
            if ok:
                self._finish(True, "Succeeded", "Succeeded", f"{self.kind}Succeeded", msg)
            else:
                self._finish(False, "ReplicaFailed", "Failed", f"{self.kind}Failed", msg)

    def _fail_job(self, verdict: str, job_message: str, because: str) -> None:
        """Fail for a job-level limit with the condition the real controller writes: a batch Job's
        reason is the verdict itself, the training operator's is `<Kind>Failed`."""
        if self.kind == "Job":
            self._finish(False, verdict, "Failed", verdict, job_message)
        else:
            self._finish(False, verdict, "Failed", f"{self.kind}Failed", f"Job {self.name} has failed because {because}")

    def _finish(self, success: bool, verdict: str, ctype: str, reason: str, message: str) -> None:
        if self.finished:
            return
        self.finished, self.succeeded, self.verdict, self.verdict_message = True, success, verdict, message
        self._set_condition(ctype, reason, message)
        self._event("Normal", reason, message)
        self._stop_all()
        if success:
            for r in self.replicas:
                if r.state in ("running", "restarting", "pending"):
                    r.state = "succeeded"

    # ---------------------------------------------------------------- processes
    def _start(self, rep: _Replica) -> None:
        if rep.recreate:
            for d in rep.empty_dirs:
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir(parents=True, exist_ok=True)
        if rep.attempt == 0 or rep.recreate:
            self._event("Normal", "SuccessfulCreatePod" if self.kind != "Job" else "SuccessfulCreate",
                        f"Created pod: {rep.pod_name}")
        rep.attempt += 1
        rep.recreate = False
        rep.exit_code = None
        try:
            proc = subprocess.Popen(rep.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=rep.env, cwd=rep.cwd, start_new_session=True)
        except OSError as exc:
            self.note(f"{rep.name}: cannot start {rep.argv[0]}: {exc.strerror or exc}")
            self._events.put((rep, rep.attempt, 127))
            rep.state = "running"
            return
        rep.proc, rep.state = proc, "running"
        pump = threading.Thread(target=self._pump, args=(rep, proc), daemon=True)
        waiter = threading.Thread(target=self._wait, args=(rep, proc, rep.attempt, pump), daemon=True)
        rep.threads = [pump, waiter]
        pump.start()
        waiter.start()

    def _pump(self, rep: _Replica, proc: subprocess.Popen) -> None:
        prefix = f"[{rep.name}] "
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self._write(prefix + raw.decode("utf-8", "replace").rstrip("\r\n") + "\n")
        proc.stdout.close()

    def _wait(self, rep: _Replica, proc: subprocess.Popen, attempt: int, pump: threading.Thread) -> None:
        code = proc.wait()
        _signal_group(proc, signal.SIGKILL, group_only=True)  # the container is gone: so is all it started
        pump.join(timeout=2.0)  # let the last lines out first
        self._events.put((rep, attempt, 128 - code if code < 0 else code))

    def _wants_restart(self, rep: _Replica, code: int) -> tuple[bool, bool]:
        """(restart?, recreate the pod?) for a replica that exited with `code`."""
        if self.kind == "Job":
            return code != 0, rep.policy != "OnFailure"
        if rep.policy == "ExitCode":
            return code >= 128, True
        if rep.policy == "OnFailure":
            return code != 0, False
        if rep.policy == "Always":
            return True, False
        return False, False

    def _on_exit(self, rep: _Replica, attempt: int, code: int) -> None:
        if attempt != rep.attempt or rep.stopped or self.finished:
            return
        rep.exit_code = code
        rep.proc = None
        rep.failures += code != 0
        if self.kind != "Job":
            self._event("Normal", "ExitedWithCode", f"Pod: {self.namespace}.{rep.pod_name} exited with code {code}")
        restart, recreate = self._wants_restart(rep, code)
        if restart:
            if self.backoff_limit is not None and self.total_restarts >= self.backoff_limit:
                rep.state = "succeeded" if code == 0 else "failed"
                self.note(f"{rep.name} exited with code {code}; backoffLimit {self.backoff_limit} reached")
                self._fail_job("BackoffLimitExceeded", "Job has reached the specified backoff limit",
                               "it has reached the specified backoff limit")
                return
            self.total_restarts += 1
            rep.restarts += 1
            rep.state, rep.recreate = "restarting", recreate
            rep.restart_at = time.monotonic() + self.restart_delay
            limit = "" if self.backoff_limit is None else f" of backoffLimit {self.backoff_limit}"
            self.note(f"{rep.name} exited with code {code}; restarting (restartPolicy {rep.policy}, "
                      f"restart {self.total_restarts}{limit})")
            if recreate and self.kind != "Job":
                msg = f"{self.kind} {self.name} is restarting because {rep.rtype} replica(s) failed."
                self._set_condition("Restarting", f"{self.kind}Restarting", msg)
                self._event("Warning", f"{self.kind}Restarting", msg)
            return
        rep.state = "succeeded" if code == 0 else "failed"
        self.note(f"{rep.name} exited with code {code}")
        self._evaluate()

    def _stop_all(self) -> None:
        """SIGTERM every running replica, SIGKILL those still there after the grace period."""
        live = [r for r in self.replicas if r.proc is not None and r.proc.poll() is None]
        for r in self.replicas:
            r.stopped = True
        if not live:
            return
        self.note(f"stopping {', '.join(r.name for r in live)}")
        try:
            for r in live:
                _signal_group(r.proc, signal.SIGTERM)
            end = time.monotonic() + self.grace
            for r in live:
                try:
                    r.proc.wait(timeout=max(0.0, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.note(f"{r.name} still running after {self.grace:g}s: killing it")
                    _signal_group(r.proc, signal.SIGKILL)
        except KeyboardInterrupt:
            for r in live:
                _signal_group(r.proc, signal.SIGKILL)
        for r in live:
            try:
                r.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                pass
            for t in r.threads:
                t.join(timeout=2.0)

    def _kill_all(self) -> None:
        for r in self.replicas:
            if r.proc is not None and r.proc.poll() is None:
                r.stopped = True
                _signal_group(r.proc, signal.SIGKILL)
                r.proc.wait()

    # ---------------------------------------------------------------- main loop
    def run(self) -> bool:
        """Run the job to its end; return True if it succeeded."""
        self._prepare()
        names = ", ".join(r.name for r in self.replicas)
        self.note(f"running {self.kind} {self.namespace}/{self.name} locally: {names}")
        if self.kind != "Job":
            self._set_condition("Created", f"{self.kind}Created", self._msg("created"))
        start = time.monotonic()
        # SIGTERM to the runner (e.g. `timeout specc run ...`) stops the replicas like Ctrl-C: they
        # run in sessions of their own and would otherwise outlive it.
        previous = (signal.signal(signal.SIGTERM, _interrupt)
                    if threading.current_thread() is threading.main_thread() else None)
        try:
            for rep in self.replicas:
                self._start(rep)
            if self.kind != "Job":
                self._set_condition("Running", f"{self.kind}Running", self._msg("running"))
            while not self.finished:
                now = time.monotonic()
                if self.deadline is not None and now - start >= self.deadline:
                    self.note(f"activeDeadlineSeconds {self.deadline:g} exceeded")
                    self._fail_job("DeadlineExceeded", "Job was active longer than specified deadline",
                                   "it was active longer than specified deadline")
                    break
                for rep in self.replicas:
                    if rep.state == "restarting" and rep.restart_at <= now:
                        self._start(rep)
                        if self.kind != "Job" and any(c.type == "Restarting" for c in self.conditions):
                            self._set_condition("Running", f"{self.kind}Running", self._msg("running"))
                wake = [now + 0.5] + [r.restart_at for r in self.replicas if r.state == "restarting"]
                if self.deadline is not None:
                    wake.append(start + self.deadline)
                try:
                    rep, attempt, code = self._events.get(timeout=max(0.0, min(wake) - now))
                except queue.Empty:
                    continue
                self._on_exit(rep, attempt, code)
        except KeyboardInterrupt:
            self.note("interrupted: stopping replicas (Ctrl-C again to kill them)")
            self._finish(False, "Interrupted", "Failed", f"{self.kind}Failed" if self.kind != "Job" else "Interrupted",
                         f"{self.kind} {self.name} was interrupted on this machine")
        finally:
            self._kill_all()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        self._write(self.describe())
        state = "succeeded" if self.succeeded else f"failed ({self.verdict}): {self.verdict_message}"
        self.note(f"{self.kind} {self.namespace}/{self.name} {state} (restarts: {self.total_restarts}; "
                  f"work dir: {self.work_dir})")
        return self.succeeded

    def describe(self) -> str:
        """The job's final status as `kubectl describe` lays it out."""
        lines = [f"Name:         {self.name}", f"Namespace:    {self.namespace}", f"Kind:         {self.kind}"]
        if self.kind == "Job":
            rep = self.replicas[0]
            failed = rep.failures if rep.policy != "OnFailure" else int(rep.state == "failed")
            active = 1 if rep.state in ("running", "restarting") else 0
            succeeded = 1 if rep.state == "succeeded" else 0
            lines.append(f"Pods Statuses:  {active} Active / {succeeded} Succeeded / {failed} Failed")
        lines += ["Status:", "  Conditions:"]
        rows = [("Type", "Status", "Reason", "Message")] + [(c.type, c.status, c.reason, c.message) for c in self.conditions]
        lines += _table(rows, "    ")
        if self.kind != "Job":
            lines.append("  Replica Statuses:")
            for rtype in sorted(self.specs):
                lines.append(f"    {rtype}:")
                counts = [("Active", sum(1 for r in self.replicas if r.rtype == rtype and r.state in ("running", "restarting", "pending"))),
                          ("Failed", self._count(rtype, "failed")), ("Succeeded", self._count(rtype, "succeeded"))]
                counts = [(k, v) for k, v in counts if v]
                width = max((len(k) for k, _ in counts), default=0) + 1
                lines += [f"      {(k + ':').ljust(width)}  {v}" for k, v in counts]
        lines.append("Events:")
        rows = [("Type", "Reason", "Message"), ("----", "------", "-------")] + list(self.events)
        lines += _table(rows, "  ")
        return "\n".join(lines) + "\n"


def _table(rows: list[tuple[str, ...]], indent: str) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in rows]


def _configmap_files(cm: dict) -> dict[str, bytes]:
    files = {str(k): str(v).encode("utf-8") for k, v in (cm.get("data") or {}).items()}
    files.update({str(k): base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return files


def _map_path(path: str, path_map: Mapping[str, str]) -> str:
    """Map a container path through the longest matching mountPath; other paths are returned as-is."""
    best = ""
    for mount in path_map:
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best = mount
    if not best:
        return path
    rest = path[len(best):].lstrip("/")
    return str(Path(path_map[best]) / rest) if rest else path_map[best]


def _map_arg(arg: str, path_map: Mapping[str, str]) -> str:
    """Map an argument that is a container path, or an `--opt=path`, through the path map."""
    if arg.startswith("-") and "=" in arg:
        opt, _, value = arg.partition("=")
        return f"{opt}={_map_path(value, path_map)}" if value.startswith("/") else arg
    return _map_path(arg, path_map) if arg.startswith("/") else arg


def _expand(value: str, defined: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion against the variables defined earlier in the env list."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return defined.get(m.group(1), m.group(0))
    return _VAR_REF_RE.sub(sub, value)


def _signal_group(proc: subprocess.Popen, sig: int, group_only: bool = False) -> None:
    """Signal the replica's process group (its own session), or the process if that fails."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        if not group_only:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass


def _interrupt(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt
