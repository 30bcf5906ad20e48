-- Permissions before the operation: an import/export checks that the project's Cloud Healthcare
-- Service Agent may read (objectViewer) or write (objectAdmin) the bucket, and stops with an
-- error naming the member, the role and the command that grants it; grant-service-agent grants it.
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
  after_each(function() env.admin("DELETE", "faults") end)

  it("knows the project number through Resource Manager", function()
    assert.truthy(number:match("^%d+$"))
    assert.are.equal("service-" .. number .. "@gcp-sa-healthcare.iam.gserviceaccount.com", agent)
  end)

  it("stops an import into a bucket the service agent cannot read, saying how to grant it", function()
    local op, err = c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" }
    assert.is_nil(op)
    assert.are.equal("permission", err.kind)
    assert.are.equal("serviceAccount:" .. agent, err.member)
    assert.are.equal("roles/storage.objectViewer", err.role)
    assert.are.equal("dicomgcs storage grant-service-agent gs://" .. bucket .. " --for=import --project=spec-project", err.command)
    local text = tostring(err)
    assert.truthy(text:find(agent, 1, true))
    assert.truthy(text:find("roles/storage.objectViewer", 1, true))
    -- in Lua the hint is the Lua call; on the command line, the command
    assert.truthy(text:find(('c.storage:grant_service_agent("%s", "import")'):format(bucket), 1, true), text)
    assert.truthy(err.hint_cli:find(err.command, 1, true))
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
    local op, err = c:export{ uri_prefix = "gs://" .. bucket .. "/out/" }
    assert.is_nil(op)
    assert.are.equal("roles/storage.objectAdmin", err.role)
    assert.truthy(err.command:find("--for=export", 1, true))
    assert(c.storage:grant_service_agent(bucket, "export"))
    assert(c:export{ uri_prefix = "gs://" .. bucket .. "/out/", wait = true, interval = 0.05 })
    assert.are.equal(2, #assert(c.storage:match("gs://" .. bucket .. "/out/**.dcm")))
  end)

  it("warns and goes on when the caller may not read the bucket's policy", function()
    assert(env.admin("POST", "faults", { path = "/b/" .. bucket .. "/iam$", method = "GET", status = 403 }))
    local warnings = {}
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm",
      on_warning = function(w) warnings[#warnings + 1] = w end })
    assert(op:wait{ interval = 0.05 })
    assert.are.equal(1, #warnings)
    assert.truthy(warnings[1]:find("could not read the IAM policy of gs://" .. bucket, 1, true))
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
    local _, bad = dicomgcs("storage grant-service-agent gs://" .. b2 .. " --for=both" .. loc)
    assert.are_not.equal(0, bad)
  end)
end)
