#!/bin/bash
# tests/integration/engine-pd-netns.sh - prefill/decode across hosts: the
# prefill engine and the decode engine run in two network namespaces joined
# by a veth pair (the test creates and removes them), the KV cache crosses
# over the TCP transport between the namespaces' addresses, and for 50
# prompts of mixed length the decode engine's greedy output is token-identical
# to an aggregated engine. Needs root and `ip netns` (exit 77 otherwise).
set -u
B=${top_builddir:-.}
B=$(cd "$B" && pwd)
pass=0 fail=0
ok() { pass=$((pass+1)); }
no() { fail=$((fail+1)); echo "FAIL: $*"; }
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root for network namespaces"; exit 77; fi
ip netns list >/dev/null 2>&1 || { echo "SKIP: ip netns unavailable"; exit 77; }
t=$(mktemp -d /tmp/llmd-pd-netns.XXXXXX)
chmod 755 "$t"
id=$(( $$ % 100000 ))
A="llmdpdA$id" D="llmdpdB$id"
net=10.83.$(( ($$ % 200) + 20 ))
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$A" 2>/dev/null
	ip netns del "$D" 2>/dev/null
	rm -rf "$t"
}
trap cleanup EXIT
ip netns add "$A" && ip netns add "$D" || { echo "SKIP: cannot create network namespaces"; exit 77; }
ip link add "pdA$id" netns "$A" type veth peer name "pdB$id" netns "$D" || { echo "SKIP: cannot create a veth pair"; exit 77; }
ip -n "$A" addr add "$net.1/24" dev "pdA$id"
ip -n "$D" addr add "$net.2/24" dev "pdB$id"
for n in "$A" "$D"; do ip -n "$n" link set lo up; done
ip -n "$A" link set "pdA$id" up
ip -n "$D" link set "pdB$id" up

"$B/llmd-engine" make-model --arch qwen2 --out "$t/m" --layers 2 --hidden 64 --heads 4 --kv-heads 2 \
	--intermediate 128 --seed 11 >/dev/null 2>&1
# engine NAMESPACE NAME ADDRESS [ARGS...]: serve on ADDRESS:8000 inside NAMESPACE
engine() {
	local ns=$1 name=$2 addr=$3; shift 3
	ip netns exec "$ns" env VLLM_NIXL_SIDE_CHANNEL_HOST="$addr" VLLM_NIXL_SIDE_CHANNEL_PORT=5600 \
		"$B/llmd-engine" serve "$t/m" --host "$addr" --port "$1" --served-model-name m --threads 1 \
		"${@:2}" >"$t/$name.port" 2>"$t/$name.log" &
	pids+=($!)
}
engine "$A" agg "$net.1" 8001
engine "$A" pre "$net.1" 8000 --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_producer"}'
engine "$D" dec "$net.2" 8000 --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_consumer"}'
for n in agg pre dec; do for _ in $(seq 200); do [ -s "$t/$n.port" ] && break; sleep 0.05; done; done
grep -q "side channel $net.1:5600" "$t/pre.log" && ok || { no "producer side channel on $net.1"; cat "$t/pre.log"; }

cat >"$t/pd.py" <<'PYEOF'
import json, sys, urllib.request
agg, pre, dec = sys.argv[1:4]
def post(url, body):
    r = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(r, timeout=60))
good = 0
for i in range(1, 51):
    n = (i * 37) % 350 + 1
    prompt = " ".join("tok%d" % ((k * 7919 + i) % 997) for k in range(n))
    base = {"model": "m", "prompt": prompt, "temperature": 0, "max_tokens": 8, "ignore_eos": True, "logprobs": 0}
    a = post(agg, base)
    p = post(pre, dict(base, max_tokens=1, kv_transfer_params={"do_remote_decode": True, "do_remote_prefill": False}))
    kv = p.get("kv_transfer_params") or {}
    if kv.get("remote_host") != pre.split("//")[1].split(":")[0]:
        print("prompt %d: remote_host %r" % (i, kv.get("remote_host"))); continue
    d = post(dec, dict(base, kv_transfer_params=kv))
    if a["choices"][0]["logprobs"]["tokens"] == d["choices"][0]["logprobs"]["tokens"]:
        good += 1
    else:
        print("prompt %d differs" % i)
print("identical", good)
PYEOF
out=$(ip netns exec "$A" /usr/bin/python3 "$t/pd.py" "http://$net.1:8001" "http://$net.1:8000" "http://$net.2:8000" 2>&1)
echo "$out" | tail -3
grep -q "^identical 50$" <<<"$out" && ok || no "P/D across namespaces token-identical for $(sed -n 's/^identical //p' <<<"$out") of 50"
pulls=$(ip netns exec "$D" curl -s "http://$net.2:8000/metrics" | awk '$1 ~ /^llmd:kv_transfer_pulls_total/ {print $2}')
[ "${pulls%.*}" -ge 45 ] 2>/dev/null && ok || no "decode pulled the KV across namespaces ($pulls loads)"
fails=$(ip netns exec "$D" curl -s "http://$net.2:8000/metrics" | awk '$1 ~ /^llmd:kv_transfer_pull_failures_total/ {print $2}')
[ "$fails" = 0 ] && ok || no "pull failures: $fails"
if grep -l "Sanitizer\|runtime error" "$t"/*.log >/dev/null 2>&1; then no "sanitizer report"; else ok; fi
echo "engine-pd-netns: $pass passed, $fail failed"
[ $fail = 0 ]
