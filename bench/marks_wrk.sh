#!/bin/sh
# bench/marks_wrk.sh - throughput and latency of GET /v1/marks/{symbol}
# on loopback, measured with wrk the way reference/perf-baseline.md did:
# markd (built without sanitizers, -O2) polls markd-fakex, then for 8, 64
# and 256 keep-alive connections: 2 s of warm-up, then DURATION seconds
# measured with `wrk -t1 --latency`. With two or more CPUs (and taskset),
# markd runs on CPU 0 and wrk on CPU 1 ("split" pinning).
#
#   bench/marks_wrk.sh                  # builds into build-bench/
#   BUILD_DIR=/tmp/b DURATION=5 bench/marks_wrk.sh
#   ANCHOR_URL=http://127.0.0.1:18080/v1/prices/BTC-USD bench/marks_wrk.sh
#
# Absolute figures swing with the host (reference/perf-baseline.md, s. 3):
# with ANCHOR_URL (a server started by you, e.g. nginx serving a static
# file, pinned to CPU 0 too), every markd run is followed by a run of the
# anchor and the ratio of the two is printed.
#
# Not part of `make check`. Needs wrk (scripts/setup-deps installs it).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build-bench}
duration=${DURATION:-10}
conns=${CONNS:-"8 64 256"}
symbol=BTC-USD

command -v wrk >/dev/null || { echo "marks_wrk: wrk not found (scripts/setup-deps)" >&2; exit 1; }

if [ ! -x "$build/markd" ] || [ ! -x "$build/tools/markd-fakex" ]; then
	if [ ! -x "$top/configure" ]; then
		(cd "$top" && autoreconf -fi)
	fi
	mkdir -p "$build"
	(cd "$build" && { [ -f Makefile ] || "$top/configure" CFLAGS="-O2 -g" >configure.out; } &&
		make -j2 markd tools/markd-fakex >make.out 2>&1) ||
		{ tail -30 "$build/make.out"; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/markd-bench-XXXXXX")
fakex_pid=""
markd_pid=""
cleanup() {
	for pid in $markd_pid $fakex_pid; do kill "$pid" 2>/dev/null || true; done
	for pid in $markd_pid $fakex_pid; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Reads "listening 127.0.0.1:PORT" from a program's stdout file (10 s).
port_of() {
	i=0
	while [ $i -lt 100 ]; do
		p=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$1" | head -1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.1
		i=$((i + 1))
	done
	echo "marks_wrk: no listening line in $1" >&2
	return 1
}

pin_server=""
pin_client=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	pin_server="taskset -c 0"
	pin_client="taskset -c 1"
fi

cat >"$work/fakex.json" <<EOF
{"listen": "127.0.0.1:0", "speed": 1, "venues": {
  "coinbase": {"markets": {"BTC-USD": {"walk": {"seed": 1, "start": "67000", "sigma_bps": 2}}}},
  "kraken": {"markets": {"XBTUSD": {"walk": {"seed": 1, "start": "67000", "sigma_bps": 2}}}},
  "bitstamp": {"markets": {"btcusd": {"walk": {"seed": 1, "start": "67000", "sigma_bps": 2}}}},
  "gemini": {"markets": {"btcusd": {"walk": {"seed": 1, "start": "67000", "sigma_bps": 2}}}},
  "okx": {"markets": {"BTC-USDT": {"walk": {"seed": 1, "start": "67000", "sigma_bps": 2}}}}
}}
EOF
"$build/tools/markd-fakex" -s "$work/fakex.json" -p 0 >"$work/fakex.out" 2>"$work/fakex.err" &
fakex_pid=$!
fport=$(port_of "$work/fakex.out")

src() { printf '{"name": "%s", "adapter": "%s", "base_url": "http://127.0.0.1:%s/%s", "interval_ms": 500}' "$1" "$1" "$fport" "$1"; }
cat >"$work/markd.json" <<EOF
{"listen": "127.0.0.1:0", "database": "$work/markd.db",
 "log": {"level": "warn"},
 "http": {"max_connections": 2048, "max_connections_per_ip": 1024},
 "sources": [$(src coinbase), $(src kraken), $(src bitstamp), $(src gemini), $(src okx)],
 "instruments": [{"symbol": "$symbol", "legs": [
   {"source": "coinbase", "market": "BTC-USD"}, {"source": "kraken", "market": "XBTUSD"},
   {"source": "bitstamp", "market": "btcusd"}, {"source": "gemini", "market": "btcusd"},
   {"source": "okx", "market": "BTC-USDT"}]}]}
EOF
$pin_server "$build/markd" -c "$work/markd.json" >"$work/markd.out" 2>"$work/markd.err" &
markd_pid=$!
mport=$(port_of "$work/markd.out")
url="http://127.0.0.1:$mport/v1/marks/$symbol"

i=0
until curl -sf "http://127.0.0.1:$mport/readyz" >/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "marks_wrk: markd not ready" >&2; exit 1; }
	sleep 0.1
done
bytes=$(curl -s "$url" | wc -c)
version=$("$build/markd" --version)
echo "$version on $url ($bytes-byte document)"
echo "pinning: ${pin_server:-none} / ${pin_client:-none}; wrk -t1, ${duration} s per run"
# One measured run: "req/s p50 p99 errors" of wrk against $2 with $1
# connections, after a 2 s warm-up.
measure() {
	$pin_client wrk -t1 -c"$1" -d2s --latency "$2" >/dev/null 2>&1 || true
	out=$($pin_client wrk -t1 -c"$1" -d"${duration}s" --latency "$2" 2>&1)
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
	errs=$(echo "$out" | awk '/Socket errors|Non-2xx/ {n++} END {print n + 0}')
	echo "$rps $p50 $p99 $errs"
}

printf '%6s %12s %10s %10s %7s' conns req/s p50 p99 errors
[ -n "${ANCHOR_URL:-}" ] && printf ' %12s %7s' anchor_req/s ratio
printf '\n'
for c in $conns; do
	# shellcheck disable=SC2046  # the fields are meant to split
	set -- $(measure "$c" "$url")
	printf '%6s %12s %10s %10s %7s' "$c" "$1" "$2" "$3" "$4"
	if [ -n "${ANCHOR_URL:-}" ]; then
		mine=$1
		# shellcheck disable=SC2046
		set -- $(measure "$c" "$ANCHOR_URL")
		printf ' %12s %7s' "$1" "$(awk -v a="$mine" -v b="$1" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')"
	fi
	printf '\n'
done
