-- Benchmark data (bench/stow.sh, bench/net.sh): N copies of one dcmtk-made instance of SIDE x SIDE
-- pixels, each with its own SOP Instance UID (same length), in DIR/iNNNNN.dcm.
--   lua5.4 bench/gen_instances.lua DIR N SIDE [UIDS]
-- Prints "STUDY_UID SIZE SERIES_UID"; UIDS, when given, receives the SOP Instance UIDs, one a line.
local testdata = require "dicomgcs.testdata"
local core = require "dicomgcs.core"
local dir, n, side, uids = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4]
local tpl = assert(testdata.generate{ dir = dir .. "/.tpl", studies = 1, series = 1, instances = 1, rows = side, cols = side,
  nested = false, uid_seed = "1" .. tostring(os.time()):sub(-9) })
local f = assert(io.open(tpl[1].path, "rb")); local bytes = f:read("a"); f:close()
local sop = tpl[1].sop_uid
local pieces, pos = {}, 1
while true do
  local i = bytes:find(sop, pos, true)
  if not i then break end
  pieces[#pieces + 1] = bytes:sub(pos, i - 1); pos = i + #sop
end
pieces[#pieces + 1] = bytes:sub(pos)
assert(#pieces == 3, "expected the SOP Instance UID twice (meta and dataset)")
local root = testdata.UID_ROOT .. ".9"
local width = #sop - #root
core.mkdir_p(dir)
local ul = uids and assert(io.open(uids, "w"))
for i = 1, n do
  local uid = root .. ("%0" .. width .. "d"):format(i)
  if ul then ul:write(uid, "\n") end
  local out = assert(io.open(("%s/i%05d.dcm"):format(dir, i), "wb"))
  out:write(pieces[1], uid, pieces[2], uid, pieces[3])
  out:close()
end
if ul then ul:close() end
os.execute("rm -rf '" .. dir .. "/.tpl'")
print(tpl[1].study_uid, #bytes, tpl[1].series_uid)
