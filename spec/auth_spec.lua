-- Application Default Credentials against a strict-auth emulator with 5-second tokens.
-- Keys are generated per run with `openssl genpkey`; see spec/support/auth_helper.lua.
package.path = "spec/support/?.lua;" .. package.path
local H = require "auth_helper"
local auth = require "dicomgcs.auth"
local core = require "dicomgcs.core"
local json = require "dicomgcs.json"

local k -- keys, files and the emulator

-- Emulator mode reads no ambient credential (issue #14 §1): a spec that passes no explicit
-- credentials is a spec of the ADC search order, which asks for it through the test seam
-- `emulator_adc` so that the emulator still stands in for Google's endpoints.
local function provider(opts)
  opts.fetch = opts.fetch or H.fetch
  if type(opts.getenv) ~= "function" then opts.getenv = H.env(k, opts.getenv) end
  if opts.credentials == nil and opts.emulator_adc == nil then opts.emulator_adc = true end
  return auth.default(opts)
end

local function tokeninfo(token)
  return H.admin(k, "GET", "tokeninfo?access_token=" .. token)
end

describe("core.jwt_sign_rs256", function()
  setup(function() k = H.start() end)
  teardown(function() H.stop(k) end)

  it("makes a JWT that openssl verifies with the public key", function()
    local header = '{"alg":"RS256","typ":"JWT"}'
    local claims = '{"iss":"a@b","aud":"https://oauth2.googleapis.com/token","iat":1,"exp":2}'
    local jwt = assert(core.jwt_sign_rs256(k.key, header, claims))
    local h, c, s = jwt:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
    assert.truthy(h, "three base64url parts")
    assert.equals(header, core.base64url_decode(h))
    assert.equals(claims, core.base64url_decode(c))
    H.write(k.dir .. "/input", h .. "." .. c)
    H.write(k.dir .. "/sig", core.base64url_decode(s))
    local out = H.openssl(("dgst -sha256 -verify %s -signature %s %s"):format(k.pub, k.dir .. "/sig", k.dir .. "/input"))
    assert.matches("Verified OK", out)
  end)

  it("refuses a non-RSA key without showing it", function()
    local jwt, err = core.jwt_sign_rs256(k.ec, "{}", "{}")
    assert.is_nil(jwt)
    assert.matches("not an RSA key", err)
    assert.not_matches("BEGIN", err)
  end)

  it("raises on misuse", function()
    assert.has_error(function() core.jwt_sign_rs256(nil, "{}", "{}") end)
  end)
end)

describe("dicomgcs.auth", function()
  setup(function() k = H.start() end)
  teardown(function() H.stop(k) end)
  before_each(function() H.admin(k, "POST", "reset", {}) end)

  describe("search order", function()
    it("uses the credentials option first: a token string", function()
      local p = assert(provider{ credentials = "ya29.explicit-token", getenv = { GOOGLE_APPLICATION_CREDENTIALS = k.files.sa } })
      assert.equals("option", p:source())
      assert.equals("ya29.explicit-token", (p:token()))
      assert.not_matches("explicit%-token", p:describe())
    end)

    it("in emulator mode, takes the key from DICOMGCS_EMULATOR_CREDENTIALS and nothing ambient", function()
      local p = assert(provider{ emulator_adc = false, getenv = { DICOMGCS_EMULATOR_CREDENTIALS = k.files.sa,
        GOOGLE_OAUTH_ACCESS_TOKEN = "ya29.ambient-never", GOOGLE_APPLICATION_CREDENTIALS = k.files.sa_wrong } })
      assert.equals("DICOMGCS_EMULATOR_CREDENTIALS", p:source())
      local tok = assert(p:token())
      assert.equals(H.EMAIL, tokeninfo(tok).principal)
      assert.equals(200, H.api(k, tok).status)
      -- without it, the placeholder, which a --strict-auth emulator refuses
      p = assert(provider{ emulator_adc = false, getenv = { GOOGLE_APPLICATION_CREDENTIALS = k.files.sa } })
      assert.equals("emulator", p:source())
      assert.equals(401, H.api(k, (assert(p:token()))).status)
    end)

    it("a client passes emulator_credentials= to a --strict-auth emulator", function()
      local c = assert(require("dicomgcs").client{ project = "test-project", location = "us-central1",
        emulator = k.host, emulator_credentials = k.files.sa })
      assert.equals("service_account", c.auth:kind())
      local list, err = c:list_datasets()
      assert.truthy(list, err and err.message)
      -- and the same client without the key is refused by the strict emulator
      c = assert(require("dicomgcs").client{ project = "test-project", location = "us-central1", emulator = k.host })
      list, err = c:list_datasets()
      assert.is_nil(list)
      assert.equals(401, err.http_status)
    end)

    it("uses the credentials option: a path and a decoded table", function()
      local p = assert(provider{ credentials = k.files.sa })
      assert.equals("service_account", p:kind())
      assert.matches(k.files.sa, p:describe(), 1, true)
      local p2 = assert(provider{ credentials = k.sa_info })
      assert.equals(H.EMAIL, tokeninfo((assert(p2:token()))).principal)
    end)

    it("honours DICOMGCS_ACCESS_TOKEN, then GOOGLE_OAUTH_ACCESS_TOKEN, before GOOGLE_APPLICATION_CREDENTIALS", function()
      local p = assert(provider{ getenv = { DICOMGCS_ACCESS_TOKEN = "ya29.env-a", GOOGLE_OAUTH_ACCESS_TOKEN = "ya29.env-b",
                                            GOOGLE_APPLICATION_CREDENTIALS = k.files.sa } })
      assert.equals("env:DICOMGCS_ACCESS_TOKEN", p:source())
      assert.equals("ya29.env-a", (p:token()))
      p = assert(provider{ getenv = { GOOGLE_OAUTH_ACCESS_TOKEN = "ya29.env-b" } })
      assert.equals("ya29.env-b", (p:token()))
    end)

    it("re-reads CLOUDSDK_AUTH_ACCESS_TOKEN_FILE on a forced refresh", function()
      local f = H.write(k.dir .. "/token.txt", "ya29.file-one\n")
      local p = assert(provider{ getenv = { CLOUDSDK_AUTH_ACCESS_TOKEN_FILE = f } })
      assert.equals("ya29.file-one", (p:token()))
      H.write(f, "ya29.file-two")
      assert.equals("ya29.file-two", (p:token(true, "ya29.file-one")))
    end)

    it("uses GOOGLE_APPLICATION_CREDENTIALS before the gcloud file and the metadata server", function()
      local cfg = k.dir .. "/gcloud-cfg"
      os.execute("mkdir -p " .. cfg)
      H.write_json(cfg .. "/application_default_credentials.json", { type = "authorized_user", client_id = "c",
        client_secret = "s3cr3t-xyz", refresh_token = "1//rt-never" })
      local p = assert(provider{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = k.files.sa, CLOUDSDK_CONFIG = cfg } })
      assert.equals("GOOGLE_APPLICATION_CREDENTIALS", p:source())
      p = assert(provider{ getenv = { CLOUDSDK_CONFIG = cfg } })
      assert.equals("gcloud", p:source())
      assert.equals("authorized_user", p:kind())
    end)

    it("finds gcloud's file under HOME when CLOUDSDK_CONFIG is unset", function()
      local home = k.dir .. "/home2"
      os.execute("mkdir -p " .. home .. "/.config/gcloud")
      H.write_json(home .. "/.config/gcloud/application_default_credentials.json", k.sa_info)
      local p = assert(provider{ getenv = { HOME = home } })
      assert.equals("gcloud", p:source())
      assert.matches("gcloud ADC file " .. home, p:describe(), 1, true)
    end)

    it("falls back to the metadata server (GCE_METADATA_HOST)", function()
      local p = assert(provider{ getenv = { DICOMGCS_EMULATOR_HOST = false, GCE_METADATA_HOST = k.host } })
      assert.equals("metadata", p:source())
      assert.matches(H.EMAIL, p:describe(), 1, true)
      local tok = assert(p:token())
      assert.equals(200, H.api(k, tok).status)
    end)

    it("reports missing default credentials quickly when nothing answers", function()
      local t0 = os.time()
      local p, err = provider{ getenv = { DICOMGCS_EMULATOR_HOST = false, GCE_METADATA_HOST = "127.0.0.1:1" } }
      assert.is_nil(p)
      assert.equals("auth", err.kind)
      assert.matches("Your default credentials were not found", err.message)
      assert.matches("set%-up%-adc", err.message)
      assert.matches("GOOGLE_APPLICATION_CREDENTIALS", err.hint)
      assert.is_true(os.time() - t0 <= 3)
    end)

    it("skips the metadata server with NO_GCE_CHECK=true", function()
      local p, err = provider{ getenv = { NO_GCE_CHECK = "true" } }
      assert.is_nil(p)
      assert.matches("NO_GCE_CHECK", err.hint)
    end)

    it("raises on an unknown option", function()
      assert.has_error(function() auth.default{ credentail = "x" } end, "auth.default: unknown option 'credentail'")
    end)
  end)

  describe("broken sources are hard errors that name the source", function()
    it("a missing GOOGLE_APPLICATION_CREDENTIALS file does not fall through", function()
      local p, err = provider{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = k.dir .. "/nope.json", DICOMGCS_EMULATOR_HOST = k.host } }
      assert.is_nil(p)
      assert.matches("GOOGLE_APPLICATION_CREDENTIALS=" .. k.dir .. "/nope.json", err.message, 1, true)
      assert.matches("cannot read credential file", err.message)
      assert.truthy(err.hint)
    end)

    it("malformed JSON", function()
      local _, err = provider{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = k.files.malformed } }
      assert.matches("not valid JSON", err.message)
      assert.matches(k.files.malformed, err.message, 1, true)
    end)

    it("an unknown type", function()
      local _, err = provider{ credentials = k.files.badtype }
      assert.matches("does not have a valid type", err.message)
      assert.matches("service_account", err.hint)
    end)

    it("a non-RSA key names the file, never the key", function()
      local _, err = provider{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = k.files.sa_ec } }
      assert.matches("not an RSA key", err.message)
      assert.matches(k.files.sa_ec, err.message, 1, true)
      assert.not_matches("BEGIN", tostring(err))
    end)

    it("an unparsable key", function()
      local _, err = provider{ credentials = k.files.sa_garbage }
      assert.matches("not a PEM%-encoded", err.message)
    end)

    it("a broken gcloud file is an error, not a fall-through", function()
      local cfg = k.dir .. "/gcloud-broken"
      os.execute("mkdir -p " .. cfg)
      H.write(cfg .. "/application_default_credentials.json", "{")
      local _, err = provider{ getenv = { CLOUDSDK_CONFIG = cfg } }
      assert.matches("gcloud ADC file", err.message)
    end)
  end)

  describe("service accounts", function()
    it("exchange a signed JWT at token_uri for a token the strict emulator accepts", function()
      local p = assert(provider{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = k.files.sa } })
      local tok, exp = p:token()
      assert.matches("^ya29%.", tok)
      assert.is_true(exp >= 1 and exp <= 5)
      local info = tokeninfo(tok)
      assert.equals(H.EMAIL, info.principal)
      assert.equals("https://www.googleapis.com/auth/cloud-platform", info.scope)
      assert.equals(200, H.api(k, tok).status)
      assert.equals(401, H.api(k, nil).status)
      assert.equals(401, H.api(k, "ya29.bogus").status)
    end)

    it("send the requested scopes", function()
      local p = assert(provider{ credentials = k.files.sa, scopes = { "https://www.googleapis.com/auth/cloud-healthcare" } })
      assert.equals("https://www.googleapis.com/auth/cloud-healthcare", tokeninfo((assert(p:token()))).scope)
    end)

    it("send Google's token URL to the emulator in emulator mode", function()
      local p = assert(provider{ credentials = k.files.sa_google })
      assert.truthy(p:token())
    end)

    it("report a key the server does not know (invalid_grant: Invalid JWT Signature)", function()
      local p = assert(provider{ credentials = k.files.sa_wrong })
      local tok, err = p:token()
      assert.is_nil(tok)
      assert.equals("invalid_grant", err.reason)
      assert.matches("Invalid JWT Signature", err.message)
      assert.matches("new key", err.hint)
      assert.matches(k.files.sa_wrong, err.message, 1, true)
    end)

    it("report clock skew with a hint about the clock", function()
      local p = assert(provider{ credentials = k.files.sa, clock = function() return os.time() - 7200 end })
      local tok, err = p:token()
      assert.is_nil(tok)
      assert.equals("clock_skew", err.cause)
      assert.matches("clock", err.hint)
    end)

    it("retry the token endpoint on 503, as Google's libraries do", function()
      H.admin(k, "POST", "fail-next", { count = 2, status = 503, error = "temporarily_unavailable" })
      local p = assert(provider{ credentials = k.files.sa })
      assert.truthy(p:token())
      assert.equals(1, H.admin(k, "GET", "state").counters.jwt)   -- the 2 failures were answered before the grant
    end)

    it("mint self-signed JWTs only when asked", function()
      local p = assert(provider{ credentials = k.files.sa, self_signed_jwt = true })
      local tok = assert(p:token())
      assert.matches("^eyJ", tok)
      local claims = json.decode(core.base64url_decode(tok:match("^[^.]+%.([^.]+)")))
      assert.equals(H.EMAIL, claims.iss)
      assert.equals(H.EMAIL, claims.sub)
      assert.is_nil(claims.aud)
      assert.equals(3600, claims.exp - claims.iat)
      assert.not_matches("eyJ", p:describe())
    end)
  end)

  describe("authorized_user", function()
    local function user_file(rt)
      return H.write_json(k.dir .. "/user.json", { type = "authorized_user", client_id = "cid.apps.googleusercontent.com",
        client_secret = "client-secret-123", refresh_token = rt, quota_project_id = "file-quota", account = "u@example.com" })
    end

    it("refreshes with the refresh token", function()
      H.admin(k, "POST", "refresh-tokens", { refresh_token = "1//rt-good", client_id = "cid.apps.googleusercontent.com",
        client_secret = "client-secret-123", account = "u@example.com" })
      local p = assert(provider{ credentials = user_file("1//rt-good") })
      local tok = assert(p:token())
      assert.equals("u@example.com", tokeninfo(tok).principal)
      assert.equals("file-quota", p:quota_project())
      assert.matches("u@example.com", p:describe())
    end)

    it("reports a revoked refresh token with what to do", function()
      local p = assert(provider{ credentials = user_file("1//rt-revoked") })
      local tok, err = p:token()
      assert.is_nil(tok)
      assert.equals("invalid_grant", err.reason)
      assert.matches("expired or revoked", err.message)
      assert.matches("gcloud auth application%-default login", err.hint)
      assert.not_matches("rt%-revoked", tostring(err))
    end)
  end)

  describe("impersonation", function()
    it("through the impersonate_service_account option", function()
      local p = assert(provider{ credentials = k.files.sa, impersonate_service_account = H.TARGET })
      local tok = assert(p:token())
      assert.equals(H.TARGET, tokeninfo(tok).principal)
      assert.equals(200, H.api(k, tok).status)
      assert.matches("impersonated by service account " .. H.EMAIL, p:describe(), 1, true)
    end)

    it("through an impersonated_service_account file", function()
      local f = H.write_json(k.dir .. "/imp.json", { type = "impersonated_service_account",
        service_account_impersonation_url = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/" ..
          H.TARGET .. ":generateAccessToken",
        source_credentials = k.sa_info, delegates = json.array(), quota_project_id = "imp-quota" })
      local p = assert(provider{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = f } })
      assert.equals(H.TARGET, tokeninfo((assert(p:token()))).principal)
      assert.equals("imp-quota", p:quota_project())
    end)

    it("reports a refusal with the role to grant", function()
      H.admin(k, "POST", "deny-impersonation", { emails = { H.TARGET } })
      local p = assert(provider{ credentials = k.files.sa, impersonate_service_account = H.TARGET })
      local tok, err = p:token()
      assert.is_nil(tok)
      assert.equals(403, err.http_status)
      assert.matches("serviceAccountTokenCreator", err.hint)
    end)
  end)

  describe("external_account", function()
    local function ext(cs, extra)
      local t = { type = "external_account",
        audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
        subject_token_type = "urn:ietf:params:oauth:token-type:jwt", token_url = "https://sts.googleapis.com/v1/token",
        credential_source = cs }
      for name, v in pairs(extra or {}) do t[name] = v end
      return H.write_json(k.dir .. "/ext.json", t)
    end

    it("exchanges a file-sourced subject token at STS", function()
      local st = H.write(k.dir .. "/subject.txt", "subject-token-abc")
      local p = assert(provider{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = ext{ file = st } } })
      local tok = assert(p:token())
      assert.matches("^principal://", tokeninfo(tok).principal)
      assert.equals(200, H.api(k, tok).status)
    end)

    it("reads a URL-sourced JSON subject token and impersonates", function()
      local p = assert(provider{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = ext({
        url = k.url .. "/computeMetadata/v1/instance/service-accounts/default/?recursive=true",
        headers = { ["Metadata-Flavor"] = "Google" },
        format = { type = "json", subject_token_field_name = "email" } }, {
        service_account_impersonation_url = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/" ..
          H.TARGET .. ":generateAccessToken" }) } })
      assert.equals(H.TARGET, tokeninfo((assert(p:token()))).principal)
    end)

    it("rejects a subject token the STS refuses", function()
      H.admin(k, "POST", "subject-tokens", { tokens = { "only-this-one" } })
      local st = H.write(k.dir .. "/subject.txt", "subject-token-abc")
      local p = assert(provider{ credentials = ext{ file = st } })
      local tok, err = p:token()
      assert.is_nil(tok)
      assert.equals("invalid_grant", err.reason)
    end)

    it("refuses executable sources", function()
      local _, err = provider{ credentials = ext{ executable = { command = "/bin/true" } } }
      assert.matches("executable", err.message)
    end)
  end)

  describe("quota project", function()
    it("prefers the option, then GOOGLE_CLOUD_QUOTA_PROJECT, then the file", function()
      local info = {}
      for name, v in pairs(k.sa_info) do info[name] = v end
      info.quota_project_id = nil
      local p = assert(provider{ credentials = info })
      assert.is_nil(p:quota_project())
      assert.same({}, p:headers())
      p = assert(provider{ credentials = "ya29.x", getenv = { GOOGLE_CLOUD_QUOTA_PROJECT = "env-q" } })
      assert.equals("env-q", p:quota_project())
      p = assert(provider{ credentials = "ya29.x", quota_project = "opt-q", getenv = { GOOGLE_CLOUD_QUOTA_PROJECT = "env-q" } })
      assert.same({ "x-goog-user-project: opt-q" }, p:headers())
    end)
  end)

  describe("refresh", function()
    it("reuses a token until the margin, then refreshes across expiry", function()
      local p = assert(provider{ credentials = k.files.sa })
      local t1 = assert(p:token())
      for _ = 1, 50 do assert.equals(t1, (p:token())) end
      assert.equals(1, H.admin(k, "GET", "state").counters.jwt)
      H.sleep(3.2)  -- 5 s tokens, margin min(225, 5/2)
      local t2 = assert(p:token())
      assert.not_equals(t1, t2)
      assert.equals(2, H.admin(k, "GET", "state").counters.jwt)
      H.sleep(5.5)
      assert.equals(200, H.api(k, (assert(p:token()))).status)
    end)

    it("collapses forced refreshes for the same rejected token into one", function()
      local p = assert(provider{ credentials = k.files.sa })
      local fn = p:token_provider()
      local t1 = assert(fn(false))
      local t2 = assert(fn(true, t1))
      assert.not_equals(t1, t2)
      for _ = 1, 10 do assert.equals(t2, (fn(true, t1))) end
      assert.equals(2, H.admin(k, "GET", "state").counters.jwt)
    end)

    it("gets a new token after the server revokes the old one", function()
      local p = assert(provider{ credentials = k.files.sa })
      local fn = p:token_provider()
      local t1 = assert(fn(false))
      H.admin(k, "POST", "revoke", { all = true })
      assert.equals(401, H.api(k, t1).status)
      local t2 = assert(fn(true, t1))
      assert.equals(200, H.api(k, t2).status)
    end)

    it("keeps serving a still-valid token when a refresh fails, then reports the failure", function()
      local p = assert(provider{ credentials = k.files.sa })
      local t1 = assert(p:token())
      H.sleep(3.2)
      -- A 400 is not retried (a 503 would be, for 1 + 2 s, outlasting this 5 s token).
      H.admin(k, "POST", "fail-next", { count = 20, status = 400, error = "invalid_request" })
      assert.equals(t1, (p:token()))
      assert.truthy(p:last_error())
      H.sleep(2.5)
      local tok, err = p:token()
      assert.is_nil(tok)
      assert.equals("invalid_request", err.reason)
      H.admin(k, "POST", "reset", {})
    end)

    it("gives the engine a string error", function()
      local p = assert(provider{ credentials = k.files.sa_wrong })
      local tok, msg = p:token_provider()(false)
      assert.is_nil(tok)
      assert.equals("string", type(msg))
      assert.matches("Invalid JWT Signature", msg)
    end)
  end)

  describe("with the engine", function()
    it("a job that outlives several 5-second tokens completes with nothing lost", function()
      if not H.has_engine then pending("needs core.engine with token_provider (csrc/ldg_engine.c)") return end
      local p = assert(provider{ credentials = k.files.sa })
      local eng = core.engine{ concurrency = 8, token_provider = p:token_provider() }
      local t0, done, ok = os.time(), 0, 0
      local revoked = false
      while os.time() - t0 < 14 do
        for _ = 1, 8 do
          eng:submit{ method = "GET", url = k.url .. "/v1/projects/p/locations/l/datasets" }
        end
        if not revoked and os.time() - t0 >= 7 then
          H.admin(k, "POST", "revoke", { all = true })   -- in-flight tokens die: 401, refresh, retry
          revoked = true
        end
        while eng:pending() > 0 do
          for _, d in ipairs(eng:step(100)) do
            done = done + 1
            if d.res and d.res.status == 200 then ok = ok + 1
            elseif os.getenv("AUTH_SPEC_DEBUG") then
              io.stderr:write(("job failure at %ds: %s\n"):format(os.time() - t0,
                d.res and (d.res.status .. " " .. tostring(d.res.body):sub(1, 120)) or tostring(d.err and d.err.message)))
            end
          end
        end
        H.sleep(0.2)
      end
      eng:close()
      assert.is_true(done > 100)
      assert.equals(done, ok)
      assert.is_true(H.admin(k, "GET", "state").counters.jwt >= 4)
    end)
  end)

  describe("secrecy", function()
    it("never shows a token, key, refresh token or client secret", function()
      local secrets = { "client-secret-123", "1//rt-secret-refresh", "subject-token-abc" }
      for line in (k.key .. k.other .. k.ec):gmatch("[^\n]+") do
        if not line:find("-----", 1, true) then secrets[#secrets + 1] = line end
      end
      local shown = {}
      local function show(...) for _, v in ipairs{ ... } do H.all_text(v, shown) end end
      -- Capture anything printed while the module runs.
      local real_print, real_write, real_stderr = print, io.write, io.stderr
      print = function(...) show(...) end             -- luacheck: ignore
      io.write = function(...) show(...) return io.stdout end -- luacheck: ignore 122

      local function try(opts)
        local p, err = provider(opts)
        show(err)
        if p then
          show(tostring(p), p:describe(), p:quota_project(), p:headers(), p:source(), p:kind(), p:email())
          local tok, e2 = p:token()
          if tok then secrets[#secrets + 1] = tok end
          show(e2, p:last_error())
          local ftok, msg = p:token_provider()(true, tok)
          if ftok then secrets[#secrets + 1] = ftok end
          show(msg)
        end
      end
      local ok, perr = pcall(function()
        H.admin(k, "POST", "refresh-tokens", { refresh_token = "1//rt-secret-refresh", client_id = "cid",
          client_secret = "client-secret-123" })
        local user = H.write_json(k.dir .. "/user_s.json", { type = "authorized_user", client_id = "cid",
          client_secret = "client-secret-123", refresh_token = "1//rt-secret-refresh" })
        local user_bad = H.write_json(k.dir .. "/user_b.json", { type = "authorized_user", client_id = "wrong",
          client_secret = "client-secret-123", refresh_token = "1//rt-secret-refresh" })
        try{ credentials = k.files.sa }
        try{ credentials = k.files.sa_wrong }
        try{ credentials = k.files.sa_ec }
        try{ credentials = k.files.sa_garbage }
        try{ credentials = k.files.malformed }
        try{ credentials = k.files.sa, clock = function() return 0 end }
        try{ credentials = user }
        try{ credentials = user_bad }
        try{ credentials = user, impersonate_service_account = H.TARGET }
        try{ credentials = "ya29.explicit-secret-token" }
        secrets[#secrets + 1] = "ya29.explicit-secret-token"
        -- A token endpoint that echoes the secrets back in its error text.
        H.admin(k, "POST", "fail-next", { count = 2, error = "invalid_grant",
          error_description = "bad refresh token 1//rt-secret-refresh for client-secret-123" })
        try{ credentials = user }
        H.admin(k, "POST", "fail-next", { count = 1, error = "invalid_grant",
          error_description = "echo " .. k.key:match("\n([^\n]+)\n") })
        try{ credentials = k.files.sa }
        local st = H.write(k.dir .. "/subject.txt", "subject-token-abc")
        H.admin(k, "POST", "subject-tokens", { tokens = { "x" } })
        try{ credentials = H.write_json(k.dir .. "/ext_s.json", { type = "external_account", audience = "//a",
          subject_token_type = "urn:ietf:params:oauth:token-type:jwt", token_url = "https://sts.googleapis.com/v1/token",
          credential_source = { file = st } }) }
        try{ getenv = { GOOGLE_APPLICATION_CREDENTIALS = k.dir .. "/missing.json" } }
        try{ getenv = { DICOMGCS_EMULATOR_HOST = false, GCE_METADATA_HOST = "127.0.0.1:1" } }
        try{ getenv = { DICOMGCS_EMULATOR_HOST = false, GCE_METADATA_HOST = k.host } }
      end)
      print, io.write = real_print, real_write    -- luacheck: ignore 121 122
      assert.equals(real_stderr, io.stderr)
      assert(ok, perr)
      local all = table.concat(shown, "\n")
      assert.is_true(#shown > 50)
      for _, s in ipairs(secrets) do
        local at = all:find(s, 1, true)
        if at and os.getenv("AUTH_SPEC_DEBUG") then io.stderr:write("LEAK CONTEXT: ", all:sub(at - 300, at - 1):gsub(s, "<S>"), "\n") end
        assert.is_nil(at, "a secret was shown: " .. s:sub(1, 6) .. "…")
      end
      assert.is_nil(all:find("BEGIN", 1, true))
      assert.is_nil(all:find("ya29.", 1, true))
      assert.is_nil(all:find("eyJ", 1, true))
      assert.matches("REDACTED", all)   -- the echoing endpoint was caught
    end)
  end)
end)
