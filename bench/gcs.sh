#!/usr/bin/env bash
# Cloud Storage transfer benchmark (issue 7), run by scripts/bench (or alone: bench/gcs.sh).
#
# Against one emulator started here, the same work three ways in the same run:
#   dicomgcs           bin/dicomgcs storage cp (parallel, concurrency 16, CRC32C computed and checked;
#                      resumable streamed upload and ranged download for the large object)
#   official client    @google-cloud/storage (bench/node/gcs/gcs_bench.js: TransferManager
#                      uploadManyFiles / a 16-way download pool / bucket.upload resumable /
#                      downloadFileInChunks 32 MiB)
#   curl               streamed curl --parallel --parallel-max 16 (--upload-file, -H 'Expect:')
# 1. upload and download of 1,000 objects of 1 MiB;  2. upload and download of one 2 GiB object.
# Figures: throughput (MiB/s) with ratio=R vs each peer (R > 1: dicomgcs faster), and peak RSS of
# the dicomgcs process for the 2 GiB transfers (target < 32 MiB). Each timing is the best of
# GCS_BENCH_RUNS (default 2) runs for the small set and one run for the 2 GiB object.
# Every timed run starts after `sync` (on this 2-core VM, write-back left over from one peer
# otherwise lands on the next one's timing).
# Knobs: GCS_BENCH_SMALL_N (1000), GCS_BENCH_BIG_MIB (2048), GCS_BENCH_RUNS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${GCS_BENCH_SMALL_N:-1000}
BIG_MIB=${GCS_BENCH_BIG_MIB:-2048}
RUNS=${GCS_BENCH_RUNS:-2}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
. bench/lib.sh
bench_need bench/gcs.sh "apt-get install nodejs npm curl time" node npm curl /usr/bin/time
make -s build >/dev/null
bench_need_emulator
export LUA_PATH_5_4="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH_5_4="$ROOT/build/?.so;;"
[ -d bench/node/gcs/node_modules/@google-cloud/storage ] ||
  (cd bench/node/gcs && npm install --no-audit --no-fund --loglevel=error >/dev/null)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dicomgcs-bench-gcs.XXXXXX")
