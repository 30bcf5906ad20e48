-- Issue #15 §7: `dicomgcs check` predicts the import. Over a corpus of odd files (make_dicom's
-- good, broken and warned files, and the fuzz corpus of DICOM headers), the pre-flight check and
-- the emulator's import give the same verdict for every file; the files the import accepts with a
-- defect are "accepted, but worth a look" in the check, never "would be rejected".
local env = require "spec.support.env"
local check = require "dicomgcs.check"

describe("the pre-flight check and the import agree", function()
  local c, bucket, dir, names, imported, manifest

  setup(function()
    dir = env.tmpdir("parity")
    manifest = require("spec.support.make_dicom").generate(dir .. "/gen")
    os.remove(dir .. "/gen/manifest.lua")
    assert(os.execute("mkdir -p " .. env.quote(dir .. "/fuzz") .. " && cp fuzz/corpus/dicom_header/* " .. env.quote(dir .. "/fuzz/")))
    c = env.store_client()
    bucket = env.bucket(c, nil, "import")
    assert(c.storage:upload(dir, "gs://" .. bucket .. "/corpus/"))
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/corpus/**" })
    op:wait{ interval = 0.05 }
    local found = assert(c:failures(op))
    assert.is_true(found.complete)
    imported = {}
    names = {}
    for _, o in ipairs(assert(c.storage:match("gs://" .. bucket .. "/corpus/**"))) do
      names[#names + 1] = o.uri
      imported[o.uri] = "accepted"
    end
    for _, f in ipairs(found.failures) do
      -- a conflict (the corpus reuses SOP Instance UIDs) means the file passed validation
      if f.kind ~= "conflict" then imported[f.uri] = "rejected: " .. f.message end
    end
    assert.is_true(#names >= 70)
  end)

  local function verdicts(summary, key)
    local out = {}
    for _, r in ipairs(summary.results) do out[key(r.source)] = r end
    return out
  end

  it("gives every local file the verdict the import gave it", function()
    local s = assert(check.local_files(dir))
    local by = verdicts(s, function(src) return "gs://" .. bucket .. "/corpus/" .. src:sub(#dir + 2) end)
    local mismatches = {}
    for _, uri in ipairs(names) do
      local r = assert(by[uri], uri)
      local import_ok = imported[uri] == "accepted"
      if r.ok ~= import_ok then
        mismatches[#mismatches + 1] = ("%s: check %s (%s), import %s"):format(uri, r.ok and "ok" or "rejects",
          tostring(r.reason), imported[uri])
      end
    end
    assert.are.same({}, mismatches)
    assert.are.equal(#names, s.total)
  end)

  it("puts the accepted defects under warnings, and the bucket check agrees with the local one", function()
    local s = assert(check.objects(c.storage, "gs://" .. bucket .. "/corpus/gen/"))
    local by = verdicts(s, function(src) return src:match("([^/]+)$") end)
    assert.is_true(#manifest.warned >= 3)
    for _, w in ipairs(manifest.warned) do
      local r = assert(by[w.file], w.file)
      assert.is_true(r.ok, w.file)
      assert.truthy((r.warning or ""):find(w.warning, 1, true), w.file .. ": " .. tostring(r.warning))
      assert.are.equal("accepted", imported["gs://" .. bucket .. "/corpus/gen/" .. w.file], w.file)
    end
    assert.are.equal(#manifest.warned, s.warned)
    for _, b in ipairs(manifest.broken) do
      assert.is_false(by[b.file].ok, b.file)
      assert.truthy(imported["gs://" .. bucket .. "/corpus/gen/" .. b.file]:find("^rejected"), b.file)
    end
    -- the CLI: rejected files first, warned files apart, exit 3 (warnings alone would give 0)
    local out, code = env.run(("DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs check %s 2>/dev/null"):format(
      env.emulator().host, env.quote(dir .. "/gen")))
    assert.are.equal(3, code)
    local rej, acc = out:find("Would be rejected:\n", 1, true), out:find("Accepted, but worth a look:\n", 1, true)
    assert.truthy(rej and acc and rej < acc, out)
    for _, w in ipairs(manifest.warned) do
      assert.truthy(out:find(dir .. "/gen/" .. w.file .. "\twarning\t", acc, true), w.file)
    end
    local _, only_warned = env.run(("bin/dicomgcs check %s 2>/dev/null"):format(env.quote(dir .. "/gen/uid_mismatch.dcm")))
    assert.are.equal(0, only_warned)
  end)
end)
