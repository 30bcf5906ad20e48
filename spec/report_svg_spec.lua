-- The report's own SVG chart generator and the HTML page's escaping, without a browser.
local svg = require "dicomgcs.report.svg"
local report = require "dicomgcs.report"

local function polyline(doc, name)
  local n, pts = doc:match('data%-series="' .. name .. '" data%-points="(%d+)" points="([^"]*)"')
  assert(n, "no series " .. name)
  local list = {}
  for x, y in pts:gmatch("([%d%.%-]+),([%d%.%-]+)") do list[#list + 1] = { tonumber(x), tonumber(y) } end
  return tonumber(n), list
end

local count = require("spec.support.report_page").count

describe("report.svg scales and ticks", function()
  it("maps a domain onto a range, and a zero-width domain onto the middle", function()
    local s = svg.scale(0, 10, 100, 200)
    assert.are.equal(100, s(0)); assert.are.equal(150, s(5)); assert.are.equal(200, s(10))
    local inv = svg.scale(0, 4, 300, 100)
    assert.are.equal(200, inv(2))
    assert.are.equal(150, svg.scale(7, 7, 100, 200)(7))
  end)

  it("picks round ticks that cover the data", function()
    local t, lo, hi = svg.ticks(0, 97, 5)
    assert.are.same({ 0, 20, 40, 60, 80, 100 }, t)
    assert.are.equal(0, lo); assert.are.equal(100, hi)
    t = svg.ticks(0, 100000, 4)
    assert.are.same({ 0, 25000, 50000, 75000, 100000 }, t)
    t = svg.ticks(0, 0, 4)          -- nothing counted yet: still an axis
    assert.are.equal(0, t[1]); assert.is_true(t[#t] > 0)
  end)

  it("puts time ticks where a clock reads well", function()
    assert.are.same({ 0, 3600, 7200, 10800, 14400 }, svg.time_ticks(14400, 6))
    assert.are.same({ 0, 600, 1200, 1800, 2400, 3000 }, svg.time_ticks(3000, 6))
    assert.are.same({ 0, 900, 1800, 2700, 3600 }, svg.time_ticks(4000, 6))
    assert.are.same({ 0, 20, 40, 60, 80, 100 }, svg.time_ticks(97, 6))
  end)

  it("formats counts, durations and elapsed time", function()
    assert.are.equal("100,000", svg.count(100000))
    assert.are.equal("999", svg.count(999))
    assert.are.equal("1,234,567", svg.count(1234567))
    assert.are.equal("0:42", svg.duration(42))
    assert.are.equal("1:02:05", svg.duration(3725))
    assert.are.equal("0.5s", svg.elapsed_format(3)(0.5))
    assert.are.equal("0.15s", svg.elapsed_format(0.25)(0.15))
    assert.are.equal("42s", svg.elapsed_format(60)(42))
    assert.are.equal("2:00", svg.elapsed_format(600)(120))
  end)
end)

describe("report.svg line chart", function()
  local function chart(points, markers)
    return svg.line_chart{ title = "t", width = 700, height = 250, series = { { name = "ok", class = "succeeded", points = points } },
      markers = markers }
  end

  it("draws one point per data point, left to right, higher values higher", function()
    local doc = chart({ { 100, 0 }, { 101, 5 }, { 103, 10 } })
    local n, pts = polyline(doc, "ok")
    assert.are.equal(3, n); assert.are.equal(3, #pts)
    assert.is_true(pts[1][1] < pts[2][1] and pts[2][1] < pts[3][1])
    assert.is_true(pts[1][2] > pts[2][2] and pts[2][2] > pts[3][2])  -- SVG y grows downwards
    -- x is proportional to time: 1 s then 2 s
    assert.is_true(math.abs((pts[3][1] - pts[2][1]) - 2 * (pts[2][1] - pts[1][1])) < 0.05)
    -- inside the viewBox
    for _, p in ipairs(pts) do assert.is_true(p[1] >= 0 and p[1] <= 700 and p[2] >= 0 and p[2] <= 250) end
    assert.are.equal(3, count(doc, "<circle "))
  end)

  it("draws an empty chart that says so", function()
    local doc = svg.line_chart{ title = "nothing", series = {} }
    assert.truthy(doc:find("no data recorded", 1, true))
    assert.is_nil(doc:find("<polyline", 1, true))
    doc = chart({})
    assert.truthy(doc:find("no data recorded", 1, true))
  end)

  it("draws a single point inside the plot", function()
    local doc = chart({ { 50, 7 } })
    local n, pts = polyline(doc, "ok")
    assert.are.equal(1, n)
    assert.is_true(pts[1][1] > 0 and pts[1][1] < 700)
    assert.are.equal(1, count(doc, "<circle "))
  end)

  it("marks moments as vertical lines with their kind, and keeps dots off long series", function()
    local pts = {}
    for i = 1, 500 do pts[i] = { i, i * 2 } end
    local doc = chart(pts, { { x = 100, kind = "throttle", label = "429" }, { x = 200, kind = "retry" } })
    assert.are.equal(1, count(doc, '<g class="marker marker%-throttle">'))
    assert.are.equal(1, count(doc, '<g class="marker marker%-retry">'))
    assert.are.equal(500, (polyline(doc, "ok")))
    assert.are.equal(0, count(doc, "<circle "))
  end)

  it("puts round ticks in the unit asked for", function()
    local doc = svg.line_chart{ series = { { name = "r", points = { { 0, 0 }, { 1, 5.5 * 1048576 } } } }, y_unit = 1048576,
      y_format = function(v) return ("%g MiB"):format(v / 1048576) end }
    assert.truthy(doc:find(">2 MiB<", 1, true))
    assert.truthy(doc:find(">6 MiB<", 1, true))
  end)

  it("escapes every text it is given", function()
    local doc = svg.line_chart{ title = "<b>t</b>", series = { { name = "a\"><script>x</script>", class = "c\" onload=\"x", points = { { 1, 1 } } } },
      markers = { { x = 1, kind = "throttle", label = "</title><script>alert(1)</script>" } } }
    assert.is_nil(doc:find("<script>", 1, true))
    assert.is_nil(doc:find('onload="x', 1, true))
    assert.truthy(doc:find("&lt;/title&gt;&lt;script&gt;", 1, true))
    assert.are.equal("a&amp;b&lt;c&gt;&quot;&#39;", svg.escape("a&b<c>\"'"))
    assert.are.equal("ab", svg.escape("a\0\27b"))
  end)
end)

describe("report.svg stacked bar", function()
  it("draws parts in proportion to the total, nothing for zero parts", function()
    local doc = svg.stacked_bar{ width = 100, parts = { { label = "ok", value = 3, class = "succeeded" },
      { label = "bad", value = 1, class = "failed" }, { label = "skip", value = 0, class = "skipped" } } }
    assert.truthy(doc:find('class="part succeeded" data%-value="3" x="0" y="0" width="75"'))
    assert.truthy(doc:find('class="part failed" data%-value="1" x="75" y="0" width="25"'))
    assert.is_nil(doc:find("part skipped", 1, true))
    local empty = svg.stacked_bar{ parts = { { label = "ok", value = 0 } } }
    assert.is_nil(empty:find('class="part', 1, true))
  end)
end)

-- The file names of a page's data blob, decoded as the page's script does.
local function files_of(data)
  local out, k, prev, dirs = {}, 0, "", {}
  for j = 1, #data.dpre do prev = prev:sub(1, data.dpre[j]) .. data.dsuf[j]; dirs[j] = prev end
  prev = ""
  for j = 1, #data.runs, 2 do
    for _ = 1, data.runs[j + 1] do
      k = k + 1
      prev = prev:sub(1, data.pre[k]) .. data.suf[k]
      out[k] = dirs[data.runs[j] + 1] .. prev
    end
  end
  return out
end

describe("report.html page", function()
  local hostile = '</script><script>document.title="pwned"</script><!--'

  local function page(rows, extra)
    local inputs, outcomes = {}, {}
    for _, r in ipairs(rows) do inputs[#inputs + 1] = r[1]; outcomes[r[1]] = { outcome = r[2], code = r[3], reason = r[4] } end
    local r = report.build(inputs, outcomes)
    for k, v in pairs(extra or {}) do r[k] = v end
    return report.html(report.describe(r, { version = "test" })), r
  end

  it("keeps hostile names and reasons out of the markup and the script", function()
    local doc = page({ { "gs://b/" .. hostile .. ".dcm", "failed", "<i>X</i>", hostile } },
      { source = hostile, store = "<img src=x onerror=alert(1)>", command = hostile, events = { { t = 1, kind = hostile, detail = hostile } },
        history = { { t = 1, success = 0, failure = 1, pending = 0 } } })
    -- exactly our two script elements, and no hostile tag anywhere
    assert.are.equal(2, count(doc, "<script"))
    assert.is_nil(doc:find("<img", 1, true))
    assert.is_nil(doc:find("<i>X", 1, true))
    assert.is_nil(doc:find("<!--", 1, true))
    -- the data blob cannot close its element: no "<" at all inside it
    local blob = doc:match('<script type="application/json" id="report%-data">(.-)</script>')
    assert.is_nil(blob:find("<", 1, true))
    local data = require("dicomgcs.json").decode(blob)
    assert.are.same({ "gs://b/" .. hostile .. ".dcm" }, files_of(data))
    assert.are.equal(hostile, data.reasons[data.sparse[4] + 1])
  end)

  it("forbids network access and states the totals", function()
    local doc = page({ { "gs://b/a.dcm", "succeeded" }, { "gs://b/b.dcm", "failed", "X", "why" }, { "gs://b/c.dcm", "skipped" } })
    assert.truthy(doc:find("default-src 'none'", 1, true))
    assert.is_nil(doc:gsub('xmlns="http://www.w3.org/2000/svg"', ""):find("https?://"))
    assert.is_nil(doc:find(" src=", 1, true))
    assert.truthy(doc:find('data-total="matched">3<', 1, true))
    assert.truthy(doc:find('data-total="failed">1<', 1, true))
    assert.truthy(doc:find("✓ adds up", 1, true))
  end)

  it("stores names compactly and gets every one back, whatever the order and the characters", function()
    local names = { "gs://b/d1/img-0001.dcm", "gs://b/d1/img-0002.dcm", "gs://b/d2/img-0002.dcm", "gs://b/d1/img-0010.dcm",
                    "gs://b/d1/ïmg-é.dcm", "gs://b/d1/ïmg-è.dcm", "gs://b/d1/img", "gs://b/d1/", "no-folder", "gs://b/d1/img-0010.dcm" }
    local rows = {}
    for _, n in ipairs(names) do rows[#rows + 1] = { n, "succeeded" } end
    local doc = page(rows)
    local data = require("dicomgcs.json").decode(doc:match('id="report%-data">(.-)</script>'))
    assert.are.same(names, files_of(data))
    assert.are.equal(0, #data.sparse)
    -- shared prefixes are counted in ASCII only, so that JavaScript's UTF-16 slice() agrees
    assert.are.equal(0, data.pre[6])
  end)

  it("draws a transfer's bytes per second, with fractional rates on the axis", function()
    local doc = page({ { "/d/a.dcm", "succeeded" } }, { kind = "transfer", bytes = 2,
      history = { { t = 0, success = 0, failure = 0, pending = 1, bytes = 0 }, { t = 2, success = 0, failure = 0, pending = 1, bytes = 1 },
                  { t = 4, success = 1, failure = 0, pending = 0, bytes = 2 } } })
    assert.truthy(doc:find('data-series="bytes/s" data-points="3"', 1, true))
    assert.truthy(doc:find(">0.4 B/s<", 1, true))
    assert.truthy(doc:find(">2 B<", 1, true))
  end)

  it("says when the totals do not add up", function()
    local doc = page({ { "gs://b/a.dcm", "succeeded" }, { "gs://b/b.dcm", nil } })
    assert.truthy(doc:find("✗ does not add up", 1, true))
  end)

  it("is written whole through report.write", function()
    local dir = os.tmpname(); os.remove(dir); assert(os.execute("mkdir -p " .. dir))
    local r = report.build({ "gs://b/a.dcm" }, { ["gs://b/a.dcm"] = { outcome = "succeeded" } })
    assert(report.write(r, dir .. "/r.html", { format = "html", source = "gs://b/*.dcm" }))
    local f = assert(io.open(dir .. "/r.html", "rb"))
    local text = f:read("a"); f:close()
    assert.truthy(text:find("^<!DOCTYPE html>"))
    assert.truthy(text:find("</html>\n$"))
    os.execute("rm -rf " .. dir)
  end)
end)
