--- Bucket IAM for import and export: the Cloud Healthcare Service Agent
-- (`service-PROJECT_NUMBER@gcp-sa-healthcare.iam.gserviceaccount.com`) reads the source bucket of
-- an import (needs `roles/storage.objectViewer`) and writes the destination of an export (needs
-- `roles/storage.objectAdmin`). These functions read the bucket's policy and the project number
-- and its project's policy (Resource Manager) to check that before the operation starts (a
-- warning, never a refusal: grants above the project cannot be seen), and grant the role on request.
-- They are mixed into dicomgcs.Storage.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.gcs.iam
-- @local
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"
local json = require "dicomgcs.json"
local names = require "dicomgcs.names"

local iam = {}

--- The role each purpose needs (the one Google's documentation names).
iam.needed = { import = "roles/storage.objectViewer", export = "roles/storage.objectAdmin" }

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

-- A policy as JSON to send: bindings and members always arrays, even when empty.
local function policy_body(policy)
  local body = { bindings = json.array{}, etag = policy.etag, version = policy.version }
  for _, b in ipairs(policy.bindings or {}) do
    local members = json.array{}
    for _, m in ipairs(b.members or {}) do members[#members + 1] = m end
    body.bindings[#body.bindings + 1] = { role = b.role, members = members, condition = b.condition }
  end
  return body
end

--- Replace the bucket's IAM policy. Send the `etag` you read: a concurrent change makes this fail
-- with HTTP 412 instead of losing it. Returns the new policy or nil, Error.
function iam.set_iam_policy(self, bucket, policy)
  return self.transport:json("PUT", self:bucket_url(bucket) .. "/iam", policy_body(policy), "set the IAM policy of gs://" .. bucket)
end

-- Resource Manager's URL of a project (default: the handle's). Returns url, project id or nil, Error.
local function project_url(self, project)
  local p, err = names.project(project or self.project)
  if not p then return nil, err end
  if not self.resourcemanager then
    return nil, errors.input("no Resource Manager endpoint is configured for this storage handle")
  end
  return self.resourcemanager .. "/projects/" .. http.escape(p), p
end

--- The project number (a string of digits) of a project id, through Resource Manager; cached.
function iam.project_number(self, project)
  local p, err = names.project(project or self.project)
  if not p then return nil, err end
  self._project_numbers = self._project_numbers or {}
  if self._project_numbers[p] then return self._project_numbers[p] end
  local url; url, err = project_url(self, p)
  if not url then return nil, err end
  local doc; doc, err = self.transport:json("GET", url, nil, "get the project number of " .. p)
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

-- What an import reads and an export writes, as permissions, and the permissions of the roles
-- that can carry them (https://cloud.google.com/storage/docs/access-control/iam-roles). A grant
-- counts when the member holds them on the bucket or on its project (the union: IAM policies
-- are inherited down the resource hierarchy). Which exact permissions Google tests is not
-- published: import = get + list, export = create + delete (an export overwrites) [guess].
iam.permissions_needed = {
  import = { "storage.objects.get", "storage.objects.list" },
  export = { "storage.objects.create", "storage.objects.delete" },
}
local ALL_OBJECTS = { "storage.objects.create", "storage.objects.delete", "storage.objects.get",
                      "storage.objects.list", "storage.objects.update" }
iam.role_permissions = {
  ["roles/storage.objectViewer"] = { "storage.objects.get", "storage.objects.list" },
  ["roles/storage.objectCreator"] = { "storage.objects.create" },
  ["roles/storage.objectUser"] = ALL_OBJECTS,
  ["roles/storage.objectAdmin"] = ALL_OBJECTS,
  ["roles/storage.admin"] = ALL_OBJECTS,
  ["roles/storage.legacyBucketReader"] = { "storage.objects.list" },
  ["roles/storage.legacyBucketWriter"] = { "storage.objects.create", "storage.objects.delete", "storage.objects.list" },
  ["roles/storage.legacyBucketOwner"] = { "storage.objects.create", "storage.objects.delete", "storage.objects.list" },
  ["roles/storage.legacyObjectReader"] = { "storage.objects.get" },
  ["roles/storage.legacyObjectOwner"] = { "storage.objects.get", "storage.objects.update" },
  ["roles/editor"] = ALL_OBJECTS,
  ["roles/owner"] = ALL_OBJECTS,
}

-- The storage permissions `member` holds through a bucket policy and its project's policy
-- (either may be nil). The bucket's projectViewer:/projectEditor:/projectOwner:P members stand
-- for holders of roles/viewer, roles/editor, roles/owner on P.
-- The bindings of a policy as the server sent it, keeping only well-formed ones (a policy is
-- server input: a binding without a string role or a list of string members is ignored).
local function bindings_of(policy)
  local out = {}
  if type(policy) ~= "table" or type(policy.bindings) ~= "table" then return out end
  for _, b in ipairs(policy.bindings) do
    if type(b) == "table" and type(b.role) == "string" and type(b.members) == "table" then
      local members = {}
      for _, m in ipairs(b.members) do if type(m) == "string" then members[#members + 1] = m end end
      out[#out + 1] = { role = b.role, members = members, condition = b.condition }
    end
  end
  return out
end

local function permissions_of(member, bucket_policy, project_policy, project)
  local perms, basic = {}, {}
  local function add(role) for _, p in ipairs(iam.role_permissions[role] or {}) do perms[p] = true end end
  for _, b in ipairs(bindings_of(project_policy)) do
    if not b.condition then
      for _, m in ipairs(b.members) do
        if m == member then add(b.role); basic[b.role] = true end
      end
    end
  end
  local convenience = { projectViewer = "roles/viewer", projectEditor = "roles/editor", projectOwner = "roles/owner" }
  for _, b in ipairs(bindings_of(bucket_policy)) do
    if not b.condition then
      for _, m in ipairs(b.members) do
        local kind, p = m:match("^(project%a+):(.+)$")
        if m == member or m == "allUsers" or m == "allAuthenticatedUsers"
          or (kind and p == project and basic[convenience[kind] or ""]) then
          add(b.role)
        end
      end
    end
  end
  return perms
end

local function covers(perms, purpose)
  for _, p in ipairs(iam.permissions_needed[purpose]) do
    if not perms[p] then return false end
  end
  return true
end

local function grant_command(bucket, purpose, project)
  return ("dicomgcs storage grant-service-agent gs://%s --for=%s --project=%s"):format(bucket, purpose, project)
end

--- The project's IAM policy (Resource Manager v1 `projects.getIamPolicy`): `{bindings=, etag=, version=}`
-- or nil, Error.
function iam.get_project_iam_policy(self, project)
  local url, p = project_url(self, project)
  if not url then return nil, p end
  return self.transport:json("POST", url .. ":getIamPolicy", { options = { requestedPolicyVersion = 3 } },
    "get the IAM policy of project " .. p)
end

--- Replace the project's IAM policy (`projects.setIamPolicy`). Send the `etag` you read: a
-- concurrent change makes this fail with HTTP 409 ABORTED. Returns the new policy or nil, Error.
function iam.set_project_iam_policy(self, project, policy)
  local url, p = project_url(self, project)
  if not url then return nil, p end
  return self.transport:json("POST", url .. ":setIamPolicy", { policy = policy_body(policy) },
    "set the IAM policy of project " .. p)
end

--- What is known of the service agent's access to `bucket` for `purpose`: reads the bucket's
-- policy, then (when it does not grant it) the project's. Returns a table
-- `{ granted = true|false|nil (nil: could not tell), where = "bucket"|"project", member=, role=,
-- bucket=, project=, command=, project_command=, gcloud=, unreadable = {reasons} }` or nil,
-- Error (no project, or a bucket that does not exist). Grants through folders, organizations
-- or custom roles cannot be seen, so `granted = false` is a likelihood, not a certainty.
function iam.service_agent_access(self, bucket, purpose, opts)
  check_purpose(purpose)
  local project, perr = resolve_project(self, opts)
  if not project then return nil, perr end
  local role = iam.needed[purpose]
  local access = { bucket = bucket, project = project, role = role, unreadable = {},
                   command = grant_command(bucket, purpose, project) }
  access.project_command = access.command .. " --project-level"
  local policy, err = iam.get_iam_policy(self, bucket)
  if not policy then
    if err.http_status == 404 then
      err.hint = ("the bucket does not exist; create it first: c.storage:create_bucket(%q)"):format(bucket)
      err.hint_cli = "the bucket does not exist; create it first: dicomgcs storage buckets create gs://" .. bucket
      return nil, err
    end
    access.unreadable[#access.unreadable + 1] = ("the IAM policy of gs://%s (%s)"):format(bucket, err.message)
  end
  local agent; agent, err = iam.service_agent(self, project)
  if not agent then
    access.unreadable[#access.unreadable + 1] = ("the project number of %s (%s)"):format(project, err.message)
    return access
  end
  access.member = "serviceAccount:" .. agent
  access.gcloud = ("gcloud projects add-iam-policy-binding %s --member=%s --role=%s"):format(project, access.member, role)
  if policy and covers(permissions_of(access.member, policy, nil, project), purpose) then
    access.granted, access.where = true, "bucket"
    return access
  end
  local ppolicy; ppolicy, err = iam.get_project_iam_policy(self, project)
  if not ppolicy then
    access.unreadable[#access.unreadable + 1] = ("the IAM policy of project %s (%s)"):format(project, err.message)
  elseif covers(permissions_of(access.member, policy, ppolicy, project), purpose) then
    access.granted, access.where = true, "project"
    return access
  end
  if #access.unreadable == 0 then access.granted = false end
  return access
end

--- The warning text for an access that was not seen (see service_agent_access).
function iam.access_warning(access, purpose)
  local member = access.member or ("the Cloud Healthcare Service Agent of project " .. access.project)
  local head
  if access.granted == false then
    head = ("neither gs://%s nor project %s grants %s a role that includes %s, which an %s needs")
      :format(access.bucket, access.project, member, access.role, purpose)
  else
    head = ("could not check that %s may %s gs://%s: could not read %s")
      :format(member, purpose == "import" and "read" or "write", access.bucket, table.concat(access.unreadable, "; "))
  end
  local fix = ("; going on, as grants on folders, organizations or custom roles cannot be seen. If the %s fails " ..
    "with PERMISSION_DENIED, grant it with: %s   (or: %s)"):format(purpose, access.command,
    access.gcloud or ("gcloud projects add-iam-policy-binding %s --member=serviceAccount:service-PROJECT_NUMBER" ..
      "@gcp-sa-healthcare.iam.gserviceaccount.com --role=%s"):format(access.project, access.role))
  return head .. fix
end

--- Check, before an import (`purpose` "import") or export ("export"), that the project's
-- Healthcare service agent holds the permissions it needs on `bucket`, through the bucket's
-- policy or the project's. Never refuses: returns true, or true, warning, access when the grant
-- was not seen (see service_agent_access), or nil, Error for a bucket that does not exist or a
-- missing project. `opts.project`.
function iam.check_service_agent(self, bucket, purpose, opts)
  local access, err = iam.service_agent_access(self, bucket, purpose, opts)
  if not access then return nil, err end
  if access.granted then return true, nil, access end
  return true, iam.access_warning(access, purpose), access
end

--- Grant the project's Healthcare service agent the role `purpose` needs on `bucket`, or with
-- `opts.project_level` on the whole project (as Google's permissions page does): a
-- read-modify-write of the policy with its etag, done again from the read when someone else
-- changed it meanwhile (412 for a bucket, 409 ABORTED for a project). `opts.project`.
-- Returns the policy (unchanged when the access was already there), member, role or nil, Error.
function iam.grant_service_agent(self, bucket, purpose, opts)
  check_purpose(purpose)
  opts = opts or {}
  local project, perr = resolve_project(self, opts)
  if not project then return nil, perr end
  local agent, err = iam.service_agent(self, project)
  if not agent then return nil, err end
  local member, role = "serviceAccount:" .. agent, iam.needed[purpose]
  local get, set = iam.get_iam_policy, iam.set_iam_policy
  local target = bucket
  if opts.project_level then get, set, target = iam.get_project_iam_policy, iam.set_project_iam_policy, project end
  for _ = 1, 5 do
    local policy; policy, err = get(self, target)
    if not policy then return nil, err end
    local held = opts.project_level and permissions_of(member, nil, policy, project) or permissions_of(member, policy, nil, project)
    if covers(held, purpose) then return policy, member, role end
    local bindings, added = {}, false
    for _, b in ipairs(bindings_of(policy)) do
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
    local out; out, err = set(self, target, policy)
    if out then return out, member, role end
    if err.http_status ~= 412 and err.http_status ~= 409 then return nil, err end
  end
  return nil, err
end

return iam
