--- The client: datasets, DICOM stores, import, export and operations of the Healthcare API.
-- @module dicomgcs.client
local endpoints = require "dicomgcs.endpoints"
local errors = require "dicomgcs.errors"
local gcs = require "dicomgcs.gcs"
local http = require "dicomgcs.http"
local names = require "dicomgcs.names"
local operation = require "dicomgcs.operation"
local options = require "dicomgcs.options"
local paging = require "dicomgcs.paging"
local replay = require "dicomgcs.replay"
local timestamp = require "dicomgcs.timestamp"
local wildcard = require "dicomgcs.wildcard"

local client = {}

local Client = { __name = "dicomgcs.Client" }
Client.__index = Client

local known_options = {
  project = true, location = true, dataset = true, dicom_store = true,
  endpoint = true, storage_endpoint = true, logging_endpoint = true, emulator = true,
  token = true, credentials = true, emulator_credentials = true, scopes = true, quota_project = true,
  concurrency = true, ca_file = true, proxy = true, connect_timeout = true, idle_timeout = true,
  retry = true, retry_budget = true, impersonate_service_account = true,
}

-- A token provider for the engine: a fixed token, or Application Default Credentials. With
-- the emulator, no ambient credential is read (see dicomgcs.auth): `emulator_credentials`,
-- DICOMGCS_EMULATOR_CREDENTIALS or a placeholder token.
local function token_provider_for(opts, eps)
  if opts.token then
    local token = opts.token
    return function() return token, 365 * 24 * 3600 end, nil
  end
  local auth = require "dicomgcs.auth"
  local credentials = opts.credentials
  if eps.emulator then
    if opts.credentials ~= nil then
      return nil, errors.input("credentials= is not sent to the emulator (" .. eps.emulator .. ")",
        "pass emulator_credentials=FILE (or set DICOMGCS_EMULATOR_CREDENTIALS=FILE) for an emulator started with --strict-auth")
    end
    credentials = opts.emulator_credentials
  elseif opts.emulator_credentials ~= nil then
    return nil, errors.input("emulator_credentials= is only used with the emulator",
      "pass emulator= (or set DICOMGCS_EMULATOR_HOST), or use credentials= for Google")
  end
  -- an explicit emulator= option must steer the token calls too, as the variable does
  local function getenv(k)
    if k == "DICOMGCS_EMULATOR_HOST" then return eps.emulator or false end
    return os.getenv(k)
  end
  local provider, err = auth.default{
    credentials = credentials, scopes = opts.scopes, quota_project = opts.quota_project,
    impersonate_service_account = opts.impersonate_service_account, getenv = getenv,
  }
  if not provider then return nil, err end
  return provider:token_provider(), provider
end

