#!/bin/sh
# bench/held_conns.sh - active clients' GET /v1/marks/{symbol} with and
# without N (default 1,000) idle or slow connections held open to markd
# (bench/hold_conns), and what markd does with the held ones.
#
# Each scenario runs a markd with its own "http" limits and alternates,
# per cycle, a wrk slice without held connections and one with them:
# hold_conns opens the N connections, the script waits until markd's
# markd_http_connections gauge settles, runs the slice, reads the gauge
# again and stops hold_conns, which reports how many connections the
# server closed. Scenarios:
#   idle, open limits        N connections sending nothing; markd allows
#                            4096 connections, 4096 per address
#   slow, open limits        N connections trickling a request header one
#                            byte every 2 s (never finished), same limits
#   slow, other address      markd's designed defense: 1024 connections,
#                            128 per client address, 10 s timeout; the
#                            held connections come from 127.0.0.2, the
#                            active clients from 127.0.0.1
#   slow, same address       the same limits, held connections from
#                            127.0.0.1 like the active clients (opened
#                            first)
# and, for reference, nginx (one worker, static file, its defaults: 60 s
# to receive a request header) with the same slow connections.
# Every scenario keeps the 10 s connection timeout; then, once, N idle
# connections are held for 13 s on the open-limits markd, to see it close
# them at the timeout. The gauge is read from 127.0.0.3, which no limit
# concerns (the probe's own connection is not counted).
#
# Usage: bench/held_conns.sh [BUILD_DIR] [CYCLES] [SLICE_S]
#   env HELD     connections to hold (default 1000)
#   env ACTIVE   wrk connections of the active clients (default 64)
#   env TIMEOUT_CHECK  0 skips the 13 s timeout check (default 1)
#   env OUT      also write the tables into this file, between its
#                held_conns:begin/end markers
# Talks only to loopback addresses (127.0.0.1-3).
set -eu

BENCH=held_conns.sh
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
cycles=${2:-4}
slice=${3:-2}
held=${HELD:-1000}
active=${ACTIVE:-64}

bench_prepare "${1:-$top/build-bench}"
[ -x "$build/bench/hold_conns" ] || bench_die "$build/bench/hold_conns is not built (make bench)"
bench_workdir
bench_fakex

open_limits='{"max_connections": 4096, "max_connections_per_ip": 4096, "connection_timeout_s": 10}'
defense='{"max_connections": 1024, "max_connections_per_ip": 128, "connection_timeout_s": 10}'

# The connections markd holds now, read from 127.0.0.3, less the
# probe's own; "?" when it does not answer.
markd_conns() {
	curl -sf -m 5 --interface 127.0.0.3 "http://127.0.0.1:$mport/metrics" |
		awk '$1 == "markd_http_connections" { print $2 - 1; f = 1 } END { if (!f) print "?" }'
}

