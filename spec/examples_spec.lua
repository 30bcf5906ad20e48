-- Every example in examples/*.lua says in its header comment whether `make test` runs it
-- (examples/README.md): `-- example: runs in make test` or `-- example: not run in make test
-- (REASON)`. The ones that run are run here, one by one, as a user would run them:
-- `lua5.4 examples/X.lua WORKDIR` against the emulator, and must exit 0.
local env = require "spec.support.env"

local root = env.root()
local RUN, SKIP = "runs in make test", "not run in make test"
local TIMEOUT = tonumber(os.getenv("DICOMGCS_EXAMPLE_TIMEOUT") or "") or 600

-- The `-- example: ...` declaration in a file's leading comment block (nil when there is none).
local function declaration(path)
  local f = assert(io.open(path))
  local found
  for line in f:lines() do
    if not line:match("^%-%-") and not line:match("^#!") then break end
    local what = line:match("^%-%-%s*example:%s*(.-)%s*$")
    if what then found = what break end
  end
  f:close()
  return found
end

local examples = {}
do
  local out = env.run("ls examples/*.lua 2>/dev/null")
  for path in out:gmatch("[^\n]+") do
    examples[#examples + 1] = { path = path, name = path:match("([^/]+)%.lua$"), decl = declaration(path) }
  end
end

describe("examples/*.lua", function()
  it("are found, and import_export.lua is one that runs", function()
    local runs
    for _, e in ipairs(examples) do
      if e.path == "examples/import_export.lua" then runs = e.decl == RUN end
    end
    assert.is_true(runs, "examples/import_export.lua must carry the line '-- example: " .. RUN .. "'")
  end)

  for _, e in ipairs(examples) do
    local decl = e.decl
    if decl == RUN then
      it(e.name .. ".lua runs against the emulator and exits 0 #slow", function()
        local work = env.tmpdir("example-" .. e.name)
        local cmd = ("cd %s && env DICOMGCS_EMULATOR_HOST=%s %s timeout %d lua5.4 %s %s"):format(env.quote(root),
          env.quote(env.emulator().host), env.lua_paths(), TIMEOUT, env.quote(e.path), env.quote(work .. "/work"))
        local out, code = env.run(cmd, true)
        if code == 124 then out = out .. ("\n(killed after %d s; DICOMGCS_EXAMPLE_TIMEOUT)"):format(TIMEOUT) end
        assert(code == 0, ("%s exited with status %s:\n%s"):format(e.path, tostring(code), out))
      end)
    else
      it(e.name .. ".lua declares whether make test runs it", function()
        assert(decl and decl:sub(1, #SKIP) == SKIP and decl:match("%(.+%)"),
          ("%s: put '-- example: %s' or '-- example: %s (REASON)' in its header comment " ..
           "(see examples/README.md); found %s"):format(e.path, RUN, SKIP,
           decl and ("'-- example: " .. decl .. "'") or "no '-- example:' line"))
      end)
    end
  end
end)
