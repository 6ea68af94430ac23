#!/bin/sh
# bench/compare_nginx.sh - GET /v1/marks/{symbol} from markd against nginx
# serving the same bytes as a static file, side by side in one run.
#
# Both servers stay up on loopback at once; short wrk slices alternate
# between them (markd, nginx, markd, nginx, ...) so each markd/nginx ratio
# is taken within seconds, which cancels most of the drift a shared 2-core
# VM shows. Reports, per connection count, the median req/s and latency
# of each server and the median of the per-cycle ratios.
#
# Usage: bench/compare_nginx.sh [BUILD_DIR] [CYCLES] [SLICE_S]
#   BUILD_DIR  a build without sanitizers (default: build-bench, configured
#              and built here if absent)
#   env CONNS  connection counts (default "8 64 256")
#   env OUT    also write the table (with the machine described) into this
#              file, between its compare_nginx:begin/end markers (the rest
#              of the file is kept; appended when it has none)
# Talks only to 127.0.0.1. Installs wrk and nginx-light through
# `scripts/setup-deps --bench`.
set -eu

BENCH=compare_nginx.sh
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
cycles=${2:-6}
slice=${3:-2}
conns=${CONNS:-"8 64 256"}

bench_prepare "${1:-$top/build-bench}"
bench_workdir
bench_fakex
bench_markd markd '{"max_connections": 4096, "max_connections_per_ip": 2048}'
bench_nginx

csv="$work/slices.csv"
: >"$csv"
for c in $conns; do
	bench_pairs "$c" "$c"
done

bench_pair_table "$csv" markd nginx connections markd nginx >"$work/table.md"
cat "$work/table.md"
if [ -n "${OUT:-}" ]; then
	{
		bench_machine
		echo "$cycles alternating ${slice}s slices per server and connection count; errors: socket errors and non-2xx answers, markd / nginx."
		echo
		cat "$work/table.md"
	} >"$work/body.md"
	bench_write_block "$OUT" compare_nginx "$work/body.md"
fi
