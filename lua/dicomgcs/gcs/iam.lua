--- Bucket IAM for import and export: the Cloud Healthcare Service Agent
-- (`service-PROJECT_NUMBER@gcp-sa-healthcare.iam.gserviceaccount.com`) reads the source bucket of
-- an import (needs `roles/storage.objectViewer`) and writes the destination of an export (needs
-- `roles/storage.objectAdmin`). These functions read the bucket's policy and the project number
-- (Resource Manager) to check that before the operation starts, and grant the role on request.
-- They are mixed into dicomgcs.Storage.
-- @module dicomgcs.gcs.iam
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"
local json = require "dicomgcs.json"
local names = require "dicomgcs.names"

local iam = {}

--- The role each purpose needs, and the roles that include its permissions.
iam.needed = { import = "roles/storage.objectViewer", export = "roles/storage.objectAdmin" }
iam.sufficient = {
  import = { ["roles/storage.objectViewer"] = true, ["roles/storage.objectUser"] = true,
             ["roles/storage.objectAdmin"] = true, ["roles/storage.admin"] = true },
  export = { ["roles/storage.objectAdmin"] = true, ["roles/storage.admin"] = true },
}

local function check_purpose(purpose)
  if purpose ~= "import" and purpose ~= "export" then
    error(("purpose must be \"import\" or \"export\", got %s"):format(tostring(purpose)), 3)
  end
end

local function resolve_project(self, opts)
  local p = (opts and opts.project) or self.project
  if not p then return nil, errors.input("the service agent check needs a project", "pass project= or set GOOGLE_CLOUD_PROJECT") end
  return names.project(p)
end

--- The bucket's IAM policy (`{bindings=, etag=, version=}`) or nil, Error.
function iam.get_iam_policy(self, bucket)
  return self.transport:json("GET", self:bucket_url(bucket) .. "/iam", nil, "get the IAM policy of gs://" .. bucket)
end

