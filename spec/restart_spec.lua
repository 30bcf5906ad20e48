-- A client waiting on an operation while the emulator is killed (SIGKILL) and restarted on the
-- same --data folder and port: the emulator resumes the operation from its persisted state,
-- and op:wait goes on polling through the refused connections (retryable poll failures) until
-- it is done, every file counted once. Also: what op:wait does not wait through, and a token
-- refresh's retryable verdict reaching the caller.
local env = require "spec.support.env"
local dicomgcs = require "dicomgcs"
local http = require "dicomgcs.http"
local testdata = require "dicomgcs.testdata"

local q = env.quote

local function pid_of(emu) return assert(env.run("cat " .. q(emu.data .. "/emulator.pid"))):match("%d+") end

describe("an operation across an emulator restart", function()
  local emu, c

  before_each(function()
    emu = env.start_emulator{ "--op-delay-ms", "100", "--grant-service-agent" }
    c = assert(dicomgcs.client{ project = "restart-project", location = "us-central1", emulator = emu.host,
      token = "spec-token", dataset = "ds", dicom_store = "st",
      -- the engine gives up on a refused connection at once, so the wait itself must go on
      retry = { max_attempts = 2, base_delay_ms = 20, max_delay_ms = 50 } })
    assert(c:create_dataset{})
    assert(c:create_dicom_store{})
    assert(c.storage:create_bucket("restart-bkt"))
    local dir = env.tmpdir("restart")
    assert(testdata.generate_many{ dir = dir, count = 20 })
    local up = assert(c.storage:upload(dir, "gs://restart-bkt/in/"))
    assert.equals(20, up.ok)
  end)
  after_each(function() emu.stop() end)

  it("is resumed by the restarted emulator and waited on through the downtime", function()
    local op = assert(c:import{ uri = "gs://restart-bkt/in/**" })
    local port = emu.host:match(":(%d+)$")
    local killed_at
    local done, err = op:wait{ interval = 0.1, max_interval = 0.5, on_progress = function(o)
      if not killed_at and not o.done and o.counter.success > 0 then
        killed_at = o.counter.success
        env.run("kill -KILL " .. pid_of(emu))
        -- back in a second: meanwhile the polls find nobody listening
        os.execute("(sleep 1; emulator/start --data " .. q(emu.data) .. " --op-delay-ms 100 --grant-service-agent --port " ..
          port .. ") >" .. q(emu.data .. "/restart.out") .. " 2>&1 &")
      end
    end }
    -- a failed wait says why (its error's class) and what the restart printed, so a failure
    -- seen once in CI can be told apart: a poll error not retried, or an emulator that did not
    -- come back
    assert.is_truthy(done, err and ("%s (kind %s, class %s)\nrestart: %s\nemulator.log: %s"):format(tostring(err),
      tostring(err.kind), tostring(err.class), env.run("cat " .. q(emu.data .. "/restart.out")) or "",
      env.run("tail -n 20 " .. q(emu.data .. "/emulator.log")) or ""))
    assert.is_truthy(killed_at and killed_at < 20, "the emulator was killed while the import ran")
    assert.equals(20, op.counter.success)
    assert.equals(0, op.counter.failure)
    local retried = 0
    for _, e in ipairs(op.events or {}) do if e.kind == "retry" then retried = retried + 1 end end
    assert.is_true(retried > 0, "the wait saw the emulator down")
    local found = assert(assert(c:dicomweb()):search_all("instances"))
    assert.equals(20, #found)
  end)

  it("gives up after `unreachable` seconds without a successful poll, with the retryable error", function()
    local op = assert(c:import{ uri = "gs://restart-bkt/in/**" })
    local done, err = op:wait{ interval = 0.1, max_interval = 0.2, unreachable = 0.5, on_progress = function()
      env.run("kill -KILL " .. pid_of(emu))
    end }
    assert.is_nil(done)
    assert.equals("transport", err.kind)
    assert.is_true(err.retryable)
    assert.is_true(#op.events > 0)
  end)

  it("fails at once when the first poll fails (a wrong or dead endpoint), however retryable", function()
    local op = assert(c:import{ uri = "gs://restart-bkt/in/**" })
    env.run("kill -KILL " .. pid_of(emu))
    local done, err = op:wait{ interval = 0.1 }
    assert.is_nil(done)
    assert.is_true(err.retryable)
    assert.are.same({}, op.events)  -- no poll was retried
  end)

  it("does not wait through an error that is not retryable (an unknown operation)", function()
    local op = assert(c:import{ uri = "gs://restart-bkt/in/**" })
    op.name = op.name:gsub("%d+$", "1")
    local done, err = op:wait{ interval = 0.1 }
    assert.is_nil(done)
    assert.equals(404, err.http_status)
    assert.are.same({}, op.events)  -- no poll was retried
  end)
end)

describe("a failed token refresh", function()
  local function transport(verdict)
    return http.new{ token_provider = function() return nil, "token endpoint unreachable" end,
      auth_error = verdict ~= nil and function() return { retryable = verdict } end or nil }
  end

  it("is retryable when the credential provider says so, not otherwise", function()
    local _, err = transport(true):json("GET", "http://127.0.0.1:9/x", nil, "get x")
    assert.equals("auth", err.kind)
    assert.is_true(err.retryable)
    _, err = transport(false):json("GET", "http://127.0.0.1:9/x", nil, "get x")
    assert.equals("auth", err.kind)
    assert.is_false(err.retryable)
  end)

  it("through a client whose key's token endpoint is down: retryable, and op:wait would keep polling", function()
    local dir = env.tmpdir("cred")
    local port = env.free_port()
    env.run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. q(dir .. "/k.pem") .. " 2>&1")
    local f = assert(io.open(dir .. "/k.pem")); local key = f:read("a"); f:close()
    local path = dir .. "/sa.json"
    f = assert(io.open(path, "w"))
    f:write(require("dicomgcs.json").encode{ type = "service_account", project_id = "p", private_key_id = "k1",
      private_key = key, client_email = "sa@p.iam.gserviceaccount.com", client_id = "1",
      token_uri = "http://127.0.0.1:" .. port .. "/token" })
    f:close()
    local emu = env.emulator()
    local c = assert(dicomgcs.client{ project = "restart-project", location = "us-central1", emulator = emu.host, emulator_credentials = path })
    local _, err = c:get_dataset{ dataset = "nope" }
    assert.equals("auth", err.kind)
    assert.is_true(err.retryable)
  end)
end)
