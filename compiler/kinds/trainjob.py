"""`spec.target: trainjob` -> a Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1, v2.3).

A TrainJob runs numNodes identical nodes: the replicas of the spec's framework kind (TensorFlow:
Worker; PyTorch: Master then Worker, node 0 the master; python/sklearn on a named runtime:
Worker) become one group, so their settings must agree. `trainer` carries what runs (image,
command, args, env, numNodes, resourcesPerNode, numProcPerNode); the pod is either

- a runtime of the cluster (`spec.runtime`, or torch-distributed for a custom PyTorch image whose
  pod fits): pod-level settings then go into one `runtimePatches` entry of manager
  specc.dev/compiler, and only what Trainer's PodSpecPatch allows can go there
  (pkg/apis/trainer/v1alpha1/trainjob_types.go: no new containers, container patches carry env,
  volumeMounts and securityContext, and the webhook refuses env on the container `node`);
- or specc's own TrainingRuntime (compiler/kinds/trainingruntime.py): built-in trainers,
  TensorFlow, and any pod that needs more (restart rules, workingDir, priorityClassName, TTL).

Inside the containers: built-in trainers get SPECC_NUM_NODES and build TF_CONFIG or the torch
variables themselves (runtime/jobset.py); a custom TensorFlow image gets TF_CONFIG from specc's
runtime; a custom PyTorch image gets MASTER_ADDR, MASTER_PORT, RANK (the completion-index
annotation through a fieldRef) and WORLD_SIZE, since only the PET_* variables are set for it.

The module also holds Trainer's rules as the local runner plays them: `resolve` builds the JobSet
Trainer would (trainingruntime.jobset_spec), the node Job restarts pods by its restartPolicy,
backoffLimit and podFailurePolicy, and a failed Job restarts the whole JobSet or fails it by the
JobSet's failurePolicy (`jobset_action`, kubernetes-sigs/jobset v0.12.0
pkg/controllers/failure_policy.go). Conditions are Trainer's: Complete and Failed copy the
JobSet's reason and message (pkg/runtime/framework/plugins/jobset/jobset.go Status), Failed with
DeadlineExceeded is Trainer's own (pkg/controller/trainjob_controller.go reconcileDeadline).
"""

from __future__ import annotations

