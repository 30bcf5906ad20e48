-- The dicomgcs side of bench/transport.sh: upload files to a sink through one engine.
--   lua5.4 bench/upload_files.lua URL CONCURRENCY FILE...
--   lua5.4 bench/upload_files.lua URL CONCURRENCY @LIST      (file names, one a line, in LIST)
-- CONCURRENCY 0: the engine chooses it (its default).
-- Every file is sent (body_file, streamed from disk) to URL/<index> with method $UPLOAD_METHOD
-- (default POST) on one engine with that concurrency, draining step(). Exits non-zero unless
-- every upload got a 2xx.
local core = require "dicomgcs.core"

local url, conc = arg[1], tonumber(arg[2])
assert(url and conc and arg[3], "usage: upload_files.lua URL CONCURRENCY FILE... | @LIST")
local method = os.getenv("UPLOAD_METHOD") or "POST"
local files = {}
if arg[3]:sub(1, 1) == "@" then
  for l in io.lines(arg[3]:sub(2)) do if l ~= "" then files[#files + 1] = l end end
else
  for i = 3, #arg do files[#files + 1] = arg[i] end
end

local eng = core.engine{ concurrency = conc > 0 and conc or nil }
local headers = { "Content-Type: application/octet-stream" }
for i, f in ipairs(files) do
  eng:submit{ method = method, url = url .. "/" .. i, headers = headers, body_file = f }
end
local bad = 0
while eng:pending() > 0 do
  for _, d in ipairs(eng:step(1000)) do
    if not (d.res and d.res.status < 300) then
      bad = bad + 1
      if bad <= 3 then
        io.stderr:write("upload failed: ", d.res and ("HTTP " .. d.res.status) or d.err.message, "\n")
      end
    end
  end
end
eng:close()
if bad > 0 then io.stderr:write(("%d of %d uploads failed\n"):format(bad, #files)); os.exit(1) end
