"""Kubeflow Trainer v2 runtimes: the built-in ClusterTrainingRuntimes, specc's own namespaced
TrainingRuntime, and what Trainer v2.3.0 does with a runtime and a TrainJob (the JobSet it builds
and what its admission webhook refuses), for the local runner and the tests.

specc's own runtime (`build`) serves one TrainJob and is content-hashed with it. It is a runtime
Trainer really applies: `mlPolicy: {numNodes: 1}` without a framework policy (the plainml path,
pkg/runtime/framework/plugins/plainml/plainml.go; the TrainJob's trainer.numNodes overrides the
count), because without an mlPolicy trainer.resourcesPerNode is dropped
(pkg/runtime/core/trainingruntime.go newRuntimeInfo); one replicated job `node` labelled
`trainer.kubeflow.org/trainjob-ancestor-step: trainer` whose container is `node`, the only
container trainer.image/command/args/env reach (pkg/runtime/framework/plugins/jobset/builder.go
Trainer). Restarts: pod restartPolicy, the Job's backoffLimit and podFailurePolicy, and a JobSet
failurePolicy for v1's ExitCode; ttlSecondsAfterFinished on the JobSet.

Argo CD: the runtime goes one sync wave before its TrainJob (same-wave custom resources are
applied in name order, and Trainer's webhook refuses a TrainJob whose runtime does not exist,
trainingruntime.go ValidateObjects). It is never pruned: that webhook Gets the runtime on every
update of the TrainJob too, so a TrainJob whose runtime is gone cannot even lose its
foregroundDeletion finalizer; under PruneLast every prune shares one final wave (argo-cd
gitops-engine/pkg/sync/sync_context.go), so a wave cannot order the two deletions. Old runtimes
stay as extraneous objects that do not make the Application OutOfSync (IgnoreExtraneous).
"""

from __future__ import annotations

