#!/bin/sh
# tests/integration/daemon-api.sh - llmd's REST API end to end over curl:
# CRUD, selectors, conflicts, merge patch, status subresource, watch (and 410
# for compacted versions), Status error bodies, hostile inputs, token auth,
# the loopback rule, and kill -9 keeping every acknowledged write.
set -u
b=${top_builddir:-.}
LLMD="$b/llmd"
tmp=$(mktemp -d /tmp/llmd-daemon-api.XXXXXX)
pass=0
fail=0
pid=""

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	[ -n "${wpid:-}" ] && kill "$wpid" 2>/dev/null
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

start() { # start DATADIR [ARGS...]
	d=$1
	shift
	rm -f "$d/llmd.addr"
	"$LLMD" --listen 127.0.0.1:0 --data-dir "$d" "$@" 2>>"$tmp/llmd.log" &
	pid=$!
	i=0
	while [ ! -s "$d/llmd.addr" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
	addr=$(cat "$d/llmd.addr")
	U="http://$addr"
}

# req METHOD PATH [BODY [CONTENT-TYPE]] -> $code, body in $tmp/out
req() {
	if [ $# -ge 3 ]; then
		code=$(curl -s -o "$tmp/out" -w '%{http_code}' -X "$1" \
		    -H "Content-Type: ${4:-application/json}" ${AUTH:+-H "$AUTH"} \
		    --data-binary "$3" "$U$2")
	else
		code=$(curl -s -o "$tmp/out" -w '%{http_code}' -X "$1" \
		    ${AUTH:+-H "$AUTH"} "$U$2")
	fi
}

S=/apis/serving.kserve.io/v1alpha1/namespaces/team-a/llminferenceservices
start "$tmp/d1" --event-history 20

req GET /healthz; check healthz 200 "$code"
req GET /readyz; check readyz 200 "$code"
req GET /version; check version 200 "$code"; contains version gitVersion "$tmp/out"

# --- CRUD ---
req POST $S '{"apiVersion":"serving.kserve.io/v1alpha1","kind":"LLMInferenceService","metadata":{"name":"s1","labels":{"tier":"gold","app":"chat"}},"spec":{"model":{"uri":"hf://Qwen/Qwen3-0.6B"},"replicas":1}}'
check "create" 201 "$code"
contains "create uid" '"uid":"' "$tmp/out"
contains "create generation" '"generation":1' "$tmp/out"
req POST $S 'apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata:
  name: s2
  labels: {tier: silver}
spec:
  model: {uri: "hf://Qwen/Qwen3-0.6B"}
' application/yaml
check "create from YAML" 201 "$code"
req POST $S '{"metadata":{"name":"s1"},"spec":{}}'
check "duplicate" 409 "$code"; contains "AlreadyExists" '"reason":"AlreadyExists"' "$tmp/out"
req GET $S/s1; check get 200 "$code"; contains "get kind" '"kind":"LLMInferenceService"' "$tmp/out"
req GET $S/nope; check "get missing" 404 "$code"; contains "NotFound" '"reason":"NotFound"' "$tmp/out"
contains "Status kind" '"kind":"Status"' "$tmp/out"

# --- lists and selectors ---
req GET $S; check list 200 "$code"; contains "list kind" '"kind":"LLMInferenceServiceList"' "$tmp/out"
n=$(grep -o '"name":"s[0-9]"' "$tmp/out" | wc -l); check "list size" 2 "$n"
sel() { req GET "$S?labelSelector=$1"; grep -o '"name":"s[0-9]"' "$tmp/out" | tr -d '"name:' | tr '\n' ' '; }
check "selector =" "s1 " "$(sel 'tier%3Dgold')"
check "selector ==" "s2 " "$(sel 'tier%3D%3Dsilver')"
check "selector !=" "s2 " "$(sel 'tier!%3Dgold')"
check "selector in" "s1 s2 " "$(sel 'tier%20in%20(gold,silver)')"
check "selector notin" "s2 " "$(sel 'tier%20notin%20(gold)')"
check "selector exists" "s1 " "$(sel 'app')"
check "selector !exists" "s2 " "$(sel '!app')"
req GET "$S?labelSelector=tier%20in%20gold"; check "bad selector" 400 "$code"
req GET /apis/serving.kserve.io/v1alpha1/llminferenceservices; check "cluster-wide list" 200 "$code"
req GET /api/v1/namespaces; contains "namespaces in use" '"name":"team-a"' "$tmp/out"

# --- update, conflicts, patch, status ---
req PUT $S/s1 '{"metadata":{"name":"s1","resourceVersion":"1","labels":{"tier":"gold"}},"spec":{"model":{"uri":"hf://Qwen/Qwen3-0.6B"},"replicas":1}}'
check "stale PUT" 409 "$code"; contains "Conflict" '"reason":"Conflict"' "$tmp/out"
req PATCH $S/s1 '{"spec":{"replicas":2}}' application/merge-patch+json
check "merge patch" 200 "$code"; contains "generation bumped" '"generation":2' "$tmp/out"
contains "patched" '"replicas":2' "$tmp/out"
req PATCH $S/s1 '{"metadata":{"labels":{"extra":"1"}}}' application/merge-patch+json
contains "label patch keeps generation" '"generation":2' "$tmp/out"
req PATCH $S/s1 '{"spec":{}}' text/plain; check "patch media type" 415 "$code"
req PUT $S/s1/status '{"metadata":{"name":"s1"},"status":{"url":"http://x"}}'
check "status write" 200 "$code"; contains "status stored" '"url":"http://x"' "$tmp/out"
req PUT $S/s1 '{"metadata":{"name":"other"},"spec":{}}'; check "name mismatch" 400 "$code"
req POST $S '{"metadata":{"name":"s3","namespace":"team-b"},"spec":{}}'; check "namespace mismatch" 400 "$code"
req POST /api/v1/namespaces/team-a/pods '{"metadata":{"name":"p"},"spec":{}}'; check "derived read-only" 405 "$code"
contains "MethodNotAllowed" '"reason":"MethodNotAllowed"' "$tmp/out"
req GET /api/v1/namespaces/team-a/pods; check "pods list" 200 "$code"
req GET /apis/apps/v1/namespaces/team-a/deployments; check "deployments list" 200 "$code"
req GET /apis/leaderworkerset.x-k8s.io/v1/namespaces/team-a/leaderworkersets; check "lws list" 200 "$code"
req GET /apis/inference.networking.x-k8s.io/v1alpha2/namespaces/team-a/inferencepools; check "pools list" 200 "$code"
req GET /apis/nope/v1/things; check "unknown path" 404 "$code"

# --- nodes, secrets, gateways ---
req POST /api/v1/nodes '{"metadata":{"name":"gpu-1","labels":{"pool":"a"}},"spec":{"unschedulable":false},"status":{"capacity":{"nvidia.com/gpu":"8"},"allocatable":{"nvidia.com/gpu":"8"},"conditions":[{"type":"Ready","status":"True"}]}}'
check "node create" 201 "$code"; contains "node status kept" '"nvidia.com/gpu":"8"' "$tmp/out"
req POST /api/v1/namespaces/team-a/secrets '{"metadata":{"name":"hf"},"stringData":{"token":"abc"}}'
check "secret create" 201 "$code"; contains "stringData folded" '"token":"YWJj"' "$tmp/out"
req POST /apis/gateway.networking.k8s.io/v1/namespaces/team-a/gateways '{"metadata":{"name":"gw"},"spec":{"gatewayClassName":"llmd"}}'
check "gateway create" 201 "$code"
req POST /apis/networking.k8s.io/v1/namespaces/team-a/ingresses '{"metadata":{"name":"in"},"spec":{}}'
check "ingress create" 201 "$code"

# --- hostile inputs ---
req POST $S '{"metadata":{"name":"x"'; check "truncated JSON" 400 "$code"; contains "BadRequest" '"reason":"BadRequest"' "$tmp/out"
deep=$(printf '%0.s[' $(seq 1 5000))
req POST $S "$deep"; check "deep nesting" 400 "$code"
printf '{"metadata":{"name":"u\377"}}' > "$tmp/bad-utf8"
code=$(curl -s -o "$tmp/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$tmp/bad-utf8" "$U$S")
check "invalid UTF-8" 400 "$code"
head -c 4000000 /dev/zero | tr '\0' 'a' > "$tmp/huge"
code=$(curl -s -o "$tmp/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$tmp/huge" "$U$S")
check "huge body" 413 "$code"
req POST $S '{"metadata":{"name":"s4","labels":{"a":1}},"spec":{}}'; check "wrong label type" 422 "$code"
contains "Invalid" '"reason":"Invalid"' "$tmp/out"; contains "cause field" '"field":"metadata.labels"' "$tmp/out"
req POST $S '{"metadata":{"name":"Bad_Name"},"spec":{}}'; check "bad name" 422 "$code"
req POST $S '{"metadata":{"name":"s5"},"spec":[]}'; check "spec not an object" 422 "$code"
req POST $S '[1,2]'; check "array body" 400 "$code"
req POST $S '{"kind":"Pod","metadata":{"name":"s6"}}'; check "wrong kind" 400 "$code"
req GET "/apis/serving.kserve.io/v1alpha1/namespaces/BAD/llminferenceservices"; check "bad namespace" 400 "$code"
req POST $S '{"metadata":{"name":"pp"},"spec":{"model":{"uri":"hf://a/b"},"worker":{"containers":[]},"parallelism":{"data":0,"pipeline":2}}}'
check "webhook validation" 422 "$code"
contains "upstream message" 'LLMInferenceService.serving.kserve.io \\"pp\\" is invalid' "$tmp/out"
contains "all causes" '"field":"spec.parallelism.dataLocal"' "$tmp/out"
req POST $S '{"metadata":{"name":"wt"},"spec":{"replicas":"two"}}'; check "wrong type" 422 "$code"
contains "wrong type field" '"field":"spec.replicas"' "$tmp/out"
req POST /apis/serving.kserve.io/v1alpha1/namespaces/team-a/llminferenceserviceconfigs '{"metadata":{"name":"c1"},"spec":{"baseRefs":[{"name":"x"}]}}'
check "config with baseRefs" 422 "$code"
req GET /healthz; check "still serving" 200 "$code"

# --- watch ---
rv=$(curl -s "$U$S/s2" | grep -o '"resourceVersion":"[0-9]*"' | grep -o '[0-9]*')
curl -sN "$U$S?watch=true&resourceVersion=$rv&timeoutSeconds=2" > "$tmp/watch" &
wpid=$!
sleep 0.3
req POST $S '{"metadata":{"name":"w1"},"spec":{}}'
req PATCH $S/w1 '{"metadata":{"labels":{"x":"y"}}}' application/merge-patch+json
req DELETE $S/w1 '{"preconditions":{"resourceVersion":"1"}}'; check "delete precondition" 409 "$code"
req DELETE $S/w1; check "delete" 200 "$code"
wait $wpid; wpid=""
contains "watch ADDED" '"type":"ADDED","object":{.*"name":"w1"' "$tmp/watch"
contains "watch MODIFIED" '"type":"MODIFIED"' "$tmp/watch"
contains "watch DELETED" '"type":"DELETED"' "$tmp/watch"
req GET $S/w1; check "deleted is gone" 404 "$code"
curl -s "$U$S?watch=true&timeoutSeconds=1" > "$tmp/watch0"
contains "watch from now lists current objects" '"type":"ADDED","object":{.*"name":"s1"' "$tmp/watch0"
for i in $(seq 1 25); do req PATCH /api/v1/nodes/gpu-1 "{\"metadata\":{\"labels\":{\"n\":\"$i\"}}}" application/merge-patch+json; done
req GET "$S?watch=true&resourceVersion=1"; check "watch too old" 410 "$code"
contains "Expired" '"reason":"Expired"' "$tmp/out"

# --- discovery: stock kubectl drives llmd (skipped without kubectl) ---
req GET /api; contains "APIVersions" '"kind":"APIVersions"' "$tmp/out"
req GET /apis; contains "APIGroupList" '"name":"serving.kserve.io"' "$tmp/out"
req GET /apis/serving.kserve.io/v1alpha1; contains "APIResourceList" '"shortNames":\["llmisvc"\]' "$tmp/out"
if command -v kubectl >/dev/null 2>&1; then
	K="kubectl --kubeconfig=/dev/null --server $U --cache-dir $tmp/kcache"
	printf 'apiVersion: serving.kserve.io/v1alpha1\nkind: LLMInferenceService\nmetadata: {name: kc, namespace: team-a}\nspec: {model: {uri: "hf://a/b"}}\n' > "$tmp/kc.yaml"
	$K apply --validate=false -f "$tmp/kc.yaml" >"$tmp/out" 2>&1; contains "kubectl apply" "kc created" "$tmp/out"
	$K get llmisvc -n team-a -o name >"$tmp/out" 2>&1; contains "kubectl get" "llminferenceservice.serving.kserve.io/kc" "$tmp/out"
	$K label llmisvc kc -n team-a tier=bronze >"$tmp/out" 2>&1; contains "kubectl label (merge patch)" "labeled" "$tmp/out"
	$K get llmisvc -n team-a -l tier=bronze -o jsonpath='{.items[*].metadata.name}' >"$tmp/out" 2>&1
	check "kubectl selector" "kc" "$(cat "$tmp/out")"
	$K delete llmisvc kc -n team-a >"$tmp/out" 2>&1; contains "kubectl delete" "deleted" "$tmp/out"
fi

# --- kill -9 keeps acknowledged writes ---
acked=0
for i in $(seq 1 30); do
	req POST /api/v1/namespaces/team-k/secrets "{\"metadata\":{\"name\":\"k$i\"},\"data\":{}}"
	[ "$code" = 201 ] && acked=$((acked+1))
done
kill -9 $pid; wait $pid 2>/dev/null; pid=""
start "$tmp/d1" --event-history 20
req GET /api/v1/namespaces/team-k/secrets
n=$(grep -o '"name":"k[0-9]*"' "$tmp/out" | wc -l)
check "acknowledged writes survive kill -9" "$acked" "$n"
req GET $S/s1; check "objects survive restart" 200 "$code"
contains "status survives" '"observedGeneration":' "$tmp/out"
kill $pid; wait $pid 2>/dev/null; pid=""

# --- authentication ---
echo "s3cret-token-123" > "$tmp/token"
start "$tmp/d2" --token-file "$tmp/token"
req GET $S; check "no token" 401 "$code"; contains "Unauthorized" '"reason":"Unauthorized"' "$tmp/out"
AUTH="Authorization: Bearer wrong-token-1234"; req GET $S; check "wrong token" 401 "$code"
AUTH="Authorization: Bearer s3cret-token-123"; req GET $S; check "right token" 200 "$code"
AUTH=""
req GET /healthz; check "healthz without token" 200 "$code"
kill $pid; wait $pid 2>/dev/null; pid=""

# --- config file; watches outlive the idle timeout (heartbeats) ---
printf 'httpTimeout: 1s\neventHistory: 50\n' > "$tmp/llmd.yaml"
start "$tmp/d4" --config "$tmp/llmd.yaml"
curl -sN "$U/api/v1/nodes?watch=true&timeoutSeconds=3" > "$tmp/watch-idle" &
wpid=$!
sleep 2
req POST /api/v1/nodes '{"metadata":{"name":"late"}}'
wait $wpid; wrc=$?; wpid=""
check "idle watch survives the 1s timeout" 0 "$wrc"
contains "event after 2s of idle" '"type":"ADDED".*"name":"late"' "$tmp/watch-idle"
printf 'bogusKey: 1\n' > "$tmp/bad.yaml"
"$LLMD" --config "$tmp/bad.yaml" --data-dir "$tmp/d5" 2>"$tmp/badcfg.log"
if [ $? -ne 0 ] && grep -q "unknown key" "$tmp/badcfg.log"; then ok; else ko "bad config key must be refused"; fi
kill $pid; wait $pid 2>/dev/null; pid=""

"$LLMD" --listen 0.0.0.0:0 --data-dir "$tmp/d3" 2>"$tmp/refuse.log"
rc=$?
if [ $rc -ne 0 ] && grep -q "token-file" "$tmp/refuse.log"; then ok; else ko "non-loopback without token must refuse (rc=$rc)"; fi

if grep -q "Sanitizer\|runtime error" "$tmp/llmd.log"; then
	ko "sanitizer report in the llmd log:"; grep -A20 "Sanitizer\|runtime error" "$tmp/llmd.log" | head -40
else
	ok
fi
echo "daemon-api: $pass passed, $fail failed"
[ $fail -eq 0 ]
