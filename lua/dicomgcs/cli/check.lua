--- `dicomgcs check`: the pre-flight check of files or bucket objects before an import.
-- @module dicomgcs.cli.check

return {
  { path = { "check" }, usage = "check PATH|gs://BUCKET/PATTERN ...",
    summary = "name the files an import would reject, and why", min_args = 1,
    help = "Read the DICOM Part 10 header of each file (local files and folders, or bucket objects\n" ..
      "with a ranged read of their first bytes) and print one line per file the import would\n" ..
      "reject: the file and the reason. Exit 0 when every file passes, 3 when some would be\n" ..
      "rejected. --format=json lists every file with its UIDs.",
    run = function(ctx)
      local check = require "dicomgcs.check"
      local all, rejected, total = {}, 0, 0
      for _, target in ipairs(ctx.words) do
        local s, err
        if target:sub(1, 5) == "gs://" then s, err = check.objects(ctx.client().storage, target)
        else s, err = check.local_files(target) end
        if not s then error(err, 0) end
        total, rejected = total + s.total, rejected + s.rejected
        for _, r in ipairs(s.results) do
          all[#all + 1] = { source = r.source, ok = r.ok, status = r.status, reason = r.reason,
            study_uid = r.study_uid, series_uid = r.series_uid, sop_instance_uid = r.sop_instance_uid,
            transfer_syntax = r.transfer_syntax }
          if not r.ok and not ctx.flags.format then
            local term = require "dicomgcs.cli.term"
            ctx.out:write(("%s\t%s\t%s\n"):format(term.escape(r.source), r.status, term.escape(r.reason or "")))
          end
        end
      end
      if ctx.flags.format then
        ctx.print({ total = total, rejected = rejected, files = require("dicomgcs.json").array(all) })
      end
      io.stderr:write(("Checked %d file(s): %d would be rejected.\n"):format(total, rejected))
      return rejected == 0 and 0 or 3
    end },
}
