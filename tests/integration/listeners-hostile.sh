#!/bin/bash
# tests/integration/listeners-hostile.sh - hostile input on the listeners of
# llmd-agent (its log/health server) and llmd-router (the gateway, which
# also serves /metrics and /healthz; the TLS gateway; the P/D sidecar),
# in the style of daemon-auth.sh for the daemon's: oversized headers (one
# huge, very many), an oversized body, malformed request lines, bad
# Content-Length, chunked garbage, partial requests closed early and left
# open (slowloris), path traversal, non-UTF-8 bytes, TLS garbage and TLS
# handshakes left unfinished. Each case must get a 4xx or a clean close
# (never a 5xx, a hang or a crash), and the process must answer a normal
# request right after it, stay alive, and exit cleanly (no sanitizer report).
set -u
b=${top_builddir:-.}
src=${top_srcdir:-..}
b=$(cd "$b" && pwd)
command -v python3 >/dev/null || { echo "SKIP: python3 needed for raw sockets"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }

tmp=$(mktemp -d /tmp/llmd-listeners-hostile.XXXXXX)
pass=0
fail=0
pids=()
ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && break; sleep 0.05; done; tail -1 "$1"; }

# hostile.py HOST PORT HEALTH_PATH JSON_PATH PREFIX [tls]: one line per case
# (PREFIX: where paths are proxied or looked up, e.g. a route),
# "CASE RESULT HEALTH": RESULT the status code, "close" (the server closed
# without answering) or "timeout"; HEALTH the status of a normal GET after it.
cat >"$tmp/hostile.py" <<'PY'
import socket, ssl, sys, time
HOST, PORT, HEALTH, JSONP = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
PREFIX = sys.argv[5]
TLS = len(sys.argv) > 6 and sys.argv[6] == "tls"
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE

def conn(timeout=5.0):
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    if TLS:
        s = CTX.wrap_socket(s, server_hostname=HOST)
    return s

def status_of(s, wait=5.0):
    s.settimeout(wait)
    data = b""
    try:
        while b"\r\n" not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except socket.timeout:
        return "timeout" if not data else "partial"
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
        pass
    if not data:
        return "close"
    parts = data.split(b" ", 2)
    return parts[1].decode("ascii", "replace") if len(parts) > 1 and data.startswith(b"HTTP/") else "garbage"

def send(payload, parts=None, wait=5.0):
    """Sends payload (bytes or a list of pieces), returns the result."""
    try:
        s = conn()
    except OSError as e:
        return "noconnect"
    try:
        for p in (payload if isinstance(payload, list) else [payload]):
            s.sendall(p)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        pass   # the server stopped reading: see what it said
    r = status_of(s, wait)
    s.close()
    return r

def health():
    try:
        s = conn()
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % HEALTH).encode())
        r = status_of(s)
        s.close()
        return r
    except OSError:
        return "down"

