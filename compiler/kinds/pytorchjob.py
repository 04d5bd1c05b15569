"""PyTorch -> kubeflow.org/v1 PyTorchJob.

The operator's behaviour is read from kubeflow/trainer v1.9.4: pkg/controller.v1/pytorch/envvar.go,
master.go and elastic.go (the env), hpa.go (elasticPolicy.metrics), pytorchjob_controller.go
(status), pkg/webhooks/pytorch/pytorchjob_webhook.go (an elastic job needs Workers, a Master is
optional).
"""

from __future__ import annotations

from compiler.kinds import v1
from compiler.kinds.pod import SUCCEEDED, quantity
# The operator's rules every v1 kind shares, re-exported as this kind's own.
from compiler.kinds.v1 import EVENTS, exit_action, fail_job_rule, limits, pod_name, status  # noqa: F401

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Collection, Iterator, Mapping, Sequence

    from compiler.naming import Names
    from compiler.spec import TrainingJob

API_VERSION = v1.API_VERSION
KIND = "PyTorchJob"
FRAMEWORKS = ("pytorch",)
REPLICA_TYPES = ("Master", "Worker")
REPLICA_SPECS_KEY = "pytorchReplicaSpecs"
DEFAULT_REPLICAS = {"Master": 1, "Worker": 1}
SINGLETONS = ("Master",)
DEFAULT_RESTART_POLICY = "OnFailure"
CONTAINER = "pytorch"
PORT = ("pytorchjob-port", 23456)
#: Variables the operator sets in every container (a spec cannot set them); it also sets
#: PYTHONUNBUFFERED=1, which a spec may set to the same effect.
OPERATOR_ENV = ("MASTER_ADDR", "MASTER_PORT", "PET_MASTER_ADDR", "PET_MASTER_PORT", "WORLD_SIZE", "RANK",
                "PET_NODE_RANK", "PET_NPROC_PER_NODE", "PET_NNODES", "PET_RDZV_ENDPOINT", "PET_RDZV_BACKEND",
                "PET_RDZV_ID", "PET_RDZV_CONF", "PET_STANDALONE", "PET_MAX_RESTARTS")
SPEC_FIELDS = ("elasticPolicy", "nprocPerNode")
HEALTH_LUA = v1.HEALTH_LUA
IMMUTABLE_FIELDS = v1.IMMUTABLE_FIELDS

# The operator's rules (pytorchjob_controller.go), as the local runner reproduces them.
#: The order the local runner walks replica types for the status (the operator's is a map's).
STATUS_ORDER = ("Master", "Worker")
_MESSAGES = {
    "Created": "PyTorchJob {name} is created.",
    "Restarting": "PyTorchJob {name} is restarting because {rtype} replica(s) failed.",
    "ReplicaFailed": "PyTorchJob {name} is failed because {count} {rtype} replica(s) failed.",
}
#: What happened -> (condition type, reason, message) with a Master; fields {namespace} {name}
#: {rtype} {count}.
CONDITIONS = v1.conditions(KIND, {
    **_MESSAGES,
    "Running": "PyTorchJob {name} is running.",
    "Succeeded": "PyTorchJob {name} is successfully completed.",
})
#: The same for an elastic job of Workers only: the workers' wording.
WORKER_CONDITIONS = v1.conditions(KIND, {
    **_MESSAGES,
    "Running": "PyTorchJob {namespace}/{name} is running.",
    "Succeeded": "PyTorchJob {namespace}/{name} successfully completed.",
})
#: The target types each metric source takes, and the field each target type sets (the API
#: server's HPA validation and the HPA controller's reading of them).
METRIC_TARGETS = {
    "resource": ("Utilization", "AverageValue"),
    "containerResource": ("Utilization", "AverageValue"),
    "pods": ("AverageValue",),
    "object": ("Value", "AverageValue"),
    "external": ("Value", "AverageValue"),
}
TARGET_FIELDS = {"Utilization": "averageUtilization", "Value": "value", "AverageValue": "averageValue"}
#: A metric's `type` -> its source field.
METRIC_SOURCES = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
                  "Object": "object", "External": "external"}


def name_budget(job: TrainingJob) -> int:
    return v1.name_budget(job, DEFAULT_REPLICAS)


