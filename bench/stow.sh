#!/usr/bin/env bash
# DICOMweb benchmark (issue 6), run by scripts/bench (or alone: bench/stow.sh).
#
#  1. STOW-RS of N (2,000) generated instances of ~256 KiB at concurrency 16, first to a
#     body-reading nginx sink (echo_read_request_body, so the server is not what is measured),
#     then to the emulator: instances/s for dicomgcs (dicomweb:store, single-part requests
#     streamed from disk), streamed `curl --parallel --parallel-max 16 --upload-file F -X POST`,
#     and the JavaScript dicomweb-client (npm, with xhr2 in Node), each timed by hyperfine.
#  2. WADO-RS retrieve of a 1 GiB study (128 instances of 8 MiB) from the emulator with
#     dicomweb:retrieve: throughput and peak RSS (VmHWM of the process).
#
# Prints `bench: NAME VALUE UNIT [ratio=R vs PEER]` lines on stdout (progress on stderr) and
# appends them, with the command, to $BENCH_RESULTS (scripts/bench), else bench/RESULTS.md.
# Knobs: STOW_N, STOW_CONCURRENCY, STOW_RUNS (sink), STOW_EMU_RUNS, RETRIEVE_COUNT (8 MiB
# instances), RETRIEVE_RUNS. Needs nginx + libnginx-mod-http-echo, hyperfine, dcmtk, node/npm
# (bench/node is installed with npm on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
N=${STOW_N:-2000}
CONC=${STOW_CONCURRENCY:-16}
RUNS=${STOW_RUNS:-10}
EMU_RUNS=${STOW_EMU_RUNS:-5}
RCOUNT=${RETRIEVE_COUNT:-128}
RRUNS=${RETRIEVE_RUNS:-5}

bench_need bench/stow.sh "nginx libnginx-mod-http-echo hyperfine nodejs npm curl dcmtk" \
  nginx hyperfine node npm curl dump2dcm
bench_need_nginx_echo bench/stow.sh

make -s build >/dev/null
bench_need_emulator
export LUA_PATH_5_4="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH_5_4="$ROOT/build/?.so;;"
[ -d bench/node/node_modules/dicomweb-client ] ||
  (cd bench/node && npm install --no-audit --no-fund --loglevel=error >/dev/null)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dicomgcs-bench-stow.XXXXXX")
