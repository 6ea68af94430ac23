# bench/lib.sh - what the load benchmarks share: building, starting the
# fake venues, markd and nginx on loopback, wrk slices, the paired tables
# and writing them into a Markdown file. Sourced (not run) by
# bench/compare_nginx.sh, bench/load_writes.sh, bench/held_conns.sh and
# bench/run-all, after they set BENCH (their name, for messages) and top
# (the source tree). Talks only to 127.0.0.1.
#
# Every process started here is recorded and stopped by its pid on exit;
# the scratch folder ($work) is removed unless KEEP_WORK=1.

bench_die() {
	echo "$BENCH: $*" >&2
	exit 1
}

# bench_prepare BUILD_DIR: installs wrk and nginx (scripts/setup-deps
# --bench), configures BUILD_DIR without sanitizers when it has no
# Makefile, and brings markd, markd-fakex and `make bench` up to date.
# Sets build and NGINX.
bench_prepare() {
	build=$1
	"$top/scripts/setup-deps" --bench >/dev/null ||
		bench_die "missing packages (run scripts/setup-deps --bench as root)"
	command -v wrk >/dev/null || bench_die "wrk is not installed (scripts/setup-deps --bench)"
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$NGINX" ] || bench_die "nginx is not installed (scripts/setup-deps --bench)"
	if [ ! -f "$build/Makefile" ]; then
		[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi) ||
			bench_die "autoreconf failed"
		mkdir -p "$build"
		(cd "$build" && "$top/configure" CFLAGS="-O2 -g" >configure.out 2>&1) ||
			bench_die "configure failed (see $build/configure.out)"
	fi
	if grep -q -- '--enable-sanitizers' "$build/config.status" 2>/dev/null; then
		bench_die "$build is a sanitizer build; give a build configured without --enable-sanitizers"
	fi
	(cd "$build" && make -j2 all bench >make.out 2>&1) ||
		bench_die "build failed (see $build/make.out)"
	build=$(cd "$build" && pwd)
}

# bench_workdir: the scratch folder, and the exit trap that stops
# everything started here.
bench_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/markd-bench.XXXXXX")
	chmod 755 "$work" # nginx workers may run as another user
	bench_pids=""
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

