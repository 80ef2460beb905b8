#!/bin/bash
# tests/integration/engine-pd.sh - prefill/decode disaggregation between two
# real CPU engines over the TCP KV transport: for mixed-length prompts the
# decode engine, given the prefill engine's kv_transfer_params, pulls the
# prompt's KV (no prompt compute) and its greedy output is token-identical to
# one aggregated engine; the prefill engine's held blocks are freed by the
# decoder's DONE, or by the timeout when nobody pulls (counted), at once when
# the response cannot carry them (streamed); a layout
# mismatch is refused with the field named and the decoder falls back to
# computing the prompt itself. A hostile side-channel peer is refused: a READ
# under the client's X-Request-Id or a made-up token gets -EACCES, a DONE
# naming the request id frees nothing, the token (remote_request_id, 32 hex
# digits) is never logged, and the real decoder still pulls.
set -u
B=${top_builddir:-.}
pass=0 fail=0
ok() { pass=$((pass+1)); }
no() { fail=$((fail+1)); echo "FAIL: $*"; }
t=$(mktemp -d /tmp/llmd-pd-test.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$t"' EXIT
PY=/usr/bin/python3

"$B/llmd-engine" make-model --arch llama --out "$t/m" --layers 2 --hidden 64 --heads 4 --kv-heads 2 \
	--intermediate 128 --seed 3 >/dev/null 2>&1
"$B/llmd-engine" make-model --arch llama --out "$t/m3" --layers 3 --hidden 64 --heads 4 --kv-heads 2 \
	--intermediate 128 --seed 3 >/dev/null 2>&1

start() { # name side-port extra...
	local name=$1; shift 2
	# side channel on a free port (port 0): the producer's params name its own
	VLLM_NIXL_SIDE_CHANNEL_PORT=0 "$B/llmd-engine" serve "$@" --host 127.0.0.1 --port 0 \
		--served-model-name m --max-model-len 2048 --threads 1 >"$t/$name.port" 2>"$t/$name.log" &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$t/$name.port" ] && break; sleep 0.05; done
	eval "${name}_url=http://127.0.0.1:\$(tail -1 $t/$name.port)"
}
sp=$((30000 + RANDOM % 20000))
start agg $((sp)) "$t/m"
start pre $((sp+1)) "$t/m" --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_producer","kv_connector_extra_config":{"abort_timeout_s":1}}'
start dec $((sp+2)) "$t/m" --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_consumer"}'
start bad $((sp+3)) "$t/m3" --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_consumer"}'
start pre2 $((sp+4)) "$t/m" --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_producer"}'
grep -q "kv: LlmdConnector kv_producer" "$t/pre.log" && ok || { no "producer started"; cat "$t/pre.log"; }

metric() { curl -s "$1/metrics" | awk -v m="$2" 'index($1, m"{") == 1 || $1 == m {print $2}' | head -1; }

cat >"$t/pd.py" <<'PYEOF'
import json, sys, urllib.request
agg, pre, dec, prompt, max_tokens = sys.argv[1:6]
def post(url, body):
    r = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(r, timeout=60))
base = {"model": "m", "prompt": prompt, "temperature": 0, "max_tokens": int(max_tokens), "ignore_eos": True, "logprobs": 0}
a = post(agg, base)
p = post(pre, dict(base, max_tokens=1, kv_transfer_params={"do_remote_decode": True, "do_remote_prefill": False}))
kv = p.get("kv_transfer_params")
if not kv or not kv.get("do_remote_prefill") or not kv.get("remote_block_ids"):
    print("no kv_transfer_params from prefill:", json.dumps(p)); sys.exit(1)
d = post(dec, dict(base, kv_transfer_params=kv))
ta = a["choices"][0]["logprobs"]["tokens"]; td = d["choices"][0]["logprobs"]["tokens"]
if ta != td or a["choices"][0]["text"] != d["choices"][0]["text"]:
    print("P/D output differs:", json.dumps(ta), json.dumps(td)); sys.exit(1)
if d["usage"]["prompt_tokens"] != a["usage"]["prompt_tokens"]:
    print("usage differs"); sys.exit(1)
print("ok", len(kv["remote_block_ids"]))
PYEOF

