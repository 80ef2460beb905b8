#!/bin/sh
# tests/integration/daemon-tls.sh - llmd's API over HTTPS: the cluster CA and
# server certificate created on first start (and kept across restarts), the
# CLI verifying the server (--certificate-authority, LLMD_CA), CSR signing
# for nodes (join token, admin) with the daemon choosing the subject, mTLS
# with a signed client certificate accepted and a foreign one refused, an
# agent joining over HTTPS with --ca and getting its client certificate, a
# node certificate refused with another node's credential,
# automatic HTTPS on a non-loopback address and --insecure-http; and the
# systemd protocol (READY=1, WATCHDOG=1 keep-alives).
set -u
b=${top_builddir:-.}
LLMD="$b/llmd"
ADMIN="$b/llmd-admin"
command -v openssl >/dev/null || { echo "SKIP: no openssl command"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: no curl command"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: no jq command"; exit 77; }
tmp=$(mktemp -d /tmp/llmd-daemon-tls.XXXXXX)
pass=0
fail=0
pid=""

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { # check DESCRIPTION EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi
}
contains() { # contains DESCRIPTION NEEDLE FILE
	if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in $(head -c 400 "$3")"; fi
}

start() { # start DATADIR LISTEN [ARGS...]
	d=$1
	l=$2
	shift 2
	rm -f "$d/llmd.addr"
	mkdir -p "$d"
	"$LLMD" --listen "$l" --data-dir "$d" "$@" 2>>"$tmp/llmd.log" &
	pid=$!
	i=0
	while [ ! -s "$d/llmd.addr" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
	addr=$(cat "$d/llmd.addr" 2>/dev/null)
	port=${addr##*:}
}

stop() {
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=""
}

echo "admin-secret-token" > "$tmp/token"
ADM="Authorization: Bearer admin-secret-token"
D="$tmp/d1"
start "$D" 127.0.0.1:0 --tls --token-file "$tmp/token"
CA="$D/pki/ca.crt"
U="https://127.0.0.1:$port"

# ---- the PKI on disk ----
for f in ca.crt ca.key server.crt server.key; do
	[ -s "$D/pki/$f" ] && ok || ko "pki/$f missing"
done
check "ca.key mode" 600 "$(stat -c %a "$D/pki/ca.key")"
check "server.key mode" 600 "$(stat -c %a "$D/pki/server.key")"
openssl x509 -in "$D/pki/server.crt" -noout -text > "$tmp/srv.txt"
contains "server cert names 127.0.0.1" "IP Address:127.0.0.1" "$tmp/srv.txt"
contains "server cert names localhost" "DNS:localhost" "$tmp/srv.txt"
check "server cert verifies" OK "$(openssl verify -CAfile "$CA" "$D/pki/server.crt" | sed 's/.*: //')"

# ---- server verification ----
check "https with the CA" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "$U/healthz")"
curl -s -o /dev/null "$U/healthz"
check "https without the CA is refused (curl 60)" 60 "$?"
curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/healthz"
[ $? -ne 0 ] && ok || ko "plain HTTP answered on the HTTPS port"
"$ADMIN" --server "$U" --certificate-authority "$CA" --token admin-secret-token \
    get nodes > "$tmp/out" 2>&1
check "llmd-admin --certificate-authority" 0 "$?"
LLMD_CA="$CA" "$ADMIN" --server "$U" --token admin-secret-token get nodes > "$tmp/out" 2>&1
check "llmd-admin with LLMD_CA" 0 "$?"
"$ADMIN" --server "$U" --token admin-secret-token get nodes > "$tmp/out" 2>&1
[ $? -ne 0 ] && ok || ko "llmd-admin trusted an unknown server certificate"
contains "llmd-admin names the certificate problem" "certificate" "$tmp/out"
curl -s --cacert "$CA" "$U/agent/v1/ca" > "$tmp/ca-served.pem"
check "GET /agent/v1/ca is the CA" "$(cat "$CA")" "$(cat "$tmp/ca-served.pem")"

# ---- CSR signing ----
csr() { # csr NAME: key and CSR asking for CN=evil O=admin
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$tmp/$1.key" -subj "/O=admin/CN=evil" -out "$tmp/$1.csr" 2>/dev/null
	jq -n --rawfile c "$tmp/$1.csr" --arg n "${2:-}" --arg r "${3:-}" \
	    '{csr: $c} + (if $n != "" then {nodeName: $n, commonName: $n} else {} end)
	    + (if $r != "" then {role: $r} else {} end)' > "$tmp/$1.json"
}
post_csr() { # post_csr NAME [AUTH-HEADER] -> $code, reply in $tmp/NAME.out
	code=$(curl -s -o "$tmp/$1.out" -w '%{http_code}' --cacert "$CA" ${2:+-H "$2"} \
	    -H 'Content-Type: application/json' --data-binary "@$tmp/$1.json" \
	    "$U/agent/v1/certificatesigningrequests")
	jq -r '.certificate // empty' "$tmp/$1.out" > "$tmp/$1.crt"
}
subject() { openssl x509 -in "$1" -noout -subject -nameopt sep_comma_plus,space_eq | sed 's/^subject=//'; }

csr anon n1
post_csr anon
check "CSR without a token" 401 "$code"
post_csr anon "Authorization: Bearer not.a-token"
check "CSR with a bad token" 401 "$code"

jt=$(curl -s --cacert "$CA" -H "$ADM" -X POST -d '{"ttl":"1h"}' "$U/agent/v1/tokens" | jq -r .token)
[ -n "$jt" ] && [ "$jt" != null ] && ok || ko "no join token"
csr n1 n1
post_csr n1 "Authorization: Bearer $jt"
check "CSR with a join token" 201 "$code"
check "node cert subject is the daemon's choice" "O = node,CN = n1" "$(subject "$tmp/n1.crt")"
check "node cert verifies" OK "$(openssl verify -CAfile "$CA" -purpose sslclient "$tmp/n1.crt" | sed 's/.*: //')"
csr bad "Bad_Name"
post_csr bad "Authorization: Bearer $jt"
check "CSR for an invalid node name" 422 "$code"
echo '{"csr":"-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----\n","nodeName":"n2"}' > "$tmp/garbage.json"
post_csr garbage "Authorization: Bearer $jt"
check "garbage CSR" 400 "$code"
csr r1 router-1 router
post_csr r1 "$ADM"
check "CSR by the admin" 201 "$code"
check "router cert subject" "O = router,CN = router-1" "$(subject "$tmp/r1.crt")"
csr r2 x superuser
post_csr r2 "$ADM"
check "CSR for an unknown role" 422 "$code"

# ---- mTLS: a CA-signed client certificate is accepted, a foreign one refused ----
check "mTLS with the node cert" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" \
    --cert "$tmp/n1.crt" --key "$tmp/n1.key" "$U/healthz")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/O=node/CN=n1" -keyout "$tmp/evil.key" -out "$tmp/evil.crt" 2>/dev/null
curl -s -o /dev/null --cacert "$CA" --cert "$tmp/evil.crt" --key "$tmp/evil.key" "$U/healthz"
[ $? -ne 0 ] && ok || ko "a client certificate of an unknown CA was accepted"

# ---- an agent joins over HTTPS with --ca and gets its client certificate ----
AG="$b/llmd-agent"
echo "$jt" >"$tmp/join.token"
"$AG" --server "$U" --ca "$CA" --token-file "$tmp/join.token" --node-name tls-n1 \
    --data-dir "$tmp/ag" --fake-gpus 1xH100-80GB --heartbeat-interval 500ms 2>"$tmp/agent.log" &
apid=$!
for _ in $(seq 100); do
	curl -s --cacert "$CA" -H "$ADM" "$U/api/v1/nodes/tls-n1" | grep -q '"type":"Ready","status":"True"' && break
	sleep 0.1
done
curl -s --cacert "$CA" -H "$ADM" "$U/api/v1/nodes/tls-n1" >"$tmp/node.json"
contains "agent over HTTPS registered" '"type":"Ready","status":"True"' "$tmp/node.json"
check "agent's client certificate" "O = node,CN = tls-n1" "$(subject "$tmp/ag/node.crt")"
check "agent's key private" 600 "$(stat -c %a "$tmp/ag/node.key")"
check "agent cert verifies" OK "$(openssl verify -CAfile "$CA" -purpose sslclient "$tmp/ag/node.crt" | sed 's/.*: //')"
grep -q "signed a client certificate CN=tls-n1 O=node" "$tmp/llmd.log" && ok || ko "CSR not logged by llmd"
# a node's certificate goes with that node's credential only
cred=$(head -n 1 "$tmp/ag/credential")
check "own certificate with own credential" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" \
    --cert "$tmp/ag/node.crt" --key "$tmp/ag/node.key" -H "Authorization: Bearer $cred" "$U/api/v1/nodes")"
check "another node's certificate with this credential" 403 "$(curl -s -o "$tmp/out" -w '%{http_code}' \
    --cacert "$CA" --cert "$tmp/n1.crt" --key "$tmp/n1.key" -H "Authorization: Bearer $cred" \
    "$U/agent/v1/heartbeat" -X POST -d '{}')"
contains "403 names both nodes" 'node \\"n1\\" does not go with the credential of node \\"tls-n1\\"' "$tmp/out"
kill "$apid"; wait "$apid" 2>/dev/null

# ---- restart: the same CA and server certificate ----
sum1=$(cat "$D/pki/ca.crt" "$D/pki/server.crt" | md5sum)
stop
start "$D" 127.0.0.1:0 --tls --token-file "$tmp/token"
check "PKI kept across restarts" "$sum1" "$(cat "$D/pki/ca.crt" "$D/pki/server.crt" | md5sum)"
check "restarted https" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "https://127.0.0.1:$port/healthz")"
stop