bench_cleanup() {
	for p in $bench_pids; do kill "$p" 2>/dev/null || true; done
	[ -f "$work/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null
	for p in $bench_pids; do wait "$p" 2>/dev/null || true; done
	if [ "${KEEP_WORK:-0}" = 1 ]; then
		echo "$BENCH: scratch files kept in $work" >&2
	else
		rm -rf "$work"
	fi
}

# bench_bg NAME CMD...: runs CMD in the background, stdout and stderr in
# $work/NAME.out and NAME.err; its pid in bench_last_pid.
bench_bg() {
	_name=$1
	shift
	"$@" >"$work/$_name.out" 2>"$work/$_name.err" &
	bench_last_pid=$!
	bench_pids="$bench_pids $bench_last_pid"
}

# bench_stop PID [SIGNAL]: stops one process started by bench_bg and
# waits for it.
bench_stop() {
	kill "-${2:-TERM}" "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	_left=""
	for p in $bench_pids; do [ "$p" = "$1" ] || _left="$_left $p"; done
	bench_pids=$_left
}

# wait_line FILE REGEX [TENTHS]: waits (bounded, default 10 s) until a
# line of FILE matches; prints it.
wait_line() {
	_i=0
	while [ "$_i" -lt "${3:-100}" ]; do
		_l=$(grep -m1 -- "$2" "$1" 2>/dev/null || true)
		[ -n "$_l" ] && { echo "$_l"; return 0; }
		_i=$((_i + 1))
		sleep 0.1
	done
	echo "$BENCH: timed out waiting for '$2' in $1" >&2
	return 1
}

# bench_fakex: markd-fakex on a free port, replaying the demo scenario
# without its fault schedule (the benchmarks set faults themselves) and
# with every venue on the shared port. Sets fport and fakex_url.
bench_fakex() {
	sed -e "s#\"csv\": *\"#\"csv\": \"$top/conf/#" \
	    -e 's#"port": *[0-9][0-9]*#"port": 0#' \
	    -e '/^ *{"venue": /d' \
	    "$top/conf/fakex-demo.json" >"$work/fakex.json"
	"$build/tools/markd-fakex" --check -s "$work/fakex.json" >/dev/null ||
		bench_die "the bench's copy of conf/fakex-demo.json is refused"
	bench_bg fakex "$build/tools/markd-fakex" -s "$work/fakex.json" -p 0
	fport=$(wait_line "$work/fakex.out" '^listening' | sed 's/.*://') ||
		bench_die "markd-fakex did not start: $(cat "$work/fakex.err")"
	fakex_url="http://127.0.0.1:$fport"
}

# bench_markd NAME HTTP_JSON: markd with conf/demo.json pointed at the
# fake venues, a bearer token, its database in $work and the "http"
# object HTTP_JSON. It starts with a soft open-files limit of 1024 (the
# usual default), which markd raises itself. Waits (bounded) for a mark
# valid for liquidation. Sets mport, mpid, url_m, token; markd's log is
# $work/NAME.err.
bench_markd() {
	token=bench-token-0123456789abcdef
	echo "$token" >"$work/tokens"
	sed -e "s#127.0.0.1:8701#127.0.0.1:$fport#g" \
	    -e "s#\"listen\": *\"[^\"]*\",#\"listen\": \"127.0.0.1:0\", \"token_file\": \"$work/tokens\", \"http\": $2,#" \
	    -e "s#\"database\": *\"[^\"]*\"#\"database\": \"$work/$1.db\"#" \
	    "$top/conf/demo.json" >"$work/$1.json"
	rm -f "$work/$1.db" "$work/$1.db-wal" "$work/$1.db-shm"
	bench_bg "$1" sh -c 'ulimit -S -n 1024 2>/dev/null; exec "$@"' markd \
		"$build/markd" -c "$work/$1.json"
	mpid=$bench_last_pid
	mport=$(wait_line "$work/$1.out" '^listening' | sed 's/.*://') ||
		bench_die "markd did not start: $(cat "$work/$1.err")"
	url_m="http://127.0.0.1:$mport/v1/marks/BTC-USD"
	_i=0
	until curl -sf "$url_m" | grep -q '"valid_for_liquidation":true'; do
		_i=$((_i + 1))
		[ "$_i" -lt 300 ] || bench_die "markd published no valid BTC-USD mark in 30 s"
		sleep 0.1
	done
}

# bench_markd_conns: the HTTP connections markd holds now (its
# markd_http_connections gauge), or "?" when it does not answer.
bench_markd_conns() {
	curl -sf -m 5 "http://127.0.0.1:$mport/metrics" |
		awk '$1 == "markd_http_connections" { print $2 + 0; f = 1 } END { if (!f) print "?" }'
}

# bench_nginx: nginx, one worker, serving markd's current BTC-USD bytes
# as a static file, on a free port. Sets nport and url_n.
bench_nginx() {
	mkdir -p "$work/www/v1/marks" "$work/ngx"
	curl -sf "$url_m" >"$work/www/v1/marks/BTC-USD" || bench_die "markd does not serve $url_m"
	_try=0
	while :; do
		_try=$((_try + 1))
		[ "$_try" -le 20 ] || bench_die "nginx could not start: $(cat "$work/nginx-error.log")"
		nport=$(awk -v s="$$$_try" 'BEGIN { srand(s); print 20000 + int(rand() * 12000) }')
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
		"$NGINX" -c "$work/nginx.conf" -e "$work/nginx-error.log" 2>/dev/null && break
	done
	url_n="http://127.0.0.1:$nport/v1/marks/BTC-USD"
	_i=0
	until curl -sf "$url_n" >/dev/null; do
		_i=$((_i + 1))
		[ "$_i" -lt 100 ] || bench_die "nginx does not serve $url_n"
		sleep 0.05
	done
}

# to_us: wrk's "123.45us" / "1.23ms" / "1.00s" / "2.00m" in microseconds.
to_us() {
	echo "$1" | awk '/us$/ { sub(/us/, ""); print $1 + 0; next }
		/ms$/ { sub(/ms/, ""); print $1 * 1000; next }
		/m$/ { sub(/m/, ""); print $1 * 60000000; next }
		/s$/ { sub(/s/, ""); print $1 * 1000000; next }
		{ print 0 }'
}

# wrk_summary FILE: "REQ/S P50_US P99_US ERRORS" from wrk --latency
# output (ERRORS: socket errors plus non-2xx/3xx answers).
wrk_summary() {
	_rps=$(awk '/^Requests\/sec:/ { print $2 }' "$1")
	_p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$1")")
	_p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$1")")
	_err=$(awk '/Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
		/Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }' "$1")
	echo "${_rps:-0} ${_p50:-0} ${_p99:-0} $_err"
}

# bench_slice KEY LABEL CYCLE CONNS URL [WRK ARGS...]: one wrk slice of
# $slice seconds; appends "KEY,LABEL,CYCLE,REQ/S,P50,P99,ERRORS" to $csv.
bench_slice() {
	_k=$1 _lb=$2 _cy=$3 _c=$4 _u=$5
	shift 5
	wrk -t1 -c"$_c" -d"${slice}s" --latency "$@" "$_u" >"$work/slice.out" 2>&1 || true
	set -- $(wrk_summary "$work/slice.out")
	echo "$_k,$_lb,$_cy,$1,$2,$3,$4" >>"$csv"
}