from compiler.kinds.pod import metadata, pod_template
from runtime.contract import (
    COMPLETION_INDEX_ANNOTATION, JOBSET_NAME_ENV, JOBSET_NAME_LABEL, NODE_INDEX_ENV, NODE_JOB, TF_NODE_PORT,
    TORCH_NODE_PORT, node_host,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from compiler.naming import Names
    from compiler.spec import Replica, TrainingJob

API_VERSION = "trainer.kubeflow.org/v1alpha1"
GROUP = "trainer.kubeflow.org"
KIND = "TrainingRuntime"
CLUSTER_KIND = "ClusterTrainingRuntime"
#: The label that tells Trainer which replicated job runs the trainer (constants.LabelTrainJobAncestor).
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
ANCESTOR_TRAINER = "trainer"
#: specc's runtime of a job is named after it.
NAME_SUFFIX = "-runtime"
#: Argo CD annotations of specc's runtime: applied before its TrainJob, never pruned, not a drift once left behind.
SYNC_WAVE = "-1"
ARGOCD_ANNOTATIONS = {
    "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
    "argocd.argoproj.io/sync-options": "Prune=false",
    "argocd.argoproj.io/sync-wave": SYNC_WAVE,
}
#: The JobSet failurePolicy rule that fails the JobSet on a permanent exit (v1 ExitCode).
PERMANENT_EXIT_RULE = "PermanentExitCode"

#: Trainer v2.3.0's built-in ClusterTrainingRuntimes (manifests/base/runtimes/) and their ML policy.
BUILTIN_POLICIES = {
    "torch-distributed": "torch", "jax-distributed": "jax", "xgboost-distributed": "xgboost",
    "deepspeed-distributed": "mpi", "mlx-distributed": "mpi",
    "torchtune-llama3.2-1b": "torch", "torchtune-llama3.2-3b": "torch", "torchtune-qwen2.5-1.5b": "torch",
}
#: Those made of one replicated job `node` whose container `node` has no command, and its image
#: (the MPI ones add a launcher job, the torchtune ones initializer jobs).
SINGLE_NODE_JOB = {
    "torch-distributed": "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime",
    "jax-distributed": "nvcr.io/nvidia/jax:25.10-py3",
    "xgboost-distributed": "ghcr.io/kubeflow/trainer/xgboost-runtime",
}
#: Variables each ML policy's plugin sets and its webhook refuses in trainer.env (constants.go).
RESERVED_ENV = {
    "torch": ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT"),
    "xgboost": ("DMLC_TRACKER_URI", "DMLC_TRACKER_PORT", "DMLC_TASK_ID", "DMLC_NUM_WORKER"),
}
#: Containers whose env a runtime patch cannot set (pkg/runtime/framework/plugins/jobset/jobset.go Validate).
NO_PATCH_ENV = ("dataset-initializer", "model-initializer", NODE_JOB)
#: Fields of a TrainingRuntime the v2.3.0 CRD refuses to change (CEL `self == oldSelf`), of those specc renders.
IMMUTABLE_FIELDS = ("spec.template.spec.failurePolicy",)
#: Kubernetes' default Job backoffLimit.
DEFAULT_BACKOFF_LIMIT = 6


def policy_of(runtime: dict) -> str | None:
    """The ML policy of a runtime object: torch, mpi, jax, xgboost, flux, or None (plainml)."""
    ml = (runtime.get("spec") or {}).get("mlPolicy") or {}
    return next((p for p in ("torch", "mpi", "jax", "xgboost", "flux") if p in ml), None)


def builtin(name: str) -> dict | None:
    """A built-in ClusterTrainingRuntime of one node job as Trainer v2.3.0 installs it, or None."""
    if name not in SINGLE_NODE_JOB:
        return None
    policy = BUILTIN_POLICIES[name]
    job = {"name": NODE_JOB, "template": {"metadata": {"labels": {ANCESTOR_LABEL: ANCESTOR_TRAINER}}, "spec": {
        "template": {"spec": {"containers": [{"name": NODE_JOB, "image": SINGLE_NODE_JOB[name]}]}}}}}
    return {"apiVersion": API_VERSION, "kind": CLUSTER_KIND,
            "metadata": {"name": name, "labels": {"trainer.kubeflow.org/framework": policy}},
            "spec": {"mlPolicy": {"numNodes": 1, policy: {}}, "template": {"spec": {"replicatedJobs": [job]}}}}


# ---------------------------------------------------------------------------- specc's own runtime


def name(names: Names) -> str:
    """The name of specc's runtime of a job."""
    return names.job + NAME_SUFFIX


def plumbing_env(custom_tf: bool, nodes: int) -> list[dict]:
    """The env specc's runtime puts first in the node container: the JobSet's name from its pod
    label, and for a custom TensorFlow image the node index and TF_CONFIG, built by Kubernetes'
    `$(VAR)` expansion (it sees only variables defined earlier in the list)."""
    out = [{"name": JOBSET_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOBSET_NAME_LABEL}']"}}}]
    if custom_tf:
        out.append({"name": NODE_INDEX_ENV,
                    "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}})
        hosts = ",".join(f'"{node_host(f"$({JOBSET_NAME_ENV})", i)}:{TF_NODE_PORT}"' for i in range(nodes))
        tf_config = (f'{{"cluster":{{"worker":[{hosts}]}},"task":{{"type":"worker","index":$({NODE_INDEX_ENV})}},'
                     '"environment":"cloud"}')
        out.append({"name": "TF_CONFIG", "value": tf_config})
    return out


def restart_rules(policy: str, backoff_limit: int | None) -> tuple[str, dict, dict | None]:
    """(pod restartPolicy, Job spec fields, JobSet failurePolicy) of a v1 restartPolicy:
    OnFailure restarts containers in place up to backoffLimit; Never fails the job with its first
    failed pod; ExitCode fails it at once on an exit of 1-127 (a podFailurePolicy rule, which
    fails the JobSet through the failurePolicy rule on PodFailurePolicy) and restarts every node
    on 128 and above (the failed Job restarts the JobSet, up to backoffLimit times)."""
    if policy == "OnFailure":
        job = {} if backoff_limit is None else {"backoffLimit": backoff_limit}
        return "OnFailure", job, None
    if policy == "Never":
        return "Never", {"backoffLimit": 0}, None
    from compiler.kinds.batchjob import PERMANENT_EXIT_CODES

    job = {"backoffLimit": 0, "podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": NODE_JOB, "operator": "In", "values": PERMANENT_EXIT_CODES}},
    ]}}
    failure = {"maxRestarts": DEFAULT_BACKOFF_LIMIT if backoff_limit is None else backoff_limit,
               "rules": [{"name": PERMANENT_EXIT_RULE, "action": "FailJobSet", "onJobFailureReasons": ["PodFailurePolicy"]}]}
    return "Never", job, failure


