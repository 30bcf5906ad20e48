-- The dicomgcs side of bench/transport.sh: upload files to a sink through one engine.
--   lua5.4 bench/upload_files.lua URL CONCURRENCY FILE...     (or: ... -  and file names on stdin)
-- Every file is POSTed (body_file, streamed) to URL/<index>; the bodies are read by the sink.
-- Exits non-zero unless every upload got a 2xx.
local core = require "dicomgcs.core"

local url, conc = arg[1], tonumber(arg[2])
assert(url and conc, "usage: upload_files.lua URL CONCURRENCY FILE... | -")
local files = {}
if arg[3] == "-" then
  for l in io.lines() do if l ~= "" then files[#files + 1] = l end end
else
  for i = 3, #arg do files[#files + 1] = arg[i] end
end

local eng = core.engine{ concurrency = conc }
local headers = { "Content-Type: application/octet-stream" }
for i, f in ipairs(files) do
  eng:submit{ method = "POST", url = url .. "/" .. i, headers = headers, body_file = f }
end
local ok, bad = 0, 0
while eng:pending() > 0 do
  for _, d in ipairs(eng:step(1000)) do
    if d.res and d.res.status < 300 then ok = ok + 1
    else
      bad = bad + 1
      if bad <= 3 then io.stderr:write("upload failed: ", d.res and ("HTTP " .. d.res.status) or d.err.message, "\n") end
    end
  end
end
eng:close()
if bad > 0 then io.stderr:write(("%d of %d uploads failed\n"):format(bad, #files)); os.exit(1) end
