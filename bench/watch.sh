#!/usr/bin/env bash
# Continuous import benchmark (issue #19), run by scripts/bench (or alone: bench/watch.sh).
#
# One emulator; bench/watch_feed.js writes a steady stream of distinct DICOM files into
# gs://bench/incoming/ (10 files/s for 10 minutes) while
#   bin/dicomgcs dicom-stores import gcs store --gcs-uri='gs://bench/incoming/**.dcm' --watch --every=10s
# runs (10 minutes). WATCH_BENCH_SCALE=S (default 1: real time) compresses time S-fold: S x 10
# files/s for 10/S minutes, --every=10/S s, the emulator's per-file import delay 20/S ms, polls
# every 1/S s; the same 6,000 files and 60 rounds, latencies given back unscaled (measured x S).
# Only the emulator's own request costs do not shrink, so S > 1 is harsher than real time (at
# S=5 on a shared 2-core machine a batch's copies, import and clean-up take 2-3 s of a 2 s round).
# Figures: arrival-to-stored p95 (arrival: the feeder's upload answered; stored: the end time of
# the operation that imported it), operations, rounds, files lost (fed but not in the store) and
# files imported twice (the sum of every import's success counter minus the store's instances).
# Goal: p95 <= 2 rounds, 0 lost, 0 imported twice, operations ~ rounds.
# Knobs: WATCH_BENCH_SCALE (1), WATCH_BENCH_RATE (10 files/s), WATCH_BENCH_SECONDS (600),
# WATCH_BENCH_EVERY (10 s).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
bench_need bench/watch.sh "install node and dcmtk" node dump2dcm
SCALE=${WATCH_BENCH_SCALE:-1}
RATE=${WATCH_BENCH_RATE:-10}
SECONDS_REAL=${WATCH_BENCH_SECONDS:-600}
EVERY_REAL=${WATCH_BENCH_EVERY:-10}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
sc() { awk -v a="$1" -v s="$SCALE" 'BEGIN{printf "%g", a / s}'; }
RATE_S=$(awk -v a="$RATE" -v s="$SCALE" 'BEGIN{printf "%g", a * s}')
SECONDS_S=$(sc "$SECONDS_REAL")
EVERY_S=$(sc "$EVERY_REAL")
POLL_S=$(sc 1)
OP_DELAY=$(awk -v s="$SCALE" 'BEGIN{d = int(20 / s + 0.5); print (d < 1 ? 1 : d)}')
ROUNDS=$(awk -v d="$SECONDS_REAL" -v e="$EVERY_REAL" 'BEGIN{print int(d / e) + 3}')
make -s build >/dev/null
bench_need_emulator
export LUA_PATH_5_4="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH_5_4="$ROOT/build/?.so;;"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dicomgcs-bench-watch.XXXXXX")
WATCH_PID=""
cleanup() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
  [ -n "${WATCH_BENCH_KEEP:-}" ] && cp "$WORK/watch.log" "$WORK/state.jsonl" "$WATCH_BENCH_KEEP"/ 2>/dev/null
  emulator/stop --data "$WORK/emu" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
eval "$(emulator/start --data "$WORK/emu" --op-delay-ms "$OP_DELAY" --grant-service-agent)"
H=$DICOMGCS_EMULATOR_HOST
LOC="--project=bench-project --location=us-central1"
DG="bin/dicomgcs"
$DG storage buckets create gs://bench $LOC >/dev/null
$DG datasets create bench $LOC >/dev/null
$DG dicom-stores create store --dataset=bench $LOC >/dev/null
TPL="$WORK/tpl" lua5.4 -e 'assert(require("dicomgcs.testdata").generate{ dir = os.getenv("TPL"), studies = 1,
  series = 1, instances = 1, nested = false, uid_seed = "77777777" })'

