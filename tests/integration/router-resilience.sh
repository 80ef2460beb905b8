#!/bin/bash
# tests/integration/router-resilience.sh - llmd-router under trouble: a
# saturated pool sheds Sheddable requests (429 JSON) and still serves
# Critical ones; a pool without a ready endpoint answers 503 naming the
# service; a dead endpoint is retried around; an endpoint removed from the
# config mid-stream finishes its stream and gets no new requests; an engine
# killed mid-stream ends that stream cleanly and is avoided; route timeouts
# and Authorization checks; hostile clients (slow headers, huge bodies,
# broken chunking) are contained while other traffic flows.
set -u
. "${top_srcdir:-.}/tests/integration/router-lib.sh"

make_model
# a small slow pool for saturation: one running request at a time
start_engine s1 --served-model-name crit bulk --sim-ttft-ms 1 --sim-itl-ms 20 --sim-jitter 0 --max-num-seqs 1
# a healthy pool of three
for i in 1 2 3; do
	start_engine e$i --served-model-name sim --sim-ttft-ms 1 --sim-itl-ms 10 --sim-jitter 0
done
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# an endpoint that turns every request away with 503, as a stopping engine does
cat >"$t/busy.py" <<'EOP'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, code, body, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200, b"vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n", "text/plain")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(sys.argv[2], "a") as f:
            f.write("POST\n")
        self.reply(503, b'{"error":{"message":"the server is shutting down","code":503}}', "application/json")
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
EOP
python3 "$t/busy.py" "$t/busy.port" "$t/busy.log" &
pids+=($!)
for _ in $(seq 50); do [ -s "$t/busy.port" ] && break; sleep 0.1; done
busy_port=$(cat "$t/busy.port")
write_cfg() {   # write_cfg ENDPOINTS_OF_POOL_SVC
	cat >"$t/cfg.yaml" <<EOC
pools:
- name: sat
  endpoints: ["127.0.0.1:$s1_port"]
  models: [{name: crit, criticality: Critical}, {name: bulk, criticality: Sheddable}]
  scheduler: {metricsStalenessThreshold: 5s}
- name: svc
  endpoints: [$1]
  models: [sim]
  scheduler: {metricsStalenessThreshold: 5s}
- name: empty
  endpoints: []
routes:
- {name: ns/sat, pool: sat}
- {name: ns/svc, pool: svc}
- {name: ns/empty, pool: empty}
- {name: ns/slow, pool: svc, timeout: 300ms}
- {name: ns/auth, pool: svc, authorization: "Bearer s3cret"}
EOC
}
write_cfg "\"127.0.0.1:$e1_port\", \"127.0.0.1:$e2_port\", \"127.0.0.1:$e3_port\", \"127.0.0.1:$dead_port\", \"127.0.0.1:$busy_port\""
start_router "$t/cfg.yaml" --max-body 1MiB --client-timeout 3s

# --- saturation: fill the slow engine's queue with Critical requests
for i in $(seq 8); do
	curl -s -o "$t/c$i" -d '{"model":"crit","prompt":"hold the line","max_tokens":40}' "$R/ns/sat/v1/completions" &
done
sleep 0.5
code=$(curl -s -o "$t/shed" -D "$t/shedh" -w '%{http_code}' -d '{"model":"bulk","prompt":"x","max_tokens":2}' \
	"$R/ns/sat/v1/completions")
[ "$code" = 429 ] && grep -q '"error"' "$t/shed" && grep -qi 'x-llm-d-request-dropped-reason: rejected-saturated' "$t/shedh" \
	&& ok || no "sheddable while saturated: $code $(cat "$t/shed")"
code=$(curl -s -o "$t/crit" -w '%{http_code}' -d '{"model":"crit","prompt":"y","max_tokens":2}' "$R/ns/sat/v1/completions")
[ "$code" = 200 ] && grep -q '"completion_tokens":2' "$t/crit" && ok || no "critical while saturated: $code"
wait $(jobs -p | grep -v -F -x -f <(printf '%s\n' "${pids[@]}")) 2>/dev/null
good=$(grep -l '"completion_tokens":40' "$t"/c? | wc -l)
[ "$good" = 8 ] && ok || no "queued critical requests served: $good of 8"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"model":"bulk","prompt":"x","max_tokens":2}' "$R/ns/sat/v1/completions")
[ "$code" = 200 ] && ok || no "sheddable once the queue drained: $code"

# --- no ready endpoint: 503 naming the service
code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"m","prompt":"x"}' "$R/ns/empty/v1/completions")
[ "$code" = 503 ] && grep -q 'ns/empty' "$t/b" && ok || no "empty pool: $code $(cat "$t/b")"

# --- a dead endpoint in the pool: every request still succeeds (retry / avoided)
bad=0
for i in $(seq 12); do
	code=$(curl -s -o /dev/null -w '%{http_code}' -d "{\"model\":\"sim\",\"prompt\":\"r$i\",\"max_tokens\":1}" \
		"$R/ns/svc/v1/completions")
	[ "$code" = 200 ] || bad=$((bad+1))
done
[ $bad = 0 ] && ok || no "$bad of 12 failed with a dead and a 503 endpoint in the pool"
# the 503 endpoint was tried (and every request it turned away went elsewhere)
for i in $(seq 24); do
	[ -s "$t/busy.log" ] && break
	code=$(curl -s -o /dev/null -w '%{http_code}' -d "{\"model\":\"sim\",\"prompt\":\"q$i\",\"max_tokens\":1}" \
		"$R/ns/svc/v1/completions")
	[ "$code" = 200 ] || bad=$((bad+1))
done
[ -s "$t/busy.log" ] && ok || no "the 503 endpoint was never picked"
[ $bad = 0 ] && ok || no "$bad requests failed after a 503 from an endpoint"

