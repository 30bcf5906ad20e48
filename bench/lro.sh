#!/usr/bin/env bash
# Long-running operation polling benchmark (issue 16), run by scripts/bench (or alone: bench/lro.sh).
#
# A 10-minute import on the emulator: LRO_FILES (600) files, each taking LRO_DELAY_MS (1000) ms
# (`emulator/start --op-delay-ms`), so the operation runs as long as a real one and the poll
# policy meets real time, not a scaled copy. `op:wait{}` with its defaults polls it; each
# successful poll is one entry of `op.history`.
#   lro_done_lag  seconds from the operation's end (its metadata.endTime, same machine clock)
#                 to the moment the waiter saw it done (goal <= 1 s)
#   lro_polls     polls the wait made (goal <= 20)
# For comparison it also prints what the former policy (first poll after 1 s, then x1.5 up to
# 30 s) would have cost on the same operation, computed from its create and end times:
#   lro_done_lag_backoff, lro_polls_backoff (computed, not measured).
#
# Prints `bench: NAME VALUE UNIT` lines on stdout (progress on stderr) and appends them, with the
# command, to $BENCH_RESULTS (scripts/bench), else bench/RESULTS.md. Needs node and dcmtk.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
FILES=${LRO_FILES:-600}
DELAY=${LRO_DELAY_MS:-1000}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}

bench_need bench/lro.sh "nodejs dcmtk" node dump2dcm
make -s build >/dev/null
bench_need_emulator
export LUA_PATH_5_4="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH_5_4="$ROOT/build/?.so;;"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dicomgcs-bench-lro.XXXXXX")
cleanup() {
  emulator/stop --data "$WORK/emu" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

eval "$(emulator/start --data "$WORK/emu" --op-delay-ms "$DELAY" --grant-service-agent)"
echo "bench/lro.sh: $FILES files x $DELAY ms on the emulator at $DICOMGCS_EMULATOR_HOST" >&2

cat > "$WORK/lro.lua" <<'EOF'
local dicomgcs = require "dicomgcs"
local core = require "dicomgcs.core"
local testdata = require "dicomgcs.testdata"
local timestamp = require "dicomgcs.timestamp"
local work, files = arg[1], tonumber(arg[2])
local c = assert(dicomgcs.client{ project = "bench-project", location = "us-central1", token = "bench",
  dataset = "lro", dicom_store = "st" })
assert(c:create_dataset{}); assert(c:create_dicom_store{})
assert(c.storage:create_bucket("lro-bench"))
assert(testdata.generate{ dir = work .. "/data", studies = 1, series = 1, instances = files, rows = 8, cols = 8,
  nested = false })
local up = assert(c.storage:upload(work .. "/data", "gs://lro-bench/in/"))
assert(up.failed == 0 and up.ok == files, "staging failed")
io.stderr:write(("staged %d files; importing\n"):format(up.ok))
local op = assert(c:import{ uri = "gs://lro-bench/in/**.dcm" })
local done = assert(op:wait{ on_progress = function(o)
  io.stderr:write(("  poll %d: success %d, pending %d\n"):format(#o.history, o.counter.success, o.counter.pending))
end })
local seen = core.unixtime()
assert(done.counter.success == files, "not every file imported")
local created = assert(timestamp.parse(done.metadata.createTime))
local ended = assert(timestamp.parse(done.metadata.endTime))
-- the former policy: polls at 1, 2.5, 4.75, ... s after the start (x1.5, at most 30 s apart)
local t, step, n = 0, 1, 0
repeat t = t + step; n = n + 1; step = math.min(step * 1.5, 30) until created + t >= ended
print(("bench: lro_duration %.1f s"):format(ended - created))
print(("bench: lro_done_lag %.2f s"):format(seen - ended))
print(("bench: lro_polls %d"):format(#done.history))
print(("bench: lro_done_lag_backoff %.2f s (computed)"):format(created + t - ended))
print(("bench: lro_polls_backoff %d (computed)"):format(n))
EOF
out=$(lua5.4 "$WORK/lro.lua" "$WORK" "$FILES")
echo "$out"
{
  echo
  echo "## Operation polling (bench/lro.sh)"
  echo
  echo "One import of $FILES files at $DELAY ms each on the emulator (\`emulator/start --op-delay-ms $DELAY\`),"
  echo "waited on with \`op:wait{}\` and its defaults; lag = the waiter seeing it done minus the"
  echo "operation's endTime. \`_backoff\` lines are computed for the former x1.5-to-30 s policy on the"
  echo "same operation. Command: \`LRO_FILES=$FILES LRO_DELAY_MS=$DELAY bench/lro.sh\`."
  echo
  echo '```'
  echo "$out"
  echo '```'
} >> "$RESULTS"
