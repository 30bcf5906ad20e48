-- The reliability soak (scripts/soak, `make soak`; issue #14 §8) in a 500-file version: 500
-- files staged, imported with **, exported and downloaded, 100 more through STOW-RS, against
-- an emulator injecting faults on every service, with 5-second tokens, killed and restarted
-- once mid-import. Every file must be accounted for by name and CRC32C. A sabotaged run (one
-- downloaded file lost, one duplicated, one corrupted) proves the accounting can fail.
local env = require "spec.support.env"

local LINE = "soak: (%d+) files, lost (%d+), duplicated (%d+), corrupted (%d+), faults (%d+), restarts (%d+)"

local function soak(args)
  local out, code = env.run("scripts/soak " .. args, true)
  local n, lost, dup, bad, faults, restarts = out:match(LINE)
  assert(n, "no figure line in:\n" .. out)
  return { n = tonumber(n), lost = tonumber(lost), duplicated = tonumber(dup), corrupted = tonumber(bad),
           faults = tonumber(faults), restarts = tonumber(restarts), code = code, out = out }
end

describe("the soak", function()
  it("loses, duplicates and corrupts nothing under faults and an emulator restart (500 + 100 files)", function()
    local r = soak("500")
    assert.equals(0, r.code, r.out)
    assert.equals(600, r.n)
    assert.equals(0, r.lost, r.out)
    assert.equals(0, r.duplicated, r.out)
    assert.equals(0, r.corrupted, r.out)
    assert.equals(1, r.restarts)
    assert.is_true(r.faults > 0, "the emulator injected faults")
  end)

  it("reports a lost, a duplicated and a corrupted file, and fails", function()
    local r = soak("50 sabotage")
    assert.are_not.equals(0, r.code)
    assert.equals(60, r.n)
    assert.equals(1, r.lost, r.out)
    assert.equals(1, r.duplicated, r.out)
    assert.equals(1, r.corrupted, r.out)
  end)
end)
