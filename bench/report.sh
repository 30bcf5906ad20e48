#!/usr/bin/env bash
# HTML run report benchmark (issue 18), run by scripts/bench (or alone: bench/report.sh).
#
# Writes the report of a made-up 100,000-file import (bench/report_100k.lua: 10% failed, 2%
# skipped, 1,440 polls, 30 events) and opens it in headless Chromium REPORT_RUNS times. The page
# records, once its script has filled the table and the layout is done, the milliseconds since
# navigation began (performance.now(), attribute data-ready-ms): that is the open time.
# Goals: under 5 MB, under 2 s.
#
# Prints `bench: NAME VALUE UNIT` lines on stdout (progress on stderr) and appends them, with the
# command, to $BENCH_RESULTS (scripts/bench), else bench/RESULTS.md. Knobs: REPORT_FILES
# (default 100000), REPORT_RUNS (default 5). Needs chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
FILES=${REPORT_FILES:-100000}
RUNS=${REPORT_RUNS:-5}
bench_need bench/report.sh "apt-get install chromium" chromium

make -s build >/dev/null
export LUA_PATH_5_4="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH_5_4="$ROOT/build/?.so;;"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dicomgcs-bench-report.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
HTML=$WORK/report-100k.html

echo "writing the report of $FILES files" >&2
t0=$(date +%s.%N)
lua5.4 bench/report_100k.lua "$HTML" "$FILES"
t1=$(date +%s.%N)
SIZE=$(stat -c %s "$HTML")

opens=()
for i in $(seq "$RUNS"); do
  ms=$(chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$WORK/profile-$i" \
         --dump-dom "file://$HTML" 2>/dev/null | grep -o 'data-ready-ms="[0-9]*"' | grep -o '[0-9]\+' || true)
  [ -n "$ms" ] || { echo "bench/report.sh: the page did not finish its script in run $i" >&2; exit 1; }
  echo "  open $i: $ms ms" >&2
  opens+=("$ms")
done

LINES=()
emit() { LINES+=("$1"); echo "$1"; }
emit "bench: report_100k_write $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
emit "bench: report_100k_size $(awk -v s="$SIZE" 'BEGIN { printf "%.2f", s / 1048576 }') MiB"
emit "bench: report_100k_open $(printf '%s\n' "${opens[@]}" | sort -n | awk '{a[NR]=$1} END { printf "%.2f", a[int((NR+1)/2)] / 1000 }') s"

{
  echo
  echo "## bench/report.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs"
  echo
  echo "Command: \`bench/report.sh\` (REPORT_FILES=$FILES REPORT_RUNS=$RUNS; open time = median of the runs," \
       "navigation start to table filled and laid out, in headless $(chromium --version 2>/dev/null | grep -o 'Chromium [0-9.]*'); goals < 5 MB, < 2 s)"
  echo
  echo '```'
  printf '%s\n' "${LINES[@]}"
  echo '```'
} >> "${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
