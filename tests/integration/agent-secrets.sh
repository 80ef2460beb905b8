#!/bin/bash
# tests/integration/agent-secrets.sh - Secret values reaching a pod's
# processes through the agent: one llmd and one llmd-agent on loopback, a
# Hugging Face stand-in that records the Authorization it gets, and
# services whose main container references Secrets. Checks HF_TOKEN from
# env[].valueFrom.secretKeyRef and envFrom[].secretRef with a prefix in the
# engine's /proc/PID/environ, the storage initializer downloading with that
# HF_TOKEN, a missing Secret keeping the pod from starting with
# CreateContainerConfigError naming the Secret (never a value) and the pod
# starting once the Secret exists, and no Secret value in the agent's or the
# daemon's log nor in `llmd-admin get pod -o yaml`.
set -u
b=${top_builddir:-.}
src=${top_srcdir:-..}
b=$(cd "$b" && pwd)
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
[ -r /proc/self/environ ] || { echo "SKIP: no /proc/PID/environ"; exit 77; }

tmp=$(mktemp -d /tmp/llmd-agent-secrets.XXXXXX)
pass=0
fail=0
dpid=""
apid=""
mpid=""
VALUE=hf_SECRETVALUE_31337
USERV=robot-user-5150

ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in: $(head -c 800 "$3")"; fi; }
absent() { if grep -q -- "$2" "$3"; then ko "$1: '$2' found in $3"; else ok; fi; }

