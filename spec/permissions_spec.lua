-- Permissions before the operation: an import/export checks that the project's Cloud Healthcare
-- Service Agent may read (objectViewer) or write (objectAdmin) the bucket, through the bucket's
-- policy or the project's; when it cannot see such a grant it warns (naming the member, the role
-- and both fixes) and goes on; grant-service-agent grants it on the bucket or the project.
local env = require "spec.support.env"

local function dicomgcs(args)
  return env.run(("DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs %s"):format(env.emulator().host, args), true)
end

describe("the Healthcare service agent's access to buckets", function()
  local c, bucket, agent, number

  setup(function()
    c = env.store_client()
    bucket = env.unique("perm")
    assert(c.storage:create_bucket(bucket))
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 2, nested = false }, "perm")
    number = assert(c.storage:project_number())
    agent = assert(c.storage:service_agent())
  end)
  -- the project policy is shared by every spec on the emulator: take this file's grants back
  after_each(function()
    env.admin("DELETE", "faults")
    local p = assert(c.storage:get_project_iam_policy("spec-project"))
    local keep = {}
    for _, b in ipairs(p.bindings or {}) do
      if b.role == "roles/healthcare.serviceAgent" then keep[#keep + 1] = b
      else
        local m = {}
        for _, x in ipairs(b.members) do if x ~= "serviceAccount:" .. agent then m[#m + 1] = x end end
        if #m > 0 then keep[#keep + 1] = { role = b.role, members = m } end
      end
    end
    p.bindings = keep
    assert(c.storage:set_project_iam_policy("spec-project", p))
  end)

  local function policy_requests()
    local n = 0
    for _, path in ipairs{ "/iam", "IamPolicy" } do
      n = n + #(assert(env.admin("GET", "requests?path=" .. path)).requests or {})
    end
    return n
  end

  it("knows the project number through Resource Manager", function()
    assert.truthy(number:match("^%d+$"))
    assert.are.equal("service-" .. number .. "@gcp-sa-healthcare.iam.gserviceaccount.com", agent)
  end)

  it("warns (not refuses) on a bucket the service agent cannot read, naming member, role and both fixes; " ..
     "the operation's PERMISSION_DENIED repeats the fix", function()
    local warnings, accesses = {}, {}
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm",
      on_warning = function(w, a) warnings[#warnings + 1] = w; accesses[#accesses + 1] = a end })
    assert.are.equal(1, #warnings)
    local a = accesses[1]
    assert.is_false(a.granted)
    assert.are.equal("serviceAccount:" .. agent, a.member)
    assert.are.equal("roles/storage.objectViewer", a.role)
    local cmd = "dicomgcs storage grant-service-agent gs://" .. bucket .. " --for=import --project=spec-project"
    assert.are.equal(cmd, a.command)
    local gcloud = "gcloud projects add-iam-policy-binding spec-project --member=serviceAccount:" .. agent ..
      " --role=roles/storage.objectViewer"
    for _, want in ipairs{ agent, "roles/storage.objectViewer", cmd, gcloud } do
      assert.truthy(warnings[1]:find(want, 1, true), want .. " not in " .. warnings[1])
    end
    local done, err = op:wait{ interval = 0.05 }
    assert.is_nil(done)
    assert.are.equal("PERMISSION_DENIED", err.status)
    assert.truthy(tostring(err):find(cmd, 1, true), tostring(err))
    assert.truthy(tostring(err):find(gcloud, 1, true), tostring(err))
  end)

  it("without the check, the emulator fails the operation with Google's permission error", function()
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm", check_permissions = false })
    local done, err = op:wait{ interval = 0.05 }
    assert.is_nil(done)
    assert.are.equal("PERMISSION_DENIED", err.status)
    assert.truthy(err.message:find(agent, 1, true))
  end)

  it("grants objectViewer for imports (once), then the import runs", function()
    local policy, member, role = assert(c.storage:grant_service_agent(bucket, "import"))
    assert.are.equal("serviceAccount:" .. agent, member)
    assert.are.equal("roles/storage.objectViewer", role)
    local again = assert(c.storage:grant_service_agent(bucket, "import"))
    assert.are.equal(policy.etag, again.etag)
    local n = 0
    for _, b in ipairs(again.bindings) do
      for _, m in ipairs(b.members) do if m == member then n = n + 1 end end
    end
    assert.are.equal(1, n)
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm", wait = true, interval = 0.05 })
    assert.are.equal(2, op.counter.success)
  end)

  it("needs objectAdmin to export, and objectViewer is not enough", function()
    local warned
    local op = assert(c:export{ uri_prefix = "gs://" .. bucket .. "/out/", on_warning = function(_, a) warned = a end })
    assert.are.equal("roles/storage.objectAdmin", warned.role)
    assert.truthy(warned.command:find("--for=export", 1, true))
    assert.are.equal("PERMISSION_DENIED", select(2, op:wait{ interval = 0.05 }).status)
    assert(c.storage:grant_service_agent(bucket, "export"))
    warned = nil
    assert(c:export{ uri_prefix = "gs://" .. bucket .. "/out/", wait = true, interval = 0.05,
      on_warning = function(_, a) warned = a end })
    assert.is_nil(warned)
    assert.are.equal(2, #assert(c.storage:match("gs://" .. bucket .. "/out/**.dcm")))
  end)

  it("sees a grant on the project (as Google's permissions page makes it): no warning, the import runs", function()
    local b3 = env.unique("perm-proj")
    assert(c.storage:create_bucket(b3))
    env.upload_testdata(c, "gs://" .. b3 .. "/in/", { studies = 1, series = 1, instances = 1, nested = false }, "permp")
    local before = assert(c.storage:service_agent_access(b3, "import"))
    assert.is_false(before.granted)
    local policy, member, role = assert(c.storage:grant_service_agent(b3, "import", { project_level = true }))
    assert.are.equal("roles/storage.objectViewer", role)
    local found = false
    for _, b in ipairs(policy.bindings) do
      if b.role == role then for _, m in ipairs(b.members) do found = found or m == member end end
    end
    assert.is_true(found)
    local bucket_policy = assert(c.storage:get_iam_policy(b3))
    assert.falsy(require("dicomgcs.json").encode(bucket_policy):find(agent, 1, true))
    local after = assert(c.storage:service_agent_access(b3, "import"))
    assert.is_true(after.granted)
    assert.are.equal("project", after.where)
    local warned
    local op = assert(c:import{ uri = "gs://" .. b3 .. "/in/*.dcm", wait = true, interval = 0.05,
      on_warning = function(w) warned = w end })
    assert.is_nil(warned)
    assert.are.equal(1, op.counter.success)
    -- granting again changes nothing
    local again = assert(c.storage:grant_service_agent(b3, "import", { project_level = true }))
    assert.are.equal(policy.etag, again.etag)
  end)

  it("project-level grant: a concurrent change (409 ABORTED) is met by reading again", function()
    assert(env.admin("POST", "faults", { path = ":setIamPolicy$", method = "POST", status = 409, count = 2 }))
    local _, _, role = assert(c.storage:grant_service_agent(bucket, "export", { project_level = true }))
    assert.are.equal("roles/storage.objectAdmin", role)
    local seen = 0
    for _, r in ipairs(env.admin("GET", "requests?path=:setIamPolicy").requests or {}) do
      if r.status == 409 then seen = seen + 1 end
    end
    assert.are.equal(2, seen)
  end)

  it("--skip-permission-check / check_permissions=false: no policy is read", function()
    local b5 = env.unique("perm-skip") -- the suite's bucket has its grant by now
    assert(c.storage:create_bucket(b5))
    env.upload_testdata(c, "gs://" .. b5 .. "/in/", { studies = 1, series = 1, instances = 1, nested = false }, "perms")
    env.admin("DELETE", "requests")
    local warned
    local op = assert(c:import{ uri = "gs://" .. b5 .. "/in/*.dcm", check_permissions = false,
      on_warning = function(w) warned = w end })
    op:wait{ interval = 0.05 }
    assert.is_nil(warned)
    assert.are.equal(0, policy_requests())
    local args = "dicom-stores import gcs " .. c.dicom_store .. " --gcs-uri='gs://" .. b5 ..
      "/in/*.dcm' --project=spec-project --location=" .. c.location .. " --dataset=" .. c.dataset
    local out = dicomgcs(args .. " --skip-permission-check")
    assert.falsy(out:find("WARNING", 1, true), out)
    assert.truthy(out:find("PERMISSION_DENIED", 1, true), out)
    assert.are.equal(0, policy_requests(), out)
    out = dicomgcs(args)
    assert.truthy(out:find("WARNING: neither gs://" .. b5, 1, true), out)
    assert.truthy(policy_requests() > 0)
  end)

  it("warns and goes on when the caller may not read the bucket's policy nor the project's", function()
    assert(env.admin("POST", "faults", { path = "/b/" .. bucket .. "/iam$", method = "GET", status = 403 }))
    assert(env.admin("POST", "faults", { path = ":getIamPolicy$", method = "POST", status = 403 }))
    local warnings = {}
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm",
      on_warning = function(w) warnings[#warnings + 1] = w end })
    op:wait{ interval = 0.05 }
    assert.are.equal(1, #warnings)
    assert.truthy(warnings[1]:find("could not read the IAM policy of gs://" .. bucket, 1, true), warnings[1])
    assert.truthy(warnings[1]:find("the IAM policy of project spec-project", 1, true), warnings[1])
    assert.truthy(warnings[1]:find("gcloud projects add-iam-policy-binding", 1, true), warnings[1])
  end)

  it("names a bucket that does not exist before starting", function()
    local op, err = c:import{ uri = "gs://no-such-bucket-perm/in/*.dcm" }
    assert.is_nil(op)
    assert.are.equal(404, err.http_status)
    assert.truthy(err.hint:find('c.storage:create_bucket("no-such-bucket-perm")', 1, true), err.hint)
    assert.truthy(err.hint_cli:find("dicomgcs storage buckets create gs://no-such-bucket-perm", 1, true))
  end)

  it("grant-service-agent on the command line: --dry-run checks, then it grants", function()
    local b2 = env.unique("perm-cli")
    assert(c.storage:create_bucket(b2))
    local loc = " --project=spec-project"
    local out, code = dicomgcs("storage grant-service-agent gs://" .. b2 .. " --for=export --dry-run" .. loc)
    assert.are.equal(1, code)
    assert.truthy(out:find("would run: dicomgcs storage grant-service-agent gs://" .. b2 .. " --for=export", 1, true), out)
    out, code = dicomgcs("storage grant-service-agent gs://" .. b2 .. " --for=export" .. loc)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("serviceAccount:" .. agent .. " has roles/storage.objectAdmin", 1, true), out)
    out, code = dicomgcs("storage grant-service-agent gs://" .. b2 .. " --for=import --dry-run" .. loc)
    assert.are.equal(0, code, out)
    local b4 = env.unique("perm-cli2")
    assert(c.storage:create_bucket(b4))
    out, code = dicomgcs("storage grant-service-agent gs://" .. b4 .. " --for=import --dry-run --project-level" .. loc)
    assert.are.equal(1, code, out)
    assert.truthy(out:find("would run: dicomgcs storage grant-service-agent gs://" .. b4 .. " --for=import " ..
      "--project=spec-project --project-level", 1, true), out)
    assert.truthy(out:find("gcloud projects add-iam-policy-binding spec-project", 1, true), out)
    out, code = dicomgcs("storage grant-service-agent gs://" .. b4 .. " --for=import --project-level" .. loc)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("on project spec-project", 1, true), out)
    local _, bad = dicomgcs("storage grant-service-agent gs://" .. b2 .. " --for=both" .. loc)
    assert.are_not.equal(0, bad)
  end)
end)

describe("hostile IAM policies from the server", function()
  it("ignores malformed bindings and never raises: the check warns", function()
    local iam = require "dicomgcs.gcs.iam"
    local json = require "dicomgcs.json"
    local answers = {
      ["/iam$"] = { bindings = { "roles/storage.objectViewer", { role = 7, members = { "x" } },
                                 { role = "roles/storage.objectViewer", members = "serviceAccount:x" },
                                 { role = "roles/storage.objectViewer", members = { 42, {}, json.null } } } },
      [":getIamPolicy$"] = { bindings = "everyone" },
      ["/projects/[^/:]+$"] = { projectNumber = "123456789012" },
    }
    local fake = { resourcemanager = "https://rm.example/v1", project = "hostile-project",
      bucket_url = function(_, b) return "https://gcs.example/storage/v1/b/" .. b end,
      transport = { json = function(_, _, url)
        for pat, doc in pairs(answers) do if url:find(pat) then return doc end end
        error("unexpected " .. url)
      end } }
    local access = assert(iam.service_agent_access(fake, "b", "import"))
    assert.is_false(access.granted)
    local ok, warning = iam.check_service_agent(fake, "b", "import")
    assert.is_true(ok)
    assert.truthy(warning:find("service-123456789012@gcp-sa-healthcare.iam.gserviceaccount.com", 1, true))
  end)
end)
