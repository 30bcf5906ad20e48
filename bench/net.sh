#!/usr/bin/env bash
# Where Google really is (issue 20): HTTP/2 over TLS, 0 ms and 50 ms away. Run by scripts/bench
# (or alone: bench/net.sh).
#
# For each latency L in NET_LATENCIES ("0 50"), one emulator `emulator/start --tls --latency-ms L`
# (HTTP/2 and HTTP/1.1 by ALPN, its own CA trusted through DICOMGCS_CA_FILE / --cacert /
# NODE_EXTRA_CA_CERTS; verification on everywhere), and against it, in the same run, by hyperfine
# (one warm-up round, then NET_RUNS rounds, each running every tool once, in an order that turns
# by one tool per round; median of each tool's runs with min and max):
#   stow_Lms          STOW-RS of 2,000 instances of ~256 KiB: dicomgcs (dicomweb:store, default
#                     concurrency) vs curl --parallel (HTTP/1.1 and --http2, --parallel-max 16 and
#                     64, streamed --upload-file) and the JavaScript dicomweb-client (16 and 64
#                     storeInstances calls at a time: at 50 ms its best setting is 64)
#   stow_sink_Lms     the same STOW to nginx (TLS + HTTP/2, reads every body, answers '{}' after
#                     L ms by echo_sleep): the emulator parses and stores every instance in one
#                     Node thread and is the ceiling for every client; this server is not
#   qido_Lms          2,000 instance metadata GETs: dicomgcs (one engine, default concurrency) vs curl
#   gcs_upload_Lms    1,000 x 1 MiB uploads: bin/dicomgcs storage cp -r vs curl and
#                     @google-cloud/storage (TransferManager default concurrency, and 64)
#   gcs_download_Lms  the same 1,000 objects downloaded
#   sink_upload_Lms   the same uploads to that nginx
# Each ratio is peer median time / dicomgcs median time against the peer's best setting (R > 1:
# dicomgcs ahead); _cpu lines compare user+system CPU per request with the best curl setting's;
# _peak_rss lines are one extra dicomgcs run under /usr/bin/time.
#                     (and curl_h1_p64 followed by `sync -f` of the folder: curl's bytes as durable
#                     as ours, which are fsync'ed before they are named)
# Knobs: NET_LATENCIES, NET_RUNS (5), NET_STOW_N (2000), NET_GCS_N (1000), NET_QIDO_N (2000),
# NET_FIGURES (default "stow stow_sink qido gcs_upload gcs_download sink_upload": which to measure).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
LATENCIES=${NET_LATENCIES:-0 50}
RUNS=${NET_RUNS:-5}
STOW_N=${NET_STOW_N:-2000}
GCS_N=${NET_GCS_N:-1000}
QIDO_N=${NET_QIDO_N:-2000}
FIGURES=" ${NET_FIGURES:-stow stow_sink qido gcs_upload gcs_download sink_upload} "
want() { [[ $FIGURES == *" $1 "* ]]; }
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
[ "$QIDO_N" -le "$STOW_N" ] || QIDO_N=$STOW_N

bench_need bench/net.sh "nginx libnginx-mod-http-echo hyperfine nodejs npm curl dcmtk openssl time" \
  nginx hyperfine node npm curl dump2dcm openssl /usr/bin/time
