#!/bin/bash
# tests/integration/engine-simulate.sh - llmd-engine serve --simulate on a
# model directory holding only config + tokenizer: the latency model replaces
# the forward pass while tokenizer, scheduler, KV/prefix-cache accounting, API
# and metrics stay real. 32 concurrent streams finish with exact usage; the
# KV gauge returns to 0; prefix hits are counted; seeded outputs repeat.
set -u
B=${top_builddir:-.}
pass=0 fail=0
ok() { pass=$((pass+1)); }
no() { fail=$((fail+1)); echo "FAIL: $*"; }
t=$(mktemp -d /tmp/llmd-sim-test.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$t"' EXIT

"$B/llmd-engine" make-model --arch llama --out "$t/full" --layers 1 --hidden 32 --heads 2 --kv-heads 1 \
	--intermediate 64 >/dev/null 2>&1
mkdir -p "$t/m"
cp "$t/full/config.json" "$t/full/tokenizer.json" "$t/full/tokenizer_config.json" "$t/m/"
"$B/llmd-engine" serve "$t/m" --simulate --host 127.0.0.1 --port 0 --served-model-name sim \
	--sim-ttft-ms 5 --sim-itl-ms 2 --sim-jitter 0.2 --max-num-seqs 16 >"$t/port" 2>"$t/log" &
pid=$!
for _ in $(seq 100); do [ -s "$t/port" ] && break; sleep 0.05; done
U="http://127.0.0.1:$(tail -1 "$t/port")"
curl -sf "$U/health" >/dev/null && ok || { no "health"; cat "$t/log"; }
grep -q "\[simulated\]" "$t/log" && ok || no "simulated KV pool logged"

for i in $(seq 32); do
	curl -s -N -H 'Content-Type: application/json' \
		-d "{\"model\":\"sim\",\"prompt\":\"shared prefix shared prefix shared prefix shared prefix shared prefix $i\",\"max_tokens\":12,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" \
		"$U/v1/completions" >"$t/s$i" &
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null
good=0
for i in $(seq 32); do
	grep -q '"completion_tokens":12' "$t/s$i" && grep -q '^data: \[DONE\]' "$t/s$i" && good=$((good+1))
done
[ $good = 32 ] && ok || no "only $good of 32 streams finished with usage 12"
m=$(curl -s "$U/metrics")
grep -q 'vllm:kv_cache_usage_perc{model_name="sim",engine="0"} 0$' <<<"$m" && ok || no "kv usage back to 0"
grep -q 'vllm:request_success_total{model_name="sim",engine="0",finished_reason="length"} 32' <<<"$m" && ok || no "32 successes"
grep -q 'vllm:generation_tokens_total{model_name="sim",engine="0"} 384' <<<"$m" && ok || no "generation tokens 384"
a=$(curl -s -d '{"prompt":"x","max_tokens":6,"seed":5}' "$U/v1/completions" | sed 's/.*"text":"\([^"]*\)".*/\1/')
b=$(curl -s -d '{"prompt":"x","max_tokens":6,"seed":5}' "$U/v1/completions" | sed 's/.*"text":"\([^"]*\)".*/\1/')
[ -n "$a" ] && [ "$a" = "$b" ] && ok || no "seeded simulated text repeats ($a / $b)"
kill -TERM $pid; wait $pid; rc=$?; pid=
[ $rc = 0 ] && ok || no "SIGTERM exit $rc"
echo "engine-simulate: $pass passed, $fail failed"
[ $fail = 0 ]