H = "Host: x\r\n"
cases = [
    ("huge-header", ("GET %s HTTP/1.1\r\n%sX-Big: " % (HEALTH, H)).encode() + b"a" * (1 << 20) + b"\r\n\r\n"),
    ("many-headers", ("GET %s HTTP/1.1\r\n%s" % (HEALTH, H)).encode() +
        b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n"),
    ("huge-uri", b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n" + H.encode() + b"\r\n"),
    ("huge-body", [("POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\n"
        "Content-Length: 67108864\r\n\r\n" % (JSONP, H)).encode()] + [b"x" * (1 << 20)] * 8),
    ("huge-body-declared", ("POST %s HTTP/1.1\r\n%sContent-Length: 99999999999\r\n\r\n{}" % (JSONP, H)).encode()),
    ("garbage-line", b"GARBAGE\r\n\r\n"),
    ("no-version", b"GET\r\n\r\n"),
    ("bad-version", ("GET %s HTTP/9.9\r\n%s\r\n" % (HEALTH, H)).encode()),
    ("extra-words", ("GET %s HTTP/1.1 extra\r\n%s\r\n" % (HEALTH, H)).encode()),
    ("binary-line", bytes(range(1, 32)) + b"\xff\xfe\r\n\r\n"),
    ("nul-in-line", b"GET /\x00/../ HTTP/1.1\r\n" + H.encode() + b"\r\n"),
    ("header-no-colon", ("GET %s HTTP/1.1\r\n%sNoColonHere\r\n\r\n" % (HEALTH, H)).encode()),
    ("cl-negative", ("POST %s HTTP/1.1\r\n%sContent-Length: -1\r\n\r\n{}" % (JSONP, H)).encode()),
    ("cl-letters", ("POST %s HTTP/1.1\r\n%sContent-Length: abc\r\n\r\n{}" % (JSONP, H)).encode()),
    ("cl-overflow", ("POST %s HTTP/1.1\r\n%sContent-Length: 184467440737095516160\r\n\r\n{}" % (JSONP, H)).encode()),
    ("cl-conflict", ("POST %s HTTP/1.1\r\n%sContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}" % (JSONP, H)).encode()),
    ("chunked-garbage", ("POST %s HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n0\r\n\r\n" % (JSONP, H)).encode()),
    ("chunked-huge-size", ("POST %s HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\nxx\r\n" % (JSONP, H)).encode()),
    ("chunked-negative", ("POST %s HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n-5\r\nxx\r\n0\r\n\r\n" % (JSONP, H)).encode()),
    ("chunked-and-cl", ("POST %s HTTP/1.1\r\n%sContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" % (JSONP, H)).encode()),
    ("te-unknown", ("POST %s HTTP/1.1\r\n%sTransfer-Encoding: gzip, bogus\r\n\r\nxx" % (JSONP, H)).encode()),
    ("traversal", ("GET /../../../../etc/passwd HTTP/1.1\r\n%s\r\n" % H).encode()),
    ("traversal-encoded", ("GET /%%2e%%2e/%%2e%%2e/etc/passwd HTTP/1.1\r\n%s\r\n" % H).encode()),
    ("traversal-logs", ("GET /v1/logs/..%%2f..%%2f..%%2fetc/passwd/x HTTP/1.1\r\n%s\r\n" % H).encode()),
    ("traversal-backslash", ("GET /..\\..\\etc\\passwd HTTP/1.1\r\n%s\r\n" % H).encode()),
    ("non-utf8-path", b"GET /\xff\xfe\xc0\xaf HTTP/1.1\r\n" + H.encode() + b"\r\n"),
    ("non-utf8-query", b"GET /nope?\xff\xfe=\xc3\x28 HTTP/1.1\r\n" + H.encode() + b"\r\n"),
    ("prefixed-traversal", ("GET %s/../../../../etc/passwd HTTP/1.1\r\n%s\r\n" % (PREFIX, H)).encode()),
    ("prefixed-backslash", ("GET %s/..\\..\\etc\\passwd HTTP/1.1\r\n%s\r\n" % (PREFIX, H)).encode()),
    ("prefixed-non-utf8", ("GET %s/" % PREFIX).encode() + b"\xff\xfe\xc0\xaf HTTP/1.1\r\n" + H.encode() + b"\r\n"),
    ("prefixed-space", ("GET %s/a b/c HTTP/1.1\r\n%s\r\n" % (PREFIX, H)).encode()),
    ("non-utf8-body", ("POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: 40\r\n\r\n" % (JSONP, H)).encode()
        + b'{"model":"\xff\xfe\xc3\x28","messages":[]}'.ljust(40)),
]

for name, payload in cases:
    r = send(payload)
    print(name, r, health(), flush=True)

# partial requests closed early
for name, payload in [("partial-line-closed", b"GET /heal"),
                      ("partial-headers-closed", ("GET %s HTTP/1.1\r\n%sX-A: b" % (HEALTH, H)).encode()),
                      ("partial-body-closed", ("POST %s HTTP/1.1\r\n%sContent-Length: 100\r\n\r\n{\"mo" % (JSONP, H)).encode())]:
    try:
        s = conn()
        s.sendall(payload)
        time.sleep(0.05)
        s.close()
    except OSError:
        pass
    print(name, "close", health(), flush=True)

# slowloris: 64 connections each with half a request, left open while a normal request is served
held = []
for i in range(64):
    try:
        s = conn()
        s.sendall(("GET %s HTTP/1.1\r\n%sX-Slow-%d: " % (HEALTH, H, i)).encode())
        held.append(s)
    except OSError:
        break
print("slowloris-open", "close" if len(held) == 64 else "refused%d" % len(held), health(), flush=True)
for s in held:
    try:
        s.sendall(b"a")
    except OSError:
        pass
h = health()
for s in held:
    s.close()
print("slowloris-closed", "close", h, flush=True)
PY

# run_cases NAME PID HOST PORT HEALTH_PATH JSON_PATH PREFIX [tls]
run_cases() {
	local name=$1 pid=$2
	shift 2
	python3 "$tmp/hostile.py" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	[ -s "$tmp/$name.out" ] || ko "$name: the driver printed nothing: $(head -c 400 "$tmp/$name.err")"
	while read -r c r h; do
		case "$r" in
		4[0-9][0-9]|close) ok ;;
		*) ko "$name $c: got '$r', expected a 4xx or a clean close" ;;
		esac
		if [ "$h" = 200 ]; then ok; else ko "$name $c: the normal request after it got '$h'"; fi
	done <"$tmp/$name.out"
	if kill -0 "$pid" 2>/dev/null; then ok; else ko "$name: the process died"; fi
}

