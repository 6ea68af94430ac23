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
#              of the file is kept), or as the whole file when it has none
# Talks only to 127.0.0.1. Installs wrk and nginx-light through
# `scripts/setup-deps --bench`.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build-bench}
cycles=${2:-6}
slice=${3:-2}
conns=${CONNS:-"8 64 256"}
symbol=BTC-USD

"$top/scripts/setup-deps" --bench >/dev/null
command -v wrk >/dev/null || { echo "compare_nginx: wrk is not installed (scripts/setup-deps)" >&2; exit 2; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "compare_nginx: nginx is not installed (scripts/setup-deps)" >&2; exit 2; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ ! -x "$build/markd" ]; then
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
	mkdir -p "$build"
	(cd "$build" && "$top/configure" CFLAGS="-O2 -g" >configure.out &&
	 make -j2 >make.out 2>&1) || { echo "compare_nginx: build failed in $build" >&2; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/markd-bench.XXXXXX")
chmod 755 "$work" # nginx workers may run as another user
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	[ -f "$work/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Waits (bounded) until a line matching $2 appears in file $1; prints it.
wait_line() {
	i=0
	while [ $i -lt 200 ]; do
		l=$(grep -m1 "$2" "$1" 2>/dev/null || true)
		[ -n "$l" ] && { echo "$l"; return 0; }
		i=$((i + 1)); sleep 0.05
	done
	echo "compare_nginx: timed out waiting for '$2' in $1" >&2
	return 1
}

# 1. the fake venues, and markd polling them
"$build/tools/markd-fakex" -s "$top/conf/fakex-demo.json" -p 0 >"$work/fakex.out" 2>"$work/fakex.err" &
pids="$pids $!"
fport=$(wait_line "$work/fakex.out" '^listening' | sed 's/.*://')
sed -e "s#127.0.0.1:8701#127.0.0.1:$fport#g" \
    -e 's#"listen": *"[^"]*",#"listen": "127.0.0.1:0", "http": {"max_connections": 4096, "max_connections_per_ip": 2048},#' \
    -e "s#\"database\": *\"[^\"]*\"#\"database\": \"$work/markd.db\"#" \
    "$top/conf/demo.json" >"$work/markd.json"
"$build/markd" -c "$work/markd.json" >"$work/markd.out" 2>"$work/markd.err" &
pids="$pids $!"
mport=$(wait_line "$work/markd.out" '^listening' | sed 's/.*://')
url_m="http://127.0.0.1:$mport/v1/marks/$symbol"
i=0
until curl -sf "$url_m" | grep -q '"valid_for_liquidation":true'; do
	i=$((i + 1)); [ $i -lt 300 ] || { echo "compare_nginx: no valid mark" >&2; exit 1; }
	sleep 0.1
done

# 2. nginx, one worker, serving markd's current bytes as a static file
mkdir -p "$work/www/v1/marks" "$work/ngx"
curl -sf "$url_m" >"$work/www/v1/marks/$symbol"
nport=$((mport + 1))
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off; server_tokens off; default_type application/json;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65s; keepalive_requests 1000000;
  open_file_cache max=64 inactive=60s;
  client_body_temp_path $work/ngx/body; proxy_temp_path $work/ngx/proxy;
  fastcgi_temp_path $work/ngx/fcgi; uwsgi_temp_path $work/ngx/uwsgi;
  scgi_temp_path $work/ngx/scgi;
  server { listen 127.0.0.1:$nport backlog=1024; root $work/www; location / { } }
}
EOF
"$NGINX" -c "$work/nginx.conf" -e "$work/nginx-error.log"
url_n="http://127.0.0.1:$nport/v1/marks/$symbol"
i=0
until curl -sf "$url_n" >/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "compare_nginx: nginx does not serve $url_n" >&2; cat "$work/nginx-error.log" >&2; exit 1; }
	sleep 0.05
done

