#!/usr/bin/env lua5.4
--- Generate good and broken DICOM Part 10 files with dcmtk into a directory.
--
--   lua5.4 spec/support/make_dicom.lua OUTDIR
--
-- Writes OUTDIR/<name>.dcm and OUTDIR/manifest.lua, which returns
--   { good = { {file=, ts=, study=, series=, sop_instance=, sop_class=, inspected=bool}, ... },
--     broken = { {file=, status=, note=}, ... },
--     warned = { {file=, warning=, note=}, ... } }   -- odd, but the import accepts them (a guess)
-- `status` is what dg_dicom must report for the complete file. Good files come
-- from dump2dcm / dcmconv / img2dcm / dcmcjpeg; broken ones are byte surgery on
-- good ones. Also usable as a module: require("spec.support.make_dicom").generate(dir).
-- Needs dump2dcm, dcmconv, img2dcm, dcmcjpeg on PATH. The dump2dcm step and the UID root are
-- dicomgcs.testdata's (the one test-DICOM generator); this file adds only the odd and broken
-- corpus that the header reader's specs need.

local as_script = arg and arg[0] and arg[0]:match("make_dicom%.lua$")
if as_script then -- run from the source tree, as busted does (.busted)
  package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
  package.cpath = (os.getenv("DICOMGCS_BUILD") or "build") .. "/?.so;" .. package.cpath
end

local env = require "spec.support.env"
local support_file = require "spec.support.file"
local testdata = require "dicomgcs.testdata"

local M = {}

local STUDY = testdata.UID_ROOT .. ".1"           -- odd length: NUL-padded on disk
local SERIES = testdata.UID_ROOT .. ".12"
local SOP_INSTANCE = testdata.UID_ROOT .. ".1001"
local SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"     -- Secondary Capture Image Storage