def check(job: TrainingJob) -> Iterator[tuple]:
    """PyTorchJob rules: a Master and Workers (an elastic job: Workers, a Master optional); a
    sound elasticPolicy and HPA metrics."""
    given = job.spec.replicas
    ep = job.spec.elasticPolicy
    if given:
        if ep is not None:
            if "Worker" not in given:
                yield ("spec", "replicas"), "an elastic PyTorchJob needs Worker replicas (a Master is optional)"
        else:
            for need in REPLICA_TYPES:
                if need not in given:
                    yield ("spec", "replicas"), (f"a PyTorchJob needs a {need} replica (Master exactly 1, Worker >= 1; "
                                                 "with elasticPolicy, Workers alone)")
    if ep is None:
        return
    if ep.minReplicas and ep.maxReplicas and ep.minReplicas > ep.maxReplicas:
        yield ("spec", "elasticPolicy", "minReplicas"), "minReplicas must not exceed maxReplicas"
    for i, metric in enumerate(ep.metrics or ()):
        yield from _check_metric(("spec", "elasticPolicy", "metrics", i), metric)


def _check_metric(loc: tuple, metric) -> Iterator[tuple]:
    """One HPA metric as the API server validates it (pkg/apis/autoscaling/validation
    validateMetricSpec) and as the HPA controller reads its target."""
    from compiler.quantity import parse_quantity

    wanted = METRIC_SOURCES[metric.type]
    for source in METRIC_SOURCES.values():
        if source != wanted and getattr(metric, source) is not None:
            yield (*loc, source), f"a {metric.type} metric sets {wanted} only; remove {source}"
    src = getattr(metric, wanted)
    if src is None:
        yield (*loc, "type"), f"a {metric.type} metric needs {wanted}"
        return
    identifier = getattr(src, "metric", None)
    if identifier is not None:
        if identifier.name in (".", ".."):
            yield (*loc, wanted, "metric", "name"), f"a metric name may not be {identifier.name!r}"
        for j, req in enumerate((identifier.selector.matchExpressions or ()) if identifier.selector else ()):
            where = (*loc, wanted, "metric", "selector", "matchExpressions", j)
            if req.operator in ("In", "NotIn") and not req.values:
                yield (*where, "operator"), f"operator {req.operator} needs values"
            elif req.operator in ("Exists", "DoesNotExist") and req.values:
                yield (*where, "values"), f"operator {req.operator} takes no values"
    target, tloc = src.target, (*loc, wanted, "target")
    allowed = METRIC_TARGETS[wanted]
    if target.type not in allowed:
        yield (*tloc, "type"), f"a {metric.type} metric's target type is {' or '.join(allowed)}, not {target.type}"
        return
    field = TARGET_FIELDS[target.type]
    if getattr(target, field) is None:
        yield tloc, f"target type {target.type} needs {field}"
    for other in TARGET_FIELDS.values():
        if other != field and getattr(target, other) is not None:
            yield (*tloc, other), f"target type {target.type} sets {field} only; remove {other}"
    for q in ("value", "averageValue"):
        value = getattr(target, q)
        if value is not None and parse_quantity(quantity(value)) <= 0:
            yield (*tloc, q), f"{q} must be positive"


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """The PyTorchJob object of a pytorch spec."""
    extra: dict = {}
    ep = job.spec.elasticPolicy
    if ep is not None:
        extra["elasticPolicy"] = _elastic_policy(ep)
    if job.spec.nprocPerNode is not None:
        extra["nprocPerNode"] = str(job.spec.nprocPerNode)
    return v1.build(job, names, source, KIND, extra, run_policy_last=True)


def _elastic_policy(ep) -> dict:
    """spec.elasticPolicy, its metric targets' quantities written as strings."""
    out = ep.model_dump(exclude_none=True)
    for metric in out.get("metrics", ()):
        for source in METRIC_SOURCES.values():
            target = (metric.get(source) or {}).get("target") or {}
            for field in ("value", "averageValue"):
                if field in target:
                    target[field] = quantity(target[field])
    return out


def read_replicas(spec: dict) -> dict[str, tuple[int, str, dict]]:
    """{type: (replicas, restartPolicy, pod template)} of a rendered PyTorchJob's spec; ValueError
    for an elastic one without Workers."""
    found = v1.read_replicas(spec, REPLICA_SPECS_KEY, REPLICA_TYPES, DEFAULT_RESTART_POLICY)
    if spec.get("elasticPolicy") is not None and "Worker" not in found:
        raise ValueError("elasticPolicy without Worker replicas (the operator's webhook refuses it)")
    return found


