#!/bin/bash
# tests/integration/agent-stack.sh - one llmd and three llmd-agents, each agent
# in its own network namespace on a bridge (fake GPUs, tiny generated model):
# join tokens, registration, a two-replica service spread over two nodes with
# its pods' env/addresses, a chat completion through a pod, an engine killed
# and restarted with back-off, kill -9 of the agent (engines re-adopted, not
# duplicated) and of the daemon (nothing lost), logs through llmd-admin,
# clear conditions for a missing model and a bad URI, prefill/decode pods
# (sidecar condition while llmd-router has no sidecar mode, the scheduler pod
# needs no process), a multi-node service (workers get the leader's address,
# a failing member recreates the group), a node whose agent dies going
# NotReady and its pods moving to other nodes.
# Needs root and `ip netns`; exits 77 (skip) otherwise. LLMD_QUICK=1 skips
# the slow node-failure part.
set -u
b=${top_builddir:-.}
src=${top_srcdir:-..}
. "$src/tests/integration/netns-lib.sh"
b=$(cd "$b" && pwd)

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root for network namespaces"; exit 77; fi
if ! ip netns list >/dev/null 2>&1 || ! command -v nsenter >/dev/null; then
	echo "SKIP: ip netns / nsenter unavailable"; exit 77
fi

tmp=$(mktemp -d /tmp/llmd-agent-stack.XXXXXX)
chmod 755 "$tmp"
id=$(( $$ % 100000 ))
net=10.81.$(( ($$ % 200) + 20 ))
br="llmdbr$id"
pass=0
fail=0
dpid=""
apids=("" "" "" "")

ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in: $(head -c 800 "$3")"; fi; }

