--- Small inline-SVG charts for the HTML run report: a line chart (counters over time, with
-- marked moments) and a stacked bar (totals). Pure Lua, no dependencies, so the report stays one
-- self-contained file. Every text that reaches the SVG goes through `svg.escape`.
-- @module dicomgcs.report.svg
local svg = {}

local ENTITIES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- Escape a value for XML/HTML text and attribute values (quotes included). Control characters
-- other than tab and newline are dropped: XML does not allow them.
function svg.escape(v)
  if v == nil then return "" end
  return (tostring(v):gsub("[&<>\"']", ENTITIES):gsub("[\0-\8\11\12\14-\31\127]", ""))
end
local esc = svg.escape

-- Coordinates: two decimals are below a pixel's resolution and keep the file small.
local function num(x)
  local s = ("%.2f"):format(x):gsub("%.?0+$", "")
  if s == "-0" then s = "0" end
  return s
end
svg.num = num

--- A linear scale from the domain [d0, d1] to the range [r0, r1]; a zero-width domain maps to
-- the middle of the range, so that one point or a flat series still draws.
function svg.scale(d0, d1, r0, r1)
  if d1 == d0 then
    return function() return (r0 + r1) / 2 end
  end
  local k = (r1 - r0) / (d1 - d0)
  return function(v) return r0 + (v - d0) * k end
end

-- 1, 2, 2.5 or 5 times a power of ten, the smallest such step that gives at most `count` steps.
local function nice_step(span, count)
  local raw = span / count
  local p = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs{ 1, 2, 2.5, 5, 10 } do
    if m * p >= raw then return m * p end
  end
  return 10 * p
end

