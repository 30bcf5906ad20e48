-- dicomgcs.testdata.generate_many: distinct, valid DICOM files made from one dump2dcm template.
local env = require "spec.support.env"
local testdata = require "dicomgcs.testdata"
local dicomfile = require "dicomgcs.dicomfile"
local core = require "dicomgcs.core"

describe("testdata.generate_many", function()
  it("writes `count` valid files, each with its own UIDs in its header and file meta", function()
    local dir = env.tmpdir("many")
    local files = assert(testdata.generate_many{ dir = dir, count = 45, prefix = "x" })
    assert.equals(45, #files)
    local sops, crcs = {}, {}
    for _, f in ipairs(files) do
      local h = assert(dicomfile.read_header_file(f.path, 16384))
      assert.equals("ok", h.status, f.path)
      assert.equals(f.sop_uid, h.sop_instance_uid)
      assert.equals(f.study_uid, h.study_uid)
      assert.equals(f.series_uid, h.series_uid)
      assert.is_nil(sops[f.sop_uid], "SOP Instance UIDs are distinct")
      sops[f.sop_uid] = true
      local crc = assert(core.hash_file(f.path, { crc32c = true })).crc32c
      assert.is_nil(crcs[crc], "contents are distinct")
      crcs[crc] = true
      assert.is_true(#f.sop_uid <= 64)
      assert.matches("^study%-%d+/series%-%d+/x", f.rel)
    end
    -- 10 instances per series, 2 series per study
    assert.equals(files[1].series_uid, files[10].series_uid)
    assert.are_not.equals(files[10].series_uid, files[11].series_uid)
    assert.equals(files[1].study_uid, files[20].study_uid)
    assert.are_not.equals(files[20].study_uid, files[21].study_uid)
    -- the template's placeholder UIDs never reach a file
    for _, f in ipairs(files) do assert.is_nil(f.sop_uid:find("9999999", 1, true)) end
  end)

  it("refuses a seed that would make UIDs longer than 64 characters", function()
    assert.has_error(function() testdata.generate_many{ dir = env.tmpdir("many"), count = 1, uid_seed = "123456789012345" } end)
    assert.has_error(function() testdata.generate_many{ dir = env.tmpdir("many"), count = 0 } end)
  end)
end)