cleanup() {
	local i
	[ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null
	for i in 1 2 3; do
		[ -n "${apids[$i]}" ] && kill "${apids[$i]}" 2>/dev/null
	done
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	wait 2>/dev/null
	netns_down "llmdag$id" 3 "$br"
	mountpoint -q "$tmp/a3/models" 2>/dev/null && umount "$tmp/a3/models"
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# --- the network: a bridge and three namespaces ---
netns_up "llmdag$id" 3 "$net" "$br" || { echo "SKIP: cannot create a bridge"; exit 77; }

# --- the daemon (token: it listens on a non-loopback address) ---
echo "agent-stack-admin-token" > "$tmp/admin.token"
start_daemon() {
	LLMD_NODE_GRACE=3s LLMD_NODE_EVICTION=6s LLMD_NODE_MONITOR_PERIOD=500ms \
	"$b/llmd" --listen "$net.1:${dport:-0}" --insecure-http --data-dir "$tmp/d" --token-file "$tmp/admin.token" \
	    --presets-dir "$src/etc/presets" 2>>"$tmp/llmd.log" &
	dpid=$!
	local i=0
	while [ $i -lt 100 ]; do
		[ -s "$tmp/d/llmd.addr" ] && curl -sf "http://$(cat "$tmp/d/llmd.addr")/healthz" \
		    >/dev/null 2>&1 && break
		sleep 0.1; i=$((i+1))
	done
}
start_daemon
addr=$(cat "$tmp/d/llmd.addr")
dport=${addr##*:}   # a restarted daemon comes back on the same port
export LLMD_SERVER="http://$addr" LLMD_TOKEN=agent-stack-admin-token
A() { "$b/llmd-admin" "$@"; }

"$b/llmd-engine" make-model --arch qwen3 --out "$tmp/model" --layers 2 --hidden 64 \
    --heads 4 --kv-heads 2 --intermediate 128 --seed 1 >/dev/null 2>&1 ||
	{ echo "FAIL: make-model"; exit 1; }

# A Hugging Face stand-in on the bridge: org/big is larger than n3's model cache.
cat >"$tmp/hf.py" <<'PY'
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
MODEL = sys.argv[2]
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path.startswith("/api/models/org/tiny/revision/"):
            body = json.dumps({"siblings": [{"rfilename": f, "size": os.path.getsize(os.path.join(MODEL, f))}
                                            for f in sorted(os.listdir(MODEL))]}).encode()
        elif self.path.startswith("/org/tiny/resolve/"):
            body = open(os.path.join(MODEL, self.path.split("/")[-1]), "rb").read()
        elif self.path.startswith("/api/models/org/big/revision/"):
            body = json.dumps({"siblings": [{"rfilename": "model.safetensors", "size": 8 << 20}]}).encode()
        elif self.path.startswith("/org/big/resolve/"):
            body = b"\0" * (8 << 20)
        else:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
class S(ThreadingHTTPServer):
    def server_bind(self):
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = sys.argv[1], self.server_address[1]
s = S((sys.argv[1], 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$tmp/hf.py" "$net.1" "$tmp/model" >"$tmp/hf.port" 2>"$tmp/hf.err" &
mpid=$!
for _ in $(seq 50); do [ -s "$tmp/hf.port" ] && break; sleep 0.1; done
hf="http://$net.1:$(cat "$tmp/hf.port")"
# n3's model cache is a 2 MiB tmpfs (a full disk)
mkdir -p "$tmp/a3/models"
mount -t tmpfs -o size=2m tmpfs "$tmp/a3/models" 2>/dev/null && small_disk=1 || small_disk=0

A node token create --ttl 1h >"$tmp/tok.out" 2>/dev/null
tail -1 "$tmp/tok.out" >"$tmp/join.token"
check "token format" 1 "$(grep -cE '^[0-9a-f]{12}\.[0-9a-f]{32}$' "$tmp/join.token")"

# node i: agent i in namespace i (n1 runs the real CPU engine, n2/n3 simulate)
start_agent() {
	local i=$1 extra=()
	[ "$i" != 1 ] && extra=(--engine-arg --simulate)
	HF_ENDPOINT=$hf \
	nsenter --net="/run/netns/llmdag$id-$i" "$b/llmd-agent" --server "http://$addr" \
	    --token-file "$tmp/join.token" --node-name "n$i" --data-dir "$tmp/a$i" \
	    --address "$net.1$i" --fake-gpus 4xH100-80GB --labels "rack=r$i" \
	    --backoff-initial 500ms --backoff-max 2s --probe-period 300ms \
	    --heartbeat-interval 500ms --sync-interval 1s --grace-period 2s \
	    --engine-arg --max-model-len --engine-arg 1024 "${extra[@]}" \
	    2>>"$tmp/agent$i.log" &
	apids[$i]=$!
}
for i in 1 2 3; do start_agent $i; done
for _ in $(seq 100); do
	[ "$(A get nodes 2>/dev/null | grep -c ' Ready ')" = 3 ] && break
	sleep 0.1
done
check "three nodes Ready" 3 "$(A get nodes | grep -c ' Ready ')"
A get node n2 -o json >"$tmp/n2.json"
contains "node address" "\"$net.12\"" "$tmp/n2.json"
contains "node GPUs" '"nvidia.com/gpu": "4"' "$tmp/n2.json"
contains "node label" '"rack": "r2"' "$tmp/n2.json"
contains "agent url" "llmd.io/agent-url" "$tmp/n2.json"

# pod field of pod NAME (python expression on p)
podq() { A get pods -o json | python3 -c "
import json, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
for p in json.load(sys.stdin)['items']:
    if '$1' in p['metadata']['name']:
        st = p.get('status', {}); print($2)"; }

# --- a two-replica service on the generated model ---
cat > "$tmp/svc.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: chat, namespace: default}
spec:
  model: {uri: "file://$tmp/model", name: tiny}
  replicas: 2
  template:
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "2"}}
EOT
A apply -f "$tmp/svc.yaml" >/dev/null
A wait --for=condition=Ready llmisvc/chat --timeout 60s >/dev/null ||
	ko "chat not Ready: $(A get llmisvc,pods 2>&1)"
podq chat "p['spec']['nodeName'], st.get('podIP'), st.get('httpPort'), st['phase']" \
    >"$tmp/pods.txt"
check "two pods running" 2 "$(grep -c Running "$tmp/pods.txt")"
check "spread over two nodes" 2 "$(cut -d' ' -f1 "$tmp/pods.txt" | sort -u | wc -l)"
while read -r node ip port _; do
	check "pod IP is its node's" "$net.1${node#n}" "$ip"
	[ "$port" -ge 30000 ] && ok || ko "host port $port"
done <"$tmp/pods.txt"
ip1=$(podq chat "st['podIP']" | head -1)
port1=$(podq chat "st['httpPort']" | head -1)
curl -sf -H 'Content-Type: application/json' \
    -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}' \
    "http://$ip1:$port1/v1/chat/completions" >"$tmp/chat.json"
contains "chat completion through a pod" '"chat.completion"' "$tmp/chat.json"
# engine env: GPUs and pod identity
pod1=$(podq chat "p['metadata']['name']" | head -1)
epid=$(podq "$pod1" "st['containerStatuses'][0]['state']['running']['pid']")
tr '\0' '\n' </proc/"$epid"/environ >"$tmp/env.txt"
check "two GPUs" 1 "$(grep -cE '^CUDA_VISIBLE_DEVICES=[0-3],[0-3]$' "$tmp/env.txt")"
contains "pod name in env" "LLMD_POD_NAME=$pod1" "$tmp/env.txt"
tr '\0' ' ' </proc/"$epid"/cmdline >"$tmp/cmd.txt"
contains "engine serves the model path" "serve $tmp/model" "$tmp/cmd.txt"
contains "port rewritten" "--port $port1" "$tmp/cmd.txt"

# a node credential writes only its own node's pods
other=$(podq chat "p['metadata']['name'] if p['spec']['nodeName'] != '$(podq "$pod1" "p['spec']['nodeName']")' else ''" | grep . | head -1)
n_own=$(podq "$pod1" "p['spec']['nodeName']")
cred=$(cat "$tmp/a${n_own#n}/credential")
code=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H "Authorization: Bearer $cred" \
    -H 'Content-Type: application/merge-patch+json' -d '{"status":{"phase":"Failed"}}' \
    "http://$addr/api/v1/namespaces/default/pods/$other/status")
check "another node's pod is not writable with a node credential" 401 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $cred" \
    "http://$addr/api/v1/namespaces/default/secrets")
check "secrets are not readable with a node credential" 401 "$code"

# logs through llmd-admin (from the agent)
A logs "$pod1" --tail 5 >"$tmp/logs.txt" 2>&1
contains "llmd-admin logs" "llmd-engine" "$tmp/logs.txt"
aurl=$(A get node "$(podq "$pod1" "p['spec']['nodeName']")" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["annotations"]["llmd.io/agent-url"])')
check "agent logs need credentials" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$aurl/v1/logs/default/$pod1")"
check "agent logs with a bad token" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$aurl/v1/logs/default/$pod1")"

# --- an engine killed: restarted with back-off ---
kill -9 "$epid"
for _ in $(seq 100); do
	rc=$(podq "$pod1" "st['containerStatuses'][0]['restartCount']")
	[ "${rc:-0}" -ge 1 ] && break; sleep 0.1
done
check "restart counted" 1 "$rc"
A wait --for=condition=Ready llmisvc/chat --timeout 30s >/dev/null ||
	ko "chat not Ready after an engine restart"
epid2=$(podq "$pod1" "st['containerStatuses'][0]['state'].get('running', {}).get('pid')")
[ "$epid2" != "$epid" ] && [ "$epid2" != None ] && ok || ko "engine pid after restart: $epid2"

# --- kill -9 of an agent: the engine is re-adopted, not duplicated ---
node1=$(podq "$pod1" "p['spec']['nodeName']"); i1=${node1#n}
before=$(ip netns pids "llmdag$id-$i1" | xargs -r ps -o comm= -p | grep -c llmd-engine)
kill -9 "${apids[$i1]}"; wait "${apids[$i1]}" 2>/dev/null
start_agent "$i1"
for _ in $(seq 50); do grep -q "re-adopted" "$tmp/agent$i1.log" && break; sleep 0.1; done
contains "re-adopted" "re-adopted 1 running" "$tmp/agent$i1.log"
sleep 1.5
after=$(ip netns pids "llmdag$id-$i1" | xargs -r ps -o comm= -p | grep -c llmd-engine)
check "engines on the node after an agent kill -9" "$before" "$after"
check "same engine" "$epid2" "$(podq "$pod1" "st['containerStatuses'][0]['state'].get('running', {}).get('pid')")"

# --- kill -9 of the daemon: nothing lost ---
kill -9 "$dpid"; wait "$dpid" 2>/dev/null
start_daemon
A wait --for=condition=Ready llmisvc/chat --timeout 30s >/dev/null ||
	ko "chat not Ready after the daemon's kill -9"
check "same pods after the daemon restart" "$(cut -d' ' -f1 "$tmp/pods.txt" | sort | tr '\n' ' ')" \
    "$(podq chat "p['spec']['nodeName']" | sort | tr '\n' ' ')"
A logs "$pod1" --tail 1 >/dev/null 2>&1 && ok || ko "logs after the daemon restart"

# --- failures with clear conditions ---
cat > "$tmp/bad.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: missing, namespace: default}
spec:
  model: {uri: "file://$tmp/no-such-model", name: m}
  replicas: 1
---
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: badhf, namespace: default}
spec:
  model: {uri: "hf://no-such-org/no-such-model", name: m}
  replicas: 1
EOT
A apply -f "$tmp/bad.yaml" >/dev/null
for _ in $(seq 100); do
	m=$(podq missing "[c.get('reason') for c in st.get('conditions', []) if c['type']=='Ready']")
	h=$(podq badhf "[c.get('reason') for c in st.get('conditions', []) if c['type']=='Ready']")
	case "$m$h" in *ModelNotFound*StorageInitializerFailed*) break;; esac
	sleep 0.2
done
check "missing model file" "['ModelNotFound']" "$m"
check "bad hf:// model" "['StorageInitializerFailed']" "$h"
podq missing "[c.get('message') for c in st.get('conditions', []) if c['type']=='Ready']" >"$tmp/m.txt"
contains "message names the path" "no-such-model" "$tmp/m.txt"
A delete llmisvc missing badhf >/dev/null

# a model fetched by the storage initializer (hf://) into the node's cache
cat > "$tmp/hf.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: fromhf, namespace: default}
spec:
  model: {uri: "hf://org/tiny", name: tiny}
  replicas: 1
  template:
    nodeSelector: {kubernetes.io/hostname: n2}
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "1"}}
EOT
A apply -f "$tmp/hf.yaml" >/dev/null
A wait --for=condition=Ready llmisvc/fromhf --timeout 60s >/dev/null ||
	ko "hf:// service not Ready: $(A get pods 2>&1)"
