-- Waiting on operations: one engine loop (runner jobs on engine timers), polls timed by
-- progress, poll history, Ctrl-C, partial results.
local dicomgcs = require "dicomgcs"
local core = require "dicomgcs.core"
local env = require "spec.support.env"
local operation = require "dicomgcs.operation"
local runner = require "dicomgcs.runner"

-- An operation-like object with a made-up history, for the pure delay rule.
local function fake(history)
  return { history = history }
end
local function point(t, success, failure, pending) return { t = t, success = success, failure = failure, pending = pending } end

describe("operation.next_delay (polls timed by progress)", function()
  it("without progress yet, backs off from the interval, x1.5, up to max_interval", function()
    local st = {}
    local op = fake{ point(0, 0, 0, 0) }
    local d = {}
    for i = 1, 12 do d[i] = operation.next_delay(op, st, { interval = 1, max_interval = 30 }) end
    assert.are.equal(1, d[1])
    assert.are.equal(1.5, d[2])
    assert.are.equal(2.25, d[3])
    assert.are.equal(30, d[12])
    for i = 2, 12 do assert.is_true(d[i] >= d[i - 1]) end
  end)

  it("predicts the end from the counters' rate and pending, and polls at half the time left", function()
    -- ~10 files/s since the first poll that saw progress (one more file counted, to be early)
    local op = fake{ point(0, 0, 0, 2000), point(10, 99, 0, 1901), point(110, 1099, 0, 901) }
    local d = operation.next_delay(op, {}, { interval = 1 })
    assert.is_true(math.abs(d - 901 / (1001 / 100) / 2) < 1e-9, d)
  end)

  it("uses the expected count when the operation reports no pending", function()
    local op = fake{ point(0, 0, 0, 0), point(1, 10, 0, 0), point(11, 110, 0, 0) }
    local d = operation.next_delay(op, {}, { interval = 1, expected = 310 })
    assert.is_true(math.abs(d - 200 / (101 / 10) / 2) < 1e-9, d)
  end)

  it("never sleeps more than twice as long as it has watched: one file says little", function()
    -- one file in 2 s predicts ~600 s more, but the operation has been watched for 4 s
    local op = fake{ point(0, 0, 0, 600), point(1, 0, 0, 600), point(3, 1, 0, 599) }
    assert.are.equal(8, operation.next_delay(op, {}, { interval = 1 }))
  end)

  it("polls every near_interval around the predicted end, and honours max_interval", function()
    local op = fake{ point(0, 0, 0, 1000), point(1, 10, 0, 990), point(100, 999, 0, 1) }
    assert.are.equal(0.5, operation.next_delay(op, {}, { interval = 1 }))
    assert.are.equal(0.2, operation.next_delay(op, {}, { interval = 1, near_interval = 0.2 }))
    local far = fake{ point(0, 0, 0, 100000), point(100, 100, 0, 99900), point(1000, 1000, 0, 99000) }
    assert.are.equal(7, operation.next_delay(far, {}, { interval = 1, max_interval = 7 }))
    assert.are.equal(2002, operation.next_delay(far, {}, { interval = 1 }))   -- sparse: no 30 s cap
  end)

  it("backs off from near_interval when nothing is left but the operation is not done", function()
    local st = {}
    local op = fake{ point(0, 0, 0, 10), point(1, 5, 0, 5), point(2, 10, 0, 0) }
    local a = operation.next_delay(op, st, { interval = 1 })
    local b = operation.next_delay(op, st, { interval = 1 })
    assert.are.equal(0.5, a)
    assert.are.equal(0.75, b)
  end)
end)

