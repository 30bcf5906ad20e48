local json = require "dicomgcs.json"
local wildcard = require "dicomgcs.wildcard"

local function cases()
  local f = assert(io.open("spec/fixtures/wildcard_cases.json"))
  local t = assert(json.decode(f:read("a"), "wildcard_cases.json"))
  f:close()
  return t
end
local table_of = cases()

describe("wildcard.match (shared case table)", function()
  for _, c in ipairs(table_of.matches) do
    it(("%s %s %s"):format(c.pattern, c.match and "matches" or "does not match", c.name), function()
      assert.are.equal(c.match, wildcard.match(c.pattern, c.name))
    end)
  end
end)

describe("wildcard.literal_prefix", function()
  for _, c in ipairs(table_of.prefixes) do
    it(("of %s is '%s'"):format(c.pattern, c.prefix), function()
      assert.are.equal(c.prefix, wildcard.literal_prefix(c.pattern))
    end)
  end
end)

describe("wildcard.check", function()
  for _, c in ipairs(table_of.invalid) do
    it(("rejects '%s' (%s)"):format(c.pattern, c.why), function()
      local ok, err = wildcard.check(c.pattern)
      assert.is_nil(ok)
      assert.are.equal("input", err.kind)
      if c.pattern ~= "" then assert.truthy(err.message:find(c.pattern, 1, true)) end
    end)
  end
  it("raises from match() on an invalid pattern", function()
    assert.has_error(function() wildcard.match("a/**/b", "a/x/b") end)
  end)
end)

describe("wildcard.parse_uri", function()
  for _, c in ipairs(table_of.uris) do
    if c.error then
      it(("rejects %s (%s) naming the URI"):format(c.uri, c.error), function()
        local b, err = wildcard.parse_uri(c.uri)
        assert.is_nil(b)
        assert.are.equal("input", err.kind)
        assert.truthy(tostring(err):find(c.uri, 1, true) or c.uri:sub(-1) == "/")
      end)
    else
      it(("splits %s"):format(c.uri), function()
        local b, o = wildcard.parse_uri(c.uri)
        assert.are.equal(c.bucket, b)
        assert.are.equal(c.object, o)
      end)
    end
  end
end)
