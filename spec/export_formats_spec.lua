-- Export mime types end to end against the emulator: the objects written (names, extensions,
-- content types), that a transcoded .dcm really has the transfer syntax asked for (dcmdump), and
-- that PNG / JPEG objects are real images (magic bytes). api.md §5.
local env = require "spec.support.env"
local file = require "spec.support.file"
local testdata = require "dicomgcs.testdata"

local read = file.read_if_exists
local function transfer_syntax(path)
  return env.run(("dcmdump -M -Un +P 0002,0010 %s 2>&1"):format(env.quote(path))):match("%[([%d%.]+)%]")
end

describe("export formats", function()
  local c, bucket, files, work

  setup(function()
    c = env.store_client()
    bucket = env.bucket(c)
    work = env.tmpdir("formats")
    files = assert(testdata.generate{ dir = work .. "/in", studies = 1, series = 2, instances = 2, rows = 16, cols = 16 })
    assert(c.storage:upload(work .. "/in", "gs://" .. bucket .. "/in/"))
    local op = assert(assert(c:import{ uri = "gs://" .. bucket .. "/in/**.dcm" }):wait{ interval = 0.05 })
    assert.equals(#files, op.counter.success)
  end)

  -- export with o, wait, and return the names written under the prefix (sorted) and the prefix
  local function export(tag, o)
    o.uri_prefix = ("gs://%s/%s/"):format(bucket, tag)
    local op = assert(assert(c:export(o)):wait{ interval = 0.05 })
    assert.equals(#files, op.counter.success)
    assert.equals(0, op.counter.failure)
    local names = {}
    for _, obj in ipairs(assert(c.storage:match(o.uri_prefix .. "**"))) do names[#names + 1] = obj.name end
    table.sort(names)
    return names, o.uri_prefix
  end
  local function expected(tag, ext)
    local out = {}
    for _, f in ipairs(files) do out[#out + 1] = ("%s/%s/%s/%s%s"):format(tag, f.study_uid, f.series_uid, f.sop_uid, ext) end
    table.sort(out)
    return out
  end
  local function download(prefix, tag)
    local down = assert(c.storage:download(prefix, work .. "/" .. tag))
    assert.equals(#files, down.ok)
    return work .. "/" .. tag
  end

  for _, case in ipairs{
    { tag = "le", ts = "1.2.840.10008.1.2.1" },
    { tag = "jpeg-baseline", ts = "1.2.840.10008.1.2.4.50" },
    { tag = "jpeg-lossless", ts = "1.2.840.10008.1.2.4.70" },
    { tag = "jpeg-lossless-14", ts = "1.2.840.10008.1.2.4.57" },
  } do
    it("application/dicom; transfer-syntax=" .. case.ts .. " writes .dcm files in that transfer syntax", function()
      local names, prefix = export(case.tag, { mime_type = "application/dicom", transfer_syntax = case.ts })
      assert.same(expected(case.tag, ".dcm"), names)
      local dir = download(prefix, case.tag)
      for _, f in ipairs(files) do
        assert.equals(case.ts, transfer_syntax(("%s/%s/%s/%s.dcm"):format(dir, f.study_uid, f.series_uid, f.sop_uid)))
      end
    end)
  end

  it("application/dicom; transfer-syntax=* keeps the stored bytes", function()
    local names, prefix = export("as-stored", { mime_type = "application/dicom", transfer_syntax = "*" })
    assert.same(expected("as-stored", ".dcm"), names)
    local dir = download(prefix, "as-stored")
    local f = files[1]
    assert.equals(read(f.path), read(("%s/%s/%s/%s.dcm"):format(dir, f.study_uid, f.series_uid, f.sop_uid)))
  end)

  for _, case in ipairs{
    { title = "image/png writes .png images", tag = "png", ext = ".png", magic = "\137PNG\r\n\26\n",
      o = { mime_type = "image/png" } },
    { title = "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50 writes .jpg images", tag = "jpg", ext = ".jpg",
      magic = "\255\216\255", o = { mime_type = "image/jpeg", transfer_syntax = "1.2.840.10008.1.2.4.50" } },
  } do
    it(case.title, function()
      local names, prefix = export(case.tag, case.o)
      assert.same(expected(case.tag, case.ext), names)
      local dir = download(prefix, case.tag)
      for _, f in ipairs(files) do
        local bytes = read(("%s/%s/%s/%s%s"):format(dir, f.study_uid, f.series_uid, f.sop_uid, case.ext))
        assert.equals(case.magic, bytes:sub(1, #case.magic))
      end
    end)
  end

  it("application/octet-stream writes the raw pixel data without an extension", function()
    local names, prefix = export("raw", { mime_type = "application/octet-stream", transfer_syntax = "1.2.840.10008.1.2.1" })
    assert.same(expected("raw", ""), names)
    local dir = download(prefix, "raw")
    local f = files[1]
    assert.equals(16 * 16 * 2, #read(("%s/%s/%s/%s"):format(dir, f.study_uid, f.series_uid, f.sop_uid)))
  end)

  it("an unsupported mime type is refused when the export is requested", function()
    local op, err = c:export{ uri_prefix = "gs://" .. bucket .. "/bad/", mime_type = "application/dicom",
                              transfer_syntax = "1.2.3.4" }
    assert.is_nil(op)
    assert.truthy(tostring(err.message or err):find("mime type", 1, true))
  end)
end)
