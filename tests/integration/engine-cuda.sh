#!/bin/bash
# tests/integration/engine-cuda.sh - llmd-engine with --device cuda end to
# end: `generate` gives the CPU's greedy tokens on a tiny qwen3 model, and
# `serve --device cuda` answers /health and a greedy completion with the
# same text as `serve --device cpu`.
# Skips (exit 77) with the reason when this build has no CUDA or the machine
# no GPU. Logit-level comparison of every architecture is
# tests/unit/test-cuda-backend.
set -u
B=${top_builddir:-.}
eng="$B/llmd-engine"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { echo "FAIL: $*"; fail=$((fail + 1)); }

if ! grep -q '^#define HAVE_CUDA 1' "$B/config.h" 2>/dev/null; then
	echo "SKIP: engine-cuda: this build has no CUDA (configure --with-cuda)"
	exit 77
fi
if ! nvidia-smi -L >/dev/null 2>&1; then
	echo "SKIP: engine-cuda: no NVIDIA GPU on this machine (nvidia-smi -L failed)"
	exit 77
fi

t=$(mktemp -d "${TMPDIR:-/tmp}/engine-cuda.XXXXXX")
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$t"; }
trap cleanup EXIT

"$eng" make-model --arch qwen3 --out "$t/model" --layers 2 --hidden 64 --heads 4 \
	--kv-heads 2 --intermediate 128 --seed 7 >/dev/null 2>"$t/mk.log" ||
	{ cat "$t/mk.log"; echo "engine-cuda: 0 passed, 1 failed"; exit 1; }

# generate: greedy ids on both devices
prompt='[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]'
for dev in cpu cuda; do
	"$eng" generate --model "$t/model" --device $dev --max-tokens 24 --temperature 0 \
	    --print-ids --prompt-ids "$prompt" >"$t/gen-$dev.out" 2>"$t/gen-$dev.err" ||
	    { no "generate --device $dev"; cat "$t/gen-$dev.err"; }
done
ids() { tail -1 "$1" | sed -n 's/.*"output_ids":\(\[[^]]*\]\).*/\1/p'; }
a=$(ids "$t/gen-cpu.out") c=$(ids "$t/gen-cuda.out")
if [ -n "$a" ] && [ "$a" = "$c" ]; then ok; else no "generate ids cpu $a cuda $c"; fi

# serve: same greedy completion on both devices
serve() { # dev
	"$eng" serve "$t/model" --device "$1" --host 127.0.0.1 --port 0 --max-model-len 512 \
	    >"$t/port-$1" 2>"$t/serve-$1.log" &
	pids="$pids $!"
	for _ in $(seq 300); do [ -s "$t/port-$1" ] && break; sleep 0.1; done
	P=$(tail -1 "$t/port-$1")
	for _ in $(seq 300); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.1; done
	curl -sf "http://127.0.0.1:$P/health" >/dev/null && ok || { no "health --device $1"; tail -20 "$t/serve-$1.log"; }
	curl -s -H 'Content-Type: application/json' -d "{\"model\":\"$t/model\",\"prompt\":[1,2,3,4,5,6,7,8],\"max_tokens\":16,\"temperature\":0}" \
	    "http://127.0.0.1:$P/v1/completions" >"$t/comp-$1.json"
}
serve cpu
serve cuda
tc=$(sed -n 's/.*"text":"\([^"]*\)".*/\1/p' "$t/comp-cpu.json")
tg=$(sed -n 's/.*"text":"\([^"]*\)".*/\1/p' "$t/comp-cuda.json")
if grep -q '"choices"' "$t/comp-cuda.json" && [ "$tc" = "$tg" ]; then ok; else
	no "completion cpu '$(head -c 200 "$t/comp-cpu.json")' cuda '$(head -c 200 "$t/comp-cuda.json")'"; fi

echo "engine-cuda: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
