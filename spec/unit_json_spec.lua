-- dicomgcs.json: lua-cjson with the fixes Google's APIs need (integers back, empty arrays, errors
-- as values); no server needed.
local json = require "dicomgcs.json"

describe("json.decode", function()
  it("gives integers back for whole numbers, and keeps real fractions", function()
    local v = assert(json.decode('{"a":1,"b":[2,3.0],"c":{"d":4.5},"e":-0,"f":1e3}'))
    assert.are.equal("integer", math.type(v.a))
    assert.are.equal("integer", math.type(v.b[1]))
    assert.are.equal("integer", math.type(v.b[2]))
    assert.are.equal(4.5, v.c.d)
    assert.are.equal("float", math.type(v.c.d))
    assert.are.equal("integer", math.type(v.f))
    assert.are.equal(1000, v.f)
  end)

  it("keeps Google's int64 strings as strings", function()
    local v = assert(json.decode('{"size":"9223372036854775807","generation":"1700000000000001"}'))
    assert.are.equal("9223372036854775807", v.size)
    assert.are.equal("1700000000000001", v.generation)
  end)

  it("returns null as json.null, not nil", function()
    local v = assert(json.decode('{"a":null,"b":[null,1]}'))
    assert.are.equal(json.null, v.a)
    assert.are.equal(json.null, v.b[1])
    assert.are.equal(1, v.b[2])
  end)

  it("returns nil and a message naming the input for bad JSON, never raising", function()
    for _, text in ipairs{ "", "{", "[1,]", "{'a':1}", "nul", "{\"a\":1}garbage", "\0", ("["):rep(100000),
                           '{"a":"\\ud800"}x', "<html>502 Bad Gateway</html>" } do
      local v, err = json.decode(text, "the bucket listing")
      assert.is_nil(v, ("%q"):format(text:sub(1, 30)))
      assert.truthy(err:find("^the bucket listing: invalid JSON"), err)
    end
  end)

  it("refuses what is not text", function()
    for _, v in ipairs{ 1, true, {}, json.null } do
      local r, err = json.decode(v, "X")
      assert.is_nil(r)
      assert.truthy(err:find("^X: expected JSON text, got "), err)
    end
    local r, err = json.decode(nil)
    assert.is_nil(r)
    assert.truthy(err:find("^JSON: expected JSON text, got nil"), err)
  end)

  it("decodes scalars at the top level", function()
    assert.are.equal(5, json.decode("5"))
    assert.are.equal("x", json.decode('"x"'))
    assert.are.equal(false, json.decode("false"))
  end)
end)

describe("json.encode", function()
  it("writes json.array() as [] even when empty, and other empty tables as {}", function()
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal("{}", json.encode({}))
    assert.are.equal('{"items":[]}', json.encode({ items = json.array() }))
    assert.are.equal("[1,2]", json.encode(json.array{ 1, 2 }))
    assert.are.equal('[[],{}]', json.encode(json.array{ json.array(), {} }))
  end)

  it("does not leave its empty-array marker in a string that looks like it", function()
    local text = json.encode({ s = "[]", t = "@@x@@" })
    assert.are.same({ s = "[]", t = "@@x@@" }, json.decode(text))
  end)

  it("round-trips strings with quotes, control characters and UTF-8", function()
    local s = 'a"b\\c\n\t\0\1é😀/'
    assert.are.equal(s, json.decode(json.encode({ s = s })).s)
  end)

  it("does not change the caller's table", function()
    local t = { a = json.array(), b = { c = json.array() } }
    json.encode(t)
    assert.are.equal(0, #t.a)
    assert.are.equal("table", type(t.b.c))
    assert.are.equal("[]", json.encode(t.b.c))
  end)

  it("raises on what JSON cannot hold, naming json.encode", function()
    local loop = {}
    loop.self = loop
    assert.has_error(function() json.encode(loop) end, "json.encode: a table refers to itself")
    for _, v in ipairs{ function() end, coroutine.create(function() end), 0 / 0, math.huge } do
      local ok, err = pcall(json.encode, { v = v })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("json.encode", 1, true), tostring(err))
    end
  end)

  it("encodes integers without a fraction", function()
    assert.are.equal('{"n":12345678901}', json.encode({ n = 12345678901 }))
  end)
end)