def _with_env(container: dict, env: list[dict]) -> dict:
    """The container with `env` in its place among the fields (before ports, resources and mounts)."""
    out: dict = {}
    for key, value in container.items():
        if key in ("ports", "resources", "volumeMounts") and "env" not in out:
            out["env"] = env
        if key != "env":
            out[key] = value
    out.setdefault("env", env)
    return out


def build(job: TrainingJob, names: Names, replica: Replica, *, policy: str, nodes: int, env: list[dict],
          source: str | None = None) -> dict:
    """specc's TrainingRuntime for one TrainJob: the pod from pod.pod_template, its node container
    holding the plumbing env and then `env` (what the TrainJob's trainer.env also sets)."""
    rp = job.spec.runPolicy
    pod_policy, job_fields, failure = restart_rules(policy, rp.backoffLimit)
    pod = pod_template(job, names, replica, container_name=NODE_JOB, port=None, restart_policy=pod_policy)
    custom_tf = job.spec.framework == "tensorflow" and job.spec.container is not None
    pod["spec"]["containers"][0] = _with_env(pod["spec"]["containers"][0], plumbing_env(custom_tf, nodes) + env)
    node_spec: dict = {**job_fields, "completionMode": "Indexed", "template": pod}
    spec: dict = {}
    if failure is not None:
        spec["failurePolicy"] = failure
    spec["replicatedJobs"] = [{"name": NODE_JOB, "template": {"metadata": {"labels": {ANCESTOR_LABEL: ANCESTOR_TRAINER}},
                                                              "spec": node_spec}}]
    if rp.ttlSecondsAfterFinished is not None:
        spec["ttlSecondsAfterFinished"] = rp.ttlSecondsAfterFinished
    md = metadata(job, name(names), source=source)
    md["annotations"] = dict(sorted({**md.get("annotations", {}), **ARGOCD_ANNOTATIONS}.items()))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": md,
        "spec": {"mlPolicy": {"numNodes": 1}, "template": {"spec": spec}},
    }


# ---------------------------------------------------------------------------- what Trainer does


def _by_name(items: list, key: str = "name") -> dict:
    return {str(i.get(key)): i for i in items if isinstance(i, dict)}


def _upsert(items: list[dict], new: list[dict], key: str = "name") -> list[dict]:
    """Trainer's apply.upsert: replace an item with the same key in place, else append."""
    out = [dict(i) for i in items]
    for item in new:
        at = next((k for k, i in enumerate(out) if i.get(key) == item.get(key)), None)
        if at is None:
            out.append(dict(item))
        else:
            out[at] = dict(item)
    return out


def _merge_list(base: list, patch: list, key: str) -> list:
    """A strategic merge of lists keyed by `key`: a patch item merges into the item with its key, others append."""
    out = [dict(i) for i in base]
    for item in patch:
        at = next((k for k, i in enumerate(out) if i.get(key) == item.get(key)), None)
        if at is None:
            out.append(dict(item))
        else:
            out[at] = {**out[at], **item}
    return out


def _merge_container(base: dict, patch: dict) -> dict:
    out = dict(base)
    for field, value in patch.items():
        if field == "env":
            out["env"] = _merge_list(base.get("env") or [], value, "name")
        elif field == "volumeMounts":
            out["volumeMounts"] = _merge_list(base.get("volumeMounts") or [], value, "mountPath")
        elif field == "securityContext":
            out["securityContext"] = {**(base.get("securityContext") or {}), **value}
        else:
            out[field] = value
    return out


#: How a PodSpecPatch field merges into a pod spec (Kubernetes' strategic merge keys).
_POD_LIST_KEYS = {"volumes": "name", "imagePullSecrets": "name", "schedulingGates": "name",
                  "initContainers": "name", "containers": "name"}


def _patch_pod(pod: dict, patch: dict) -> dict:
    out = dict(pod)
    for field, value in patch.items():
        if field in ("initContainers", "containers"):
            out[field] = [_merge_container(c, next((p for p in value if p.get("name") == c.get("name")), {}))
                          for c in pod.get(field) or []]
        elif field in _POD_LIST_KEYS:
            out[field] = _merge_list(pod.get(field) or [], value, _POD_LIST_KEYS[field])
        elif field in ("nodeSelector", "securityContext"):
            out[field] = {**(pod.get(field) or {}), **value}
        else:
            out[field] = value
    return out


