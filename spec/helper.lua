-- Shared setup for the specs (loaded by busted through .busted): seeds the random generator
-- per run so generated ids differ between runs; spec/support/env.lua does the rest on demand.
math.randomseed(os.time(), tonumber(tostring({}):match("0x(%x+)"), 16) or 0)
return true
