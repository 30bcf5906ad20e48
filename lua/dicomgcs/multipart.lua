--- multipart/related request bodies (RFC 2387), streamed by the engine: the one builder for
-- STOW-RS batches and Cloud Storage multipart uploads. File parts are `{file=path}` body parts,
-- never read into memory; the boundary is random (a file containing it would end its part).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal
-- modules".
-- @module dicomgcs.multipart
-- @local
local core = require "dicomgcs.core"

local multipart = {}

--- `parts`: a list of `{ content_type = "...", data = "bytes" }` or `{ content_type =, file = path }`;
-- `root_type`: the `type` parameter (e.g. "application/dicom"), or nil. Returns the
-- Content-Type value and the request's `body_parts`.
function multipart.related(parts, root_type)
  local boundary = "dicomgcs-" .. core.random_hex(16)
  local body = {}
  for i, p in ipairs(parts) do
    local head = (i == 1 and "" or "\r\n") .. "--" .. boundary .. "\r\nContent-Type: " .. p.content_type .. "\r\n\r\n"
    if p.file then
      body[#body + 1] = { data = head }
      body[#body + 1] = { file = p.file }
    else
      body[#body + 1] = { data = head .. p.data }
    end
  end
  body[#body + 1] = { data = "\r\n--" .. boundary .. "--\r\n" }
  local ct = "multipart/related; " .. (root_type and ('type="' .. root_type .. '"; ') or "") .. "boundary=" .. boundary
  return ct, body
end

return multipart
