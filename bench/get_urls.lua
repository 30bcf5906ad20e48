-- The dicomgcs side of bench/net.sh's GET figures (QIDO/metadata): every URL of LIST (one a line)
-- fetched through one engine, concurrency chosen by the engine unless CONCURRENCY > 0.
--   lua5.4 bench/get_urls.lua LIST [CONCURRENCY]
-- Exits non-zero unless every answer was a 2xx; prints the engine's final cap on stderr.
local core = require "dicomgcs.core"

local list, conc = arg[1], tonumber(arg[2] or "0")
assert(list, "usage: get_urls.lua LIST [CONCURRENCY]")
local eng = core.engine{ concurrency = conc > 0 and conc or nil }
local headers = { "Accept: application/dicom+json" }
local n = 0
for url in io.lines(list) do
  if url ~= "" then n = n + 1; eng:submit{ method = "GET", url = url, headers = headers } end
end
local bad, top = 0, 0
while eng:pending() > 0 do
  for _, d in ipairs(eng:step(1000)) do
    if not (d.res and d.res.status < 300) then
      bad = bad + 1
      if bad <= 3 then io.stderr:write("GET failed: ", d.res and ("HTTP " .. d.res.status) or d.err.message, "\n") end
    end
  end
  local cap = eng:stats().cap
  if cap > top then top = cap end
end
local retries = eng:stats().retries
eng:close()
if os.getenv("BENCH_VERBOSE") then io.stderr:write(("get_urls: %d GETs, highest cap %d, %d retries\n"):format(n, top, retries)) end
if bad > 0 then io.stderr:write(("%d of %d GETs failed\n"):format(bad, n)); os.exit(1) end
