-- dicomgcs.dicomweb against the emulator (and a small hostile server for WADO-RS edge cases).
local dicomweb = require "dicomgcs.dicomweb"
local env = require "spec.support.env"
local file = require "spec.support.file"
local json = require "dicomgcs.json"
local testdata = require "dicomgcs.testdata"

local function by_path(summary)
  local t = {}
  for _, r in ipairs(summary.results) do t[r.path] = r end
  return t
end

describe("dicomweb:store", function()
  local c, dw, dir, files
  setup(function()
    c = env.store_client()
    dw = assert(c:dicomweb())
    dir = env.tmpdir("dwstore")
    files = assert(testdata.generate{ dir = dir .. "/in", studies = 2, series = 2, instances = 3 })
  end)

  it("stores a folder recursively, one request per file, and accounts for every file", function()
    file.write(dir .. "/in/notes.txt", "not DICOM")
    local seen = {}
    local s = assert(dw:store(dir .. "/in", { concurrency = 4, on_progress = function(p)
      seen[#seen + 1] = { files = p.files_done, total = p.files_total, bytes = p.bytes_done, bytes_total = p.bytes_total }
    end }))
    assert.are.equal(#files + 1, s.total)
    assert.are.equal(#files, s.stored)
    assert.are.equal(1, s.failed)
    assert.are.equal(s.total, s.stored + s.already_present + s.failed)
    local r = by_path(s)[dir .. "/in/notes.txt"]
    assert.are.equal("failed", r.status)
    assert.are.equal("input", r.err.kind)
    assert.truthy(r.reason:find("DICM", 1, true))
    local ok = by_path(s)[files[1].path]
    assert.are.equal("stored", ok.status)
    assert.are.equal(files[1].sop_uid, ok.sop_instance_uid)
    -- progress counted files and bytes up to the totals
    local last = seen[#seen]
    assert.are.equal(s.total, last.files)
    assert.are.equal(last.bytes_total, last.bytes)
    assert.is_true(last.bytes_total > 0)
    os.remove(dir .. "/in/notes.txt")
  end)

  it("stores a list in multipart batches; files already stored count as already present", function()
    local list = {}
    for i = 1, 5 do list[i] = files[i].path end
    list[#list + 1] = dir .. "/missing.dcm"
    local s = assert(dw:store(list, { batch = 2, concurrency = 2 }))
    assert.are.equal(6, s.total)
    assert.are.equal(0, s.stored)
    assert.are.equal(5, s.already_present)
    assert.are.equal(1, s.failed)
    local miss = by_path(s)[dir .. "/missing.dcm"]
    assert.are.equal("io", miss.err.kind)
    assert.truthy(miss.reason:find("missing.dcm", 1, true))
  end)

  it("reports an instance whose UID exists with other bytes as already present, with the server's reason", function()
    local seed = tostring(math.random(1, 999999)) .. "77"
    local a = assert(testdata.generate{ dir = dir .. "/c1", studies = 1, series = 1, instances = 1, uid_seed = seed })
    local b = assert(testdata.generate{ dir = dir .. "/c2", studies = 1, series = 1, instances = 1, uid_seed = seed, rows = 16 })
    assert.are.equal(a[1].sop_uid, b[1].sop_uid)
    assert.are.equal(1, assert(dw:store(a[1].path)).stored)
    local s = assert(dw:store(b[1].path))
    local r = s.results[1]
    assert.are.equal("already_present", r.status, tostring(r.reason))
    assert.are.equal(409, r.http_status)
    assert.truthy(r.reason:find("already exists", 1, true))
    assert.are.equal(1, s.already_present)
  end)

  it("fails a study mismatch locally and a wrong target with the HTTP error, per file", function()
    local s = assert(dw:store(files[1].path, { study = files[7].study_uid }))
    assert.are.equal("failed", s.results[1].status)
    assert.truthy(s.results[1].reason:find("belongs to study", 1, true))
    local nowhere = dicomweb.new{ token = "t", base_url = env.emulator().url ..
      "/v1/projects/spec-project/locations/us-central1/datasets/nope/dicomStores/x/dicomWeb" }
    s = assert(nowhere:store({ files[1].path, files[2].path }))
    assert.are.equal(2, s.failed)
    assert.are.equal(404, s.results[1].http_status)
    assert.are.equal("http", s.results[1].err.kind)
  end)

  it("switches to multipart for a server that answers single-part with 415, and remembers it", function()
    local c2 = env.store_client()
    local dw2 = assert(c2:dicomweb())
    assert(env.admin("POST", "faults", { path = c2.dicom_store .. "/dicomWeb/studies$", method = "POST", status = 415,
      count = 1, message = "single-part not supported" }))
    local s = assert(dw2:store({ files[1].path, files[2].path }, { concurrency = 1 }))
    env.admin("DELETE", "faults")
    assert.are.equal(2, s.stored)
    assert.are.equal(0, s.failed)
  end)

  it("stops on Ctrl-C when interruptible, like transfers: every file accounted, nothing left running", function()
    local core = require "dicomgcs.core"
    local list = {}
    for i = 1, 6 do list[i] = files[i].path end
    local raised = false
    local s = assert(dw:store(list, { concurrency = 1, interruptible = true, on_progress = function(p)
      if p.result and not raised then
        raised = true
        local g = core.sigint_guard()   -- as if Ctrl-C were pressed after the first file
        g:raise_for_test()
        g:close()
      end
    end }))
    assert.is_true(s.interrupted)
    assert.are.equal(6, s.total)
    assert.is_true(s.stored + s.already_present >= 1)
    assert.is_true(s.failed >= 1)
    assert.are.equal(6, s.stored + s.already_present + s.failed)
    for _, r in ipairs(s.results) do
      if r.status == "failed" then assert.are.equal("interrupted", r.err.kind) end
    end
    assert.are.equal(0, dw.transport.engine:pending())
  end)

  it("raises on an unknown option and refuses a bad study UID", function()
    assert.has_error(function() dw:store(files[1].path, { colour = "red" }) end)
    local s, err = dw:store(files[1].path, { study = "1.2.x" })
    assert.is_nil(s)
    assert.are.equal("input", err.kind)
  end)
end)

describe("dicomweb retrieve, metadata, rendered, frames", function()
  local dw, dir, files
  setup(function()
    local c = env.store_client()
    dw = assert(c:dicomweb())
    dir = env.tmpdir("dwret")
    files = assert(testdata.generate{ dir = dir .. "/in", studies = 1, series = 2, instances = 2 })
    local s = assert(dw:store(dir .. "/in", { batch = 10 }))
    assert.are.equal(4, s.stored)
  end)

  it("writes a study as one byte-identical .dcm per instance under STUDY/SERIES/", function()
    local s = assert(dw:retrieve{ study = files[1].study_uid, dest = dir .. "/out" })
    assert.are.equal(4, s.instances)
    assert.are.equal(0, s.failed)
    for _, f in ipairs(files) do
      local p = ("%s/out/%s/%s/%s.dcm"):format(dir, f.study_uid, f.series_uid, f.sop_uid)
      assert.are.equal(file.read(f.path), file.read(p))
    end
    -- no temporary files left behind
    local leftovers = env.run("find " .. env.quote(dir .. "/out") .. " -name '.dicomgcs-*' -o -name '*.dgtmp'")
    assert.are.equal("", leftovers)
  end)

  it("retrieves a series and an instance; flat layout", function()
    local s = assert(dw:retrieve{ study = files[1].study_uid, series = files[1].series_uid, dest = dir .. "/se", layout = "flat" })
    assert.are.equal(2, s.instances)
    assert.truthy(file.exists(dir .. "/se/" .. files[1].sop_uid .. ".dcm"))
    s = assert(dw:retrieve{ study = files[4].study_uid, series = files[4].series_uid, instance = files[4].sop_uid, dest = dir .. "/one" })
    assert.are.equal(1, s.instances)
  end)

  it("says clearly when a study does not exist, and checks UIDs before sending", function()
    local s, err = dw:retrieve{ study = "1.2.3.999", dest = dir .. "/none" }
    assert.is_nil(s)
    assert.are.equal(404, err.http_status)
    assert.truthy(tostring(err):find("1.2.3.999", 1, true))
    s, err = dw:retrieve{ study = "../../etc", dest = dir .. "/none" }
    assert.is_nil(s)
    assert.are.equal("input", err.kind)
  end)

  it("reports a response cut off mid-transfer as a transport error", function()
    assert(env.admin("POST", "faults", { path = "dicomWeb/studies/" .. files[1].study_uid:gsub("%.", "\\.") .. "$",
      method = "GET", resetAfterBytes = 3000 }))
    local s, err = dw:retrieve{ study = files[1].study_uid, dest = dir .. "/cut" }
    env.admin("DELETE", "faults")
    assert.is_nil(s)
    assert.are.equal("transport", err.kind)
  end)

  it("keeps the instances complete before a connection cut (streamed: each written once)", function()
    local total = 0
    for _, f in ipairs(files) do total = total + #file.read(f.path) end
    -- cut after about 60 % of the body: some parts complete, one cut, the rest never sent
    assert(env.admin("POST", "faults", { path = "dicomWeb/studies/" .. files[1].study_uid:gsub("%.", "\\.") .. "$",
      method = "GET", resetAfterBytes = math.floor(total * 0.6) }))
    local s, err = dw:retrieve{ study = files[1].study_uid, dest = dir .. "/cut2" }
    env.admin("DELETE", "faults")
    assert(s, err)
    assert.is_true(s.instances >= 1 and s.instances < #files)
    assert.are.equal(1, s.failed)
    assert.are.equal("transport", s.err.kind)
    assert.truthy(tostring(s.err):find("broken after " .. s.instances .. " complete part", 1, true))
    local src = {}
    for _, f in ipairs(files) do src[f.sop_uid] = f end
    for _, r in ipairs(s.results) do
      if r.status == "retrieved" then
        assert.are.equal(file.read(src[r.sop_instance_uid].path), file.read(r.path))
      end
    end
    assert.are.equal("", env.run("find " .. env.quote(dir .. "/cut2") .. " -name '*.dgtmp'"))
  end)

  it("gets metadata as DICOM JSON without bulk data", function()
    local md = assert(dw:metadata{ study = files[1].study_uid })
    assert.are.equal(4, #md)
    assert.are.equal("Test^Patient1", dicomweb.value(md[1], "PatientName"))
    assert.is_nil(md[1]["7FE00010"])
    md = assert(dw:metadata{ study = files[1].study_uid, series = files[1].series_uid, instance = files[1].sop_uid })
    assert.are.equal(files[1].sop_uid, dicomweb.value(md[1], "SOPInstanceUID"))
  end)

  it("renders an instance as PNG and JPEG, and reads frames", function()
    local o = { study = files[1].study_uid, series = files[1].series_uid, instance = files[1].sop_uid }
    local png = assert(dw:rendered{ study = o.study, series = o.series, instance = o.instance, format = "png" })
    assert.are.equal("\137PNG", png:sub(1, 4))
    local path = assert(dw:rendered{ study = o.study, series = o.series, instance = o.instance, output_file = dir .. "/r.jpg" })
    assert.are.equal("\255\216", file.read(path):sub(1, 2))
    local frames = assert(dw:frames{ study = o.study, series = o.series, instance = o.instance, frames = 1 })
    assert.are.equal(1, #frames)
    assert.are.equal(64 * 64 * 2, #frames[1])
  end)
end)

describe("dicomweb:search", function()
  local dw, files
  setup(function()
    local c = env.store_client()
    dw = assert(c:dicomweb())
    local dir = env.tmpdir("dwsearch")
    files = assert(testdata.generate{ dir = dir, studies = 3, series = 2, instances = 2 })
    assert.are.equal(12, assert(dw:store(dir)).stored)
  end)

  it("iterates over every study across pages", function()
    local uids = {}
    for st in dw:search("studies", { page_size = 1 }) do uids[#uids + 1] = dicomweb.value(st, "StudyInstanceUID") end
    assert.are.equal(3, #uids)
  end)

  it("filters by PatientName wildcard, PatientID and UID lists", function()
    local list = assert(dw:search_all("studies", { filters = { PatientName = "test^patient2*" } }))
    assert.are.equal(1, #list)
    assert.are.equal(files[5].study_uid, dicomweb.value(list[1], "StudyInstanceUID"))
    list = assert(dw:search_all("studies", { filters = { PatientID = "PID0003" } }))
    assert.are.equal(1, #list)
    list = assert(dw:search_all("instances", { filters = { SOPInstanceUID = { files[1].sop_uid, files[2].sop_uid } } }))
    assert.are.equal(2, #list)
    list = assert(dw:search_all("studies", { filters = { StudyDate = "20250101-20261231", Modality = "CT" } }))
    assert.are.equal(3, #list)
    list = assert(dw:search_all("studies", { filters = { PatientName = "Nobody*" } }))
    assert.are.equal(0, #list)
  end)

  it("searches series and instances of a study with includefield, limit and offset", function()
    local list = assert(dw:search_all("series", { study = files[1].study_uid }))
    assert.are.equal(2, #list)
    list = assert(dw:search_all("instances", { study = files[1].study_uid, include_fields = { "PatientName" },
      page_size = 1, limit = 3 }))
    assert.are.equal(3, #list)
    assert.are.equal("Test^Patient1", dicomweb.value(list[1], "PatientName"))
    list = assert(dw:search_all("instances", { study = files[1].study_uid, offset = 3 }))
    assert.are.equal(1, #list)
  end)

  it("offers pages() returning page, err", function()
    local next_page = dw:pages("instances", { page_size = 5 })
    local sizes = {}
    while true do
      local page, err = next_page()
      assert.is_nil(err)
      if not page then break end
      sizes[#sizes + 1] = #page
    end
    assert.are.same({ 5, 5, 2 }, sizes)
    local bad = dw:pages("studies", { filters = { Bogus = "1" } })
    local page, err = bad()
    assert.is_nil(page)
    assert.are.equal(400, err.http_status)
    assert.has_error(function() for _ in assert(dw:search("studies", { filters = { Bogus = "1" } })) do end end)
  end)
end)

describe("dicomweb:delete", function()
  it("deletes an instance at once and a study through an operation", function()
    local c = env.store_client()
    local dw = assert(c:dicomweb())
    local dir = env.tmpdir("dwdel")
    local files = assert(testdata.generate{ dir = dir, studies = 1, series = 1, instances = 2 })
    assert(dw:store(dir))
    assert.is_true(assert(dw:delete{ study = files[1].study_uid, series = files[1].series_uid, instance = files[1].sop_uid }))
    assert.are.equal(1, #assert(dw:search_all("instances")))
    local op = assert(dw:delete{ study = files[1].study_uid })
    assert.are.equal("dicomgcs.Operation", getmetatable(op).__name)
    assert(op:wait{ interval = 0.05 })
    assert.are.equal(0, #assert(dw:search_all("instances")))
    local none, err = dw:delete{ study = files[1].study_uid }
    assert.is_nil(none)
    assert.are.equal(404, err.http_status)
  end)
end)

describe("dicomweb and import/export share the store", function()
  it("retrieves an imported instance and exports a stored one", function()
    local emu = env.start_emulator{ "--grant-service-agent" }
    local c = env.store_client{ emulator = emu.host }
    local dw = assert(c:dicomweb())
    local dir = env.tmpdir("dwshare")
    local files = assert(testdata.generate{ dir = dir .. "/a", studies = 1, series = 1, instances = 1 })
    local more = assert(testdata.generate{ dir = dir .. "/b", studies = 1, series = 1, instances = 1 })
    assert(c.storage:create_bucket("dw-share"))
    assert(c.storage:upload(dir .. "/a", "gs://dw-share/in/"))
    assert(c:import{ uri = "gs://dw-share/in/**", wait = true, interval = 0.05 })
    local s = assert(dw:retrieve{ study = files[1].study_uid, dest = dir .. "/got" })
    assert.are.equal(1, s.instances)
    assert(dw:store(dir .. "/b"))
    assert(c:export{ uri_prefix = "gs://dw-share/out/", wait = true, interval = 0.05 })
    assert(c.storage:stat(("gs://dw-share/out/%s/%s/%s.dcm"):format(more[1].study_uid, more[1].series_uid, more[1].sop_uid)))
  end)
end)

describe("dicomweb against a hostile server", function()
  local server, base, good_path, good_bytes
  -- every file under root lies under dest; returns how many there are
  local function all_inside(root, dest)
    local n = 0
    for line in env.run("find " .. env.quote(root) .. " -type f"):gmatch("[^\n]+") do
      n = n + 1
      assert.are.equal(dest .. "/", line:sub(1, #dest + 1))
    end
    return n
  end
  -- retrieve `study` from the hostile server into ROOT/sub (ROOT a new temporary folder); every
  -- hostile study holds one good instance and one the client must refuse
  local function retrieve_one_of_two(study, name, sub)
    local root = env.tmpdir(name)
    local dest = root .. (sub or "")
    local s = assert(dicomweb.new{ base_url = base }:retrieve{ study = study, dest = dest })
    assert.are.equal(1, s.instances)
    assert.are.equal(1, s.failed)
    return s, root, dest
  end
  setup(function()
    local dir = env.tmpdir("dwhostile")
    local good = assert(testdata.generate{ dir = dir .. "/g", studies = 1, series = 1, instances = 1 })
    good_path, good_bytes = good[1].path, file.read(good[1].path)
    -- a DICOM file whose SOP Instance UID tries to climb out of the folder
    local evil = file.read(good[1].path)
    local uid = good[1].sop_uid
    local bad = ("../../x"):rep(10):sub(1, #uid)
    evil = evil:gsub(uid:gsub("%p", "%%%0"), (bad:gsub("%%", "%%%%")))
    file.write(dir .. "/evil.dcm", evil)
    file.write(dir .. "/server.js", [[
const http = require('http'); const fs = require('fs');
const good = fs.readFileSync(process.argv[2]); const evil = fs.readFileSync(process.argv[3]);
const B = 'xyzBOUNDARY';
const part = (b) => Buffer.concat([Buffer.from('--' + B + '\r\nContent-Type: application/dicom\r\n\r\n'), b, Buffer.from('\r\n')]);
const sop = process.argv[4];
http.createServer((req, res) => {
  let body;
  if (req.method === 'POST') {   // STOW: single-part refused like Orthanc, multipart accepted
    req.resume();
    req.on('end', () => {
      if ((req.headers['content-type'] || '').startsWith('application/dicom')) { res.writeHead(415); res.end(); return; }
      res.writeHead(200, { 'Content-Type': 'application/dicom+json' });
      res.end(JSON.stringify({ '00081199': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: [sop] } }] } }));
    });
    return;
  }
  if (req.url.includes('/studies/1.5.5')) {   // the first part header is not a header
    res.writeHead(200, { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=' + B });
    res.end(Buffer.concat([Buffer.from('--' + B + '\r\nnot a header line\r\n\r\n'), good, Buffer.from('\r\n--' + B + '--\r\n')]));
    return;
  }
  if (req.url.includes('/studies/1.4.4')) {
    res.writeHead(200, { 'Content-Type': 'application/dicom', 'Content-Length': good.length });
    res.end(good);
    return;
  }
  if (req.url.includes('/studies/1.3.3')) {   // hostile part headers, then a header block too big to keep
    const hostile = Buffer.concat([Buffer.from('--' + B + '\r\nContent-Type: application/dicom\r\n' +
      'Content-Location: ../../../../escape.dcm\r\nContent-Disposition: attachment; filename="../../x.dcm"\r\n' +
      'Content-ID: <\x1b]0;pwned\x07>\r\n\r\n'), good, Buffer.from('\r\n')]);
    const huge = Buffer.from('--' + B + '\r\nX-Junk: ' + 'a'.repeat(100000) + '\r\n\r\n');
    body = Buffer.concat([hostile, huge, good, Buffer.from('\r\n--' + B + '--\r\n')]);
  }
  else if (req.url.includes('/studies/1.1.1')) body = Buffer.concat([part(good), part(good).subarray(0, 500)]); // truncated
  else body = Buffer.concat([part(evil), part(good), Buffer.from('--' + B + '--\r\n')]);
  res.writeHead(200, { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=' + B, 'Content-Length': body.length });
  res.end(body);
}).listen(0, '127.0.0.1', function () { console.log('PORT ' + this.address().port); });
setTimeout(() => process.exit(0), 120000);
]])
    server = env.start_server("node " .. env.quote(dir .. "/server.js") .. " " .. env.quote(good[1].path) .. " " ..
      env.quote(dir .. "/evil.dcm") .. " " .. good[1].sop_uid)
    base = "http://127.0.0.1:" .. server.port .. "/dicomWeb"
  end)

  it("keeps the complete parts of a truncated multipart response and reports the cut one", function()
    local s, _, dest = retrieve_one_of_two("1.1.1", "dwcut")
    assert.truthy(s.err)
    assert.truthy(tostring(s.err):find("broken", 1, true))
    assert.are.equal("", env.run("find " .. env.quote(dest) .. " -name '.dicomgcs-*' -o -name '*.dgtmp'"))
  end)

  it("names files from the DICOM UIDs only: hostile part headers change nothing; a huge header block stops the parse", function()
    local s, root, dest = retrieve_one_of_two("1.3.3", "dwhdr", "/dest")
    assert.truthy(tostring(s.err):find("broken after 1 complete part", 1, true))
    assert.are.equal(1, all_inside(root, dest))
    assert.truthy(s.results[1].path:match("^" .. dest:gsub("%p", "%%%0") .. "/[%d.]+/[%d.]+/[%d.]+%.dcm$"))
  end)

  it("a response broken before its first part ends is a transport error, nothing written", function()
    local dest = env.tmpdir("dwbroken")
    local s, err = dicomweb.new{ base_url = base }:retrieve{ study = "1.5.5", dest = dest }
    assert.is_nil(s)
    assert.are.equal("transport", err.kind)
    assert.truthy(err.message:find("broken after 0 complete part", 1, true), err.message)
    assert.are.equal("", env.run("find " .. env.quote(dest) .. " -type f"))
  end)

  it("takes a single-part application/dicom answer as one instance", function()
    local dw = dicomweb.new{ base_url = base }
    local dest = env.tmpdir("dwsingle")
    local s = assert(dw:retrieve{ study = "1.4.4", dest = dest })
    assert.are.equal(1, s.instances)
    assert.are.equal(0, s.failed)
    assert.are.equal(good_bytes, file.read(s.results[1].path))
  end)

  it("remembers a 415 to single-part STOW per handle, not per process", function()
    local dw = dicomweb.new{ base_url = base }
    local s = assert(dw:store(good_path))
    assert.is_true(s.multipart_fallback)
    assert.are.equal(1, s.stored)
    s = assert(dw:store(good_path))
    assert.is_nil(s.multipart_fallback)
    assert.are.equal(1, s.stored)
    local other = dicomweb.new{ base_url = base }
    s = assert(other:store(good_path))
    assert.is_true(s.multipart_fallback)
  end)

  it("never writes outside the folder, whatever UIDs the server sends", function()
    local _, root, dest = retrieve_one_of_two("1.2.2", "dwevil", "/a/b/c/d/e/f/g/h/i/j/k/dest")
    assert.are.equal(1, all_inside(root, dest))
  end)
end)

describe("dicomgcs dicomweb (command line)", function()
  it("stores with per-file outcomes, searches, retrieves and deletes", function()
    local c = env.store_client()
    local common = (" --project=spec-project --location=us-central1 --dataset=%s --dicom-store=%s"):format(c.dataset, c.dicom_store)
    local dir = env.tmpdir("dwcli")
    local files = assert(testdata.generate{ dir = dir .. "/in", studies = 1, series = 1, instances = 2 })
    file.write(dir .. "/in/readme.txt", "hello")
    local e = "DICOMGCS_EMULATOR_HOST=" .. env.emulator().host .. " "
    local out, code = env.run(e .. "bin/dicomgcs dicomweb store " .. env.quote(dir .. "/in") .. common ..
      " --format=json --concurrency=2 2>/dev/null")
    assert.are.equal(3, code, out)
    local doc = assert(json.decode(out))
    assert.are.equal(2, doc.stored)
    assert.are.equal(1, doc.failed)
    assert.are.equal(3, #doc.results)
    out, code = env.run(e .. "bin/dicomgcs dicomweb search instances --query=PatientID=PID0001 --format=json" .. common)
    assert.are.equal(0, code, out)
    assert.are.equal(2, #assert(json.decode(out)))
    out, code = env.run(e .. "bin/dicomgcs dicomweb retrieve studies/" .. files[1].study_uid .. " --dest=" ..
      env.quote(dir .. "/out") .. common, true)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("Retrieved 2 instance", 1, true))
    out, code = env.run(e .. "bin/dicomgcs dicomweb retrieve studies/bad..uid --dest=/tmp/x" .. common, true)
    assert.are.equal(1, code, out)
    out, code = env.run(e .. "bin/dicomgcs dicomweb delete studies/" .. files[1].study_uid .. common, true)
    assert.are.equal(0, code, out)
    out, code = env.run(e .. "bin/dicomgcs dicomweb search studies --format=json" .. common)
    assert.are.equal(0, code, out)
    assert.are.equal("[]", out:gsub("%s", ""))
    out, code = env.run(e .. "bin/dicomgcs dicomweb store " .. env.quote(dir .. "/in/readme.txt") .. common, true)
    assert.are.equal(1, code, out)
  end)

  it("refuses bad usage with exit 2 or a clear message", function()
    local out, code = env.run("bin/dicomgcs dicomweb search studies --bogus", true)
    assert.are.equal(2, code, out)
    out, code = env.run("bin/dicomgcs dicomweb retrieve series/1.2 --dest=x --dicomweb-url=http://127.0.0.1:1/dw", true)
    assert.are.equal(2, code, out)
    assert.truthy(out:find("studies/UID", 1, true))
  end)
end)
