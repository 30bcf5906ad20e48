-- dicomgcs.dicomfile / core.dicom_header against files made with dcmtk, cross-checked
-- with dcmdump. Deliberate differences from dcmdump (it is a dumper, not a validator):
-- we reject files without preamble, wrong meta group lengths, missing meta elements,
-- missing UIDs, malformed UIDs, odd lengths and meta/dataset UID mismatches that
-- dcmdump reads; see the `note` of each broken file in spec/support/make_dicom.lua.
local dicomfile = require "dicomgcs.dicomfile"
local core = require "dicomgcs.core"
local env = require "spec.support.env"
local file = require "spec.support.file"
local make_dicom = dofile("spec/support/make_dicom.lua")

-- Top-level UIDs and the exit status according to dcmdump.
local function dcmdump(path)
  local out = env.run("dcmdump -q -Un " .. env.quote(path) .. " 2>/dev/null; echo \"exit=$?\"")
  local uids, in_dataset = {}, false
  for line in out:gmatch("[^\n]+") do
    if line:match("^# Dicom%-Data%-Set") then in_dataset = true end
    local g, e, v = line:match("^%((%x%x%x%x),(%x%x%x%x)%) UI %[([^%]]*)%]")
    if g then
      local tag = (g .. e):lower()
      if in_dataset or g == "0002" then uids[tag] = uids[tag] or v end
    end
  end
  return uids, tonumber(out:match("exit=(%d+)"))
end

describe("dicom header reader #dcmtk", function()
  local dir, manifest

  lazy_setup(function()
    dir = env.tmpdir("dcmtk")
    manifest = make_dicom.generate(dir)
  end)

  it("reads every good file and agrees with dcmdump on the four UIDs", function()
    assert.is_true(#manifest.good >= 10)
    for _, g in ipairs(manifest.good) do
      local path = dir .. "/" .. g.file
      local r = assert(dicomfile.read_header_file(path))
      local d, rc = dcmdump(path)
      assert.are.equal(0, rc, g.file .. ": dcmdump failed")
      assert.are.equal("ok", r.status, g.file .. ": " .. tostring(r.reason))
      assert.is_true(r.ok)
      assert.are.equal(g.ts, r.transfer_syntax, g.file)
      assert.are.equal(d["00020010"], r.transfer_syntax, g.file)
      assert.are.equal(d["00020003"], r.meta_sop_instance_uid, g.file)
      assert.are.equal(d["00020002"], r.meta_sop_class_uid, g.file)
      if g.inspected then
        assert.is_true(r.dataset_inspected)
        assert.are.equal(d["0020000d"], r.study_uid, g.file)
        assert.are.equal(d["0020000e"], r.series_uid, g.file)
        assert.are.equal(d["00080018"], r.sop_instance_uid, g.file)
        assert.are.equal(d["00080016"], r.sop_class_uid, g.file)
        assert.are.equal(g.study, r.study_uid, g.file)
      else -- deflated: only the meta group is read
        assert.is_false(r.dataset_inspected)
        assert.is_nil(r.study_uid)
        assert.matches("deflated", r.reason)
      end
    end
  end)

  it("gives each broken file its expected status, naming a byte offset", function()
    assert.is_true(#manifest.broken >= 25)
    for _, b in ipairs(manifest.broken) do
      local r = assert(dicomfile.read_header_file(dir .. "/" .. b.file))
      assert.are.equal(b.status, r.status, b.file .. " (" .. b.note .. "): " .. tostring(r.reason))
      assert.is_false(r.ok)
      assert.is_string(r.reason)
      assert.is_true(math.type(r.offset) == "integer")
      if b.status ~= "missing_uid" and b.status ~= "bad_meta" and b.file ~= "empty.dcm" then
        assert.matches("%d", r.reason, b.file)
      end
    end
  end)

  it("flags every broken file that dcmdump cannot read", function()
    local dcmdump_failed = 0
    for _, b in ipairs(manifest.broken) do
      local _, rc = dcmdump(dir .. "/" .. b.file)
      local r = dicomfile.read_header_file(dir .. "/" .. b.file)
      if rc ~= 0 then
        dcmdump_failed = dcmdump_failed + 1
        assert.is_false(r.ok, b.file .. ": dcmdump fails but we accept it")
      end
    end
    assert.is_true(dcmdump_failed >= 10)
  end)

  it("asks for more data on a prefix and succeeds once it has the UIDs", function()
    local bytes = file.read(dir .. "/explicit_le.dcm")
    local full = dicomfile.check_bytes(bytes, true)
    assert.are.equal("ok", full.status)
    for _, n in ipairs({ 0, 50, 131, 132, 200, full.offset - 1 }) do
      local r = dicomfile.check_bytes(bytes:sub(1, n), false)
      assert.are.equal("need_more_data", r.status, "prefix " .. n)
      assert.is_true(r.need > n)
      assert.are_not.equal("ok", dicomfile.check_bytes(bytes:sub(1, n), true).status)
    end
    assert.are.equal("ok", dicomfile.check_bytes(bytes:sub(1, full.offset), false).status)
    assert.are.equal(full.offset, full.consumed)
  end)

  it("grows its read until the UIDs are in (read_header_file with a tiny first read)", function()
    local r = assert(dicomfile.read_header_file(dir .. "/implicit_le_undef.dcm", 16))
    assert.are.equal("ok", r.status)
    local t = assert(dicomfile.read_header_file(dir .. "/trunc_study.dcm", 64))
    assert.are.equal("truncated", t.status)
  end)

  it("returns nil, err for unreadable paths and raises on misuse", function()
    local r, err = dicomfile.read_header_file(dir .. "/does-not-exist.dcm")
    assert.is_nil(r)
    assert.matches("does%-not%-exist", err)
    r, err = dicomfile.read_header_file(dir)
    assert.is_nil(r)
    assert.is_string(err)
    assert.has_error(function() dicomfile.read_header_file(nil) end)
    assert.has_error(function() dicomfile.read_header_file(dir .. "/x", 0) end)
    assert.has_error(function() dicomfile.check_bytes(42) end)
    assert.has_error(function() core.dicom_header() end)
  end)
end)

describe("core.dicom_header on fuzz regression inputs", function()
  it("never fails on any corpus file, complete or not", function()
    local p = io.popen("ls fuzz/corpus/dicom_header 2>/dev/null")
    local n = 0
    for name in p:lines() do
      local bytes = file.read("fuzz/corpus/dicom_header/" .. name)
      for _, complete in ipairs({ true, false }) do
        local r = core.dicom_header(bytes, complete)
        assert.is_string(r.status)
        assert.is_boolean(r.ok)
      end
      n = n + 1
    end
    p:close()
    assert.is_true(n > 0)
  end)
end)
