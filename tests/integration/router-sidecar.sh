#!/bin/bash
# tests/integration/router-sidecar.sh - `llmd-router sidecar` in front of a
# decode engine: with x-prefiller-host-port the request is prefilled on the
# prefill engine and decoded from its pulled KV, token-identical to one
# aggregated engine (streaming and not); without the header it goes straight
# to the decoder; a prefill 4xx is passed through; a dead prefill engine
# falls back to local prefill and still answers; SSRF protection refuses an
# unlisted prefill host; a client that never reads pauses the decoder leg;
# every process exits 0 on SIGTERM with no sanitizer report.
set -u
B=${top_builddir:-.}
ROUTER=${LLMD_ROUTER:-$B/llmd-router}
pass=0 fail=0
ok() { pass=$((pass+1)); }
no() { fail=$((fail+1)); echo "FAIL: $*"; }
t=$(mktemp -d /tmp/llmd-sidecar-test.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$t"' EXIT
"$ROUTER" sidecar --help >/dev/null 2>&1 || { echo "SKIP: llmd-router has no sidecar mode"; exit 77; }

"$B/llmd-engine" make-model --arch qwen3 --out "$t/m" --layers 2 --hidden 64 --heads 4 --kv-heads 2 \
	--intermediate 128 --seed 5 >/dev/null 2>&1
waitport() { for _ in $(seq 400); do [ -s "$1" ] && break; sleep 0.05; done; tail -1 "$1"; }
sp=$((30000 + RANDOM % 20000))
engine() { # name side-port extra...
	local name=$1 port=$2; shift 2
	# side channel on a free port (port 0): the producer's params name its own
	VLLM_NIXL_SIDE_CHANNEL_PORT=0 "$B/llmd-engine" serve "$t/m" --host 127.0.0.1 --port 0 \
		--served-model-name m --threads 1 "$@" >"$t/$name.port" 2>"$t/$name.log" &
	pids+=($!)
}
engine agg $sp
engine pre $((sp+1)) --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_producer"}'
engine dec $((sp+2)) --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_consumer"}'
AGG=$(waitport "$t/agg.port"); PRE=$(waitport "$t/pre.port"); DEC=$(waitport "$t/dec.port")
"$ROUTER" sidecar --port 0 --host 127.0.0.1 --vllm-port "$DEC" --secure-proxy=false >"$t/sc.port" 2>"$t/sc.log" &
pids+=($!)
SC=$(waitport "$t/sc.port")
"$ROUTER" sidecar --port 0 --host 127.0.0.1 --vllm-port "$DEC" --enable-ssrf-protection \
	--allowed-prefill-hosts 10.9.9.9 >"$t/sc2.port" 2>"$t/sc2.log" &
pids+=($!)
SC2=$(waitport "$t/sc2.port")
curl -sf "http://127.0.0.1:$SC/health" >/dev/null && ok || no "sidecar health"

J=(-H 'Content-Type: application/json')
body='{"model":"m","messages":[{"role":"user","content":"Tell me about prefill and decode disaggregation in detail please"}],"max_tokens":10,"temperature":0}'
text() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["choices"][0]["message"]["content"])'; }
a=$(curl -s "${J[@]}" -d "$body" "http://127.0.0.1:$AGG/v1/chat/completions" | text)
p=$(curl -s "${J[@]}" -H "x-prefiller-host-port: 127.0.0.1:$PRE" -d "$body" "http://127.0.0.1:$SC/v1/chat/completions" | text)
[ -n "$a" ] && [ "$a" = "$p" ] && ok || no "P/D through the sidecar differs: '$a' vs '$p'"
curl -s "http://127.0.0.1:$SC/sidecar/metrics" | grep -q 'path="pd"} 1' && ok || no "pd path counted"
curl -s "http://127.0.0.1:$DEC/metrics" | grep -q 'llmd:kv_transfer_pulls_total{model_name="m",engine="0"} 1' && ok || no "decoder pulled the KV"

