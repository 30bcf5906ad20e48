-- dicomgcs.paging: token-paged lists, one iterator, one collector; no server needed.
local errors = require "dicomgcs.errors"
local paging = require "dicomgcs.paging"

-- A fake token-paged list: pages[i] is the items of page i; the token of page i is "t<i>".
local function fake(pages, opts)
  opts = opts or {}
  local calls = {}
  local function fetch(token)
    calls[#calls + 1] = token or "(first)"
    local i = token and tonumber(token:match("^t(%d+)$")) or 1
    if opts.fail_at == i and not opts.failed then
      opts.failed = true
      return nil, errors.new{ kind = "http", message = "page " .. i .. " failed" }
    end
    local next_token = pages[i + 1] and ("t" .. (i + 1)) or opts.last_token
    return pages[i], next_token
  end
  return fetch, calls
end

describe("paging.by_token", function()
  it("follows tokens to the end and then stays at the end", function()
    local fetch, calls = fake{ { 1, 2 }, { 3 }, { 4, 5 } }
    local next_page = paging.by_token(fetch)
    assert.are.same({ 1, 2 }, next_page())
    assert.are.same({ 3 }, next_page())
    assert.are.same({ 4, 5 }, next_page())
    assert.is_nil(next_page())
    assert.is_nil(next_page())
    assert.are.same({ "(first)", "t2", "t3" }, calls)
  end)

  it("keeps going past empty pages that still carry a token", function()
    local fetch = fake{ {}, {}, { "x" } }
    assert.are.same({ "x" }, paging.all(paging.by_token(fetch)))
  end)

  it("treats an empty-string token as the end", function()
    local fetch, calls = fake({ { 1 } }, { last_token = "" })
    assert.are.same({ 1 }, paging.all(paging.by_token(fetch)))
    assert.are.same({ "(first)" }, calls)
  end)

  it("returns the Error and asks for the same page again when called again", function()
    local fetch, calls = fake({ { 1 }, { 2 }, { 3 } }, { fail_at = 2 })
    local next_page = paging.by_token(fetch)
    assert.are.same({ 1 }, next_page())
    local page, err = next_page()
    assert.is_nil(page)
    assert.are.equal("http", err.kind)
    assert.are.same({ 2 }, next_page())
    assert.are.same({ 3 }, next_page())
    assert.are.same({ "(first)", "t2", "t2", "t3" }, calls)
  end)
end)

describe("paging.each", function()
  it("iterates over every item of every page, in order", function()
    local got = {}
    for x in paging.each(paging.by_token(fake{ { "a", "b" }, {}, { "c" } })) do got[#got + 1] = x end
    assert.are.same({ "a", "b", "c" }, got)
  end)

  it("gives nothing for an empty list", function()
    local n = 0
    for _ in paging.each(paging.by_token(fake{ {} })) do n = n + 1 end
    assert.are.equal(0, n)
  end)

  it("raises the Error itself (an iterator cannot return one)", function()
    local it = paging.each(paging.by_token(fake({ { 1 }, { 2 } }, { fail_at = 2 })))
    assert.are.equal(1, it())
    local ok, err = pcall(it)
    assert.is_false(ok)
    assert.is_true(errors.is(err))
    assert.are.equal("page 2 failed", err.message)
  end)

  it("serves any next-page function, not only token lists", function()
    local pages = { { 1 }, { 2, 3 } }
    local i = 0
    local got = {}
    for x in paging.each(function() i = i + 1; return pages[i] end) do got[#got + 1] = x end
    assert.are.same({ 1, 2, 3 }, got)
  end)
end)

describe("paging.all", function()
  it("collects every page into one array", function()
    assert.are.same({ 1, 2, 3, 4 }, paging.all(paging.by_token(fake{ { 1 }, { 2, 3 }, { 4 } })))
  end)

  it("returns nil, Error when a page fails, not a partial array", function()
    local all, err = paging.all(paging.by_token(fake({ { 1 }, { 2 } }, { fail_at = 2 })))
    assert.is_nil(all)
    assert.are.equal("page 2 failed", err.message)
  end)
end)
