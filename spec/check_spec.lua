local check = require "dicomgcs.check"
local env = require "spec.support.env"
local file = require "spec.support.file"
local testdata = require "dicomgcs.testdata"

describe("pre-flight check", function()
  local dir, good, bad

  setup(function()
    dir = env.tmpdir("check")
    good = assert(testdata.generate{ dir = dir .. "/in", studies = 1, series = 1, instances = 2, nested = false })
    local bytes = file.read(good[1].path)
    bad = {
      [dir .. "/in/text.dcm"] = "not_dicom",
      [dir .. "/in/truncated.dcm"] = "truncated",
      [dir .. "/in/nopreamble.dcm"] = "no_preamble",
    }
    file.write(dir .. "/in/text.dcm", "plain text, definitely not DICOM; long enough to have 132 bytes " .. string.rep("x", 100))
    file.write(dir .. "/in/truncated.dcm", bytes:sub(1, 300))
    file.write(dir .. "/in/nopreamble.dcm", bytes:sub(129))
  end)

  it("flags every broken local file with its reason and passes the good ones", function()
    local s = assert(check.local_files(dir .. "/in"))
    assert.are.equal(#good + 3, s.total)
    assert.are.equal(3, s.rejected)
    for _, r in ipairs(s.results) do
      if bad[r.source] then
        assert.is_false(r.ok)
        assert.is_string(r.reason)
      else
        assert.is_true(r.ok, r.source .. ": " .. tostring(r.reason))
        assert.is_string(r.sop_instance_uid)
      end
    end
  end)

  it("checks bucket objects with ranged reads, and the CLI prints one line per rejected file", function()
    local c = env.client()
    local bucket = env.unique("bkt")
    assert(c.storage:create_bucket(bucket))
    assert(c.storage:upload(dir .. "/in", "gs://" .. bucket .. "/in/"))
    local s = assert(check.objects(c.storage, "gs://" .. bucket .. "/in/*.dcm"))
    assert.are.equal(#good + 3, s.total)
    assert.are.equal(3, s.rejected)
    local reqs = assert(env.admin("GET", "requests"))
    -- every object was read with a ranged request (206 Partial Content), none in full
    local partial, full = 0, 0
    for _, q in ipairs(reqs.requests or reqs) do
      if (q.path or ""):find(bucket, 1, true) and (q.path or ""):find("alt=media", 1, true) then
        if q.status == 206 then partial = partial + 1 elseif q.status == 200 then full = full + 1 end
      end
    end
    assert.are.equal(0, full)
    assert.is_true(partial >= #good + 2)
    local out, code = env.run(("DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs check 'gs://%s/in/*.dcm' %s 2>/dev/null"):format(
      env.emulator().host, bucket, env.quote(dir .. "/in/text.dcm")))
    assert.are.equal(3, code)
    local lines = 0
    for _ in out:gmatch("[^\n]*\t[^\n]+") do lines = lines + 1 end
    assert.are.equal(4, lines)
    assert.are.equal(1, out:find("Would be rejected:\n", 1, true))
    assert.truthy(out:find("gs://" .. bucket .. "/in/truncated.dcm\t", 1, true))
  end)

  it("exits 0 when every file passes", function()
    local _, code = env.run("bin/dicomgcs check " .. env.quote(good[1].path) .. " 2>/dev/null")
    assert.are.equal(0, code)
  end)
end)
