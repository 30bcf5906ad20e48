-- A pipeline script for the embedding host (examples/embed/dicomgcs_host.c):
--
--   make embed                      # or: make -C examples/embed
--   eval "$(emulator/start)"
--   build/dicomgcs_host examples/embed/pipeline.lua [RUN_ID]
--
-- The host has the C core built in (package.preload["dicomgcs.core"]) and puts the Lua half on
-- package.path, so the script just requires "dicomgcs". It creates a bucket, writes and uploads
-- a few objects, lists them back, creates a dataset and lists the datasets of the location.
-- Against real Google Cloud (no DICOMGCS_EMULATOR_HOST) it needs credentials and a project
-- (GOOGLE_CLOUD_PROJECT), and leaves the bucket and dataset behind.
local dicomgcs = require "dicomgcs"

local run_id = arg[1] or (tostring(os.time()) .. "-" .. tostring(math.random(1000, 9999)))
local project = os.getenv("GOOGLE_CLOUD_PROJECT") or "embed-project"
local bucket = "dicomgcs-embed-" .. run_id

print(("dicomgcs %s, core %s"):format(dicomgcs._VERSION,
  package.preload["dicomgcs.core"] and "built into the host" or "loaded from " ..
  tostring(package.searchpath("dicomgcs.core", package.cpath))))

local c = assert(dicomgcs.client{ project = project, location = "us-central1",
                                   dataset = "embed-" .. run_id })
print("client: " .. tostring(c))

assert(c.storage:create_bucket(bucket))
for i = 1, 3 do
  assert(c.storage:write(("gs://%s/in/note-%d.txt"):format(bucket, i), "note " .. i .. "\n", "text/plain"))
end
-- arg[0] is this script: upload it too (a file, streamed by the C engine)
local up = assert(c.storage:upload(arg[0], ("gs://%s/in/pipeline.lua"):format(bucket)))
assert(up.failed == 0, "the upload failed")

local count = 0
for obj in c.storage:objects(bucket, { prefix = "in/" }) do
  count = count + 1
  print(("  gs://%s/%s  %s bytes"):format(bucket, obj.name, tostring(obj.size)))
end
assert(count == 4, ("expected 4 objects, listed %d"):format(count))
assert(c.storage:read(("gs://%s/in/note-2.txt"):format(bucket)) == "note 2\n", "read back the wrong bytes")

assert(c:create_dataset{})
local found = false
for _, ds in ipairs(assert(c:list_datasets())) do
  if ds.name == assert(c:dataset_name()) then found = true end
end
assert(found, "the new dataset is not listed")

print(("OK: %d objects in gs://%s, dataset %s"):format(count, bucket, c.dataset))