def _patch_meta(meta: dict, patch: dict | None) -> dict:
    out = dict(meta or {})
    for field in ("labels", "annotations"):
        if (patch or {}).get(field):
            out[field] = {**(out.get(field) or {}), **patch[field]}
    return out


def _apply_patches(spec: dict, patches: list[dict]) -> dict:
    """The JobSet spec with every runtimePatch merged in, in list order (mergeRuntimePatches)."""
    jobs = [dict(j) for j in spec.get("replicatedJobs") or []]
    for entry in patches:
        patch_jobs = ((((entry.get("trainingRuntimeSpec") or {}).get("template") or {}).get("spec") or {})
                      .get("replicatedJobs") or [])
        for pj in patch_jobs:
            at = next((k for k, j in enumerate(jobs) if j.get("name") == pj.get("name")), None)
            if at is None:
                continue  # the webhook refuses it (admission)
            job = jobs[at]
            tpl = dict(job.get("template") or {})
            ptpl = pj.get("template") or {}
            tpl["metadata"] = _patch_meta(tpl.get("metadata"), ptpl.get("metadata"))
            jspec = dict(tpl.get("spec") or {})
            pod_tpl = dict(jspec.get("template") or {})
            ppod = ((ptpl.get("spec") or {}).get("template") or {})
            pod_tpl["metadata"] = _patch_meta(pod_tpl.get("metadata"), ppod.get("metadata"))
            pod_tpl["spec"] = _patch_pod(pod_tpl.get("spec") or {}, ppod.get("spec") or {})
            jspec["template"] = pod_tpl
            tpl["spec"] = jspec
            jobs[at] = {**job, "template": tpl}
    return {**spec, "replicatedJobs": jobs}


def node_count(trainjob: dict, runtime: dict) -> int:
    """The trainer job's pod count: trainer.numNodes, else the runtime's mlPolicy.numNodes."""
    trainer = (trainjob.get("spec") or {}).get("trainer") or {}
    ml = (runtime.get("spec") or {}).get("mlPolicy") or {}
    return int(trainer.get("numNodes") or ml.get("numNodes") or 1)


def nproc_per_node(trainer: dict, runtime_resources: dict | None) -> str:
    """PET_NPROC_PER_NODE as the torch plugin computes it (torch.go EnforceMLPolicy, runtime.go
    GetNumGPUPerNode): numProcPerNode if set; otherwise `auto` when a resource whose name holds
    "gpu" is requested (or limited), else max(1, the CPU request rounded up, or the limit)."""
    if trainer.get("numProcPerNode") is not None:
        return str(trainer["numProcPerNode"])
    res = trainer.get("resourcesPerNode") or runtime_resources or {}
    from compiler.quantity import parse_quantity

    def gpus(rl: dict) -> int:
        for rname, q in (rl or {}).items():
            if "gpu" in rname.lower():
                return _ceil(parse_quantity(str(q)))
        return 0

    if gpus(res.get("requests")) or gpus(res.get("limits")):
        return "auto"
    request, limit = (res.get("requests") or {}).get("cpu"), (res.get("limits") or {}).get("cpu")
    cpu = 0
    if request is not None and parse_quantity(str(request)) != 0:
        cpu = _ceil(parse_quantity(str(request)))
    elif limit is not None:
        cpu = _ceil(parse_quantity(str(limit)))
    return str(max(1, cpu))


def _ceil(q) -> int:
    import math

    return math.ceil(q)