cleanup() { emulator/stop --data "$WORK/emu" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
eval "$(emulator/start --data "$WORK/emu" --op-delay-ms 0)"
H=$DICOMGCS_EMULATOR_HOST
export BENCH_BUCKET=bench GOOGLE_CLOUD_PROJECT=bench-project
DG="bin/dicomgcs"
$DG storage buckets create gs://bench --project=bench-project >/dev/null

echo "bench/gcs.sh: generating $N x 1 MiB and one ${BIG_MIB} MiB file" >&2
mkdir -p "$WORK/small"
head -c $((N * 1048576)) /dev/urandom | (cd "$WORK/small" && split -b 1048576 -a 4 -d - f)
head -c $((BIG_MIB * 1048576)) /dev/urandom > "$WORK/big.bin"

# run LABEL CMD...: time it; sets T (seconds) and RSS (KiB); fails loudly
run() {
  local label=$1; shift
  if ! /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err"; then
    echo "bench/gcs.sh: $label failed: $*" >&2; tail -5 "$WORK/err" >&2; exit 1
  fi
  read -r T RSS < "$WORK/time"
  echo "  $label: ${T}s, RSS $((RSS / 1024)) MiB" >&2
}
# best LABEL CMD...: best of RUNS (between runs, the caller's reset hook runs)
best() {
  local label=$1; shift; local bt="" brss=""
  for _ in $(seq "$RUNS"); do
    [ -n "${RESET:-}" ] && eval "$RESET"
    sync   # start each run with no dirty pages left by the previous one
    run "$label" "$@"
    if [ -z "$bt" ] || awk "BEGIN{exit !($T < $bt)}"; then bt=$T; brss=$RSS; fi
  done
  T=$bt; RSS=$brss
}
rate() { awk -v mib="$1" -v t="$2" 'BEGIN{printf "%.1f", mib / (t > 0 ? t : 0.001)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0 ? b : 0.001) / (a > 0 ? a : 0.001)}'; }  # their time / ours
lines=()
emit() { echo "bench: $*"; lines+=("bench: $*"); }

curl_cfg_up() {   # DIR PREFIX > config
  for f in "$1"/*; do
    printf 'url = "http://%s/upload/storage/v1/b/bench/o?uploadType=media&name=%s%s"\nupload-file = "%s"\noutput = "/dev/null"\n' \
      "$H" "$2" "$(basename "$f")" "$f"
  done
}
curl_cfg_down() { # PREFIX DIR > config
  for f in "$WORK"/small/*; do
    printf 'url = "http://%s/storage/v1/b/bench/o/%s%s?alt=media"\noutput = "%s/%s"\n' "$H" "$1" "$(basename "$f")" "$2" "$(basename "$f")"
  done
}
SMALL_MIB=$N
CURL="curl --parallel --parallel-max 16 -sS -f -H Expect:"

echo "bench/gcs.sh: upload $N x 1 MiB" >&2
RESET='curl -s -XPOST "http://$H/_emulator/reset" >/dev/null; '"$DG"' storage buckets create gs://bench --project=bench-project >/dev/null'
# gs://bench/dg does not exist (RESET empties the bucket), so the folder's contents become dg/… (gcloud's rule)
best "dicomgcs upload" $DG storage cp -r --no-skip-same "$WORK/small" gs://bench/dg --project=bench-project
T_DG=$T
best "official upload" node bench/node/gcs/gcs_bench.js upload-many "$WORK/small" node/
T_NODE=$T
curl_cfg_up "$WORK/small" "curl%2F" > "$WORK/up.cfg"
best "curl upload" $CURL -X POST -K "$WORK/up.cfg"
T_CURL=$T
emit "gcs_upload_${N}x1MiB $(rate $SMALL_MIB $T_DG) MiB/s ratio=$(ratio $T_DG $T_NODE) vs @google-cloud/storage"
emit "gcs_upload_${N}x1MiB $(rate $SMALL_MIB $T_DG) MiB/s ratio=$(ratio $T_DG $T_CURL) vs curl"

echo "bench/gcs.sh: download $N x 1 MiB" >&2
RESET=""
$DG storage cp -r --no-skip-same "$WORK/small" gs://bench/src --project=bench-project >/dev/null 2>&1
# "$WORK/down" does not exist before each run, so it receives src/'s contents (gcloud's rule)
RESET='rm -rf "$WORK/down"'
best "dicomgcs download" $DG storage cp -r gs://bench/src "$WORK/down" --project=bench-project
T_DG=$T
cmp -s "$WORK/small/f0007" "$WORK/down/f0007" || { echo "bench/gcs.sh: download mismatch" >&2; exit 1; }
# the peers write into a folder that exists (curl does not create one)
RESET='rm -rf "$WORK/down"; mkdir -p "$WORK/down"'
best "official download" node bench/node/gcs/gcs_bench.js download-many src/ "$WORK/down"
T_NODE=$T
curl_cfg_down "src%2F" "$WORK/down" > "$WORK/down.cfg"
best "curl download" $CURL -K "$WORK/down.cfg"
T_CURL=$T
rm -rf "$WORK/down"
emit "gcs_download_${N}x1MiB $(rate $SMALL_MIB $T_DG) MiB/s ratio=$(ratio $T_DG $T_NODE) vs @google-cloud/storage"
emit "gcs_download_${N}x1MiB $(rate $SMALL_MIB $T_DG) MiB/s ratio=$(ratio $T_DG $T_CURL) vs curl"

echo "bench/gcs.sh: upload and download of one ${BIG_MIB} MiB object" >&2
RESET='curl -s -XPOST "http://$H/_emulator/reset" >/dev/null; '"$DG"' storage buckets create gs://bench --project=bench-project >/dev/null'
RUNS_SAVED=$RUNS; RUNS=1
best "dicomgcs upload big" $DG storage cp --no-skip-same "$WORK/big.bin" gs://bench/big.bin --project=bench-project
T_DG=$T; RSS_UP=$RSS
RESET=""
best "official upload big" node bench/node/gcs/gcs_bench.js upload-one "$WORK/big.bin" node-big.bin
T_NODE=$T; RSS_NODE_UP=$RSS
best "curl upload big" curl -sS -f -H Expect: -X POST --upload-file "$WORK/big.bin" -o /dev/null \
  "http://$H/upload/storage/v1/b/bench/o?uploadType=media&name=curl-big.bin"
T_CURL=$T; RSS_CURL_UP=$RSS
emit "gcs_upload_${BIG_MIB}MiB $(rate $BIG_MIB $T_DG) MiB/s ratio=$(ratio $T_DG $T_NODE) vs @google-cloud/storage"
emit "gcs_upload_${BIG_MIB}MiB $(rate $BIG_MIB $T_DG) MiB/s ratio=$(ratio $T_DG $T_CURL) vs curl"
emit "gcs_upload_${BIG_MIB}MiB_peak_rss $(awk -v k=$RSS_UP 'BEGIN{printf "%.1f", k/1024}') MiB ratio=$(ratio $RSS_UP $RSS_CURL_UP) vs curl"

mkdir -p "$WORK/bigdown"
# One untimed download first: on these VMs the first 2 GiB written after the uploads costs ~6 s of
# kernel time filling fresh page-cache memory, whichever tool does it; without this the tool
# that happens to go first (dicomgcs) pays for everyone.
curl -sS -f -o "$WORK/bigdown/warmup.bin" "http://$H/storage/v1/b/bench/o/big.bin?alt=media"
rm -f "$WORK/bigdown/warmup.bin"
best "dicomgcs download big" $DG storage cp gs://bench/big.bin "$WORK/bigdown" --project=bench-project
T_DG=$T; RSS_DOWN=$RSS
cmp -s "$WORK/big.bin" "$WORK/bigdown/big.bin" || { echo "bench/gcs.sh: 2 GiB download mismatch" >&2; exit 1; }
rm -f "$WORK/bigdown/big.bin"
best "official download big" node bench/node/gcs/gcs_bench.js download-one big.bin "$WORK/bigdown/node.bin"
T_NODE=$T; RSS_NODE_DOWN=$RSS
rm -f "$WORK/bigdown/node.bin"
best "curl download big" curl -sS -f -o "$WORK/bigdown/curl.bin" "http://$H/storage/v1/b/bench/o/big.bin?alt=media"
T_CURL=$T; RSS_CURL_DOWN=$RSS
rm -rf "$WORK/bigdown"
RUNS=$RUNS_SAVED
emit "gcs_download_${BIG_MIB}MiB $(rate $BIG_MIB $T_DG) MiB/s ratio=$(ratio $T_DG $T_NODE) vs @google-cloud/storage"
emit "gcs_download_${BIG_MIB}MiB $(rate $BIG_MIB $T_DG) MiB/s ratio=$(ratio $T_DG $T_CURL) vs curl"
emit "gcs_download_${BIG_MIB}MiB_peak_rss $(awk -v k=$RSS_DOWN 'BEGIN{printf "%.1f", k/1024}') MiB ratio=$(ratio $RSS_DOWN $RSS_CURL_DOWN) vs curl"

{
  echo "## Cloud Storage transfers (bench/gcs.sh)"
  echo
  echo "Against one emulator (node, same machine), $N x 1 MiB and one ${BIG_MIB} MiB object, concurrency 16:"
  echo '```'
  echo "dicomgcs: bin/dicomgcs storage cp -r --no-skip-same DIR gs://bench/dg   |   storage cp -r gs://bench/src DIR"
  echo "          bin/dicomgcs storage cp --no-skip-same big.bin gs://bench/big.bin   |   storage cp gs://bench/big.bin DIR"
  echo "official: node bench/node/gcs/gcs_bench.js upload-many|download-many|upload-one|download-one  (@google-cloud/storage)"
  echo "curl:     curl --parallel --parallel-max 16 -sS -f -H Expect: -X POST -K up.cfg   (url + upload-file per object)"
  echo "          curl --parallel --parallel-max 16 -sS -f -H Expect: -K down.cfg        (url + output per object)"
  echo "          curl -H Expect: -X POST --upload-file big.bin URL   |   curl -o big.bin URL?alt=media"
  echo '```'
  echo "Best of $RUNS runs (1 for the big object), wall time by /usr/bin/time; ratio = peer time / dicomgcs time."
  echo "Peak RSS of the peers, MiB: official upload ${RSS_NODE_UP}K download ${RSS_NODE_DOWN}K; curl upload ${RSS_CURL_UP}K download ${RSS_CURL_DOWN}K (KiB)."
  echo
  bench_fenced "${lines[@]}"
} >> "$RESULTS"
