#!/bin/bash
# tests/integration/router-daemon.sh - llmd-router with the llmd daemon as
# its source: it registers its Gateway, serves an LLMInferenceService's
# managed HTTPRoute (path prefix rewritten, and body-model matching on /v1)
# over the InferencePool's pods once they have IPs (simulated engines on
# loopback aliases at the pool's port 8000), writes status.parents Accepted
# on the route and pool, and applies a pod leaving the pool mid-stream
# without cutting the stream. Skipped (77) when the daemon is not built or
# the loopback aliases' port 8000 is taken.
set -u
. "${top_srcdir:-.}/tests/integration/router-lib.sh"
DAEMON=${LLMD_TEST_DAEMON:-$B/llmd}
[ -x "$DAEMON" ] || { echo "SKIP: $DAEMON not built"; exit 77; }
IP1=127.0.93.1 IP2=127.0.93.2
for ip in $IP1 $IP2; do
	if python3 -c "import socket,sys; s=socket.socket(); s.bind(('$ip',8000))" 2>/dev/null; then :; else
		echo "SKIP: $ip:8000 is not free"; exit 77
	fi
done

make_model
mkdir -p "$t/d"
"$DAEMON" --listen 127.0.0.1:0 --data-dir "$t/d" 2>"$t/llmd.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$t/d/llmd.addr" ] && break; sleep 0.05; done
U="http://$(cat "$t/d/llmd.addr")"
for ip in $IP1 $IP2; do
	"$ENGINE" serve "$t/m" --simulate --host $ip --port 8000 --served-model-name chatm \
		--sim-ttft-ms 1 --sim-itl-ms 10 --sim-jitter 0 >/dev/null 2>"$t/e-$ip.log" &
	pids+=($!)
done
# a NOTIFY_SOCKET listener: READY=1 comes after the first sync from the daemon
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".up", "w").close()
while True:
    d = s.recv(4096).decode()
    with open(sys.argv[2], "a") as f:
        f.write(d + "\n")
' "$t/notify.sock" "$t/notify.log" &
pids+=($!)
for _ in $(seq 100); do [ -e "$t/notify.log.up" ] && break; sleep 0.05; done
NOTIFY_SOCKET="$t/notify.sock" "$ROUTER" --server "$U" --name kserve-ingress-gateway --listen 127.0.0.1:0 \
	>"$t/router.port" 2>"$t/router.log" &
router_pid=$!
pids+=($router_pid)
R="http://127.0.0.1:$(wait_port "$t/router.port")"

# the router registered its Gateway with its listener
for _ in $(seq 50); do
	gw=$(curl -s "$U/apis/gateway.networking.k8s.io/v1/namespaces/llmd-system/gateways/kserve-ingress-gateway")
	grep -q '"Programmed"' <<<"$gw" && break
	sleep 0.1
done
grep -q "\"port\":${R##*:}" <<<"$gw" && grep -q '"addresses"' <<<"$gw" && ok || no "gateway object: $gw"
for _ in $(seq 50); do grep -q 'READY=1' "$t/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'READY=1' "$t/notify.log" 2>/dev/null && ok || no "READY=1 after the first sync"

curl -s -o /dev/null -X POST -H 'Content-Type: application/yaml' \
	"$U/apis/serving.kserve.io/v1alpha1/namespaces/team/llminferenceservices" --data-binary '
metadata: {name: chat}
spec:
  model: {uri: "hf://x/y", name: chatm}
  replicas: 2
  router: {route: {}, gateway: {}, scheduler: {}}'
pods=""
for _ in $(seq 50); do
	pods=$(curl -s "$U/api/v1/namespaces/team/pods?labelSelector=kserve.io/component%3Dworkload" |
		python3 -c 'import json,sys; print(" ".join(p["metadata"]["name"] for p in json.load(sys.stdin)["items"]))')
	[ "$(wc -w <<<"$pods")" = 2 ] && break
	sleep 0.1
