#!/bin/bash
# tests/integration/slurm.sh - llmd nodes from Slurm jobs, against a real
# Slurm cluster the test starts on this host (munged and slurmctld, three
# slurmd n1..n3 each in its own network namespace on a bridge, so every
# node has its own address, with fake gpu:8 GRES; everything in a temp
# dir; the daemon and the router stay in the root namespace): llmd-admin slurm
# submit renders the batch template and sbatches it, one llmd-agent --slurm
# per node joins as slurm-JOB-NODE with the job's labels and GPUs, slurm
# list shows the pool, an agent drains its node before the job's end time
# (--drain-margin larger than the time limit), a service placed on the
# first job answers through llmd-router under a steady request stream while
# slurm cancel drains that job (the pod's replacement on a third job is
# Ready before the old pod stops: no failed request), scancels it and
# deletes its nodes; then a raw scancel of the third job (Slurm's SIGTERM
# to every process of the step: the engines ignore it, LLMD_STOP_SIGNAL)
# moves the pod to a fourth job, again with no failed request.
# Needs root and slurmctld/slurmd/munge (Debian: slurmctld slurmd
# slurm-client munge): exits 77 otherwise, and with LLMD_QUICK=1.
set -u
b=${top_builddir:-.}
src=${top_srcdir:-..}
. "$src/tests/integration/netns-lib.sh"
b=$(cd "$b" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
[ "${LLMD_QUICK:-0}" = 1 ] && skip "LLMD_QUICK=1"
[ "$(id -u)" = 0 ] || skip "needs root (slurmd, munged)"
for c in slurmctld slurmd munged mungekey munge sbatch squeue scancel sinfo curl python3 nsenter unshare; do
	command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || skip "no $c (Debian: slurmctld slurmd slurm-client munge)"
done
PATH=$PATH:/usr/sbin

ip netns list >/dev/null 2>&1 || skip "ip netns unavailable"
tmp=$(mktemp -d /tmp/llmd-slurm.XXXXXX)
chmod 755 "$tmp"
S="$tmp/slurm"
port=$(( 21000 + ($$ % 3000) * 3 ))
id=$(( $$ % 100000 ))
net=10.82.$(( ($$ % 200) + 20 ))
br="llsbr$id"
pass=0
fail=0
dpid=""
pids=()

ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in: $(head -c 800 "$3")"; fi; }

cleanup() {
	local p i
	if [ -n "${SLURM_CONF:-}" ]; then
		scancel --user=root 2>/dev/null
		for i in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
	fi
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	for (( i=${#pids[@]}-1; i>=0; i-- )); do kill "${pids[$i]}" 2>/dev/null; done
	wait 2>/dev/null
	netns_down "llsl$id" 3 "$br"
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# --- the network: a bridge and three namespaces, node i at $net.1i ---
netns_up "llsl$id" 3 "$net" "$br" || skip "cannot create a bridge"
# each node's own /etc/hosts and a resolver that fails fast (no 10 s DNS stalls)
printf '127.0.0.1 localhost\n%s.11 n1\n%s.12 n2\n%s.13 n3\n' "$net" "$net" "$net" >"$tmp/hosts"
echo "nameserver 127.0.0.1" >"$tmp/resolv.conf"

# --- the cluster ---
mkdir -p "$S"/{etc,state,run,log,dev,munge,spool/n1,spool/n2,spool/n3} "$tmp/work"
chmod 755 "$S" "$S/run"
chmod 700 "$S/munge"
for g in 0 1 2 3 4 5 6 7; do ln -sf /dev/null "$S/dev/nvidia$g"; done
mungekey --create --keyfile="$S/munge/munge.key" 2>/dev/null || skip "mungekey failed"
munged -F --key-file="$S/munge/munge.key" --socket="$S/run/munge.sock" \
    --pid-file="$S/run/munged.pid" --seed-file="$S/munge/munged.seed" \
    --log-file="$S/log/munged.log" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do
	munge -n -S "$S/run/munge.sock" 2>/dev/null | unmunge -S "$S/run/munge.sock" >/dev/null 2>&1 && break
	sleep 0.1
done
cat >"$S/etc/slurm.conf" <<EOT
ClusterName=llmdtest
SlurmctldHost=localhost($net.1)
SlurmctldPort=$port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/run/munge.sock
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool/%n
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd-%n.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
SchedulerParameters=batch_sched_delay=0
GresTypes=gpu
NodeName=n1 NodeHostname=n1 NodeAddr=$net.11 Port=$((port+1)) CPUs=2 Sockets=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=1000 Gres=gpu:8 State=UNKNOWN
NodeName=n2 NodeHostname=n2 NodeAddr=$net.12 Port=$((port+1)) CPUs=2 Sockets=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=1000 Gres=gpu:8 State=UNKNOWN
NodeName=n3 NodeHostname=n3 NodeAddr=$net.13 Port=$((port+1)) CPUs=2 Sockets=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=1000 Gres=gpu:8 State=UNKNOWN
PartitionName=debug Nodes=n1,n2,n3 Default=YES MaxTime=INFINITE State=UP
EOT
cat >"$S/etc/gres.conf" <<EOT
AutoDetect=off
NodeName=n1 Name=gpu File=$S/dev/nvidia[0-7]
NodeName=n2 Name=gpu File=$S/dev/nvidia[0-7]
NodeName=n3 Name=gpu File=$S/dev/nvidia[0-7]
EOT
export SLURM_CONF="$S/etc/slurm.conf"
slurmctld -D -c -f "$SLURM_CONF" >"$S/log/ctld.out" 2>&1 &
pids+=($!)
# slurmd of node i inside namespace i (nsenter, not ip netns exec: that remounts
# /sys and slurmd then finds no cgroup fs), with its own hostname and /etc/hosts
for i in 1 2 3; do
	nsenter --net="/run/netns/llsl$id-$i" unshare --uts --mount --propagation private sh -c \
	    'hostname "$1"; mount --bind "$2/hosts" /etc/hosts; mount --bind "$2/resolv.conf" /etc/resolv.conf;
	     exec slurmd -D -N "$1" -f "$3"' sh "n$i" "$tmp" "$SLURM_CONF" \
	    >"$S/log/slurmd-n$i.out" 2>&1 &
	pids+=($!)
done
for _ in $(seq 100); do
	[ "$(sinfo -h -N -o %T 2>/dev/null | grep -c idle)" = 3 ] && break
	sleep 0.1
done
[ "$(sinfo -h -N -o %T 2>/dev/null | grep -c idle)" = 3 ] ||
	skip "the local Slurm cluster did not come up: $(tail -3 "$S/log/slurmctld.log" 2>&1)"

# --- llmd ---
echo "slurm-test-admin-token" >"$tmp/admin.token"
LLMD_NODE_MONITOR_PERIOD=500ms "$b/llmd" --listen "$net.1:0" --insecure-http --data-dir "$tmp/d" \
    --token-file "$tmp/admin.token" --presets-dir "$src/etc/presets" 2>>"$tmp/llmd.log" &
dpid=$!
for _ in $(seq 100); do [ -s "$tmp/d/llmd.addr" ] && break; sleep 0.05; done
export LLMD_SERVER="http://$(cat "$tmp/d/llmd.addr")" LLMD_TOKEN=slurm-test-admin-token
A() { "$b/llmd-admin" "$@"; }
# nodes JOB -> "name ready unschedulable gpus" lines
nodes() {
	curl -s -H "Authorization: Bearer $LLMD_TOKEN" \
	    "$LLMD_SERVER/api/v1/nodes?labelSelector=slurm.schedmd.com%2Fjob-id%3D$1" | python3 -c '
import json, sys
for n in json.load(sys.stdin).get("items", []):
    r = [c["status"] for c in n.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
    print(n["metadata"]["name"], (r or ["?"])[0], n.get("spec", {}).get("unschedulable", False),
          n.get("status", {}).get("capacity", {}).get("nvidia.com/gpu", "0"))'
}
submit() {
	A slurm submit --work-dir "$tmp/work" --agent-arg --fake-gpus --agent-arg H100-80GB \
	    --agent-arg --heartbeat-interval --agent-arg 500ms "$@"
}

# --- a two-node pool ---
submit --nodes 2 --gpus-per-node 2 --time 10 >"$tmp/sub.out" 2>"$tmp/sub.err"
check "submit exit" 0 "$?"
job=$(tail -n 1 "$tmp/sub.out")
case "$job" in ''|*[!0-9]*) ko "job id: '$job' $(cat "$tmp/sub.err")";; *) ok;; esac
ls "$tmp/work"/llmd-agents-*.sbatch >/dev/null 2>&1 && ok || ko "no batch script written"
grep -q "^#SBATCH --gres=gpu:2" "$tmp/work"/llmd-agents-*.sbatch && ok || ko "gres directive"
check "join token private" 600 "$(stat -c %a "$tmp"/work/join-token-* | head -1)"
for _ in $(seq 150); do
	[ "$(nodes "$job" | grep -c ' True ')" = 2 ] && break
	sleep 0.2
done
nodes "$job" >"$tmp/nodes.txt"
check "two nodes Ready" 2 "$(grep -c ' True ' "$tmp/nodes.txt")"
check "node names" "slurm-$job-n1 slurm-$job-n2" "$(cut -d' ' -f1 "$tmp/nodes.txt" | sort | xargs)"
check "the step's GPUs" "2 2" "$(cut -d' ' -f4 "$tmp/nodes.txt" | xargs)"
A get node "slurm-$job-n1" -o json >"$tmp/n1.json"
contains "pool label" "\"llmd.io/nodepool\": \"slurm-$job\"" "$tmp/n1.json"
contains "slurm node label" '"slurm.schedmd.com/node": "n1"' "$tmp/n1.json"
contains "partition label" '"slurm.schedmd.com/partition": "debug"' "$tmp/n1.json"
A slurm list >"$tmp/list.txt"
contains "slurm list shows the pool" "slurm-$job *$job *RUNNING *2 *2" "$tmp/list.txt"
A get nodepools >"$tmp/np.txt"
contains "get nodepools shows the job" "^slurm-$job *slurm *$job *2 *2 " "$tmp/np.txt"

# --- the agent drains its node before the job's end (margin > time limit) ---
submit --nodes 1 --gpus-per-node 1 --time 1 --drain-margin 2m >"$tmp/sub2.out" 2>&1
job2=$(tail -n 1 "$tmp/sub2.out")
for _ in $(seq 150); do
	nodes "$job2" | grep -q ' True True ' && break
	sleep 0.2
done
check "node drained before the end time" 1 "$(nodes "$job2" | grep -c ' True True ')"
grep -q "draining at its agent's request" "$tmp/llmd.log" && ok || ko "no drain logged by llmd"

# --- a service on the first job, through the router ---
"$b/llmd-engine" make-model --arch qwen3 --out "$tmp/model" --layers 2 --hidden 64 \
    --heads 4 --kv-heads 2 --intermediate 128 --seed 1 >/dev/null 2>&1 || ko "make-model"
cat >"$tmp/svc.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: chat, namespace: default}
spec:
  model: {uri: "file://$tmp/model", name: tiny}
  replicas: 1
  router: {gateway: {}, route: {}}
  template:
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "1"}}
EOT
A apply -f "$tmp/svc.yaml" >/dev/null
A wait --for=condition=Ready llmisvc/chat --timeout 60s >/dev/null || ko "chat not Ready: $(A get pods 2>&1)"
pod_node() { A get pods -l app.kubernetes.io/name=chat -o json | python3 -c '
import json, sys
print(" ".join(sorted(p["spec"].get("nodeName", "-") for p in json.load(sys.stdin)["items"])))'; }
case "$(pod_node)" in "slurm-$job-n"[123]) ok;; *) ko "chat on the first job: $(pod_node)";; esac
# the pod is reached at its node's own address (its namespace), not loopback
pip=$(A get pods -l app.kubernetes.io/name=chat -o json | python3 -c '
import json, sys
print(" ".join(p.get("status", {}).get("podIP", "-") for p in json.load(sys.stdin)["items"]))')
check "pod IP is its node's address" "$net.1$(pod_node | sed 's/.*-n//')" "$pip"
"$b/llmd-router" --server "$LLMD_SERVER" --token-file "$tmp/admin.token" \
    --name kserve-ingress-gateway --listen 127.0.0.1:0 --no-access-log \
    >"$tmp/router.port" 2>"$tmp/router.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/router.port" ] && break; sleep 0.05; done
R="http://127.0.0.1:$(tail -1 "$tmp/router.port")"
for _ in $(seq 100); do
	code=$(curl -s -o "$tmp/r" -w '%{http_code}' -d '{"model":"tiny","prompt":"hi","max_tokens":2}' \
	    "$R/default/chat/v1/completions")
	[ "$code" = 200 ] && break
	sleep 0.1
done
check "answers through the router" 200 "$code"

# --- a second allocation joins: the pod's next home ---
submit --nodes 1 --gpus-per-node 1 --time 10 >"$tmp/sub3.out" 2>&1
job3=$(tail -n 1 "$tmp/sub3.out")
for _ in $(seq 150); do
	[ "$(nodes "$job3" | grep -c ' True False ')" = 1 ] && break
	sleep 0.2
done
check "third job's node Ready" 1 "$(nodes "$job3" | grep -c ' True False ')"

# --- a steady request stream while the first job ends ---
cat >"$tmp/load.py" <<'EOP'
import json, os, sys, threading, time, urllib.request, urllib.error
url, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
codes, lock = [], threading.Lock()
def worker(w):
    i = 0
    while not os.path.exists(stop):
        i += 1
        body = json.dumps({"model": "tiny", "prompt": "steady %d %d" % (w, i), "max_tokens": 4}).encode()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                r.read(); c = r.status
        except urllib.error.HTTPError as e:
            c = e.code
        except Exception as e:
            c = 0
        with lock:
            codes.append(c)
        time.sleep(0.02)
ts = [threading.Thread(target=worker, args=(w,)) for w in range(2)]
[t.start() for t in ts]
[t.join() for t in ts]
bad = [c for c in codes if c != 200]
open(out, "w").write("%d %d %s\n" % (len(codes), len(bad), sorted(set(bad))))
EOP
python3 "$tmp/load.py" "$R/default/chat/v1/completions" "$tmp/load.stop" "$tmp/load.out" &
lpid=$!
sleep 1
t0=$(date +%s.%N)

# --- cancel: drain, scancel, delete ---
A slurm cancel "$job" >"$tmp/cancel.out" 2>&1
check "cancel exit" 0 "$?"
t1=$(date +%s.%N)
sleep 1
touch "$tmp/load.stop"
wait $lpid
read -r total failed codes <"$tmp/load.out"
echo "slurm allocation end: $total requests, $failed failed $codes; cancel took $(python3 -c "print(round($t1 - $t0, 1))") s"
check "no failed request while the allocation ended" 0 "$failed"
[ "$total" -gt 10 ] && ok || ko "steady stream too thin: $total requests"
case "$(pod_node)" in "slurm-$job3-n"[123]) ok;; *) ko "the pod moved to the third job: $(pod_node)";; esac
contains "cancel waited for replacements" "waiting for its replacement" "$tmp/cancel.out"
contains "cancel reports" "slurm job $job cancelled, 2 node(s) removed" "$tmp/cancel.out"
A get nodepools >"$tmp/np2.txt"
grep -q "^slurm-$job " "$tmp/np2.txt" && ko "node pool of a cancelled job still listed" || ok
check "nodes deleted" 0 "$(nodes "$job" | wc -l)"
check "job gone from the queue" "" "$(squeue -h -j "$job" -o %T 2>/dev/null | grep -E 'RUNNING|PENDING')"
for _ in $(seq 30); do pgrep -f "node-$job-" >/dev/null || break; sleep 0.1; done
pgrep -f "node-$job-" >/dev/null && ko "agents of job $job still running" || ok
A slurm cancel "$job2" >/dev/null 2>&1
check "second cancel" 0 "$?"

