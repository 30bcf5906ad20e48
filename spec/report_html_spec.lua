-- The HTML run report as a person sees it: rendered by headless Chromium (scripts run), its DOM
-- checked against what the run recorded and against the JSON report, and screenshots saved under
-- the build folder ($DICOMGCS_BUILD, default build/) to look at. Without Chromium these tests are pending (counted as skipped), not passed.
local env = require "spec.support.env"
local chromium = require "spec.support.chromium"
local page = require "spec.support.report_page"
local json = require "dicomgcs.json"
local report = require "dicomgcs.report"
local dicomgcs = require "dicomgcs"

-- the build folder in use (make sanitize's build-asan/ in a fresh clone has no build/)
local SHOTS = env.root() .. "/" .. (os.getenv("DICOMGCS_BUILD") or "build")

local part, total, series_points, table_rows, count = page.part, page.total, page.series_points, page.table_rows, page.count

local function render(dom_path, shot, w, h)
  local dom = chromium.dom(dom_path)
  assert.truthy(dom:find('<html lang="en" data%-ready%-ms="%d+" data%-ready="1">'), "the page's script did not finish")
  if shot then chromium.screenshot(dom_path, SHOTS .. "/" .. shot, w or 1200, h or 1600) end
  return dom
end

describe("HTML run report in headless Chromium", function()
  local function need_chromium()
    if not chromium.path() then pending(chromium.missing) return false end
    return true
  end

  it("a clean import: totals match the JSON report, one chart point per recorded poll", function()
    if not need_chromium() then return end
    local c = env.store_client()
    local bucket = env.bucket(c, nil, "import")
    local files = env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 2, series = 2, instances = 3 }, "rclean")
    local uri = "gs://" .. bucket .. "/in/**.dcm"
    local op = assert(c:import{ uri = uri })
    assert(op:wait{ interval = 0.05, max_interval = 0.1 })
    assert.is_true(#op.history >= 1)
    local r = assert(c:import_report(op, uri))
    local doc = json.decode(report.json(r))
    local path = env.tmpdir("rhtml") .. "/clean.html"
    assert(report.write(report.from_operation(r, op), path,
      { format = "html", kind = "import", source = uri, store = c.dicom_store, command = "spec: clean import" }))
    local dom = render(path, "report-clean.png")
    for _, k in ipairs{ "matched", "succeeded", "failed", "skipped" } do
      assert.are.equal(doc.totals[k], total(dom, "totals", k), k)
    end
    assert.are.equal(#files, total(dom, "totals", "succeeded"))
    for _, s in ipairs{ "succeeded", "failed", "pending" } do
      assert.are.equal(#op.history, series_points(dom, "progress", s))
    end
    assert.truthy(dom:find('id="status">all succeeded<', 1, true))
    assert.truthy(dom:find('id="no-problems"', 1, true))
    -- nothing failed, so the table lists every file (and says which succeeded)
    local rows = table_rows(dom)
    assert.are.equal(#files, #rows)
    for _, cells in ipairs(rows) do assert.are.equal("succeeded", cells[2]) end
    assert.truthy(dom:find(">dicomgcs " .. require("dicomgcs.version") .. "<", 1, true))
    assert.truthy(dom:find(">spec: clean import<", 1, true))
    -- a phone: the same page at 390 CSS pixels
    chromium.screenshot(path, SHOTS .. "/report-clean-phone.png", 390, 1400)
    c:close()
  end)

  it("an import with failures (CLI --format=html): one row per failure, grouped by reason, names escaped", function()
    if not need_chromium() then return end
    local host = env.emulator().host
    local c = env.store_client()
    local bucket = env.bucket(c, nil, "import")
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 4, nested = false }, "rfail")
    -- hostile names: markup that must show as text, never run
    local hostile = { "in/<script>document.title='pwned'</script>.dcm", "in/<img src=x onerror=\"document.title='pwned'\">.dcm",
                      "in/bad.dcm" }
    for _, name in ipairs(hostile) do assert(c.storage:write("gs://" .. bucket .. "/" .. name, "not dicom")) end
    local uri = "gs://" .. bucket .. "/in/**.dcm"
    local op = assert(c:import{ uri = uri })
    op:wait{ interval = 0.05 }
    local loc = "--project=spec-project --location=us-central1 --dataset=" .. c.dataset
    local out, code, err = env.dicomgcs("operations report " .. op.name .. " --gcs-uri=" .. env.quote(uri) ..
      " --format=json " .. loc, host)
    assert.are.equal(3, code, err)
    local doc = json.decode(out)
    local path = env.tmpdir("rhtml") .. "/with failures.html"
    local _, hcode, herr = env.dicomgcs("operations report " .. op.name .. " --gcs-uri=" .. env.quote(uri) ..
      " --format=html --output=" .. env.quote(path) .. " --dicom-store=store " .. loc, host)
    assert.are.equal(3, hcode, herr)
    assert.truthy(herr:find("Wrote the report", 1, true), herr)
    local dom = render(path, "report-failures.png")
    assert.truthy(dom:find("<title>Import of gs://" .. bucket .. "/in/**.dcm</title>", 1, true), "the page's title changed")
    assert.is_nil(dom:find("<script>document", 1, true))
    assert.is_nil(dom:find("<img src=x", 1, true))
    for _, k in ipairs{ "matched", "succeeded", "failed", "skipped" } do
      assert.are.equal(doc.totals[k], total(dom, "totals", k), k)
    end
    local rows = table_rows(dom)
    assert.are.equal(doc.totals.failed, #rows)
    assert.are.equal(3, #rows)
    local shown = {}
    for _, cells in ipairs(rows) do shown[cells[1]] = cells[2] end
    assert.are.equal("failed", shown["gs://" .. bucket .. "/in/&lt;script&gt;document.title='pwned'&lt;/script&gt;.dcm"])
    assert.are.equal("failed", shown["gs://" .. bucket .. "/in/bad.dcm"])
    -- grouped by reason: the groups' counts add up to the failures
    local groups = part(dom, "groups", "</table>")
    local sum = 0
    for n in groups:gmatch('<td class="num">(%d+)</td>') do sum = sum + tonumber(n) end
    assert.are.equal(3, sum)
    -- the exact command that made it
    assert.truthy(dom:find("dicomgcs operations report " .. op.name, 1, true))
    c:close()
  end)

  it("a throttled queue run: one section per operation, throttle moments marked, per-poll points", function()
    if not need_chromium() then return end
    local emu, c, bucket = env.limited_store(3, "rq")
    local failed = {}
    local q = assert(dicomgcs.queue{ client = c, max_in_flight = 3, interval = 0.05, max_interval = 0.2, log = function() end,
      on_file_failed = function(job, f) failed[job.key] = failed[job.key] or {}; table.insert(failed[job.key], f) end })
    q:add{ key = "top", kind = "import", uri = "gs://" .. bucket .. "/in/*.dcm" }
    for i = 1, 3 do q:add{ key = "study-" .. i, kind = "import", uri = ("gs://%s/in/study-%d/**.dcm"):format(bucket, i) } end
    local summary = q:run()
    local throttles = 0
    for _, j in ipairs(summary.jobs) do
      for _, e in ipairs(j.poll and j.poll.events or {}) do if e.kind == "throttle" then throttles = throttles + 1 end end
    end
    assert.is_true(throttles >= 1, "the server never refused an operation: nothing throttled")
    local r = report.from_queue(summary, failed)
    local path = env.tmpdir("rhtml") .. "/queue.html"
    assert(report.write(r, path, { format = "html", source = "gs://" .. bucket .. "/in/", store = "st", command = "spec: queue" }))
    local dom = render(path, "report-queue.png", 1200, 2600)
    assert.are.equal(summary.totals.success, total(dom, "totals", "succeeded"))
    assert.are.equal(summary.totals.failure, total(dom, "totals", "failed"))
    assert.are.equal(1, #table_rows(dom))
    -- one row per operation, each linking to its own section
    local ops = part(dom, "ops", "</table>")
    assert.are.equal(#summary.jobs, count(ops, '<a href="#op%-%d+">'))
    for i, j in ipairs(summary.jobs) do
      assert.truthy(ops:find('<a href="#op-' .. i .. '">' .. j.key .. "</a>", 1, true), j.key)
      assert.are.equal(#(j.poll and j.poll.history or {}), series_points(dom, "op-" .. i, "succeeded"))
      assert.are.equal(j.counter.success, total(dom, "totals-op-" .. i, "succeeded"))
    end
    -- every throttle moment is marked on the run's chart
    local progress = part(dom, "progress", "</section>")
    assert.are.equal(throttles, count(progress, '<g class="marker marker%-throttle">'))
    emu.stop()
    c:close()
  end)
end)
