"""Argo CD health checks for Kubeflow TFJob / PyTorchJob (Argo CD ships none).

`HEALTH_LUA` runs in Argo CD's gopher-lua (Lua 5.1 semantics) with the live object as global
`obj`. It takes the LAST condition with status "True" in `status.conditions` (the operator
appends Created, Running, Restarting, Succeeded, Failed, Suspended in order and sets the
superseded ones to "False") and maps it: Succeeded -> Healthy, Failed -> Degraded,
Suspended -> Suspended, anything else (no status yet, Created, Running, Restarting) ->
Progressing. The message is that condition's message plus a replica summary.
"""

from __future__ import annotations

#: Workload kinds that get a health check: `resource.customizations.health.<group>_<kind>`.
KINDS = ("TFJob", "PyTorchJob")
GROUP = "kubeflow.org"

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


def config_key(kind: str) -> str:
    """The argocd-cm data key that holds the health check of a kubeflow.org kind."""
    return f"resource.customizations.health.{GROUP}_{kind}"


def argocd_cm_patch(namespace: str = "argocd") -> dict:
    """An `argocd-cm` ConfigMap carrying only the health checks (merge it into the live one)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-cm",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
        },
        "data": {config_key(kind): HEALTH_LUA for kind in KINDS},
    }
