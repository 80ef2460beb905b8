#!/bin/sh
# tests/integration/daemon-auth.sh - role tokens end to end: llmd-admin token
# create/list/revoke, and a table of hostile cases, each asserted: no token,
# a malformed or unknown token, the wrong role (403 Status naming role and
# verb), an expired and a revoked token, a non-admin managing tokens, an
# operator forging a token Secret in llmd-system or reading Secrets, no
# token secret or hash in any listing, a node credential acting on another
# node's pod or node, and path traversal in model URIs.
set -u
b=${top_builddir:-.}
LLMD="$b/llmd"
A="$b/llmd-admin"
command -v curl >/dev/null || { echo "SKIP: no curl command"; exit 77; }
tmp=$(mktemp -d /tmp/llmd-daemon-auth.XXXXXX)
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
absent() { # absent DESCRIPTION NEEDLE FILE
	if grep -q -- "$2" "$3"; then ko "$1: '$2' found"; else ok; fi
}

echo "auth-test-admin-token" > "$tmp/token"
"$LLMD" --listen 127.0.0.1:0 --data-dir "$tmp/d" --token-file "$tmp/token" 2>"$tmp/llmd.log" &
pid=$!
i=0
while [ ! -s "$tmp/d/llmd.addr" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
U="http://$(cat "$tmp/d/llmd.addr")"
export LLMD_SERVER="$U"
ADMIN_TOKEN=auth-test-admin-token

# req TOKEN METHOD PATH [BODY] -> $code, body in $tmp/out
req() {
	t=$1
	shift
	if [ $# -ge 3 ]; then
		code=$(curl -s -o "$tmp/out" -w '%{http_code}' -X "$1" ${t:+-H "Authorization: Bearer $t"} \
		    -H 'Content-Type: application/json' --data-binary "$3" "$U$2")
	else
		code=$(curl -s -o "$tmp/out" -w '%{http_code}' -X "$1" ${t:+-H "Authorization: Bearer $t"} "$U$2")
	fi
}

mk() { # mk ROLE [TTL] -> token on stdout
	LLMD_TOKEN=$ADMIN_TOKEN "$A" token create --role "$1" ${2:+--ttl "$2"} \
	    --description "test $1" 2>"$tmp/create.err" | tail -n 1
}

# ---- token create / list / revoke ----
viewer=$(mk viewer)
operator=$(mk operator)
router=$(mk router)
admin2=$(mk admin)
expiring=$(mk viewer 1s)
case "$viewer" in llmd_????????????.????????????????????????????????????????) ok ;;
	*) ko "token format: $viewer" ;; esac
contains "create names the role" "role viewer" "$tmp/create.err"
LLMD_TOKEN=$ADMIN_TOKEN "$A" token create --role superuser >/dev/null 2>"$tmp/e"
check "unknown role refused" 1 "$?"
contains "unknown role message" "must be one of" "$tmp/e"
LLMD_TOKEN=$ADMIN_TOKEN "$A" token create >/dev/null 2>&1
check "--role required" 2 "$?"
LLMD_TOKEN=$ADMIN_TOKEN "$A" token list > "$tmp/list"
check "token list exit" 0 "$?"
check "five tokens listed" 5 "$(grep -c '^[0-9a-f]\{12\} ' "$tmp/list")"
contains "list shows roles" "operator" "$tmp/list"
vid=$(echo "$viewer" | cut -c6-17)
contains "list shows the viewer id" "$vid" "$tmp/list"
absent "list holds no secret" "$(echo "$viewer" | cut -d. -f2)" "$tmp/list"

