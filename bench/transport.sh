#!/usr/bin/env bash
# Transport benchmark (issue 5): the HTTP engine against curl, same machine, same run.
#   1. 2,000 files of 256 KiB uploaded at concurrency 16 to nginx + echo_read_request_body
#      (reads every body before answering): dicomgcs (bench/upload_files.lua) vs
#      `curl --parallel --parallel-max 16 --upload-file FILE -X POST -H 'Expect:'`, 10 runs of
#      each (hyperfine, interleaved): mean uploads/s and CPU (user+sys) per upload.
#   2. Expect: 100-continue: 3 MiB uploads (POST and PUT) to bench/sink.js, which counts the
#      requests that carried an Expect header.
#   3. Peak RSS (/usr/bin/time -v) uploading one 2 GiB sparse file to bench/sink.js, dicomgcs vs curl.
# Prints `bench: ...` lines on stdout, progress on stderr; appends a section to $BENCH_RESULTS.
# Run through scripts/bench (which sets LUA_PATH_5_4/LUA_CPATH_5_4), or alone: bash bench/transport.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/lib.sh
export LUA_PATH_5_4="${LUA_PATH_5_4:-$root/lua/?.lua;$root/lua/?/init.lua;;}"
export LUA_CPATH_5_4="${LUA_CPATH_5_4:-$root/build/?.so;;}"
RESULTS=${BENCH_RESULTS:-/dev/null}
NFILES=${BENCH_NFILES:-2000}
RUNS=${BENCH_RUNS:-10}
CONC=16
BIG=${BENCH_BIG_BYTES:-2147483648}

bench_need transport scripts/install-deps nginx hyperfine curl node jq /usr/bin/time
bench_need_nginx_echo transport

work="$root/bench/work/transport"
mkdir -p "$work/files"
run=$(mktemp -d "${TMPDIR:-/tmp}/dicomgcs-bench.XXXXXX")
pids=()
cleanup() {
  nginx_sink_stop "$run/nginx"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$run"
}
trap cleanup EXIT

# ---- input files (kept between runs in bench/work/transport)
if [ "$(find "$work/files" -type f -size 262144c | wc -l)" -ne "$NFILES" ]; then
  echo "transport: generating $NFILES files of 256 KiB" >&2
  rm -rf "$work/files"; mkdir -p "$work/files"
  head -c $((NFILES * 262144)) /dev/urandom | split -a 5 -d -b 262144 - "$work/files/f"
fi
find "$work/files" -type f | sort > "$run/list.txt"
port=$(bench_free_port)
{
  while read -r f; do
    printf 'upload-file = "%s"\nurl = "http://127.0.0.1:%s/up/%s"\noutput = "/dev/null"\n' "$f" "$port" "${f##*/}"
  done < "$run/list.txt"
} > "$run/curl.cfg"

# ---- nginx sink: reads each body (echo_read_request_body) before it answers
nginx_sink_start "$run/nginx" "$port" "echo ok;"
sink_url="http://127.0.0.1:$port/up"

# sanity: nginx reads the body (echo_read_request_body), each tool gets 2xx for every file
lua5.4 bench/upload_files.lua "$sink_url" "$CONC" "$(head -1 "$run/list.txt")"

dg_cmd="lua5.4 bench/upload_files.lua $sink_url $CONC @$run/list.txt"
curl_cmd="curl --no-progress-meter --fail --parallel --parallel-max $CONC -X POST -H 'Expect:' -K $run/curl.cfg"
echo "transport: hyperfine, $NFILES x 256 KiB at concurrency $CONC, $RUNS runs each, interleaved" >&2
# One hyperfine run at a time, alternating which tool goes first: on a shared machine the load
# drifts, and back-to-back blocks of 10 runs would charge the drift to one tool.
hf() { hyperfine -N --runs 1 --export-json "$1" -n "$2" "$3" >/dev/null 2>&1 || { echo "transport: $2 failed: $3" >&2; exit 1; }; }
hf "$run/warm_dg.json" dicomgcs "$dg_cmd"
hf "$run/warm_curl.json" curl "$curl_cmd"
for i in $(seq "$RUNS"); do
  if [ $((i % 2)) -eq 1 ]; then
    hf "$run/dg_$i.json" dicomgcs "$dg_cmd"; hf "$run/curl_$i.json" curl "$curl_cmd"
  else
    hf "$run/curl_$i.json" curl "$curl_cmd"; hf "$run/dg_$i.json" dicomgcs "$dg_cmd"
  fi
done
# mean, standard deviation, mean CPU (user+sys) of the runs of one tool
agg() {
  jq -rs '[.[].results[0]] | (map(.mean) | add / length) as $m
    | "\($m) \((map((.mean - $m) * (.mean - $m)) | add / (length - 1)) | sqrt) \(map(.user + .system) | add / length)"' "$@"
}
read -r dg_mean dg_sd dg_cpu < <(agg "$run"/dg_*.json)
read -r curl_mean curl_sd curl_cpu < <(agg "$run"/curl_*.json)
printf 'transport: dicomgcs %.1f ± %.1f ms, curl %.1f ± %.1f ms (CPU %.1f / %.1f ms per run)\n' \
  "$(jq -n "$dg_mean * 1000")" "$(jq -n "$dg_sd * 1000")" "$(jq -n "$curl_mean * 1000")" "$(jq -n "$curl_sd * 1000")" \
  "$(jq -n "$dg_cpu * 1000")" "$(jq -n "$curl_cpu * 1000")" >&2
