"""What every training-operator v1 kind (kubeflow.org/v1) shares: replica specs, runPolicy, the
pod-name budget, the Argo CD health check of its status, and the operator's rules for a running
job (read back from the rendered object by the local runner).

The operator (kubeflow/trainer v1.9, release-1.9) names pods and headless Services
`<job>-<lower-case replica type>-<index>` and reports status as `conditions` (Created, Running,
Restarting, Succeeded, Suspended, Failed; superseded ones set to "False") plus
`replicaStatuses.<type>.{active, succeeded, failed}`.
"""

from __future__ import annotations

from compiler.kinds.pod import END, FAILED, RECREATE, RESTART, pod_name_budget, pod_template, replicas, workload_object
from compiler.naming import HASH_SUFFIX_LEN
from runtime.errors import FIRST_RETRYABLE

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Mapping, Sequence

    from compiler.naming import Names
    from compiler.spec import TrainingJob

API_VERSION = "kubeflow.org/v1"
GROUP = "kubeflow.org"
#: Fields the v1 CRDs refuse to change (CEL `self == oldSelf`).
IMMUTABLE_FIELDS = ("spec.runPolicy.schedulingPolicy.queue",)
#: The operator's job conditions, in the order it appends them.
CONDITIONS = ("Created", "Running", "Restarting", "Succeeded", "Suspended", "Failed")


def replica_counts(job: TrainingJob, default: dict[str, int]) -> dict[str, int]:
    """Replica type -> count as the spec gives them (any type name), or `default`."""
    given = job.spec.replicas
    if not given:
        return dict(default)
    return {t: (r if isinstance(r, int) else r.count) for t, r in given.items()}


def name_budget(job: TrainingJob, default: dict[str, int]) -> int:
    """The longest metadata.name whose pod names (and the hash suffix) fit 63 characters."""
    suffix = HASH_SUFFIX_LEN if job.spec.naming == "hashed" else 0
    return pod_name_budget(job, replica_counts(job, default), suffix=suffix)


def replica_specs(job: TrainingJob, names: Names, *, types: tuple[str, ...], default: dict[str, int],
                  policy: str, container: str, port: tuple[str, int]) -> dict:
    """tfReplicaSpecs / pytorchReplicaSpecs: count, restartPolicy (`policy` by default) and template."""
    return {
        rtype: {
            "replicas": rep.count,
            "restartPolicy": rep.restartPolicy or policy,
            "template": pod_template(job, names, rep, container_name=container, port=port),
        }
        for rtype, rep in replicas(job, types, default).items()
    }


def build(job: TrainingJob, names: Names, source: str | None, kind: str, extra: dict | None = None, *,
          run_policy_last: bool = False) -> dict:
    """The object of a training-operator v1 kind: runPolicy, the kind's `extra` fields and its
    replica specs. The order of the fields is each kind's as it has always rendered them
    (the name hash covers it), hence `run_policy_last`."""
    from compiler.kinds import by_kind

    mod = by_kind(kind)
    spec: dict = {}
    rp = run_policy(job)
    if rp and not run_policy_last:
        spec["runPolicy"] = rp
    spec.update(extra or {})
    spec[mod.REPLICA_SPECS_KEY] = replica_specs(job, names, types=mod.REPLICA_TYPES, default=mod.DEFAULT_REPLICAS,
                                                policy=mod.DEFAULT_RESTART_POLICY, container=mod.CONTAINER, port=mod.PORT)
    if rp and run_policy_last:
        spec["runPolicy"] = rp
    return workload_object(job, names, source, API_VERSION, kind, spec)


def run_policy(job: TrainingJob) -> dict:
    """spec.runPolicy; `suspend` is left to Kueue when a queue is set."""
    rp = job.spec.runPolicy
    out: dict = {}
    for field in ("cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit"):
        value = getattr(rp, field)
        if value is not None:
            out[field] = value
    if rp.schedulingPolicy is not None:
        sp = rp.schedulingPolicy.model_dump(exclude_none=True)
        if "minResources" in sp:
            sp["minResources"] = dict(sorted(sp["minResources"].items()))
        out["schedulingPolicy"] = sp
    if rp.suspend is not None and job.spec.scheduling.queue is None:
        out["suspend"] = rp.suspend
    return out


# ---------------------------------------------------------------- the operator's rules

#: Events the operator records for a replica's pod: what -> (type, reason, message template).
EVENTS = {
    "created": ("Normal", "SuccessfulCreatePod", "Created pod: {pod}"),
    "exited": ("Normal", "ExitedWithCode", "Pod: {namespace}.{pod} exited with code {code}"),
}
#: Condition type of each outcome that is not a condition type itself.
_CONDITION_TYPES = {"ReplicaFailed": "Failed", "BackoffLimitExceeded": "Failed", "DeadlineExceeded": "Failed"}


