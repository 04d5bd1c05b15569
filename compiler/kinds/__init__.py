"""Compile stage: one module per output kind, each a pure `build(job, names, source) -> dict`.

A workload kind module owns what specc knows about its kind: API_VERSION and KIND, the
frameworks it serves (FRAMEWORKS), its replica types (REPLICA_TYPES in render order,
DEFAULT_REPLICAS, SINGLETONS), DEFAULT_RESTART_POLICY, the main CONTAINER and its PORT, the spec
fields only it uses (SPEC_FIELDS), its rules (`check(job)`), its pod-name budget
(`name_budget(job)`), how its status reads in Argo CD (HEALTH_LUA, None where Argo CD has a
check built in), the fields Kubernetes refuses to change on an existing object
(IMMUTABLE_FIELDS, dotted paths; `specc plan` warns when a fixed-name job changes one), and the
operator's behaviour the local runner (localrun/) reproduces: how it reads the rendered object
(`read_replicas`, `limits`, `cluster_only`, and `local_warnings` for what runs here without part
of its cluster behaviour), names pods (`pod_name`), sets each replica's env (`replica_env`, given
the job's name), treats an exit (`exit_action`, `fail_job_rule`), decides the job (`succeeded`,
`failed`) and reports it (`status`, `job_conditions(replica types)` from CONDITIONS, EVENTS).
configmap builds the ConfigMap (render.py writes the kustomization.yaml files). Adding a kind is one module here, listed in
WORKLOADS.

A kind may also build several objects (`objects(job, names, source, config)`; the name hash then
sees `hash_view(objects)`), read a rendered object together with the other manifests of its job
(`resolve(obj, manifests)`), fill in downward-API fields of a pod (`pod_fields(obj, index)`),
restart every replica when a job fails (`jobset_action`) and print its own describe
(`describe`): trainjob (Kubeflow Trainer v2, `spec.target: trainjob`) does, with
trainingruntime building its runtime.
"""

from __future__ import annotations

from compiler.kinds import batchjob, jaxjob, paddlejob, pytorchjob, tfjob, trainjob, xgboostjob
from compiler.kinds.pod import replicas as _replicas

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Iterator

    from compiler.spec import Replica, TrainingJob

#: The training-operator v1 / batch kinds, one per framework (`spec.target: v1`, the default).
FRAMEWORK_KINDS = (tfjob, pytorchjob, xgboostjob, jaxjob, paddlejob, batchjob)
#: Every workload kind, in the order docs and health checks list them.
WORKLOADS = (*FRAMEWORK_KINDS, trainjob)
#: Every replica type name of every kind, each once (the spec's replica keys).
REPLICA_TYPES = tuple(dict.fromkeys(t for k in WORKLOADS for t in k.REPLICA_TYPES))
_BY_FRAMEWORK = {fw: k for k in FRAMEWORK_KINDS for fw in k.FRAMEWORKS}
_BY_KIND = {k.KIND: k for k in WORKLOADS}


def workload(job: TrainingJob) -> ModuleType:
    """The kind module that renders a spec's workload: a TrainJob under `target: trainjob`, else
    its framework's kind."""
    if job.spec.target == trainjob.TARGET:
        return trainjob
    return _BY_FRAMEWORK[job.spec.framework]


def framework_kind(job: TrainingJob) -> ModuleType:
    """The v1 kind of a spec's framework, whose replica types and defaults the spec is written in."""
    return _BY_FRAMEWORK[job.spec.framework]


def by_kind(kind: str) -> ModuleType | None:
    """The kind module of a rendered object's `kind` (None for kinds that are not workloads)."""
    return _BY_KIND.get(kind)


def immutable_fields(kind: str) -> tuple[str, ...]:
    """The fields Kubernetes refuses to change on an existing object of `kind` (dotted paths), as
    its kind module declares them: a workload's, or specc's TrainingRuntime's."""
    from compiler.kinds import trainingruntime

    mod = _BY_KIND.get(kind) or (trainingruntime if kind == trainingruntime.KIND else None)
    return tuple(getattr(mod, "IMMUTABLE_FIELDS", ())) if mod is not None else ()


def replicas(job: TrainingJob) -> dict[str, Replica]:
    """The spec's replica types of its framework's kind, in render order, with their settings."""
    kind = framework_kind(job)
    return _replicas(job, kind.REPLICA_TYPES, kind.DEFAULT_REPLICAS)


def check_target(job: TrainingJob) -> Iterator[tuple]:
    """The target rules every kind shares: `runtime` belongs to target trainjob."""
    if job.spec.target != trainjob.TARGET and job.spec.runtime is not None:
        yield ("spec", "runtime"), "runtime names a Kubeflow Trainer v2 runtime: it applies to target: trainjob only"
