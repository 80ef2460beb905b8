#!/bin/bash
# tests/integration/engine-serve.sh - llmd-engine serve on a generated tiny
# model: the official `openai` npm client (streaming and not, chat and
# completions, 64 concurrent streams, logprobs, seeds, stop strings), the CLI
# and the server agree on greedy text, prefix-cache hits show in /metrics,
# a client disconnect frees its KV blocks, bad requests get the right 4xx and
# the server keeps serving, SIGTERM exits cleanly (no sanitizer report).
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
pass=0 fail=0
ok() { pass=$((pass+1)); }
no() { fail=$((fail+1)); echo "FAIL: $*"; }
t=$(mktemp -d /tmp/llmd-serve-test.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$t"; }
trap cleanup EXIT

"$B/llmd-engine" make-model --arch qwen3 --out "$t/model" --layers 2 --hidden 64 --heads 4 \
	--kv-heads 2 --intermediate 128 --seed 7 >/dev/null 2>"$t/mk.log" || { cat "$t/mk.log"; echo "engine-serve: 0 passed, 1 failed"; exit 1; }

"$B/llmd-engine" serve "$t/model" --host 127.0.0.1 --port 0 --served-model-name tiny other-name \
	--max-model-len 4096 --max-request-body 64KiB --threads 2 --disable-log-requests \
	>"$t/port" 2>"$t/serve.log" &
pid=$!
for _ in $(seq 100); do [ -s "$t/port" ] && break; sleep 0.1; done
P=$(tail -1 "$t/port")
U="http://127.0.0.1:$P"
if curl -sf "$U/health" >/dev/null; then ok; else no "health"; cat "$t/serve.log"; fi
grep -q "note: --disable-log-requests" "$t/serve.log" && ok || no "ignored vLLM flag notice"
grep -q "KV cache: [0-9]* blocks" "$t/serve.log" && ok || no "KV pool size logged"

code() { curl -s -o "$t/body" -w '%{http_code}' "$@"; }
expect() { # name want_code want_substring curl-args...
	local name=$1 want=$2 sub=$3; shift 3
	local got; got=$(code "$@")
	if [ "$got" = "$want" ] && grep -q -- "$sub" "$t/body"; then ok; else no "$name: got $got $(head -c 300 "$t/body")"; fi
}
J=(-H 'Content-Type: application/json')
expect "malformed json" 400 '"type":"BadRequestError"' "${J[@]}" -d '{"prompt":' "$U/v1/completions"
expect "wrong type" 400 '"param":"max_tokens"' "${J[@]}" -d '{"prompt":"x","max_tokens":"many"}' "$U/v1/completions"
expect "negative max_tokens" 400 '"param":"max_tokens"' "${J[@]}" -d '{"prompt":"x","max_tokens":-3}' "$U/v1/completions"
expect "unknown model" 404 'does not exist' "${J[@]}" -d '{"model":"gpt-9","prompt":"x"}' "$U/v1/completions"
expect "second served name" 200 '"model":"other-name"' "${J[@]}" -d '{"model":"other-name","prompt":"x","max_tokens":1}' "$U/v1/completions"
expect "too long prompt" 400 "maximum context length is 4096" "${J[@]}" -d '{"prompt":"x","max_tokens":5000}' "$U/v1/completions"
printf '{"prompt":"\xc3\x28 bad"}' >"$t/badutf8"
expect "invalid utf-8" 400 'UTF-8' "${J[@]}" --data-binary @"$t/badutf8" "$U/v1/completions"
expect "n > 1 refused" 400 '"param":"n"' "${J[@]}" -d '{"prompt":"x","n":2}' "$U/v1/completions"
expect "tools refused" 400 '"param":"tools"' "${J[@]}" -d '{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}' "$U/v1/chat/completions"
head -c 100000 /dev/zero | tr '\0' 'a' | sed 's/^/{"prompt":"/; s/$/"}/' >"$t/big"
expect "body too large" 413 'error' "${J[@]}" --data-binary @"$t/big" "$U/v1/completions"
expect "unknown path" 404 'error' "$U/v2/nothing"
expect "tokenize" 200 '"count":' "${J[@]}" -d '{"prompt":"hello world"}' "$U/tokenize"
expect "detokenize" 200 '"prompt":"hello"' "${J[@]}" -d '{"tokens":[14990]}' "$U/detokenize"
# (both run on the prep workers, off the event loop)
expect "tokenize messages" 200 '"token_strs":null' "${J[@]}" -d '{"messages":[{"role":"user","content":"hi"}]}' "$U/tokenize"
expect "tokenize bad body" 400 '"type":"BadRequestError"' "${J[@]}" -d '[1]' "$U/tokenize"
expect "detokenize bad id" 400 '"param":"tokens"' "${J[@]}" -d '{"tokens":[1,-4]}' "$U/detokenize"
expect "version" 200 '"version"' "$U/version"
expect "still serving" 200 '"finish_reason":"length"' "${J[@]}" -d '{"prompt":"after errors","max_tokens":2}' "$U/v1/completions"

# CLI and server agree on greedy text
exp=$("$B/llmd-engine" generate --model "$t/model" --prompt "The quick brown fox" --max-tokens 12 \
	--temperature 0 --print-ids 2>/dev/null | tail -1)
got=$(curl -s "${J[@]}" -d '{"prompt":"The quick brown fox","max_tokens":12,"temperature":0}' "$U/v1/completions")
want_text=$(printf '%s' "$exp" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])' 2>/dev/null)
got_text=$(printf '%s' "$got" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])' 2>/dev/null)
[ -n "$want_text" ] && [ "$want_text" = "$got_text" ] && ok || no "generate CLI vs server: '$want_text' vs '$got_text'"

