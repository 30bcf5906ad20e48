--- What the DICOMweb files share (private to dicomgcs.dicomweb; init.lua re-exports the public
-- ones): DICOM JSON values, the one UID check, resource paths, request headers.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal
-- modules".
-- @module dicomgcs.dicomweb.shared
-- @local
local errors = require "dicomgcs.errors"

local shared = {}

--- Keyword → tag for the attributes searches usually name (for `dicomweb.value`).
shared.TAGS = {
  SpecificCharacterSet = "00080005", SOPClassUID = "00080016", SOPInstanceUID = "00080018",
  StudyDate = "00080020", SeriesDate = "00080021", StudyTime = "00080030", AccessionNumber = "00080050",
  Modality = "00080060", ModalitiesInStudy = "00080061", ReferringPhysicianName = "00080090",
  StudyDescription = "00081030", SeriesDescription = "0008103E", RetrieveURL = "00081190",
  FailureReason = "00081197", FailedSOPSequence = "00081198", ReferencedSOPSequence = "00081199",
  ReferencedSOPClassUID = "00081150", ReferencedSOPInstanceUID = "00081155", WarningReason = "00081196",
  PatientName = "00100010", PatientID = "00100020", PatientBirthDate = "00100030", PatientSex = "00100040",
  StudyInstanceUID = "0020000D", SeriesInstanceUID = "0020000E", StudyID = "00200010",
  SeriesNumber = "00200011", InstanceNumber = "00200013", NumberOfStudyRelatedSeries = "00201206",
  NumberOfStudyRelatedInstances = "00201208", NumberOfSeriesRelatedInstances = "00201209",
  NumberOfFrames = "00280008", Rows = "00280010", Columns = "00280011",
}

--- The first value of attribute `key` (keyword or 8-hex-digit tag) in a DICOM JSON object;
-- person names come back as their Alphabetic string. Returns the value or nil.
function shared.value(obj, key)
  if type(obj) ~= "table" then return nil end
  local tag = shared.TAGS[key] or (type(key) == "string" and key:upper()) or key
  local a = obj[tag]
  if type(a) ~= "table" or type(a.Value) ~= "table" then return nil end
  local v = a.Value[1]
  if type(v) == "table" and a.vr == "PN" then return v.Alphabetic end
  return v
end

--- True when `uid` is a valid DICOM UID (digits and dots, 1–64 characters, no empty component).
function shared.valid_uid(uid)
  return type(uid) == "string" and #uid >= 1 and #uid <= 64 and uid:match("^[0-9.]+$") ~= nil
    and not uid:find("..", 1, true) and uid:sub(1, 1) ~= "." and uid:sub(-1) ~= "."
end

--- `uid` when it is a valid DICOM UID, else nil, Error (kind "input") naming `what` ("study",
-- "series", "instance"). The one UID check of the DICOMweb and cohort layers.
function shared.check_uid(uid, what)
  if not shared.valid_uid(uid) then
    return nil, errors.input(("'%s' is not a valid %s UID"):format(tostring(uid), what),
      "a UID has 1 to 64 characters, digits and dots only")
  end
  return uid
end

-- `list` followed by the handle's own headers.
function shared.with_headers(self, list)
  local h = {}
  for _, v in ipairs(list or {}) do h[#h + 1] = v end
  for _, v in ipairs(self.headers) do h[#h + 1] = v end
  return h
end

-- /studies/S[/series/SE[/instances/I]] after checking every UID given.
function shared.resource_path(o)
  for _, level in ipairs{ "study", "series", "instance" } do
    if o[level] ~= nil then
      local ok, err = shared.check_uid(o[level], level)
      if not ok then return nil, err end
    end
  end
  if o.series and not o.study then return nil, errors.input("a series needs its study (study=)") end
  if o.instance and not o.series then return nil, errors.input("an instance needs its series (series=)") end
  local p = ""
  if o.study then p = p .. "/studies/" .. o.study end
  if o.series then p = p .. "/series/" .. o.series end
  if o.instance then p = p .. "/instances/" .. o.instance end
  return p
end

function shared.what_of(o)
  if o.instance then return ("instance %s"):format(o.instance) end
  if o.series then return ("series %s"):format(o.series) end
  return ("study %s"):format(o.study)
end

return shared
