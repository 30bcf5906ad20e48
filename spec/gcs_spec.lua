local env = require "spec.support.env"
local file = require "spec.support.file"

local write, read = file.write_p, file.read_if_exists

describe("Cloud Storage", function()
  local c, bucket

  setup(function()
    c = env.client()
    bucket = env.unique("bkt")
    assert(c.storage:create_bucket(bucket))
  end)

  it("rejects an invalid bucket name before sending anything", function()
    local ok, err = c.storage:create_bucket("UPPER")
    assert.is_nil(ok)
    assert.truthy(err.message:find("'UPPER'", 1, true))
  end)

  it("uploads a folder, keeping relative paths, and lists it with the import wildcard", function()
    local dir = env.tmpdir("up")
    write(dir .. "/a.dcm", "A"); write(dir .. "/sub/b.dcm", "BB"); write(dir .. "/sub/deeper/c.txt", "C")
    local s = assert(c.storage:upload(dir, "gs://" .. bucket .. "/up/"))
    assert.are.equal(3, s.ok); assert.are.equal(0, s.failed)
    local names = {}
    for _, o in ipairs(assert(c.storage:match("gs://" .. bucket .. "/up/**.dcm"))) do names[#names + 1] = o.name end
    table.sort(names)
    assert.are.same({ "up/a.dcm", "up/sub/b.dcm" }, names)
    local top = assert(c.storage:match("gs://" .. bucket .. "/up/*.dcm"))
    assert.are.equal(1, #top)
    assert.are.equal("2", assert(c.storage:stat("gs://" .. bucket .. "/up/sub/b.dcm")).size)
  end)

  it("pages through a listing larger than one page", function()
    for i = 1, 7 do assert(c.storage:write(("gs://%s/paged/%02d"):format(bucket, i), tostring(i))) end
    local n = 0
    for _ in c.storage:objects(bucket, { prefix = "paged/", page_size = 3 }) do n = n + 1 end
    assert.are.equal(7, n)
  end)

  it("keeps names with spaces, plus signs and unicode intact", function()
    local uri = "gs://" .. bucket .. "/odd/a b+c#d é.dcm"
    assert(c.storage:write(uri, "odd"))
    assert.are.equal("odd", assert(c.storage:read(uri)))
    assert.are.equal("odd/a b+c#d é.dcm", assert(c.storage:stat(uri)).name)
  end)

  it("downloads a prefix into a folder, byte for byte", function()
    local dir = env.tmpdir("down")
    assert(c.storage:write("gs://" .. bucket .. "/dl/x/1.bin", "one"))
    assert(c.storage:write("gs://" .. bucket .. "/dl/2.bin", string.rep("\0\1\2", 1000)))
    local s = assert(c.storage:download("gs://" .. bucket .. "/dl/", dir))
    assert.are.equal(2, s.ok)
    assert.are.equal("one", read(dir .. "/x/1.bin"))
    assert.are.equal(string.rep("\0\1\2", 1000), read(dir .. "/2.bin"))
  end)

  it("never writes outside the destination folder for hostile object names, and goes on", function()
    local dir = env.tmpdir("hostile")
    local dest = dir .. "/dest"
    assert(c.storage:write("gs://" .. bucket .. "/evil/../../escaped.txt", "bad"))
    assert(c.storage:write("gs://" .. bucket .. "/evil/ok.txt", "good"))
    local s = assert(c.storage:download("gs://" .. bucket .. "/evil/", dest))
    assert.are.equal(1, s.ok)
    assert.are.equal(1, s.failed)
    assert.are.equal(2, #s.results)
    assert.is_nil(read(dir .. "/escaped.txt"))
    assert.is_nil(read(dest .. "/../escaped.txt"))
    assert.are.equal("good", read(dest .. "/ok.txt"))
    for _, r in ipairs(s.results) do
      if not r.ok then assert.truthy(tostring(r.err):find("'..' segment", 1, true)) end
    end
  end)

  it("reports a bucket that does not exist", function()
    local objs, err = c.storage:match("gs://no-such-bucket-" .. env.unique("x") .. "/**")
    assert.is_nil(objs)
    assert.are.equal(404, err.http_status)
  end)

  it("accounts for a local file that cannot be read and uploads the rest", function()
    local dir = env.tmpdir("vanish")
    write(dir .. "/a.bin", "a")
    local s = assert(c.storage:upload(dir, "gs://" .. bucket .. "/vanish/"))
    assert.are.equal(1, s.ok)
    local missing, err = c.storage:upload(dir .. "/nope", "gs://" .. bucket .. "/vanish/")
    assert.is_nil(missing)
    assert.truthy(err.message:find("nope", 1, true))
  end)

  it("deletes an object", function()
    local uri = "gs://" .. bucket .. "/del/x"
    assert(c.storage:write(uri, "x"))
    assert.is_true(assert(c.storage:delete(uri)))
    local _, err = c.storage:stat(uri)
    assert.are.equal(404, err.http_status)
  end)
  it("asks the server to filter with matchGlob, and decides with the local matcher", function()
    for _, n in ipairs{ "g/Example.dcm", "g/Example22.dcm", "g/Example1.dcm", "g/Example01.dcm", "g/sub/Example3.dcm",
                        "g/[x]1.dcm" } do
      assert(c.storage:write("gs://" .. bucket .. "/" .. n, "x"))
    end
    env.admin("DELETE", "requests")
    local function names(uri, opts)
      local out = {}
      for _, o in ipairs(assert(c.storage:match(uri, opts))) do out[#out + 1] = o.name end
      table.sort(out)
      return out
    end
    assert.are.same({ "g/Example.dcm", "g/Example01.dcm", "g/Example1.dcm", "g/Example22.dcm" },
      names("gs://" .. bucket .. "/g/Example*.dcm"))
    local listed = assert(env.admin("GET", "requests?path=matchGlob")).requests
    assert.are.equal(1, #listed)
    assert.truthy(listed[1].path:find("prefix=g%2FExample", 1, true))
    assert.are.same({ "g/Example1.dcm" }, names("gs://" .. bucket .. "/g/Example?.dcm"))
    assert.are.same({ "g/Example1.dcm" }, names("gs://" .. bucket .. "/g/Example?.dcm", { match_glob = false }))
    assert.are.same({ "g/Example.dcm", "g/Example01.dcm", "g/Example1.dcm", "g/Example22.dcm", "g/[x]1.dcm",
                      "g/sub/Example3.dcm" }, names("gs://" .. bucket .. "/g/**.dcm"))
    -- glob syntax of its own in the pattern: listed by prefix, matched locally ('[' is literal)
    env.admin("DELETE", "requests")
    assert.are.same({ "g/[x]1.dcm" }, names("gs://" .. bucket .. "/g/[x]?.dcm"))
    assert.are.equal(0, #assert(env.admin("GET", "requests?path=matchGlob")).requests)
  end)

  it("lists a superset of what every fixture pattern selects, then matches exactly (non-ASCII too)", function()
    local json = require "dicomgcs.json"
    local wildcard = require "dicomgcs.wildcard"
    local gcs = require "dicomgcs.gcs"
    local f = assert(io.open("spec/fixtures/wildcard_cases.json"))
    local cases = assert(json.decode(f:read("a")))
    f:close()
    local sb = env.unique("wsup")
    assert(c.storage:create_bucket(sb))
    local seen, all = {}, {}
    for _, k in ipairs(cases.matches) do
      if not seen[k.name] then
        seen[k.name] = true
        all[#all + 1] = k.name
        assert(c.storage:write("gs://" .. sb .. "/" .. k.name, "x"))
      end
    end
    local checked = {}
    for _, k in ipairs(cases.matches) do
      local p = k.pattern
      if not checked[p] then
        checked[p] = true
        local listed = {}
        for o in c.storage:objects(sb, { prefix = wildcard.literal_prefix(p), match_glob = gcs.server_glob(p) }) do
          listed[o.name] = true
        end
        local want, got = {}, {}
        for _, n in ipairs(all) do
          if wildcard.match(p, n) then
            want[#want + 1] = n
            assert.is_true(listed[n] == true, ("listing for %s misses %s"):format(p, n))
          end
        end
        for _, o in ipairs(assert(c.storage:match("gs://" .. sb .. "/" .. p))) do got[#got + 1] = o.name end
        table.sort(want); table.sort(got)
        assert.are.same(want, got)
      end
    end
    -- the fixture's own verdicts hold against the server (so a byte-wise '?' would fail here)
    for _, k in ipairs(cases.matches) do
      local hit = false
      for _, o in ipairs(assert(c.storage:match("gs://" .. sb .. "/" .. k.pattern))) do
        if o.name == k.name then hit = true end
      end
      assert.are.equal(k.match, hit, k.pattern .. " vs " .. k.name)
    end
  end)

  it("storage cp reports skipped files and storage rm previews with --dry-run", function()
    local dir = env.tmpdir("cli-skip")
    write(dir .. "/a.dcm", "A"); write(dir .. "/b.dcm", "B")
    local function cli(args)
      return env.run(("DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs %s --project=spec-project"):format(env.emulator().host, args), true)
    end
    local out, code = cli("storage cp -r " .. env.quote(dir) .. " gs://" .. bucket .. "/cli/")
    assert.are.equal(0, code, out)
    out, code = cli("storage cp -r " .. env.quote(dir) .. " gs://" .. bucket .. "/cli/")
    assert.are.equal(0, code, out)
    assert.truthy(out:find("Uploaded 2 of 2 file(s), 2 already there with the same checksum (0 B in ", 1, true), out)
    out, code = cli("storage rm -r --dry-run gs://" .. bucket .. "/cli/")
    assert.are.equal(0, code, out)
    -- gcloud's layout: the folder keeps its name under a URI ending in '/'
    local name = dir:match("([^/]+)$")
    assert.truthy(out:find("would delete gs://" .. bucket .. "/cli/" .. name .. "/a.dcm", 1, true), out)
    assert.are.equal(2, #assert(c.storage:match("gs://" .. bucket .. "/cli/**")))
    out, code = cli("storage rm -r gs://" .. bucket .. "/cli/")
    assert.are.equal(0, code, out)
    assert.are.equal(0, #assert(c.storage:match("gs://" .. bucket .. "/cli/**")))
  end)
end)
