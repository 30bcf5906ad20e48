-- #17: output scripts can rely on (YAML a real parser reads, JSON stable and pretty, table
-- honoured or refused), gcloud's properties as defaults, full resource names, global flags,
-- prompts under a pseudo-terminal, shell completion and the man page.
local env = require "spec.support.env"
local file = require "spec.support.file"
local json = require "dicomgcs.json"

local loc = "--project=spec-project --location=us-central1"

-- Parse YAML with PyYAML (Debian's python3-yaml): returns the value as JSON-decoded Lua, or
-- nil and PyYAML's complaint.
local function yaml_load(text)
  local path = os.tmpname()
  file.write(path, text)
  local out, code = env.run("/usr/bin/python3 -c " .. env.quote(
    "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))") .. " " .. env.quote(path) .. " 2>&1")
  os.remove(path)
  if code ~= 0 then return nil, out end
  return json.decode(out)
end

-- A dataset with a store and a finished import whose operation has an `@type` in it.
local setup
local function fixture()
  if setup then return setup end
  local c = env.client{ token = "t", dataset = env.unique("ds"), dicom_store = "st" }
  assert(c:create_dataset{}); assert(c:create_dicom_store{})
  local bucket = env.bucket(c, nil, "import")
  env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 2, nested = false }, "cli-out")
  assert(c.storage:write("gs://" .. bucket .. "/in/bad.dcm", "not dicom"))
  local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
  op:wait{ interval = 0.05 }
  setup = { c = c, op = op, ds = c.dataset, bucket = bucket }
  return setup
end

