-- Calls every function and method of dicomgcs.core with hostile arguments. Run as a child
-- process (spec/binding_args_spec.lua) so that a crash shows as a signal, not a dead busted.
-- Functions and classes are enumerated, not listed, so new ones are covered: every function
-- of the module table, and every metatable the binding registered under "dicomgcs.*".
-- Prints "CALL name" before each call (the last line names the culprit of a crash), then
-- "EXPECT-FAIL name" for targeted calls that returned instead of raising, then "done N".
local core = require "dicomgcs.core"

local out = io.stdout
out:setvbuf("line")

local HUGE = { math.maxinteger, math.mininteger, 2 ^ 63, -2 ^ 63, 1e300, -1e300, math.huge,
               -math.huge, 0 / 0, -1, 2 ^ 31, -2 ^ 31 - 1 }
local VALUES = { true, false, 0, 1.5, "", "\0", "a\0b", {}, { nil, "x" }, { 1, nil, 3 },
                 function() end, coroutine.create(function() end), io.stdout }
for _, h in ipairs(HUGE) do VALUES[#VALUES + 1] = h end

local calls, unexpected = 0, {}

local function call(name, f, ...)
  calls = calls + 1
  out:write("CALL ", name, "\n")
  return pcall(f, ...)
end

-- A targeted call that must raise a Lua error (never return, never crash).
local function must_raise(name, f, ...)
  local ok = call(name, f, ...)
  if ok then unexpected[#unexpected + 1] = name end
end

-- Objects to call methods on: one live and one finished/closed instance of each class.
local function instances()
  local list = {}
  local e = core.engine{}
  list[#list + 1] = e
  local closed = core.engine{}
  closed:close()
  list[#list + 1] = closed
  list[#list + 1] = core.token_cache()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "'")
  list[#list + 1] = core.multipart_sink(dir)
  local f = assert(core.atomic_open(dir .. "/torture"))
  list[#list + 1] = f
  local f2 = assert(core.atomic_open(dir .. "/torture2"))
  f2:abort()
  list[#list + 1] = f2
  list[#list + 1] = core.multipart_parser("b")
  local p2 = core.multipart_parser("b")
  p2:close()
  list[#list + 1] = p2
  return list
end

-- Every value that can stand in one argument slot.
local function sweep(name, f, prefix)
  prefix = prefix or {}
  local n = #prefix
  call(name .. "()", f, table.unpack(prefix, 1, n))
  for _, v in ipairs(VALUES) do
    for slot = 1, 3 do
      local args = {}
      for i = 1, n do args[i] = prefix[i] end
      for i = n + 1, n + slot - 1 do args[i] = "" end
      args[n + slot] = v
      call(("%s(slot %d: %s)"):format(name, slot, type(v)), f, table.unpack(args, 1, n + slot))
    end
  end
end

-- 1. every function of the module table
local fnames = {}
for k, v in pairs(core) do if type(v) == "function" then fnames[#fnames + 1] = k end end
table.sort(fnames)
for _, k in ipairs(fnames) do
  if k ~= "sleep" then sweep("core." .. k, core[k]) end
end
-- sleep would really sleep for a valid value: only values outside 0..86400 and wrong types
for _, v in ipairs(VALUES) do
  if type(v) == "number" then
    if v ~= v or v < 0 or v > 86400 then must_raise("core.sleep(" .. tostring(v) .. ")", core.sleep, v) end
  elseif type(v) ~= "string" then
    must_raise("core.sleep(" .. type(v) .. ")", core.sleep, v)
  end
end

-- 2. every method and metamethod of every class the binding registered, with every
-- instance as self (right class, wrong class, closed) and hostile arguments
local reg = debug.getregistry()
local classes = {}
for k, v in pairs(reg) do
  if type(k) == "string" and k:match("^dicomgcs%.") and type(v) == "table" then classes[#classes + 1] = k end
end
table.sort(classes)
local objs = instances()
for _, cname in ipairs(classes) do
  local mt = reg[cname]
  local fns = {}
  for k, v in pairs(mt) do if type(v) == "function" then fns[#fns + 1] = { k, v } end end
  if type(mt.__index) == "table" then
    for k, v in pairs(mt.__index) do if type(v) == "function" then fns[#fns + 1] = { k, v } end end
  end
  table.sort(fns, function(a, b) return a[1] < b[1] end)
  for _, kv in ipairs(fns) do
    local mname, f = cname .. ":" .. kv[1], kv[2]
    -- a wrong self is always an error
    for _, bad in ipairs{ 1, "x", {}, io.stdout } do must_raise(mname .. " on " .. type(bad), f, bad) end
    -- gc/close metamethods are run last, on their own instances (see below)
    if kv[1] ~= "__gc" and kv[1] ~= "__close" and kv[1] ~= "close" then
      for _, o in ipairs(objs) do sweep(mname, f, { o }) end
    end
  end
end
-- closing twice, collecting after close: idempotent
for _, o in ipairs(instances()) do
  local mt = getmetatable(o)
  for _, m in ipairs{ "close", "__close", "__gc" } do
    local f = mt[m] or (type(mt.__index) == "table" and mt.__index[m])
    if f then call(mt.__name .. ":" .. m, f, o); call(mt.__name .. ":" .. m .. " again", f, o) end
  end
end

-- 3. request tables: holes, wrong types, huge numbers, embedded NULs (core.fetch and the
-- engine's submit/request parse the same table); none may reach the network.
local URL = "http://127.0.0.1:9/never"
local bad_requests = {
  { "headers hole", { url = URL, headers = { "A: x", nil, "B: y" } } },
  { "headers hole at 1", { url = URL, headers = { nil, "B: y" } } },
  { "headers non-string", { url = URL, headers = { "A: x", 5 } } },
  { "headers table item", { url = URL, headers = { {} } } },
  { "headers map", { url = URL, headers = { A = "x" } } },
  { "headers NUL", { url = URL, headers = { "A: x\0\r\nEvil: y" } } },
  { "headers CRLF", { url = URL, headers = { "A: x\r\nEvil: y" } } },
  { "headers no colon", { url = URL, headers = { "A x" } } },
  { "url NUL", { url = "http://127.0.0.1:9/\0@evil" } },
  { "url number", { url = 5 } },
  { "url missing", { method = "GET" } },
  { "method NUL", { url = URL, method = "GET\0X" } },
  { "output_file NUL", { url = URL, output_file = "x\0y" } },
  { "body_file NUL", { url = URL, body_file = "x\0y" } },
  { "noproxy NUL", { url = URL, noproxy = "a\0b" } },
  { "body_parts hole", { url = URL, body_parts = { { data = "a" }, nil, { data = "b" } } } },
  { "body_parts non-table", { url = URL, body_parts = { "a" } } },
  { "body_parts file NUL", { url = URL, body_parts = { { file = "x\0y" } } } },
  { "body_parts negative length", { url = URL, body_parts = { { file = "/dev/null", length = -1 } } } },
  { "body_parts both", { url = URL, body_parts = { { file = "/dev/null", data = "x" } } } },
  { "output_offset negative", { url = URL, output_file = "/nonexistent/x", output_offset = -5 } },
  { "output_offset float", { url = URL, output_file = "/nonexistent/x", output_offset = 0.5 } },
  { "body_offset huge float", { url = URL, body_file = "/dev/null", body_offset = 2 ^ 70 } },
  { "retry max_attempts huge", { url = URL, retry = { max_attempts = math.maxinteger } } },
  { "retry delay nan", { url = URL, retry = { base_delay_ms = 0 / 0 } } },
  { "retry delay inf", { url = URL, retry = { max_delay_ms = math.huge } } },
  { "retry delay negative", { url = URL, retry = { deadline_ms = -1 } } },
  { "retry key number", { url = URL, retry = { 5 } } },
  { "timeout huge", { url = URL, timeout = { connect = 1e300 } } },
  { "timeout nan", { url = URL, timeout = { total = 0 / 0 } } },
  { "timeout negative", { url = URL, timeout = { idle = -1 } } },
  { "timeout not a table", { url = URL, timeout = 5 } },
  { "auth number", { url = URL, auth = 1 } },
  { "hash unknown", { url = URL, hash = "md5" } },
  { "unknown field", { url = URL, bogus = 1 } },
  { "non-string key", { url = URL, [1] = "x" } },
  { "two bodies", { url = URL, body = "a", body_file = "/dev/null" } },
}
local eng = core.engine{}
for _, r in ipairs(bad_requests) do
  must_raise("fetch: " .. r[1], core.fetch, r[2])
  must_raise("engine:submit: " .. r[1], eng.submit, eng, r[2])
  must_raise("engine:request: " .. r[1], eng.request, eng, r[2])
end
-- huge but well-typed: the engine may answer nil, err instead of raising; it must not crash
local huge_offset = { url = URL, body_parts = { { file = "/dev/null", offset = math.maxinteger } },
                      timeout = { connect = 1, total = 2 } }
call("fetch: body_parts huge offset", core.fetch, huge_offset)
call("engine:request: body_parts huge offset", eng.request, eng, huge_offset)
eng:close()

local bad_engines = {
  { "concurrency huge", { concurrency = math.maxinteger } },
  { "concurrency zero", { concurrency = 0 } },
  { "concurrency float", { concurrency = 1.5 } },
  { "user_agent CRLF", { user_agent = "ua\r\nEvil: y" } },
  { "user_agent NUL", { user_agent = "ua\0\r\nEvil: y" } },
  { "ca_file NUL", { ca_file = "a\0b" } },
  { "proxy NUL", { proxy = "http://a\0b" } },
  { "connect_timeout nan", { connect_timeout = 0 / 0 } },
  { "idle_timeout huge", { idle_timeout = 1e300 } },
  { "token_provider string", { token_provider = "x" } },
  { "non-string key", { "x" } },
}
for _, r in ipairs(bad_engines) do must_raise("engine: " .. r[1], core.engine, r[2]) end

-- 4. other functions' tables and paths
must_raise("join_files parts hole", core.join_files, "/nonexistent/d", { "/dev/null", nil, "/dev/null" })
must_raise("join_files parts NUL", core.join_files, "/nonexistent/d", { "a\0b" })
must_raise("join_files dest NUL", core.join_files, "a\0b", {})
must_raise("hash_file path NUL", core.hash_file, "/dev/null\0x")
must_raise("hash_file negative length", core.hash_file, "/dev/null", { length = -5 })
must_raise("hash_file huge offset float", core.hash_file, "/dev/null", { offset = 2 ^ 70 })
must_raise("mkdir_p NUL", core.mkdir_p, "d\0x")
must_raise("stat NUL", core.stat, "/\0x")
must_raise("listdir NUL", core.listdir, "/\0x")
must_raise("preallocate NUL", core.preallocate, "p\0x", 0)
must_raise("isatty huge", core.isatty, math.maxinteger)
must_raise("random_hex huge", core.random_hex, math.maxinteger)
must_raise("crc32c_combine negative", core.crc32c_combine, 0, 0, -1)
if core.backoff then must_raise("backoff huge attempts", core.backoff, "retry", math.maxinteger) end
if core.atomic_write then must_raise("atomic_write path NUL", core.atomic_write, "x\0y", "data") end
if core.mkdir_under then must_raise("mkdir_under NUL", core.mkdir_under, "/tmp", "a\0b") end

for _, name in ipairs(unexpected) do out:write("EXPECT-FAIL ", name, "\n") end
out:write("done ", calls, "\n")