fig() { awk "BEGIN { printf \"%.${2}f\", $1 }"; }
dg_rate=$(fig "$NFILES / $dg_mean" 0)
curl_rate=$(fig "$NFILES / $curl_mean" 0)
rate_ratio=$(fig "$curl_mean / $dg_mean" 2)
dg_cpu_ms=$(fig "$dg_cpu * 1000 / $NFILES" 3)
curl_cpu_ms=$(fig "$curl_cpu * 1000 / $NFILES" 3)
cpu_ratio=$(fig "$curl_cpu / $dg_cpu" 2)
mibs=$(fig "$NFILES * 0.25 / $dg_mean" 0)
curl_mibs=$(fig "$NFILES * 0.25 / $curl_mean" 0)
lines=()
lines+=("bench: upload_256k_c16 $dg_rate uploads/s ratio=$rate_ratio vs curl")
lines+=("bench: upload_256k_c16_cpu $dg_cpu_ms ms/upload ratio=$cpu_ratio vs curl")

# ---- Node sink: Expect headers and the 2 GiB upload
node bench/sink.js > "$run/sink.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q PORT "$run/sink.out" 2>/dev/null && break; sleep 0.1; done
sport=$(awk '/PORT/{print $2}' "$run/sink.out")
node_url="http://127.0.0.1:$sport"
head -c $((3 * 1024 * 1024)) /dev/urandom > "$run/three_mib"
lua5.4 bench/upload_files.lua "$node_url/post" 2 "$run/three_mib" "$run/three_mib"
UPLOAD_METHOD=PUT lua5.4 bench/upload_files.lua "$node_url/put" 2 "$run/three_mib" "$run/three_mib"
expect=$(curl -s "$node_url/_stats" | jq '.expect')
nreq=$(curl -s "$node_url/_stats" | jq '.requests')
[ "$nreq" -eq 4 ] || { echo "transport: the sink saw $nreq requests, not 4" >&2; exit 1; }
lines+=("bench: expect_100_continue $expect requests")

truncate -s "$BIG" "$run/big"
cat "$run/big" > /dev/null     # into the page cache first: the first reader of a fresh sparse file pays for it
echo "transport: peak RSS uploading $BIG bytes" >&2
/usr/bin/time -v -o "$run/dg.time" lua5.4 bench/upload_files.lua "$node_url/big" 1 "$run/big"
/usr/bin/time -v -o "$run/curl.time" curl --no-progress-meter --fail -o /dev/null -X POST -H 'Expect:' \
  --upload-file "$run/big" "$node_url/big"
dg_rss=$(peak_rss_kib "$run/dg.time"); curl_rss=$(peak_rss_kib "$run/curl.time")
big_bytes=$(curl -s "$node_url/_stats" | jq '.bytes')
[ "$big_bytes" -eq $((12 * 1024 * 1024 + 2 * BIG)) ] || { echo "transport: the sink got $big_bytes bytes" >&2; exit 1; }
lines+=("bench: upload_2gib_peak_rss $(fig "$dg_rss / 1024" 1) MiB ratio=$(fig "$curl_rss / $dg_rss" 2) vs curl")

printf '%s\n' "${lines[@]}"

{
  echo "## Transport (bench/transport.sh)"
  echo
  echo "Load average when the section was written: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared)."
  echo
  echo "Sink: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 1 worker, \`echo_read_request_body; echo ok;\`"
  echo "(libnginx-mod-http-echo: the body is read before the answer), on 127.0.0.1. $NFILES files of"
  echo "256 KiB (random bytes), concurrency $CONC; $RUNS timed runs of each tool after one warm-up, one
\`hyperfine -N --runs 1\` at a time, the tools alternating (odd runs dicomgcs first, even runs curl first):"
  echo
  echo '```'
  echo "dicomgcs: lua5.4 bench/upload_files.lua http://127.0.0.1:PORT/up $CONC @LIST"
  echo "curl:     curl --no-progress-meter --fail --parallel --parallel-max $CONC -X POST -H 'Expect:' -K CFG"
  echo "          (CFG: per file 'upload-file = \"FILE\"', 'url = ...', 'output = \"/dev/null\"')"
  echo '```'
  echo
  echo "| | mean wall ± σ | uploads/s | MiB/s | CPU (user+sys) per upload |"
  echo "|---|---|---|---|---|"
  echo "| dicomgcs | $(fig "$dg_mean * 1000" 0) ± $(fig "$dg_sd * 1000" 0) ms | $dg_rate | $mibs | $dg_cpu_ms ms |"
  echo "| curl $(curl --version | awk 'NR==1{print $2}') | $(fig "$curl_mean * 1000" 0) ± $(fig "$curl_sd * 1000" 0) ms | $curl_rate | $curl_mibs | $curl_cpu_ms ms |"
  echo
  echo "Expect: two 3 MiB POSTs and two 3 MiB PUTs through the engine to bench/sink.js (Node), which"
  echo "counts requests carrying an \`Expect\` header: $expect of 4."
  echo
  echo "Peak RSS uploading one $(fig "$BIG / 1073741824" 0) GiB sparse file to bench/sink.js (\`/usr/bin/time -v\`, Maximum resident set size):"
  echo
  echo '```'
  echo "lua5.4 bench/upload_files.lua http://127.0.0.1:PORT/big 1 BIG       $(fig "$dg_rss / 1024" 1) MiB, $(wall_clock "$run/dg.time")"
  echo "curl -o /dev/null -X POST -H 'Expect:' --upload-file BIG URL        $(fig "$curl_rss / 1024" 1) MiB, $(wall_clock "$run/curl.time")"
  echo '```'
  echo
  bench_fenced "${lines[@]}"
} >> "$RESULTS"
