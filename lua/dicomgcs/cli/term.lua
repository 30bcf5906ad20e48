--- What reaches a terminal: text from servers (object names, error messages, reasons) made
-- inert. A name holding `ESC]0;…BEL` would otherwise retitle the window, move the cursor or
-- rewrite what was printed before it. JSON output is not passed through here: JSON escapes
-- control characters itself.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.term
-- @local
local term = {}

local named = { [7] = "\\a", [8] = "\\b", [9] = "\\t", [10] = "\\n", [11] = "\\v", [12] = "\\f", [13] = "\\r",
                [27] = "\\e" }

--- `s` with every control character shown as a visible escape: C0 (`\n`, `\t`, `\e`, `\x01`…),
-- DEL (`\x7f`), the C1 code points U+0080–U+009F (`\u009b`), the bidirectional overrides and
-- isolates (U+202A–U+202E, U+2066–U+2069: they reorder what is shown), and bytes that are not
-- UTF-8 (`\xNN`: in a Latin-1 terminal a lone 0x9B is CSI). Other text, UTF-8 included, is kept.
function term.escape(s)
  s = tostring(s)
  if not s:find("[%z\1-\31\127-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local b = s:byte(i)
    if b < 0x20 or b == 0x7f then
      out[#out + 1] = named[b] or ("\\x%02x"):format(b)
      i = i + 1
    elseif b < 0x80 then
      local j = s:find("[%z\1-\31\127-\255]", i) or n + 1
      out[#out + 1] = s:sub(i, j - 1)
      i = j
    else
      local len = (b >= 0xF0 and b <= 0xF4 and 4) or (b >= 0xE0 and 3) or (b >= 0xC2 and b < 0xE0 and 2) or 0
      local ch = len > 0 and s:sub(i, i + len - 1) or ""
      local cp = #ch == len and len > 0 and utf8.len(ch) == 1 and utf8.codepoint(ch) or nil
      if not cp then
        out[#out + 1] = ("\\x%02x"):format(b)
        i = i + 1
      else
        local hidden = cp < 0xA0 or (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069)
        out[#out + 1] = hidden and ("\\u%04x"):format(cp) or ch
        i = i + len
      end
    end
  end
  return table.concat(out)
end

--- Is `fd` (1 stdout, 2 stderr) a terminal?
function term.isatty(fd) return require("dicomgcs.core").isatty(fd) end

return term