local function dump_text(opts)
  opts = opts or {}
  local lines = {
    "(0008,0005) CS [ISO_IR 100]",
    "(0008,0006) SQ (Sequence with explicit length #=1)",
    "  (fffe,e000) na (Item with explicit length #=1)",
    "    (0008,0100) SH [eng]",
    "  (fffe,e00d) na (ItemDelimitationItem)",
    "(fffe,e0dd) na (SequenceDelimitationItem)",
    "(0008,0008) CS [ORIGINAL\\PRIMARY]",
  }
  local function add(s) lines[#lines + 1] = s end
  if not opts.no_sop_class then add("(0008,0016) UI [" .. SOP_CLASS .. "]") end
  if not opts.no_sop_instance then add("(0008,0018) UI [" .. (opts.sop_instance or SOP_INSTANCE) .. "]") end
  add("(0008,0060) CS [OT]")
  add("(0008,1140) SQ (Sequence with explicit length #=1)")
  add("  (fffe,e000) na (Item with explicit length #=2)")
  add("    (0008,1150) UI [" .. SOP_CLASS .. "]")
  add("    (0008,1155) UI [1.2.3.4.5]")
  add("    (0040,a730) SQ (Sequence with explicit length #=1)")
  add("      (fffe,e000) na (Item with explicit length #=1)")
  add("        (0040,a010) CS [CONTAINS]")
  add("      (fffe,e00d) na (ItemDelimitationItem)")
  add("    (fffe,e0dd) na (SequenceDelimitationItem)")
  add("  (fffe,e00d) na (ItemDelimitationItem)")
  add("(fffe,e0dd) na (SequenceDelimitationItem)")
  add("(0010,0010) PN [Doe^Jane]")
  add("(0010,0020) LO [PID123]")
  add("(0018,9087) FD 1000")
  if not opts.no_study then add("(0020,000d) UI [" .. (opts.study or STUDY) .. "]") end
  if not opts.no_series then add("(0020,000e) UI [" .. SERIES .. "]") end
  add("(0020,0013) IS [1]")
  add("(0028,0002) US 1")
  add("(0028,0004) CS [MONOCHROME2]")
  add("(0028,0010) US 2")
  add("(0028,0011) US 2")
  add("(0028,0100) US 16")
  add("(0028,0101) US 16")
  add("(0028,0102) US 15")
  add("(0028,0103) US 0")
  add("(7fe0,0010) OW 0001\\0002\\0003\\0004")
  return table.concat(lines, "\n") .. "\n"
end

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  if not ok then error("command failed: " .. cmd, 2) end
end

local q, read, write = env.quote, support_file.read, support_file.write

local function le16(n) return string.pack("<I2", n) end

-- Offset (1-based) of the explicit VR LE element header (g,e) with VR vr, after `from`.
local function find_elem(s, g, e, vr, from)
  local pat = le16(g) .. le16(e) .. (vr or "")
  local i = s:find(pat, from or 133, true)
  return i
end

--- Generate everything into dir; returns the manifest table.
function M.generate(dir)
  sh("mkdir -p " .. q(dir))
  local function path(n) return dir .. "/" .. n end
  local good, broken, warned = {}, {}, {}
  local function dump2dcm(name, args, opts)
    assert(testdata.dump2dcm(dump_text(opts), path(name), args))
  end
  local function add_good(file, ts, inspected, uids)
    uids = uids or {}
    good[#good + 1] = { file = file, ts = ts, inspected = inspected ~= false,
      study = uids.study or STUDY, series = uids.series or SERIES,
      sop_instance = uids.sop_instance or SOP_INSTANCE, sop_class = uids.sop_class or SOP_CLASS }
  end
  local function add_warned(file, warning, note, bytes)
    write(path(file), bytes)
    warned[#warned + 1] = { file = file, warning = warning, note = note }
  end
  local function add_broken(file, status, note, bytes)
    if bytes then write(path(file), bytes) end
    broken[#broken + 1] = { file = file, status = status, note = note }
  end

  -- good: every transfer syntax, defined and undefined lengths
  dump2dcm("explicit_le.dcm", "+te")
  add_good("explicit_le.dcm", "1.2.840.10008.1.2.1")
  dump2dcm("explicit_le_undef.dcm", "+te -e")
  add_good("explicit_le_undef.dcm", "1.2.840.10008.1.2.1")
  dump2dcm("implicit_le.dcm", "+ti")
  add_good("implicit_le.dcm", "1.2.840.10008.1.2")
  dump2dcm("implicit_le_undef.dcm", "+ti -e")
  add_good("implicit_le_undef.dcm", "1.2.840.10008.1.2")
  sh("dcmconv +tb " .. q(path("explicit_le.dcm")) .. " " .. q(path("explicit_be.dcm")))
  add_good("explicit_be.dcm", "1.2.840.10008.1.2.2")
  sh("dcmconv +tb -e " .. q(path("explicit_le.dcm")) .. " " .. q(path("explicit_be_undef.dcm")))
  add_good("explicit_be_undef.dcm", "1.2.840.10008.1.2.2")
  sh("dcmconv +td " .. q(path("explicit_le.dcm")) .. " " .. q(path("deflated.dcm")))
  add_good("deflated.dcm", "1.2.840.10008.1.2.1.99", false)
  sh("dcmconv +ti " .. q(path("explicit_le_undef.dcm")) .. " " .. q(path("dcmconv_ti.dcm")))
  add_good("dcmconv_ti.dcm", "1.2.840.10008.1.2")

  -- img2dcm from a 4x4 24-bit BMP, then JPEG-compressed (encapsulated pixel data)
  local w, h = 4, 4
  local pixels = string.rep("\40\80\120", w * h)
  local bmp = "BM" .. string.pack("<I4I2I2I4", 54 + #pixels, 0, 0, 54)
    .. string.pack("<I4i4i4I2I2I4I4i4i4I4I4", 40, w, h, 1, 24, 0, #pixels, 2835, 2835, 0, 0) .. pixels
  write(path("tiny.bmp"), bmp)
  sh("img2dcm -i BMP --study-from " .. q(path("explicit_le.dcm")) .. " " .. q(path("tiny.bmp"))
    .. " " .. q(path("img2dcm.dcm")))
  os.remove(path("tiny.bmp"))
  sh("dcmcjpeg +eb " .. q(path("img2dcm.dcm")) .. " " .. q(path("jpeg_baseline.dcm")))
  sh("dcmcjpeg " .. q(path("img2dcm.dcm")) .. " " .. q(path("jpeg_lossless.dcm")))
  -- their series / SOP UIDs are fresh: the spec takes them from dcmdump
  good[#good + 1] = { file = "img2dcm.dcm", ts = "1.2.840.10008.1.2.1", inspected = true, study = STUDY }
  good[#good + 1] = { file = "jpeg_baseline.dcm", ts = "1.2.840.10008.1.2.4.50", inspected = true, study = STUDY }
  good[#good + 1] = { file = "jpeg_lossless.dcm", ts = "1.2.840.10008.1.2.4.70", inspected = true, study = STUDY }

  -- broken: byte surgery on explicit_le.dcm
  local base = read(path("explicit_le.dcm"))
  local meta_end = 144 + string.unpack("<I4", base, 141)       -- 132 + 12 + group length
  local pn = assert(find_elem(base, 0x0010, 0x0010, "PN"))
  local study_at = assert(find_elem(base, 0x0020, 0x000D, "UI"))
  local seq_at = assert(find_elem(base, 0x0008, 0x1140, "SQ"))

  add_broken("empty.dcm", "not_dicom", "zero bytes", "")
  add_broken("trunc_100.dcm", "not_dicom", "cut inside the preamble", base:sub(1, 100))
  add_broken("trunc_132.dcm", "truncated", "cut right after DICM", base:sub(1, 132))
  add_broken("trunc_meta.dcm", "truncated", "cut inside the meta group", base:sub(1, 200))
  add_broken("trunc_meta_end.dcm", "truncated", "cut 3 bytes before the meta group ends",
    base:sub(1, meta_end - 3))
  add_broken("trunc_elem_header.dcm", "truncated", "cut inside an element header", base:sub(1, pn + 3))
  add_broken("trunc_value.dcm", "truncated", "cut inside PatientName", base:sub(1, pn + 10))
  add_broken("trunc_in_seq.dcm", "truncated", "cut inside ReferencedImageSequence", base:sub(1, seq_at + 30))
  add_broken("trunc_study.dcm", "truncated", "cut inside Study Instance UID", base:sub(1, study_at + 15))
  add_broken("no_preamble.dcm", "no_preamble", "first 128 bytes removed", base:sub(129))
  add_broken("no_dicm.dcm", "not_dicom", "preamble followed by DICX", base:sub(1, 128) .. "DICX" .. base:sub(133))
  add_broken("text.dcm", "not_dicom", "a text file", string.rep("this is not DICOM\n", 20))
  do -- bare dataset without preamble / meta
    dump2dcm("bare_dataset.dcm", "-F +te")
    add_broken("bare_dataset.dcm", "no_preamble", "dataset written without Part 10 header (dcmdump reads it)")
  end
  -- PatientName length + 2: the next header is read two bytes late
  local pn_len = string.unpack("<I2", base, pn + 6)
  add_broken("bad_vr_length.dcm", "bad_vr_length", "PatientName length +2 (misaligns the next element)",
    base:sub(1, pn + 5) .. le16(pn_len + 2) .. base:sub(pn + 8))
  -- PatientID odd length (value shortened by one byte)
  local pid = assert(find_elem(base, 0x0010, 0x0020, "LO"))
  local pid_len = string.unpack("<I2", base, pid + 6)
  add_broken("odd_length.dcm", "bad_vr_length", "PatientID of odd length (dcmdump accepts odd lengths)",
    base:sub(1, pid + 5) .. le16(pid_len - 1) .. base:sub(pid + 8, pid + 8 + pid_len - 2)
      .. base:sub(pid + 8 + pid_len))
  add_broken("bad_vr.dcm", "bad_vr_length", "PatientName VR 'PN' replaced by 'ZZ'",
    base:sub(1, pn + 3) .. "ZZ" .. base:sub(pn + 6))
  local fd = assert(find_elem(base, 0x0018, 0x9087, "FD"))
  add_broken("fd_length.dcm", "bad_vr_length", "Diffusion b-value (FD) declared 4 bytes long",
    base:sub(1, fd + 5) .. le16(4) .. base:sub(fd + 8))
  add_broken("huge_length.dcm", "truncated", "PatientID length 0xFFF0 runs past the end of the file",
    base:sub(1, pid + 5) .. le16(0xFFF0) .. base:sub(pid + 8))
  -- meta group length wrong
  local glen = string.unpack("<I4", base, 141)
  add_broken("meta_glen_short.dcm", "bad_meta", "(0002,0000) 2 bytes too small",
    base:sub(1, 140) .. string.pack("<I4", glen - 2) .. base:sub(145))
  add_broken("meta_glen_long.dcm", "bad_meta", "(0002,0000) 8 bytes too large",
    base:sub(1, 140) .. string.pack("<I4", glen + 8) .. base:sub(145))
  do -- meta without Transfer Syntax UID: rename (0002,0010) to (0002,0011)
    local i = assert(find_elem(base, 0x0002, 0x0010, "UI", 133))
    add_broken("meta_no_ts.dcm", "bad_meta", "(0002,0010) renamed to (0002,0011)",
      base:sub(1, i + 1) .. le16(0x0011) .. base:sub(i + 4))
  end
  -- missing UIDs
  dump2dcm("missing_study.dcm", "+te", { no_study = true })
  add_broken("missing_study.dcm", "missing_uid", "no (0020,000D) (dcmdump reads it)")
  dump2dcm("missing_series.dcm", "+te", { no_series = true })
  add_broken("missing_series.dcm", "missing_uid", "no (0020,000E) (dcmdump reads it)")
  -- bad UIDs (dump2dcm writes what it is given)
  dump2dcm("bad_uid_chars.dcm", "+te", { study = "1.2.826.0.1.3680043.8.498.X1" })
  add_broken("bad_uid_chars.dcm", "bad_uid", "Study UID contains 'X' (dcmdump reads it)")
  dump2dcm("bad_uid_zero.dcm", "+te", { study = "1.2.826.0.01.3680043" })
  add_broken("bad_uid_zero.dcm", "bad_uid", "Study UID component with a leading zero")
  dump2dcm("bad_uid_long.dcm", "+te", { study = "1.2." .. string.rep("9", 70) })
  add_broken("bad_uid_long.dcm", "bad_uid", "Study UID longer than 64 characters")
  do -- meta (0002,0003) differs from (0008,0018): change one digit of the first copy
    local i = assert(base:find(SOP_INSTANCE, 133, true))
    local j = i + #SOP_INSTANCE - 1
    add_warned("uid_mismatch.dcm", "differs", "(0002,0003) last digit changed (dcmdump reads it)",
      base:sub(1, j - 1) .. "7" .. base:sub(j + 1))
  end
  do -- (0008,0016) SOP Class UID written with VR UN (explicit length), as some converters do
    local at = assert(find_elem(base, 0x0008, 0x0016, "UI"))
    local len = string.unpack("<I2", base, at + 6)
    add_warned("sop_class_un.dcm", "has VR UN", "SOP Class UID with VR UN",
      base:sub(1, at + 3) .. "UN\0\0" .. string.pack("<I4", len) .. base:sub(at + 8))
  end
  do -- (0002,0002) Media Storage SOP Class UID differs from (0008,0016)
    local i = assert(base:find(SOP_CLASS, 133, true))
    local j = i + #SOP_CLASS - 1
    add_warned("class_mismatch.dcm", "differs", "(0002,0002) last digit changed",
      base:sub(1, j - 1) .. "8" .. base:sub(j + 1))
  end
  do -- undefined-length file with the item delimiter destroyed
    local u = read(path("explicit_le_undef.dcm"))
    local i = assert(u:find("\254\255\13\224", meta_end, true)) -- (FFFE,E00D)
    add_broken("bad_delimiter.dcm", "bad_vr_length", "first item delimiter replaced by (FFFE,E0AA)",
      u:sub(1, i + 1) .. "\170\224" .. u:sub(i + 4))
  end

  local out = { "return {", "  good = {" }
  for _, g in ipairs(good) do
    out[#out + 1] = ("    { file = %q, ts = %q, inspected = %s, study = %s },"):format(g.file, g.ts,
      tostring(g.inspected), g.study and ("%q"):format(g.study) or "nil")
  end
  out[#out + 1] = "  },"
  out[#out + 1] = "  broken = {"
  for _, b in ipairs(broken) do
    out[#out + 1] = ("    { file = %q, status = %q, note = %q },"):format(b.file, b.status, b.note)
  end
  out[#out + 1] = "  },"
  out[#out + 1] = "  warned = {"
  for _, wf in ipairs(warned) do
    out[#out + 1] = ("    { file = %q, warning = %q, note = %q },"):format(wf.file, wf.warning, wf.note)
  end
  out[#out + 1] = "  },"
  out[#out + 1] = "}"
  write(path("manifest.lua"), table.concat(out, "\n") .. "\n")
  return { good = good, broken = broken, warned = warned }
end

if as_script then
  local dir = arg[1] or error("usage: lua5.4 spec/support/make_dicom.lua OUTDIR")
  M.generate(dir)
  print(dir)
end

return M