# prefix caching: the second request with a shared 200-token prefix hits
prefix=$(for i in $(seq 60); do printf 'word%d ' "$i"; done)
metric() { curl -s "$U/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {print $2}' | head -1; }
h0=$(metric 'vllm:prefix_cache_hits_total')
curl -s "${J[@]}" -d "{\"prompt\":\"$prefix one\",\"max_tokens\":1}" "$U/v1/completions" >/dev/null
curl -s "${J[@]}" -d "{\"prompt\":\"$prefix two\",\"max_tokens\":1}" "$U/v1/completions" >/dev/null
h1=$(metric 'vllm:prefix_cache_hits_total')
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$h1') >= float('$h0') + 64 else 1)" && ok || no "prefix cache hits $h0 -> $h1"

# a client that disconnects mid-stream frees its blocks
curl -s -N --max-time 1 "${J[@]}" -d '{"prompt":"long one","max_tokens":3000,"stream":true,"ignore_eos":true}' \
	"$U/v1/completions" >"$t/partial" 2>/dev/null
grep -q '^data: {' "$t/partial" && ok || no "stream started before disconnect"
freed=0
for _ in $(seq 50); do
	r=$(metric 'vllm:num_requests_running'); u=$(metric 'vllm:kv_cache_usage_perc')
	if [ "$r" = "0" ] && [ "$u" = "0" ]; then freed=1; break; fi
	sleep 0.1
done
[ $freed = 1 ] && ok || no "disconnect did not free KV (running=$r usage=$u)"
curl -s "$U/metrics" | grep -q 'vllm:request_success_total{model_name="tiny",engine="0",finished_reason="abort"} 1' && ok || no "abort counted"

# response shapes as vLLM's (docs serving-protocols 1.3/1.4): completions
# chunks carry stop_reason (null until a stop), chat responses prompt_logprobs,
# a completions top_logprobs dict holds the sampled token too, usage counts
# every generated token (logprobs entries), stop strings end with stop_reason,
# logprobs are raw (independent of temperature and penalties, as vLLM v1's)
cat >"$t/shapes.py" <<'PYEOF'
import json, sys, urllib.request
U = sys.argv[1]
def post(path, body, stream=False):
    r = urllib.request.urlopen(urllib.request.Request(U + path, json.dumps(body).encode(),
        {"Content-Type": "application/json"}), timeout=60)
    if not stream:
        return json.load(r)
    return [json.loads(l[6:]) for l in r.read().decode().split("\n") if l.startswith("data: {")]
bad = []
chunks = post("/v1/completions", {"prompt": "shape test", "max_tokens": 4, "stream": True, "echo": True,
    "ignore_eos": True}, True)
if not all("stop_reason" in c["choices"][0] and c["choices"][0]["stop_reason"] is None for c in chunks if c["choices"]):
    bad.append("completions chunks without stop_reason null: %s" % json.dumps(chunks)[:300])
c = post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
if "prompt_logprobs" not in c or c["prompt_logprobs"] is not None:
    bad.append("chat prompt_logprobs: %s" % json.dumps(c)[:300])
r = post("/v1/completions", {"prompt": "sampled logprobs", "max_tokens": 6, "temperature": 1.5, "seed": 3,
    "logprobs": 2, "ignore_eos": True})
lp = r["choices"][0]["logprobs"]
if not all(tok in top and len(top) in (2, 3) for tok, top in zip(lp["tokens"], lp["top_logprobs"])):
    bad.append("sampled token missing from top_logprobs: %s" % json.dumps(lp)[:400])
if r["usage"]["completion_tokens"] != len(lp["tokens"]) or r["usage"]["total_tokens"] != r["usage"]["prompt_tokens"] + 6:
    bad.append("usage: %s" % json.dumps(r["usage"]))
# logprobs are the model's raw ones (vLLM v1): the first position's top_logprobs
# do not depend on temperature or penalties
a0 = post("/v1/completions", {"prompt": "raw logprobs", "max_tokens": 1, "temperature": 0, "logprobs": 3})
a1 = post("/v1/completions", {"prompt": "raw logprobs", "max_tokens": 1, "temperature": 2.0, "seed": 9,
    "presence_penalty": 1.5, "logprobs": 3})
t0 = a0["choices"][0]["logprobs"]["top_logprobs"][0]; t1 = a1["choices"][0]["logprobs"]["top_logprobs"][0]
if not all(k in t1 and abs(t1[k] - v) < 1e-4 for k, v in t0.items()):
    bad.append("logprobs depend on sampling params: %s vs %s" % (json.dumps(t0), json.dumps(t1)))
c0 = post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1,
    "temperature": 0, "logprobs": True, "top_logprobs": 2})["choices"][0]["logprobs"]["content"][0]
