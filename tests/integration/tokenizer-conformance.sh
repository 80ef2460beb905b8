#!/bin/sh
# tests/integration/tokenizer-conformance.sh - llmd-engine tokenize and
# detokenize: CLI contract on the shipped Qwen3 tokenizer (byte-exact stdin,
# errors and exit statuses), then conformance with @huggingface/tokenizers
# (npm, tests/node) on Qwen3, Llama-3 and SentencePiece-style tokenizers.
# Exit 77 (skip) when node or the npm packages are not available.
set -u
src=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
b=${top_builddir:-.}
engine=$(cd "$b" && pwd)/llmd-engine
qwen=$src/etc/tokenizers/qwen3
work=$(mktemp -d "${TMPDIR:-/tmp}/llmd-tokconf-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
pass=0
fail=0

check() { # name expected actual
	if [ "$2" = "$3" ]; then pass=$((pass+1)); else echo "FAIL: $1: got '$3', want '$2'"; fail=$((fail+1)); fi
}
status() { # name expected-status command...
	name=$1; want=$2; shift 2
	"$@" >"$work/out" 2>"$work/err"
	st=$?
	check "$name (exit status)" "$want" "$st"
	if [ "$want" -ne 0 ] && [ ! -s "$work/err" ]; then echo "FAIL: $name: no error message"; fail=$((fail+1)); fi
}

check "empty input" "[]" "$(printf '' | "$engine" tokenize --model "$qwen")"
check "lone newline" "[198]" "$(printf '\n' | "$engine" tokenize --model "$qwen")"
check "trailing space kept" "[9707,220]" "$(printf 'Hello ' | "$engine" tokenize --model "$qwen")"
check "special tokens" "[151644,872,198]" "$(printf '<|im_start|>user\n' | "$engine" tokenize --model "$qwen" --add-special-tokens)"
printf 'Hi \xf0\x9f\x91\x8b\n\n  end ' > "$work/text"
"$engine" tokenize --model "$qwen" < "$work/text" > "$work/ids"
"$engine" detokenize --model "$qwen" < "$work/ids" > "$work/back"
if cmp -s "$work/text" "$work/back"; then pass=$((pass+1)); else echo "FAIL: round trip not byte-exact"; fail=$((fail+1)); fi
check "detokenize skip special" "Hello" "$(echo '[151644,9707,151645]' | "$engine" detokenize --model "$qwen" --skip-special-tokens)"
status "invalid UTF-8" 1 sh -c "printf 'a\\377b' | '$engine' tokenize --model '$qwen'"
status "detokenize garbage" 1 sh -c "echo '[1, \"x\"]' | '$engine' detokenize --model '$qwen'"
status "detokenize id out of range" 1 sh -c "echo '[999999999]' | '$engine' detokenize --model '$qwen'"
mkdir -p "$work/bad"
echo '{"model": {"type": "BPE", "vocab": ' > "$work/bad/tokenizer.json"
status "garbage tokenizer.json" 1 sh -c "echo hi | '$engine' tokenize --model '$work/bad'"
status "missing tokenizer.json" 1 sh -c "echo hi | '$engine' tokenize --model '$work/nonexistent'"
status "no --model" 2 "$engine" tokenize
status "unknown flag" 2 "$engine" detokenize --model "$qwen" --bogus
echo "tokenizer-cli: $pass passed, $fail failed"
[ $fail -eq 0 ] || exit 1

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "SKIP: node/npm not found: conformance with @huggingface/tokenizers not run"
	exit 77
fi
# Install next to the scripts when the source tree is writable, else in $work.
nodedir=$src/tests/node
if ! touch "$nodedir/.write-test" 2>/dev/null; then
	cp "$nodedir"/package.json "$nodedir"/*.mjs "$work/" && nodedir=$work
else
	rm -f "$nodedir/.write-test"
fi
if ! (cd "$nodedir" && timeout 300 npm install --no-audit --no-fund --no-package-lock \
	--fetch-retries=1 --fetch-timeout=30000 >"$work/npm.log" 2>&1); then
	tail -5 "$work/npm.log"
	echo "SKIP: npm install failed (offline?): conformance with @huggingface/tokenizers not run"
	exit 77
fi
node "$nodedir/conformance.mjs" "$engine" "$work/conformance"