contains "hf:// model in n2's cache" "hf://org/tiny at $tmp/a2/models/" "$tmp/agent2.log"
A delete llmisvc fromhf >/dev/null

if [ "$small_disk" = 1 ]; then
	cat > "$tmp/full.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: full, namespace: default}
spec:
  model: {uri: "hf://org/big", name: big}
  replicas: 1
  template:
    nodeSelector: {kubernetes.io/hostname: n3}
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "1"}}
EOT
	A apply -f "$tmp/full.yaml" >/dev/null
	for _ in $(seq 100); do
		f=$(podq full "p['spec'].get('nodeName'), [c.get('reason') for c in st.get('conditions', []) if c['type']=='Ready']" 2>/dev/null)
		case "$f" in *StorageFull*|*Failed*) break;; esac
		sleep 0.2
	done
	check "full disk: clear condition on n3" "n3 ['StorageFull']" "$f"
	podq full "[c.get('message') for c in st.get('conditions', []) if c['type']=='Ready']" >"$tmp/f.txt"
	contains "full disk: message" "no space left" "$tmp/f.txt"
	A delete llmisvc full >/dev/null
fi

# --- prefill/decode: the routing sidecar needs llmd-router's sidecar mode ---
cat > "$tmp/pd.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: pd, namespace: default}
spec:
  model: {uri: "file://$tmp/model", name: tiny}
  replicas: 1
  prefill:
    replicas: 1
    template:
      containers:
      - name: main
        resources: {limits: {nvidia.com/gpu: "1"}}
  template:
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "1"}}
  router: {scheduler: {}, route: {}, gateway: {}}
