#!/bin/sh
# bench/load_writes.sh - GET /v1/marks/{symbol} against nginx (the method
# of bench/compare_nginx.sh: alternating wrk slices, ratios pair by pair)
# while positions are being written and the venues fault.
#
# For each write load, a second wrk (bench/writes.lua) runs for the whole
# phase against markd's write endpoints with a bearer token (PUT a
# position, POST collateral to an older one, DELETE an older one still;
# every write is committed to SQLite before it is answered), and a loop
# sets a fault on one venue of markd-fakex every second through its admin
# endpoint (POST /admin/fault, 3 s each, venues and kinds in rotation:
# stale, wick, drift, garbage, ratelimit, error, slow, down, truncated),
# sampling BTC-USD's mark after each. nginx serves the bytes markd served
# at the start; its slices run under the same background load.
#
# Usage: bench/load_writes.sh [BUILD_DIR] [CYCLES] [SLICE_S]
#   env CONNS   marks connection counts (default "64")
#   env WRITES  phases, each "none" (no writes and no faults: the
#               reference), "faults" (faults only) or a write load with the
#               faults, "CONNECTIONS:DELAY_MS" (a pause before each request
#               on each connection; 0: as fast as markd answers); default
#               "none faults 4:20 2:0"
#   env OUT     also write the tables into this file, between its
#               load_writes:begin/end markers
# Talks only to 127.0.0.1.
set -eu

BENCH=load_writes.sh
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
cycles=${2:-6}
slice=${3:-2}
conns=${CONNS:-"64"}
writes=${WRITES:-"none faults 4:20 2:0"}

bench_prepare "${1:-$top/build-bench}"
bench_workdir
bench_fakex
bench_markd markd '{"max_connections": 4096, "max_connections_per_ip": 2048}'
bench_nginx

# Sets a fault every second, in rotation, until killed; one line per
# fault set in $work/faults.log, one mark sample per second in
# $work/marks.log ("STATUS VALID").
fault_loop() {
	_venues="binance coinbase kraken bitstamp okx bybit gemini kucoin bitfinex pyth"
	_kinds="stale wick drift garbage ratelimit error slow down truncated"
	_i=0
	while :; do
		_v=$(echo $_venues | awk -v i="$_i" '{ print $(i % NF + 1) }')
		_k=$(echo $_kinds | awk -v i="$_i" '{ print $(i % NF + 1) }')
		curl -sf -m 2 -XPOST "$fakex_url/admin/fault" \
			-d "{\"venue\":\"$_v\",\"kind\":\"$_k\",\"for_s\":3}" >/dev/null &&
			echo "$_v $_k" >>"$work/faults.log"
		curl -sf -m 2 "$url_m" |
			awk 'match($0, /"status":"[a-z_]*","valid_for_liquidation":[a-z]*/) {
				s = substr($0, RSTART, RLENGTH)
				split(s, part, "\"")
				print part[4], (s ~ /:true$/ ? "true" : "false")
			}' >>"$work/marks.log" || true
		_i=$((_i + 1))
		sleep 1
	done
}