def cluster_only(spec: dict) -> str | None:
    """An elastic job whose rendezvous lives in the cluster: an etcd backend, or a rdzvHost. The
    c10d backend runs here: its store is hosted by one of the replicas (torchrun lets several
    agents of one rendezvous share a machine)."""
    ep = spec.get("elasticPolicy")
    if ep is None:
        return None
    backend = ep.get("rdzvBackend") or "c10d"
    if backend != "c10d":
        return f"uses rendezvous backend {backend}, which needs an etcd server"
    if ep.get("rdzvHost"):
        return f"meets at elasticPolicy.rdzvHost {ep['rdzvHost']}, a host of the cluster"
    return None


def local_warnings(spec: dict) -> tuple[str, ...]:
    """No HorizontalPodAutoscaler scales the workers here."""
    ep = spec.get("elasticPolicy") or {}
    if not ep.get("metrics"):
        return ()
    workers = read_replicas(spec).get("Worker", (1,))[0]
    return (f"elasticPolicy.metrics: no HorizontalPodAutoscaler scales the workers here; they stay at {workers}",)


def replica_env(spec: dict, rtype: str, index: int, container: str,
                addresses: Mapping[str, Sequence[tuple[str, int]]], *, job: str) -> dict[str, str]:
    """What the operator adds to every container's env (envvar.go setPodEnv): PYTHONUNBUFFERED;
    with a Master its address and port, WORLD_SIZE (replicas x nprocPerNode, 1 when not a
    number), RANK (master 0, worker i i+1) and PET_NODE_RANK; PET_NPROC_PER_NODE; PET_NNODES
    (replicas), or with elasticPolicy torchrun's rendezvous (elastic.go): PET_RDZV_ENDPOINT
    (rdzvHost or worker 0, rdzvPort or worker 0's port), PET_RDZV_BACKEND (c10d by default),
    PET_NNODES (`min:max`, or the workers without either), and PET_MAX_RESTARTS, PET_RDZV_ID,
    PET_RDZV_CONF (`k=v,...`) and PET_STANDALONE (empty) where set. `addresses` lists (host, port)
    of every replica by type."""
    total = sum(len(a) for a in addresses.values())
    nproc = str(spec.get("nprocPerNode") or "auto")
    env = {"PYTHONUNBUFFERED": "1"}
    if addresses.get("Master"):
        host, port = addresses["Master"][0]
        rank = str(index + 1 if rtype == "Worker" else index)
        world = total * (int(nproc) if nproc.isdigit() else 1)
        env.update({"MASTER_PORT": str(port), "PET_MASTER_PORT": str(port), "MASTER_ADDR": host,
                    "PET_MASTER_ADDR": host, "WORLD_SIZE": str(world), "RANK": rank, "PET_NODE_RANK": rank})
    env["PET_NPROC_PER_NODE"] = nproc
    ep = spec.get("elasticPolicy")
    if ep is None:
        env["PET_NNODES"] = str(total)
        return env
    host, port = addresses["Worker"][0]
    env["PET_RDZV_ENDPOINT"] = f"{ep.get('rdzvHost') or host}:{ep.get('rdzvPort') or port}"
    env["PET_RDZV_BACKEND"] = ep.get("rdzvBackend") or "c10d"
    low, high = ep.get("minReplicas"), ep.get("maxReplicas")
    env["PET_NNODES"] = str(len(addresses["Worker"])) if low is None and high is None else f"{low or high}:{high or low}"
    if ep.get("maxRestarts") is not None:
        env["PET_MAX_RESTARTS"] = str(ep["maxRestarts"])
    if ep.get("rdzvId") is not None:
        env["PET_RDZV_ID"] = ep["rdzvId"]
    if ep.get("rdzvConf"):
        env["PET_RDZV_CONF"] = ",".join(f"{c.get('key')}={c.get('value')}" for c in ep["rdzvConf"])
    if ep.get("standalone"):
        env["PET_STANDALONE"] = ""
    return env


def job_conditions(types: Collection[str]) -> dict[str, tuple[str, str, str]]:
    """The conditions a job of these replica types writes: the wording differs without a Master."""
    return CONDITIONS if "Master" in types else WORKER_CONDITIONS


def succeeded(spec: dict, states: Mapping[str, Sequence[str]]) -> bool:
    """The job succeeds with its Master; without one, when every worker has, or under
    elasticPolicy when any worker has."""
    if "Master" in states:
        return all(s == SUCCEEDED for s in states["Master"])
    workers = states.get("Worker") or []
    done = [s == SUCCEEDED for s in workers]
    return bool(workers) and (all(done) or (spec.get("elasticPolicy") is not None and any(done)))


def failed(spec: dict, states: Mapping[str, Sequence[str]]) -> tuple[int, str] | None:
    """(count, type) of the failed replicas that fail the job: any."""
    return v1.first_failed(STATUS_ORDER, states)
