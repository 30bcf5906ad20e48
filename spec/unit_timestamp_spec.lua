-- dicomgcs.timestamp, the one RFC 3339 / HTTP-date parser (auth token expiry, operation and log
-- times, the server's clock): no server needed.
local timestamp = require "dicomgcs.timestamp"

describe("timestamp.parse (RFC 3339)", function()
  it("reads the epoch and Google's forms", function()
    assert.are.equal(0, timestamp.parse("1970-01-01T00:00:00Z"))
    assert.are.equal(1735732800, timestamp.parse("2025-01-01T12:00:00Z"))
    assert.are.equal(1735732800, timestamp.parse("2025-01-01t12:00:00z"))
    assert.are.equal(1735732800, timestamp.parse("2025-01-01 12:00:00Z"))
  end)

  it("keeps the fraction, nanoseconds included", function()
    local t = timestamp.parse("2026-11-25T13:02:20.123456789Z")
    assert.are.equal(1795611740, math.floor(t))
    assert.is_true(math.abs(t - 1795611740.123456789) < 1e-6)
    assert.are.equal(0.5, timestamp.parse("1970-01-01T00:00:00.5Z"))
  end)

  it("applies numeric offsets in the right direction", function()
    local z = timestamp.parse("2025-06-01T12:00:00Z")
    assert.are.equal(z, timestamp.parse("2025-06-01T13:00:00+01:00"))   -- 13:00 at +01:00 is 12:00 UTC
    assert.are.equal(z, timestamp.parse("2025-06-01T01:30:00-10:30"))   -- and 01:30 at -10:30 too
    assert.are.equal(z, timestamp.parse("2025-06-01T12:00:00+00:00"))
    assert.are.equal(z, timestamp.parse("2025-06-01T12:00:00-00:00"))
    assert.are.equal(z, timestamp.parse("2025-06-02T11:59:00+23:59"))   -- the widest offset crosses the day
  end)

  it("does not depend on the local time zone", function()
    -- os.time would read TZ; the parser must not
    local out = io.popen([[TZ=Pacific/Kiritimati lua5.4 -e 'package.path="lua/?.lua;"..package.path
      print(require("dicomgcs.timestamp").parse("2025-01-01T00:00:00Z"))']]):read("a")
    assert.are.equal("1735689600\n", out)
  end)

  it("handles leap years and the leap second", function()
    assert.are.equal(timestamp.parse("2024-03-01T00:00:00Z") - 86400, timestamp.parse("2024-02-29T00:00:00Z"))
    assert.are.equal(timestamp.parse("2000-03-01T00:00:00Z") - 86400, timestamp.parse("2000-02-29T00:00:00Z"))
    assert.are.equal(timestamp.parse("2017-01-01T00:00:00Z"), timestamp.parse("2016-12-31T23:59:60Z"))
  end)

  it("refuses impossible dates and times", function()
    for _, s in ipairs{ "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2025-04-31T00:00:00Z",
                        "2025-13-01T00:00:00Z", "2025-00-10T00:00:00Z", "2025-01-00T00:00:00Z",
                        "2025-01-01T24:00:00Z", "2025-01-01T12:60:00Z", "2025-01-01T12:00:61Z",
                        "2025-01-01T12:00:00+24:00", "2025-01-01T12:00:00+01:60" } do
      assert.is_nil(timestamp.parse(s), s)
    end
  end)

  it("refuses hostile and malformed input without raising", function()
    for _, s in ipairs{ "", "Z", "2025-01-01", "2025-01-01T12:00:00", "2025-01-01T12:00Z",
                        "25-01-01T12:00:00Z", "2025-1-1T12:00:00Z", "2025-01-01T12:00:00ZZ",
                        "2025-01-01T12:00:00.Z", "2025-01-01T12:00:00+0100", "2025-01-01T12:00:00 Z",
                        " 2025-01-01T12:00:00Z", "2025-01-01T12:00:00Z\n", "2025-01-01T12:00:00\0Z",
                        "２０２５-01-01T12:00:00Z", "2025-01-01T12:00:00." .. ("9"):rep(100000) } do
      assert.is_nil(timestamp.parse(s), ("%q"):format(s:sub(1, 40)))
    end
    for _, v in ipairs{ 0, 1735732800, true, {}, function() end } do
      assert.is_nil(timestamp.parse(v))
    end
    assert.is_nil(timestamp.parse(nil))
  end)
end)

describe("timestamp.parse_http_date (IMF-fixdate)", function()
  it("reads RFC 9110's example", function()
    assert.are.equal(784111777, timestamp.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
  end)

  it("agrees with parse", function()
    assert.are.equal(timestamp.parse("2026-12-04T15:53:24Z"),
      timestamp.parse_http_date("Fri, 04 Dec 2026 15:53:24 GMT"))
  end)

  it("refuses the obsolete forms, other zones, bad months and impossible dates", function()
    for _, s in ipairs{ "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                        "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 +0000",
                        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 31 Nov 1994 08:49:37 GMT",
                        "Sun, 06 Nov 1994 25:49:37 GMT", "", "GMT" } do
      assert.is_nil(timestamp.parse_http_date(s), s)
    end
    assert.is_nil(timestamp.parse_http_date(42))
  end)
end)