echo "bench/watch.sh: scale 1/$SCALE: $RATE_S files/s for ${SECONDS_S}s, --every=${EVERY_S}s, import ${OP_DELAY} ms a file" >&2
DICOMGCS_POLL_INTERVAL=$POLL_S $DG dicom-stores import gcs store --gcs-uri='gs://bench/incoming/**.dcm' --watch \
  --every="${EVERY_S}s" --rounds="$ROUNDS" --manifest="$WORK/state.jsonl" --report="$WORK/report" \
  --dataset=bench $LOC 2>"$WORK/watch.log" &
WATCH_PID=$!
node bench/watch_feed.js "$H" bench "$WORK/tpl/s1-se1-i1.dcm" 77777777.1.1.1 "$RATE_S" "$SECONDS_S" "$WORK/feed.jsonl"
rc=0
wait "$WATCH_PID" || rc=$?
WATCH_PID=""
[ "$rc" = 0 ] || { echo "bench/watch.sh: the watch exited $rc" >&2; tail -5 "$WORK/watch.log" >&2; exit 1; }
tail -1 "$WORK/watch.log" >&2
curl -s "http://$H/_emulator/state" > "$WORK/state.json"

lines=()
emit() { echo "bench: $*"; lines+=("bench: $*"); }
while IFS= read -r l; do emit "$l"; done < <(node - "$WORK" "$SCALE" "$EVERY_REAL" <<'JS'
const fs = require('fs');
const [dir, scale, every] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const jl = (p) => fs.readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const fed = jl(`${dir}/feed.jsonl`);
const last = new Map();
for (const r of jl(`${dir}/state.jsonl`)) last.set(r.key, r);
const st = JSON.parse(fs.readFileSync(`${dir}/state.json`, 'utf8'));
const store = st.dicomStores.find((s) => s.name.endsWith('/datasets/bench/dicomStores/store'));
const imports = st.operations.filter((o) => /Import/.test(o.metadata.apiMethodName || ''));
const successes = imports.reduce((n, o) => n + Number((o.metadata.counter || {}).success || 0), 0);
const lat = []; let notDone = 0;
for (const f of fed) {
  const r = last.get(`file gs://bench/${f.name}`);
  if (!r || r.state !== 'done') { notDone++; continue; }
  lat.push((Date.parse(r.stored) - f.arrived) / 1000 * scale);
}
lat.sort((a, b) => a - b);
const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)] : NaN;
const rounds = Number((fs.readFileSync(`${dir}/watch.log`, 'utf8').match(/after (\d+) round/) || [])[1]);
const lost = Math.max(notDone, fed.length - store.instances);
console.log(`watch_arrival_to_stored_p95 ${q(0.95).toFixed(1)} s (unscaled; median ${q(0.5).toFixed(1)} s, max ${q(1).toFixed(1)} s; 2 rounds = ${2 * every} s)`);
console.log(`watch_operations ${imports.length} (rounds ${rounds})`);
console.log(`watch_files_fed ${fed.length}`);
console.log(`watch_files_lost ${lost}`);
console.log(`watch_files_imported_twice ${successes - store.instances}`);
JS
)

{
  echo "## Continuous import (bench/watch.sh)"
  echo
  echo "One emulator; bench/watch_feed.js writes distinct DICOM files into gs://bench/incoming/ at $RATE files/s for"
  echo "${SECONDS_REAL} s while the watch runs with --every=${EVERY_REAL}s; time scaled 1/$SCALE (so $RATE_S files/s for ${SECONDS_S} s,"
  echo "--every=${EVERY_S}s, emulator import ${OP_DELAY} ms a file, polls every ${POLL_S} s); latencies are given back unscaled."
  echo '```'
  echo "DICOMGCS_POLL_INTERVAL=$POLL_S bin/dicomgcs dicom-stores import gcs store --gcs-uri='gs://bench/incoming/**.dcm' --watch \\"
  echo "  --every=${EVERY_S}s --rounds=$ROUNDS --manifest=state.jsonl --report=report --dataset=bench $LOC"
  echo '```'
  echo "Arrival = the feeder's upload answered; stored = the end time of the import operation that took the file."
  echo
  bench_figures "${lines[@]}"
} >> "$RESULTS"
