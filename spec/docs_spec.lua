local env = require "spec.support.env"

describe("the API reference (LDoc, make docs)", function()
  it("builds from the sources without a warning and covers every public module", function()
    local dir = env.tmpdir("ldoc")
    local out, code = env.run("ldoc -c config.ld -d " .. env.quote(dir) .. " .", true)
    assert.are.equal(0, code, out)
    for line in out:gmatch("[^\n]+") do
      assert.truthy(line:find("^reading configuration") or line:find("^output written"), "LDoc said: " .. line)
    end
    for _, m in ipairs{ "dicomgcs", "dicomgcs.client", "dicomgcs.operation", "dicomgcs.gcs", "dicomgcs.dicomweb",
                        "dicomgcs.failures", "dicomgcs.queue", "dicomgcs.cohort", "dicomgcs.auth", "dicomgcs.errors" } do
      local f = io.open(dir .. "/modules/" .. m .. ".html")
      assert.truthy(f, m)
      f:close()
    end
  end)
end)