def jobset_spec(trainjob: dict, runtime: dict) -> dict:
    """The JobSet spec Trainer v2.3.0 builds for `trainjob` from `runtime` (a (Cluster)TrainingRuntime
    object): the template with runtimePatches merged, the trainer job counted and resized, its
    node container given trainer.image/command/args/env and the ML policy's env (plainml: trainer
    env; torch: trainer env then PET_*), and JobSet's defaults (Indexed completion, pod
    restartPolicy OnFailure)."""
    import copy

    spec = (trainjob.get("spec") or {})
    trainer = spec.get("trainer") or {}
    rspec = runtime.get("spec") or {}
    ml = rspec.get("mlPolicy")
    policy = policy_of(runtime)
    name = (trainjob.get("metadata") or {}).get("name") or ""
    out = _apply_patches(copy.deepcopy((rspec.get("template") or {}).get("spec") or {}), spec.get("runtimePatches") or [])
    count = node_count(trainjob, runtime)
    jobs = []
    for rjob in out.get("replicatedJobs") or []:
        tpl = copy.deepcopy(rjob.get("template") or {})
        jspec = tpl.setdefault("spec", {})
        jspec.setdefault("completionMode", "Indexed")
        pod = jspec.setdefault("template", {}).setdefault("spec", {})
        pod.setdefault("restartPolicy", "OnFailure")
        ancestor = ((tpl.get("metadata") or {}).get("labels") or {}).get(ANCESTOR_LABEL)
        if ancestor == ANCESTOR_TRAINER:
            rjob = {**rjob, "replicas": 1}
            jspec["parallelism"] = jspec["completions"] = count
            containers = []
            for c in pod.get("containers") or []:
                if c.get("name") == NODE_JOB:
                    c = dict(c)
                    for field in ("image", "command", "args"):
                        if trainer.get(field) is not None:
                            c[field] = trainer[field]
                    if trainer.get("resourcesPerNode") and ml is not None:
                        base = c.get("resources") or {}
                        over = trainer["resourcesPerNode"]
                        c["resources"] = {k: {**(base.get(k) or {}), **(over.get(k) or {})}
                                          for k in ("limits", "requests") if base.get(k) or over.get(k)}
                    env = _upsert(c.get("env") or [], trainer.get("env") or [])
                    if policy == "torch":
                        env = _upsert(env, torch_env(name, count, nproc_per_node(trainer, c.get("resources"))))
                        c["ports"] = _upsert(c.get("ports") or [], [{"containerPort": TORCH_NODE_PORT}], key="containerPort")
                    c["env"] = env
                containers.append(c)
            pod["containers"] = containers
        jobs.append({**rjob, "template": tpl})
    return {**out, "replicatedJobs": jobs}