def conditions(kind: str, messages: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    """The conditions a v1 kind writes: what happened -> (type, reason `<Kind><Type>`, message
    template), from the kind's own messages plus the job-level limits common/job.go words alike."""
    messages = {
        **messages,
        "BackoffLimitExceeded": "Job {name} has failed because it has reached the specified backoff limit",
        "DeadlineExceeded": "Job {name} has failed because it was active longer than specified deadline",
    }
    out = {}
    for what, text in messages.items():
        ctype = _CONDITION_TYPES.get(what, what)
        out[what] = (ctype, f"{kind}{ctype}", text)
    return out


def pod_name(job: str, rtype: str, index: int) -> str:
    """The pod (and headless Service) of one replica."""
    return f"{job}-{rtype.lower()}-{index}"


def read_replicas(spec: dict, key: str, types: tuple[str, ...], policy: str) -> dict[str, tuple[int, str, dict]]:
    """{type: (replicas, restartPolicy, pod template)} of a rendered object's `spec.<key>`, types in
    canonical case (the webhook lets `worker` through) and order, `policy` where none is given.
    ValueError when there are no replica specs or a type is unknown."""
    raw = spec.get(key) or {}
    if not raw:
        raise ValueError(f"no spec.{key}")
    canonical = {t.lower(): t for t in types}
    found = {}
    for name, rspec in raw.items():
        rtype = canonical.get(str(name).lower())
        if rtype is None:
            raise ValueError(f"unknown replica type {name}")
        rspec = rspec or {}
        count = rspec.get("replicas")
        found[rtype] = (1 if count is None else int(count), rspec.get("restartPolicy") or policy, rspec.get("template") or {})
    return {t: found[t] for t in types if t in found}


def limits(spec: dict) -> tuple[int | None, float | None]:
    """(runPolicy.backoffLimit, runPolicy.activeDeadlineSeconds); None where unset (no limit)."""
    rp = spec.get("runPolicy") or {}
    backoff, deadline = rp.get("backoffLimit"), rp.get("activeDeadlineSeconds")
    return (None if backoff is None else int(backoff)), (None if deadline is None else float(deadline))


def local_warnings(spec: dict) -> tuple[str, ...]:
    """Nothing the local run leaves out of this kind's behaviour."""
    return ()


def exit_action(policy: str, code: int) -> str:
    """What the replica's restartPolicy does when its container exits with `code`: ExitCode
    recreates the pod on a retryable code and ends the replica on 1..127; OnFailure restarts in
    place on any failure; Always restarts in place even after success; Never ends it."""
    if policy == "ExitCode":
        return RECREATE if code >= FIRST_RETRYABLE else END
    if policy == "OnFailure":
        return RESTART if code != 0 else END
    if policy == "Always":
        return RESTART
    return END


def fail_job_rule(spec: dict, container: str, code: int) -> int | None:
    """v1 kinds have no podFailurePolicy: no exit fails the job by a rule of its own."""
    return None


def first_failed(order: tuple[str, ...], states: Mapping[str, Sequence[str]],
                 exempt: tuple[str, ...] = ()) -> tuple[int, str] | None:
    """(count, type) of the first replica type in `order` with failed replicas: they fail the job."""
    for rtype in order:
        count = sum(1 for s in states.get(rtype, ()) if s == FAILED)
        if count and rtype not in exempt:
            return count, rtype
    return None


def status(conditions: list[dict], counts: Mapping[str, Mapping[str, int]]) -> dict:
    """The object's status as the operator writes it: conditions and replicaStatuses (zero counts
    left out)."""
    replica_statuses = {t: {k: v for k, v in c.items() if v} for t, c in counts.items()}
    return {"conditions": conditions, "replicaStatuses": replica_statuses}


# Argo CD's health check (gopher-lua, Lua 5.1) for the v1 status: the LAST condition with status
# "True" decides: Succeeded -> Healthy, Failed -> Degraded, Suspended -> Suspended, anything else
# (no status yet, Created, Running, Restarting) -> Progressing. The message is that condition's
# message plus a replica summary.
HEALTH_LUA = """\
-- specc: health of a Kubeflow training-operator v1 job (TFJob, PyTorchJob, XGBoostJob, JAXJob, PaddleJob).
-- Last condition with status "True" wins: Succeeded -> Healthy, Failed -> Degraded,
-- Suspended -> Suspended; no status yet, Created, Running, Restarting -> Progressing.
local hs = {}
hs.status = "Progressing"
hs.message = "Waiting for the training operator to report status"
if obj.status == nil then
  return hs
end
local last = nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.status == "True" then
      last = c
    end
  end
end
local replicas = ""
if obj.status.replicaStatuses ~= nil then
  local names = {}
  for name, _ in pairs(obj.status.replicaStatuses) do
    table.insert(names, name)
  end
  table.sort(names)
  local parts = {}
  for _, name in ipairs(names) do
    local rs = obj.status.replicaStatuses[name]
    local counts = {}
    for _, field in ipairs({"active", "succeeded", "failed"}) do
      if rs[field] ~= nil and rs[field] ~= 0 then
        table.insert(counts, field .. " " .. tostring(rs[field]))
      end
    end
    if #counts > 0 then
      table.insert(parts, name .. ": " .. table.concat(counts, ", "))
    end
  end
  if #parts > 0 then
    replicas = " (" .. table.concat(parts, "; ") .. ")"
  end
end
if last == nil then
  hs.message = "Waiting for the training operator to report status" .. replicas
  return hs
end
if last.type == "Succeeded" then
  hs.status = "Healthy"
elseif last.type == "Failed" then
  hs.status = "Degraded"
elseif last.type == "Suspended" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
local msg = last.message
if msg == nil or msg == "" then
  msg = last.reason
end
if msg == nil or msg == "" then
  msg = last.type
end
hs.message = msg .. replicas
return hs
"""
