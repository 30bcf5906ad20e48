#!/usr/bin/env bash
# WADO-RS streamed retrieve (issue 16), run by scripts/bench (or alone: bench/retrieve.sh).
#
# A 1 GiB study (RETRIEVE_COUNT=128 instances of 8 MiB) is stored in the emulator, then
# retrieved with dicomweb:retrieve into a folder on disk. The client process's bytes written
# (/proc/self/io `wchar`: every byte handed to write(2)/pwrite(2), whether or not the page cache
# has flushed it yet; `write_bytes`, what reached the block layer, is printed beside it) over
# the bytes received (the engine's count) is the disk write ratio: 1.00 means each instance is
# written once (the multipart sink), about 2 the former temporary-file-then-split. Goal <= 1.05.
#
# Prints `bench: NAME VALUE UNIT` lines on stdout (progress on stderr) and appends them, with the
# command, to $BENCH_RESULTS (scripts/bench), else bench/RESULTS.md. Knobs: RETRIEVE_COUNT,
# RETRIEVE_SIDE (pixels per side; 2048 = 8 MiB), RETRIEVE_RUNS (the worst ratio is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
COUNT=${RETRIEVE_COUNT:-128}
SIDE=${RETRIEVE_SIDE:-2048}
RUNS=${RETRIEVE_RUNS:-3}

bench_need bench/retrieve.sh "nodejs dcmtk curl" node dump2dcm curl
bench_setup retrieve

cat > "$WORK/retrieve.lua" <<'EOF'
local dicomweb = require "dicomgcs.dicomweb"
local url, study, dest = arg[1], arg[2], arg[3]
local function io_counters()
  local t = {}
  for k, v in io.open("/proc/self/io"):read("a"):gmatch("([%w_]+): (%d+)") do t[k] = tonumber(v) end
  return t
end
local dw = dicomweb.new{ base_url = url }
local before, recv0 = io_counters(), dw.transport.engine:stats().bytes_received
local s = assert(dw:retrieve{ study = study, dest = dest })
local after, recv1 = io_counters(), dw.transport.engine:stats().bytes_received
assert(s.failed == 0 and not s.err, "retrieve failed")
print(after.wchar - before.wchar, after.write_bytes - before.write_bytes, recv1 - recv0, s.bytes, s.seconds)
EOF

echo "bench/retrieve.sh: generating a study of $COUNT instances of ${SIDE}x${SIDE} in $WORK" >&2
read -r STUDY SIZE _ < <(lua5.4 bench/gen_instances.lua "$WORK/study" "$COUNT" "$SIDE")

eval "$(emulator/start --data "$WORK/emu" --op-delay-ms 0)"
EMU="http://$DICOMGCS_EMULATOR_HOST"
DS="projects/bench/locations/us-central1/datasets/bench"
curl -s -f -X POST "$EMU/v1/projects/bench/locations/us-central1/datasets?datasetId=bench" -d '{}' >/dev/null
curl -s -f -X POST "$EMU/v1/$DS/dicomStores?dicomStoreId=s" -d '{}' >/dev/null
RURL="$EMU/v1/$DS/dicomStores/s/dicomWeb"
lua5.4 -e "local dw = require('dicomgcs.dicomweb').new{ base_url = '$RURL' }
  local s = assert(dw:store('$WORK/study', { batch = 8, concurrency = 4 })); assert(s.failed == 0, 'store failed')"

WORST="" WORST_DISK="" RECV="" MIBS=""
for run in $(seq "$RUNS"); do
  rm -rf "$WORK/out"
  read -r WCHAR WBYTES RBYTES BYTES SECS < <(lua5.4 "$WORK/retrieve.lua" "$RURL" "$STUDY" "$WORK/out")
  R=$(awk -v w="$WCHAR" -v r="$RBYTES" 'BEGIN { printf "%.3f", w / r }')
  RD=$(awk -v w="$WBYTES" -v r="$RBYTES" 'BEGIN { printf "%.3f", w / r }')
  echo "bench/retrieve.sh: run $run: wchar $WCHAR, write_bytes $WBYTES, received $RBYTES, instances $BYTES bytes, $SECS s" >&2
  if [ -z "$WORST" ] || awk -v a="$R" -v b="$WORST" 'BEGIN { exit !(a > b) }'; then WORST=$R; fi
  if [ -z "$WORST_DISK" ] || awk -v a="$RD" -v b="$WORST_DISK" 'BEGIN { exit !(a > b) }'; then WORST_DISK=$RD; fi
  RECV=$RBYTES
  MIBS=$(awk -v b="$BYTES" -v s="$SECS" 'BEGIN { printf "%.0f", b / s / 1048576 }')
done

LINES=()
emit() { LINES+=("$1"); echo "$1"; }
emit "bench: retrieve_1gib_disk_write_ratio $WORST"
emit "bench: retrieve_1gib_block_write_ratio $WORST_DISK (write_bytes)"
emit "bench: retrieve_1gib_streamed_throughput $MIBS MiB/s"
{
  echo
  echo "## bench/retrieve.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs"
  echo
  echo "Command: \`bench/retrieve.sh\` (RETRIEVE_COUNT=$COUNT RETRIEVE_SIDE=$SIDE RETRIEVE_RUNS=$RUNS; instance size $SIZE bytes,"
  echo "$RECV bytes received per run; ratio = the client's /proc/self/io wchar over bytes received, worst run)"
  echo
  echo '```'
  printf '%s\n' "${LINES[@]}"
  echo '```'
} >> "${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