from compiler.kinds import trainingruntime as tr
# A node Job's pods restart as a batch/v1 Job's do.
from compiler.kinds.batchjob import exit_action  # noqa: F401
from compiler.kinds.batchjob import fail_job_rule as _job_fail_rule
from compiler.kinds.pod import SUCCEEDED, container, env as pod_env, pod_template, workload_object
from compiler.naming import HASH_SUFFIX_LEN
from runtime.contract import (
    COMPLETION_INDEX_ANNOTATION, COMPLETION_INDEX_ENV, JOBSET_NAME_ENV, JOBSET_NAME_LABEL, NODE_ADDRESSES_ENV,
    NODE_INDEX_ENV, NODE_JOB, NUM_NODES_ENV, TORCH_NODE_PORT, node_host,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Iterator, Mapping, Sequence

    from compiler.naming import Names
    from compiler.spec import Replica, TrainingJob

API_VERSION = tr.API_VERSION
GROUP = tr.GROUP
KIND = "TrainJob"
TARGET = "trainjob"
#: The Trainer release specc renders for: runtimePatches exists from v2.2 (v2.0 podSpecOverrides,
#: v2.1 podTemplateOverrides); v2.3 snapshots a TrainJob's runtime when it starts.
TRAINER_VERSION = "v2.3"
#: Frameworks whose jobs a TrainJob runs; python and sklearn only as a custom container on a named runtime.
FRAMEWORKS = ("tensorflow", "pytorch")
RUNTIME_FRAMEWORKS = ("python", "sklearn")
#: The spec keeps its framework's replica types (compiler.kinds.replicas); a TrainJob has its node group.
REPLICA_TYPES = ()
DEFAULT_REPLICAS: dict[str, int] = {}
SINGLETONS = ()
#: JobSet's default pod restartPolicy (jobset_webhook.go Default).
DEFAULT_RESTART_POLICY = "OnFailure"
CONTAINER = NODE_JOB
PORT = None
#: Variables Trainer's torch plugin sets in the node container (a spec cannot set them).
OPERATOR_ENV = tr.RESERVED_ENV["torch"]
#: Variables specc or Kubernetes set in a node (a trainjob spec cannot set them).
NODE_ENV = (NUM_NODES_ENV, JOBSET_NAME_ENV, NODE_INDEX_ENV, NODE_ADDRESSES_ENV, COMPLETION_INDEX_ENV, "TF_CONFIG",
            "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")
SPEC_FIELDS = ()
#: CEL `self == oldSelf` in the v2.3.0 CRD; runtimePatches also cannot change while the job runs
#: (jobset.go checkRuntimePatchesImmutability).
IMMUTABLE_FIELDS = ("spec.runtimeRef", "spec.initializer", "spec.trainer", "spec.runtimePatches",
                    "spec.activeDeadlineSeconds", "spec.managedBy")
#: The manager of specc's runtimePatches entry: a domain-prefixed path, as the webhook demands.
MANAGER = "specc.dev/compiler"
#: The runtime a custom image of a framework runs on when the spec names none and its pod fits.
DEFAULT_RUNTIMES = {"pytorch": "torch-distributed", "jax": "jax-distributed", "xgboost": "xgboost-distributed"}
#: Limits of trainer fields in the v2.3.0 CRD.
MAX_IMAGE, MAX_ITEMS = 500, 128
#: The replica types each framework's nodes may be written as.
NODE_TYPES = {"tensorflow": ("Worker",), "pytorch": ("Master", "Worker"), "jax": ("Worker",), "xgboost": ("Master", "Worker"),
              "paddle": ("Master", "Worker"), "python": ("Worker",), "sklearn": ("Worker",)}
#: How the local runner names the node group's replicas (node-0, node-1...).
NODE_REPLICA = "Node"
#: JobSet names pod i `<jobset>-node-0-<i>-<5 random characters>` (jobset_webhook.go ValidateCreate).
POD_NAME_PATTERN = "<job>-node-0-<index>-<5 random characters>"


# ---------------------------------------------------------------------------- the spec's nodes


def nodes(job: TrainingJob) -> tuple[Replica, int]:
    """The settings every node runs with (the first replica type's) and the number of nodes."""
    from compiler import kinds

    reps = kinds.replicas(job)
    return next(iter(reps.values())), sum(r.count for r in reps.values())


def restart_policy(job: TrainingJob, replica: Replica) -> str:
    """The nodes' v1 restartPolicy: the spec's, else its framework kind's default."""
    from compiler import kinds

    return replica.restartPolicy or kinds.framework_kind(job).DEFAULT_RESTART_POLICY


def platform_runtime(job: TrainingJob) -> tuple[str, str] | None:
    """(kind, name) of the cluster's runtime the TrainJob uses, or None for specc's own."""
    rt = job.spec.runtime
    if rt is not None:
        return rt.kind, rt.name
    default = DEFAULT_RUNTIMES.get(job.spec.framework)
    if default is None or job.spec.container is None:
        return None
    ref = (tr.CLUSTER_KIND, default)
    return None if any(True for _ in patch_problems(job, ref)) else ref


def runtime_policy(ref: tuple[str, str] | None) -> str | None:
    """The ML policy of a platform runtime when specc knows it (Trainer's built-in ones)."""
    if ref is None or ref[0] != tr.CLUSTER_KIND:
        return None
    return tr.BUILTIN_POLICIES.get(ref[1])


def patch_problems(job: TrainingJob, ref: tuple[str, str]) -> Iterator[tuple]:
    """(loc, message) of each setting a runtimePatch cannot carry onto runtime `ref`."""
    spec = job.spec
    builtin = runtime_policy(ref) is not None
    fragments = [(("spec", "podTemplate"), spec.podTemplate)] + [
        (("spec", "replicas", t, "podTemplate"), r.podTemplate) for t, r in (spec.replicas or {}).items()
        if not isinstance(r, int)]
    for loc, fragment in fragments:
        if fragment is not None:
            yield loc, ("a podTemplate needs specc's TrainingRuntime (a runtime patch carries only env, volumeMounts "
                        "and securityContext of the runtime's own containers, and a few pod fields): drop spec.runtime")
    if spec.container is not None and spec.container.workingDir:
        yield ("spec", "container", "workingDir"), (
            "a runtime patch cannot set workingDir (a container patch carries env, volumeMounts and securityContext "
            "only): drop spec.runtime to use specc's TrainingRuntime")
    if spec.scheduling.priorityClassName:
        yield ("spec", "scheduling", "priorityClassName"), (
            "a runtime patch cannot set priorityClassName (Trainer's PodSpecPatch has no such field): drop "
            "spec.runtime to use specc's TrainingRuntime")
    for rtype, rep in (spec.replicas or {}).items():
        if isinstance(rep, int) or rep.restartPolicy is None:
            continue
        if not builtin or rep.restartPolicy != "OnFailure":
            why = ("restarts containers in place (OnFailure, JobSet's default)" if builtin
                   else "decides restarts, and runtimePatches cannot change them")
            yield ("spec", "replicas", rtype, "restartPolicy"), (
                f"restart rules live in the runtime: {ref[1]} {why}; drop spec.runtime to get restartPolicy "
                f"{rep.restartPolicy} from specc's TrainingRuntime")
    rp = spec.runPolicy
    for field, what in (("backoffLimit", "the Job's backoffLimit"), ("ttlSecondsAfterFinished", "JobSet's ttlSecondsAfterFinished")):
        if getattr(rp, field) is not None:
            yield ("spec", "runPolicy", field), (
                f"{what} lives in the runtime and runtimePatches cannot set it: drop spec.runtime to use specc's "
                f"TrainingRuntime, or remove {field}")


def check(job: TrainingJob) -> Iterator[tuple]:
    """What a TrainJob cannot express, or Trainer's webhook would refuse, each at its field."""
    spec = job.spec
    fw = spec.framework
    if fw not in FRAMEWORKS:
        if fw in DEFAULT_RUNTIMES and spec.container is not None:
            pass  # a custom image on Trainer's built-in runtime of its framework (or a named one)
        elif fw in RUNTIME_FRAMEWORKS and (spec.container is None or spec.runtime is None):
            yield ("spec", "target"), (
                f"a {fw} job stays a batch/v1 Job (one pod needs no JobSet or runtime); target trainjob takes a "
                f"{fw} job only as a custom container on a named runtime (spec.runtime)")
            return
        elif spec.container is None or spec.runtime is None:
            yield ("spec", "target"), (
                f"Trainer v2.3 has no built-in runtime for {fw}: name the cluster's runtime (spec.runtime) for a "
                "custom container, or use target: v1")
            return
    if fw == "tensorflow" and spec.runtime is not None:
        yield ("spec", "runtime"), (
            "Trainer v2 has no TensorFlow runtime (kubeflow/trainer#2443): TensorFlow runs on specc's own "
            "TrainingRuntime, which builds TF_CONFIG; remove spec.runtime")
    allowed = NODE_TYPES[fw]
    given = spec.replicas or {}
    for rtype in given:
        if rtype not in allowed:
            yield ("spec", "replicas", rtype), (
                f"a TrainJob runs one group of identical nodes: {fw} nodes are {' and '.join(allowed)} replicas, "
                f"not {rtype} (use target: v1 for {rtype})"), "key"
    records = [(t, r) for t, r in given.items() if t in allowed]
    if len(records) > 1:
        (t0, r0), (t1, r1) = records[0], records[1]
        for field in ("restartPolicy", "resources", "env", "args"):
            a, b = _effective(job, r0, field), _effective(job, r1, field)
            if a != b:
                set_on = [t for t, r in ((t1, r1), (t0, r0)) if not isinstance(r, int) and getattr(r, field) not in (None, {}, [])]
                yield ("spec", "replicas", set_on[0], field), (
                    f"{t0} and {t1} are one group of identical nodes in a TrainJob: their {field} must match "
                    "(set it once in spec, or use target: v1)")
    for rtype, rep in records:
        if not isinstance(rep, int) and rep.restartPolicy == "Always":
            yield ("spec", "replicas", rtype, "restartPolicy"), (
                "a Job's pods cannot use restartPolicy Always; use OnFailure, ExitCode or Never")
    if spec.elasticPolicy is not None:
        yield ("spec", "elasticPolicy"), "Trainer v2 has no elastic training (JobSet has no elastic jobs yet); use target: v1"
    if spec.successPolicy == "":
        yield ("spec", "successPolicy"), "a TrainJob completes when every node completes (AllWorkers): remove successPolicy"
    ref = platform_runtime(job)
    policy = runtime_policy(ref)
    nproc = spec.nprocPerNode
    if nproc in ("cpu", "gpu"):
        yield ("spec", "nprocPerNode"), (
            f"Trainer v2 takes a number of processes per node (numProcPerNode is an integer), not {nproc}; leave it "
            "out for the torch plugin's auto (one per GPU, else per requested CPU)")
    elif nproc not in (None, "auto") and policy != "torch":
        yield ("spec", "nprocPerNode"), (
            "numProcPerNode needs a torch runtime (specc's TrainingRuntime starts one process per node): set "
            "spec.runtime to torch-distributed, or remove nprocPerNode")
    rp = spec.runPolicy
    if rp.cleanPodPolicy == "All":
        yield ("spec", "runPolicy", "cleanPodPolicy"), (
            "Trainer v2 keeps finished pods until the TrainJob is deleted and stops running ones when it ends "
            "(what None and Running mean); to delete the pods after the job, use ttlSecondsAfterFinished")
    if rp.schedulingPolicy is not None:
        yield ("spec", "runPolicy", "schedulingPolicy"), (
            "Trainer v2 gang-schedules through a runtime's podGroupPolicy, not schedulingPolicy; use scheduling.queue "
            "(Kueue) or a runtime with podGroupPolicy")
    reserved = set(NODE_ENV) | set(tr.RESERVED_ENV.get(policy or "", ()))
    envs = [(("spec", "env"), spec.env)] + [(("spec", "replicas", t, "env"), r.env) for t, r in records if not isinstance(r, int)]
    for base, env in envs:
        for name in env:
            if name in reserved:
                yield (*base, name), f"{name} is set by specc, Kubernetes or Trainer in a TrainJob's nodes; do not set it here"
    if spec.runtime is not None and fw != "tensorflow":
        yield from patch_problems(job, (spec.runtime.kind, spec.runtime.name))
    yield from _trainer_limits(job)


def admission_check(job: TrainingJob) -> Iterator[tuple]:
    """What Trainer's webhook would still refuse in the rendered TrainJob, where specc knows its
    runtime (its own, or a single-job built-in one); run once every other rule holds."""
    from compiler.naming import Names

    names = Names.for_job(job.metadata.name + "-" + "0" * (HASH_SUFFIX_LEN - 1) if job.spec.naming == "hashed"
                          else job.metadata.name)
    objs = {o["kind"]: o for o in objects(job, names, None)}
    ref = objs[KIND]["spec"]["runtimeRef"]
    runtime = objs.get(tr.KIND) if ref["kind"] == tr.KIND else tr.builtin(ref["name"])
    if runtime is None:
        return
    for problem in tr.admission(objs[KIND], runtime):
        yield ("metadata", "name"), f"Trainer's webhook would refuse this TrainJob: {problem}"


def _effective(job: TrainingJob, rep, field: str):
    """A replica's setting as its pods get it (the spec's default where it sets none)."""
    rec = None if isinstance(rep, int) else rep
    if field == "restartPolicy":
        from compiler import kinds

        return (rec and rec.restartPolicy) or kinds.framework_kind(job).DEFAULT_RESTART_POLICY
    if field == "resources":
        return (rec and rec.resources) or job.spec.resources
    if field == "env":
        return {**job.spec.env, **(rec.env if rec else {})}
    return list(rec.args) if rec else []


def _trainer_limits(job: TrainingJob) -> Iterator[tuple]:
    spec = job.spec
    image = spec.container.image if spec.container is not None else spec.image
    if image is not None and len(image) > MAX_IMAGE:
        where = ("spec", "container", "image") if spec.container is not None else ("spec", "image")
        yield where, f"a TrainJob's trainer.image holds at most {MAX_IMAGE} characters; this one has {len(image)}"
    if spec.container is not None:
        replica, _ = nodes(job)
        for field, items in (("command", spec.container.command), ("args", [*spec.container.args, *replica.args])):
            if len(items) > MAX_ITEMS:
                yield ("spec", "container", field), f"a TrainJob's trainer.{field} holds at most {MAX_ITEMS} items; this has {len(items)}"
    replica, _ = nodes(job)
    n = len({**spec.env, **replica.env})
    if n > MAX_ITEMS - 8:
        yield ("spec", "env"), (f"a TrainJob's trainer.env holds at most {MAX_ITEMS} variables and specc adds up to 8: "
                                f"at most {MAX_ITEMS - 8} fit, this job has {n}")


def name_budget(job: TrainingJob) -> int:
    """The longest metadata.name whose JobSet pods `<job>-node-0-<index>-<5 characters>` (and the
    hash suffix) fit 63 characters."""
    from compiler import kinds

    given = job.spec.replicas or kinds.framework_kind(job).DEFAULT_REPLICAS
    count = sum((r if isinstance(r, int) else r.count) for r in given.values())
    suffix = HASH_SUFFIX_LEN if job.spec.naming == "hashed" else 0
    return 63 - len(f"-{NODE_JOB}-0-") - len(str(max(count, 1) - 1)) - len("-abcde") - suffix


# ---------------------------------------------------------------------------- build


def node_env(job: TrainingJob, names: Names, replica: Replica, count: int, *, own: bool) -> list[dict]:
    """The node container's env as the TrainJob's trainer.env carries it: specc's and the spec's
    (compiler.kinds.pod.env), the node count for a built-in trainer on specc's runtime, and the
    v1-style rendezvous variables for a custom PyTorch image (RANK the node index, WORLD_SIZE
    nodes x nprocPerNode, as a PyTorchJob's)."""
    out = pod_env(job, replica)
    spec = job.spec
    if spec.trainer is not None and own:
        out.append({"name": NUM_NODES_ENV, "value": str(count)})
    if spec.framework == "pytorch" and spec.container is not None:
        nproc = spec.nprocPerNode or ""
        world = count * (int(nproc) if nproc.isdigit() else 1)  # as the v1 operator counts it
        out += [
            {"name": "MASTER_ADDR", "value": node_host(names.job, 0)},
            {"name": "MASTER_PORT", "value": str(TORCH_NODE_PORT)},
            {"name": "RANK", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}},
            {"name": "WORLD_SIZE", "value": str(world)},
        ]
    return out