# 50 prompts of mixed length (1 to ~700 tokens), decoded from pulled KV
good=0
for i in $(seq 50); do
	n=$(( (i * 37) % 350 + 1 ))
	prompt=$($PY -c "import sys; print(' '.join('tok%d' % ((k * 7919 + $i) % 997) for k in range($n)))")
	if out=$($PY "$t/pd.py" "$agg_url" "$pre_url" "$dec_url" "$prompt" 8 2>&1); then good=$((good+1)); else echo "$out" | head -3; fi
done
[ $good = 50 ] && ok || no "P/D token-identical for $good of 50 prompts"
pulls=$(metric "$dec_url" 'llmd:kv_transfer_pulls_total')
[ "${pulls%.*}" -ge 40 ] 2>/dev/null && ok || no "decode pulled KV ($pulls loads)"
# the decoder computed (almost) no prompt tokens itself: generation dominates
sleep 0.3
held=$(metric "$pre_url" 'vllm:kv_cache_usage_perc')
[ "$held" = "0" ] && ok || no "prefill blocks freed after DONE (usage $held)"

# a hostile peer on the side channel (pre2: no short timeout to race)
cat >"$t/hostile.py" <<'PYEOF'
import json, os, socket, struct, sys, urllib.request
pre, dec = sys.argv[1:3]
def post(url, body, hdr={}):
    h = {"Content-Type": "application/json"}; h.update(hdr)
    r = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(), h)
    return json.load(urllib.request.urlopen(r, timeout=60))
def usage():
    for l in urllib.request.urlopen(pre + "/metrics", timeout=10).read().decode().splitlines():
        if l.startswith("vllm:kv_cache_usage_perc"):
            return float(l.split()[-1])
def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError("server hung up")
        b += c
    return b
body = {"model": "m", "prompt": "victim prompt " * 20, "max_tokens": 1, "temperature": 0,
        "kv_transfer_params": {"do_remote_decode": True}}
kv = post(pre, body, {"X-Request-Id": "victim-1"})["kv_transfer_params"]
tok, ids = kv["remote_request_id"], kv["remote_block_ids"]
if len(tok) != 32 or any(c not in "0123456789abcdef" for c in tok):
    sys.exit("remote_request_id is not a 32-hex-digit token: %r" % tok)
def hello(layout):
    s = socket.create_connection((kv["remote_host"], kv["remote_port"]), timeout=10)
    j = json.dumps(dict(layout, op="hello")).encode()
    s.sendall(b"KVX2" + struct.pack("<I", len(j)) + j)
    st, n = struct.unpack("<iI", recvn(s, 8))
    return s, st, json.loads(recvn(s, n))
s, st, layout = hello({})   # refused, but the answer names the layout
s.close()
layout = {k: layout[k] for k in ("model", "dtype", "block_size", "n_layers", "n_kv_heads",
                                 "head_dim", "tp_rank", "tp_size", "block_bytes")}
def read(token, blocks):
    s, st, _ = hello(layout)
    if st != 0: sys.exit("hello refused: %d" % st)
    t = token.encode()
    s.sendall(struct.pack("<II", 1, len(t)) + t + struct.pack("<I", len(blocks)) +
              b"".join(struct.pack("<iI", b, 1) for b in blocks))
    st, = struct.unpack("<i", recvn(s, 4))
    rest = s.recv(1)
    s.close()
    return st, rest
for t in ("victim-1", os.urandom(16).hex()):
    st, rest = read(t, ids)
    if st != -13 or rest != b"": sys.exit("READ under %r: status %d, %r" % (t, st, rest))