# ---- what each role may do ----
S=/apis/serving.kserve.io/v1alpha1/namespaces/default/llminferenceservices
svc='{"apiVersion":"serving.kserve.io/v1alpha1","kind":"LLMInferenceService","metadata":{"name":"s1"},"spec":{"model":{"uri":"hf://org/m"}}}'
req "" GET "$S"; check "no token: list" 401 "$code"
req "garbage" GET "$S"; check "malformed token" 401 "$code"
req "llmd_000000000000.0000000000000000000000000000000000000000" GET "$S"
check "unknown token" 401 "$code"
req "$viewer" GET "$S"; check "viewer lists" 200 "$code"
req "$viewer" GET /version; check "viewer reads /version" 200 "$code"
req "$viewer" POST "$S" "$svc"; check "viewer creates" 403 "$code"
contains "403 is a Status" '"kind":"Status"' "$tmp/out"
contains "403 names the role" 'role viewer' "$tmp/out"
contains "403 names the verb and resource" 'cannot create resource \\"llminferenceservices\\"' "$tmp/out"
contains "403 reason" '"reason":"Forbidden"' "$tmp/out"
req "$operator" POST "$S" "$svc"; check "operator creates" 201 "$code"
req "$operator" DELETE "$S/s1"; check "operator deletes" 200 "$code"
req "$viewer" GET /api/v1/namespaces/default/secrets; check "viewer reads secrets" 403 "$code"
req "$operator" GET /api/v1/namespaces/default/secrets; check "operator reads secrets" 403 "$code"
req "$operator" POST /api/v1/namespaces/default/secrets \
    '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"hf"},"stringData":{"token":"x"}}'
check "operator writes a secret" 201 "$code"
forged='{"apiVersion":"v1","kind":"Secret","metadata":{"name":"api-token-aaaaaaaaaaaa"},"type":"llmd.io/api-token","stringData":{"token-hash":"x","role":"admin"}}'
req "$operator" POST /api/v1/namespaces/llmd-system/secrets "$forged"
check "operator forges a token secret in llmd-system" 403 "$code"
req "$router" GET /apis/inference.networking.x-k8s.io/v1alpha2/namespaces/default/inferencepools
check "router lists inferencepools" 200 "$code"
req "$router" POST "$S" "$svc"; check "router creates a service" 403 "$code"
req "$router" GET /api/v1/namespaces/default/secrets; check "router reads secrets" 403 "$code"
req "$router" POST /apis/gateway.networking.k8s.io/v1/namespaces/llmd-system/gateways \
    '{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"gw-auth-test"},"spec":{"gatewayClassName":"llmd","listeners":[{"name":"http","port":8080,"protocol":"HTTP"}]}}'
check "router registers its gateway" 201 "$code"
req "$router" DELETE /apis/gateway.networking.k8s.io/v1/namespaces/llmd-system/gateways/gw-auth-test
check "router deletes a gateway" 403 "$code"
req "$router" GET /apis/networking.k8s.io/v1/namespaces/default/ingresses; check "router lists ingresses" 200 "$code"
"$A" --token "$viewer" get llmisvc >/dev/null 2>&1
check "llmd-admin with a viewer token" 0 "$?"
"$A" --token "$viewer" delete llmisvc nothing >/dev/null 2>"$tmp/e"
check "llmd-admin viewer delete exit" 1 "$?"
contains "llmd-admin prints Forbidden" "Forbidden" "$tmp/e"

# ---- managing tokens needs role admin ----
req "$operator" GET /auth/v1/tokens; check "operator lists tokens" 403 "$code"
req "$viewer" POST /auth/v1/tokens '{"role":"admin"}'; check "viewer mints an admin token" 403 "$code"
req "" GET /auth/v1/tokens; check "no token lists tokens" 401 "$code"
req "$admin2" GET /auth/v1/tokens; check "role admin lists tokens" 200 "$code"
absent "token list has no hashes" "token-hash" "$tmp/out"
req "$admin2" POST /auth/v1/tokens '{"role":"viewer","ttl":"soon"}'; check "bad ttl" 422 "$code"

# ---- join tokens: admin and operator role tokens may create them, viewers not ----
req "$operator" POST /agent/v1/tokens '{"ttl":"1h"}'; check "operator creates a join token" 201 "$code"
req "$viewer" POST /agent/v1/tokens '{"ttl":"1h"}'
{ [ "$code" = 401 ] || [ "$code" = 403 ]; } && ok || ko "viewer created a join token: $code"

