--- RFC 3339 timestamps as Google sends them ("2026-11-25T13:02:20.123456789Z" or with an
-- offset), turned into seconds since the epoch so that times from different services compare.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.timestamp
-- @local
local timestamp = {}

-- Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm): no dependence on the
-- local time zone, unlike os.time.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function days_in_month(y, m)
  if m == 2 then return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

-- Whether the fields name a real moment: February 30th is not a date. A leap second (:60) is
-- allowed, as RFC 3339 allows it.
local function valid(y, mo, d, h, mi, sec)
  return mo >= 1 and mo <= 12 and d >= 1 and d <= days_in_month(y, mo) and h <= 23 and mi <= 59 and sec <= 60
end

--- Seconds since the epoch (a float, keeping the fraction), or nil for a malformed text.
function timestamp.parse(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if not valid(y, mo, d, h, mi, sec) then return nil end
  local frac, zone = rest:match("^(%.%d+)(.*)$")
  if not frac then frac, zone = "", rest end
  local offset
  if zone == "Z" or zone == "z" then
    offset = 0
  else
    local sign, oh, om = zone:match("^([+-])(%d%d):(%d%d)$")
    if not sign or tonumber(oh) > 23 or tonumber(om) > 59 then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "+" and 1 or -1)
  end
  local t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
  return t + (frac ~= "" and tonumber("0" .. frac) or 0)
end

--- Seconds since the epoch now, with the fraction (os.time has whole seconds only).
function timestamp.now()
  return require("dicomgcs.core").unixtime()
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

--- An HTTP `Date` header (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT") as seconds since the
-- epoch, or nil: the server's clock, to compare with times the server wrote.
function timestamp.parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, h, mi, sec = s:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  y, d, h, mi, sec = tonumber(y), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if not valid(y, MONTHS[mon], d, h, mi, sec) then return nil end
  return days_from_civil(y, MONTHS[mon], d) * 86400 + h * 3600 + mi * 60 + sec
end

return timestamp