done
[ "$(wc -w <<<"$pods")" = 2 ] && ok || no "two workload pods derived: '$pods'"
# status.url is the registered gateway's listener + /<namespace>/<name>
url=""
for _ in $(seq 50); do
	url=$(curl -s "$U/apis/serving.kserve.io/v1alpha1/namespaces/team/llminferenceservices/chat" |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",{}).get("url",""))')
	[ "$url" = "$R/team/chat" ] && break
	sleep 0.1
done
[ "$url" = "$R/team/chat" ] && ok || no "status.url '$url' is not '$R/team/chat'"
# no ready pod yet: 503 naming the service
code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"chatm","prompt":"x","max_tokens":1}' "$R/team/chat/v1/completions")
[ "$code" = 503 ] && grep -q 'team/chat' "$t/b" && ok || no "no pod IPs yet: $code $(cat "$t/b")"
set -- $pods
p1=$1 p2=$2
curl -s -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' "$U/api/v1/namespaces/team/pods/$p1/status" \
	-d "{\"status\":{\"phase\":\"Running\",\"podIP\":\"$IP1\"}}"
curl -s -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' "$U/api/v1/namespaces/team/pods/$p2/status" \
	-d "{\"status\":{\"phase\":\"Running\",\"podIP\":\"$IP2\"}}"
for _ in $(seq 50); do
	code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"chatm","prompt":"hello","max_tokens":2}' "$R/team/chat/v1/completions")
	[ "$code" = 200 ] && break
	sleep 0.1
done
[ "$code" = 200 ] && grep -q '"completion_tokens":2' "$t/b" && ok || no "service path: $code $(cat "$t/b")"
code=$(curl -s -o "$t/b" -w '%{http_code}' "$R/team/chat/v1/models")
[ "$code" = 200 ] && grep -q '"id":"chatm"' "$t/b" && ok || no "GET service/v1/models: $code"
code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"chatm","prompt":"hello","max_tokens":2}' "$R/v1/completions")
[ "$code" = 200 ] && ok || no "body model match on /v1: $code $(cat "$t/b")"
code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"other","prompt":"hello","max_tokens":2}' "$R/v1/completions")
[ "$code" = 404 ] && grep -q '"error"' "$t/b" && ok || no "unknown model: $code $(cat "$t/b")"

# status.parents Accepted on the route and the pool
sleep 0.3
st=$(curl -s "$U/apis/gateway.networking.k8s.io/v1/namespaces/team/httproutes/chat-kserve-route")
grep -q '"parents":\[{"parentRef":{[^}]*"name":"kserve-ingress-gateway"' <<<"$st" && \
	grep -q '"type":"Accepted","status":"True"' <<<"$st" && ok || no "route status: $st"
st=$(curl -s "$U/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/team/inferencepools/chat-inference-pool")
grep -q '"parent":\[{"parentRef"' <<<"$st" && ok || no "pool status: $st"

# a pod leaves mid-stream: the stream finishes, new requests avoid it
curl -s -N -D "$t/hs" -d '{"model":"chatm","prompt":"long stream","max_tokens":80,"stream":true}' \
	"$R/team/chat/v1/completions" >"$t/stream" &
cpid=$!
sleep 0.3
gone=$(dest "$t/hs")
for p in $p1 $p2; do
	ip=$(curl -s "$U/api/v1/namespaces/team/pods/$p" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["podIP"])')
	[ "$ip:8000" = "$gone" ] && curl -s -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' \
		"$U/api/v1/namespaces/team/pods/$p/status" -d '{"status":{"phase":"Failed"}}'
done
wait $cpid
grep -q '"finish_reason":"length"' "$t/stream" && grep -q '^data: \[DONE\]' "$t/stream" && ok \
	|| no "stream across the pod removal: $(tail -c 200 "$t/stream")"
sleep 0.3
hit=0
for i in $(seq 8); do
	curl -s -D "$t/hn" -o /dev/null -d "{\"model\":\"chatm\",\"prompt\":\"after $i\",\"max_tokens\":1}" "$R/team/chat/v1/completions"
	[ "$(dest "$t/hn")" = "$gone" ] && hit=$((hit+1))
done
[ -n "$gone" ] && [ $hit = 0 ] && ok || no "removed pod $gone got $hit requests"
grep -q "endpoint $gone removed" "$t/router.log" && ok || no "removal logged"

sanitizer_check
kill -TERM $router_pid; wait $router_pid; rc=$?
[ $rc = 0 ] && ok || no "router SIGTERM exit $rc"
echo "router-daemon: $pass passed, $fail failed"
[ $fail = 0 ]
