-- Argo CD health of hangar's UserApps and UserMachines (fly.hangar.dev/v1alpha1), one script for
-- both kinds (config/argocd/kustomization.yaml sets it under each kind's key). It reads the kstatus
-- conditions the manager writes: Ready, Reconciling and Stalled, trusted only for
-- status.observedGeneration.
-- Argo CD runs this with the object in the global obj and without Lua's string library.
--
-- A machine whose spec.powerState is Stopped or Suspended and that is Ready reports Healthy, not
-- Argo CD's Suspended: the manager holds it in exactly the state the spec asks for (and a request
-- still wakes it when its services autostart), so nothing is paused or waiting. Suspended would
-- also hold back what waits for Healthy: `argocd app wait --health`, the next sync wave, and the
-- Application's own health, which takes the worst of its resources. The message says it is stopped.

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

-- Conditions describe the spec of status.observedGeneration only; a newer spec (or a deletion, which
-- also bumps metadata.generation) has not been looked at yet.
local current = obj.status ~= nil and obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration >= obj.metadata.generation
local ready = condition("Ready")
local reconciling = condition("Reconciling")
local stalled = condition("Stalled")

local hs = {}
if obj.metadata.deletionTimestamp ~= nil then
  -- The finalizer holds the object until the manager has deleted (or orphaned) the Fly app or machine.
  hs.status = "Progressing"
  hs.message = "Deleting"
  if current and isTrue(reconciling) and reconciling.reason == "Deleting" then
    hs.message = messageOf(reconciling, hs.message) -- the manager's own words on what it waits for
  elseif current and isTrue(stalled) then
    hs.message = "Deleting: " .. messageOf(stalled, "stalled")
  elseif current and isTrue(reconciling) then
    hs.message = "Deleting: " .. messageOf(reconciling, "in progress")
  end
  return hs
end
if not current then
  hs.status = "Progressing"
  hs.message = "Waiting for the manager to act on generation " .. obj.metadata.generation .. " of the spec"
  return hs
end
-- Paused on purpose (the fly.hangar.dev/paused annotation): Argo CD's Suspended is made for this.
if isTrue(stalled) and stalled.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = messageOf(stalled, "Paused")
  return hs
end
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = messageOf(stalled, messageOf(ready, "Stalled until someone changes the spec or the cluster"))
  return hs
end
if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Ready")
  return hs
end
hs.status = "Progressing"
hs.message = messageOf(reconciling, messageOf(ready, "Waiting for the manager"))
return hs