bench_need_nginx_echo bench/net.sh
make -s build >/dev/null
bench_need_emulator
export LUA_PATH_5_4="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH_5_4="$ROOT/build/?.so;;"
[ -d bench/node/node_modules/dicomweb-client ] ||
  (cd bench/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
[ -d bench/node/gcs/node_modules/@google-cloud/storage ] ||
  (cd bench/node/gcs && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dicomgcs-bench-net.XXXXXX")
cleanup() {
  set +e   # every step runs, whatever the previous one returned (an emulator already stopped)
  nginx_sink_stop "$WORK/nginx"
  for d in "$WORK"/emu*; do [ -d "$d" ] && emulator/stop --data "$d" >/dev/null 2>&1; done
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "bench/net.sh: generating $STOW_N instances of ~256 KiB and $GCS_N files of 1 MiB in $WORK" >&2
read -r STUDY SIZE SERIES < <(lua5.4 bench/gen_instances.lua "$WORK/dcm" "$STOW_N" 362 "$WORK/uids")
mkdir -p "$WORK/small"
head -c $((GCS_N * 1048576)) /dev/urandom | (cd "$WORK/small" && split -b 1048576 -a 4 -d - f)
cat > "$WORK/stow.lua" <<'EOF'
local dw = require("dicomgcs.dicomweb").new{ base_url = arg[1] }
local s = assert(dw:store(arg[2]))
if s.failed > 0 then io.stderr:write(tostring(s.results[1].reason), "\n") os.exit(1) end
EOF

LINES=(); ROWS=()
emit() { LINES+=("bench: $*"); echo "bench: $*"; }
f2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
declare -A MED MIN MAX CPU FAIL

# measure FIGURE PREPARE NAME CMD [NAME CMD]...: NET_RUNS runs of each command (hyperfine, PREPARE
# before every run, in rounds); fills MED/MIN/MAX/CPU/FAIL[FIGURE/NAME] (seconds; runs that failed). A peer
# with a failed run is reported but never taken as the best; a failed dicomgcs run fails the script.
measure() {
  local fig=$1 prep=$2; shift 2
  local names=() cmds=() args=() name med min max cpu failed r i k n
  while [ $# -gt 0 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
  n=${#names[@]}
  # Rounds, each running every tool once (round 0 unmeasured, so that none meets a cold emulator
  # just because it comes first), starting one tool later each round: a slow spell of the machine
  # falls on every tool alike. One hyperfine call per tool and its runs in a row let a spell of
  # ~30 s slow only the tools that ran in it (2026-12-05: 4.0-5.0 s for dicomgcs there, 2.6 s
  # measured again right after).
  rm -f "$WORK"/h.*.json
  for ((r = 0; r <= RUNS; r++)); do
    args=()
    [ "$r" -gt 0 ] && args+=(--export-json "$WORK/h.$r.json")
    for ((i = 0; i < n; i++)); do k=$(( (i + r) % n )); args+=(-n "${names[$k]}" "${cmds[$k]}"); done
    hyperfine --style basic --ignore-failure --runs 1 --prepare "$prep" "${args[@]}" >&2
  done
  while read -r name med min max cpu failed; do
    MED[$fig/$name]=$med; MIN[$fig/$name]=$min; MAX[$fig/$name]=$max; CPU[$fig/$name]=$cpu; FAIL[$fig/$name]=$failed
  done < <(hyperfine_rounds_stats "$WORK"/h.*.json)
  [ "${FAIL[$fig/dicomgcs]}" = 0 ] || { echo "bench/net.sh: $fig: dicomgcs failed ${FAIL[$fig/dicomgcs]} run(s)" >&2; exit 1; }
}

# best FIGURE NAME...: the name with the lowest median time
best() {
  local fig=$1 b="" n; shift
  for n in "$@"; do
    [ "${FAIL[$fig/$n]}" = 0 ] || continue
    if [ -z "$b" ] || awk -v a="${MED[$fig/$n]}" -v c="${MED[$fig/$b]}" 'BEGIN { exit !(a < c) }'; then b=$n; fi
  done
  echo "$b"
}

# report FIGURE UNITS UNIT COUNT CPU_PEER PEER_GROUP...: table rows, then the bench lines
# (rate = UNITS / median) against the best of each group ("label:name,name").
report() {
  local fig=$1 units=$2 unit=$3 count=$4 cpu_peer=$5 n k g label names b; shift 5
  for k in "${!MED[@]}"; do
    [ "${k%%/*}" = "$fig" ] || continue
    n=${k#*/}
    ROWS+=("| $fig | $n | $(f2 "${MED[$k]}") | $(f2 "${MIN[$k]}") | $(f2 "${MAX[$k]}") | $(awk -v u="$units" -v t="${MED[$k]}" 'BEGIN { printf "%.0f", u / t }') $unit | $(awk -v c="${CPU[$k]}" -v n="$count" 'BEGIN { printf "%.3f", c * 1000 / n }') | ${FAIL[$k]} |")
  done
  local rate; rate=$(awk -v u="$units" -v t="${MED[$fig/dicomgcs]}" 'BEGIN { printf "%.0f", u / t }')
  for g in "$@"; do
    label=${g%%:*}; IFS=, read -r -a names <<< "${g#*:}"
    b=$(best "$fig" "${names[@]}")
    emit "$fig $rate $unit ratio=$(awk -v p="${MED[$fig/$b]}" -v d="${MED[$fig/dicomgcs]}" 'BEGIN { printf "%.2f", p / d }') vs $label ($b)"
  done
  if [ -n "$cpu_peer" ]; then
    b=$(best "$fig" ${cpu_peer//,/ })
    emit "${fig}_cpu $(awk -v c="${CPU[$fig/dicomgcs]}" -v n="$count" 'BEGIN { printf "%.3f", c * 1000 / n }') ms/request ratio=$(awk -v p="${CPU[$fig/$b]}" -v d="${CPU[$fig/dicomgcs]}" 'BEGIN { printf "%.2f", p / d }') vs curl ($b)"
  fi
}

# peak_rss FIGURE CMD...: one more dicomgcs run under /usr/bin/time; its peak RSS as a line
peak_rss() {
  local fig=$1; shift
  /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/rss.err" || { tail -3 "$WORK/rss.err" >&2; return 1; }
  emit "${fig}_peak_rss $(awk '{ printf "%.1f", $1 / 1024 }' "$WORK/rss") MiB"
}

CURLS=(curl_h1_p16 curl_h1_p64 curl_h2_p16 curl_h2_p64)
CURL_GROUP="curl:$(IFS=,; echo "${CURLS[*]}")"
DWC_GROUP="dicomweb-client:dicomweb-client_16,dicomweb-client_64"
curl_variants() { # CMD-SUFFIX: NAME CMD pairs for the four curl settings
  local v p
  for v in 1 2; do for p in 16 64; do
    printf '%s\0%s\0' "curl_h${v}_p$p" "$CURLBASE $([ $v = 1 ] && echo --http1.1 || echo --http2) --parallel --parallel-max $p $1"
  done; done
}
with_curls() { # FIGURE PREPARE CURL-SUFFIX NAME CMD...: measure the given tools and the four curls
  local fig=$1 prep=$2 suffix=$3 extra=(); shift 3
  mapfile -d '' extra < <(curl_variants "$suffix")
  measure "$fig" "$prep" "$@" "${extra[@]}"
}

for L in $LATENCIES; do
  W=${L}ms
  EMU="$WORK/emu$L"
  eval "$(emulator/start --data "$EMU" --tls --latency-ms "$L" --op-delay-ms 0)"
  H=$DICOMGCS_EMULATOR_HOST CA=$DICOMGCS_CA_FILE
  export NODE_EXTRA_CA_CERTS=$CA BENCH_BUCKET=bench GOOGLE_CLOUD_PROJECT=bench-project
  CURLBASE="curl -sS --fail --cacert $CA -H Expect:"
  Q="curl -s --cacert $CA -o /dev/null"
  echo "bench/net.sh: $W: emulator at $H (TLS, HTTP/2), $RUNS runs of each tool" >&2
  # the sink: nginx, TLS + HTTP/2 and HTTP/1.1, reads every body, answers '{}' after L ms
  SPORT=$(bench_free_port)
  SLEEP=""; [ "$L" -gt 0 ] && SLEEP="echo_sleep $(awk -v l="$L" 'BEGIN { printf "%.3f", l / 1000 }');"
  NGINX_SINK_TLS="$EMU/tls-cert.pem $EMU/tls-key.pem $CA" nginx_sink_start "$WORK/nginx" "$SPORT" \
    "default_type application/dicom+json; $SLEEP echo '{}';"
  SINK="https://127.0.0.1:$SPORT"

  # ---- STOW, then metadata GETs of what it stored
  DS=projects/bench/locations/us-central1/datasets/bench
  $Q -X POST "$H/v1/projects/bench/locations/us-central1/datasets?datasetId=bench" -d '{}'
  DW="$H/v1/$DS/dicomStores/s/dicomWeb"
  for f in "$WORK"/dcm/*.dcm; do printf 'url = "%s/studies"\nupload-file = "%s"\noutput = "/dev/null"\n' "$DW" "$f"; done > "$WORK/stow.cfg"
  # sync: the emulator shares this machine's disk; each run starts with no earlier run's writes
  # still being flushed (one upload run after 2,000 STOWs x 12 took twice as long without it)
  PREP="$Q -X DELETE $H/v1/$DS/dicomStores/s; $Q -X POST '$H/v1/$DS/dicomStores?dicomStoreId=s' -d '{}'; sync"
  if want stow; then
    echo "bench/net.sh: $W: STOW of $STOW_N instances" >&2
    with_curls "stow_$W" "$PREP" "-X POST -H 'Content-Type: application/dicom' -H 'Accept: application/dicom+json' -K $WORK/stow.cfg" \
      dicomgcs "lua5.4 $WORK/stow.lua $DW $WORK/dcm" \
      dicomweb-client_16 "node $ROOT/bench/node/stow.js $DW $WORK/dcm 16" \
      dicomweb-client_64 "node $ROOT/bench/node/stow.js $DW $WORK/dcm 64"
    report "stow_$W" "$STOW_N" instances/s "$STOW_N" "${CURL_GROUP#curl:}" "$CURL_GROUP" "$DWC_GROUP"
  fi
  eval "$PREP"   # the store holds the instances the metadata GETs ask for
  if want stow; then peak_rss "stow_$W" lua5.4 "$WORK/stow.lua" "$DW" "$WORK/dcm"
  else lua5.4 "$WORK/stow.lua" "$DW" "$WORK/dcm"; fi

  # STOW to the sink: where the emulator (one Node thread parsing and storing every instance) is
  # the ceiling for every client, a server that only reads the body and answers after L ms is not
  for f in "$WORK"/dcm/*.dcm; do printf 'url = "%s/studies"\nupload-file = "%s"\noutput = "/dev/null"\n' "$SINK" "$f"; done > "$WORK/stow_sink.cfg"
  if want stow_sink; then
    echo "bench/net.sh: $W: STOW of $STOW_N instances to nginx" >&2
    with_curls "stow_sink_$W" true "-X POST -H 'Content-Type: application/dicom' -H 'Accept: application/dicom+json' -K $WORK/stow_sink.cfg" \
      dicomgcs "lua5.4 $WORK/stow.lua $SINK $WORK/dcm" \
      dicomweb-client_16 "node $ROOT/bench/node/stow.js $SINK $WORK/dcm 16" \
      dicomweb-client_64 "node $ROOT/bench/node/stow.js $SINK $WORK/dcm 64"
    report "stow_sink_$W" "$STOW_N" instances/s "$STOW_N" "${CURL_GROUP#curl:}" "$CURL_GROUP" "$DWC_GROUP"
    peak_rss "stow_sink_$W" lua5.4 "$WORK/stow.lua" "$SINK" "$WORK/dcm"
  fi

  head -n "$QIDO_N" "$WORK/uids" | sed "s|^|$DW/studies/$STUDY/series/$SERIES/instances/|; s|\$|/metadata|" > "$WORK/qido.list"
  sed 's/^/url = "/; s/$/"\noutput = "\/dev\/null"/' "$WORK/qido.list" > "$WORK/qido.cfg"
  if want qido; then
    echo "bench/net.sh: $W: $QIDO_N metadata GETs" >&2
    with_curls "qido_$W" true "-H 'Accept: application/dicom+json' -K $WORK/qido.cfg" \
      dicomgcs "lua5.4 $ROOT/bench/get_urls.lua $WORK/qido.list"
    report "qido_$W" "$QIDO_N" requests/s "$QIDO_N" "${CURL_GROUP#curl:}" "$CURL_GROUP"
  fi

  # ---- Cloud Storage: 1 MiB objects up, then down
  MKB="$Q -X POST '$H/storage/v1/b?project=bench-project' -H 'Content-Type: application/json' -d '{\"name\":\"bench\"}'"
  RESET="$Q -X POST $H/_emulator/reset; $MKB; sync"
  for f in "$WORK"/small/*; do
    printf 'url = "%s/upload/storage/v1/b/bench/o?uploadType=media&name=curl%%2F%s"\nupload-file = "%s"\noutput = "/dev/null"\n' "$H" "${f##*/}" "$f"
  done > "$WORK/up.cfg"
  DG="$ROOT/bin/dicomgcs"
  if want gcs_upload; then
    echo "bench/net.sh: $W: upload of $GCS_N x 1 MiB" >&2
    with_curls "gcs_upload_$W" "$RESET" "-X POST -K $WORK/up.cfg" \
      dicomgcs "$DG storage cp -r --no-skip-same $WORK/small gs://bench/dg --project=bench-project" \
      gcs_default "node $ROOT/bench/node/gcs/gcs_bench.js upload-many $WORK/small node/ default" \
      gcs_64 "node $ROOT/bench/node/gcs/gcs_bench.js upload-many $WORK/small node/ 64"
    report "gcs_upload_$W" "$GCS_N" MiB/s "$GCS_N" "${CURL_GROUP#curl:}" "@google-cloud/storage:gcs_default,gcs_64" "$CURL_GROUP"
  fi
  eval "$RESET"
  if want gcs_upload; then peak_rss "gcs_upload_$W" "$DG" storage cp -r --no-skip-same "$WORK/small" gs://bench/dg --project=bench-project; fi

  "$DG" storage cp -r --no-skip-same "$WORK/small" gs://bench/src --project=bench-project >/dev/null
  for f in "$WORK"/small/*; do
    printf 'url = "%s/storage/v1/b/bench/o/src%%2F%s?alt=media"\noutput = "%s/down/%s"\n' "$H" "${f##*/}" "$WORK" "${f##*/}"
  done > "$WORK/down.cfg"
  if want gcs_download; then
    echo "bench/net.sh: $W: download of $GCS_N x 1 MiB" >&2
    with_curls "gcs_download_$W" "rm -rf $WORK/down; sync" "--create-dirs -K $WORK/down.cfg" \
      dicomgcs "$DG storage cp -r gs://bench/src $WORK/down --project=bench-project" \
      gcs_default "node $ROOT/bench/node/gcs/gcs_bench.js download-many src/ $WORK/down default" \
      gcs_64 "node $ROOT/bench/node/gcs/gcs_bench.js download-many src/ $WORK/down 64" \
      curl_h1_p64_sync "$CURLBASE --http1.1 --parallel --parallel-max 64 --create-dirs -K $WORK/down.cfg && sync -f $WORK/down"
    report "gcs_download_$W" "$GCS_N" MiB/s "$GCS_N" "${CURL_GROUP#curl:}" "@google-cloud/storage:gcs_default,gcs_64" \
      "$CURL_GROUP" "curl then sync -f:curl_h1_p64_sync"
    rm -rf "$WORK/down"
    peak_rss "gcs_download_$W" "$DG" storage cp -r gs://bench/src "$WORK/down" --project=bench-project
    cmp -s "$WORK/small/f0007" "$WORK/down/f0007" || { echo "bench/net.sh: download mismatch" >&2; exit 1; }
    rm -rf "$WORK/down"
  fi

  # ---- the same uploads to a sink that is not the ceiling
  find "$WORK/small" -type f | sort > "$WORK/small.list"
  awk -v u="$SINK/up" '{ printf "url = \"%s/%d\"\nupload-file = \"%s\"\noutput = \"/dev/null\"\n", u, NR, $0 }' "$WORK/small.list" > "$WORK/sink.cfg"
  if want sink_upload; then
    echo "bench/net.sh: $W: upload of $GCS_N x 1 MiB to nginx" >&2
    with_curls "sink_upload_$W" true "-X POST -K $WORK/sink.cfg" \
      dicomgcs "lua5.4 $ROOT/bench/upload_files.lua $SINK/up 0 @$WORK/small.list"
    report "sink_upload_$W" "$GCS_N" MiB/s "$GCS_N" "${CURL_GROUP#curl:}" "$CURL_GROUP"
  fi
  nginx_sink_stop "$WORK/nginx"; rm -rf "$WORK/nginx"

  emulator/stop --data "$EMU" >/dev/null
done

{
  echo
  echo "## Where Google really is: TLS + HTTP/2, 0 and 50 ms (bench/net.sh)"
  echo
  echo "Load average when the section was written: $(cut -d' ' -f1-3 /proc/loadavg) (the benchmark's own load"
  echo "included); only ratios between tools measured in the same run mean something."
  echo "$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(free -g | awk '/Mem:/ { print $2 }') GiB,"
  echo "$(uname -sr), $(curl -V | head -1 | cut -d' ' -f1-2,4-5), node $(node --version), $(nginx -v 2>&1 | cut -d' ' -f3)."
  echo
  echo "Emulator: \`emulator/start --tls --latency-ms L\` (HTTP/2 and HTTP/1.1 by ALPN over TLS, certificate from"
  echo "its own CA, every response held L ms after the handler answers). Sink: nginx, TLS + HTTP/2"
  echo "(100 streams) and HTTP/1.1, \`echo_read_request_body; echo_sleep L/1000; echo '{}';\`. Every client verifies"
  echo "the certificate (DICOMGCS_CA_FILE, --cacert, NODE_EXTRA_CA_CERTS). $STOW_N instances of $SIZE bytes;"
  echo "$GCS_N objects of 1 MiB; $QIDO_N instance metadata GETs. hyperfine, one warm-up round and $RUNS rounds, each"
  echo "running every tool once, the order turning by one tool per round (median, min, max of each tool's wall"
  echo "times); CPU = user + system per request (mean over its runs)."
  [ -z "${NET_FIGURES:-}" ] || echo "Figures measured in this run: ${NET_FIGURES}."
  echo
  echo '```'
  echo "dicomgcs:  lua5.4 stow.lua DICOMWEB_URL DIR       (dicomweb.new{ base_url }:store(DIR), default concurrency)"
  echo "           lua5.4 bench/get_urls.lua LIST          (one engine, default concurrency)"
  echo "           bin/dicomgcs storage cp -r --no-skip-same DIR gs://bench/dg | storage cp -r gs://bench/src DIR"
  echo "           lua5.4 bench/upload_files.lua SINK 0 @LIST"
  echo "curl_hV_pP: curl -sS --fail --cacert CA -H Expect: --http1.1|--http2 --parallel --parallel-max 16|64 -K CFG"
  echo "           (per request: url, upload-file (streamed) or output)"
  echo "curl_h1_p64_sync: the curl_h1_p64 download, then sync -f DIR (curl's files as durable as ours)"
  echo "dicomweb-client: node bench/node/stow.js URL DIR N    (dicomweb-client 0.11.3 + xhr2, HTTP/1.1; N = 16 and 64)"
  echo "gcs_default|gcs_64: node bench/node/gcs/gcs_bench.js upload-many|download-many ... default|64 (@google-cloud/storage)"
  echo '```'
  echo
  echo "| figure | tool | median s | min s | max s | rate | CPU ms/request | failed runs |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}" | sort -t'|' -k2,2 -k3,3
  echo
  echo '```'
  printf '%s\n' "${LINES[@]}"
  echo '```'
} >> "$RESULTS"
