-- Issue #14 §4: no argument from Lua may crash the binding. spec/support/binding_torture.lua
-- calls every function and method of dicomgcs.core (enumerated, so new ones are covered) with
-- wrong types, holes, huge numbers and embedded NULs, in a child process: a crash shows as a
-- signal there, and the last CALL line it printed names the culprit.
-- This process's module paths, made absolute (the child runs in a scratch folder), so that the
-- child loads the same core.so (e.g. the ASan build under `make sanitize`).
local function absolute(paths, root)
  local out = {}
  for entry in paths:gmatch("[^;]+") do
    out[#out + 1] = entry:sub(1, 1) == "/" and entry or (root .. "/" .. entry:gsub("^%./", ""))
  end
  return table.concat(out, ";")
end

local function run_torture()
  local root = assert(io.popen("pwd")):read("l")
  local tmp = os.tmpname()
  os.remove(tmp)
  assert(os.execute("mkdir -p '" .. tmp .. "'"))
  local cmd = ("cd '%s' && LUA_PATH_5_4='%s' LUA_CPATH_5_4='%s' " ..
    "timeout 300 lua5.4 '%s/spec/support/binding_torture.lua' 2>&1; echo \"exit=$?\""):format(tmp,
    absolute(package.path, root), absolute(package.cpath, root), root)
  local p = assert(io.popen(cmd))
  local outp = p:read("a")
  p:close()
  os.execute("rm -rf '" .. tmp .. "'")
  return outp
end

describe("dicomgcs.core arguments (issue #14 §4)", function()
  local outp
  setup(function() outp = run_torture() end)

  it("survives every function and method called with hostile arguments", function()
    local last
    for line in outp:gmatch("[^\n]+") do if line:match("^CALL ") then last = line end end
    local code = tonumber(outp:match("exit=(%d+)%s*$"))
    assert.are.equal(0, code, "the child died (exit " .. tostring(code) .. ") after " .. tostring(last) ..
      "\n" .. outp:sub(-600))
    assert.truthy(outp:match("\ndone (%d+)"), outp:sub(-600))
    assert.is_true(tonumber(outp:match("\ndone (%d+)")) > 1000)
  end)

  it("raises a Lua error for each targeted bad argument (holes, wrong types, NULs, huge values)", function()
    local bad = {}
    for name in outp:gmatch("EXPECT%-FAIL ([^\n]+)") do bad[#bad + 1] = name end
    assert.are.same({}, bad)
  end)

  it("the issue's probe: a hole in headers is a Lua error naming the field", function()
    local core = require "dicomgcs.core"
    local ok, err = pcall(core.fetch, { url = "http://127.0.0.1:9/", headers = { "A: x", nil, "B: y" } })
    assert.is_false(ok)
    assert.matches("headers", tostring(err))
  end)
end)
