-- The README and docs/CONTRACTS.md against the code, with no server: every call the README's Lua
-- API names exists, and the public/internal split in CONTRACTS matches the modules' LDoc headers.
local file = require "spec.support.file"

local readme = file.read("README.md")
local contracts = file.read("docs/CONTRACTS.md")

-- The value a dotted path names, starting from a table; nil when any step is missing.
local function walk(t, path)
  for step in path:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[step]
  end
  return t
end

-- Module names from a CONTRACTS bullet: "`dicomgcs.client`, `.operation`" -> full names.
local function modules_of(line)
  local out = {}
  for name in line:gmatch("`(%.?[%w_.]+)`") do
    if name:sub(1, 1) == "." then name = "dicomgcs" .. name end
    if name:match("^dicomgcs") then out[#out + 1] = name end
  end
  return out
end

local function header_of(module)
  local rel = module == "dicomgcs" and "init" or module:gsub("^dicomgcs%.", ""):gsub("%.", "/")
  local text = file.read_if_exists("lua/dicomgcs/" .. rel .. ".lua")
    or file.read_if_exists("lua/dicomgcs/" .. rel .. "/init.lua")
  assert(text, "no source for " .. module)
  return text:match("^(.-\n)[^-]") or text
end

describe("README's Lua API", function()
  it("names only functions that exist: require(\"dicomgcs.X\").f and dicomgcs.X.f", function()
    local seen = 0
    for module, fn in readme:gmatch('require%("(dicomgcs[%w_.]*)"%)[.:]([%a_][%w_]*)') do
      assert.is_function(require(module)[fn], ("README: require(%q).%s"):format(module, fn))
      seen = seen + 1
    end
    local top = require "dicomgcs"
    for path in readme:gmatch("`dicomgcs%.([%a_][%w_.]*[%w_])[{(]") do
      assert.is_not_nil(walk(top, path), "README: dicomgcs." .. path .. " is nil")
      seen = seen + 1
    end
    for path in readme:gmatch("`dicomgcs%.([%a_][%w_]*%.[%a_][%w_]*)%(") do
      assert.is_function(walk(top, path), "README: dicomgcs." .. path)
      seen = seen + 1
    end
    assert.is_true(seen >= 8, "the README's API table was not found (" .. seen .. " calls)")
  end)
end)

describe("public and internal modules (docs/CONTRACTS.md)", function()
  local public = modules_of(assert(contracts:match("\n%- Public: (.-)\n%- Internal")))
  local internal = modules_of(assert(contracts:match("\n%- Internal: (.-)\nA new module")))

  it("lists both kinds", function()
    assert.is_true(#public >= 10, #public .. " public modules")
    assert.is_true(#internal >= 5, #internal .. " internal modules")
  end)

  it("public modules load and are not marked internal", function()
    for _, m in ipairs(public) do
      assert.is_table(require(m) or nil, m)
      local h = header_of(m)
      assert.is_nil(h:find("\n%-%- @local\n"), m .. " is public but marked @local")
    end
  end)

  it("internal Lua modules say so in their LDoc header", function()
    for _, m in ipairs(internal) do
      if m ~= "dicomgcs.core" and m ~= "dicomgcs.version" then
        local h = header_of(m)
        assert.truthy(h:find("\n%-%- @local\n"), m .. " lacks @local")
        assert.truthy(h:find("Internal"), m .. " lacks the Internal note")
      end
    end
  end)

  it("every module under auth/, gcs/ and cli/ is marked internal (but the public dicomgcs.auth and .gcs)", function()
    local core = require "dicomgcs.core"
    for _, dir in ipairs{ "auth", "gcs", "cli" } do
      for _, e in ipairs(assert(core.listdir("lua/dicomgcs/" .. dir))) do
        -- auth/init.lua and gcs/init.lua are the public modules dicomgcs.auth and dicomgcs.gcs
        if e.name:match("%.lua$") and not (e.name == "init.lua" and dir ~= "cli") then
          local text = file.read("lua/dicomgcs/" .. dir .. "/" .. e.name)
          assert.truthy(text:find("\n%-%- @local\n"), dir .. "/" .. e.name .. " lacks @local")
        end
      end
    end
  end)
end)