# 3. interleaved wrk slices; one CSV row per slice
csv="$work/slices.csv"
to_us() { # wrk latency "123.45us" / "1.23ms" / "1.00s" -> microseconds
	echo "$1" | awk '/us$/{sub(/us/,"");print $1+0;next} /ms$/{sub(/ms/,"");print $1*1000;next} /s$/{sub(/s/,"");print $1*1000000}'
}
run_slice() { # server url conns cycle
	out=$(wrk -t1 -c"$3" -d"${slice}s" --latency "$2")
	rps=$(echo "$out" | awk '/^Requests\/sec:/{print $2}')
	p50=$(to_us "$(echo "$out" | awk '$1=="50%"{print $2}')")
	p99=$(to_us "$(echo "$out" | awk '$1=="99%"{print $2}')")
	echo "$1,$3,$4,$rps,$p50,$p99" >>"$csv"
}
for c in $conns; do
	wrk -t1 -c"$c" -d1s "$url_m" >/dev/null
	wrk -t1 -c"$c" -d1s "$url_n" >/dev/null
	cyc=1
	while [ $cyc -le "$cycles" ]; do
		run_slice markd "$url_m" "$c" $cyc
		run_slice nginx "$url_n" "$c" $cyc
		cyc=$((cyc + 1))
	done
done

# 4. the table
table=$(awk -F, '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{ key = $2; if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
  n = ++cnt[$1, key]; rps[$1, key, n] = $4; p50[$1, key, n] = $5; p99[$1, key, n] = $6
  if ($1 == "nginx") { r = ++nr[key]; ratio[key, r] = rps["markd", key, n] / $4 } }
END {
	print "| connections | markd req/s | nginx req/s | ratio (median of pairs) | markd p50 / p99 (ms) | nginx p50 / p99 (ms) |"
	print "|---|---|---|---|---|---|"
	for (k = 1; k <= nk; k++) {
		c = order[k]
		for (s = 0; s < 2; s++) { sv = s ? "nginx" : "markd"; m = cnt[sv, c]
			for (i = 1; i <= m; i++) { x[i] = rps[sv, c, i]; y[i] = p50[sv, c, i]; z[i] = p99[sv, c, i] }
			R[sv] = median(x, m); P5[sv] = median(y, m) / 1000; P9[sv] = median(z, m) / 1000 }
		for (i = 1; i <= nr[c]; i++) w[i] = ratio[c, i]
		printf "| %s | %.0f | %.0f | %.2f | %.3f / %.3f | %.3f / %.3f |\n", c, R["markd"], R["nginx"], median(w, nr[c]), P5["markd"], P9["markd"], P5["nginx"], P9["nginx"]
	}
}' "$csv")
echo "$table"
if [ -n "${OUT:-}" ]; then
	{
		echo "<!-- compare_nginx:begin (written by bench/compare_nginx.sh on $(date -u +%Y-%m-%dT%H:%MZ)) -->"
		echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)."
		echo "wrk $(wrk -v 2>&1 | awk 'NR==1{print $2}') (1 thread, keep-alive), nginx $("$NGINX" -v 2>&1 | sed 's#.*/##') (1 worker, static file), $cycles alternating ${slice}s slices per server and connection count."
		echo
		echo "$table"
		echo "<!-- compare_nginx:end -->"
	} >"$work/block.md"
	# Replace the block between the markers, keeping the rest of OUT.
	if [ -f "$OUT" ] && grep -q '^<!-- compare_nginx:begin' "$OUT"; then
		awk -v block="$work/block.md" '
			/^<!-- compare_nginx:begin/ { while ((getline l < block) > 0) print l; skip = 1; next }
			/^<!-- compare_nginx:end/ { skip = 0; next }
			!skip { print }' "$OUT" >"$work/out.md"
		cat "$work/out.md" >"$OUT"
	else
		cat "$work/block.md" >"$OUT"
	fi
fi