--- Replace the bucket's IAM policy. Send the `etag` you read: a concurrent change makes this fail
-- with HTTP 412 instead of losing it. Returns the new policy or nil, Error.
function iam.set_iam_policy(self, bucket, policy)
  local body = { bindings = json.array{}, etag = policy.etag, version = policy.version }
  for _, b in ipairs(policy.bindings or {}) do
    local members = json.array{}
    for _, m in ipairs(b.members or {}) do members[#members + 1] = m end
    body.bindings[#body.bindings + 1] = { role = b.role, members = members, condition = b.condition }
  end
  return self.transport:json("PUT", self:bucket_url(bucket) .. "/iam", body, "set the IAM policy of gs://" .. bucket)
end

--- The project number (a string of digits) of a project id, through Resource Manager; cached.
function iam.project_number(self, project)
  local p, err = names.project(project or self.project)
  if not p then return nil, err end
  self._project_numbers = self._project_numbers or {}
  if self._project_numbers[p] then return self._project_numbers[p] end
  if not self.resourcemanager then
    return nil, errors.input("no Resource Manager endpoint is configured for this storage handle")
  end
  local doc; doc, err = self.transport:json("GET", self.resourcemanager .. "/projects/" .. http.escape(p), nil,
    "get the project number of " .. p)
  if not doc then return nil, err end
  local n = doc.projectNumber and tostring(doc.projectNumber)
  if not n or not n:match("^%d+$") then
    return nil, errors.new{ kind = "json", message = "Resource Manager returned no projectNumber for " .. p }
  end
  self._project_numbers[p] = n
  return n
end

--- The Cloud Healthcare Service Agent's e-mail for a project (default: the client's).
function iam.service_agent(self, project)
  local n, err = iam.project_number(self, project)
  if not n then return nil, err end
  return ("service-%s@gcp-sa-healthcare.iam.gserviceaccount.com"):format(n)
end

local function has_role(policy, member, purpose)
  for _, b in ipairs(policy.bindings or {}) do
    if iam.sufficient[purpose][b.role] and not b.condition then
      for _, m in ipairs(b.members or {}) do
        if m == member or m == "allUsers" or m == "allAuthenticatedUsers" then return b.role end
      end
    end
  end
  return nil
end

local function grant_command(bucket, purpose, project)
  return ("dicomgcs storage grant-service-agent gs://%s --for=%s --project=%s"):format(bucket, purpose, project)
end

--- Check, before an import (`purpose` "import") or export ("export"), that the project's
-- Healthcare service agent has a role on `bucket` that covers it. `opts.project`.
-- Returns true, warning? (a warning string when the policy or project number could not be read:
-- the check is skipped, as many users may not read IAM policies) or nil, Error (kind
-- "permission", with `member`, `role`, `bucket` and `command` fields) when the role is missing,
-- or the Error of a bucket that does not exist.
function iam.check_service_agent(self, bucket, purpose, opts)
  check_purpose(purpose)
  local project, perr = resolve_project(self, opts)
  if not project then return nil, perr end
  local policy, err = iam.get_iam_policy(self, bucket)
  if not policy then
    if err.http_status == 404 then
      err.hint = ("the bucket does not exist; create it first: c.storage:create_bucket(%q)"):format(bucket)
      err.hint_cli = "the bucket does not exist; create it first: dicomgcs storage buckets create gs://" .. bucket
      return nil, err
    end
    return true, ("could not read the IAM policy of gs://%s (%s); not checking that the Cloud Healthcare " ..
      "Service Agent may %s it"):format(bucket, err.message, purpose == "import" and "read" or "write")
  end
  local agent; agent, err = iam.service_agent(self, project)
  if not agent then
    return true, ("could not read the project number of %s (%s); not checking the service agent's access to gs://%s")
      :format(project, err.message, bucket)
  end
  local member = "serviceAccount:" .. agent
  if has_role(policy, member, purpose) then return true end
  local role = iam.needed[purpose]
  local cmd = grant_command(bucket, purpose, project)
  return nil, errors.new{
    kind = "permission", status = "PERMISSION_DENIED", bucket = bucket, member = member, role = role, command = cmd,
    message = ("the Cloud Healthcare Service Agent %s has no role on gs://%s that includes %s, which an %s needs")
      :format(member, bucket, role, purpose),
    hint = ("grant it with: c.storage:grant_service_agent(%q, %q)"):format(bucket, purpose),
    hint_cli = ("grant it with: %s   (or: gcloud storage buckets add-iam-policy-binding gs://%s --member=%s --role=%s)")
      :format(cmd, bucket, member, role),
  }
end

--- Grant the project's Healthcare service agent the role `purpose` needs on `bucket`
-- (read-modify-write of the policy with its etag; retried when someone else changed it meanwhile).
-- `opts.project`. Returns the policy (unchanged when the role was already there), member, role or nil, Error.
function iam.grant_service_agent(self, bucket, purpose, opts)
  check_purpose(purpose)
  local project, perr = resolve_project(self, opts)
  if not project then return nil, perr end
  local agent, err = iam.service_agent(self, project)
  if not agent then return nil, err end
  local member, role = "serviceAccount:" .. agent, iam.needed[purpose]
  for _ = 1, 5 do
    local policy; policy, err = iam.get_iam_policy(self, bucket)
    if not policy then return nil, err end
    if has_role(policy, member, purpose) then return policy, member, role end
    local bindings, added = {}, false
    for _, b in ipairs(policy.bindings or {}) do
      if b.role == role and not b.condition and not added then
        local m = {}
        for _, x in ipairs(b.members or {}) do m[#m + 1] = x end
        m[#m + 1] = member
        bindings[#bindings + 1] = { role = b.role, members = m }
        added = true
      else
        bindings[#bindings + 1] = b
      end
    end
    if not added then bindings[#bindings + 1] = { role = role, members = { member } } end
    policy.bindings = bindings
    local out; out, err = iam.set_iam_policy(self, bucket, policy)
    if out then return out, member, role end
    if err.http_status ~= 412 and err.http_status ~= 409 then return nil, err end
  end
  return nil, err
end

return iam
