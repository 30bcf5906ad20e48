-- How dicomgcs reaches its users besides the source tree: installed as a rock by LuaRocks
-- (scripts/test-luarocks), and embedded in a C host program (examples/embed/).
local env = require "spec.support.env"
local file = require "spec.support.file"

local root = env.root()
local HOST = root .. "/build/dicomgcs_host"

describe("scripts/test-luarocks", function()
  it("installs the rockspec into a fresh tree where require 'dicomgcs' and 'dicomgcs --help' work", function()
    local out, code = env.run("scripts/test-luarocks", true)
    assert(code == 0, "scripts/test-luarocks failed:\n" .. out)
    assert.matches("test-luarocks: OK", out, 1, true)
    assert.matches("installed 'dicomgcs --help' runs", out, 1, true)
  end)
end)

describe("examples/embed (build/dicomgcs_host)", function()
  local built, build_log
  -- Build once, through the example's own Makefile (works with or without the top Makefile
  -- including examples/embed/embed.mk).
  local function build()
    if built == nil then
      local out, code = env.run("make -s -C examples/embed", true)
      built, build_log = code == 0, out
    end
    assert(built, "make -C examples/embed failed:\n" .. tostring(build_log))
  end

  -- Run the host; returns output (stdout and stderr), exit code.
  local function host(script, ...)
    local args = {}
    for _, a in ipairs{ ... } do args[#args + 1] = env.quote(a) end
    return env.run(("cd %s && env DICOMGCS_EMULATOR_HOST=%s %s %s %s"):format(env.quote(env.tmpdir("host")),
      env.quote(env.emulator().host), env.quote(HOST), env.quote(script), table.concat(args, " ")), true)
  end

  local function script(text)
    return file.write(env.tmpdir("script") .. "/script.lua", text)
  end

  it("builds warnings-clean (-Wall -Wextra -Werror) from the core's objects", function()
    build()
  end)

  it("runs examples/embed/pipeline.lua against the emulator with the core built in", function()
    build()
    local out, code = host(root .. "/examples/embed/pipeline.lua", env.unique("p"))
    assert(code == 0, "the pipeline failed:\n" .. out)
    assert.matches("core built into the host", out, 1, true)
    assert.matches("OK: 4 objects in gs://dicomgcs-embed-", out, 1, true)
  end)

  it("gives the script its arguments in arg and ...", function()
    build()
    local out, code = host(script("print(arg[0]:match('[^/]+$'), #arg, arg[1], arg[2], select('#', ...), ...)"),
      "one", "two words")
    assert(code == 0, out)
    assert.equals("script.lua\t2\tone\ttwo words\t2\tone\ttwo words\n", out)
  end)

  it("exits 1 with the error message and a traceback when the script raises", function()
    build()
    local out, code = host(script("local function stage() error('pipeline stage broke') end\nstage()\n"))
    assert.equals(1, code)
    assert.matches("script.lua:1: pipeline stage broke", out, 1, true)
    assert.matches("stack traceback:", out, 1, true)
    assert.matches("in local 'stage'", out, 1, true)
  end)

  it("prints a raised dicomgcs.Error through its __tostring and exits 1", function()
    build()
    local out, code = host(script([[
local dicomgcs = require "dicomgcs"
local c = assert(dicomgcs.client{ project = "spec-project", location = "us-central1" })
assert(c.storage:get_bucket("dicomgcs-no-such-bucket-here"))
]]))
    assert.equals(1, code)
    assert.matches("HTTP 404", out, 1, true)
    assert.matches("stack traceback:", out, 1, true)
  end)

  it("exits 1 on a script that cannot be loaded, and keeps a script's os.exit status", function()
    build()
    local out, code = host(script("x = = 1\n"))
    assert.equals(1, code)
    assert.matches("unexpected symbol", out, 1, true)
    out, code = host(root .. "/no/such/script.lua")
    assert.equals(1, code)
    assert.matches("cannot open", out, 1, true)
    out, code = host(script("os.exit(3)"))
    assert.equals(3, code, out)
  end)
end)