# Waits (bounded, 5 s) until the gauge reads the same twice 200 ms apart,
# or (with an argument) until it is at most that; prints the last value.
settle() {
	_prev=x
	_i=0
	while [ "$_i" -lt 25 ]; do
		_now=$(markd_conns)
		if [ $# -gt 0 ]; then
			[ "$_now" != "?" ] && [ "$_now" -le "$1" ] && break
		elif [ "$_now" = "$_prev" ]; then
			break
		fi
		_prev=$_now
		_i=$((_i + 1))
		sleep 0.2
	done
	echo "$_now"
}

nofile=""
started=""
# start_markd NAME HTTP_JSON: a markd for the next scenarios (stops the
# previous one).
start_markd() {
	[ -n "$started" ] && bench_stop "$mpid"
	bench_markd "$1" "$2"
	started=1
	[ -n "$nofile" ] ||
		nofile=" $(grep -m1 'event=nofile_limit' "$work/$1.err" | sed 's/.*event=nofile_limit //')"
	bench_url_ok "$url_m"
}

bench_url_ok() {
	curl -sf -m 5 "$1" >/dev/null || bench_die "markd does not answer $1"
}

csv="$work/slices.csv"
hcsv="$work/held.csv"
: >"$csv"
: >"$hcsv"

# scenario KEY MODE SRC [nginx]: CYCLES pairs of slices without and with
# HELD connections of MODE (idle, slow) bound to source address SRC, to
# markd, or to nginx (which has no gauge to read).
scenario() {
	if [ "${4:-}" = nginx ]; then
		_url=$url_n _port=$nport
	else
		_url=$url_m _port=$mport
	fi
	wrk -t1 -c"$active" -d1s "$_url" >/dev/null 2>&1 || true
	_hcy=1
	while [ "$_hcy" -le "$cycles" ]; do
		bench_slice "$1" without "$_hcy" "$active" "$_url"
		bench_bg hold "$build/bench/hold_conns" -p "$_port" -n "$held" \
			-m "$2" -b "$3" -w 5000
		_hp=$bench_last_pid
		wait_line "$work/hold.out" '^connected=' 150 >/dev/null ||
			bench_die "hold_conns did not report: $(cat "$work/hold.err")"
		_before=- _after=-
		[ "${4:-}" = nginx ] || _before=$(settle)
		bench_slice "$1" with "$_hcy" "$active" "$_url"
		[ "${4:-}" = nginx ] || _after=$(settle)
		bench_stop "$_hp"
		wait_line "$work/hold.out" '^asked=' 50 >/dev/null ||
			bench_die "hold_conns gave no summary: $(cat "$work/hold.err")"
		# key,cycle,connected,failed,closed_by_peer,before,after
		awk -F'[ =]' -v k="$1" -v c="$_hcy" -v b="$_before" -v a="$_after" '
			/^asked=/ { for (i = 1; i < NF; i += 2) v[$i] = $(i + 1)
				print k "," c "," v["connected"] "," v["failed"] "," v["closed_by_peer"] "," b "," a }' \
			"$work/hold.out" >>"$hcsv"
		[ "${4:-}" = nginx ] || settle 0 >/dev/null
		_hcy=$((_hcy + 1))
	done
}

start_markd markd-open "$open_limits"
scenario "$held idle; open limits" idle 127.0.0.1
scenario "$held slow; open limits" slow 127.0.0.1
bench_nginx
scenario "$held slow; nginx (reference)" slow 127.0.0.1 nginx

timeout_line=""
if [ "${TIMEOUT_CHECK:-1}" = 1 ]; then
	"$build/bench/hold_conns" -p "$mport" -n "$held" -m idle -t 13 >"$work/timeout.out" 2>&1 ||
		bench_die "hold_conns failed: $(cat "$work/timeout.out")"
	timeout_line=$(awk -F'[ =]' '/^asked=/ {
		for (i = 1; i < NF; i += 2) v[$i] = $(i + 1)
		printf "%d idle connections held for 13 s against connection_timeout_s 10: %d connected, markd closed %d of them", v["asked"], v["connected"], v["closed_by_peer"]
		if (v["closed_by_peer"] > 0) printf ", the first after %.1f s and the last after %.1f s", v["first_close_ms"] / 1000, v["last_close_ms"] / 1000
		printf "; %d still open at the end.\n", v["open"] }' "$work/timeout.out")
	settle 0 >/dev/null
fi

start_markd markd-defense "$defense"
scenario "$held slow; other address" slow 127.0.0.2
scenario "$held slow; same address" slow 127.0.0.1

# Per scenario, the medians over the cycles of the held connections'
# counts.
awk -F, '
function median(a, n,   i, j, t) {
	if (n == 0 || a[1] == "-" || a[1] == "?") return "–"
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{ if (!($1 in seen)) { seen[$1] = 1; order[++nk] = $1 }
  n = ++cnt[$1]
  for (f = 3; f <= 7; f++) val[$1, f, n] = $f }
END {
	print "held: connected / connect failed | markd holds before / after the slice | closed by markd while held"
	for (k = 1; k <= nk; k++) {
		key = order[k]
		printf "%s|", key
		for (f = 3; f <= 7; f++) {
			for (i = 1; i <= cnt[key]; i++) x[i] = val[key, f, i]
			m[f] = median(x, cnt[key])
		}
		printf "%s / %s | %s / %s | %s\n", m[3], m[4], m[6], m[7], m[5]
	}
}' "$hcsv" >"$work/extra"

bench_pair_table "$csv" with without "held connections" "with held" "without held" "$work/extra" >"$work/table.md"
cat "$work/table.md"
[ -n "$timeout_line" ] && { echo; echo "$timeout_line"; }
echo
echo "markd's open-files limit at start:$nofile"
if [ -n "${OUT:-}" ]; then
	{
		bench_machine
		echo "$active active wrk connections from 127.0.0.1; $cycles cycles per scenario of a ${slice}s slice without held connections and one with them (ratio: with / without, pair by pair); errors: socket errors and non-2xx answers, with / without. Open limits: \`$open_limits\`; defense: \`$defense\`. The held connections' counts are medians over the cycles; \"markd holds\" is its markd_http_connections gauge (without the probe) just before and just after the slice with them."
		echo
		cat "$work/table.md"
		echo
		[ -n "$timeout_line" ] && { echo "$timeout_line"; echo; }
		echo "markd started with a soft open-files limit of 1024 and raised it itself (its log:$nofile)."
	} >"$work/body.md"
	bench_write_block "$OUT" held_conns "$work/body.md"
fi