describe("waiting on operations in one loop", function()
  local c, bucket
  setup(function()
    c = env.store_client()
    bucket = env.bucket(c)
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 3, series = 1, instances = 2, nested = true }, "wait")
  end)

  it("waits on several operations with wait_all and records each one's poll history", function()
    local a = assert(c:import{ uri = "gs://" .. bucket .. "/in/study-2/**.dcm" })
    local b = assert(c:import{ uri = "gs://" .. bucket .. "/in/study-3/**.dcm" })
    local seen = {}
    local out = operation.wait_all{ ops = { a, b }, interval = 0.05,
      on_progress = function(op) seen[op.name] = (seen[op.name] or 0) + 1 end }
    assert.is_true(out[1].ok and out[2].ok, tostring(out[1].err or out[2].err))
    assert.is_nil(out.interrupted)
    for _, op in ipairs{ a, b } do
      assert.is_true(op.done)
      assert.are.equal(2, op.counter.success)
      assert.is_true(#op.history >= 1)
      assert.are.equal(#op.history, seen[op.name])
      local last = op.history[#op.history]
      assert.are.same({ success = 2, failure = 0, pending = 0 },
        { success = last.success, failure = last.failure, pending = last.pending })
      for i = 2, #op.history do assert.is_true(op.history[i].t >= op.history[i - 1].t) end
      assert.is_true(math.abs(last.t - os.time()) < 120)   -- unix seconds
    end
  end)

  it("runs operation polls and Cloud Storage transfers as jobs of one runner", function()
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/**.dcm" })
    local r = runner.new(c.transport)
    r:add{ fn = function() return assert(op:wait{ interval = 0.05 }) and {} end }
    for i = 1, 8 do
      r:add{ fn = function(io)
        local url = c.storage.base .. "/upload/storage/v1/b/" .. bucket .. "/o?uploadType=media&name=side/" .. i
        local res, err = io.request({ method = "POST", url = url, body = ("x"):rep(1000 * i) }, "upload " .. i)
        if not res then return nil, err end
        return { bytes = 1000 * i }
      end }
    end
    -- a job that runs a whole upload (a runner of its own, inside this one's job)
    local dir = env.tmpdir("nested")
    for i = 1, 5 do
      local f = assert(io.open(dir .. "/f" .. i, "wb")); f:write(("y"):rep(100 * i)); f:close()
    end
    r:add{ fn = function()
      local up, err = c.storage:upload(dir, "gs://" .. bucket .. "/nested/")
      if not up then return nil, err end
      return up.ok == 5 and up.failed == 0 and {} or nil
    end }
    local summary = r:run()
    assert.are.equal(10, summary.ok)
    assert.is_true(op.done)
    assert.are.equal(6, op.counter.success)
    assert.are.equal(8, #assert(c.storage:match("gs://" .. bucket .. "/side/*")))
    assert.are.equal(5, #assert(c.storage:match("gs://" .. bucket .. "/nested/*")))
  end)

  it("a runner cancelled from a hook ends every job with kind cancelled, and no sleep blocks it", function()
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/**.dcm" })
    local r
    r = runner.new(c.transport, { on_progress = function() r:cancel("enough") end })
    r:add{ fn = function(io) local ok, err = io.sleep(3600); if ok then return {} end return nil, err end }
    r:add{ fn = function() return {} end }
    r:add{ fn = function() return assert(op:wait{ interval = 0.05 }) and {} end }
    local summary = r:run()
    assert.is_true(summary.cancelled)
    assert.are.equal("cancelled", summary.results[1].err.kind)
    assert.are.equal("cancelled", summary.results[3].err.kind)
    assert.are.equal(0, c.transport.engine:pending())
  end)

  it("an interrupt while waiting returns kind interrupted, saying the operation goes on", function()
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/**.dcm" })
    local done, err = op:wait{ interval = 0.05, on_progress = function()
      local g = core.sigint_guard()   -- as if Ctrl-C were pressed during the wait
      g:raise_for_test()
      g:close()
    end }
    assert.is_nil(done)
    assert.are.equal("interrupted", err.kind)
    assert.truthy(err.message:find("goes on in the server", 1, true))
    assert.truthy(err.message:find("dicomgcs operations wait " .. op:cli_ref(), 1, true))
    assert.are.equal(op, err.operation)
    assert.are.equal(0, c.transport.engine:pending())
    assert(op:wait{ interval = 0.05 })                -- and it can be waited on again
  end)
end)

describe("Ctrl-C (a real SIGINT) while a script waits", function()
  it("makes op:wait return kind interrupted; the operation goes on in the server", function()
    local emu = env.start_emulator{ "--op-delay-ms", "1500" }
    local c = assert(dicomgcs.client{ project = "spec-project", location = "us-central1", emulator = emu.host,
      token = "t", dataset = "sig", dicom_store = "st" })
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    local bucket = env.bucket(c)
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 4, nested = false }, "sig")
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    local dir = env.tmpdir("sig")
    local script = dir .. "/wait.lua"
    local f = assert(io.open(script, "w"))
    f:write(([[
local dicomgcs = require "dicomgcs"
local c = assert(dicomgcs.client{ project = "spec-project", location = "us-central1", emulator = %q,
  token = "t", dataset = "sig", dicom_store = "st" })
local op = assert(c:operation(%q))
local done, err = op:wait{ interval = 0.05, on_progress = function() io.write("WAITING\n"); io.flush() end }
io.write("DONE ", tostring(done ~= nil), "\nKIND ", tostring(err and err.kind), "\nMSG ", tostring(err and err.message), "\n")
]]):format(emu.host, op.name))
    f:close()
    local p = assert(io.popen(("exec env %s lua5.4 %s & echo PID $!"):format(env.lua_paths(), env.quote(script)), "r"))
    local pid = assert(p:read("l")):match("PID (%d+)")
    assert.truthy(pid)
    local first = p:read("l")
    assert.are.equal("WAITING", first)
    os.execute("kill -INT " .. pid)
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("DONE false", 1, true), out)
    assert.truthy(out:find("KIND interrupted", 1, true), out)
    assert.truthy(out:find("goes on in the server", 1, true), out)
    assert.truthy(out:find("dicomgcs operations wait " .. op:cli_ref(), 1, true), out)
    assert.is_false(assert(op:get()).done)            -- still running in the server
    assert(op:wait{ interval = 0.1 })
    assert.are.equal(4, op.counter.success)
    emu.stop()
  end)
end)