# ---- node credentials: a node acts on its own pods and node only ----
jt=$(curl -s -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -d '{"ttl":"1h"}' "$U/agent/v1/tokens" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for n in node-a node-b; do
	curl -s -X POST -H "Authorization: Bearer $jt" -H 'Content-Type: application/json' \
	    -d "{\"nodeName\":\"$n\",\"agentUrl\":\"http://127.0.0.1:1\",\"address\":\"127.0.0.1\",\"gpus\":[{\"index\":0,\"name\":\"H100\"},{\"index\":1,\"name\":\"H100\"}]}" \
	    "$U/agent/v1/register" | python3 -c 'import json,sys; print(json.load(sys.stdin)["credential"])' \
	    >"$tmp/cred-$n"
done
ca=$(cat "$tmp/cred-node-a")
cb=$(cat "$tmp/cred-node-b")
[ -n "$ca" ] && [ -n "$cb" ] && ok || ko "node registration"
# a service without GPUs: its pod lands on one of the two nodes (P), Q is the other
# (its model download token is a Secret reference)
req "$ADMIN_TOKEN" POST /api/v1/namespaces/default/secrets \
    '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"hf-cred"},"stringData":{"token":"hf_TOPSECRET_4242","user":"me"}}'
check "model secret" 201 "$code"
req "$ADMIN_TOKEN" POST "$S" '{"apiVersion":"serving.kserve.io/v1alpha1","kind":"LLMInferenceService","metadata":{"name":"np"},"spec":{"model":{"uri":"hf://org/m"},"template":{"containers":[{"name":"main","env":[{"name":"HF_TOKEN","valueFrom":{"secretKeyRef":{"name":"hf-cred","key":"token"}}},{"name":"OPT","valueFrom":{"secretKeyRef":{"name":"nope","key":"k","optional":true}}}],"envFrom":[{"secretRef":{"name":"hf-cred"},"prefix":"HF_"}]}]}}}'
check "service for the node tests" 201 "$code"
pod=""
for _ in $(seq 100); do
	req "$ADMIN_TOKEN" GET "/api/v1/namespaces/default/pods"
	pod=$(python3 -c 'import json,sys
for p in json.load(open(sys.argv[1]))["items"]:
    if p["spec"].get("nodeName"): print(p["metadata"]["name"], p["spec"]["nodeName"]); break' "$tmp/out")
	[ -n "$pod" ] && break
	sleep 0.1
done
P=${pod#* }; pod=${pod% *}
if [ "$P" = node-a ]; then Q=node-b; else Q=node-a; fi
[ -n "$pod" ] && ok || ko "no pod placed on node-a/node-b"
cp=$(cat "$tmp/cred-$P")
cq=$(cat "$tmp/cred-$Q")
req "$cq" PATCH "/api/v1/namespaces/default/pods/$pod/status" '{"status":{"phase":"Running"}}'
{ [ "$code" = 401 ] || [ "$code" = 403 ]; } && ok || ko "$Q patched $P's pod: $code"
req "$cq" DELETE "/api/v1/namespaces/default/pods/$pod"
{ [ "$code" = 401 ] || [ "$code" = 403 ]; } && ok || ko "$Q deleted $P's pod: $code"
req "$cp" GET "/api/v1/namespaces/default/pods/$pod"; check "$P reads its pod" 200 "$code"
req "$cq" GET /api/v1/namespaces/default/secrets; check "node credential reads secrets" 401 "$code"
# secrets reach only the agent of the pod's node
req "$cp" GET "/agent/v1/podsecrets?namespace=default&pod=$pod"
check "$P gets its pod's secrets" 200 "$code"
contains "secretKeyRef resolved" '"HF_TOKEN":"hf_TOPSECRET_4242"' "$tmp/out"
contains "envFrom with prefix" '"HF_user":"me"' "$tmp/out"
if grep -q '"OPT"' "$tmp/out"; then ko "a missing optional secret was set"; else ok; fi
req "$cq" GET "/agent/v1/podsecrets?namespace=default&pod=$pod"
check "$Q gets $P's pod secrets" 403 "$code"
if grep -q TOPSECRET "$tmp/out"; then ko "secret in the 403"; else ok; fi
req "$viewer" GET "/agent/v1/podsecrets?namespace=default&pod=$pod"
check "a role token gets pod secrets" 401 "$code"
req "$ADMIN_TOKEN" GET "/api/v1/namespaces/default/pods/$pod"
if grep -q TOPSECRET "$tmp/out"; then ko "secret value in the pod"; else ok; fi
contains "the pod keeps the reference" '"secretKeyRef"' "$tmp/out"
req "$ADMIN_TOKEN" GET "$S/np"
if grep -q TOPSECRET "$tmp/out"; then ko "secret value in the service"; else ok; fi
req "$ADMIN_TOKEN" GET /api/v1/namespaces/default/events
if grep -q TOPSECRET "$tmp/out"; then ko "secret value in events"; else ok; fi
"$A" --token "$ADMIN_TOKEN" get llmisvc np -o yaml >"$tmp/np.yaml" 2>&1
if grep -q TOPSECRET "$tmp/np.yaml"; then ko "secret value in get -o yaml"; else ok; fi
if grep -q TOPSECRET "$tmp/llmd.log"; then ko "secret value in the daemon log"; else ok; fi
req "$cq" POST /agent/v1/drain '{"reason":"test"}'; check "$Q drains itself" 200 "$code"
contains "drain names $Q" "\"nodeName\":\"$Q\"" "$tmp/out"
req "$ADMIN_TOKEN" GET "/api/v1/nodes/$P"
if grep -q '"unschedulable":true' "$tmp/out"; then ko "$Q's drain cordoned $P"; else ok; fi
req "$ADMIN_TOKEN" GET "/api/v1/nodes/$Q"
contains "$Q cordoned" '"unschedulable":true' "$tmp/out"
req "$ADMIN_TOKEN" GET "/api/v1/namespaces/default/pods/$pod"; check "$P's pod kept" 200 "$code"
req "$viewer" POST /agent/v1/drain '{}'; check "drain with a role token" 401 "$code"
req "$ADMIN_TOKEN" DELETE "$S/np"

# ---- path traversal in model URIs: refused at admission ----
for uri in "pvc://claim/../../etc" "file:///models/../etc/shadow" "hf://org/../x" "s3://b/.."; do
	req "$ADMIN_TOKEN" POST "$S" "{\"apiVersion\":\"serving.kserve.io/v1alpha1\",\"kind\":\"LLMInferenceService\",\"metadata\":{\"name\":\"trav\"},\"spec\":{\"model\":{\"uri\":\"$uri\"}}}"
	check "$uri refused" 422 "$code"
	contains "$uri: the reason" 'path segment' "$tmp/out"
done
req "$ADMIN_TOKEN" POST "$S" '{"apiVersion":"serving.kserve.io/v1alpha1","kind":"LLMInferenceService","metadata":{"name":"dots"},"spec":{"model":{"uri":"pvc://claim/models..v2/x"}}}'
check "dots inside a name are fine" 201 "$code"

# ---- expiry and revocation ----
sleep 1.2
req "$expiring" GET "$S"; check "expired token" 401 "$code"
LLMD_TOKEN=$ADMIN_TOKEN "$A" token list > "$tmp/list"
contains "list marks expired" "(expired)" "$tmp/list"
LLMD_TOKEN=$ADMIN_TOKEN "$A" token revoke "$vid" > "$tmp/o"
check "revoke exit" 0 "$?"
req "$viewer" GET "$S"; check "revoked token" 401 "$code"
LLMD_TOKEN=$ADMIN_TOKEN "$A" token revoke "$vid" >/dev/null 2>"$tmp/e"
check "revoking twice" 1 "$?"
contains "revoking twice: NotFound" "NotFound" "$tmp/e"
req "$ADMIN_TOKEN" GET /api/v1/namespaces/llmd-system/secrets
absent "no token secret in the store" "$(echo "$operator" | cut -d. -f2)" "$tmp/out"
absent "no token secret in the log" "$(echo "$operator" | cut -d. -f2)" "$tmp/llmd.log"

echo "daemon-auth: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