# --- a raw scancel (as preemption or an admin would): Slurm signals every
# process of the step; the agent drains and the engines (LLMD_STOP_SIGNAL)
# keep serving until the pod's replacement on a fourth job is Ready ---
submit --nodes 1 --gpus-per-node 1 --time 10 >"$tmp/sub4.out" 2>&1
job4=$(tail -n 1 "$tmp/sub4.out")
for _ in $(seq 150); do
	[ "$(nodes "$job4" | grep -c ' True False ')" = 1 ] && break
	sleep 0.2
done
check "fourth job's node Ready" 1 "$(nodes "$job4" | grep -c ' True False ')"
rm -f "$tmp/load.stop"
python3 "$tmp/load.py" "$R/default/chat/v1/completions" "$tmp/load.stop" "$tmp/load2.out" &
lpid=$!
sleep 1
scancel "$job3"
for _ in $(seq 400); do
	[ -z "$(squeue -h -j "$job3" -o %T 2>/dev/null)" ] && break
	sleep 0.1
done
check "third job ended" "" "$(squeue -h -j "$job3" -o %T 2>/dev/null)"
sleep 1
touch "$tmp/load.stop"
wait $lpid
read -r total failed codes <"$tmp/load2.out"
echo "slurm raw scancel: $total requests, $failed failed $codes"
check "no failed request through a raw scancel" 0 "$failed"
case "$(pod_node)" in "slurm-$job4-n"[123]) ok;; *) ko "the pod moved to the fourth job: $(pod_node)";; esac
cat "$tmp"/work/node-"$job3"-*/pods/*/logs/main.log 2>/dev/null | grep -q "SIGTERM ignored" &&
	ok || ko "the engine did not ignore Slurm's SIGTERM"
A delete llmisvc chat >/dev/null 2>&1
A slurm cancel "$job4" >/dev/null 2>&1
check "fourth cancel" 0 "$?"
A slurm cancel "12;x" >/dev/null 2>&1
check "bad job id" 2 "$?"

echo "slurm: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