cleanup() {
  nginx_sink_stop "$WORK/nginx"
  emulator/stop --data "$WORK/emu" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- test data: one template from dcmtk, then copies with new SOP Instance UIDs (same length) ----
cat > "$WORK/stow.lua" <<'EOF'
local dicomweb = require "dicomgcs.dicomweb"
local url, dir, conc = arg[1], arg[2], tonumber(arg[3])
local dw = dicomweb.new{ base_url = url, concurrency = conc }
local s = assert(dw:store(dir, { concurrency = conc }))
if s.failed > 0 then
  for _, r in ipairs(s.results) do if r.status == "failed" then io.stderr:write(tostring(r.reason), "\n") break end end
  os.exit(1)
end
EOF
cat > "$WORK/retrieve.lua" <<'EOF'
local dicomweb = require "dicomgcs.dicomweb"
local url, study, dest, hwm_file = arg[1], arg[2], arg[3], arg[4]
local dw = dicomweb.new{ base_url = url }
local s = assert(dw:retrieve{ study = study, dest = dest })
assert(s.failed == 0 and not s.err, "retrieve failed")
local st = io.open("/proc/self/status"):read("a")
local f = io.open(hwm_file, "a"); f:write(st:match("VmHWM:%s*(%d+)"), " ", s.bytes, " ", s.seconds, "\n"); f:close()
EOF

echo "bench/stow.sh: generating $N instances of ~256 KiB and a study of $RCOUNT x 8 MiB in $WORK" >&2
read -r _ SIZE _ < <(lua5.4 bench/gen_instances.lua "$WORK/files" "$N" 362)
read -r STUDY _ < <(lua5.4 bench/gen_instances.lua "$WORK/study" "$RCOUNT" 2048)

# ---- the nginx sink ----
SINK_PORT=$(bench_free_port)
nginx_sink_start "$WORK/nginx" "$SINK_PORT" "default_type application/dicom+json; echo '{}';"
SINK="http://127.0.0.1:$SINK_PORT/dicomWeb"

curl_cfg() { # URL FILE-LIST-DIR → a curl config posting each file streamed from disk
  local url=$1 dir=$2 f
  for f in "$dir"/*.dcm; do
    printf 'url = "%s/studies"\nupload-file = "%s"\noutput = "/dev/null"\n' "$url" "$f"
  done
}

run_three() { # LABEL URL RUNS [PREPARE]
  local label=$1 url=$2 runs=$3 prep=${4:-true}
  curl_cfg "$url" "$WORK/files" > "$WORK/curl-$label.cfg"
  hyperfine --style basic --runs "$runs" --warmup 1 --prepare "$prep" --export-json "$WORK/$label.json" \
    -n dicomgcs "lua5.4 $WORK/stow.lua $url $WORK/files $CONC" \
    -n curl "curl -s --fail --parallel --parallel-max $CONC -X POST -H 'Content-Type: application/dicom' -H 'Accept: application/dicom+json' -H 'Expect:' -K $WORK/curl-$label.cfg" \
    -n dicomweb-client "node $ROOT/bench/node/stow.js $url $WORK/files $CONC" >&2
  hyperfine_means "$WORK/$label.json"
}

LINES=()
emit() { LINES+=("$1"); echo "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v n="$N" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }

echo "bench/stow.sh: STOW to the nginx sink ($RUNS runs each)" >&2
mapfile -t M < <(run_three sink "$SINK" "$RUNS")
D=$(rate "${M[0]}"); C=$(rate "${M[1]}"); J=$(rate "${M[2]}")
emit "bench: stow_sink_curl $C instances/s"
emit "bench: stow_sink_dicomweb_client $J instances/s"
emit "bench: stow_sink $D instances/s ratio=$(ratio "$D" "$C") vs curl"
emit "bench: stow_sink $D instances/s ratio=$(ratio "$D" "$J") vs dicomweb-client"

# ---- the emulator ----
eval "$(emulator/start --data "$WORK/emu" --op-delay-ms 0)"
EMU="http://$DICOMGCS_EMULATOR_HOST"
DS="projects/bench/locations/us-central1/datasets/bench"
curl -s -X POST "$EMU/v1/projects/bench/locations/us-central1/datasets?datasetId=bench" -d '{}' >/dev/null
sleep 0.2
PREP="curl -s -X DELETE $EMU/v1/$DS/dicomStores/s >/dev/null; curl -s -f -X POST '$EMU/v1/$DS/dicomStores?dicomStoreId=s' -d '{}' >/dev/null"
echo "bench/stow.sh: STOW to the emulator ($EMU_RUNS runs each, a fresh store per run)" >&2
mapfile -t M < <(run_three emu "$EMU/v1/$DS/dicomStores/s/dicomWeb" "$EMU_RUNS" "$PREP")
D=$(rate "${M[0]}"); C=$(rate "${M[1]}"); J=$(rate "${M[2]}")
emit "bench: stow_emulator_curl $C instances/s"
emit "bench: stow_emulator_dicomweb_client $J instances/s"
emit "bench: stow_emulator $D instances/s ratio=$(ratio "$D" "$C") vs curl"
emit "bench: stow_emulator $D instances/s ratio=$(ratio "$D" "$J") vs dicomweb-client"

# ---- retrieve a 1 GiB study ----
eval "$PREP"
RURL="$EMU/v1/$DS/dicomStores/s/dicomWeb"
lua5.4 -e "local dw = require('dicomgcs.dicomweb').new{ base_url = '$RURL' }
  local s = assert(dw:store('$WORK/study', { batch = 8, concurrency = 4 })); assert(s.failed == 0, 'store failed')"
rm -rf "$WORK/files" # room on the disk
echo "bench/stow.sh: WADO-RS retrieve of the study ($RRUNS runs)" >&2
hyperfine --style basic --runs "$RRUNS" --warmup 1 --prepare "rm -rf $WORK/out" --export-json "$WORK/retrieve.json" \
  -n retrieve "lua5.4 $WORK/retrieve.lua $RURL $STUDY $WORK/out $WORK/hwm" >&2
R_MEAN=$(hyperfine_means "$WORK/retrieve.json")
R_BYTES=$(awk '{ b = $2 } END { print b }' "$WORK/hwm")
R_HWM=$(awk '{ if ($1 > m) m = $1 } END { print m }' "$WORK/hwm")
emit "bench: retrieve_1gib_throughput $(awk -v b="$R_BYTES" -v s="$R_MEAN" 'BEGIN { printf "%.0f", b / s / 1048576 }') MiB/s"
emit "bench: retrieve_1gib_peak_rss $(awk -v k="$R_HWM" 'BEGIN { printf "%.1f", k / 1024 }') MiB"

{
  echo
  echo "## bench/stow.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs"
  echo
  echo "Command: \`bench/stow.sh\` (STOW_N=$N STOW_CONCURRENCY=$CONC STOW_RUNS=$RUNS STOW_EMU_RUNS=$EMU_RUNS RETRIEVE_COUNT=$RCOUNT RETRIEVE_RUNS=$RRUNS; instance size $SIZE bytes; hyperfine means)"
  echo
  echo '```'
  printf '%s\n' "${LINES[@]}"
  echo '```'
} >> "${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