--- Make a client. Options: `project`, `location`, `dataset`, `dicom_store` (defaults for the
-- calls below), `endpoint` (Healthcare base, default https://healthcare.googleapis.com/v1),
-- `emulator` ("HOST:PORT" on this machine, default $DICOMGCS_EMULATOR_HOST), `token` (a fixed
-- access token) or `credentials` (see dicomgcs.auth; with the emulator `emulator_credentials`,
-- default $DICOMGCS_EMULATOR_CREDENTIALS, else a placeholder token), `impersonate_service_account`
-- (an email: act as it through IAM Credentials), `quota_project`, and transport options `concurrency`,
-- `ca_file`, `proxy`, `connect_timeout`, `idle_timeout`, `retry`, and `retry_budget` (seconds a
-- request may spend waiting out quota errors — 429 without Retry-After — default 600).
-- Returns the client or nil, Error; raises on unknown options.
function client.new(opts)
  opts = opts or {}
  options.check(opts, known_options, "dicomgcs.client")
  local self = setmetatable({}, Client)
  for _, k in ipairs{ "project", "location", "dataset", "dicom_store" } do
    if opts[k] ~= nil then
      local v, err = names[k](opts[k])
      if not v then return nil, err end
      self[k] = v
    end
  end
  if not self.project then
    local env = os.getenv("GOOGLE_CLOUD_PROJECT") or os.getenv("CLOUDSDK_CORE_PROJECT")
    if env and env ~= "" then self.project = env end
  end
  if opts.quota_project ~= nil then
    local ok, qerr = http.header_value(opts.quota_project, "quota_project")
    if not ok then return nil, qerr end
  end
  local eps, eerr = endpoints.resolve(opts)
  if not eps then return nil, eerr end
  self.endpoints = eps
  local provider, auth_or_err = token_provider_for(opts, eps)
  if not provider then return nil, auth_or_err end
  self.auth = auth_or_err
  local quota_project = opts.quota_project or (self.auth and self.auth.quota_project and self.auth:quota_project())
  self.transport = http.new{
    token_provider = provider, quota_project = quota_project, plain_http_host = eps.emulator,
    auth_error = self.auth and function() return self.auth:last_error() end,
    concurrency = opts.concurrency, ca_file = opts.ca_file, proxy = opts.proxy,
    connect_timeout = opts.connect_timeout, idle_timeout = opts.idle_timeout, retry = opts.retry,
    retry_budget = opts.retry_budget,
  }
  self.storage = gcs.new(self.transport, eps.storage, self.project, { resourcemanager = eps.resourcemanager })
  return self
end

function Client:__tostring()
  return ("dicomgcs.Client (%s)"):format(self.endpoints.emulator and ("emulator " .. self.endpoints.emulator)
    or self.endpoints.healthcare)
end

-- Resolve project/location/dataset/store from call options, falling back to the client's.
local function pick(self, o, key)
  local v = o[key]
  if v == nil then v = self[key] end
  return names[key](v)
end

--- `projects/P/locations/L`, from `o` or the client defaults. Returns the name or nil, Error.
function Client:location_name(o)
  o = o or {}
  local p, err = pick(self, o, "project"); if not p then return nil, err end
  local l; l, err = pick(self, o, "location"); if not l then return nil, err end
  return ("projects/%s/locations/%s"):format(http.escape(p), http.escape(l))
end

--- `projects/P/locations/L/datasets/D`. Returns the name or nil, Error.
function Client:dataset_name(o)
  o = o or {}
  local loc, err = self:location_name(o); if not loc then return nil, err end
  local d; d, err = pick(self, o, "dataset"); if not d then return nil, err end
  return loc .. "/datasets/" .. http.escape(d)
end

--- `.../datasets/D/dicomStores/S`. Returns the name or nil, Error.
function Client:dicom_store_name(o)
  o = o or {}
  local ds, err = self:dataset_name(o); if not ds then return nil, err end
  local s; s, err = pick(self, o, "dicom_store"); if not s then return nil, err end
  return ds .. "/dicomStores/" .. http.escape(s)
end

local function api(self, method, name, body, what)
  return self.transport:json(method, self.endpoints.healthcare .. "/" .. name, body, what)
end

--- Create a dataset and wait for it. `o.dataset`, `o.time_zone`. Returns the Dataset or nil, Error.
function Client:create_dataset(o)
  o = o or {}
  local loc, err = self:location_name(o); if not loc then return nil, err end
  local d; d, err = pick(self, o, "dataset"); if not d then return nil, err end
  local body = { timeZone = o.time_zone }
  local what = "create dataset " .. loc .. "/datasets/" .. d
  local doc
  doc, err = replay.send(self.transport, "POST", self.endpoints.healthcare .. "/" .. loc .. "/datasets" ..
    http.query{ datasetId = d }, body, what)
  if not doc and errors.class(err) == "ambiguous" then
    return replay.settle_create(what, err, function() return self:get_dataset(o) end,
      "run the create again")
  end
  if not doc then return nil, err end
  local op = operation.new(self.transport, self.endpoints.healthcare, doc)
  local done; done, err = op:wait{ interval = 0.2, max_interval = 2 }
  if not done then return nil, err end
  local ds = {}
  for k, v in pairs(done.response or {}) do if k ~= "@type" then ds[k] = v end end
  if not ds.name then return self:get_dataset(o) end
  return ds
end

--- Get a dataset. Returns the Dataset (the API's resource as a table: `{name=, timeZone=}`) or nil, Error.
function Client:get_dataset(o)
  local name, err = self:dataset_name(o); if not name then return nil, err end
  return api(self, "GET", name, nil, "get dataset " .. name)
end

--- Delete a dataset (and everything in it). Returns true or nil, Error.
function Client:delete_dataset(o)
  local name, err = self:dataset_name(o); if not name then return nil, err end
  local ok; ok, err = api(self, "DELETE", name, nil, "delete dataset " .. name)
  if not ok then return nil, err end
  return true
end

-- Collect every page of a list call. Returns an array or nil, Error.
local function list_all(self, url, field, what, page_size)
  return paging.all(paging.by_token(function(token)
    local doc, err = self.transport:json("GET", url .. http.query{ pageSize = page_size, pageToken = token }, nil, what)
    if not doc then return nil, err end
    return doc[field] or {}, doc.nextPageToken
  end))
end

--- List the datasets of the location. Returns an array of Datasets or nil, Error.
function Client:list_datasets(o)
  local loc, err = self:location_name(o); if not loc then return nil, err end
  return list_all(self, self.endpoints.healthcare .. "/" .. loc .. "/datasets", "datasets",
    "list datasets in " .. loc, o and o.page_size or 1000)
end

--- Create a DICOM store. `o.dicom_store`, `o.labels`. Returns the DicomStore or nil, Error.
function Client:create_dicom_store(o)
  o = o or {}
  local ds, err = self:dataset_name(o); if not ds then return nil, err end
  local s; s, err = pick(self, o, "dicom_store"); if not s then return nil, err end
  local what = "create DICOM store " .. ds .. "/dicomStores/" .. s
  local doc; doc, err = replay.send(self.transport, "POST", self.endpoints.healthcare .. "/" .. ds .. "/dicomStores" ..
    http.query{ dicomStoreId = s }, { labels = o.labels }, what)
  if not doc and errors.class(err) == "ambiguous" then
    return replay.settle_create(what, err, function() return self:get_dicom_store(o) end, "run the create again")
  end
  return doc, err
end

-- POST a store's :import or :export once; after an ambiguous failure adopt the operation it
-- started, if exactly one matches. Returns an Operation or nil, Error.
local function start_store_operation(self, o, store, verb, method, body, what)
  local doc, err, started = replay.send(self.transport, "POST", self.endpoints.healthcare .. "/" .. store .. ":" .. verb,
    body, what)
  self.started_ops = self.started_ops or {}
  local op
  if doc then
    op = operation.new(self.transport, self.endpoints.healthcare, doc)
  elseif errors.class(err) ~= "ambiguous" then
    return nil, err
  else
    local ds = store:match("^(.*)/dicomStores/")
    local function server_now()
      local _, res = self.transport:json("GET", self.endpoints.healthcare .. "/" .. ds, nil, "get dataset " .. ds)
      return res and res.headers and timestamp.parse_http_date(res.headers.date)
    end
    op, err = replay.adopt_operation(what, err, started, method, function() return self:list_operations(o) end,
      ("check `dicomgcs operations list --dataset=%s` and run the %s again only if none is yours"):format(
        ds:match("[^/]+$"), verb), server_now, self.started_ops)
    if not op then return nil, err end
  end
  self.started_ops[op.name] = true
  return op
end

--- Get a DICOM store. Returns the DicomStore or nil, Error.
function Client:get_dicom_store(o)
  local name, err = self:dicom_store_name(o); if not name then return nil, err end
  return api(self, "GET", name, nil, "get DICOM store " .. name)
end

--- Delete a DICOM store. Returns true or nil, Error.
function Client:delete_dicom_store(o)
  local name, err = self:dicom_store_name(o); if not name then return nil, err end
  local ok; ok, err = api(self, "DELETE", name, nil, "delete DICOM store " .. name)
  if not ok then return nil, err end
  return true
end

--- List the DICOM stores of the dataset. Returns an array or nil, Error.
function Client:list_dicom_stores(o)
  local ds, err = self:dataset_name(o); if not ds then return nil, err end
  return list_all(self, self.endpoints.healthcare .. "/" .. ds .. "/dicomStores", "dicomStores",
    "list DICOM stores in " .. ds, o and o.page_size or 1000)
end

-- Before an import or export: does the project's Cloud Healthcare Service Agent hold what
-- `purpose` needs on the bucket (through the bucket's policy or the project's)? When that is
-- not seen, warn (grants on folders, organizations and custom roles are invisible) and go on.
-- Returns the fix to repeat if the operation then fails with PERMISSION_DENIED (a string), or
-- false; or nil, Error (a bucket that does not exist). `o.check_permissions = false` skips it.
local function check_permissions(self, o, store, bucket, purpose)
  if o.check_permissions == false then return false end
  local ok, warning, access = self.storage:check_service_agent(bucket, purpose, { project = store:match("^projects/([^/]+)/") })
  if not ok then return nil, warning end
  if not warning then return false end
  if o.on_warning then o.on_warning(warning, access) else io.stderr:write("WARNING: ", warning, "\n") end
  return ("the Cloud Healthcare Service Agent needs %s: %s   (or: %s)"):format(access.role, access.command,
    access.gcloud or access.project_command)
end

local function maybe_wait(op, o)
  if not o.wait then return op end
  return op:wait{ timeout = o.timeout, on_progress = o.on_progress, interval = o.interval,
                  max_interval = o.max_interval }
end

local import_options = { uri = true, dicom_store = true, dataset = true, project = true, location = true,
  blob_storage_class = true, wait = true, timeout = true, on_progress = true, interval = true, max_interval = true,
  check_permissions = true, on_warning = true }

--- Import DICOM files from Cloud Storage. `o.uri` is a `gs://BUCKET/PATTERN` (wildcards `*`,
-- `?`, and `**` at the end), checked before anything is sent. With `o.wait` the call waits
-- (see Operation:wait for `timeout`, `on_progress`, `interval`). Returns an Operation or nil, Error.
function Client:import(o)
  options.check(o, import_options, "import")
  local store, err = self:dicom_store_name(o); if not store then return nil, err end
  local bucket, pattern = wildcard.parse_uri(o.uri)
  if not bucket then return nil, pattern end
  local ok; ok, err = wildcard.check(pattern)
  if not ok then
    err.message = o.uri .. ": " .. err.message
    return nil, err
  end
  local fix; fix, err = check_permissions(self, o, store, bucket, "import")
  if fix == nil then return nil, err end
  local body = { gcsSource = { uri = o.uri } }
  if o.blob_storage_class then body.blobStorageSettings = { blobStorageClass = o.blob_storage_class } end
  local op; op, err = start_store_operation(self, o, store, "import", "ImportDicomData", body,
    "import " .. o.uri .. " into " .. store)
  if not op then return nil, err end
  op.permission_hint = fix or nil
  return maybe_wait(op, o)
end

local export_options = { uri_prefix = true, mime_type = true, transfer_syntax = true, dicom_store = true,
  dataset = true, project = true, location = true, wait = true, timeout = true, on_progress = true,
  interval = true, max_interval = true, check_permissions = true, on_warning = true }

--- Export the store to Cloud Storage under `o.uri_prefix` (`gs://BUCKET/DIR/`). `o.mime_type`
-- (e.g. "application/dicom", "image/png"), `o.transfer_syntax` (UID or "*", added to the MIME
-- type). Returns an Operation (waited when `o.wait`) or nil, Error.
function Client:export(o)
  options.check(o, export_options, "export")
  local store, err = self:dicom_store_name(o); if not store then return nil, err end
  local bucket, perr = wildcard.parse_uri(o.uri_prefix, { allow_empty_object = true })
  if not bucket then return nil, perr end
  if o.uri_prefix:find("[*?]") then
    return nil, errors.input(("export prefix '%s' cannot hold wildcards"):format(o.uri_prefix))
  end
  local mime = o.mime_type
  if o.transfer_syntax then
    mime = (mime or "application/dicom") .. "; transfer-syntax=" .. o.transfer_syntax
  end
  local fix, pfail = check_permissions(self, o, store, bucket, "export")
  if fix == nil then return nil, pfail end
  local body = { gcsDestination = { uriPrefix = o.uri_prefix, mimeType = mime } }
  local op; op, err = start_store_operation(self, o, store, "export", "ExportDicomData", body,
    "export " .. store .. " to " .. o.uri_prefix)
  if not op then return nil, err end
  op.permission_hint = fix or nil
  return maybe_wait(op, o)
end

local bigquery_options = { table_uri = true, write_disposition = true, force = true, dicom_store = true,
  dataset = true, project = true, location = true, wait = true, timeout = true, on_progress = true,
  interval = true, max_interval = true }

local WRITE_DISPOSITIONS = { WRITE_EMPTY = true, WRITE_TRUNCATE = true, WRITE_APPEND = true }

--- Export the store's metadata to a BigQuery table (`bigqueryDestination`). `o.table_uri`
-- (`bq://PROJECT.DATASET.TABLE`), `o.write_disposition` (WRITE_EMPTY, WRITE_TRUNCATE or
-- WRITE_APPEND), `o.force` (overwrite, when no disposition is given). Returns an Operation
-- (waited when `o.wait`) or nil, Error.
function Client:export_bigquery(o)
  options.check(o, bigquery_options, "export_bigquery")
  local store, err = self:dicom_store_name(o); if not store then return nil, err end
  if type(o.table_uri) ~= "string" or not o.table_uri:match("^bq://[%w%-%.:]+%.[%w_]+%.[%w_]+$") then
    return nil, errors.input(("BigQuery table '%s' is not bq://PROJECT.DATASET.TABLE"):format(tostring(o.table_uri)))
  end
  if o.write_disposition and not WRITE_DISPOSITIONS[o.write_disposition] then
    return nil, errors.input(("write disposition '%s' is not WRITE_EMPTY, WRITE_TRUNCATE or WRITE_APPEND"):format(
      tostring(o.write_disposition)))
  end
  local body = { bigqueryDestination = { tableUri = o.table_uri, writeDisposition = o.write_disposition,
                                         force = o.force } }
  local op; op, err = start_store_operation(self, o, store, "export", "ExportDicomData", body,
    "export " .. store .. " to " .. o.table_uri)
  if not op then return nil, err end
  return maybe_wait(op, o)
end

--- An Operation by full name (`projects/.../operations/ID`) or by id within the client's
-- dataset, fetched: its `done`, `counter`, `error` are the server's at the time of the call.
-- `o.fetch = false` makes no request (`done` is false until `op:get()`). Returns the Operation
-- or nil, Error (an unknown operation is an Error with http_status 404).
function Client:operation(name, o)
  if type(name) ~= "string" then return nil, errors.input("operation name must be a string") end
  if not name:find("/", 1, true) then
    local id, err = names.operation_id(name); if not id then return nil, err end
    local ds; ds, err = self:dataset_name(o); if not ds then return nil, err end
    name = ds .. "/operations/" .. id
  elseif not name:match("^projects/[^/]+/locations/[^/]+/datasets/[^/]+/operations/[%w_-]+$")
      or not names.path(name, "operation name") then
    return nil, errors.input(("'%s' is not an operation name"):format(name),
      "use projects/P/locations/L/datasets/D/operations/ID")
  end
  local op = operation.new(self.transport, self.endpoints.healthcare, name)
  if o and o.fetch == false then return op end
  return op:get()
end

--- List the operations of the dataset (`o.filter`: the API's list filter). Returns an array of
-- Operations or nil, Error.
function Client:list_operations(o)
  o = o or {}
  local ds, err = self:dataset_name(o); if not ds then return nil, err end
  local url = self.endpoints.healthcare .. "/" .. ds .. "/operations"
  return paging.all(paging.by_token(function(token)
    local doc; doc, err = self.transport:json("GET", url .. http.query{ filter = o.filter, pageToken = token,
      pageSize = o.page_size }, nil, "list operations in " .. ds)
    if not doc then return nil, err end
    local ops = {}
    for i, d in ipairs(doc.operations or {}) do ops[i] = operation.new(self.transport, self.endpoints.healthcare, d) end
    return ops, doc.nextPageToken
  end))
end

--- Every known failed file of a finished import/export: logged errors plus the operation's
-- samples. Returns { failures = { {uri=, code=, status=, message=} ... }, logged=, expected=,
-- complete= } or nil, Error. The logs arrive after the operation ends: `opts.logs_wait` (seconds,
-- default 120) bounds the re-reads (see dicomgcs.failures.collect). For a streaming iterator over
-- the logs use dicomgcs.failures.each.
function Client:failures(op, opts)
  return require("dicomgcs.failures").collect(self, op, opts)
end

--- A report of every object an import of `uri` matched, with its outcome (see dicomgcs.report):
-- `{ rows = { {input=, outcome="succeeded"|"failed"|"skipped"|"unknown", code=, reason=}, ... },
-- totals = {matched=, succeeded=, failed=, skipped=, unknown=}, complete=, failures= }` or nil, Error.
function Client:import_report(op, uri, opts)
  return require("dicomgcs.recovery").import_report(self, op, uri, opts)
end

--- Settle the outcome of every object an import of `uri` matched by looking at the store
-- (headers read with ranged downloads, presence asked over QIDO): for when the logs are a sample.
-- Returns a table input URI -> `{outcome=, code=, reason=}` or nil, Error.
function Client:reconcile(uri, opts)
  return require("dicomgcs.recovery").reconcile(self, uri, opts)
end

--- Re-import only the failed objects worth another try (see dicomgcs.recovery.retry_failed).
-- `opts.dicom_store`, `opts.concurrency`. Returns `{ retried = { {failure=, operation=Operation,
-- ok=, err=}, ... }, skipped = { {failure=, reason=}, ... }, succeeded=, failed= }` or nil, Error.
function Client:retry_failed(op, opts)
  return require("dicomgcs.recovery").retry_failed(self, op, opts)
end

--- The DICOMweb layer (store, retrieve, search, delete; see dicomgcs.dicomweb) for the store
-- `.../dicomStores/S/dicomWeb` (`o.dicom_store`, `o.dataset`… default to the client's), sharing
-- this client's transport and credentials. Returns it or nil, Error.
function Client:dicomweb(o)
  local store, err = self:dicom_store_name(o); if not store then return nil, err end
  return require("dicomgcs.dicomweb").new{ base_url = self.endpoints.healthcare .. "/" .. store .. "/dicomWeb",
    transport = self.transport, operation_base = self.endpoints.healthcare }
end

--- Export a cohort picked by UIDs, a QIDO query or a predicate, through the v1beta1
-- filterConfig, and check the result (see dicomgcs.cohort.export). Returns `{ operation=Operation,
-- filter_uri=, selected={...}, expected=, written=, exact=, missing={...}, unexpected={...} }` or nil, Error.
function Client:export_cohort(o)
  return require("dicomgcs.cohort").export(self, o)
end

function Client:close() self.transport:close() end

return client