st, rest = read(tok, [max(ids) + 1])
if st not in (-13, -34) or rest != b"": sys.exit("READ outside the hold: status %d" % st)
s, st, _ = hello(layout)
s.sendall(struct.pack("<II", 2, 8) + b"victim-1")
recvn(s, 4)
s.close()
if not usage() > 0: sys.exit("a DONE naming the request id freed the hold")
d = post(dec, dict(body, max_tokens=3, kv_transfer_params=kv))
if d["choices"][0]["finish_reason"] != "length": sys.exit("decode failed: %r" % d)
print(tok)
PYEOF
if out=$($PY "$t/hostile.py" "$pre2_url" "$dec_url" 2>&1); then ok; else no "hostile side-channel peer: $out"; fi
tok=$(tail -1 <<<"$out")
freed=0
for _ in $(seq 40); do [ "$(metric "$pre2_url" 'vllm:kv_cache_usage_perc')" = "0" ] && { freed=1; break; }; sleep 0.1; done
[ $freed = 1 ] && ok || no "the real decoder's DONE freed the hold after the hostile peer"
[ "$(grep -c 'refusing a READ' "$t/pre2.log")" -ge 3 ] && ok || no "refused READs logged"
[ ${#tok} = 32 ] && ! grep -q "$tok" "$t"/*.log && ok || no "the hold token appears in a log"

# a prefill whose decoder never pulls: freed by the 1 s timeout, counted
curl -s -H 'Content-Type: application/json' -d '{"model":"m","prompt":"orphan prompt with enough tokens to fill a block or two of the cache","max_tokens":1,"kv_transfer_params":{"do_remote_decode":true}}' "$pre_url/v1/completions" | grep -q '"remote_block_ids":\[' && ok || no "orphan prefill answered with params"
u=$(metric "$pre_url" 'vllm:kv_cache_usage_perc')
[ "$u" != "0" ] && ok || no "orphan blocks held before the timeout ($u)"
freed=0
for _ in $(seq 40); do sleep 0.1; [ "$(metric "$pre_url" 'vllm:kv_cache_usage_perc')" = "0" ] && { freed=1; break; }; done
[ $freed = 1 ] && ok || no "orphan blocks freed after the timeout"
[ "$(metric "$pre_url" 'llmd:kv_transfer_timeouts_total')" = "1" ] && ok || no "timeout counted"
# a streamed prefill cannot hand its kv_transfer_params to anyone: its blocks are freed
# at once, not by the timeout (the counter stays at 1)
curl -s -N -H 'Content-Type: application/json' -d '{"model":"m","prompt":"streamed prefill with enough tokens to fill a block or two of the cache","max_tokens":1,"stream":true,"kv_transfer_params":{"do_remote_decode":true}}' "$pre_url/v1/completions" | grep -q '^data: \[DONE\]' && ok || no "streamed prefill answered"
sleep 1.5
[ "$(metric "$pre_url" 'vllm:kv_cache_usage_perc')" = "0" ] && [ "$(metric "$pre_url" 'llmd:kv_transfer_timeouts_total')" = "1" ] && ok ||
	no "streamed prefill's blocks freed without the timeout ($(metric "$pre_url" 'llmd:kv_transfer_timeouts_total') timeouts)"

# layout mismatch (3 layers vs 2): refused naming the field, falls back, still answers
p=$(curl -s -H 'Content-Type: application/json' -d '{"model":"m","prompt":"mismatch test prompt","max_tokens":1,"kv_transfer_params":{"do_remote_decode":true}}' "$pre_url/v1/completions")
kv=$(printf '%s' "$p" | $PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["kv_transfer_params"]))')
r=$(curl -s -H 'Content-Type: application/json' -d "{\"model\":\"m\",\"prompt\":\"mismatch test prompt\",\"max_tokens\":3,\"kv_transfer_params\":$kv}" "$bad_url/v1/completions")
grep -q '"finish_reason":"length"' <<<"$r" && ok || no "mismatched decoder still answers: $r"
sleep 0.2
grep -q "n_layers" "$t/pre.log" "$t/bad.log" && ok || no "mismatch names n_layers"
[ "$(metric "$bad_url" 'llmd:kv_transfer_pull_failures_total')" = "1" ] && ok || no "failed pull counted"

# a bad --kv-transfer-config is a startup error naming the field
"$B/llmd-engine" serve "$t/m" --kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_sideways"}' 2>"$t/err"; rc=$?
[ $rc = 2 ] && grep -q kv_role "$t/err" && ok || no "bad kv_role: rc $rc $(cat "$t/err")"

# SIGTERM: every engine exits 0 (side channel, pull and DONE threads joined), no sanitizer report
for p in "${pids[@]}"; do kill -TERM $p 2>/dev/null; done
for p in "${pids[@]}"; do wait $p; rc=$?; [ $rc = 0 ] || no "an engine exited $rc after SIGTERM"; done
pids=()
grep -l "Sanitizer\|runtime error" "$t"/*.log "$t/err" >/dev/null 2>&1 && { no "sanitizer report in an engine log"; grep -h -A20 "Sanitizer\|runtime error" "$t"/*.log "$t/err" | head -60; } || ok
echo "engine-pd: $pass passed, $fail failed"
[ $fail = 0 ]
