-- Reading an HTML run report (as written, or as Chromium's DOM after its script ran) in specs.
local page = {}

-- The part of `dom` from the element with id `id` to the end of that section (or the page).
function page.part(dom, id, stop)
  local a = dom:find('id="' .. id .. '"', 1, true)
  assert(a, "no element with id " .. id)
  local b = stop and dom:find(stop, a, true) or #dom
  return dom:sub(a, b)
end

-- The number shown for `key` (matched, succeeded, ...) in the totals cards with id `cards_id`.
function page.total(dom, cards_id, key)
  local s = page.part(dom, cards_id, "</div></div></div>")
  local text = s:match('data%-total="' .. key .. '">([%d,]+)<')
  return text and tonumber((text:gsub(",", ""))) or 0
end

-- The number of points of series `name` of the first chart after element `id`.
function page.series_points(dom, id, name)
  local s = page.part(dom, id)
  local n, pts = s:match('<polyline class="series [^"]*" data%-series="' .. name .. '" data%-points="(%d+)" points="([^"]*)"')
  assert(n, "no " .. name .. " series after " .. id)
  local pairs_n = 0
  for _ in pts:gmatch("[%d%.%-]+,[%d%.%-]+") do pairs_n = pairs_n + 1 end
  assert(tonumber(n) == pairs_n, ("series %s says %s points and has %d"):format(name, n, pairs_n))
  return pairs_n
end

-- The rows of the files table as the page's script filled it: a list of lists of cell texts.
function page.table_rows(dom)
  local body = dom:match('<tbody id="files%-body">(.-)</tbody>')
  assert(body, "no files table body: did the page's script run?")
  local rows = {}
  for tr in body:gmatch("<tr>(.-)</tr>") do
    local cells = {}
    for td in tr:gmatch("<td[^>]*>(.-)</td>") do cells[#cells + 1] = td end
    rows[#rows + 1] = cells
  end
  return rows
end

-- How many times `pattern` occurs in `s`.
function page.count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

return page