# bench_pairs KEY CONNS: a 1 s warm-up of each server, then $cycles
# pairs of slices, markd ($url_m) then nginx ($url_n), at CONNS
# connections, recorded under KEY.
bench_pairs() {
	wrk -t1 -c"$2" -d1s "$url_m" >/dev/null 2>&1 || true
	wrk -t1 -c"$2" -d1s "$url_n" >/dev/null 2>&1 || true
	_cyc=1
	while [ "$_cyc" -le "$cycles" ]; do
		bench_slice "$1" markd "$_cyc" "$2" "$url_m"
		bench_slice "$1" nginx "$_cyc" "$2" "$url_n"
		_cyc=$((_cyc + 1))
	done
}

# bench_pair_table CSV A B KEY_TITLE A_TITLE B_TITLE [EXTRA]: one
# Markdown row per key of CSV (in order): the median req/s of labels A
# and B, the median of the per-cycle ratios A/B, the medians of p50 and
# p99 and the errors summed. EXTRA, when given, is a file of lines
# "KEY|more cells" appended to the rows (its first line: their titles).
bench_pair_table() {
	awk -F, -v A="$2" -v B="$3" -v kt="$4" -v at="$5" -v bt="$6" -v extra="${7:-}" '
	function median(a, n,   i, j, t) {
		if (n == 0) return 0
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	BEGIN {
		if (extra != "") {
			getline head < extra
			while ((getline l < extra) > 0) { i = index(l, "|"); more[substr(l, 1, i - 1)] = substr(l, i + 1) }
		}
	}
	{
		if (!($1 in seen)) { seen[$1] = 1; order[++nk] = $1 }
		n = ++cnt[$1, $2]
		rps[$1, $2, n] = $4; p50[$1, $2, n] = $5; p99[$1, $2, n] = $6; err[$1, $2] += $7
		cyc[$1, $2, $3] = $4
	}
	END {
		printf "| %s | %s req/s | %s req/s | ratio (median of pairs) | %s p50 / p99 (ms) | %s p50 / p99 (ms) | errors |", kt, at, bt, at, bt
		if (head != "") printf " %s |", head
		printf "\n|---|---|---|---|---|---|---|"
		if (head != "") { m = split(head, h, "|"); for (i = 1; i <= m; i++) printf "---|" }
		printf "\n"
		for (k = 1; k <= nk; k++) {
			key = order[k]
			for (s = 0; s < 2; s++) {
				sv = s ? B : A; m = cnt[key, sv]
				for (i = 1; i <= m; i++) { x[i] = rps[key, sv, i]; y[i] = p50[key, sv, i]; z[i] = p99[key, sv, i] }
				R[sv] = median(x, m); P5[sv] = median(y, m) / 1000; P9[sv] = median(z, m) / 1000
			}
			nr = 0
			for (c = 1; c <= 1000; c++)
				if (((key, A, c) in cyc) && ((key, B, c) in cyc) && cyc[key, B, c] > 0)
					w[++nr] = cyc[key, A, c] / cyc[key, B, c]
			printf "| %s | %.0f | %.0f | %.2f | %.3f / %.3f | %.3f / %.3f | %d / %d |", key, R[A], R[B], median(w, nr), P5[A], P9[A], P5[B], P9[B], err[key, A], err[key, B]
			if (head != "") printf " %s |", more[key]
			printf "\n"
		}
	}' "$1"
}

# bench_machine: one line describing the machine.
bench_machine() {
	echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(free -g | awk '/Mem:/ { print $2 }') GiB, kernel $(uname -r); wrk $(wrk -v 2>&1 | awk 'NR == 1 { sub(/.*\//, "", $2); sub(/-.*/, "", $2); print $2 }') (1 thread, keep-alive), nginx $("$NGINX" -v 2>&1 | sed 's#.*/##') (1 worker, static file), libmicrohttpd $(dpkg-query -W -f='${Version}' libmicrohttpd12 2>/dev/null | sed 's/-.*//' || echo '?'); everything on the same CPUs, no pinning."
}

# bench_write_block FILE NAME BLOCK: puts the file BLOCK between FILE's
# lines "<!-- NAME:begin ... -->" and "<!-- NAME:end -->" (markers
# included, written here), keeping the rest of FILE; appends it when FILE
# has no such markers.
bench_write_block() {
	{
		echo "<!-- $2:begin (written by bench/$BENCH on $(date -u +%Y-%m-%dT%H:%MZ)) -->"
		cat "$3"
		echo "<!-- $2:end -->"
	} >"$work/block.$2"
	if [ -f "$1" ] && grep -q "^<!-- $2:begin" "$1"; then
		awk -v block="$work/block.$2" -v b="<!-- $2:begin" -v e="<!-- $2:end" '
			index($0, b) == 1 { while ((getline l < block) > 0) print l; skip = 1; next }
			index($0, e) == 1 { skip = 0; next }
			!skip { print }' "$1" >"$work/out.md"
		cat "$work/out.md" >"$1"
	else
		{ [ -f "$1" ] && echo; cat "$work/block.$2"; } >>"$1"
	fi
}
