# tests/integration/router-lib.sh - shared by the router-*.sh tests: a temp
# dir, simulated engines on port 0, the router on port 0, pass/fail counters
# and cleanup of every process started. Sourced, not run.
B=${top_builddir:-.}
S=${top_srcdir:-.}
ENGINE=${LLMD_TEST_ENGINE:-$B/llmd-engine}
ROUTER=${LLMD_TEST_ROUTER:-$B/llmd-router}
pass=0 fail=0
ok() { pass=$((pass+1)); }
no() { fail=$((fail+1)); echo "FAIL: $*"; }
t=$(mktemp -d /tmp/llmd-router-test.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$t"
}
trap cleanup EXIT

# make_model: a simulated model dir (config + tokenizer) in $t/m, full weights in $t/full
make_model() {
	"$ENGINE" make-model --arch llama --out "$t/full" --layers 1 --hidden 32 --heads 2 \
		--kv-heads 1 --intermediate 64 >/dev/null 2>&1 || { echo "make-model failed"; exit 1; }
	mkdir -p "$t/m"
	cp "$t/full/config.json" "$t/full/tokenizer.json" "$t/full/tokenizer_config.json" "$t/m/"
}

# wait_port FILE: the last line of FILE once it is there
wait_port() {
	for _ in $(seq 200); do [ -s "$1" ] && break; sleep 0.05; done
	tail -1 "$1"
}

# start_engine NAME ARGS...: a --simulate engine; sets ${NAME}_port and ${NAME}_pid
start_engine() {
	local name=$1; shift
	"$ENGINE" serve "$t/m" --simulate --host 127.0.0.1 --port 0 "$@" \
		>"$t/$name.port" 2>"$t/$name.log" &
	local pid=$!
	pids+=("$pid")
	eval "${name}_pid=$pid"
	eval "${name}_port=$(wait_port "$t/$name.port")"
}

# start_router CONFIG [ARGS...]: sets R (base URL), router_pid
start_router() {
	local cfg=$1; shift
	"$ROUTER" --config "$cfg" --listen 127.0.0.1:0 "$@" >"$t/router.port" 2>"$t/router.log" &
	router_pid=$!
	pids+=("$router_pid")
	R="http://127.0.0.1:$(wait_port "$t/router.port")"
	sleep 0.3   # first metric scrapes
}

# dest FILE: the x-gateway-destination-endpoint of a curl -D dump
dest() { tr -d '\r' <"$1" | sed -n 's/^x-gateway-destination-endpoint: //p'; }

sanitizer_check() {
	if grep -q "ERROR: AddressSanitizer\|runtime error:" "$t/router.log"; then
		no "sanitizer report in the router log"
		grep -A20 "ERROR: AddressSanitizer\|runtime error:" "$t/router.log" | head -40
	fi
}
