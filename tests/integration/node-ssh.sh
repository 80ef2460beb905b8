#!/bin/bash
# tests/integration/node-ssh.sh - llmd-admin node add/remove over SSH
# (libssh2) against three sshd "hosts" n1..n3 in network namespaces on a
# bridge: an unknown host key refused (and a wrong fingerprint), accepted
# with --accept-host-key and recorded in known_hosts, a failing step named
# with its host, the agent (and engine) uploaded over SFTP and started as a
# supervised background process (no systemd here), nodes Ready, a service
# placed across the three nodes (simulated engines), node add run again
# (idempotent), node remove (drain, stop, uninstall, Node deleted).
# Needs root, ip netns, nsenter/unshare and /usr/sbin/sshd: exits 77 (skip)
# otherwise, and with LLMD_QUICK=1.
set -u
b=${top_builddir:-.}
src=${top_srcdir:-..}
. "$src/tests/integration/netns-lib.sh"
b=$(cd "$b" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
[ "${LLMD_QUICK:-0}" = 1 ] && skip "LLMD_QUICK=1"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
[ -x /usr/sbin/sshd ] || skip "no /usr/sbin/sshd (Debian: openssh-server)"
for c in ip nsenter unshare ssh-keygen curl python3 openssl; do
	command -v "$c" >/dev/null || skip "no $c"
done
ip netns list >/dev/null 2>&1 || skip "ip netns unavailable"

tmp=$(mktemp -d /tmp/llmd-node-ssh.XXXXXX)
chmod 755 "$tmp"
id=$(( $$ % 100000 ))
net=10.82.$(( ($$ % 200) + 20 ))
br="nsbr$id"
pass=0
fail=0
dpid=""

ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in: $(head -c 800 "$3")"; fi; }

cleanup() {
	local i p
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	for i in 1 2 3; do
		[ -s "$tmp/run/sshd-n$i.pid" ] && kill "$(cat "$tmp/run/sshd-n$i.pid")" 2>/dev/null
	done
	netns_down "nsn$id" 3 "$br"
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# --- three hosts: namespaces on a bridge, each with its own sshd ---
mkdir -p "$tmp/ssh" "$tmp/run" "$tmp/net" /run/sshd
netns_up "nsn$id" 3 "$net" "$br" || skip "cannot create a bridge"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/ssh/id_ed25519"
cp "$tmp/ssh/id_ed25519.pub" "$tmp/ssh/authorized_keys"
fp=$(ssh-keygen -l -E sha256 -f "$tmp/ssh/host_key.pub" | cut -d' ' -f2)
printf '127.0.0.1 localhost\n%s.1 llmdctl\n' "$net" >"$tmp/net/hosts"
echo "nameserver 127.0.0.1" >"$tmp/net/resolv.conf"
cat >"$tmp/ssh/sshd_config" <<EOT
Port 2222
HostKey $tmp/ssh/host_key
AuthorizedKeysFile $tmp/ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOT
/usr/sbin/sshd -t -f "$tmp/ssh/sshd_config" || skip "sshd rejects the test config"
for i in 1 2 3; do
	ns="nsn$id-$i"
	nsenter --net="/run/netns/$ns" unshare --uts --mount --propagation private sh -c \
	    "hostname n$i && mount --bind $tmp/net/hosts /etc/hosts &&
	     mount --bind $tmp/net/resolv.conf /etc/resolv.conf &&
	     exec /usr/sbin/sshd -D -e -f $tmp/ssh/sshd_config -o PidFile=$tmp/run/sshd-n$i.pid" \
	    >"$tmp/sshd-n$i.log" 2>&1 &
	echo $! >"$tmp/run/sshd-n$i.pid"
	disown $! 2>/dev/null   # no job notice when cleanup kills it
done
for i in 1 2 3; do
	for _ in $(seq 50); do
		bash -c "exec 3<>/dev/tcp/$net.1$i/2222" 2>/dev/null && break
		sleep 0.1
	done
done

# --- the daemon on the bridge: HTTPS with its own cluster CA ---
echo "node-ssh-admin-token" >"$tmp/admin.token"
LLMD_NODE_GRACE=3s LLMD_NODE_MONITOR_PERIOD=500ms \
"$b/llmd" --listen "$net.1:0" --data-dir "$tmp/d" \
    --token-file "$tmp/admin.token" --presets-dir "$src/etc/presets" 2>>"$tmp/llmd.log" &
dpid=$!
for _ in $(seq 100); do
	[ -s "$tmp/d/llmd.addr" ] && curl -sf --cacert "$tmp/d/pki/ca.crt" \
	    "https://$(cat "$tmp/d/llmd.addr")/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
# llmd-admin verifies the daemon with the CA and hands it to the agents (--ca)
export LLMD_SERVER="https://$(cat "$tmp/d/llmd.addr")" LLMD_TOKEN=node-ssh-admin-token \
    LLMD_CA="$tmp/d/pki/ca.crt"
A() { "$b/llmd-admin" "$@"; }
KH="$tmp/known_hosts"
add() { # add I [ARGS...]
	local i=$1
	shift
	A node add "$net.1$i" --port 2222 --identity "$tmp/ssh/id_ed25519" --known-hosts "$KH" \
	    --remote-dir "$tmp/host$i/opt/llmd" --labels "rack=r$i" --timeout 30s \
	    --agent-arg --fake-gpus --agent-arg 1xH100-80GB \
	    --agent-arg --heartbeat-interval --agent-arg 500ms \
	    --agent-arg --probe-period --agent-arg 300ms \
	    --agent-arg --engine-arg --agent-arg --simulate \
	    --agent-arg --engine-arg --agent-arg --max-model-len \
	    --agent-arg --engine-arg --agent-arg 1024 "$@"
}

# --- host keys ---
add 1 >"$tmp/o" 2>"$tmp/e"
check "unknown host key: exit" 1 "$?"
contains "unknown host key: host named" "node add $net.11: host key" "$tmp/e"
contains "unknown host key: fingerprint shown" "$fp" "$tmp/e"
[ ! -s "$KH" ] && ok || ko "known_hosts written without acceptance"
add 1 --accept-host-key SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA >"$tmp/o" 2>"$tmp/e"
check "wrong fingerprint: exit" 1 "$?"
contains "wrong fingerprint: refused" "not the fingerprint given" "$tmp/e"
A node add "$net.11" --port 2222 --identity "$tmp/ssh/authorized_keys" --known-hosts "$KH" \
    --accept-host-key "$fp" >"$tmp/o" 2>"$tmp/e"
check "bad identity: exit" 1 "$?"
contains "bad identity: step named" "node add $net.11: auth" "$tmp/e"
A node add "$net.11" --port 2223 --known-hosts "$KH" --timeout 5s >"$tmp/o" 2>"$tmp/e"
check "closed port: exit" 1 "$?"
contains "closed port: step named" "node add $net.11: connect" "$tmp/e"

# --- node add: three hosts ---
"$b/llmd-engine" make-model --arch qwen3 --out "$tmp/model" --layers 2 --hidden 64 \
    --heads 4 --kv-heads 2 --intermediate 128 --seed 1 >/dev/null 2>&1 ||
	{ echo "FAIL: make-model"; exit 1; }
add 1 --accept-host-key "$fp" >"$tmp/o1" 2>"$tmp/e1"
check "node add n1" 0 "$?"
contains "node add n1 prints the node" "node/n1 added" "$tmp/o1"
contains "host key recorded" "\[$net.11\]:2222 ssh-ed25519" "$KH"
for i in 2 3; do
	add $i --accept-host-key "$fp" >"$tmp/o$i" 2>"$tmp/e$i"
	check "node add n$i" 0 "$?"
done
A get nodes >"$tmp/nodes"
check "three nodes Ready" 3 "$(grep -c ' Ready ' "$tmp/nodes")"
A get node n2 -o json >"$tmp/n2.json"
contains "node label" '"rack": "r2"' "$tmp/n2.json"
contains "node address is the host" "\"$net.12\"" "$tmp/n2.json"
[ -x "$tmp/host2/opt/llmd/bin/llmd-agent" ] && ok || ko "agent binary not uploaded"
cmp -s "$b/llmd-agent" "$tmp/host2/opt/llmd/bin/llmd-agent" && ok || ko "agent binary differs"
check "join token private" 600 "$(stat -c %a "$tmp/host2/opt/llmd/join-token")"
check "agent's client certificate" "subject=O = node, CN = n2" \
    "$(openssl x509 -in "$tmp/host2/opt/llmd/data/node.crt" -noout -subject 2>&1)"
contains "agent uses the CA" "--ca" "$tmp/host2/opt/llmd/bin/run-agent"
apid=$(cat "$tmp/host2/opt/llmd/agent.pid")
ip netns pids "nsn$id-2" | grep -qx "$apid" && ok || ko "supervisor not in host n2's namespace"

# --- a service across the three hosts ---
cat >"$tmp/svc.yaml" <<EOT
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: chat, namespace: default}
spec:
  model: {uri: "file://$tmp/model", name: tiny}
  replicas: 3
  template:
    containers:
    - name: main
      resources: {limits: {nvidia.com/gpu: "1"}}
EOT
A apply -f "$tmp/svc.yaml" >/dev/null
A wait --for=condition=Ready llmisvc/chat --timeout 60s >/dev/null ||
	ko "chat not Ready: $(A get llmisvc,pods 2>&1)"
A get pods -o json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    print(p["spec"].get("nodeName"), p.get("status", {}).get("phase"))' >"$tmp/pods.txt"
check "three pods running" 3 "$(grep -c Running "$tmp/pods.txt")"
check "one per host" "n1 n2 n3" "$(cut -d' ' -f1 "$tmp/pods.txt" | sort | xargs)"

# --- idempotent: add again converges (files replaced, agent restarted) ---
add 3 >"$tmp/o" 2>"$tmp/e"
check "node add n3 again" 0 "$?"
check "still three nodes Ready" 3 "$(A get nodes | grep -c ' Ready ')"

# --- node remove: drain, stop, uninstall, delete ---
A delete llmisvc chat >/dev/null
spid=$(cat "$tmp/host3/opt/llmd/agent.pid")
A node remove "$net.13" --port 2222 --identity "$tmp/ssh/id_ed25519" --known-hosts "$KH" \
    --remote-dir "$tmp/host3/opt/llmd" >"$tmp/o" 2>"$tmp/e"
check "node remove n3" 0 "$?"
contains "node remove prints the node" "node/n3 removed" "$tmp/o"
A get node n3 >/dev/null 2>&1
check "Node n3 deleted" 1 "$?"
[ ! -e "$tmp/host3/opt/llmd" ] && ok || ko "remote dir left behind"
kill -0 "$spid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$spid/status" 2>/dev/null &&
	ko "agent supervisor still running" || ok
ip netns pids "nsn$id-3" | xargs -r ps -o comm= -p | grep -q llmd-agent &&
	ko "an agent process is left on n3" || ok
A node remove "$net.13" --port 2222 --identity "$tmp/ssh/id_ed25519" --known-hosts "$KH" \
    --remote-dir "$tmp/host3/opt/llmd" >"$tmp/o" 2>"$tmp/e"
check "node remove twice" 0 "$?"
check "two nodes left" 2 "$(A get nodes | grep -c ' Ready ')"

echo "node-ssh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