# ---- the address decides: loopback plain, non-loopback HTTPS unless --insecure-http ----
start "$tmp/d2" 127.0.0.1:0
check "loopback default is plain HTTP" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")"
[ ! -e "$tmp/d2/pki" ] && ok || ko "a plain loopback daemon created a PKI"
stop
start "$tmp/d3" 0.0.0.0:0 --token-file "$tmp/token"
check "wildcard listen serves HTTPS" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/d3/pki/ca.crt" "https://127.0.0.1:$port/healthz")"
stop
start "$tmp/d4" 0.0.0.0:0 --token-file "$tmp/token" --insecure-http
check "--insecure-http serves plain HTTP" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")"
stop
"$LLMD" --listen 127.0.0.1:0 --data-dir "$tmp/d5" --tls-cert "$D/pki/server.crt" 2>"$tmp/err" &
wait $!
[ $? -ne 0 ] && ok || ko "--tls-cert without --tls-key was accepted"
contains "--tls-key named" "tls-key" "$tmp/err"
start "$tmp/d6" 127.0.0.1:0 --tls-cert "$D/pki/server.crt" --tls-key "$D/pki/server.key" \
    --client-ca "$CA"
check "given certificate" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "https://127.0.0.1:$port/healthz")"
curl -s -o "$tmp/out" -w '%{http_code}' --cacert "$CA" "https://127.0.0.1:$port/agent/v1/ca" > "$tmp/code"
check "no CA key: no CA endpoint" 404 "$(cat "$tmp/code")"
stop

# ---- systemd: READY=1 and watchdog keep-alives (Type=notify, WatchdogSec) ----
python3 - "$tmp/notify.sock" >"$tmp/notify.out" 2>&1 <<'EOT' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
got = []
while not ("READY=1" in got and got.count("WATCHDOG=1") >= 2):
    got.append(s.recv(4096).decode().split("\n")[0])
print("\n".join(got))
EOT
npid=$!
for _ in $(seq 50); do [ -S "$tmp/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET="$tmp/notify.sock" WATCHDOG_USEC=200000 start "$tmp/d7" 127.0.0.1:0
wait "$npid"
contains "llmd reports READY=1" "^READY=1" "$tmp/notify.out"
contains "llmd sends watchdog keep-alives" "^WATCHDOG=1" "$tmp/notify.out"
stop

echo "daemon-tls: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
