#!/bin/sh
# tests/integration/engine-badfiles.sh - broken model directories (truncated
# safetensors, header larger than the file, unsupported dtype, wrong shapes,
# garbage or unsupported config.json) and bad generate arguments give a clear
# error naming the file (and tensor), exit status 1 or 2, never a crash;
# serve with a device or tensor parallelism the build lacks exits 2.
set -u
b=${top_builddir:-.}
py=/usr/bin/python3
eng="$b/llmd-engine"
pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/engine-badfiles.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# expect NAME STATUS PATTERN... -- ARGS: llmd-engine ARGS exits with STATUS
# and stderr contains every PATTERN (fixed strings).
expect() {
	name=$1 want=$2
	shift 2
	pats=""
	while [ "$1" != "--" ]; do
		pats="$pats$1
"
		shift
	done
	shift
	"$eng" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -ne "$want" ]; then
		echo "FAIL: $name: exit status $rc, want $want: $(tail -3 "$tmp/err")"
		fail=$((fail+1))
		return
	fi
	bad=0
	if grep -qE 'Sanitizer|runtime error' "$tmp/err"; then
		echo "FAIL: $name: sanitizer report: $(head -5 "$tmp/err")"
		bad=1
	fi
	printf '%s' "$pats" | while IFS= read -r p; do
		[ -z "$p" ] && continue
		grep -qF -- "$p" "$tmp/err" || { echo "FAIL: $name: stderr lacks '$p': $(cat "$tmp/err")"; exit 1; }
	done || bad=1
	if [ $bad -eq 0 ]; then pass=$((pass+1)); else fail=$((fail+1)); fi
}

fresh() {
	rm -rf "$tmp/m"
	cp -r "$tmp/good" "$tmp/m"
}

gen() {
	echo generate --model "$tmp/m" --prompt-ids '[1,2,3]' --max-tokens 2 --temperature 0
}

if ! "$eng" make-model --arch llama --out "$tmp/good" --vocab 256 --hidden 32 2>"$tmp/err"; then
	echo "FAIL: make-model: $(cat "$tmp/err")"
	echo "engine-badfiles: 0 passed, 1 failed"
	exit 1
fi
st="$tmp/m/model.safetensors"

fresh
expect good 0 -- $(gen)

fresh
size=$(wc -c <"$st")
truncate -s $((size - 100)) "$st"
expect truncated 1 "$st" "tensor lm_head.weight" "truncated file" -- $(gen)

fresh
printf '\377\377\377\377\000\000\000\000' | dd of="$st" bs=1 count=8 conv=notrunc 2>/dev/null
expect header-larger-than-file 1 "$st" "larger than the file" -- $(gen)

fresh
"$py" - "$st" <<'EOF'
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
i = d.index(b'"BF16"', 8)
d[i:i + 6] = b'"I16" '
open(p, "wb").write(d)
EOF
expect unsupported-dtype 1 "$st" "unsupported dtype I16" -- $(gen)

fresh
sed -i 's/"intermediate_size":[^,]*/"intermediate_size": 100/' "$tmp/m/config.json"
expect wrong-shape 1 "$st" "tensor model.layers.0.mlp.gate_proj.weight: shape [96, 32], expected [100, 32]" -- $(gen)

fresh
sed -i 's/"num_hidden_layers":[^,]*/"num_hidden_layers": 3/' "$tmp/m/config.json"
expect missing-tensor 1 "$st" "tensor model.layers.2.input_layernorm.weight: missing" -- $(gen)

fresh
echo '{"architectures": ["LlamaForCausalLM"], "hidden_size": ' >"$tmp/m/config.json"
expect garbage-config 1 "$tmp/m/config.json" "not a JSON object" -- $(gen)

fresh
sed -i 's/LlamaForCausalLM/GPT2LMHeadModel/' "$tmp/m/config.json"
expect unsupported-arch 1 "$tmp/m/config.json" "GPT2LMHeadModel is not supported" -- $(gen)

fresh
rm "$st"
expect no-weights 1 "$st" "cannot open" -- $(gen)

fresh
expect token-out-of-vocab 1 "out of vocabulary" -- generate --model "$tmp/m" \
	--prompt-ids '[1,999]' --max-tokens 1
expect bad-prompt-ids 2 "--prompt-ids" -- generate --model "$tmp/m" --prompt-ids '[1,"x"]'
expect no-prompt 2 "--prompt" -- generate --model "$tmp/m"
expect cuda-unavailable 1 "cuda" -- generate --model "$tmp/m" --prompt-ids '[1]' --device cuda
expect bad-arch 2 "--arch" -- make-model --arch gpt2 --out "$tmp/x"
# combinations this build does not support are usage errors (exit 2)
if ! grep -q '^#define HAVE_CUDA 1' "$b/config.h" 2>/dev/null; then
	expect serve-cuda-unbuilt 2 "--device" "built without CUDA" -- serve "$tmp/m" \
		--device cuda --port 0
	expect serve-tp-unbuilt 2 "--tensor-parallel-size 2" "NCCL" -- serve "$tmp/m" \
		--tensor-parallel-size 2 --port 0
fi

echo "engine-badfiles: $pass passed, $fail failed"
[ $fail -eq 0 ]
