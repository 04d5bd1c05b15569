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
