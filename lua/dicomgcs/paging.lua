--- Lists that come a page at a time: Google's `pageToken` / `nextPageToken` lists, and anything
-- else given as a function that returns the next page. One iterator and one collector serve them.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.paging
-- @local
local paging = {}

--- The next-page function of a token-paged list. `fetch(token)` (nil for the first page) returns
-- the items of one page (an array, maybe empty) and the next page token, or nil, Error. The
-- function returned gives the next page's items, nil after the last page, or nil, Error (called
-- again after an error, it asks for the same page again).
function paging.by_token(fetch)
  local token, finished = nil, false
  return function()
    if finished then return nil end
    local items, next_token = fetch(token)
    if not items then return nil, next_token end
    token = next_token
    -- an empty page may still carry a token: keep going until there is none
    finished = token == nil or token == ""
    return items
  end
end

--- Iterate over the items of every page that `next_page()` gives (an array, nil at the end, or
-- nil, Error). An iterator cannot return an Error: a failure raises it.
function paging.each(next_page)
  local page, i = nil, 0
  return function()
    while true do
      if page and i < #page then
        i = i + 1
        return page[i]
      end
      local err
      page, err = next_page()
      i = 0
      if not page then
        if err then error(err, 0) end
        return nil
      end
    end
  end
end

--- Every item of every page that `next_page()` gives, as one array; or nil, Error.
function paging.all(next_page)
  local out = {}
  while true do
    local page, err = next_page()
    if not page then
      if err then return nil, err end
      return out
    end
    for _, item in ipairs(page) do out[#out + 1] = item end
  end
end

return paging
