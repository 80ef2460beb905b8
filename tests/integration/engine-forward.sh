#!/bin/sh
# tests/integration/engine-forward.sh - forward-pass conformance of
# llmd-engine against tests/ref/forward_ref.py, an independent float32 numpy
# implementation, for each architecture (llama, qwen2, qwen3, mistral (also with
# a sliding window)), with
# llama3 RoPE scaling, tied embeddings, GQA/MQA, BF16/F16/F32 weights, chunked
# prefill across KV blocks and a sharded checkpoint.
#
# For each case, a tiny random model from `llmd-engine make-model` generates
# 32 greedy tokens; the reference runs prompt + output through the model and
# requires, at every step:
#   |engine logit - reference logit| <= 2e-3 + 2e-3 * |reference logit|
#   (measured: under 1e-5 with these models), and the engine's token equal to
#   the reference argmax unless the reference's top-2 margin is below 1e-2.
set -u
b=${top_builddir:-.}
s=${top_srcdir:-.}
py=/usr/bin/python3
eng="$b/llmd-engine"
pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/engine-forward.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

if ! "$py" -c 'import numpy' 2>/dev/null; then
	echo "engine-forward: numpy not available in $py, skipped"
	exit 77
fi

ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }

prompt='[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]'

# check NAME MODEL_DIR GENERATE_ARGS...: 32 greedy tokens vs the reference.
check() {
	name=$1 dir=$2
	shift 2
	if ! "$eng" generate --model "$dir" --max-tokens 32 --temperature 0 --print-ids \
	    --dump-logits "$tmp/$name.logits" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
		ko "$name: generate failed: $(tail -3 "$tmp/$name.err")"
		return
	fi
	line=$(tail -n 1 "$tmp/$name.out")
	pids=$(printf '%s' "$line" | "$py" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["prompt_ids"]))')
	oids=$(printf '%s' "$line" | "$py" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["output_ids"]))')
	if [ -z "$oids" ] || [ "$oids" = "[]" ]; then
		ko "$name: no output ids in '$line'"
		return
	fi
	if "$py" "$s/tests/ref/forward_ref.py" "$dir" "$pids" "$oids" "$tmp/$name.logits" \
	    >"$tmp/$name.ref" 2>&1; then
		ok
	else
		ko "$name: $(head -5 "$tmp/$name.ref")"
	fi
	echo "$name: $(tail -n 1 "$tmp/$name.ref")"
}

mk() {
	dir=$1
	shift
	if ! "$eng" make-model --out "$dir" "$@" 2>"$tmp/mk.err"; then
		ko "make-model $*: $(cat "$tmp/mk.err")"
		return 1
	fi
}

mk "$tmp/llama" --arch llama --vocab 2048 --seed 11 &&
	check llama "$tmp/llama" --prompt-ids "$prompt" --threads 2
mk "$tmp/llama3" --arch llama --vocab 2048 --seed 12 --rope-scaling llama3 --tie \
	--layers 3 --hidden 128 --heads 8 --kv-heads 2 &&
	check llama3-tied "$tmp/llama3" --prompt-ids "$prompt" --batch 7
mk "$tmp/qwen2" --arch qwen2 --vocab 2048 --seed 13 --dtype f16 &&
	check qwen2-f16 "$tmp/qwen2" --prompt-ids "$prompt" --threads 1
mk "$tmp/qwen3" --arch qwen3 --vocab 2048 --seed 14 --head-dim 32 --heads 4 --kv-heads 2 &&
	check qwen3 "$tmp/qwen3" --prompt-ids "$prompt" --batch 16
mk "$tmp/mistral" --arch mistral --vocab 2048 --seed 15 --dtype f32 --kv-heads 1 &&
	check mistral-f32-mqa "$tmp/mistral" --prompt-ids "$prompt"
mk "$tmp/mistral-swa" --arch mistral --vocab 2048 --seed 17 --sliding-window 6 &&
	check mistral-sliding-window "$tmp/mistral-swa" --prompt-ids "$prompt" --batch 8
# the shipped tokenizer's full vocabulary (151k) and a text prompt
mk "$tmp/qwen3-tok" --arch qwen3 --layers 1 --seed 16 --tie &&
	check qwen3-text "$tmp/qwen3-tok" --prompt "The quick brown fox jumps over the lazy dog"

# a stop string ends the streamed text right before it (--print-ids text is the
# decode of the output ids; the stop string is taken from its middle)
if [ -s "$tmp/qwen3-text.out" ]; then
	tail -n 1 "$tmp/qwen3-text.out" >"$tmp/qwen3-text.json"
	stop=$("$py" -c 'import json,sys; t=json.load(open(sys.argv[1]))["text"]; print(t[len(t)//2:len(t)//2+3])' "$tmp/qwen3-text.json")
	"$eng" generate --model "$tmp/qwen3-tok" --max-tokens 32 --temperature 0 \
	    --prompt "The quick brown fox jumps over the lazy dog" --stop "$stop" \
	    >"$tmp/stop.out" 2>"$tmp/stop.err"
	if "$py" -c '
import json, sys
out = open(sys.argv[1], encoding="utf-8").read()
text = json.load(open(sys.argv[2]))["text"]
stop = sys.argv[3]
want = text[:text.find(stop)] + "\n"
if out != want or "finish: stop" not in open(sys.argv[4]).read():
    print("got %r, want %r" % (out, want))
    sys.exit(1)
' "$tmp/stop.out" "$tmp/qwen3-text.json" "$stop" "$tmp/stop.err"; then
		ok
	else
		ko "stop string '$stop': $(cat "$tmp/stop.err")"
	fi
fi

# a sharded checkpoint gives the same tokens and logits as the single file
if [ -d "$tmp/llama" ]; then
	mkdir -p "$tmp/sharded"
	cp "$tmp/llama"/*.json "$tmp/sharded/"
	if "$py" "$s/tests/ref/reshard.py" "$tmp/llama/model.safetensors" "$tmp/sharded" 3 &&
	    "$eng" generate --model "$tmp/sharded" --max-tokens 32 --temperature 0 --print-ids \
	    --prompt-ids "$prompt" --threads 2 --dump-logits "$tmp/sharded.logits" \
	    >"$tmp/sharded.out" 2>"$tmp/sharded.err" &&
	    [ "$(tail -n 1 "$tmp/sharded.out")" = "$(tail -n 1 "$tmp/llama.out")" ] &&
	    cmp -s "$tmp/sharded.logits" "$tmp/llama.logits"; then
		ok
	else
		ko "sharded checkpoint differs from the single file: $(tail -3 "$tmp/sharded.err")"
	fi
fi

echo "engine-forward: $pass passed, $fail failed"
[ $fail -eq 0 ]