sanitizer_check() { # sanitizer_check LOG
	if grep -q "ERROR: [A-Za-z]*Sanitizer\|runtime error:" "$1"; then
		ko "sanitizer report in $(basename "$1"): $(grep -m1 -A6 "ERROR: [A-Za-z]*Sanitizer\|runtime error:" "$1")"
	else ok; fi
}

# --- the daemon and one agent (its log server checks tokens with the daemon) ---
echo "hostile-admin-token" >"$tmp/admin.token"
"$b/llmd" --listen 127.0.0.1:0 --data-dir "$tmp/d" --token-file "$tmp/admin.token" \
    --presets-dir "$src/etc/presets" 2>"$tmp/llmd.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/d/llmd.addr" ] && break; sleep 0.05; done
export LLMD_SERVER="http://$(cat "$tmp/d/llmd.addr")" LLMD_TOKEN=hostile-admin-token
"$b/llmd-admin" node token create --ttl 1h 2>/dev/null | tail -1 >"$tmp/join.token"
"$b/llmd-agent" --server "$LLMD_SERVER" --token-file "$tmp/join.token" --node-name h1 \
    --data-dir "$tmp/a" --address 127.0.0.1 --listen 127.0.0.1:0 --fake-gpus 0 \
    2>"$tmp/agent.log" &
