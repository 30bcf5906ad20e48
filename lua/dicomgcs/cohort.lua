--- Export a subset of a store (a cohort): studies, series or instances picked by UID lists, a
-- QIDO query, or a Lua predicate over study metadata. The selection becomes a
-- `filterConfig.resourcePathsGcsUri` file (one `/studies/X[/series/Y[/instances/Z]]` per line),
-- uploaded to the bucket and sent with the **v1beta1** export (v1 has no filterConfig; every
-- other call stays on v1). Afterwards the objects written under the prefix are checked to be
-- exactly the instances asked for.
-- @module dicomgcs.cohort
local dicomweb = require "dicomgcs.dicomweb"
local errors = require "dicomgcs.errors"
local operation = require "dicomgcs.operation"
local options = require "dicomgcs.options"
local wildcard = require "dicomgcs.wildcard"

local cohort = {}

local STUDY, SERIES, INSTANCE = "0020000D", "0020000E", "00080018"

local known = { uri_prefix = true, mime_type = true, studies = true, series = true, instances = true,
  query = true, predicate = true, filter_uri = true, wait = true, verify = true, on_progress = true,
  interval = true, dicom_store = true, dataset = true, project = true, location = true }

-- The selection as resource paths, and as the QIDO scopes that list its instances.
local function selection(dw, o)
  local paths = {}
  local function add(study, series, instance)
    local ok, err = dicomweb.check_uid(study, "study"); if not ok then return nil, err end
    local p = "/studies/" .. study
    if series then
      ok, err = dicomweb.check_uid(series, "series"); if not ok then return nil, err end
      p = p .. "/series/" .. series
    end
    if instance then
      ok, err = dicomweb.check_uid(instance, "instance"); if not ok then return nil, err end
      p = p .. "/instances/" .. instance
    end
    paths[#paths + 1] = { path = p, study = study, series = series, instance = instance }
    return true
  end
  local ok, err
  for _, s in ipairs(o.studies or {}) do ok, err = add(s); if not ok then return nil, err end end
  for _, s in ipairs(o.series or {}) do ok, err = add(s.study or s[1], s.series or s[2]); if not ok then return nil, err end end
  for _, s in ipairs(o.instances or {}) do
    ok, err = add(s.study or s[1], s.series or s[2], s.instance or s[3]); if not ok then return nil, err end
  end
  if o.query then
    local level = o.query.level or "studies"
    local found, qerr = dw:search_all(level, { filters = o.query.filters, study = o.query.study })
    if not found then return nil, qerr end
    for _, r in ipairs(found) do
      local st, se, inst = dicomweb.value(r, STUDY), dicomweb.value(r, SERIES), dicomweb.value(r, INSTANCE)
      if level == "studies" then ok, err = add(st)
      elseif level == "series" then ok, err = add(st, se)
      else ok, err = add(st, se, inst) end
      if not ok then return nil, err end
    end
  end
  if o.predicate then
    local studies, qerr = dw:search_all("studies", { include_fields = "all" })
    if not studies then return nil, qerr end
    for _, s in ipairs(studies) do
      local pick_ok, picked = pcall(o.predicate, s)
      if not pick_ok then
        return nil, errors.new{ kind = "callback", message = "predicate raised: " .. tostring(picked) }
      end
      if picked then ok, err = add(dicomweb.value(s, STUDY)); if not ok then return nil, err end end
    end
  end
  -- one line per resource, however many ways it was selected
  local seen, unique = {}, {}
  for _, p in ipairs(paths) do
    if not seen[p.path] then seen[p.path] = true; unique[#unique + 1] = p end
  end
  return unique
end

-- Every instance UID the selection covers, listed over QIDO.
local function expected_instances(dw, sel)
  local want = {}
  for _, p in ipairs(sel) do
    if p.instance then
      want[p.instance] = { study = p.study, series = p.series }
    else
      local found, err = dw:search_all("instances", { study = p.study, filters = p.series and { SeriesInstanceUID = p.series } or nil })
      if not found then return nil, err end
      for _, r in ipairs(found) do
        local inst = dicomweb.value(r, INSTANCE)
        if inst then want[inst] = { study = p.study, series = dicomweb.value(r, SERIES) } end
      end
    end
  end
  return want
end

--- Build the filter file of a selection: its text and the resource lines. Returns text, list
-- or nil, Error. (Useful on its own to inspect a selection before exporting.)
function cohort.filter_file(client, o)
  local dw, err = client:dicomweb(o)
  if not dw then return nil, err end
  local sel; sel, err = selection(dw, o)
  if not sel then return nil, err end
  local lines = {}
  for i, p in ipairs(sel) do lines[i] = p.path end
  return table.concat(lines, "\n") .. (#lines > 0 and "\n" or ""), sel
end

--- Export a cohort. Options: `uri_prefix` (required; use a fresh prefix: the check compares
-- everything under it), `mime_type`; the selection: `studies` (UIDs), `series` ({study, series}
-- pairs), `instances` ({study, series, instance}), `query` ({level=, filters=}), `predicate`
-- (function(study_json) -> boolean); `filter_uri` (where the filter file goes; default a
-- unique object under `.dicomgcs/filters/` in the prefix's bucket), `wait` (default true),
-- `verify` (default true), `on_progress`, `interval`.
-- Returns { operation=, filter_uri=, selected= (resource lines), expected=, written=,
-- missing={uids}, unexpected={names}, exact=bool } or nil, Error.
function cohort.export(client, o)
  options.check(o, known, "export_cohort", 3)
  local bucket, prefix = wildcard.parse_uri(o.uri_prefix, { allow_empty_object = true })
  if not bucket then return nil, prefix end
  if prefix ~= "" and prefix:sub(-1) ~= "/" then prefix = prefix .. "/" end
  local store, err = client:dicom_store_name(o)
  if not store then return nil, err end
  local dw; dw, err = client:dicomweb(o)
  if not dw then return nil, err end
  local text, sel = cohort.filter_file(client, o)
  if not text then return nil, sel end
  if #sel == 0 then
    return nil, errors.input("the selection is empty: nothing to export",
      "check the UIDs, the query filters or the predicate")
  end
  local filter_uri = o.filter_uri or ("gs://%s/.dicomgcs/filters/%s-%04d.txt"):format(
    bucket, os.date("!%Y%m%dT%H%M%S"), math.random(0, 9999))
  local written; written, err = client.storage:write(filter_uri, text, "text/plain")
  if not written then return nil, err end
  local body = { gcsDestination = { uriPrefix = "gs://" .. bucket .. "/" .. prefix, mimeType = o.mime_type },
                 filterConfig = { resourcePathsGcsUri = filter_uri } }
  local doc; doc, err = client.transport:json("POST", client.endpoints.healthcare_beta .. "/" .. store .. ":export",
    body, "export a cohort of " .. store .. " (v1beta1)")
  if not doc then return nil, err end
  local op = operation.new(client.transport, client.endpoints.healthcare, doc)
  local result = { operation = op, filter_uri = filter_uri, selected = sel }
  if o.wait == false then return result end
  local done, werr = op:wait{ on_progress = o.on_progress, interval = o.interval or 0.5, max_interval = 10 }
  if not done then return nil, werr end
  if o.verify == false then return result end
  local want; want, err = expected_instances(dw, sel)
  if not want then return nil, err end
  local objects; objects, err = client.storage:match("gs://" .. bucket .. "/" .. prefix .. "**")
  if not objects then return nil, err end
  local got, unexpected = {}, {}
  for _, obj in ipairs(objects) do
    local st, se, inst = obj.name:sub(#prefix + 1):match("^([%d%.]+)/([%d%.]+)/(%d[%d%.]*%d)")
    if inst and want[inst] and want[inst].study == st and want[inst].series == se then got[inst] = true
    else unexpected[#unexpected + 1] = obj.name end
  end
  local missing, n_want, n_got = {}, 0, 0
  for inst in pairs(want) do
    n_want = n_want + 1
    if got[inst] then n_got = n_got + 1 else missing[#missing + 1] = inst end
  end
  table.sort(missing)
  result.expected, result.written, result.missing, result.unexpected = n_want, n_got, missing, unexpected
  result.exact = #missing == 0 and #unexpected == 0
  return result
end

return cohort