cleanup() {
	[ -n "$apid" ] && kill "$apid" 2>/dev/null
	[ -n "$mpid" ] && kill "$mpid" 2>/dev/null
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

echo "agent-secrets-admin-token" >"$tmp/admin.token"
"$b/llmd" --listen 127.0.0.1:0 --data-dir "$tmp/d" --token-file "$tmp/admin.token" \
    --presets-dir "$src/etc/presets" 2>"$tmp/llmd.log" &
dpid=$!
for _ in $(seq 100); do [ -s "$tmp/d/llmd.addr" ] && break; sleep 0.05; done
export LLMD_SERVER="http://$(cat "$tmp/d/llmd.addr")" LLMD_TOKEN=agent-secrets-admin-token
A() { "$b/llmd-admin" "$@"; }

"$b/llmd-engine" make-model --arch qwen3 --out "$tmp/model" --layers 2 --hidden 64 \
    --heads 4 --kv-heads 2 --intermediate 128 --seed 1 >/dev/null 2>&1 ||
	{ echo "FAIL: make-model"; exit 1; }

# A Hugging Face stand-in: org/tiny is the generated model; each request's
# Authorization header goes to hf.log.
cat >"$tmp/hf.py" <<'PY'
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
MODEL, LOG = sys.argv[1], sys.argv[2]
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        with open(LOG, "a") as f:
            f.write("%s auth=%s\n" % (self.path, self.headers.get("Authorization", "-")))
        if self.path.startswith("/api/models/org/tiny/revision/"):
            body = json.dumps({"siblings": [{"rfilename": f, "size": os.path.getsize(os.path.join(MODEL, f))}
                                            for f in sorted(os.listdir(MODEL))]}).encode()
        elif self.path.startswith("/org/tiny/resolve/"):
            body = open(os.path.join(MODEL, self.path.split("/")[-1]), "rb").read()
        else:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$tmp/hf.py" "$tmp/model" "$tmp/hf.log" >"$tmp/hf.port" 2>"$tmp/hf.err" &
mpid=$!
for _ in $(seq 50); do [ -s "$tmp/hf.port" ] && break; sleep 0.1; done
hf="http://127.0.0.1:$(cat "$tmp/hf.port")"

A node token create --ttl 1h 2>/dev/null | tail -1 >"$tmp/join.token"
start_agent() {
	"$b/llmd-agent" --server "$LLMD_SERVER" --token-file "$tmp/join.token" --node-name s1 \
	    --data-dir "$tmp/a" --address 127.0.0.1 --listen 127.0.0.1:0 --fake-gpus 2xH100-80GB \
	    --backoff-initial 500ms --backoff-max 2s --probe-period 300ms \
	    --heartbeat-interval 500ms --sync-interval 1s --grace-period 2s \
	    --engine-arg --simulate --engine-arg --max-model-len --engine-arg 1024 \
	    2>>"$tmp/agent.log" &
	apid=$!
}
start_agent
for _ in $(seq 100); do
	[ "$(A get nodes 2>/dev/null | grep -c ' Ready ')" = 1 ] && break
	sleep 0.1
done
check "node Ready" 1 "$(A get nodes | grep -c ' Ready ')"

# pod field of the pod whose name has $1 (python expression on p, st)
podq() { A get pods -o json | python3 -c "
import json, sys
for p in json.load(sys.stdin)['items']:
    if '$1' in p['metadata']['name']:
        st = p.get('status', {}); print($2)"; }

cat >"$tmp/secret.yaml" <<EOT
apiVersion: v1
kind: Secret
metadata: {name: hf-cred, namespace: default}
stringData: {token: "$VALUE", user: "$USERV"}
EOT
A apply -f "$tmp/secret.yaml" >/dev/null || ko "apply the Secret"

# --- valueFrom.secretKeyRef + envFrom with a prefix; an hf:// model ---
cat >"$tmp/svc.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: withsecret, namespace: default}
spec:
  model: {uri: "hf://org/tiny", name: tiny}
  template:
    containers:
    - name: main
      env:
      - {name: HF_ENDPOINT, value: "$hf"}
      - name: HF_TOKEN
        valueFrom: {secretKeyRef: {name: hf-cred, key: token}}
      - name: NOT_THERE
        valueFrom: {secretKeyRef: {name: no-such-secret, key: k, optional: true}}
      envFrom:
      - secretRef: {name: hf-cred}
        prefix: CRED_
EOT
A apply -f "$tmp/svc.yaml" >/dev/null
A wait --for=condition=Ready llmisvc/withsecret --timeout 60s >/dev/null ||
	ko "withsecret not Ready: $(A get llmisvc,pods 2>&1; tail -5 "$tmp/agent.log")"
pid=$(podq withsecret "[c['state']['running']['pid'] for c in st.get('containerStatuses', []) if 'running' in c['state']][0]" 2>/dev/null)
if [ -n "$pid" ] && [ -r "/proc/$pid/environ" ]; then
	tr '\0' '\n' <"/proc/$pid/environ" >"$tmp/environ"
	contains "HF_TOKEN from secretKeyRef" "^HF_TOKEN=$VALUE\$" "$tmp/environ"
	contains "envFrom with a prefix (token)" "^CRED_token=$VALUE\$" "$tmp/environ"
	contains "envFrom with a prefix (user)" "^CRED_user=$USERV\$" "$tmp/environ"
	contains "plain env kept" "^HF_ENDPOINT=$hf\$" "$tmp/environ"
	absent "a missing optional Secret sets nothing" "^NOT_THERE=" "$tmp/environ"
else
	ko "no running engine pid for withsecret ($pid)"
fi
contains "storage initializer sent HF_TOKEN" "auth=Bearer $VALUE" "$tmp/hf.log"
absent "storage initializer ran without the token" "revision/.* auth=-" "$tmp/hf.log"

# --- a missing Secret: CreateContainerConfigError, nothing started ---
cat >"$tmp/bad.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: nosecret, namespace: default}
spec:
  model: {uri: "file://$tmp/model", name: tiny}
  template:
    containers:
    - name: main
      env:
      - name: HF_TOKEN
        valueFrom: {secretKeyRef: {name: later-cred, key: token}}
EOT
A apply -f "$tmp/bad.yaml" >/dev/null
reason=""
for _ in $(seq 100); do
	reason=$(podq nosecret "[c.get('reason') for c in st.get('conditions', []) if c['type'] == 'Ready'][0]" 2>/dev/null)
	[ "$reason" = CreateContainerConfigError ] && break
	sleep 0.1
done
check "missing Secret reason" CreateContainerConfigError "$reason"
podq nosecret "[c.get('message', '') for c in st.get('conditions', []) if c['type'] == 'Ready'][0]" \
    >"$tmp/msg" 2>&1
contains "message names the Secret" 'secret "later-cred"' "$tmp/msg"
contains "message names the key" 'key "token"' "$tmp/msg"
check "no process started" 0 "$(podq nosecret "len(st.get('containerStatuses', []))")"
check "still Pending" Pending "$(podq nosecret "st.get('phase')")"
A get pods >"$tmp/pods.txt"
contains "get pods shows why" "nosecret.*CreateContainerConfigError" "$tmp/pods.txt"
if grep "nosecret" "$tmp/agent.log" | grep -q "started"; then ko "a process of nosecret started"; else ok; fi

# --- the Secret appears: the pod starts on a retry ---
sed -e 's/name: hf-cred/name: later-cred/' "$tmp/secret.yaml" >"$tmp/later.yaml"
A apply -f "$tmp/later.yaml" >/dev/null
A wait --for=condition=Ready llmisvc/nosecret --timeout 60s >/dev/null ||
	ko "nosecret not Ready once its Secret exists: $(A get pods 2>&1)"
pid=$(podq nosecret "[c['state']['running']['pid'] for c in st.get('containerStatuses', []) if 'running' in c['state']][0]" 2>/dev/null)
if [ -n "$pid" ] && tr '\0' '\n' <"/proc/$pid/environ" | grep -q "^HF_TOKEN=$VALUE\$"; then
	ok
else
	ko "nosecret's engine has no HF_TOKEN (pid $pid)"
fi

# --- kill -9 of the agent: the engine is re-adopted; its restart still gets the values ---
old=$(podq withsecret "[c['state']['running']['pid'] for c in st.get('containerStatuses', []) if 'running' in c['state']][0]" 2>/dev/null)
kill -9 "$apid"; wait "$apid" 2>/dev/null
start_agent
for _ in $(seq 100); do grep -q "withsecret.*re-adopted 1" "$tmp/agent.log" && break; sleep 0.1; done
contains "engine re-adopted" "withsecret.*re-adopted 1 running" "$tmp/agent.log"
sleep 1   # the agent has the pod's spec and its values again
[ -n "$old" ] && kill -9 "$old"
new=""
for _ in $(seq 100); do
	new=$(podq withsecret "[c['state']['running']['pid'] for c in st.get('containerStatuses', []) if 'running' in c['state']][0]" 2>/dev/null)
	[ -n "$new" ] && [ "$new" != "$old" ] && [ -r "/proc/$new/environ" ] && break
	sleep 0.1
done
if [ -n "$new" ] && [ "$new" != "$old" ] &&
    tr '\0' '\n' <"/proc/$new/environ" | grep -q "^HF_TOKEN=$VALUE\$"; then
	ok
else
	ko "the engine restarted by a restarted agent has no HF_TOKEN (old $old new $new)"
fi

# --- the value is in no log and no pod object ---
for name in withsecret nosecret; do
	pn=$(podq "$name" "p['metadata']['name']")
	A get pod "$pn" -o yaml >"$tmp/pod-$name.yaml" 2>&1
	contains "get pod $name -o yaml works" "secretKeyRef" "$tmp/pod-$name.yaml"
	absent "value in get pod $name -o yaml" "$VALUE" "$tmp/pod-$name.yaml"
	absent "user value in get pod $name -o yaml" "$USERV" "$tmp/pod-$name.yaml"
done
for f in "$tmp/agent.log" "$tmp/llmd.log"; do
	absent "value in $(basename "$f")" "$VALUE" "$f"
	absent "user value in $(basename "$f")" "$USERV" "$f"
done
if grep -rqs -- "$VALUE" "$tmp/a/state"; then ko "value in the agent's state files"; else ok; fi

# a clean exit (sanitizer builds report leaks then)
kill "$apid" 2>/dev/null; wait "$apid" 2>/dev/null; apid=""
kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; dpid=""
for f in "$tmp/agent.log" "$tmp/llmd.log"; do
	absent "sanitizer report in $(basename "$f")" "ERROR: [A-Za-z]*Sanitizer\|runtime error:" "$f"
done

echo "agent-secrets: $pass passed, $fail failed"
[ "$fail" = 0 ]
