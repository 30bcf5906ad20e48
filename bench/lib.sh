# shellcheck shell=bash
# bench/lib.sh - helpers the benchmark scripts share; sourced (`. bench/lib.sh`), never run on its
# own (scripts/bench skips it). Needs node for bench_free_port and hyperfine_means.

# bench_need NAME HINT TOOL...: exit 1, saying which is missing, unless every TOOL is on PATH.
bench_need() {
  local name=$1 hint=$2 tool
  shift 2
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$name: $tool is missing ($hint)" >&2; exit 1; }
  done
}

# bench_need_emulator: the emulator's npm packages, so a benchmark run alone from a fresh clone
# (bash bench/NAME.sh, not make bench) starts it too; npm ci runs only when the lock file changed.
bench_need_emulator() {
  scripts/install-deps --emulator-only >&2 || { echo "bench: cannot install the emulator's packages" >&2; exit 1; }
}

# bench_fenced LINE...: the lines as a fenced Markdown block, then a blank line (for RESULTS.md).
bench_fenced() {
  echo '```'
  printf '%s\n' "$@"
  echo '```'
  echo
}

# A TCP port on 127.0.0.1 that nobody listens on (at the time of asking).
bench_free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

NGINX_ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so

# bench_need_nginx_echo NAME: exit 1 unless nginx's echo module (for the sink below) is installed.
bench_need_nginx_echo() {
  [ -f "$NGINX_ECHO_MODULE" ] ||
    { echo "$1: $NGINX_ECHO_MODULE is missing (apt-get install libnginx-mod-http-echo)" >&2; exit 1; }
}

# nginx_sink_start DIR PORT ANSWER: an nginx on 127.0.0.1:PORT, its files in DIR, that reads every
# request body (echo_read_request_body) and then answers with the directives ANSWER (e.g.
# "echo ok;"), so that the server is not what a benchmark measures. Returns once it answers.
# With NGINX_SINK_TLS="CERT KEY CA" set, it serves HTTP/2 and HTTP/1.1 over TLS instead.
nginx_sink_start() {
  local dir=$1 port=$2 answer=$3 listen="listen 127.0.0.1:$2;" probe=(curl -s -o /dev/null "http://127.0.0.1:$2/")
  if [ -n "${NGINX_SINK_TLS:-}" ]; then
    local cert key ca
    read -r cert key ca <<< "$NGINX_SINK_TLS"
    listen="listen 127.0.0.1:$port ssl http2; ssl_certificate $cert; ssl_certificate_key $key; http2_max_concurrent_streams 100;"
    probe=(curl -s -o /dev/null --cacert "$ca" "https://127.0.0.1:$port/")
  fi
  [ -f "$NGINX_ECHO_MODULE" ] || { echo "nginx_sink_start: $NGINX_ECHO_MODULE is missing (libnginx-mod-http-echo)" >&2; return 1; }
  mkdir -p "$dir/logs" "$dir/tmp"
  cat > "$dir/nginx.conf" <<CONF
load_module $NGINX_ECHO_MODULE;
worker_processes 1;
daemon on;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  client_max_body_size 0;
  client_body_buffer_size 1m;
  keepalive_requests 1000000;
  server {
    $listen
    location / { echo_read_request_body; $answer }
  }
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" || return 1
  local _
  for _ in $(seq 50); do
    [ -s "$dir/nginx.pid" ] && "${probe[@]}" && return 0
    sleep 0.1
  done
  echo "nginx_sink_start: nginx did not answer on port $port (see $dir/logs/error.log)" >&2
  return 1
}

# nginx_sink_stop DIR: stop the sink started in DIR, if it runs.
nginx_sink_stop() {
  [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2>/dev/null
  return 0
}

# hyperfine_rounds_stats JSON...: over several `hyperfine --export-json` files of the same commands
# (bench/net.sh's rounds, one run each), per command one line "NAME MEDIAN MIN MAX CPU FAILED"
# (seconds, over all their runs; CPU = mean user + system; FAILED = runs that exited non-zero).
hyperfine_rounds_stats() {
  node -e "
    const all = new Map();
    for (const f of process.argv.slice(1)) for (const x of require(f).results) {
      const a = all.get(x.command) || { times: [], cpu: [], failed: 0 };
      a.times.push(...x.times); a.cpu.push(x.user + x.system);
      a.failed += (x.exit_codes || []).filter((c) => c !== 0).length;
      all.set(x.command, a);
    }
    const median = (v) => { const s = [...v].sort((p, q) => p - q), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
    for (const [name, a] of all) console.log(name, median(a.times), Math.min(...a.times), Math.max(...a.times), a.cpu.reduce((p, q) => p + q, 0) / a.cpu.length, a.failed);
  " "$@"
}

# hyperfine_means JSON: the mean time (s) of each command of a `hyperfine --export-json` file, one a line.
hyperfine_means() {
  node -e "for (const x of require(process.argv[1]).results) console.log(x.mean)" "$1"
}

# peak_rss_kib FILE / wall_clock FILE: from the report of `/usr/bin/time -v -o FILE CMD`, the
# peak resident set size (KiB) and the elapsed wall-clock time.
peak_rss_kib() { awk -F': ' '/Maximum resident set size/{print $2}' "$1"; }
wall_clock() { awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$1"; }

# bench_figures LINE...: the figure lines as a fenced block closing a RESULTS.md section.
bench_figures() { echo '```'; printf '%s\n' "$@"; echo '```'; echo; }

# bench_setup NAME: build the core, point LUA_PATH_5_4/LUA_CPATH_5_4 at the tree (the current
# folder), make WORK a fresh temporary folder, and on exit stop the emulator started with
# `--data "$WORK/emu"` (if any) and remove WORK.
bench_setup() {
  make -s build >/dev/null
  bench_need_emulator
  export LUA_PATH_5_4="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH_5_4="$PWD/build/?.so;;"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/dicomgcs-bench-$1.XXXXXX")
  trap 'emulator/stop --data "$WORK/emu" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
}
