--- What every command group shares: how a command reports bad usage (exit 2) or a failure
-- (exit 1), integer flags, and the "did you mean" suggestions.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.common
-- @local
local errors = require "dicomgcs.errors"

local common = {}

-- Bad usage is its own type so that the top level can tell it from a failure (exit 2, not 1).
local Usage = { __name = "dicomgcs.cli.Usage" }
Usage.__index = Usage
function Usage:__tostring() return self.message end

--- Raise a usage error (exit 2). The message names the flag or argument and how to fix it.
function common.usage(message)
  error(setmetatable({ message = message }, Usage), 0)
end

function common.is_usage(e) return getmetatable(e) == Usage end

--- Raise a failure (exit 1): an Error as it is, a message as an input Error.
function common.fail(err)
  if type(err) == "string" then err = errors.input(err) end
  error(err, 0)
end

--- `v`, or raise `err` as a failure when `v` is nil (for `must(call())`).
function common.must(v, err)
  if v == nil then common.fail(err) end
  return v
end

--- The integer value of a flag (nil when absent).
-- `name` is the flag without its dashes; a usage error unless it is an integer
-- of at least `min` (default 1).
function common.integer(flags, name, min)
  local v = flags[name]
  if v == nil then return nil end
  min = min or 1
  local n = math.tointeger(tonumber(v))
  if not n or n < min then
    common.usage(("--%s needs an integer of at least %d, got '%s'"):format(name, min, tostring(v)))
  end
  return n
end

--- Seconds between polls from DICOMGCS_POLL_INTERVAL (specs poll fast), else nil (the default).
function common.poll_interval()
  local n = tonumber(os.getenv("DICOMGCS_POLL_INTERVAL") or "")
  if n and n > 0 then return n end
  return nil
end

--- Edit distance between two strings (Levenshtein, a swap of two neighbours counting as one).
function common.distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
      end
    end
  end
  return d[#a][#b]
end

--- The candidate closest to `word`, when it is close enough to be a likely typo (a third of the
-- word's length, at least 1 and at most 3 edits) or `word` is a prefix of it; else nil.
function common.suggest(word, candidates)
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = common.distance(word, c)
    if c:sub(1, #word) == word and #word >= 3 then d = math.min(d, 1) end
    if not best_d or d < best_d or (d == best_d and c < best) then best, best_d = c, d end
  end
  if best and best_d <= math.max(1, math.min(3, #word // 3)) then return best end
  return nil
end

return common
