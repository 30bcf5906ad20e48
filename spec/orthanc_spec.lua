-- The same dicomgcs.dicomweb calls against a real DICOMweb server: Orthanc with its DICOMweb
-- plugin (Debian packages orthanc, orthanc-dicomweb), started here on a free 127.0.0.1 port with
-- a temporary configuration and storage, DICOM port off, no authentication; stopped at exit.
local dicomweb = require "dicomgcs.dicomweb"
local env = require "spec.support.env"
local file = require "spec.support.file"
local testdata = require "dicomgcs.testdata"

local ORTHANC = "/usr/sbin/Orthanc"
local PLUGINS = { "/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so.1.7" }

local plugin
for _, p in ipairs(PLUGINS) do if not plugin and file.exists(p) then plugin = p end end
if not plugin then
  local found = env.run("ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so* /usr/lib/orthanc/libOrthancDicomWeb.so* 2>/dev/null")
  plugin = found:match("[^\n]+")
end

-- Start Orthanc; returns { url=, stop= }.
local function start_orthanc()
  local dir = env.tmpdir("orthanc")
  local port = env.free_port()
  local cfg = file.write(dir .. "/orthanc.json", ([[{
  "Name": "dicomgcs-spec",
  "StorageDirectory": "%s/db",
  "IndexDirectory": "%s/db",
  "HttpPort": %d,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomServerEnabled": false,
  "Plugins": ["%s"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": false }
}]]):format(dir, dir, port, plugin))
  local pid = env.run(("cd %s && (%s %s > %s/orthanc.log 2>&1 & echo $!)"):format(env.quote(dir), ORTHANC,
    env.quote(cfg), env.quote(dir))):match("%d+")
  assert(pid, "Orthanc did not start")
  local stopped = false
  local function stop()
    if stopped then return end
    stopped = true
    os.execute("kill " .. pid .. " 2>/dev/null; sleep 0.2")
  end
  env.on_exit(stop)
  local core = require "dicomgcs.core"
  local url = "http://127.0.0.1:" .. port
  local up = env.wait_until(function()
    local res = core.fetch{ url = url .. "/system", retry = { max_attempts = 1 } }
    return res and res.status == 200
  end, 10)
  if up then return { url = url, stop = stop, dir = dir } end
  error("Orthanc did not answer on " .. url .. ": " .. env.run("tail -5 " .. env.quote(dir .. "/orthanc.log")))
end

describe("dicomweb against Orthanc #orthanc", function()
  if not (file.exists(ORTHANC) and plugin) then
    it("needs Orthanc and its DICOMweb plugin", function()
      pending("apt-get install orthanc orthanc-dicomweb (scripts/install-deps does it)")
    end)
    return
  end

  local orthanc, dw, dir, files
  setup(function()
    orthanc = start_orthanc()
    dw = dicomweb.new{ base_url = orthanc.url .. "/dicom-web" }
    dir = env.tmpdir("orthanc-data")
    files = assert(testdata.generate{ dir = dir .. "/in", studies = 2, series = 2, instances = 2 })
  end)
  teardown(function() if orthanc then orthanc.stop() end end)

  it("stores a folder: single-part is refused with 415, the client falls back to multipart", function()
    file.write(dir .. "/in/notes.txt", "not DICOM")
    local s = assert(dw:store(dir .. "/in", { concurrency = 4 }))
    os.remove(dir .. "/in/notes.txt")
    assert.is_true(s.multipart_fallback)
    assert.are.equal(#files + 1, s.total)
    assert.are.equal(#files, s.stored)
    assert.are.equal(1, s.failed)
    -- a second store goes multipart straight away, in batches this time
    s = assert(dw:store(dir .. "/in", { batch = 3 }))
    assert.is_nil(s.multipart_fallback)
    assert.are.equal(#files, s.stored + s.already_present)
    assert.are.equal(0, s.failed)
  end)

  it("searches with filters and pages", function()
    local uids = {}
    for st in dw:search("studies", { page_size = 1 }) do uids[#uids + 1] = dicomweb.value(st, "StudyInstanceUID") end
    assert.are.equal(2, #uids)
    local list = assert(dw:search_all("studies", { filters = { PatientName = "Test^Patient2*" } }))
    assert.are.equal(1, #list)
    assert.are.equal(files[5].study_uid, dicomweb.value(list[1], "StudyInstanceUID"))
    list = assert(dw:search_all("instances", { study = files[1].study_uid, page_size = 3 }))
    assert.are.equal(4, #list)
    list = assert(dw:search_all("series", { study = files[1].study_uid, filters = { Modality = "CT" } }))
    assert.are.equal(2, #list)
  end)

  it("retrieves a study byte for byte, and metadata", function()
    local s = assert(dw:retrieve{ study = files[1].study_uid, dest = dir .. "/out" })
    assert.are.equal(4, s.instances)
    for i = 1, 4 do
      local f = files[i]
      assert.are.equal(file.read(f.path), file.read(("%s/out/%s/%s/%s.dcm"):format(dir, f.study_uid, f.series_uid, f.sop_uid)))
    end
    local md = assert(dw:metadata{ study = files[1].study_uid, series = files[1].series_uid })
    assert.are.equal(2, #md)
    assert.are.equal("Test^Patient1", dicomweb.value(md[1], "PatientName"))
    local none, err = dw:retrieve{ study = "1.2.3.404", dest = dir .. "/none" }
    assert.is_nil(none)
    assert.are.equal(404, err.http_status)
  end)

  it("renders an instance", function()
    local f = files[1]
    local img = assert(dw:rendered{ study = f.study_uid, series = f.series_uid, instance = f.sop_uid, format = "png" })
    assert.are.equal("\137PNG", img:sub(1, 4))
  end)

  it("deletes an instance and a study", function()
    local f = files[5]
    assert.is_true(assert(dw:delete{ study = f.study_uid, series = f.series_uid, instance = f.sop_uid }))
    assert.are.equal(3, #assert(dw:search_all("instances", { study = f.study_uid })))
    assert.is_true(assert(dw:delete{ study = f.study_uid }))
    assert.are.equal(1, #assert(dw:search_all("studies")))
    local gone, err = dw:delete{ study = f.study_uid }
    assert.is_nil(gone)
    assert.are.equal(404, err.http_status)
  end)
end)
