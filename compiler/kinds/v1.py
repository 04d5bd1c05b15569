"""What every training-operator v1 kind (kubeflow.org/v1) shares: replica specs, runPolicy, the
pod-name budget and the Argo CD health check of its status.

The operator (kubeflow/trainer v1.9, release-1.9) names pods and headless Services
`<job>-<lower-case replica type>-<index>` and reports status as `conditions` (Created, Running,
Restarting, Succeeded, Suspended, Failed; superseded ones set to "False") plus
`replicaStatuses.<type>.{active, succeeded, failed}`.
"""

from __future__ import annotations

from compiler.kinds.pod import pod_name_budget, pod_template, replicas
from compiler.naming import HASH_SUFFIX_LEN

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
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


# Argo CD's health check (gopher-lua, Lua 5.1) for the v1 status: the LAST condition with status
# "True" decides: Succeeded -> Healthy, Failed -> Degraded, Suspended -> Suspended, anything else
# (no status yet, Created, Running, Restarting) -> Progressing. The message is that condition's
# message plus a replica summary.
HEALTH_LUA = """\
-- specc: health of a Kubeflow training job (TFJob / PyTorchJob).
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