def runtime_patch(job: TrainingJob, names: Names, replica: Replica) -> dict:
    """specc's runtimePatches entry: the pod's labels, service account, volumes, the node
    container's volumeMounts, nodeSelector and tolerations (in the CRD's field order)."""
    pod = pod_template(job, names, replica, container_name=NODE_JOB, port=None)
    ps = pod["spec"]
    mounts = ps["containers"][0].get("volumeMounts")
    patch: dict = {}
    if "serviceAccountName" in ps:
        patch["serviceAccountName"] = ps["serviceAccountName"]
    if "volumes" in ps:
        patch["volumes"] = ps["volumes"]
    if mounts:
        patch["containers"] = [{"name": NODE_JOB, "volumeMounts": mounts}]
    for field in ("nodeSelector", "tolerations"):
        if field in ps:
            patch[field] = ps[field]
    pod_patch: dict = {"metadata": pod["metadata"]}
    if patch:
        pod_patch["spec"] = patch
    job_patch = {"name": NODE_JOB, "template": {"spec": {"template": pod_patch}}}
    return {"manager": MANAGER, "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [job_patch]}}}}


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The TrainJob of a spec with target trainjob."""
    replica, count = nodes(job)
    ref = platform_runtime(job)
    own = ref is None
    c = container(job, replica, name=NODE_JOB, port=None)
    trainer: dict = {"image": c["image"]}
    for field in ("command", "args"):
        if field in c:
            trainer[field] = c[field]
    env = node_env(job, names, replica, count, own=own)
    if env:
        trainer["env"] = env
    trainer["numNodes"] = count
    if "resources" in c:
        trainer["resourcesPerNode"] = c["resources"]
    nproc = job.spec.nprocPerNode
    if nproc is not None and nproc.isdigit() and runtime_policy(ref) == "torch":
        trainer["numProcPerNode"] = int(nproc)
    kind, name = (tr.KIND, tr.name(names)) if own else ref
    spec: dict = {"runtimeRef": {"name": name, "apiGroup": GROUP, "kind": kind}, "trainer": trainer}
    if not own:
        spec["runtimePatches"] = [runtime_patch(job, names, replica)]
    rp = job.spec.runPolicy
    if rp.suspend is not None and job.spec.scheduling.queue is None:
        spec["suspend"] = rp.suspend
    if rp.activeDeadlineSeconds is not None:
        spec["activeDeadlineSeconds"] = rp.activeDeadlineSeconds
    return workload_object(job, names, source, API_VERSION, KIND, spec)


def objects(job: TrainingJob, names: Names, source: str | None, config: str | None = None) -> list[dict]:
    """The ConfigMap of a built-in trainer (`config`: its config.json when already made),
    specc's TrainingRuntime where the job uses it, and the TrainJob, in apply order."""
    from compiler.kinds import configmap

    out = []
    if job.spec.trainer is not None:
        out.append(configmap.build(job, names, source=source, text=config))
    if platform_runtime(job) is None:
        replica, count = nodes(job)
        out.append(tr.build(job, names, replica, policy=restart_policy(job, replica), nodes=count,
                            env=node_env(job, names, replica, count, own=True), source=source))
    out.append(build(job, names, source=source))
    return out


def hash_view(objects: list[dict]) -> list[dict]:
    """The objects as the name hash sees them: without the TrainJob's spec.suspend, which Kueue
    (or a user resuming a job) changes on the live object."""
    out = []
    for obj in objects:
        if obj.get("kind") == KIND and "suspend" in obj.get("spec", {}):
            obj = {**obj, "spec": {k: v for k, v in obj["spec"].items() if k != "suspend"}}
        out.append(obj)
    return out


# ---------------------------------------------------------------------------- Trainer's rules, locally

#: What happened -> (condition type, reason, message); fields {name}. Complete and Failed copy the
#: JobSet's condition (jobset pkg/constants/constants.go; first failed job: the node Job).
_FIRST_FAILED = " (first failed job: {name}-node-0)"
CONDITIONS = {
    "Succeeded": ("Complete", "AllJobsCompleted", "jobset completed successfully"),
    "FailedJobs": ("Failed", "FailedJobs", "jobset failed due to one or more job failures" + _FIRST_FAILED),
    "FailJobSet": ("Failed", "FailJobSetFailurePolicyAction", "applying FailJobSet failure policy action" + _FIRST_FAILED),
    "ReachedMaxRestarts": ("Failed", "ReachedMaxRestarts", "jobset failed due to reaching max number of restarts" + _FIRST_FAILED),
    "BackoffLimitExceeded": ("Failed", "FailedJobs", "jobset failed due to one or more job failures" + _FIRST_FAILED),
    "DeadlineExceeded": ("Failed", "DeadlineExceeded", "TrainJob exceeded its active deadline"),
}
#: Events of the node Job's pods (the Job controller's) and of JobSet restarts: what -> (type, reason, message).
EVENTS = {
    "created": ("Normal", "SuccessfulCreate", "Created pod: {pod}"),
    "restart": ("Warning", "RestartJobSetFailurePolicyAction", "applying RestartJobSet failure policy action" + _FIRST_FAILED),
}
#: The Job failure reasons a JobSet failurePolicy reads, by the lifecycle's verdict.
JOB_FAILURES = {"BackoffLimitExceeded": "BackoffLimitExceeded", "PodFailurePolicy": "PodFailurePolicy"}


def resolve(obj: dict, manifests: list[dict]) -> dict:
    """The TrainJob with `spec.jobSet` (the JobSet spec Trainer builds from it and its runtime)
    and `spec.mlPolicy` (the runtime's) added: the view the other rules read. ValueError when its
    runtime is neither among the manifests nor one of Trainer's single-job built-in runtimes."""
    spec = obj.get("spec") or {}
    ref = spec.get("runtimeRef") or {}
    kind, name = ref.get("kind") or tr.CLUSTER_KIND, ref.get("name")
    if kind == tr.KIND:
        runtime = next((m for m in manifests if isinstance(m, dict) and m.get("kind") == tr.KIND
                        and (m.get("metadata") or {}).get("name") == name), None)
        if runtime is None:
            raise ValueError(f"TrainingRuntime {name} is not among the job's objects; it can only run in a cluster")
    else:
        runtime = tr.builtin(str(name))
        if runtime is None:
            raise ValueError(f"ClusterTrainingRuntime {name} is not a single-job built-in runtime of Trainer "
                             f"{TRAINER_VERSION}; it can only run in a cluster")
    problems = tr.admission(obj, runtime)
    if problems:
        raise ValueError("Trainer's webhook would refuse it: " + "; ".join(problems))
    return {**obj, "spec": {**spec, "jobSet": tr.jobset_spec(obj, runtime), "mlPolicy": (runtime.get("spec") or {}).get("mlPolicy")}}


def _trainer_job(spec: dict) -> dict:
    for job in (spec.get("jobSet") or {}).get("replicatedJobs") or []:
        if ((job.get("template") or {}).get("metadata") or {}).get("labels", {}).get(tr.ANCESTOR_LABEL) == tr.ANCESTOR_TRAINER:
            return job
    return {}


def read_replicas(spec: dict) -> dict[str, tuple[int, str, dict]]:
    """{"Node": (numNodes, the pod's restartPolicy, pod template)} of a resolved TrainJob."""
    jspec = (_trainer_job(spec).get("template") or {}).get("spec") or {}
    template = jspec.get("template") or {}
    if not template:
        raise ValueError("its runtime has no replicated job labelled trainer.kubeflow.org/trainjob-ancestor-step: trainer")
    return {NODE_REPLICA: (int(jspec.get("parallelism") or 1), (template.get("spec") or {}).get("restartPolicy") or "OnFailure", template)}


def cluster_only(spec: dict) -> str | None:
    """What only a cluster can run: initializers, other replicated jobs, MPI, JAX and XGBoost runtimes,
    gang scheduling."""
    jobs = (spec.get("jobSet") or {}).get("replicatedJobs") or []
    policy = next((p for p in ("mpi", "jax", "xgboost", "flux") if p in (spec.get("mlPolicy") or {})), None)
    if policy:
        return f"uses a {policy} runtime"
    if spec.get("initializer") or len(jobs) > 1:
        return "has jobs besides the trainer nodes"
    return None


def pod_name(job: str, rtype: str, index: int) -> str:
    """Node i's hostname `<job>-node-0-<i>`; its pod name adds 5 random characters."""
    return f"{job}-{NODE_JOB}-0-{index}"


def pod_fields(obj: dict, index: int) -> dict[str, str]:
    """Downward-API fields of node i that the local runner fills in: the JobSet's name label and
    the completion index annotation."""
    return {f"metadata.labels['{JOBSET_NAME_LABEL}']": str((obj.get("metadata") or {}).get("name") or ""),
            f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']": str(index)}


def replica_env(spec: dict, rtype: str, index: int, container: str,
                addresses: Mapping[str, Sequence[tuple[str, int]]], *, job: str = "") -> dict[str, str]:
    """What a node gets besides its container's env, locally: JOB_COMPLETION_INDEX (Kubernetes),
    SPECC_NODE_ADDRESSES (loopback in place of the JobSet's DNS names), and on a torch runtime the
    master's loopback address in PET_MASTER_ADDR."""
    nodes_ = addresses.get(NODE_REPLICA, ())
    env = {COMPLETION_INDEX_ENV: str(index), NODE_ADDRESSES_ENV: ",".join(f"{h}:{p}" for h, p in nodes_)}
    if "torch" in (spec.get("mlPolicy") or {}) and nodes_:
        env["PET_MASTER_ADDR"] = nodes_[0][0]
    return env


def local_warnings(spec: dict) -> tuple[str, ...]:
    """Nothing the local run leaves out beyond what `cluster_only` refuses."""
    return ()


def job_conditions(types) -> dict[str, tuple[str, str, str]]:
    """The conditions Trainer writes, whatever the node group."""
    return CONDITIONS


def limits(spec: dict) -> tuple[int | None, float | None]:
    """(the node Job's backoffLimit, Kubernetes' default 6 when unset; the TrainJob's activeDeadlineSeconds)."""
    jspec = (_trainer_job(spec).get("template") or {}).get("spec") or {}
    deadline = spec.get("activeDeadlineSeconds")
    return int(jspec.get("backoffLimit", tr.DEFAULT_BACKOFF_LIMIT)), (None if deadline is None else float(deadline))


def fail_job_rule(spec: dict, container: str, code: int) -> int | None:
    """The node Job's podFailurePolicy rule that fails it at once on this exit, or None."""
    return _job_fail_rule((_trainer_job(spec).get("template") or {}).get("spec") or {}, container, code)


def succeeded(spec: dict, states: Mapping[str, Sequence[str]]) -> bool:
    """The JobSet completes when the node Job does: every node succeeded."""
    return all(s == SUCCEEDED for s in states.get(NODE_REPLICA, ()))


def failed(spec: dict, states: Mapping[str, Sequence[str]]) -> tuple[int, str] | None:
    """A failed pod alone does not fail the Job: its backoffLimit and podFailurePolicy do."""
    return None


def jobset_action(spec: dict, verdict: str, restarts: int) -> tuple[str, str]:
    """What the JobSet does when its node Job failed with `verdict` after `restarts` restarts:
    ("restart", "") or ("fail", the CONDITIONS key). Without a failurePolicy the first failed Job
    fails the JobSet; with one the first rule matching the Job's failure reason decides, and no
    match means RestartJobSet, which fails it once maxRestarts restarts were made."""
    policy = (spec.get("jobSet") or {}).get("failurePolicy")
    if policy is None:
        return "fail", "FailedJobs"
    reason = JOB_FAILURES.get(verdict, verdict)
    action = "RestartJobSet"
    for rule in policy.get("rules") or []:
        reasons, targets = rule.get("onJobFailureReasons") or [], rule.get("targetReplicatedJobs") or []
        if (not reasons or reason in reasons) and (not targets or NODE_JOB in targets):
            action = rule.get("action")
            break
    if action == "FailJobSet":
        return "fail", "FailJobSet"
    if action in ("RestartJobSetAndIgnoreMaxRestarts", "RestartJobAndIgnoreMaxRestarts"):
        return "restart", ""
    if restarts >= int(policy.get("maxRestarts") or 0):
        return "fail", "ReachedMaxRestarts"
    return "restart", ""


def status(conditions: list[dict], counts: Mapping[str, Mapping[str, int]]) -> dict:
    """The TrainJob's status: its conditions and jobsStatus, the node Job counted as JobSet counts
    child Jobs (ready: active with every pod running or done)."""
    done = {c["type"] for c in conditions if c.get("status") == "True"} & {"Complete", "Failed"}
    pods = counts.get(NODE_REPLICA, {})
    active = int(not done and pods.get("active", 0) > 0)
    job = {"name": NODE_JOB, "ready": int(active and not pods.get("failed", 0)), "succeeded": int("Complete" in done),
           "failed": int("Failed" in done), "active": active, "suspended": 0}
    return {"conditions": conditions, "jobsStatus": [job]}


def describe(name: str, namespace: str, status: dict, events: list[tuple[str, str, str]]) -> str:
    """The status as `kubectl describe trainjob` prints a custom resource (fields sorted, camelCase
    split into words)."""
    lines = [f"Name:         {name}", f"Namespace:    {namespace}", f"API Version:  {API_VERSION}", f"Kind:         {KIND}",
             "Status:", "  Conditions:"]
    for c in status["conditions"]:
        lines += _fields(c, "    ")
    lines.append("  Jobs Status:")
    for j in status["jobsStatus"]:
        lines += _fields(j, "    ")
    lines.append("Events:")
    if not events:
        lines[-1] += "  <none>"
    rows = [("Type", "Reason", "Message"), ("----", "------", "-------"), *events] if events else []
    widths = [max(len(r[i]) for r in rows) for i in range(3)] if rows else []
    lines += [("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def _fields(item: dict, indent: str) -> list[str]:
    import re

    keys = sorted(item)
    words = {k: re.sub(r"(?<=[a-z])(?=[A-Z])", " ", k[:1].upper() + k[1:]) + ":" for k in keys}
    width = max(len(w) for w in words.values())
    return [f"{indent}{words[k].ljust(width)}  {item[k]}" for k in keys]


# ---------------------------------------------------------------------------- Argo CD

# Argo CD's health check (gopher-lua, Lua 5.1) for a TrainJob: Failed (True) -> Degraded, Complete
# (True) -> Healthy, Suspended (True) -> Suspended, anything else (no status yet, Suspended False
# with reason Resumed) -> Progressing. The message is the deciding condition's message (else its
# reason, else its type; "TrainJob is running" while a child Job is active and no condition
# decides) plus a summary of jobsStatus. Also shipped for upstream under
# examples/argocd/resource_customizations/trainer.kubeflow.org/TrainJob/.
HEALTH_LUA = """\
-- specc: health of a Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1).
-- Failed -> Degraded, Complete -> Healthy, Suspended -> Suspended (each with status "True");
-- anything else, Suspended "False" (reason Resumed) included -> Progressing.
local hs = {}
hs.status = "Progressing"
hs.message = "Waiting for the Trainer controller to report status"
if obj.status == nil then
  return hs
end
local found = {}
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type ~= nil then
      found[c.type] = c
    end
  end
end
local jobs = ""
local active = false
if obj.status.jobsStatus ~= nil then
  local parts = {}
  for _, j in ipairs(obj.status.jobsStatus) do
    local counts = {}
    for _, field in ipairs({"active", "ready", "succeeded", "failed", "suspended"}) do
      if j[field] ~= nil and j[field] ~= 0 then
        table.insert(counts, field .. " " .. tostring(j[field]))
        if field == "active" then
          active = true
        end
      end
    end
    if #counts > 0 then
      table.insert(parts, tostring(j.name) .. ": " .. table.concat(counts, ", "))
    end
  end
  if #parts > 0 then
    jobs = " (" .. table.concat(parts, "; ") .. ")"
  end
end
local function text(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return c.type
end
local decided = nil
if found["Failed"] ~= nil and found["Failed"].status == "True" then
  hs.status = "Degraded"
  decided = found["Failed"]
elseif found["Complete"] ~= nil and found["Complete"].status == "True" then
  hs.status = "Healthy"
  decided = found["Complete"]
elseif found["Suspended"] ~= nil and found["Suspended"].status == "True" then
  hs.status = "Suspended"
  decided = found["Suspended"]
elseif found["Suspended"] ~= nil then
  decided = found["Suspended"]
end
if decided == nil and active then
  hs.message = "TrainJob is running" .. jobs
elseif decided == nil then
  hs.message = hs.message .. jobs
else
  hs.message = text(decided) .. jobs
end
return hs
"""