EOT
A apply -f "$tmp/pd.yaml" >/dev/null
for _ in $(seq 100); do
	d=$(podq pd-kserve- "p['metadata']['name'], [c.get('reason') for c in st.get('conditions', []) if c['type']=='Ready'], [c.get('status') for c in st.get('conditions', []) if c['type']=='Ready']" 2>/dev/null)
	echo "$d" | grep -q "prefill.*True" && echo "$d" | grep -v prefill | grep -v scheduler |
	    grep -qE "UnsupportedContainer|True" && break
	sleep 0.2
done
echo "$d" >"$tmp/pd.txt"
contains "prefill pod runs" "prefill.*\['True'\]" "$tmp/pd.txt"
contains "scheduler pod needs no process" "scheduler.*\['True'\]" "$tmp/pd.txt"
if "$b/llmd-router" --help 2>&1 | grep -q sidecar; then
	contains "decode pod with its sidecar Ready" "^pd-kserve-[a-z0-9]*-[a-z0-9]* \[None\] \['True'\]" "$tmp/pd.txt"
	dpod=$(grep -oE "^pd-kserve-[a-z0-9]+-[a-z0-9]+ " "$tmp/pd.txt" | head -1 | tr -d " ")
	daddr=$(podq "$dpod" "'%s:%s' % (st['podIP'], st['httpPort'])" 2>/dev/null)
	curl -sf -H 'Content-Type: application/json' \
	    -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}' \
	    "http://$daddr/v1/chat/completions" >"$tmp/pdchat.json"
	contains "chat through the decode pod's sidecar" '"chat.completion"' "$tmp/pdchat.json"