apid=$!
pids+=($apid)
aport=""
for _ in $(seq 100); do
	aport=$(sed -n 's/.*agent API on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/agent.log" | tail -1)
	[ -n "$aport" ] && break
	sleep 0.05
done
[ -n "$aport" ] || { echo "FAIL: agent did not start: $(tail -5 "$tmp/agent.log")"; exit 1; }
run_cases agent "$apid" 127.0.0.1 "$aport" /healthz /v1/logs/default/p /v1/logs/default
# log requests with a token, dropped while the agent asks the daemon about it
python3 - 127.0.0.1 "$aport" <<'PY'
import socket, sys
for i in range(20):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    s.sendall(b"GET /v1/logs/default/p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t%d\r\n\r\n" % i)
    s.close()
PY
sleep 0.5
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer hostile-admin-token" \
    "http://127.0.0.1:$aport/v1/logs/default/nopod")
[ "$code" = 404 ] && ok || ko "agent log request after dropped auth checks: $code"
kill -0 "$apid" 2>/dev/null && ok || ko "agent died after dropped auth checks"

# --- the router: gateway (with /metrics), TLS gateway, sidecar ---
"$b/llmd-engine" make-model --arch llama --out "$tmp/full" --layers 1 --hidden 32 --heads 2 \
    --kv-heads 1 --intermediate 64 >/dev/null 2>&1 || { echo "FAIL: make-model"; exit 1; }
"$b/llmd-engine" serve "$tmp/full" --simulate --host 127.0.0.1 --port 0 --served-model-name sim \
    >"$tmp/e.port" 2>"$tmp/e.log" &
pids+=($!)
eport=$(wait_file "$tmp/e.port")
cat >"$tmp/router.yaml" <<EOT
pools:
- name: svc
  endpoints: ["127.0.0.1:$eport"]
  models: [sim]
routes:
- {name: ns/svc, pool: svc}
EOT
"$b/llmd-router" --config "$tmp/router.yaml" --listen 127.0.0.1:0 --max-body 1MiB \
    >"$tmp/router.port" 2>"$tmp/router.log" &
rpid=$!
pids+=($rpid)
rport=$(wait_file "$tmp/router.port")
run_cases router "$rpid" 127.0.0.1 "$rport" /healthz /ns/svc/v1/chat/completions /ns/svc/v1
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$rport/metrics")
[ "$code" = 200 ] && ok || ko "router /metrics after the hostile cases: $code"

if command -v openssl >/dev/null; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	    -subj /CN=127.0.0.1 -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
	"$b/llmd-router" --config "$tmp/router.yaml" --listen 127.0.0.1:0 \
	    --tls-cert "$tmp/tls.crt" --tls-key "$tmp/tls.key" \
	    >"$tmp/router-tls.port" 2>"$tmp/router-tls.log" &
	tpid=$!
	pids+=($tpid)
	tport=$(wait_file "$tmp/router-tls.port")
	run_cases router-tls "$tpid" 127.0.0.1 "$tport" /healthz /ns/svc/v1/chat/completions /ns/svc/v1 tls
	# not TLS at all on the TLS port: plain HTTP, garbage, a truncated ClientHello
	python3 - 127.0.0.1 "$tport" >"$tmp/tls-garbage.out" <<'PY'
import socket, sys
for name, data in [("plain-http", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
                   ("garbage", bytes(range(256)) * 64),
                   ("short-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")]:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    try:
        s.sendall(data)
        if name == "short-hello":
            s.close()
            print(name, "close"); continue
        d = s.recv(4096)
        print(name, "close" if not d or not d.startswith(b"HTTP/1.1 2") else "answered")
    except socket.timeout:
        print(name, "timeout")
    except OSError:
        print(name, "close")
    s.close()
# handshakes that never finish, held open while a normal client connects
held = []
for i in range(32):
    h = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    h.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    held.append(h)
import ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    c = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5))
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    d = c.recv(4096)
    print("stalled-handshakes", "served" if d.startswith(b"HTTP/1.1 200") else "unserved")
except OSError as e:
    print("stalled-handshakes", "unserved:%s" % e)
for h in held:
    h.close()
PY
	while read -r c r; do
		case "$c $r" in
		"stalled-handshakes served"|[a-z-]*" close") ok ;;
		*) ko "router-tls $c: $r" ;;
		esac
	done <"$tmp/tls-garbage.out"
	code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$tport/healthz")
	[ "$code" = 200 ] && ok || ko "TLS router after garbage: $code"
fi

if "$b/llmd-router" sidecar --help >/dev/null 2>&1; then
	"$b/llmd-router" sidecar --port 0 --host 127.0.0.1 --vllm-port "$eport" \
	    --secure-proxy=false >"$tmp/sc.port" 2>"$tmp/sc.log" &
	spid=$!
	pids+=($spid)
	sport=$(wait_file "$tmp/sc.port")
	run_cases sidecar "$spid" 127.0.0.1 "$sport" /health /v1/chat/completions /v1
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$sport/sidecar/metrics")
	[ "$code" = 200 ] && ok || ko "sidecar metrics after the hostile cases: $code"
fi

# a clean exit too (sanitizer builds report leaks then): newest first, the daemon last
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
	kill "${pids[$i]}" 2>/dev/null
	wait "${pids[$i]}" 2>/dev/null
done
pids=()
for f in "$tmp"/*.log; do sanitizer_check "$f"; done

echo "listeners-hostile: $pass passed, $fail failed"
[ "$fail" = 0 ]
