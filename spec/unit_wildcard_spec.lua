-- dicomgcs.wildcard beyond the shared case table (spec/wildcard_spec.lua): hostile patterns, names
-- and URIs; no server needed.
local wildcard = require "dicomgcs.wildcard"

describe("wildcard with hostile input", function()
  it("treats Lua pattern magic characters literally", function()
    for _, lit in ipairs{ "a%d", "a.b", "a(b)", "[x]", "a+b", "a-b", "^a$", "%", "a%" } do
      assert.is_true(wildcard.match("dir/" .. lit, "dir/" .. lit), lit)
    end
    assert.is_false(wildcard.match("dir/a.b", "dir/axb"))
    assert.is_false(wildcard.match("dir/a%d", "dir/a1"))
    assert.is_false(wildcard.match("dir/[x]", "dir/x"))
    assert.is_true(wildcard.match("dir/%*.dcm", "dir/%abc.dcm"))
  end)

  it("lets * and ? stop at /, and ** cross it", function()
    assert.is_false(wildcard.match("a/*.dcm", "a/b/c.dcm"))
    assert.is_false(wildcard.match("a/?", "a//"))
    assert.is_true(wildcard.match("a/**.dcm", "a/b/c/d.dcm"))
    assert.is_true(wildcard.match("a/**", "a/"))
    assert.is_false(wildcard.match("a/**.dcm", "b/a/x.dcm"))
  end)

  it("matches ? against one UTF-8 character, not one byte", function()
    assert.is_true(wildcard.match("x?.dcm", "xé.dcm"))
    assert.is_true(wildcard.match("x?.dcm", "x😀.dcm"))
    assert.is_false(wildcard.match("x??.dcm", "xé.dcm"))
  end)

  it("never matches past the end or before the start of a name", function()
    assert.is_false(wildcard.match("a/b", "xa/b"))
    assert.is_false(wildcard.match("a/b", "a/bx"))
    assert.is_false(wildcard.match("a/b", "a/b\n"))
  end)

  it("compile returns nil, Error for a bad pattern instead of raising", function()
    local pred, err = wildcard.compile("a/**/b")
    assert.is_nil(pred)
    assert.are.equal("input", err.kind)
    local p2, err2 = wildcard.compile("")
    assert.is_nil(p2)
    assert.are.equal("input", err2.kind)
  end)

  it("handles long names and many stars", function()
    local name = "d/" .. ("a"):rep(10000) .. ".dcm"
    assert.is_true(wildcard.match("d/*.dcm", name))
    assert.is_false(wildcard.match("d/*.dcmx", name))
    assert.is_true(wildcard.match("d/" .. ("*a"):rep(20) .. "*.dcm", "d/" .. ("xa"):rep(20) .. ".dcm"))
    assert.is_false(wildcard.match("d/" .. ("*a"):rep(20) .. "*.dcm", "d/" .. ("xa"):rep(19) .. ".dcm"))
  end)
end)

describe("wildcard.parse_uri with hostile input", function()
  local function refused(uri, opts)
    local b, err = wildcard.parse_uri(uri, opts)
    assert.is_nil(b, tostring(uri))
    assert.are.equal("input", err.kind)
  end

  it("refuses what is not a gs:// URI", function()
    for _, u in ipairs{ "", "gs:/b/x", "GS://bucket/x", "s3://bucket/x", "https://storage.googleapis.com/b/x",
                        " gs://bucket/x", "bucket/x" } do
      refused(u)
    end
    refused(nil); refused(42); refused({})
  end)

  it("refuses bad bucket names", function()
    for _, u in ipairs{ "gs:///x", "gs://ab/x", "gs://Bucket/x", "gs://-bucket/x", "gs://bucket-/x",
                        "gs://" .. ("b"):rep(64) .. "/x", "gs://buck et/x", "gs://bu%2Fcket/x" } do
      refused(u)
    end
  end)

  it("refuses NUL, CR and LF in the object part", function()
    for _, u in ipairs{ "gs://bucket/a\0b", "gs://bucket/a\rb", "gs://bucket/a\nb" } do
      refused(u)
    end
  end)

  it("needs an object unless a prefix is allowed", function()
    refused("gs://bucket")
    refused("gs://bucket/")
    assert.are.same({ "bucket", "" }, { wildcard.parse_uri("gs://bucket/", { allow_empty_object = true }) })
    assert.are.same({ "bucket", "" }, { wildcard.parse_uri("gs://bucket", { allow_empty_object = true }) })
  end)

  it("keeps the object part as it is, dots and all", function()
    assert.are.same({ "my.bucket_1", "../a/./b//c" }, { wildcard.parse_uri("gs://my.bucket_1/../a/./b//c") })
  end)
end)
