-- Headless Chromium for the specs that look at a page as a person would: the DOM after the
-- page's scripts ran, and screenshots. `chromium.path()` is nil where it is not installed.
local env = require "spec.support.env"

local chromium = {}

local found
--- The Chromium executable, or nil (the caller then marks its test pending, not passed).
-- DICOMGCS_CHROMIUM names another browser binary; DICOMGCS_CHROMIUM=none acts as if there was none.
function chromium.path()
  if found == nil then
    local want = os.getenv("DICOMGCS_CHROMIUM")
    if want == "none" then found = false
    elseif want and want ~= "" then found = want
    else
      local out = env.run("command -v chromium || command -v chromium-browser")
      found = out:match("^(%S+)") or false
    end
  end
  return found or nil
end

chromium.missing = "Chromium is not installed (scripts/install-deps installs the Debian package chromium)"

-- Each run gets its own profile folder, so that runs in parallel never share a lock. The
-- browser runs without LD_PRELOAD: under `make sanitize` the preloaded ASan runtime would
-- instrument Chromium too, which then spins forever; the page is not what is being checked there.
local function run(args)
  local profile = env.tmpdir("chromium")
  return env.run(("env -u LD_PRELOAD %s --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run " ..
    "--user-data-dir=%s %s 2>/dev/null"):format(env.quote(chromium.path()), env.quote(profile), args))
end

--- The serialized DOM of a local HTML file after its scripts ran (with a virtual-time budget).
function chromium.dom(path)
  local out, code = run("--virtual-time-budget=5000 --dump-dom " .. env.quote("file://" .. path))
  assert(code == 0, "chromium --dump-dom failed with status " .. tostring(code))
  return out
end

--- Save a PNG screenshot of a local HTML file at a window size of `w` x `h` CSS pixels.
function chromium.screenshot(path, png, w, h)
  os.remove(png)
  local _, code = run(("--virtual-time-budget=5000 --window-size=%d,%d --screenshot=%s %s"):format(
    w, h, env.quote(png), env.quote("file://" .. path)))
  assert(code == 0, "chromium --screenshot failed with status " .. tostring(code))
  local f = assert(io.open(png, "rb"), "no screenshot written to " .. png)
  local magic = f:read(8)
  f:close()
  assert(magic == "\137PNG\r\n\26\n", png .. " is not a PNG")
  return png
end

return chromium
