-- Bulk transfers against the emulator: resumable uploads (and resuming after a dropped
-- connection), checksums, skipping what is already there, ranged downloads, bad names,
-- vanished files, missing buckets and permission errors: one clear error per object, the rest goes on.
local core = require "dicomgcs.core"
local env = require "spec.support.env"
local file = require "spec.support.file"

local write, read = file.write_p, file.read_if_exists
local random_bytes, requests = file.bytes, env.requests

describe("Cloud Storage transfers", function()
  local c, bucket
  local MIB = 1024 * 1024

  setup(function()
    c = env.client()
    bucket = env.unique("xfer")
    assert(c.storage:create_bucket(bucket))
  end)
  after_each(function() env.admin("DELETE", "faults") end)

  it("uploads large files through a resumable session, streamed, and they come back byte for byte", function()
    local dir = env.tmpdir("res")
    local big = random_bytes(3 * MIB + 123)
    write(dir .. "/big.bin", big); write(dir .. "/small.dcm", "small")
    env.admin("DELETE", "requests")
    local s = assert(c.storage:upload(dir, "gs://" .. bucket .. "/res/", { resumable_threshold = MIB }))
    assert.are.equal(2, s.ok); assert.are.equal(0, s.failed)
    local starts = 0
    for _, r in ipairs(requests("uploadType=resumable")) do if r.method == "POST" then starts = starts + 1 end end
    assert.are.equal(1, starts)
    local obj = assert(c.storage:stat("gs://" .. bucket .. "/res/big.bin"))
    assert.are.equal(tostring(#big), obj.size)
    assert.are.equal(assert(core.hash_file(dir .. "/big.bin", { crc32c = true })).crc32c, obj.crc32c)
    assert.are.equal("application/dicom", assert(c.storage:stat("gs://" .. bucket .. "/res/small.dcm")).contentType)
    local out = env.tmpdir("res-down")
    assert.are.equal(2, assert(c.storage:download("gs://" .. bucket .. "/res/", out)).ok)
    assert.are.equal(big, read(out .. "/big.bin"))
  end)

  it("uploads in 256 KiB-multiple chunks when asked, with 308 between them", function()
    local dir = env.tmpdir("chunks")
    local data = random_bytes(MIB + 1000)
    write(dir .. "/c.bin", data)
    env.admin("DELETE", "requests")
    local s = assert(c.storage:upload(dir .. "/c.bin", "gs://" .. bucket .. "/chunks/c.bin",
      { resumable_threshold = 1, chunk_size = 262144, checksum = "both" }))
    assert.are.equal(1, s.ok)
    local puts, incomplete = 0, 0
    for _, r in ipairs(requests("upload_id")) do
      if r.method == "PUT" then puts = puts + 1; if r.status == 308 then incomplete = incomplete + 1 end end
    end
    assert.are.equal(5, puts)
    assert.are.equal(4, incomplete)
    assert.are.equal(data, assert(c.storage:read("gs://" .. bucket .. "/chunks/c.bin")))
    assert.has_error(function() c.storage:upload(dir, "gs://" .. bucket .. "/x/", { chunk_size = 1000 }) end,
      "upload: option 'chunk_size' must be a positive multiple of 262144 (256 KiB)")
    assert.has_error(function() c.storage:upload(dir, "gs://" .. bucket .. "/x/", { chunksize = 1 }) end,
      "upload: unknown option 'chunksize'")
  end)

  it("resumes from the server's Range after the connection drops mid-body", function()
    local dir = env.tmpdir("drop")
    local data = random_bytes(4 * MIB)
    write(dir .. "/d.bin", data)
    assert(env.admin("POST", "faults", { path = "^/upload/", method = "PUT", resetRequestAfterBytes = 1500000, count = 2 }))
    local s = assert(c.storage:upload(dir, "gs://" .. bucket .. "/drop/", { resumable_threshold = MIB }))
    assert.are.equal(1, s.ok, s.results[1].err and tostring(s.results[1].err))
    -- the connection was cut; dicomgcs asked where to go on (libcurl may also have resent a request
    -- whose reused connection died before any answer, which the server's Range makes harmless)
    assert.is_true(assert(env.admin("GET", "faults")).faults[1].fired >= 1)
    assert.is_true(s.results[1].resumed >= 1 or #requests("upload_id") >= 3)
    assert.are.equal(data, assert(c.storage:read("gs://" .. bucket .. "/drop/d.bin")))
  end)

  it("skips objects already there with the same checksum, and uploads what changed", function()
    local dir = env.tmpdir("skip")
    write(dir .. "/a.dcm", "AAA"); write(dir .. "/b.dcm", "BBB"); write(dir .. "/sub/c.dcm", "CCC")
    local first = assert(c.storage:upload(dir, "gs://" .. bucket .. "/skip/"))
    assert.are.equal(3, first.ok); assert.are.equal(0, first.skipped)
    write(dir .. "/b.dcm", "BBB changed")
    local again = assert(c.storage:upload(dir, "gs://" .. bucket .. "/skip/"))
    assert.are.equal(3, again.ok); assert.are.equal(2, again.skipped)
    assert.are.equal("BBB changed", assert(c.storage:read("gs://" .. bucket .. "/skip/b.dcm")))
    local forced = assert(c.storage:upload(dir, "gs://" .. bucket .. "/skip/", { skip_same = false, checksum = "md5" }))
    assert.are.equal(0, forced.skipped)
  end)

  it("downloads large objects as parallel ranges written into one verified file", function()
    local data = random_bytes(5 * MIB + 17)
    assert(c.storage:write("gs://" .. bucket .. "/ranged/r.bin", data))
    env.admin("DELETE", "requests")
    local out = env.tmpdir("ranged")
    local s = assert(c.storage:download("gs://" .. bucket .. "/ranged/", out, { ranged_threshold = MIB, range_size = MIB }))
    assert.are.equal(1, s.ok, s.results[1].err and tostring(s.results[1].err))
    assert.are.equal(data, read(out .. "/r.bin"))
    local gets = 0
    for _, r in ipairs(requests("alt=media")) do if r.status == 206 then gets = gets + 1 end end
    assert.are.equal(6, gets)
    assert.are.equal("r.bin\n", (env.run("ls " .. env.quote(out))))
  end)

  it("rewrites a range at its offset when its connection is cut, and keeps no partial file on failure", function()
    local data = random_bytes(3 * MIB + 5)
    assert(c.storage:write("gs://" .. bucket .. "/cut/r.bin", data))
    assert(env.admin("POST", "faults", { path = "/o/cut", method = "GET", resetAfterBytes = 300000, count = 1, skip = 1 }))
    local out = env.tmpdir("cut")
    env.admin("DELETE", "requests")
    local s = assert(c.storage:download("gs://" .. bucket .. "/cut/", out, { ranged_threshold = MIB, range_size = MIB }))
    assert.are.equal(1, s.ok, s.results[1].err and tostring(s.results[1].err))
    assert.is_true(assert(env.admin("GET", "faults")).faults[1].fired >= 1)
    assert.are.equal(5, #requests("alt=media"))   -- 4 ranges, one of them twice
    assert.is_true(read(out .. "/r.bin") == data, "the downloaded file differs")
    env.admin("DELETE", "faults")
    assert(env.admin("POST", "faults", { path = "/o/cut", method = "GET", status = 403, count = 1, skip = 2 }))
    local again = env.tmpdir("cut-fail")
    s = assert(c.storage:download("gs://" .. bucket .. "/cut/", again, { ranged_threshold = MIB, range_size = MIB }))
    assert.are.equal(1, s.failed)
    assert.are.equal(403, s.results[1].err.http_status)
    assert.are.equal("", (env.run("ls " .. env.quote(again))))
  end)

  it("fails a download whose CRC32C differs (ranged or not) and keeps no file", function()
    local transfer = require "dicomgcs.gcs.transfer"
    local data = random_bytes(3 * MIB + 5)
    assert(c.storage:write("gs://" .. bucket .. "/bad/r.bin", data))
    local out = env.tmpdir("badcrc")
    for _, ranged in ipairs{ MIB, 64 * MIB } do
      local obj = { name = "bad/r.bin", size = tostring(#data), crc32c = "AAAAAA==" }
      local s = transfer.download(c.storage, { obj }, bucket, function() return out .. "/r.bin" end,
        { ranged_threshold = ranged, range_size = MIB })
      assert.are.equal(1, s.failed)
      assert.are.equal("checksum", s.results[1].err.kind)
      assert.matches("CRC32C mismatch", tostring(s.results[1].err))
      assert.are.equal("", (env.run("ls " .. env.quote(out))))
    end
    -- the right CRC32C passes, both ways
    for _, ranged in ipairs{ MIB, 64 * MIB } do
      local obj = { name = "bad/r.bin", size = tostring(#data), crc32c = core.crc32c_b64(core.crc32c(data)) }
      local s = transfer.download(c.storage, { obj }, bucket, function() return out .. "/r.bin" end,
        { ranged_threshold = ranged, range_size = MIB })
      assert.are.equal(1, s.ok, s.results[1].err and tostring(s.results[1].err))
      assert.is_true(read(out .. "/r.bin") == data)
      os.remove(out .. "/r.bin")
    end
    assert(c.storage:delete("gs://" .. bucket .. "/bad/r.bin"))
  end)

  it("refuses object names that would escape the folder, and downloads the rest", function()
    local function put_raw(name)
      local res = assert(core.fetch{ method = "POST", body = "x", headers = { "Content-Type: text/plain" },
        url = env.emulator().url .. "/upload/storage/v1/b/" .. bucket .. "/o?uploadType=media&name=" ..
          require("dicomgcs.http").escape(name) })
      assert.are.equal(200, res.status)
    end
    put_raw("bad/ok.txt"); put_raw("bad/x/../../../escape.txt"); put_raw("bad//abs.txt"); put_raw("bad/nul\0.txt")
    local root = env.tmpdir("bad")
    local s = assert(c.storage:download("gs://" .. bucket .. "/bad/", root .. "/out"))
    assert.are.equal(4, #s.results)
    assert.are.equal(1, s.ok); assert.are.equal(3, s.failed)
    for _, r in ipairs(s.results) do
      if not r.ok then assert.truthy(tostring(r.err):find("refusing to write", 1, true)) end
    end
    assert.are.equal("x", read(root .. "/out/ok.txt"))
    assert.is_nil(read(root .. "/escape.txt"))
  end)

  it("reports a file that shrinks mid-upload for that file only", function()
    local dir = env.tmpdir("vanish")
    -- larger than the loopback socket buffers, so the server's stall holds the sender mid-file
    write(dir .. "/a.dcm", "AAA"); write(dir .. "/big.bin", random_bytes(40 * MIB)); write(dir .. "/z.dcm", "ZZZ")
    assert(env.admin("POST", "faults", { path = "^/upload/", method = "PUT", stallMs = 800, count = 1 }))
    os.execute("(sleep 0.3; truncate -s 1000 " .. env.quote(dir .. "/big.bin") .. ") &")
    local s = assert(c.storage:upload(dir, "gs://" .. bucket .. "/vanish/", { resumable_threshold = MIB }))
    assert.are.equal(2, s.ok); assert.are.equal(1, s.failed)
    local bad = s.results[2]
    assert.are.equal(dir .. "/big.bin", bad.source)
    assert.truthy(tostring(bad.err):find("big.bin", 1, true), tostring(bad.err))
  end)

  it("reports a file removed after the folder was listed", function()
    local dir = env.tmpdir("gone")
    write(dir .. "/1.dcm", "1"); write(dir .. "/2.dcm", "2"); write(dir .. "/3.dcm", "3")
    local s = assert(c.storage:upload(dir, "gs://" .. bucket .. "/gone/", { max_active = 1,
      on_progress = function(r) if r.source:find("1.dcm", 1, true) then os.remove(dir .. "/2.dcm") end end }))
    assert.are.equal(2, s.ok); assert.are.equal(1, s.failed)
    assert.are.equal("io", s.results[2].err.kind)
    assert.truthy(s.results[2].err.message:find("2.dcm", 1, true))
  end)

  it("fails every file clearly when the bucket does not exist", function()
    local dir = env.tmpdir("nob")
    write(dir .. "/a.dcm", "A"); write(dir .. "/b.dcm", "B")
    local s = assert(c.storage:upload(dir, "gs://no-such-bucket-dg/x/"))
    assert.are.equal(0, s.ok); assert.are.equal(2, s.failed)
    assert.truthy(s.results[1].err.message:find("does not exist", 1, true))
    local got, err = c.storage:download("gs://no-such-bucket-dg/x/", dir)
    assert.is_nil(got)
    assert.are.equal(404, err.http_status)
  end)

  it("reports a permission error for one object and uploads the others", function()
    local dir = env.tmpdir("perm")
    write(dir .. "/a.dcm", "A"); write(dir .. "/secret.dcm", "S"); write(dir .. "/z.dcm", "Z")
    assert(env.admin("POST", "faults", { path = "^/upload/", method = "POST", status = 403, count = 1, skip = 1,
      message = "caller does not have storage.objects.create access" }))
    local s = assert(c.storage:upload(dir, "gs://" .. bucket .. "/perm/", { max_active = 1 }))
    assert.are.equal(2, s.ok); assert.are.equal(1, s.failed)
    assert.are.equal(403, s.results[2].err.http_status)
  end)

  it("deletes under a prefix after a dry run that lists the same objects", function()
    for i = 1, 5 do assert(c.storage:write(("gs://%s/del/%d.dcm"):format(bucket, i), "x")) end
    assert(c.storage:write("gs://" .. bucket .. "/delx/keep.dcm", "x"))
    local preview = assert(c.storage:delete_prefix("gs://" .. bucket .. "/del", { dry_run = true }))
    assert.are.equal(5, #preview.results)
    assert.is_true(preview.dry_run)
    assert.are.equal(5, #assert(c.storage:match("gs://" .. bucket .. "/del/*")))
    local s = assert(c.storage:delete_prefix("gs://" .. bucket .. "/del/"))
    assert.are.equal(5, s.ok)
    assert.are.equal(0, #assert(c.storage:match("gs://" .. bucket .. "/del/*")))
    assert.are.equal(1, #assert(c.storage:match("gs://" .. bucket .. "/delx/*")))
  end)
end)
