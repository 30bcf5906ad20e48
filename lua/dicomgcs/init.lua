--- dicomgcs: move DICOM data between Google Cloud Storage and a Cloud Healthcare API DICOM store.
-- `local dicomgcs = require "dicomgcs"`; `local c = assert(dicomgcs.client{project=..., ...})`.
-- Failures return `nil, err` with `err` a `dicomgcs.Error`; misuse (unknown options, wrong
-- argument types) raises. Callbacks run inside the C engine's loop and cannot yield.
-- @module dicomgcs
local dicomgcs = {
  _NAME = "dicomgcs",
  _VERSION = require "dicomgcs.version",
}

dicomgcs.client = require("dicomgcs.client").new
dicomgcs.errors = require "dicomgcs.errors"
dicomgcs.wildcard = require "dicomgcs.wildcard"
dicomgcs.json = require "dicomgcs.json"
dicomgcs.queue = require("dicomgcs.queue").new
dicomgcs.watch = require("dicomgcs.watch").new
dicomgcs.plan = require "dicomgcs.plan"
dicomgcs.manifest = require "dicomgcs.manifest"
dicomgcs.report = require "dicomgcs.report"
dicomgcs.failures = require "dicomgcs.failures"
dicomgcs.operation = require "dicomgcs.operation"

return dicomgcs
