-- core.multipart_parser: streaming multipart/related (WADO-RS) parsing from Lua.
local core = require "dicomgcs.core"

local CT = 'multipart/related; type="application/dicom"; boundary=%s'

-- Build a multipart body; parts = { {headers = {"Name: v", ...}, body = "..."}, ... }.
local function build(boundary, parts, opts)
  opts = opts or {}
  local out = { opts.preamble and (opts.preamble .. "\r\n") or "" }
  for _, p in ipairs(parts) do
    out[#out + 1] = "--" .. boundary .. (opts.padding or "") .. "\r\n"
    for _, h in ipairs(p.headers or {}) do out[#out + 1] = h .. "\r\n" end
    out[#out + 1] = "\r\n" .. p.body .. "\r\n"
  end
  out[#out + 1] = "--" .. boundary .. "--" .. (opts.epilogue and ("\r\n" .. opts.epilogue) or "")
  return table.concat(out)
end

-- Feed `s` in chunks given by sizes(i) and collect parts; returns parts, done, err.
local function run(content_type, s, next_size)
  local p = assert(core.multipart_parser(content_type))
  local parts, done, pos = {}, false, 1
  local function take(events)
    for _, ev in ipairs(events) do
      if ev.type == "begin" then
        parts[#parts + 1] = { headers = ev.headers, content_type = ev.content_type,
          content_length = ev.content_length, content_location = ev.content_location, chunks = {} }
        assert.are.equal(#parts, ev.part)
      elseif ev.type == "data" then
        assert.are.equal(#parts, ev.part)
        assert.is_true(#ev.data > 0)
        table.insert(parts[#parts].chunks, ev.data)
      elseif ev.type == "end" then
        parts[#parts].ended = true
      elseif ev.type == "done" then
        done = true
      end
    end
  end
  while pos <= #s do
    local n = next_size()
    local events, err, partial = p:feed(s:sub(pos, pos + n - 1))
    if not events then
      take(partial)
      p:close()
      return parts, done, err
    end
    take(events)
    pos = pos + n
  end
  local ok, err = p:finish()
  p:close()
  for _, part in ipairs(parts) do part.body = table.concat(part.chunks) end
  return parts, done, (not ok) and err or nil
end

local function random_bytes(n, seed_alphabet)
  local t = {}
  for i = 1, n do
    if seed_alphabet then
      t[i] = seed_alphabet[math.random(#seed_alphabet)]
    else
      t[i] = string.char(math.random(0, 255))
    end
  end
  return table.concat(t)
end

-- A body must not contain its delimiter (RFC 2046), also not right at its start,
-- where the CRLF ending the headers doubles as the delimiter's CRLF.
local function safe_body(n, alphabet, boundary)
  boundary = boundary or "DcMgCs-7f3a"
  while true do
    local b = random_bytes(n, alphabet)
    if not ("\r\n" .. b .. "\r\n"):find("\r\n--" .. boundary, 1, true) then return b end
  end
end

describe("core.multipart_parser", function()
  local boundary = "DcMgCs-7f3a"
  local tricky = {
    "--DcMgCs-7f3a", "\r\n--DcMgCs-7f", "\r\n--", "\r\n-", "\r", "\n", "\r\n", "--", "DcMgCs-7f3a",
    "a", "b", "\0", "\255",
  }
  local parts, body

  before_each(function()
    math.randomseed(20240601)
    local dicom = io.open("fuzz/corpus/dicom_header/explicit_le", "rb")
    local dicom_bytes = dicom and dicom:read("a") or random_bytes(500)
    if dicom then dicom:close() end
    parts = {
      { headers = { "Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
          "Content-Length: " .. #dicom_bytes, "Content-Location: /studies/1/series/2/instances/3" },
        body = dicom_bytes },
      { headers = { "content-type: application/dicom", "X-Rep: a", "X-REP: b" },
        body = safe_body(120, tricky) },
      { headers = {}, body = "" },
      { headers = { "Content-Type: application/octet-stream" }, body = random_bytes(64) },
    }
    body = build(boundary, parts, { preamble = "ignored preamble", padding = " \t", epilogue = "ignored" })
  end)

  local function check(got, done, err)
    assert.is_nil(err)
    assert.is_true(done)
    assert.are.equal(#parts, #got)
    for i, want in ipairs(parts) do
      assert.is_true(got[i].ended)
      assert.are.equal(#want.body, #got[i].body, "part " .. i)
      assert.are.equal(want.body, got[i].body, "part " .. i)
    end
  end

  it("round-trips a body fed whole", function()
    local got, done, err = run(CT:format(boundary), body, function() return #body end)
    check(got, done, err)
    assert.are.equal("application/dicom; transfer-syntax=1.2.840.10008.1.2.1", got[1].content_type)
    assert.are.equal(#parts[1].body, got[1].content_length)
    assert.are.equal("/studies/1/series/2/instances/3", got[1].content_location)
    assert.are.equal("application/dicom", got[2].headers["content-type"])
    assert.are.equal("a, b", got[2].headers["x-rep"])
    assert.are.same({}, got[3].headers)
  end)

  it("round-trips in every chunk size from 1 to the body length", function()
    for size = 1, #body do
      local got, done, err = run(CT:format(boundary), body, function() return size end)
      check(got, done, err)
    end
  end)

  it("round-trips with random splits", function()
    for _ = 1, 200 do
      local got, done, err = run(boundary, body, function() return math.random(1, 97) end)
      check(got, done, err)
    end
  end)

  it("reports every truncated prefix at finish(), never as a framing error", function()
    local close_at = #body - #("--" .. boundary .. "--\r\nignored") -- last byte before the close delimiter
    for cut = 0, close_at + #boundary + 3, 7 do
      local _, done, err = run(boundary, body:sub(1, cut), function() return 13 end)
      assert.is_false(done)
      assert.is_string(err, "cut " .. cut)
      assert.matches("^multipart: stream ended", err)
      assert.matches("at byte " .. cut .. "$", err)
    end
  end)

  it("rejects malformed framing with the byte offset, keeping earlier events", function()
    local p = assert(core.multipart_parser(boundary))
    local events, err, partial = p:feed("--" .. boundary .. "\r\n\r\nabc\r\n--" .. boundary .. "Xjunk")
    assert.is_nil(events)
    assert.matches("boundary followed by byte 0x58 .* at byte %d+", err)
    assert.are.equal("begin", partial[1].type)
    assert.are.equal("abc", partial[2].data)
    local again, err2 = p:feed("more")
    assert.is_nil(again)
    assert.are.equal(err, err2)
    local ok, err3 = p:finish()
    assert.is_nil(ok)
    assert.are.equal(err, err3)
  end)

  it("rejects a Content-Length that disagrees with the body", function()
    local bad = build("b", { { headers = { "Content-Length: 10" }, body = "short" } })
    local _, _, err = run("b", bad, function() return 3 end)
    assert.matches("Content%-Length is 10", err)
  end)

  it("survives random junk without raising", function()
    for _ = 1, 300 do
      local junk = random_bytes(math.random(0, 200), tricky)
      local ok, got, done, err = pcall(run, boundary, junk, function() return math.random(1, 17) end)
      assert.is_true(ok, tostring(got))
      if not done then assert.is_string(err) end
    end
  end)

  it("takes the boundary from a Content-Type, quoted or not, or as is", function()
    assert.are.equal("a b:c", core.multipart_boundary('multipart/related; boundary="a b:c"; type="application/dicom"'))
    assert.are.equal("xyz", core.multipart_boundary("Multipart/Related;BOUNDARY=xyz"))
    local r, err = core.multipart_boundary("application/dicom; boundary=x")
    assert.is_nil(r)
    assert.is_string(err)
    assert.is_nil((core.multipart_boundary("multipart/related; type=x")))
    local p, perr = core.multipart_parser("multipart/related; type=x")
    assert.is_nil(p)
    assert.matches("boundary", perr)
    p, perr = core.multipart_parser(string.rep("x", 71))
    assert.is_nil(p)
    assert.matches("70", perr)
    p, perr = core.multipart_parser("bad\rboundary")
    assert.is_nil(p)
    assert.is_string(perr)
    assert.has_error(function() core.multipart_parser() end)
  end)

  it("closes: close(), <close>, __gc; a closed parser raises", function()
    local p = assert(core.multipart_parser("b"))
    assert.matches("^dicomgcs.MultipartParser %(", tostring(p))
    p:close()
    p:close()
    assert.are.equal("dicomgcs.MultipartParser (closed)", tostring(p))
    assert.has_error(function() p:feed("x") end, "attempt to use a closed multipart parser")
    assert.has_error(function() p:finish() end)
    local q
    do
      local scoped <close> = assert(core.multipart_parser("b"))
      q = scoped
    end
    assert.has_error(function() q:feed("x") end)
    for _ = 1, 100 do core.multipart_parser("b") end
    collectgarbage()
    collectgarbage()
  end)

  it("replays the multipart fuzz corpus without raising", function()
    local ls = io.popen("ls fuzz/corpus/multipart")
    local n = 0
    for name in ls:lines() do
      local f = assert(io.open("fuzz/corpus/multipart/" .. name, "rb"))
      local s = f:read("a")
      f:close()
      -- fuzz input: byte 1 = chunk size - 1, then a Content-Type line, then the body
      local chunk = s:byte(1) + 1
      local ct, rest = s:sub(2):match("^([^\n]*)\n?(.*)$")
      local arg = core.multipart_boundary(ct or "") and ct or "BOUNDARY"
      local ok, e = pcall(run, arg, rest or "", function() return chunk end)
      assert.is_true(ok, name .. ": " .. tostring(e))
      n = n + 1
    end
    ls:close()
    assert.is_true(n >= 10)
  end)
end)
