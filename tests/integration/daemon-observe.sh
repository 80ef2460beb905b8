#!/bin/sh
# tests/integration/daemon-observe.sh - the daemon's /metrics (objects by
# resource and condition, unschedulable pods, cordoned nodes; behind the
# API's authentication) and `llmd-admin top nodes` (GPUs used by the pods
# bound to each node against its allocatable GPUs).
set -u
b=${top_builddir:-.}
command -v curl >/dev/null || { echo "SKIP: no curl command"; exit 77; }
tmp=$(mktemp -d /tmp/llmd-daemon-observe.XXXXXX)
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
check() { if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in $(head -c 600 "$3")"; fi; }

echo "observe-admin-token" >"$tmp/token"
"$b/llmd" --listen 127.0.0.1:0 --data-dir "$tmp/d" --token-file "$tmp/token" 2>"$tmp/llmd.log" &
pid=$!
i=0
while [ ! -s "$tmp/d/llmd.addr" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
U="http://$(cat "$tmp/d/llmd.addr")"
export LLMD_SERVER="$U" LLMD_TOKEN=observe-admin-token
A() { "$b/llmd-admin" "$@"; }

cat >"$tmp/cluster.yaml" <<'EOF'
apiVersion: v1
kind: Node
metadata: {name: gpu-1}
status:
  capacity: {nvidia.com/gpu: "8"}
  allocatable: {nvidia.com/gpu: "8"}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Node
metadata: {name: gpu-2}
status:
  capacity: {nvidia.com/gpu: "4"}
  allocatable: {nvidia.com/gpu: "4"}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: chat, namespace: default}
spec:
  model: {uri: "hf://org/model", name: m}
  replicas: 3
  template:
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "2"}}
EOF
A apply -f "$tmp/cluster.yaml" >/dev/null
check "apply" 0 "$?"
for _ in $(seq 100); do
	[ "$(A get pods 2>/dev/null | grep -c chat)" = 3 ] && break
	sleep 0.1
done
for _ in $(seq 50); do
	A top nodes >"$tmp/top" 2>&1
	[ "$(awk 'NR > 1 { s += $3 } END { print s }' "$tmp/top")" = 6 ] && break
	sleep 0.1
done
check "top nodes exit" 0 "$?"
contains "top header" "GPUS(USED)" "$tmp/top"
check "GPUs used over the nodes" 6 "$(awk 'NR > 1 { s += $3 } END { print s }' "$tmp/top")"
check "pods over the nodes" 3 "$(awk 'NR > 1 { s += $6 } END { print s }' "$tmp/top")"
contains "gpu-1 allocatable" "^gpu-1 *Ready *[0-9]* *8 " "$tmp/top"
A cordon gpu-2 >/dev/null
A top nodes >"$tmp/top"
contains "cordoned in top" "gpu-2 *Ready,SchedulingDisabled" "$tmp/top"
A top pods >/dev/null 2>&1
check "top pods is a usage error" 2 "$?"

code=$(curl -s -o "$tmp/m" -w '%{http_code}' "$U/metrics")
check "/metrics needs a token" 401 "$code"
viewer=$(A token create --role viewer 2>/dev/null | tail -n 1)
code=$(curl -s -o "$tmp/m" -w '%{http_code}' -H "Authorization: Bearer $viewer" "$U/metrics")
check "/metrics for a viewer" 200 "$code"
contains "build info" '^llmd_build_info{version="' "$tmp/m"
contains "nodes counted" '^llmd_objects{resource="nodes"} 2' "$tmp/m"
contains "pods counted" '^llmd_objects{resource="pods"} 3' "$tmp/m"
contains "services counted" '^llmd_objects{resource="llminferenceservices"} 1' "$tmp/m"
contains "node conditions" '^llmd_objects_condition{resource="nodes",condition="Ready",status="True"} 2' "$tmp/m"
contains "cordoned nodes" '^llmd_nodes_unschedulable 1' "$tmp/m"
contains "unschedulable pods" '^llmd_pods_unschedulable 0' "$tmp/m"
contains "TYPE lines" '^# TYPE llmd_objects gauge' "$tmp/m"
contains "reconcile latency histogram" '^llmd_reconcile_seconds_count{kind="LLMInferenceService"} [1-9]' "$tmp/m"
contains "reconcile queue depth" '^llmd_reconcile_queue_depth [0-9]' "$tmp/m"
contains "placement failures" '^llmd_placement_failures_total [0-9]' "$tmp/m"

echo "daemon-observe: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
