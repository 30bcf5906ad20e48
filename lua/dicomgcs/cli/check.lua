--- `dicomgcs check`: the pre-flight check of files or bucket objects before an import.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.check
-- @local

return {
  { path = { "check" }, usage = "check PATH|gs://BUCKET/PATTERN ...",
    summary = "name the files an import would reject (and those worth a look), and why", min_args = 1,
    help = "Read the DICOM Part 10 header of each file (local files and folders, or bucket objects\n" ..
      "with a ranged read of their first bytes) and print, under \"Would be rejected:\", one line per\n" ..
      "file the import would reject (the file, the status and the reason), then, under \"Accepted, but\n" ..
      "worth a look:\", the files the import should accept with a defect (e.g. a Media Storage SOP\n" ..
      "Instance UID that differs from the dataset's). Exit 0 when no file would be rejected (warnings\n" ..
      "do not count), 3 when some would. --format=json lists every file with its UIDs.",
    run = function(ctx)
      local check = require "dicomgcs.check"
      local all, rejected, warned, total = {}, {}, {}, 0
      for _, target in ipairs(ctx.words) do
        local s, err
        if target:sub(1, 5) == "gs://" then s, err = check.objects(ctx.client().storage, target)
        else s, err = check.local_files(target) end
        if not s then error(err, 0) end
        total = total + s.total
        for _, r in ipairs(s.results) do
          all[#all + 1] = { source = r.source, ok = r.ok, status = r.status, reason = r.reason, warning = r.warning,
            study_uid = r.study_uid, series_uid = r.series_uid, sop_instance_uid = r.sop_instance_uid,
            transfer_syntax = r.transfer_syntax }
          if not r.ok then rejected[#rejected + 1] = r elseif r.warning then warned[#warned + 1] = r end
        end
      end
      if ctx.flags.format then
        ctx.print({ total = total, rejected = #rejected, warned = #warned, files = require("dicomgcs.json").array(all) })
      else
        local esc = require("dicomgcs.cli.term").escape  -- names and reasons come from files and servers
        if #rejected > 0 then ctx.out:write("Would be rejected:\n") end
        for _, r in ipairs(rejected) do
          ctx.out:write(("%s\t%s\t%s\n"):format(esc(r.source), r.status, esc(r.reason or "")))
        end
        if #warned > 0 then ctx.out:write("Accepted, but worth a look:\n") end
        for _, r in ipairs(warned) do ctx.out:write(("%s\twarning\t%s\n"):format(esc(r.source), esc(r.warning))) end
      end
      io.stderr:write(("Checked %d file(s): %d would be rejected, %d accepted with a warning.\n"):format(
        total, #rejected, #warned))
      return #rejected == 0 and 0 or 3
    end },
}