describe("dicomgcs --format", function()
  it("yaml is valid YAML (PyYAML reads it) with the same content as json", function()
    local f = fixture()
    local y, code = env.dicomgcs("operations describe " .. f.op.name .. " --format=yaml " .. loc)
    assert.are.equal(0, code)
    assert.truthy(y:find("@type", 1, true), y)
    local doc = assert(yaml_load(y))
    local j = json.decode((env.dicomgcs("operations describe " .. f.op.name .. " --format=json " .. loc)))
    assert.are.same(j, doc)
    assert.are.equal(f.op.name, doc.name)
    -- the default format is YAML too
    local plain = env.dicomgcs("operations describe " .. f.op.name .. " " .. loc)
    assert.are.same(j, assert(yaml_load(plain)))
  end)

  it("yaml quotes what a YAML reader would misread (yes, no, numbers, colons, empty)", function()
    local v = json.decode([[{"a":"yes","b":"007","c":"x: y","d":"","e":"- item","f":"#c","g":"on",
      "h":"null","i":"1.5","j":"multi\nline","k":[],"l":{},"m":"@x","n":" pad "}]])
    v.k = json.array()
    local text = require("dicomgcs.cli.output").yaml(v)
    assert.are.same({ a = "yes", b = "007", c = "x: y", d = "", e = "- item", f = "#c", g = "on", h = "null",
      i = "1.5", j = "multi\nline", k = {}, l = {}, m = "@x", n = " pad " }, assert(yaml_load(text)))
  end)

  it("table and value cells never carry a control sequence to the terminal", function()
    local output = require "dicomgcs.cli.output"
    local rows = { { name = "evil\27]0;title\7\27[2J\194\155Jx\n2" } }
    for _, fmt in ipairs{ "table(name)", "value(name)" } do
      local text = output.render(rows, assert(output.parse_format(fmt)))
      assert.is_nil(text:find("[\0-\8\11-\31\127]"), fmt)
      assert.is_nil(text:find("\194[\128-\159]"), fmt)
      assert.truthy(text:find("evil", 1, true))
    end
  end)

  it("json is indented, keys sorted, no \\/ escapes, the same text on every run", function()
    local f = fixture()
    local runs = {}
    for i = 1, 3 do
      local out, code = env.dicomgcs("operations describe " .. f.op.name .. " --format=json " .. loc)
      assert.are.equal(0, code)
      runs[i] = out
    end
    assert.are.equal(runs[1], runs[2])
    assert.are.equal(runs[1], runs[3])
    assert.is_nil(runs[1]:find("\\/", 1, true))
    assert.truthy(runs[1]:find("gs://", 1, true) or runs[1]:find("/operations/", 1, true))
    assert.truthy(runs[1]:find("\n  \"", 1, true), "indented: " .. runs[1])
    local keys = {}
    for k in runs[1]:gmatch('\n  "([^"]+)":') do keys[#keys + 1] = k end
    local sorted = { table.unpack(keys) }
    table.sort(sorted)
    assert.are.same(sorted, keys)
    local compact = env.dicomgcs("operations describe " .. f.op.name .. " --format=json-compact " .. loc)
    assert.are.equal(1, select(2, compact:gsub("\n", "")))
    assert.are.same(json.decode(runs[1]), json.decode(compact))
  end)

  it("table is honoured with a projection, refused without columns, never YAML", function()
    local f = fixture()
    local out, code, err = env.dicomgcs("operations describe " .. f.op.name .. " --format=table " .. loc)
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.truthy(err:find("table(", 1, true), err)
    out, code = env.dicomgcs("operations describe " .. f.op.name .. " --format='table(done, metadata.counter.success:label=OK)' " .. loc)
    assert.are.equal(0, code)
    assert.truthy(out:match("^DONE%s+OK\ntrue%s+2\n$"), out)
    out, code = env.dicomgcs("operations describe " .. f.op.name .. " --format='value(name, done)' " .. loc)
    assert.are.equal(0, code)
    assert.are.equal(f.op.name .. "\ttrue\n", out)
    out, code = env.dicomgcs("operations list --format=table --dataset=" .. f.ds .. " " .. loc)
    assert.are.equal(0, code)
    assert.truthy(out:match("^ID%s+METHOD%s+DONE%s+SUCCESS%s+FAILURE\n"), out)
  end)

  it("operations failures: a header in table form; CSV and JSON stay", function()
    local f = fixture()
    local out, code = env.dicomgcs("operations failures " .. f.op.name .. " --format=table " .. loc)
    assert.are.equal(0, code)
    assert.truthy(out:match("^URI%s+STATUS%s+REASON\n"), out)
    assert.truthy(out:find("gs://" .. f.bucket .. "/in/bad.dcm", 1, true), out)
    local csv = env.dicomgcs("operations failures " .. f.op.name .. " --format=csv " .. loc)
    assert.truthy(csv:find("^input,outcome,code,reason\r\n"), csv)
    local doc = json.decode((env.dicomgcs("operations failures " .. f.op.name .. " --format=json " .. loc)))
    assert.are.equal(1, #doc.failures)
    assert.are.equal("gs://" .. f.bucket .. "/in/bad.dcm", doc.failures[1].uri)
  end)

  it("list flags: --filter, --sort-by, --limit, --page-size", function()
    local f = fixture()
    local base = "datasets list --format=json " .. loc
    local all = json.decode((env.dicomgcs(base)))
    assert.is_true(#all >= 1)
    local one = json.decode((env.dicomgcs(base .. " --filter=name:" .. f.ds)))
    assert.are.equal(1, #one)
    assert.are.equal(f.ds, one[1].name:match("[^/]+$"))
    local none = json.decode((env.dicomgcs(base .. " --filter='name:" .. f.ds .. " AND NOT name:" .. f.ds .. "'")))
    assert.are.equal(0, #none)
    local asc = json.decode((env.dicomgcs(base .. " --sort-by=name")))
    local desc = json.decode((env.dicomgcs(base .. " --sort-by=~name --page-size=1")))
    assert.are.equal(#asc, #desc)
    for i = 2, #asc do assert.is_true(asc[i - 1].name <= asc[i].name) end
    for i = 1, #asc do assert.are.equal(asc[i].name, desc[#desc - i + 1].name) end
    assert.are.equal(1, #json.decode((env.dicomgcs(base .. " --limit=1"))))
    local ops = json.decode((env.dicomgcs("operations list --format=json --filter='done=true metadata.counter.failure>0' --dataset=" ..
      f.ds .. " " .. loc)))
    assert.are.equal(1, #ops)
    assert.are.equal(f.op.name, ops[1].name)
  end)
end)

describe("dicomgcs defaults and names", function()
  -- a gcloud configuration folder with an active configuration "work"
  local function gcloud_config(props)
    local dir = env.tmpdir("gcloud")
    file.write(dir .. "/active_config", "work\n")
    os.execute("mkdir -p " .. env.quote(dir .. "/configurations"))
    file.write(dir .. "/configurations/config_default", "[core]\nproject = wrong-project\n")
    file.write(dir .. "/configurations/config_work", props)
    return dir
  end

  it("reads gcloud's active configuration, then its variables, then flags; config list says where from", function()
    local f = fixture()
    local dir = gcloud_config("[core]\naccount = me@example.com\nproject = spec-project\n\n[healthcare]\n" ..
      "location = us-central1\ndataset = " .. f.ds .. "\n")
    local pre = "CLOUDSDK_CONFIG=" .. env.quote(dir) .. " CLOUDSDK_CORE_PROJECT= CLOUDSDK_HEALTHCARE_LOCATION= " ..
      "CLOUDSDK_HEALTHCARE_DATASET= GOOGLE_CLOUD_PROJECT= DICOMGCS_EMULATOR_HOST=" .. env.emulator().host .. " "
    local out, code, err = env.run_split(pre .. "bin/dicomgcs config list --format=json")
    assert.are.equal(0, code, err)
    local rows = {}
    for _, r in ipairs(json.decode(out)) do rows[r.property] = r end
    assert.are.equal("spec-project", rows["core/project"].value)
    assert.truthy(rows["core/project"].source:find("gcloud configuration work", 1, true))
    assert.are.equal(f.ds, rows["healthcare/dataset"].value)
    -- the defaults work: no flag names the project, location or dataset
    local stores = json.decode((env.run_split(pre .. "bin/dicomgcs dicom-stores list --format=json")))
    assert.are.equal("st", stores[1].name:match("[^/]+$"))
    -- the environment variable beats the file, the flag beats both
    out = env.run_split(pre:gsub("CLOUDSDK_HEALTHCARE_DATASET= ", "CLOUDSDK_HEALTHCARE_DATASET=from-env ") ..
      "bin/dicomgcs config list --format=json")
    for _, r in ipairs(json.decode(out)) do rows[r.property] = r end
    assert.are.equal("from-env", rows["healthcare/dataset"].value)
    assert.are.equal("environment CLOUDSDK_HEALTHCARE_DATASET", rows["healthcare/dataset"].source)
    out = env.run_split(pre:gsub("CLOUDSDK_HEALTHCARE_DATASET= ", "CLOUDSDK_HEALTHCARE_DATASET=from-env ") ..
      "bin/dicomgcs config list --format=json --dataset=from-flag")
    for _, r in ipairs(json.decode(out)) do rows[r.property] = r end
    assert.are.equal("from-flag", rows["healthcare/dataset"].value)
    assert.are.equal("flag --dataset", rows["healthcare/dataset"].source)
    -- CLOUDSDK_ACTIVE_CONFIG_NAME picks another configuration
    out = env.run_split(pre .. "CLOUDSDK_ACTIVE_CONFIG_NAME=default bin/dicomgcs config list --format=json")
    for _, r in ipairs(json.decode(out)) do rows[r.property] = r end
    assert.are.equal("wrong-project", rows["core/project"].value)
    -- a configuration name cannot lead out of the folder
    out = env.run_split(pre .. "CLOUDSDK_ACTIVE_CONFIG_NAME=../../etc bin/dicomgcs config list --format=json")
    for _, r in ipairs(json.decode(out)) do rows[r.property] = r end
    assert.are.equal(json.null, rows["core/project"].value)
  end)

  it("takes full resource names wherever an id goes", function()
    local f = fixture()
    local ds_name = "projects/spec-project/locations/us-central1/datasets/" .. f.ds
    local h = env.emulator().host
    local out, code = env.dicomgcs("dicom-stores describe " .. ds_name .. "/dicomStores/st --format=json", h)
    assert.are.equal(0, code)
    assert.are.equal(ds_name .. "/dicomStores/st", json.decode(out).name)
    out, code = env.dicomgcs("dicom-stores list --dataset=" .. ds_name .. " --format=json", h)
    assert.are.equal(0, code)
    assert.are.equal(ds_name .. "/dicomStores/st", json.decode(out)[1].name)
    out, code = env.dicomgcs("datasets describe " .. ds_name .. " --format=json", h)
    assert.are.equal(0, code)
    assert.are.equal(ds_name, json.decode(out).name)
    out, code = env.dicomgcs("operations describe " .. f.op.name .. " --format=json", h)
    assert.are.equal(0, code)
    assert.are.equal(f.op.name, json.decode(out).name)
    out, code = env.dicomgcs("dicomweb search studies --dicom-store=" .. ds_name .. "/dicomStores/st --format=json", h)
    assert.are.equal(0, code)
    assert.are.equal(1, #json.decode(out))
  end)

  it("--version, --log-http with secrets masked", function()
    local out, code = env.dicomgcs("--version")
    assert.are.equal(0, code)
    assert.are.equal("dicomgcs " .. require("dicomgcs.version") .. "\n", out)
    local secret = "ya29.spec-secret-token-0123456789abcdef"
    local _, lcode, err = env.run_split(("DICOMGCS_EMULATOR_HOST=%s DICOMGCS_ACCESS_TOKEN=%s bin/dicomgcs " ..
      "datasets list --log-http %s"):format(env.emulator().host, secret, loc))
    assert.are.equal(0, lcode, err)
    assert.truthy(err:find("==== request start ====", 1, true), err)
    assert.truthy(err:find("uri: http://" .. env.emulator().host .. "/v1/projects/spec-project/locations/us-central1/datasets", 1, true), err)
    assert.truthy(err:find("---- response start ----", 1, true), err)
    assert.truthy(err:find("status: 200", 1, true), err)
    assert.is_nil(err:find(secret, 1, true))
    -- what the logger masks, whatever a request or response carries
    local mask = require("dicomgcs.cli").mask
    local text = mask("Authorization: Bearer " .. secret .. "\nx-goog-api-key: AIzaSyA-spec-key-123456789\n" ..
      "uri: https://x/o?alt=json&key=AIzaSpecKey&X-Goog-Signature=abcdef0123&upload_id=ok\n" ..
      '{"access_token": "' .. secret .. '", "refresh_token":"1//spec-refresh", "client_secret":"shh-spec-secret",' ..
      '"private_key":"-----BEGIN PRIVATE KEY-----\\nMIIspec\\n-----END PRIVATE KEY-----\\n"}')
    for _, s in ipairs{ secret, "AIzaSyA-spec-key", "AIzaSpecKey", "abcdef0123", "1//spec-refresh", "shh-spec-secret", "MIIspec" } do
      assert.is_nil(text:find(s, 1, true), s .. " leaked: " .. text)
    end
    assert.truthy(text:find("upload_id=ok", 1, true), text)
  end)

  it("--impersonate-service-account (or gcloud's property) asks IAM Credentials for a token", function()
    local sa = "nobody@spec-project.iam.gserviceaccount.com"
    for _, how in ipairs{ "bin/dicomgcs datasets list --impersonate-service-account=" .. sa,
                          "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT=" .. sa .. " bin/dicomgcs datasets list" } do
      local _, code, err = env.run_split(("DICOMGCS_EMULATOR_HOST=%s DICOMGCS_ACCESS_TOKEN=source-token-spec %s %s"):format(
        env.emulator().host, how, loc))
      -- the emulator does not take the made-up source token: the error shows the impersonation went
      -- through IAM Credentials generateAccessToken for that account, and nothing else
      assert.are.equal(1, code, err)
      assert.truthy(err:find(sa, 1, true), err)
      assert.truthy(err:find(":generateAccessToken", 1, true), err)
      assert.is_nil(err:find("traceback", 1, true), err)
      assert.is_nil(err:find("source-token-spec", 1, true), err)
    end
  end)
end)

describe("dicomgcs prompts", function()
  local function pty(cmd, answer)
    return env.run_split(("printf %s | script -qec %s /dev/null"):format(env.quote(answer), env.quote(cmd)))
  end

  it("asks Y/n on a terminal before deleting a dataset; --quiet and a pipe do not ask", function()
    local c = env.client{ token = "t" }
    local h = env.emulator().host
    local pre = ("DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs "):format(h)
    local ds = env.unique("ds")
    assert(c:create_dataset{ dataset = ds })
    local out, code = pty(pre .. "datasets delete " .. ds .. " " .. loc, "maybe\nn\n")
    assert.truthy(out:find("Do you want to continue (Y/n)?", 1, true), out)
    assert.are.equal(1, code, out)
    assert.truthy(out:find("Aborted by user.", 1, true), out)
    assert.truthy(out:find("Please enter 'y' or 'n'", 1, true), out)
    assert.truthy(c:get_dataset{ dataset = ds }, "still there")
    out, code = pty(pre .. "datasets delete " .. ds .. " " .. loc, "y\n")
    assert.are.equal(0, code, out)
    assert.is_nil(c:get_dataset{ dataset = ds })
    -- --quiet: no question even on a terminal
    ds = env.unique("ds")
    assert(c:create_dataset{ dataset = ds })
    out, code = pty(pre .. "datasets delete --quiet " .. ds .. " " .. loc, "n\n")
    assert.are.equal(0, code, out)
    assert.is_nil(out:find("(Y/n)", 1, true), out)
    assert.is_nil(c:get_dataset{ dataset = ds })
    -- gcloud's core/disable_prompts does what --quiet does, from its variable or the configuration
    ds = env.unique("ds")
    assert(c:create_dataset{ dataset = ds })
    local gdir = env.tmpdir("gcloud-q")
    os.execute("mkdir -p " .. env.quote(gdir .. "/configurations"))
    file.write(gdir .. "/configurations/config_default", "[core]\ndisable_prompts = True\n")
    out, code = pty("CLOUDSDK_CONFIG=" .. env.quote(gdir) .. " " .. pre .. "datasets delete " .. ds .. " " .. loc, "n\n")
    assert.are.equal(0, code, out)
    assert.is_nil(out:find("(Y/n)", 1, true), out)
    assert.is_nil(c:get_dataset{ dataset = ds })
    ds = env.unique("ds")
    assert(c:create_dataset{ dataset = ds })
    out, code = pty("CLOUDSDK_CORE_DISABLE_PROMPTS=1 " .. pre .. "datasets delete " .. ds .. " " .. loc, "n\n")
    assert.are.equal(0, code, out)
    assert.is_nil(c:get_dataset{ dataset = ds })
    -- not a terminal: gcloud takes the default (continue)
    ds = env.unique("ds")
    assert(c:create_dataset{ dataset = ds })
    local _, pcode, perr = env.dicomgcs("datasets delete " .. ds .. " " .. loc .. " </dev/null")
    assert.are.equal(0, pcode, perr)
    assert.is_nil(perr:find("(Y/n)", 1, true), perr)
    assert.is_nil(c:get_dataset{ dataset = ds })
  end)

  it("asks before deleting a DICOM store and a bucket prefix", function()
    local f = fixture()
    local h = env.emulator().host
    local pre = ("DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs "):format(h)
    local out, code = pty(pre .. "dicom-stores delete st --dataset=" .. f.ds .. " " .. loc, "no\n")
    assert.are.equal(1, code, out)
    assert.truthy(out:find("DICOM store [st]", 1, true), out)
    assert.truthy(f.c:get_dicom_store{})
    out, code = pty(pre .. "storage rm -r gs://" .. f.bucket .. "/in/ " .. loc, "n\n")
    assert.are.equal(1, code, out)
    assert.truthy(out:find("(Y/n)", 1, true), out)
    assert.truthy(f.c.storage:stat("gs://" .. f.bucket .. "/in/bad.dcm"))
  end)
end)

describe("dicomgcs completion and man page", function()
  it("the bash completion script loads and completes verbs and flags", function()
    local out, code = env.run([[bash -c 'source <(bin/dicomgcs completion bash); complete -p dicomgcs' 2>&1]])
    assert.are.equal(0, code, out)
    assert.truthy(out:find("-F _dicomgcs dicomgcs", 1, true), out)
    local function complete(words)
      local script = "source <(bin/dicomgcs completion bash); COMP_WORDS=(" .. words .. "); " ..
        "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _dicomgcs; echo \"${COMPREPLY[*]}\""
      return (env.run("bash -c " .. env.quote(script) .. " 2>&1"):gsub("%s+$", ""))
    end
    assert.are.equal("list", complete("dicomgcs datasets li"))
    assert.are.equal("operations", complete("dicomgcs --project p oper"))
    assert.are.equal("gcs", complete("dicomgcs dicom-stores import ''"))
    assert.are.equal("--gcs-uri=", complete("dicomgcs dicom-stores import gcs st --gcs-u"))
    assert.are.equal("bash zsh", complete("dicomgcs completion ''"))
    -- every command of the table is reachable
    for _, c in ipairs(require("dicomgcs.cli").commands) do
      local words = "dicomgcs " .. table.concat(c.path, " ", 1, #c.path - 1) .. " " .. c.path[#c.path]:sub(1, 2)
      assert.truthy((" " .. complete(words) .. " "):find(" " .. c.path[#c.path] .. " ", 1, true), words)
    end
  end)

  it("the zsh script is generated from the same table", function()
    local out, code = env.run("bin/dicomgcs completion zsh")
    assert.are.equal(0, code)
    assert.truthy(out:find("bashcompinit", 1, true))
    assert.truthy(out:find("dicom-stores import gcs", 1, true))
    if env.run("command -v zsh"):find("zsh") then
      local zout, zcode = env.run("zsh -c 'source <(bin/dicomgcs completion zsh); echo ${+functions[_dicomgcs]}' 2>&1")
      assert.are.equal(0, zcode, zout)
      assert.truthy(zout:find("1"), zout)
    end
  end)

  it("man/dicomgcs.1 is what scripts/gen-man writes, and names every command", function()
    local generated = env.run("lua5.4 scripts/gen-man --print")
    assert.are.equal(file.read("man/dicomgcs.1"), generated, "man/dicomgcs.1 is stale: run scripts/gen-man")
    for _, c in ipairs(require("dicomgcs.cli").commands) do
      assert.truthy(generated:find(("dicomgcs " .. c.usage):gsub("\\", "\\e"):gsub("%-", "\\-"), 1, true), c.usage)
    end
    local rockspec = file.read("rockspec/dicomgcs-scm-1.rockspec")
    assert.truthy(rockspec:find('copy_directories = { "man" }', 1, true))
  end)
end)