else
	contains "decode pod: clear sidecar condition" "UnsupportedContainer" "$tmp/pd.txt"
	podq pd-kserve- "[c.get('message') for c in st.get('conditions', []) if c['type']=='Ready']" \
	    >"$tmp/pdm.txt" 2>/dev/null
	contains "sidecar condition names the image" "llm-d-routing-sidecar" "$tmp/pdm.txt"
fi
A delete llmisvc pd >/dev/null

# --- multi-node (LeaderWorkerSet): leader address, group recreation ---
cat > "$tmp/mn.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: mn, namespace: default}
spec:
  model: {uri: "file://$tmp/model", name: tiny}
  replicas: 1
  parallelism: {pipeline: 2}
  template:
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "1"}}
  worker:
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "1"}}
EOT
A apply -f "$tmp/mn.yaml" >/dev/null
# (the leader's node address: nodes are n1..n3 = $net.11..13)
for _ in $(seq 150); do
	grep -qE -- "--master-addr=$net\.1[123] --node-rank=1" "$tmp"/agent*.log && break
	sleep 0.2
done
cat "$tmp"/agent*.log >"$tmp/agents.log"
contains "worker gets the leader's address" "--master-addr=$net\.1[123] --node-rank=1" "$tmp/agents.log"
contains "leader gets its own address" "--master-addr=$net\.1[123] --node-rank=0" "$tmp/agents.log"
for _ in $(seq 50); do
	A get pod mn-kserve-mn-0 -o json >"$tmp/leader.json" 2>/dev/null && break; sleep 0.2
done
contains "leader env" "LWS_WORKER_INDEX" "$tmp/leader.json"
if ! "$b/llmd-engine" serve --help 2>&1 | grep -q -- "--nnodes"; then
	# This engine refuses pipeline parallelism: each failure recreates the group.
	uid0=$(A get pod mn-kserve-mn-0 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["uid"])')
	for _ in $(seq 100); do
		uid1=$(A get pod mn-kserve-mn-0 -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["uid"])' 2>/dev/null)
		[ -n "$uid1" ] && [ "$uid1" != "$uid0" ] && break
		sleep 0.2
	done
	[ -n "$uid1" ] && [ "$uid1" != "$uid0" ] && ok || ko "LWS group not recreated after a failure"
	grep -q "recreating the group" "$tmp/agents.log" "$tmp"/agent*.log && ok || ko "group restart log"
fi
A delete llmisvc mn >/dev/null

if [ "${LLMD_QUICK:-0}" != 1 ]; then
	# --- a node dies (agent and its engines): NotReady, pods move ---
	node2=$(podq chat "p['spec']['nodeName']" | tail -1); i2=${node2#n}
	for p in $(ip netns pids "llmdag$id-$i2"); do kill -9 "$p" 2>/dev/null; done
	wait "${apids[$i2]}" 2>/dev/null; apids[$i2]=""
	for _ in $(seq 100); do
		A get node "$node2" 2>/dev/null | grep -q NotReady && break; sleep 0.1
	done
	A get node "$node2" >"$tmp/node.txt"
	contains "dead node NotReady" NotReady "$tmp/node.txt"
	for _ in $(seq 150); do
		podq chat "p['spec'].get('nodeName')" 2>/dev/null | grep -q "$node2" || break; sleep 0.1
	done
	A wait --for=condition=Ready llmisvc/chat --timeout 60s >/dev/null ||
		ko "chat not Ready after eviction: $(A get pods 2>&1)"
	podq chat "p['spec'].get('nodeName')" >"$tmp/after.txt"
	check "pods moved off the dead node" 0 "$(grep -c "$node2" "$tmp/after.txt")"
	check "still two pods" 2 "$(grep -c n "$tmp/after.txt")"
fi

A delete llmisvc chat >/dev/null
for _ in $(seq 100); do
	[ "$(pgrep -c -f "llmd-engine serve $tmp/model")" = 0 ] && break; sleep 0.1
done
check "engines stopped after delete" 0 "$(pgrep -c -f "llmd-engine serve $tmp/model")"

for i in 1 2 3; do
	grep -E "AddressSanitizer|runtime error" "$tmp/agent$i.log" && ko "sanitizer report in agent $i"
done
grep -E "AddressSanitizer|runtime error" "$tmp/llmd.log" && ko "sanitizer report in llmd"
echo "agent-stack: $pass passed, $fail failed"
[ $fail -eq 0 ]
