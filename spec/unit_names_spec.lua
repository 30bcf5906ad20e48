-- dicomgcs.names: Healthcare resource names checked before any request; no server needed.
local names = require "dicomgcs.names"

local function refused(fn, value, pattern)
  local v, err = fn(value)
  assert.is_nil(v, ("%q was accepted"):format(tostring(value)))
  assert.are.equal("input", err.kind)
  if pattern then assert.truthy(tostring(err):find(pattern, 1, true), tostring(err)) end
  return err
end

describe("names.project", function()
  it("accepts ids, domain-scoped ids and project numbers", function()
    for _, p in ipairs{ "my-project", "abcdef", ("a"):rep(30), "example.com:my-project", "123456789012" } do
      assert.are.equal(p, names.project(p))
    end
  end)

  it("refuses bad ids, naming them", function()
    for _, p in ipairs{ "abcde", ("a"):rep(31), "My-Project", "1project", "project-", "my_project",
                        "my project", "proj/../x", "example.com:", ":my-project", "my-project\n",
                        "my-projéct", "a:b:my-project" } do
      refused(names.project, p, "'" .. p .. "'")
    end
  end)

  it("says how to give a project when there is none", function()
    for _, p in ipairs{ "", false } do
      local err = refused(names.project, p)
      assert.truthy(err.hint:find("GOOGLE_CLOUD_PROJECT", 1, true))
    end
    refused(names.project, nil, "no project given")
    refused(names.project, 123456, "no project given")
  end)
end)

describe("names.location", function()
  it("accepts region names", function()
    for _, l in ipairs{ "us-central1", "europe-west4", "us", "northamerica-northeast1" } do
      assert.are.equal(l, names.location(l))
    end
  end)

  it("refuses what is not a region", function()
    for _, l in ipairs{ "US-central1", "1us", "us central1", "us/central1", "us-central1?x", ("a"):rep(64), "-us" } do
      refused(names.location, l, "'" .. l .. "'")
    end
    refused(names.location, "", "no location given")
    refused(names.location, nil, "no location given")
  end)
end)

describe("names.dataset", function()
  it("accepts letters (UTF-8 too), digits, _ - .", function()
    for _, d in ipairs{ "ds", "my_dataset-1.v2", "données", ("d"):rep(256) } do
      assert.are.equal(d, names.dataset(d))
    end
  end)

  it("refuses path-changing and control characters and over-long ids", function()
    for _, d in ipairs{ "a/b", "a b", "a?b", "a#b", "a%2Fb", "a:b", "a\nb", "a\0b", ("d"):rep(257) } do
      refused(names.dataset, d)
    end
    refused(names.dataset, "", "no dataset given")
  end)
end)

describe("names.dicom_store", function()
  it("accepts ordinary ids", function()
    for _, s in ipairs{ "store", "my.store_1-A", ("s"):rep(256) } do
      assert.are.equal(s, names.dicom_store(s))
    end
  end)

  it("refuses characters that would change the URL path", function()
    for _, s in ipairs{ "a/b", "../x", "a b", "a?x=1", "a#f", "a%2F", "a:b", "a\tb", "a\0b", "a\127b", ("s"):rep(257) } do
      refused(names.dicom_store, s)
    end
    refused(names.dicom_store, nil, "no DICOM store given")
  end)
end)

describe("names.operation_id", function()
  it("accepts Google's decimal ids and word characters", function()
    for _, o in ipairs{ "1234567890123456789", "op_1-a" } do
      assert.are.equal(o, names.operation_id(o))
    end
  end)

  it("refuses full names, paths and junk (the caller strips the name first)", function()
    for _, o in ipairs{ "", "projects/p/locations/l/datasets/d/operations/1", "1/../2", "1 2", "1?x", "1\n", 1 } do
      refused(names.operation_id, o)
    end
  end)
end)