# write_time: "SECONDS COUNT" summed over markd's request-duration
# histogram of the write routes (/v1/positions/...), from /metrics.
write_time() {
	curl -sf -m 5 "http://127.0.0.1:$mport/metrics" | awk '
		/^markd_http_request_duration_seconds_sum\{route="\/v1\/positions\// { s += $2 }
		/^markd_http_request_duration_seconds_count\{route="\/v1\/positions\// { n += $2 }
		END { print s + 0, n + 0 }'
}

csv="$work/slices.csv"
: >"$csv"
echo "| phase | writes | writes/s | p50 / p99 (ms) | markd's time per write (mean), × rate: share of its HTTP thread (at most) | answers 2xx / 404 / 409 / other | faults set | BTC-USD mark valid (samples) | mark statuses seen |" >"$work/writes.md"
echo "|---|---|---|---|---|---|---|---|---|" >>"$work/writes.md"
# marks_slices KEY: the alternating slices of one phase.
marks_slices() {
	for c in $conns; do
		bench_pairs "$c; $1" "$c"
	done
}

for w in $writes; do
	# (no commas in a label: it is a key of the slices' CSV)
	case $w in
	none)
		marks_slices "no writes and no faults"
		continue
		;;
	faults) label="faults only" ;;
	[0-9]*:[0-9]*)
		wconns=${w%%:*}
		wpause=${w#*:}
		if [ "$wpause" = 0 ]; then
			label="writes $wconns conns unpaced + faults"
		else
			label="writes $wconns conns ${wpause} ms apart + faults"
		fi
		;;
	*) bench_die "WRITES: \"$w\" is not none, faults or CONNECTIONS:PAUSE_MS" ;;
	esac
	: >"$work/faults.log"
	: >"$work/marks.log"
	writer=""
	wt0=$(write_time)
	if [ "$w" != faults ]; then
		(cd "$top/bench" && MARKD_TOKEN=$token WRITE_DELAY_MS=$wpause \
			WRITE_PREFIX="w$wconns-$wpause-" exec wrk -t1 -c"$wconns" \
			-d3600s --latency -s writes.lua "http://127.0.0.1:$mport") \
			>"$work/writer.out" 2>&1 &
		writer=$!
		bench_pids="$bench_pids $writer"
	fi
	fault_loop &
	faulter=$!
	bench_pids="$bench_pids $faulter"
	marks_slices "$label"
	bench_stop "$faulter"
	curl -sf -m 2 -XDELETE "$fakex_url/admin/fault?venue=all" >/dev/null || true
	if [ -n "$writer" ]; then
		bench_stop "$writer" INT
		grep -q '^writes=' "$work/writer.out" ||
			bench_die "the writer gave no summary: $(cat "$work/writer.out")"
		set -- $(wrk_summary "$work/writer.out")
		dur=$(awk '/ requests in / { sub(/s,$/, "", $4); print $4 }' "$work/writer.out")
		awk -v label="$label" -v p50="$2" -v p99="$3" -v dur="$dur" \
		    -v t0="$wt0" -v t1="$(write_time)" '
			/^writes=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
			END {
				rate = dur > 0 ? v["writes"] / dur : 0
				split(t0, a, " "); split(t1, b, " ")
				n = b[2] - a[2]; per = n > 0 ? (b[1] - a[1]) / n : 0
				printf "| %s | %d in %.1f s | %.0f | %.2f / %.2f | %.2f ms, %.0f%% | %d / %d / %d / %d |",
				    label, v["writes"], dur, rate, p50 / 1000, p99 / 1000,
				    per * 1000, rate * per * 100,
				    v["2xx"], v["404"], v["409"], v["other"]
			}' "$work/writer.out" >>"$work/writes.md"
	else
		printf '| %s | – | – | – | – | – |' "$label" >>"$work/writes.md"
	fi
	awk -v faults="$(wc -l <"$work/faults.log")" '
		{ n++; if ($2 == "true") ok++; st[$1]++ }
		END {
			printf " %d | %d of %d |", faults, ok, n; sep = " "
			for (s in st) { printf "%s%s %d", sep, s, st[s]; sep = ", " }
			print " |"
		}' "$work/marks.log" >>"$work/writes.md"
done

bench_pair_table "$csv" markd nginx "marks connections; phase" markd nginx >"$work/table.md"
cat "$work/table.md"
echo
cat "$work/writes.md"
if [ -n "${OUT:-}" ]; then
	{
		bench_machine
		echo "$cycles alternating ${slice}s slices per server and load, while the writes and the faults run (both servers' slices share the CPUs with them); errors: socket errors and non-2xx answers, markd / nginx."
		echo
		cat "$work/table.md"
		echo
		echo "The writes and faults of each phase (writes: one wrk, bench/writes.lua, latency from request to committed answer; markd's time per write: the mean of its markd_http_request_duration_seconds on the write routes over the phase, times the write rate for the share of the one thread that serves HTTP and commits the writes (an upper bound: a request's duration also covers what the thread did for other connections meanwhile); the mark sampled once a second):"
		echo
		cat "$work/writes.md"
	} >"$work/body.md"
	bench_write_block "$OUT" load_writes "$work/body.md"
fi
