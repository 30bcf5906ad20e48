-- --report=FILE at the end of a queue run, a STOW and a Cloud Storage transfer: the HTML run
-- report is written, and its totals are those the command printed. (How the page looks in a
-- browser is spec/report_html_spec.lua.)
local env = require "spec.support.env"
local file = require "spec.support.file"
local page = require "spec.support.report_page"
local json = require "dicomgcs.json"

local loc = "--project=spec-project --location=us-central1"

describe("--report=FILE", function()
  it("import --partition writes one section per operation, totals as printed", function()
    local c = env.store_client()
    local bucket = env.bucket(c, nil, "import")
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 3, series = 1, instances = 2, nested = true }, "rcq")
    assert(c.storage:write("gs://" .. bucket .. "/in/study-2/junk.dcm", "junk"))
    local path = env.tmpdir("rcli") .. "/queue.html"
    local _, code, err = env.dicomgcs("dicom-stores import gcs store --gcs-uri=" .. env.quote("gs://" .. bucket .. "/in/**.dcm") ..
      " --partition --max-in-flight=2 --report=" .. env.quote(path) .. " --dataset=" .. c.dataset .. " " .. loc)
    assert.are.equal(3, code, err)
    local jobs, imported, failed = err:match("(%d+) import%(s%): %d+ done, %d+ failed; (%d+) files imported, (%d+) failed%.")
    assert.truthy(jobs, err)
    local html = assert(file.read(path))
    assert.are.equal(tonumber(imported), page.total(html, "totals", "succeeded"))
    assert.are.equal(tonumber(failed), page.total(html, "totals", "failed"))
    assert.are.equal(tonumber(jobs), page.count(page.part(html, "ops", "</table>"), '<a href="#op%-%d+">'))
    for i = 1, tonumber(jobs) do assert.truthy(html:find('id="op-' .. i .. '"', 1, true)) end
    assert.truthy(html:find("--partition --max-in-flight=2 --report=", 1, true), "the command is not shown")
    c:close()
  end)

  it("a waited import writes its report with every poll the wait made", function()
    local c = env.store_client()
    local bucket = env.bucket(c, nil, "import")
    local files = env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 2, instances = 2 }, "rcimp")
    local path = env.tmpdir("rcli") .. "/import.html"
    local out, code, err = env.dicomgcs("dicom-stores import gcs store --gcs-uri=" .. env.quote("gs://" .. bucket .. "/in/**.dcm") ..
      " --report=" .. env.quote(path) .. " --format=json --dataset=" .. c.dataset .. " " .. loc)
    assert.are.equal(0, code, err)
    local doc = json.decode(out)
    local html = assert(file.read(path))
    assert.are.equal(#files, page.total(html, "totals", "matched"))
    assert.are.equal(tonumber(doc.metadata.counter.success), page.total(html, "totals", "succeeded"))
    local polls = page.series_points(html, "progress", "succeeded")
    assert.is_true(polls >= 1)
    assert.truthy(html:find(polls .. " polls recorded", 1, true))
    -- the same report on stdout from the operation's name
    local again, code2, err2 = env.dicomgcs("operations report " .. doc.name .. " --gcs-uri=" ..
      env.quote("gs://" .. bucket .. "/in/**.dcm") .. " --format=html " .. loc)
    assert.are.equal(0, code2, err2)
    assert.truthy(again:find("^<!DOCTYPE html>"))
    assert.are.equal(#files, page.total(again, "totals", "succeeded"))
    c:close()
  end)

  it("dicomweb store writes every file's outcome, totals as the JSON summary", function()
    local c = env.store_client()
    local dir = env.tmpdir("rcstow")
    local files = assert(require("dicomgcs.testdata").generate{ dir = dir, studies = 1, series = 1, instances = 3 })
    assert(file.write(dir .. "/notes & <b>.txt", "not dicom"))
    local path = dir .. "-stow.html"
    env.on_exit(function() os.remove(path) end)
    local out, code, err = env.dicomgcs("dicomweb store " .. env.quote(dir) .. " --dicom-store=store --dataset=" .. c.dataset ..
      " --format=json --report=" .. env.quote(path) .. " " .. loc)
    assert.is_true(code == 0 or code == 3, err)
    local doc = json.decode(out)
    local html = assert(file.read(path))
    assert.are.equal(doc.total, page.total(html, "totals", "matched"))
    assert.are.equal(doc.stored, page.total(html, "totals", "succeeded"))
    assert.are.equal(doc.failed, page.total(html, "totals", "failed"))
    assert.are.equal(#files, doc.stored)
    assert.are.equal(doc.total - doc.stored - doc.failed, page.total(html, "totals", "skipped"))
    assert.is_nil(html:find("<b>.txt", 1, true))
    assert.truthy(html:find("DICOMweb store (STOW-RS)", 1, true))
    assert.is_true(page.series_points(html, "progress", "succeeded") >= 1)
    c:close()
  end)

  it("storage cp writes the transfer's totals and its bytes per second", function()
    local c = env.client()
    local bucket = env.bucket(c)
    local dir = env.tmpdir("rccp")
    local files = assert(require("dicomgcs.testdata").generate{ dir = dir, studies = 1, series = 2, instances = 2 })
    local path = dir .. "-cp.html"
    env.on_exit(function() os.remove(path) end)
    local _, code, err = env.dicomgcs("storage cp -r " .. env.quote(dir) .. " gs://" .. bucket .. "/up/ --report=" .. env.quote(path) ..
      " " .. loc)
    assert.are.equal(0, code, err)
    local html = assert(file.read(path))
    assert.are.equal(#files, page.total(html, "totals", "matched"))
    assert.are.equal(#files, page.total(html, "totals", "succeeded"))
    assert.truthy(html:find(">transferred<", 1, true))
    assert.truthy(html:find(">destination<", 1, true))
    assert.is_true(page.series_points(html, "progress", "bytes/s") >= 1)
    c:close()
  end)
end)
