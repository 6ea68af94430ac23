-- bench/writes.lua - wrk script: a stream of position writes to markd.
--
--   MARKD_TOKEN=... [WRITE_DELAY_MS=N] [WRITE_PREFIX=p] \
--     wrk -t1 -cC -dDs --latency -s bench/writes.lua http://127.0.0.1:PORT
--
-- Requests cycle through three writes, all with the bearer token:
--   PUT    /v1/positions/{p}{n}             create position n
--   POST   /v1/positions/{p}{n-50}/collateral  add 1 USD to an older one
--   DELETE /v1/positions/{p}{n-100}         remove an older one still
-- so about 100 positions stay registered and every collateral change and
-- delete names a position created 150 or 300 requests earlier (long
-- committed with a handful of connections). Before position 50 (100)
-- exists, the collateral (delete) turn re-PUTs position n instead.
-- WRITE_DELAY_MS paces each connection (wrk's delay(): that many ms
-- before each request); 0 or unset: as fast as markd answers.
-- At the end it prints one line: writes=N 2xx=A 404=B 409=C other=D.

local token = os.getenv("MARKD_TOKEN") or ""
local pause = tonumber(os.getenv("WRITE_DELAY_MS") or "0") or 0
local prefix = os.getenv("WRITE_PREFIX") or "w"
local collateral_lag, delete_lag = 50, 100

wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"

local position = '{"symbol":"BTC-USD","side":"long","size":"0.01",' ..
	'"entry_price":"20000","collateral":"100","leverage":"10"}'
local topup = '{"delta":"1"}'

local threads = {}
function setup(thread)
	table.insert(threads, thread)
end

local k = 0
ok, missing, conflict, other = 0, 0, 0, 0

local function path(n)
	return "/v1/positions/" .. prefix .. n
end

function request()
	local n, turn = math.floor(k / 3), k % 3
	k = k + 1
	if turn == 1 and n >= collateral_lag then
		return wrk.format("POST", path(n - collateral_lag) .. "/collateral",
			nil, topup)
	elseif turn == 2 and n >= delete_lag then
		return wrk.format("DELETE", path(n - delete_lag), nil, nil)
	end
	return wrk.format("PUT", path(n), nil, position)
end

if pause > 0 then
	function delay()
		return pause
	end
end

function response(status, headers, body)
	if status >= 200 and status < 300 then
		ok = ok + 1
	elseif status == 404 then
		missing = missing + 1
	elseif status == 409 then
		conflict = conflict + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local a, b, c, d = 0, 0, 0, 0
	for _, t in ipairs(threads) do
		a = a + t:get("ok")
		b = b + t:get("missing")
		c = c + t:get("conflict")
		d = d + t:get("other")
	end
	io.write(string.format("writes=%d 2xx=%d 404=%d 409=%d other=%d\n",
		summary.requests, a, b, c, d))
end