--- Round tick values covering [lo, hi] (about `count` of them): returns ticks, nice_lo, nice_hi.
function svg.ticks(lo, hi, count)
  count = count or 5
  if hi < lo then lo, hi = hi, lo end
  if hi == lo then
    if lo == 0 then hi = 1 else lo, hi = math.min(0, lo), math.max(0, hi) end
    if hi == lo then hi = lo + 1 end
  end
  local step = nice_step(hi - lo, count)
  local first, last = math.floor(lo / step) * step, math.ceil(hi / step) * step
  local t = {}
  local n = math.floor((last - first) / step + 0.5)
  for i = 0, n do t[#t + 1] = first + i * step end
  return t, first, last
end

local TIME_STEPS = { 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400 }

--- Ticks for elapsed seconds in [0, span]: whole seconds, minutes or hours a clock reads well
-- (every 15 min rather than every 41:40), about `count` of them. Short spans use svg.ticks.
function svg.time_ticks(span, count)
  count = count or 6
  if span < 120 then return (svg.ticks(0, span, count)) end
  local step = TIME_STEPS[#TIME_STEPS]
  for _, s in ipairs(TIME_STEPS) do
    if span / s <= count then step = s; break end
  end
  local t = {}
  for v = 0, span, step do t[#t + 1] = v end
  return t
end

--- A count with thousands separators: 100000 -> "100,000"; fractions keep one decimal.
function svg.count(v)
  local neg = v < 0 and "-" or ""
  v = math.abs(v)
  local int = math.floor(v)
  local frac = v - int
  local s = tostring(math.tointeger(int) or int)
  s = s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  if frac > 0.05 then s = s .. ("%.1f"):format(frac):sub(2) end
  return neg .. s
end

--- Elapsed seconds as a short clock: 42 -> "0:42", 3725 -> "1:02:05".
function svg.duration(s)
  s = math.floor(s + 0.5)
  local h, m, sec = s // 3600, (s % 3600) // 60, s % 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, sec) end
  return ("%d:%02d"):format(m, sec)
end

--- A formatter of elapsed seconds fit for a span: hundredths of a second under 1 s, tenths under
-- 10 s, seconds under 2 minutes, a clock beyond.
function svg.elapsed_format(span)
  if span < 1 then return function(v) return ("%.2fs"):format(v) end end
  if span < 10 then return function(v) return ("%.1fs"):format(v) end end
  if span < 120 then return function(v) return ("%ds"):format(math.floor(v + 0.5)) end end
  return svg.duration
end

local function points_attr(list, sx, sy)
  local out = {}
  for i, p in ipairs(list) do out[i] = num(sx(p[1])) .. "," .. num(sy(p[2])) end
  return table.concat(out, " ")
end

--- A line chart. `opts`: `width`, `height` (viewBox units, default 720x260), `title` (accessible
-- name), `series` = { {name=, class=, points = {{x, y}, ...}}, ... } (x ascending), `markers` =
-- { {x=, kind=, label=}, ... } drawn as vertical lines, `x_format`/`y_format` for tick labels
-- (default elapsed time and counts), `y_unit` (ticks are round multiples of it, default 1), `x0`
-- (the origin of x, default the first x).
-- Each series is one `<polyline class="series …" data-series=NAME data-points=N>` whose `points`
-- hold one pair per data point; small series also get a dot per point.
function svg.line_chart(opts)
  local W, H = opts.width or 720, opts.height or 260
  local ml, mr, mt, mb = 64, 16, 18, 34
  local y_format = opts.y_format or svg.count
  local xs, ys = {}, {}
  for _, s in ipairs(opts.series or {}) do
    for _, p in ipairs(s.points) do xs[#xs + 1] = p[1]; ys[#ys + 1] = p[2] end
  end
  for _, m in ipairs(opts.markers or {}) do xs[#xs + 1] = m.x end
  local out = { ('<svg class="chart line-chart" viewBox="0 0 %d %d" role="img" aria-label="%s" ' ..
    'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'):format(W, H, esc(opts.title or "chart")) }
  if opts.title then out[#out + 1] = "<title>" .. esc(opts.title) .. "</title>" end
  if #xs == 0 then
    out[#out + 1] = ('<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>'):format(ml, mt, W - ml - mr, H - mt - mb)
    out[#out + 1] = ('<text class="empty" x="%s" y="%s" text-anchor="middle">no data recorded</text>'):format(
      num((W + ml - mr) / 2), num((H + mt - mb) / 2))
    out[#out + 1] = "</svg>"
    return table.concat(out)
  end
  local xmin, xmax = math.huge, -math.huge
  for _, x in ipairs(xs) do xmin, xmax = math.min(xmin, x), math.max(xmax, x) end
  local x0 = opts.x0 or xmin
  xmin = math.min(xmin, x0)
  local x_format = opts.x_format or svg.elapsed_format(xmax - xmin)
  local ymax = 0
  for _, y in ipairs(ys) do ymax = math.max(ymax, y) end
  -- ticks are round in units of `y_unit` (e.g. 1048576 for MiB/s), then scaled back
  local unit = opts.y_unit or 1
  local yt, ylo, yhi = svg.ticks(0, ymax / unit, 4)
  for i, v in ipairs(yt) do yt[i] = v * unit end
  ylo, yhi = ylo * unit, yhi * unit
  local xt = xmin == x0 and svg.time_ticks(xmax - x0, 6) or svg.ticks(xmin - x0, xmax - x0, 6)
  local sx0 = svg.scale(xmin - x0, xmax - x0, ml, W - mr)
  local sx = function(x) return sx0(x - x0) end
  local sy = svg.scale(ylo, yhi, H - mb, mt)
  out[#out + 1] = '<g class="grid">'
  for _, v in ipairs(yt) do
    local y = num(sy(v))
    out[#out + 1] = ('<line x1="%d" x2="%d" y1="%s" y2="%s"/><text class="tick y" x="%d" y="%s" text-anchor="end" ' ..
      'dominant-baseline="middle">%s</text>'):format(ml, W - mr, y, y, ml - 6, y, esc(y_format(v)))
  end
  for _, v in ipairs(xt) do
    if v >= xmin - x0 - 1e-9 and v <= xmax - x0 + 1e-9 then
      out[#out + 1] = ('<text class="tick x" x="%s" y="%d" text-anchor="middle">%s</text>'):format(
        num(sx0(v)), H - mb + 16, esc(x_format(v)))
    end
  end
  out[#out + 1] = "</g>"
  for _, m in ipairs(opts.markers or {}) do
    local x = num(sx(m.x))
    out[#out + 1] = ('<g class="marker %s"><title>%s</title><line x1="%s" x2="%s" y1="%d" y2="%d"/>' ..
      '<path d="M%s %d l-5 -8 h10 z"/></g>'):format(esc("marker-" .. (m.kind or "event")),
      esc((m.kind or "event") .. " at +" .. x_format(m.x - x0) .. (m.label and (": " .. m.label) or "")),
      x, x, mt, H - mb, x, mt)
  end
  for _, s in ipairs(opts.series or {}) do
    local n = #s.points
    out[#out + 1] = ('<polyline class="series %s" data-series="%s" data-points="%d" points="%s"><title>%s</title></polyline>'):format(
      esc(s.class or ""), esc(s.name), n, points_attr(s.points, sx, sy), esc(s.name))
    if n <= (opts.max_dots or 120) then
      local dots = { ('<g class="dots %s">'):format(esc(s.class or "")) }
      for _, p in ipairs(s.points) do
        dots[#dots + 1] = ('<circle cx="%s" cy="%s" r="2.5"/>'):format(num(sx(p[1])), num(sy(p[2])))
      end
      dots[#dots + 1] = "</g>"
      out[#out + 1] = table.concat(dots)
    end
  end
  out[#out + 1] = ('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>'):format(ml, W - mr, H - mb, H - mb)
  out[#out + 1] = "</svg>"
  return table.concat(out)
end

--- A horizontal stacked bar: `opts.parts` = { {label=, value=, class=}, ... } drawn left to right
-- in proportion to `opts.total` (default their sum). Zero parts draw nothing; each drawn part is a
-- `<rect class="part CLASS" data-value=N>` with a tooltip.
function svg.stacked_bar(opts)
  local W, H = opts.width or 720, opts.height or 28
  local total = opts.total
  if not total then
    total = 0
    for _, p in ipairs(opts.parts) do total = total + p.value end
  end
  local out = { ('<svg class="chart bar-chart" viewBox="0 0 %d %d" role="img" aria-label="%s" ' ..
    'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'):format(W, H, esc(opts.title or "totals")) }
  out[#out + 1] = ('<rect class="track" x="0" y="0" width="%d" height="%d" rx="4"/>'):format(W, H)
  if total > 0 then
    local x = 0
    for _, p in ipairs(opts.parts) do
      if p.value > 0 then
        local w = W * p.value / total
        out[#out + 1] = ('<rect class="part %s" data-value="%d" x="%s" y="0" width="%s" height="%d"><title>%s: %s</title></rect>'):format(
          esc(p.class or ""), p.value, num(x), num(w), H, esc(p.label), esc(svg.count(p.value)))
        x = x + w
      end
    end
  end
  out[#out + 1] = "</svg>"
  return table.concat(out)
end

return svg