# --- route timeout and authorization
code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"sim","prompt":"long","max_tokens":500}' "$R/ns/slow/v1/completions")
[ "$code" = 504 ] && ok || no "route timeout: $code $(cat "$t/b")"
code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"model":"sim","prompt":"x","max_tokens":1}' "$R/ns/auth/v1/completions")
[ "$code" = 401 ] && ok || no "missing auth: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cret' \
	-d '{"model":"sim","prompt":"x","max_tokens":1}' "$R/ns/auth/v1/completions")
[ "$code" = 200 ] && ok || no "good auth: $code"

# --- an endpoint removed from the config mid-stream finishes its stream, gets no new requests
curl -s -N -D "$t/hs" -d '{"model":"sim","prompt":"a stream to finish","max_tokens":60,"stream":true}' \
	"$R/ns/svc/v1/completions" >"$t/stream1" &
cpid=$!
sleep 0.2
gone=$(dest "$t/hs")
keep=""
for p in $e1_port $e2_port $e3_port; do
	[ "127.0.0.1:$p" = "$gone" ] || keep="$keep${keep:+, }\"127.0.0.1:$p\""
done
write_cfg "$keep"
kill -HUP $router_pid
wait $cpid
grep -q '"finish_reason":"length"' "$t/stream1" && grep -q '^data: \[DONE\]' "$t/stream1" && ok \
	|| no "stream across the reload: $(grep -c '^data: {' "$t/stream1") events, $(tail -c 200 "$t/stream1")"
hit=0
for i in $(seq 10); do
	curl -s -D "$t/hn" -o /dev/null -d "{\"model\":\"sim\",\"prompt\":\"after $i\",\"max_tokens\":1}" "$R/ns/svc/v1/completions"
	[ "$(dest "$t/hn")" = "$gone" ] && hit=$((hit+1))
done
[ -n "$gone" ] && [ $hit = 0 ] && ok || no "removed endpoint $gone got $hit new requests"

# --- an engine killed mid-stream: the stream ends cleanly, new requests avoid it
curl -s -N -D "$t/hk" -d '{"model":"sim","prompt":"a stream to break","max_tokens":300,"stream":true}' \
	"$R/ns/svc/v1/completions" >"$t/stream2"&
cpid=$!
sleep 0.3
victim=$(dest "$t/hk")
for n in e1 e2 e3; do
	eval "p=\$${n}_port; pid=\$${n}_pid"
	[ "127.0.0.1:$p" = "$victim" ] && { kill -9 $pid; wait $pid 2>/dev/null; }
done
wait $cpid; rc=$?
[ $rc = 0 ] && grep -v '^$' "$t/stream2" | tail -1 | grep -q '^data: \[DONE\]' && grep -q '"error"' "$t/stream2" && ok \
	|| no "killed mid-stream: curl rc $rc, tail: $(tail -c 200 "$t/stream2")"
sleep 0.2
hit=0 bad=0
for i in $(seq 10); do
	code=$(curl -s -D "$t/hn" -o /dev/null -w '%{http_code}' -d "{\"model\":\"sim\",\"prompt\":\"later $i\",\"max_tokens\":1}" \
		"$R/ns/svc/v1/completions")
	[ "$code" = 200 ] || bad=$((bad+1))
	[ "$(dest "$t/hn")" = "$victim" ] && hit=$((hit+1))
done
[ $hit = 0 ] && [ $bad = 0 ] && ok || no "after the kill: $hit to the victim, $bad failed"

# --- hostile clients
host=${R#http://}; rport=${host#*:}
# slow headers: a connection that dribbles a header and stalls
exec 7<>/dev/tcp/127.0.0.1/$rport
printf 'POST /ns/svc/v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ' >&7
code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"model":"sim","prompt":"x","max_tokens":1}' "$R/ns/svc/v1/completions")
[ "$code" = 200 ] && ok || no "traffic beside a slow-header client: $code"
# huge body: 413
head -c 3000000 /dev/zero | tr '\0' 'a' >"$t/huge"
code=$(curl -s -o "$t/b" -w '%{http_code}' --data-binary @"$t/huge" "$R/ns/svc/v1/completions")
[ "$code" = 413 ] && ok || no "huge body: $code"
# oversized headers: a 4xx
big=$(head -c 100000 /dev/zero | tr '\0' 'h')
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" -d '{"model":"sim","prompt":"x","max_tokens":1}' \
	"$R/ns/svc/v1/completions")
[ "${code:0:1}" = 4 ] && ok || no "oversized headers: $code"
# broken chunking: a 4xx, the connection closed
resp=$(printf 'POST /ns/svc/v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n' \
	| timeout 5 curl -s telnet://127.0.0.1:$rport 2>/dev/null | head -1)
grep -q '^HTTP/1.1 4[0-9][0-9] ' <<<"$resp" && ok || no "broken chunking: '$resp'"
code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"model":"sim","prompt":"x","max_tokens":1}' "$R/ns/svc/v1/completions")
[ "$code" = 200 ] && ok || no "traffic after hostile clients: $code"
# the slow-header client is dropped by the client timeout
sleep 3.5
if (trap - PIPE; printf 'a\r\n\r\n' >&7) 2>/dev/null && timeout 1 cat <&7 | grep -q 'HTTP/1.1 200'; then
	no "slow-header client still served after the timeout"
else ok; fi
exec 7>&-

sanitizer_check
kill -TERM $router_pid; wait $router_pid; rc=$?
[ $rc = 0 ] && ok || no "router SIGTERM exit $rc"
echo "router-resilience: $pass passed, $fail failed"
[ $fail = 0 ]
