-- dicomgcs.dicomweb.stow.match: which STOW answer belongs to which file. Pure: no server.
local stow = require "dicomgcs.dicomweb.stow"
local json = require "dicomgcs.json"

local function ui(v) return { vr = "UI", Value = { v } } end
local function ref(sop, warning)
  local item = { ["00081155"] = ui(sop), ["00081150"] = ui("1.2.840.10008.5.1.4.1.1.7") }
  if warning then item["00081196"] = { vr = "US", Value = { warning } } end
  return item
end
local function failed(sop, code, text)
  local item = { ["00081197"] = { vr = "US", Value = { code } } }
  if sop then item["00081155"] = ui(sop) end
  if text then item["00091001"] = { vr = "LT", Value = { text } } end
  return item
end
local function answer(status, refs, fails)
  local doc = {}
  if refs then doc["00081199"] = { vr = "SQ", Value = refs } end
  if fails then doc["00081198"] = { vr = "SQ", Value = fails } end
  return { status = status, headers = { ["content-type"] = "application/dicom+json" }, body = json.encode(doc) }
end
local files = {
  { path = "a.dcm", sop_instance_uid = "1.1" },
  { path = "b.dcm", sop_instance_uid = "1.2" },
  { path = "c.dcm", sop_instance_uid = "1.3" },
}
local function statuses(out)
  local t = {}
  for i, o in ipairs(out) do t[i] = o.status end
  return t
end

describe("dicomweb stow.match", function()
  it("gives each file its own entry, whatever the order of the answer", function()
    local out = stow.match(files, answer(200, { ref("1.3"), ref("1.1", 0xB000), ref("1.2") }), "u")
    assert.are.same({ "stored", "stored", "stored" }, statuses(out))
    assert.are.equal(0xB000, out[1].warning_reason)
    assert.is_nil(out[2].warning_reason)
  end)

  it("names failures by SOP Instance UID; duplicates count as already present (409)", function()
    local out = stow.match(files, answer(409, { ref("1.1") },
      { failed("1.3", 0x0111), failed("1.2", 0xC000, "cannot parse") }), "u")
    assert.are.same({ "stored", "failed", "already_present" }, statuses(out))
    assert.are.equal(0xC000, out[2].failure_reason)
    assert.truthy(out[2].reason:find("cannot parse", 1, true))
    assert.truthy(out[2].reason:find("0xC000 cannot understand", 1, true))
    assert.are.equal("http", out[2].err.kind)
    assert.are.equal(409, out[2].err.http_status)
    assert.truthy(out[2].err.message:find("b.dcm", 1, true))
    assert.is_nil(out[3].err)
    assert.are.equal(409, out[3].http_status)
  end)

  it("reads a duplicate from the reason text too (Google's 'already exists')", function()
    local out = stow.match({ files[1] }, answer(409, nil, { failed("1.1", 0x0110, "instance already exists") }), "u")
    assert.are.same({ "already_present" }, statuses(out))
  end)

  it("hands unnamed failures to the unnamed files in order", function()
    local out = stow.match(files, answer(409, { ref("1.2") }, { failed(nil, 0xA700), failed(nil, 0xA770) }), "u")
    assert.are.same({ "failed", "stored", "already_present" }, statuses(out))
    assert.are.equal(0xA700, out[1].failure_reason)
  end)

  it("a 2xx without a body stores every file; an error without one fails every file with the HTTP error", function()
    assert.are.same({ "stored", "stored" }, statuses(stow.match({ files[1], files[2] }, { status = 200, headers = {}, body = "" }, "u")))
    local out = stow.match({ files[1], files[2] }, { status = 500, headers = {}, body = "boom" }, "http://x/studies")
    assert.are.same({ "failed", "failed" }, statuses(out))
    assert.are.equal(500, out[1].err.http_status)
    assert.truthy(out[1].err.message:find("store a.dcm", 1, true))
  end)

  it("a 202 that lists only failures fails the files it does not name too", function()
    local out = stow.match({ files[1], files[2] }, answer(202, nil, { failed("1.1", 0xC000) }), "u")
    assert.are.same({ "failed", "failed" }, statuses(out))
  end)

  it("a file whose header was not read (no UID) still gets an outcome", function()
    local out = stow.match({ { path = "x.dcm" } }, answer(200, { ref("9.9") }), "u")
    assert.are.same({ "stored" }, statuses(out))
  end)

  it("reads the XML form of the answer", function()
    local xml = [[<?xml version="1.0"?><NativeDicomModel>
<DicomAttribute tag="00081198" vr="SQ"><Item number="1">
<DicomAttribute tag="00081155" vr="UI"><Value number="1">1.2</Value></DicomAttribute>
<DicomAttribute tag="00081197" vr="US"><Value number="1">272</Value></DicomAttribute>
</Item></DicomAttribute>
<DicomAttribute tag="00081199" vr="SQ"><Item number="1">
<DicomAttribute tag="00081155" vr="UI"><Value number="1">1.1</Value></DicomAttribute>
</Item></DicomAttribute></NativeDicomModel>]]
    local out = stow.match({ files[1], files[2] }, { status = 409, headers = { ["content-type"] = "application/dicom+xml" }, body = xml }, "u")
    assert.are.same({ "stored", "failed" }, statuses(out))
    assert.are.equal(0x0110, out[2].failure_reason)
  end)

  it("survives hostile answers: not JSON, wrong types, an array", function()
    for _, body in ipairs{ "{", "[1,2]", '{"00081199":{"Value":"x"}}', '{"00081198":{"Value":[{"00081155":{"Value":[{}]}}]}}', "\0\255",
        '{"00081198":{"Value":["x",[1],{"1":2}]}}', '{"00081198":{"vr":"SQ","Value":[{"00081197":{"Value":["zz"]}}]}}' } do
      local out = stow.match({ files[1] }, { status = 200, headers = { ["content-type"] = "application/dicom+json" }, body = body }, "u")
      assert.are.equal(1, #out)
      assert.truthy(out[1].status == "stored" or out[1].status == "failed")
    end
  end)
end)
