--- The `gcsSource.uri` wildcard of the Healthcare import, and `gs://` URI parsing.
-- One definition, shared with the emulator through the case table
-- `spec/fixtures/wildcard_cases.json`: `*` matches zero or more characters other than `/`;
-- `?` exactly one character (a UTF-8 encoded code point, not a byte) other than `/`; `**` zero or more of any character, only at the
-- end of the path (optionally followed by a literal extension such as `.dcm`) and only when no
-- other wildcard is in the path; every other character is literal.
-- @module dicomgcs.wildcard
local errors = require "dicomgcs.errors"

local wildcard = {}

-- Cloud Storage bucket names: 3-63 characters of a-z 0-9 - _ . , starting and ending with a
-- letter or digit (dotted names up to 222 are allowed by Google; each dot-part still ≤ 63).
local function valid_bucket(b)
  if #b < 3 or #b > 222 then return false end
  if not b:match("^[a-z0-9][a-z0-9._-]*[a-z0-9]$") then return false end
  for part in b:gmatch("[^.]+") do if #part > 63 then return false end end
  return #b <= 63 or b:find(".", 1, true) ~= nil
end
wildcard.valid_bucket = valid_bucket

--- Split `gs://BUCKET/OBJECT` into bucket and object. `opts.allow_empty_object` accepts
-- `gs://BUCKET` and `gs://BUCKET/` (for prefixes). Returns bucket, object or nil, Error.
function wildcard.parse_uri(uri, opts)
  opts = opts or {}
  if type(uri) ~= "string" then
    return nil, errors.input(("expected a gs:// URI, got %s"):format(type(uri)))
  end
  local bucket, rest = uri:match("^gs://([^/]*)(.*)$")
  if not bucket then
    return nil, errors.input(("'%s' is not a gs:// URI"):format(uri),
      "write it as gs://BUCKET/PATH, e.g. gs://my-bucket/dicom/**.dcm")
  end
  if not valid_bucket(bucket) then
    return nil, errors.input(("'%s': '%s' is not a valid bucket name"):format(uri, bucket),
      "bucket names have 3-63 characters: lower-case letters, digits, '-', '_' and '.'")
  end
  local object = rest:sub(2)
  if object == "" and not opts.allow_empty_object then
    return nil, errors.input(("'%s' has no object part after the bucket"):format(uri),
      "name the objects, e.g. gs://" .. bucket .. "/DIR/**.dcm")
  end
  if object:find("[%z\r\n]") then
    return nil, errors.input(("'%s': object names cannot hold NUL, CR or LF"):format(uri))
  end
  return bucket, object
end

--- Check a wildcard object pattern. Returns true or nil, Error.
function wildcard.check(pattern)
  if pattern == "" then
    return nil, errors.input("the object part of the URI is empty")
  end
  local at = pattern:find("**", 1, true)
  if at then
    local before, after = pattern:sub(1, at - 1), pattern:sub(at + 2)
    if after:find("/", 1, true) or after:find("*", 1, true) or after:find("?", 1, true) then
      return nil, errors.input(("'%s': '**' must be at the end of the path"):format(pattern),
        "use DIR/** or DIR/**.dcm to take every file under DIR")
    end
    if before:find("[*?]") then
      return nil, errors.input(("'%s': no other wildcard may appear with '**'"):format(pattern),
        "use either '**' at the end, or '*' and '?' alone")
    end
  end
  return true
end

--- The literal part of the pattern before its first wildcard: listing with this prefix
-- reads only the objects that can match.
function wildcard.literal_prefix(pattern)
  local at = pattern:find("[*?]")
  return at and pattern:sub(1, at - 1) or pattern
end

-- One UTF-8 character other than `/`: a lead byte (ASCII but `/`, or a multi-byte lead) and its
-- continuation bytes. Object names are UTF-8 (Cloud Storage refuses anything else).
local ONE_CHAR = "[\0-\46\48-\127\194-\244][\128-\191]*"

local function to_lua_pattern(pattern)
  local out, i = { "^" }, 1
  while i <= #pattern do
    local c = pattern:sub(i, i)
    if pattern:sub(i, i + 1) == "**" then
      out[#out + 1] = ".*"; i = i + 2
    else
      if c == "*" then out[#out + 1] = "[^/]*"
      elseif c == "?" then out[#out + 1] = ONE_CHAR
      elseif c:match("%W") then out[#out + 1] = "%" .. c
      else out[#out + 1] = c end
      i = i + 1
    end
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

--- Compile a checked pattern into a predicate `function(name) -> boolean`.
-- Returns the predicate or nil, Error.
function wildcard.compile(pattern)
  local ok, err = wildcard.check(pattern)
  if not ok then return nil, err end
  local lp = to_lua_pattern(pattern)
  return function(name) return name:find(lp) ~= nil end
end

--- Does object `name` match `pattern`? Raises on an invalid pattern.
function wildcard.match(pattern, name)
  local pred, err = wildcard.compile(pattern)
  if not pred then error(err, 2) end
  return pred(name)
end

return wildcard