def torch_env(trainjob: str, nodes: int, nproc: str) -> list[dict]:
    """The torch plugin's variables for the node container (torch.go EnforceMLPolicy)."""
    return [
        {"name": "PET_NNODES", "value": str(nodes)},
        {"name": "PET_NPROC_PER_NODE", "value": nproc},
        {"name": "PET_NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}},
        {"name": "PET_MASTER_ADDR", "value": node_host(trainjob, 0)},
        {"name": "PET_MASTER_PORT", "value": str(TORCH_NODE_PORT)},
    ]


# ---------------------------------------------------------------------------- the webhook


def _domain_prefixed(value: str) -> bool:
    """k8s.io/apimachinery validation.IsDomainPrefixedPath: `<DNS subdomain>/<path>`."""
    import re

    host, sep, path = value.partition("/")
    if not sep or not path or len(host) > 253:
        return False
    return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", host)
                and re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", path))


def defaulted_patches(old: dict | None, new: dict, now: str = "<now>") -> list[dict]:
    """new's runtimePatches after Trainer's defaulting webhook (trainjob_webhook.go Default): an
    entry equal to the old one but for `time` keeps the old time, a changed or new entry gets `now`."""
    olds = {p.get("manager"): p for p in ((old or {}).get("spec") or {}).get("runtimePatches") or []}
    out = []
    for p in (new.get("spec") or {}).get("runtimePatches") or []:
        prev = olds.get(p.get("manager"))
        same = prev is not None and {k: v for k, v in prev.items() if k != "time"} == {k: v for k, v in p.items() if k != "time"}
        if same:
            out.append({**p, "time": prev.get("time")} if "time" in prev else {k: v for k, v in p.items() if k != "time"})
        elif prev is not None or "time" not in p:
            out.append({**p, "time": now})
        else:
            out.append(dict(p))
    return out


def patches_update(old: dict, new: dict) -> list[str]:
    """Trainer's webhook on an update of a TrainJob: runtimePatches may change only while the job
    is suspended before or after it (jobset.go checkRuntimePatchesImmutability; an active JobSet
    is refused too, which needs the cluster)."""
    before, after = (old.get("spec") or {}), (new.get("spec") or {})
    if (before.get("runtimePatches") or []) == defaulted_patches(old, new):
        return []
    if before.get("suspend") is True or after.get("suspend") is True:
        return []
    return ["spec.runtimePatches: RuntimePatches can only be modified when the TrainJob is suspended before or after the update"]


def admission(trainjob: dict, runtime: dict | None) -> list[str]:
    """What Trainer v2.3.0's TrainJob webhook and JobSet's name rules refuse in `trainjob` with
    `runtime` (None: the runtime it names does not exist): pkg/webhooks/trainjob_webhook.go,
    pkg/runtime/core/trainingruntime.go ValidateObjects, plugins jobset.go / torch.go /
    xgboost.go Validate, jobset pkg/webhooks/jobset_webhook.go ValidateCreate."""
    spec = trainjob.get("spec") or {}
    meta = trainjob.get("metadata") or {}
    ref = spec.get("runtimeRef") or {}
    kind, group = ref.get("kind") or CLUSTER_KIND, ref.get("apiGroup") or GROUP
    if group != GROUP or kind not in (KIND, CLUSTER_KIND):
        return [f"spec.runtimeRef: unsupported runtime: {kind}.{group}"]
    if runtime is None or runtime.get("kind") != kind or (runtime.get("metadata") or {}).get("name") != ref.get("name"):
        return [f"spec.runtimeRef: {kind} {ref.get('name')!r} not found: specified trainingRuntime must be created "
                "before the TrainJob is created"]
    if kind == KIND and (runtime.get("metadata") or {}).get("namespace") != meta.get("namespace"):
        return [f"spec.runtimeRef: TrainingRuntime {ref.get('name')!r} is not in the TrainJob's namespace"]
    out = []
    jobs = {j.get("name"): j for j in (((runtime.get("spec") or {}).get("template") or {}).get("spec") or {}).get("replicatedJobs") or []}
    containers = {}
    for jname, job in jobs.items():
        pod = (((job.get("template") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
        containers[jname] = {c.get("name") for c in (pod.get("initContainers") or []) + (pod.get("containers") or [])}
    for i, entry in enumerate(spec.get("runtimePatches") or []):
        at = f"spec.runtimePatches[{i}]"
        if not _domain_prefixed(str(entry.get("manager") or "")):
            out.append(f"{at}.manager: {entry.get('manager')!r} must be a domain-prefixed path (such as example.com/name)")
        pjobs = ((((entry.get("trainingRuntimeSpec") or {}).get("template") or {}).get("spec") or {}).get("replicatedJobs") or [])
        for pj in pjobs:
            jname = pj.get("name")
            if jname not in containers:
                out.append(f"{at}: must not have replicated job that doesn't exist in the runtime job template ({jname})")
                continue
            pod = ((((pj.get("template") or {}).get("spec") or {}).get("template") or {}).get("spec") or {})
            for field in ("initContainers", "containers"):
                for c in pod.get(field) or []:
                    if c.get("name") not in containers[jname]:
                        what = "initContainer" if field == "initContainers" else "container"
                        out.append(f"{at}: must not have {what} that doesn't exist in the runtime job {jname} ({c.get('name')})")
                    elif field == "containers" and c.get("env") and c.get("name") in NO_PATCH_ENV:
                        out.append(f"{at}: must not have envs for the {', '.join(NO_PATCH_ENV)} containers ({c.get('name')})")
    reserved = set(RESERVED_ENV.get(policy_of(runtime) or "", ()))
    used = sorted({e.get("name") for e in (spec.get("trainer") or {}).get("env") or []} & reserved)
    if used:
        out.append(f"spec.trainer.env: must not have reserved envs, invalid envs configured: {used}")
    name = str(meta.get("name") or "")
    count = node_count(trainjob, runtime)
    for jname, job in jobs.items():
        trainer_job = ((job.get("template") or {}).get("metadata") or {}).get("labels", {}).get(ANCESTOR_LABEL) == ANCESTOR_TRAINER
        jspec = (job.get("template") or {}).get("spec") or {}
        completions = count if trainer_job else (jspec.get("completions") or jspec.get("parallelism") or 1)
        replicas = 1 if trainer_job else int(job.get("replicas") or 1)
        pod_name = f"{name}-{jname}-{replicas - 1}-{completions - 1}-abcde"
        if len(pod_name) > 63:
            out.append(f"metadata.name: JobSet name is too long, pod names generated for this JobSet will exceed 63 "
                       f"characters ({pod_name}: {len(pod_name)})")
    return out