c1 = post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1,
    "temperature": 3.0, "seed": 4, "logprobs": True, "top_logprobs": 2})["choices"][0]["logprobs"]["content"][0]
if [round(x["logprob"], 4) for x in c0["top_logprobs"]] != [round(x["logprob"], 4) for x in c1["top_logprobs"]]:
    bad.append("chat top_logprobs depend on temperature: %s vs %s" % (json.dumps(c0), json.dumps(c1)))
g = post("/v1/completions", {"prompt": "The quick brown fox", "max_tokens": 12, "temperature": 0})["choices"][0]["text"]
if len(g) > 3:
    stop = g[2:4]
    s = post("/v1/completions", {"prompt": "The quick brown fox", "max_tokens": 12, "temperature": 0, "stop": [stop]})
    ch = s["choices"][0]
    if ch["finish_reason"] != "stop" or ch["stop_reason"] != stop or ch["text"] != g[:g.index(stop)]:
        bad.append("stop string: %s vs %r" % (json.dumps(ch), g))
print("\n".join(bad) if bad else "ok")
PYEOF
res=$(/usr/bin/python3 "$t/shapes.py" "$U" 2>&1)
[ "$res" = ok ] && ok || no "response shapes: $res"

# the openai npm client
if [ -d "$S/tests/node/node_modules/openai" ]; then
	expj=$(printf '%s' "$exp" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"prompt":"The quick brown fox","max_tokens":12,"text":d["text"]}))')
	if node "$S/tests/node/openai-serve.mjs" "$U" tiny "$expj" >"$t/node.log" 2>&1; then ok; else no "openai client"; fi
	cat "$t/node.log" | tail -20
	line=$(grep -E '^openai-serve: [0-9]+ passed' "$t/node.log")
	np=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line"); nf=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	pass=$((pass + ${np:-0})); fail=$((fail + ${nf:-0}))
else
	echo "SKIP: openai npm client not installed (scripts/deps installs it)"
fi

# SIGTERM: graceful exit 0
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] && ok || no "exit status after SIGTERM: $rc"
grep -q "Sanitizer\|runtime error" "$t/serve.log" && { no "sanitizer report in the engine log"; grep -A20 "Sanitizer\|runtime error" "$t/serve.log" | head -40; } || ok
echo "engine-serve: $pass passed, $fail failed"
[ $fail -eq 0 ]