# streaming through the sidecar: same text as aggregated
sbody=${body%\}}',"stream":true}'
s=$(curl -s -N "${J[@]}" -H "x-prefiller-host-port: http://127.0.0.1:$PRE" -d "$sbody" "http://127.0.0.1:$SC/v1/chat/completions" |
	/usr/bin/python3 -c 'import json,sys
out=""
for line in sys.stdin:
    line=line.strip()
    if line.startswith("data: {"):
        d=json.loads(line[6:])
        for c in d["choices"]: out += c["delta"].get("content") or ""
print(out)')
[ "$a" = "$s" ] && ok || no "streamed P/D differs: '$a' vs '$s'"

# no header: straight to the decoder
l=$(curl -s "${J[@]}" -d "$body" "http://127.0.0.1:$SC/v1/chat/completions" | text)
[ "$a" = "$l" ] && ok || no "local path differs"
curl -s "http://127.0.0.1:$SC/v1/models" | grep -q '"id":"m"' && ok || no "other paths proxied to the decoder"

# a prefill 4xx is the client's answer
code=$(curl -s -o "$t/b" -w '%{http_code}' "${J[@]}" -H "x-prefiller-host-port: 127.0.0.1:$PRE" \
	-d '{"model":"nope","prompt":"x"}' "http://127.0.0.1:$SC/v1/completions")
[ "$code" = 404 ] && grep -q "does not exist" "$t/b" && ok || no "prefill 404 passed through (got $code)"

# a dead prefill engine: fall back to local prefill
f=$(curl -s "${J[@]}" -H "x-prefiller-host-port: 127.0.0.1:1" -d "$body" "http://127.0.0.1:$SC/v1/chat/completions" | text)
[ "$a" = "$f" ] && ok || no "fallback answer differs: '$f'"
grep -q "prefill failed" "$t/sc.log" && ok || no "fallback logged"

# SSRF protection
code=$(curl -s -o /dev/null -w '%{http_code}' "${J[@]}" -H "x-prefiller-host-port: 127.0.0.1:$PRE" -d "$body" "http://127.0.0.1:$SC2/v1/chat/completions")
[ "$code" = 403 ] && ok || no "SSRF protection (got $code)"
code=$(curl -s -o /dev/null -w '%{http_code}' "${J[@]}" -H "x-prefiller-host-port: 127.0.0.1:$PRE" -d '{"bad json' "http://127.0.0.1:$SC/v1/chat/completions")
[ "$code" = 400 ] && ok || no "bad JSON is 400 (got $code)"
# back-pressure: a client that never reads makes the sidecar stop reading the
# decoder, whose own backlog limit then aborts the request (without it the
# sidecar would buffer the whole stream)
"$B/llmd-engine" make-model --arch llama --out "$t/long" --layers 1 --hidden 32 --heads 2 --kv-heads 1 \
	--intermediate 64 --max-pos 1048576 >/dev/null 2>&1
"$B/llmd-engine" serve "$t/long" --simulate --host 127.0.0.1 --port 0 --served-model-name sim \
	--sim-ttft-ms 0 --sim-itl-ms 0 --sim-jitter 0 --max-stream-backlog 4MiB >"$t/sim.port" 2>"$t/sim.log" &
pids+=($!)
SIM=$(waitport "$t/sim.port")
"$ROUTER" sidecar --port 0 --host 127.0.0.1 --vllm-port "$SIM" --secure-proxy=false >"$t/sc3.port" 2>"$t/sc3.log" &
pids+=($!)
SC3=$(waitport "$t/sc3.port")
/usr/bin/python3 - "$SC3" "$SIM" >"$t/slow.out" 2>&1 <<'PYEOF'
import socket, sys, time, urllib.request
sc, sim = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", sc))
body = b'{"prompt":"x","max_tokens":1000000,"ignore_eos":true,"stream":true}'
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body)
for _ in range(900):
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % sim).read().decode()
    if 'finished_reason="abort"} 1' in m:
        print("aborted"); break
    if 'finished_reason="length"} 1' in m:
        print("the decoder finished: the sidecar read it all"); break
    time.sleep(0.05)
s.close()
PYEOF
grep -q aborted "$t/slow.out" && ok || no "sidecar back-pressure: $(cat "$t/slow.out")"

# the router's P/D decision: long non-cached prompts get a prefill endpoint
# (x-prefiller-host-port to the sidecar), short ones decode locally
cat >"$t/router.yaml" <<YEOF
pools:
- name: svc
  endpoints: ["127.0.0.1:$SC"]
  scheduler: {prefillPool: svc-prefill, pdThresholdTokens: 100}
- name: svc-prefill
  endpoints: ["127.0.0.1:$PRE"]
routes:
- name: team/svc
  pool: svc
YEOF
"$B/llmd-router" --config "$t/router.yaml" --listen 127.0.0.1:0 >"$t/router.port" 2>"$t/router.log" &
pids+=($!)
RT=$(waitport "$t/router.port")
sleep 0.3
before=$(curl -s "http://127.0.0.1:$SC/sidecar/metrics" | sed -n 's/.*path="pd"} //p')
long=$(for i in $(seq 300); do printf 'w%d ' "$i"; done)
r=$(curl -s "${J[@]}" -d "{\"model\":\"m\",\"prompt\":\"$long\",\"max_tokens\":4,\"temperature\":0}" "http://127.0.0.1:$RT/team/svc/v1/completions")
grep -q '"finish_reason":"length"' <<<"$r" && ok || no "long prompt through the router: $r"
after=$(curl -s "http://127.0.0.1:$SC/sidecar/metrics" | sed -n 's/.*path="pd"} //p')
[ "$after" = $((before + 1)) ] && ok || no "long prompt went P/D ($before -> $after)"
local0=$(curl -s "http://127.0.0.1:$SC/sidecar/metrics" | sed -n 's/.*path="local"} //p')
curl -s "${J[@]}" -d '{"model":"m","prompt":"short one","max_tokens":2}' "http://127.0.0.1:$RT/team/svc/v1/completions" >/dev/null
local1=$(curl -s "http://127.0.0.1:$SC/sidecar/metrics" | sed -n 's/.*path="local"} //p')
[ "$local1" = $((local0 + 1)) ] && ok || no "short prompt decoded locally ($local0 -> $local1)"
# a client cannot pick the prefiller itself
curl -s "${J[@]}" -H "x-prefiller-host-port: 127.0.0.1:1" -d '{"model":"m","prompt":"short two","max_tokens":2}' "http://127.0.0.1:$RT/team/svc/v1/completions" >/dev/null
local2=$(curl -s "http://127.0.0.1:$SC/sidecar/metrics" | sed -n 's/.*path="local"} //p')
[ "$local2" = $((local1 + 1)) ] && ok || no "client x-prefiller-host-port not forwarded"

# SIGTERM: engines and sidecars exit 0, no sanitizer report
for p in "${pids[@]}"; do kill -TERM $p 2>/dev/null; done
for p in "${pids[@]}"; do wait $p; rc=$?; [ $rc = 0 ] || no "a process exited $rc after SIGTERM"; done
pids=()
grep -l "Sanitizer\|runtime error" "$t"/*.log >/dev/null 2>&1 && { no "sanitizer report in a log"; grep -h -A20 "Sanitizer\|runtime error" "$t"/*.log | head -60; } || ok
echo "router-sidecar: $pass passed, $fail failed"
[ $fail = 0 ]
