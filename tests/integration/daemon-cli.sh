#!/bin/sh
# tests/integration/daemon-cli.sh - llmd-admin against a live llmd: apply of
# every etc/examples manifest (created, then unchanged), manifest errors at
# file:line:col, get tables/json/yaml/selectors/watch, describe, scale, patch,
# wait, create secret, cordon/uncordon/drain, delete (children go too),
# command lookup and exit statuses, authentication.
set -u
b=${top_builddir:-.}
src=${top_srcdir:-..}
LLMD="$b/llmd"
tmp=$(mktemp -d /tmp/llmd-daemon-cli.XXXXXX)
pass=0
fail=0
pid=""

cleanup() { [ -n "${KEEP:-}" ] && return;
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in: $(head -c 600 "$3")"; fi; }
lacks() { if grep -q -- "$2" "$3"; then ko "$1: '$2' unexpectedly in: $(head -c 600 "$3")"; else ok; fi; }

echo "cli-test-token-0123" > "$tmp/token"
"$LLMD" --listen 127.0.0.1:0 --data-dir "$tmp/d" --token-file "$tmp/token" \
    --presets-dir "$src/etc/presets" --resync-interval 10m 2>"$tmp/llmd.log" &
pid=$!
i=0
while [ ! -s "$tmp/d/llmd.addr" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
LLMD_SERVER="http://$(cat "$tmp/d/llmd.addr")"
LLMD_TOKEN=cli-test-token-0123
export LLMD_SERVER LLMD_TOKEN
A="$b/llmd-admin"

# run CMD... -> $rc, stdout in $tmp/o, stderr in $tmp/e
run() { "$A" "$@" >"$tmp/o" 2>"$tmp/e"; rc=$?; }

# --- nodes, then every example ---
cat > "$tmp/nodes.yaml" <<'EOF'
apiVersion: v1
kind: Node
metadata: {name: gpu-1, labels: {pool: a}}
status:
  capacity: {nvidia.com/gpu: "8"}
  allocatable: {nvidia.com/gpu: "8"}
  conditions: [{type: Ready, status: "True"}]
  addresses: [{type: InternalIP, address: 10.0.0.1}]
---
apiVersion: v1
kind: Node
metadata: {name: gpu-2, labels: {pool: a}}
status:
  capacity: {nvidia.com/gpu: "8"}
  allocatable: {nvidia.com/gpu: "8"}
  conditions: [{type: Ready, status: "True"}]
EOF
run apply -f "$tmp/nodes.yaml"; check "apply nodes" 0 "$rc"
contains "node created" "node/gpu-1 created" "$tmp/o"
n_examples=0
for f in "$src"/etc/examples/*.yaml; do
	[ -f "$f" ] || continue
	n_examples=$((n_examples+1))
	run apply -f "$f"
	if [ $rc -eq 0 ] && grep -q " created$" "$tmp/o"; then ok; else ko "apply $f: rc=$rc $(cat "$tmp/e")"; fi
done
if [ -d "$src/etc/examples" ] && [ $n_examples -gt 0 ]; then
	run apply -f "$src/etc/examples"
	check "re-apply examples dir" 0 "$rc"
	lacks "re-apply changes nothing" " created$" "$tmp/o"
	contains "re-apply unchanged" " unchanged$" "$tmp/o"
fi
cat > "$tmp/svc.yaml" <<'EOF'
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata:
  name: chat
  labels: {team: blue}
spec:
  model: {uri: "hf://Qwen/Qwen3-0.6B"}
  replicas: 1
  template:
    containers:
    - name: main
      resources:
        limits: {nvidia.com/gpu: "1"}
EOF
run apply -f "$tmp/svc.yaml"; contains "apply prints kind.group/name" \
    "llminferenceservice.serving.kserve.io/chat created" "$tmp/o"
sed 's/replicas: 1/replicas: 2/' "$tmp/svc.yaml" > "$tmp/svc2.yaml"
run apply -f "$tmp/svc2.yaml"; contains "apply configured" "chat configured" "$tmp/o"
run apply -f - < "$tmp/svc2.yaml"; contains "apply stdin unchanged" "chat unchanged" "$tmp/o"
printf 'apiVersion: v1\nkind: Node\nmetadata:\n  name: x\n   bad: [\n' > "$tmp/bad.yaml"
run apply -f "$tmp/bad.yaml"; check "bad manifest exit" 1 "$rc"
contains "bad manifest file:line:col" "bad.yaml:[0-9]*:[0-9]*" "$tmp/e"
printf 'apiVersion: serving.kserve.io/v1alpha1\nkind: LLMInferenceService\nmetadata: {name: bad-pp}\nspec:\n  worker: {containers: []}\n' > "$tmp/invalid.yaml"
run apply -f "$tmp/invalid.yaml"; check "invalid service exit" 1 "$rc"
contains "server message" "Invalid" "$tmp/e"

# --- get ---
sleep 0.5
run get llmisvc; check "get llmisvc" 0 "$rc"
head -1 "$tmp/o" > "$tmp/hdr"
contains "service columns" "^NAME *URL *READY *REASON *AGE$" "$tmp/hdr"
contains "service row" "^chat " "$tmp/o"
run get llmisvc chat -o json; contains "-o json" '"kind": "LLMInferenceService"' "$tmp/o"
run get llmisvc chat -o yaml; contains "-o yaml" "^kind: LLMInferenceService" "$tmp/o"
contains "-o yaml status" "observedGeneration:" "$tmp/o"
run get llmisvc -l team=blue -o name; check "-l selector" "llminferenceservice.serving.kserve.io/chat" "$(cat "$tmp/o")"
run get nodes -o wide; contains "nodes wide" "gpu-1 *Ready *8 .*10.0.0.1" "$tmp/o"
run get pods -A; contains "pods -A" "^NAMESPACE *NAME *READY *STATUS *NODE" "$tmp/o"
contains "chat has a pod" "chat-kserve-" "$tmp/o"
run get deployments,svc -n default; contains "two kinds" "chat-kserve-workload-svc" "$tmp/o"
contains "deployment row" "chat-kserve " "$tmp/o"
run get llmisvc nope; check "get missing exit" 1 "$rc"; contains "NotFound" "NotFound" "$tmp/e"
run get frobs; check "unknown kind exit" 1 "$rc"
timeout 2 "$A" get llmisvc -w > "$tmp/watch" 2>&1
contains "get -w streams rows" "^chat " "$tmp/watch"
run describe llmisvc chat; check "describe" 0 "$rc"; contains "describe name" "^Name: *chat" "$tmp/o"
contains "describe status" "^Status:" "$tmp/o"
run desc llmisvc/chat; check "prefix lookup" 0 "$rc"

run get events; contains "Scheduled event" "Normal *Scheduled *Pod/" "$tmp/o"
sed 's/name: chat/name: huge/; s/gpu: "1"/gpu: "64"/' "$tmp/svc.yaml" | "$A" apply -f - >/dev/null 2>&1
sleep 0.5
run get events; contains "FailedScheduling event" "Warning *FailedScheduling *Pod/huge-kserve-" "$tmp/o"
run describe pod "$(grep -o 'huge-kserve-[a-z0-9-]*' "$tmp/o" | head -1)"
contains "describe shows the pod's events" "FailedScheduling" "$tmp/o"
run delete llmisvc huge

# --- a pending pod is placed as soon as another service frees the GPUs ---
# (solo is tainted: the examples' pending pods must not take it)
printf 'apiVersion: v1\nkind: Node\nmetadata: {name: solo, labels: {pool: solo}}\nspec:\n  taints: [{key: dedicated, value: solo, effect: NoSchedule}]\nstatus:\n  allocatable: {nvidia.com/gpu: "4"}\n  conditions: [{type: Ready, status: "True"}]\n' |
	"$A" apply -f - >/dev/null
for n in first second; do
	sed "s/name: chat/name: $n/; s/gpu: \"1\"/gpu: \"4\"/; s/^  template:/  template:\n    nodeSelector: {pool: solo}\n    tolerations: [{key: dedicated, operator: Equal, value: solo, effect: NoSchedule}]/" \
	    "$tmp/svc.yaml" | "$A" apply -f - >/dev/null
	sleep 0.3
done
solo_pods() { "$A" get pods -o json | jq -r '.items[] | select(.metadata.labels["app.kubernetes.io/name"] == "'"$1"'") | (.spec.nodeName // "none")'; }
check "first takes the solo node" "solo" "$(solo_pods first)"
check "second waits for GPUs" "none" "$(solo_pods second)"
run delete llmisvc first
i=0; while [ "$(solo_pods second)" != solo ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
check "second placed once first is gone (not at the 10m resync)" "solo" "$(solo_pods second)"
run delete llmisvc second
run delete node solo

# --- scale, patch, wait ---
run scale llmisvc/chat --replicas 3; contains "scale" "llminferenceservice.serving.kserve.io/chat scaled" "$tmp/o"
run get llmisvc chat -o json; contains "scaled spec" '"replicas": 3' "$tmp/o"
run patch llmisvc chat -p '{"metadata":{"labels":{"team":"red"}}}'; contains "patch" "chat patched" "$tmp/o"
run get llmisvc -l team=red -o name; check "patched label" "llminferenceservice.serving.kserve.io/chat" "$(cat "$tmp/o")"
run wait --for=condition=PresetsCombined llmisvc/chat --timeout=20s
check "wait condition met" 0 "$rc"; contains "condition met" "chat condition met" "$tmp/o"
run wait --for=condition=Ready llmisvc/chat --timeout=1s
check "wait timeout exit" 1 "$rc"; contains "timed out" "timed out waiting" "$tmp/e"

# --- secrets and nodes ---
run create secret generic hf --from-literal=token=abc --from-literal=user=me
contains "create secret" "secret/hf created" "$tmp/o"
run get secret hf -o json; contains "secret data" '"token": "YWJj"' "$tmp/o"
run get secrets; contains "secret table" "hf *Opaque *2" "$tmp/o"
run cordon gpu-1; contains "cordon" "node/gpu-1 cordoned" "$tmp/o"
run get nodes; contains "cordoned node" "gpu-1 *Ready,SchedulingDisabled" "$tmp/o"
run uncordon gpu-1; contains "uncordon" "node/gpu-1 uncordoned" "$tmp/o"
run get nodes; lacks "uncordoned node" "SchedulingDisabled" "$tmp/o"
# drain moves a service pod surge-then-stop (daemon/surge.h): its replacement
# on gpu-2 must be Ready before the pod on gpu-1 goes.
run cordon gpu-2
# (no GPUs: the examples may have taken gpu-1's)
sed 's/name: chat/name: surge/; s/team: blue/team: green/; s/gpu: "1"/gpu: "0"/' \
    "$tmp/svc.yaml" > "$tmp/surge.yaml"
run apply -f "$tmp/surge.yaml"
podq() { "$A" get pods -l app.kubernetes.io/name=surge -o json |
	jq -r ".items[] | select($1) | .metadata.name"; }
i=0; orig=""
while [ -z "$orig" ] && [ $i -lt 100 ]; do orig=$(podq '.spec.nodeName == "gpu-1"'); sleep 0.1; i=$((i+1)); done
run uncordon gpu-2
check "surge pod placed on gpu-1" 1 "$(echo "$orig" | grep -c .)"
run drain gpu-1 --timeout=1s
check "drain waits for replacements" 1 "$rc"
contains "drain names the waiting pod" "pod/$orig waiting for its replacement" "$tmp/o"
contains "drain timeout names what is left" "timed out draining node/gpu-1; still there:.*pod/$orig" "$tmp/e"
run get node gpu-1 -o json; contains "drain taint" '"key": "llmd.ai/draining"' "$tmp/o"
i=0; repl=""
while [ -z "$repl" ] && [ $i -lt 100 ]; do
	repl=$(podq '.metadata.annotations["llmd.ai/replaces"] == "'"$orig"'" and .spec.nodeName != null')
	sleep 0.1; i=$((i+1)); done
check "replacement named after the slot" "$orig-s" "$(echo "$repl" | cut -c1-$((${#orig}+2)))"
check "replacement bound to gpu-2" "gpu-2" "$("$A" get pod "$repl" -o json | jq -r .spec.nodeName)"
check "old pod kept while the replacement is not Ready" "$orig" "$(podq '.spec.nodeName == "gpu-1"')"
curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $LLMD_TOKEN" \
    -H 'Content-Type: application/merge-patch+json' \
    -d '{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}' \
    "$LLMD_SERVER/api/v1/namespaces/default/pods/$repl/status"
run wait --for=delete "pod/$orig" --timeout=10s
check "old pod deleted once the replacement is Ready" 0 "$rc"
check "the replacement holds the slot" "$repl" "$(podq 'true')"
run uncordon gpu-1
run get node gpu-1 -o json; lacks "uncordon removes the drain taint" "llmd.ai/draining" "$tmp/o"
lacks "uncordon clears unschedulable" '"unschedulable": true' "$tmp/o"
run delete llmisvc surge
run drain gpu-1 --disable-eviction; check "drain exit" 0 "$rc"
contains "drained" "node/gpu-1 drained" "$tmp/o"
sleep 0.5
run get pods -A -o json
if grep -q '"nodeName": "gpu-1"' "$tmp/o"; then ko "drain left pods on gpu-1"; else ok; fi
run uncordon gpu-1

# --- delete ---
run delete llmisvc chat; contains "delete" 'llminferenceservice.serving.kserve.io "chat" deleted' "$tmp/o"
run get pods -l app.kubernetes.io/name=chat -o name; check "children deleted" "" "$(cat "$tmp/o")"
run delete llmisvc chat; check "delete missing exit" 1 "$rc"
run delete llmisvc chat --ignore-not-found; check "ignore-not-found" 0 "$rc"

# --- usage and auth ---
run frobnicate; check "unknown command exit" 2 "$rc"
run c; check "ambiguous exit" 2 "$rc"; contains "ambiguous" "ambiguous command" "$tmp/e"
run get; check "usage exit" 2 "$rc"
LLMD_TOKEN=wrong-token-000 "$A" get llmisvc >"$tmp/o" 2>"$tmp/e"; rc=$?
check "wrong token exit" 1 "$rc"; contains "Unauthorized" "Unauthorized" "$tmp/e"
"$A" --server http://127.0.0.1:1 get nodes >"$tmp/o" 2>"$tmp/e"; rc=$?
check "unreachable exit" 1 "$rc"
run get nodes; check "daemon still up" 0 "$rc"
kill $pid; wait $pid; check "clean shutdown on SIGTERM" 0 "$?"; pid=""

if grep -q "Sanitizer\|runtime error" "$tmp/llmd.log"; then
	ko "sanitizer report in the llmd log:"; grep -A20 "Sanitizer\|runtime error" "$tmp/llmd.log" | head -40
else
	ok
fi
echo "daemon-cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
