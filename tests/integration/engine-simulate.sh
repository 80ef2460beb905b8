#!/bin/bash
# tests/integration/engine-simulate.sh - llmd-engine serve --simulate on a
# model directory holding only config + tokenizer: the latency model replaces
# the forward pass while tokenizer, scheduler, KV/prefix-cache accounting, API
# and metrics stay real. 32 concurrent streams finish with exact usage; the
# KV gauge returns to 0; prefix hits are counted; seeded outputs repeat.
# A streaming client that never reads is aborted at --max-stream-backlog.
# P/D between two simulated engines (held blocks, simulated pull, DONE).
# SIGTERM with a stream in flight lets it finish, then exits 0; a stream
# still running when a short grace ends is dropped and the exit is still
# clean; no sanitizer report in any log.
set -u
B=${top_builddir:-.}
pass=0 fail=0
ok() { pass=$((pass+1)); }
no() { fail=$((fail+1)); echo "FAIL: $*"; }
t=$(mktemp -d /tmp/llmd-sim-test.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$t"' EXIT

"$B/llmd-engine" make-model --arch llama --out "$t/full" --layers 1 --hidden 32 --heads 2 --kv-heads 1 \
	--intermediate 64 >/dev/null 2>&1
mkdir -p "$t/m"
cp "$t/full/config.json" "$t/full/tokenizer.json" "$t/full/tokenizer_config.json" "$t/m/"
"$B/llmd-engine" serve "$t/m" --simulate --host 127.0.0.1 --port 0 --served-model-name sim \
	--sim-ttft-ms 5 --sim-itl-ms 2 --sim-jitter 0.2 --max-num-seqs 16 >"$t/port" 2>"$t/log" &
pid=$!
for _ in $(seq 100); do [ -s "$t/port" ] && break; sleep 0.05; done
U="http://127.0.0.1:$(tail -1 "$t/port")"
curl -sf "$U/health" >/dev/null && ok || { no "health"; cat "$t/log"; }
grep -q "\[simulated\]" "$t/log" && ok || no "simulated KV pool logged"

for i in $(seq 32); do
	curl -s -N -H 'Content-Type: application/json' \
		-d "{\"model\":\"sim\",\"prompt\":\"shared prefix shared prefix shared prefix shared prefix shared prefix $i\",\"max_tokens\":12,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" \
		"$U/v1/completions" >"$t/s$i" &
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null
good=0
for i in $(seq 32); do
	grep -q '"completion_tokens":12' "$t/s$i" && grep -q '^data: \[DONE\]' "$t/s$i" && good=$((good+1))
done
[ $good = 32 ] && ok || no "only $good of 32 streams finished with usage 12"
m=$(curl -s "$U/metrics")
grep -q 'vllm:kv_cache_usage_perc{model_name="sim",engine="0"} 0$' <<<"$m" && ok || no "kv usage back to 0"
grep -q 'vllm:request_success_total{model_name="sim",engine="0",finished_reason="length"} 32' <<<"$m" && ok || no "32 successes"
grep -q 'vllm:generation_tokens_total{model_name="sim",engine="0"} 384' <<<"$m" && ok || no "generation tokens 384"
a=$(curl -s -d '{"prompt":"x","max_tokens":6,"seed":5}' "$U/v1/completions" | sed 's/.*"text":"\([^"]*\)".*/\1/')
b=$(curl -s -d '{"prompt":"x","max_tokens":6,"seed":5}' "$U/v1/completions" | sed 's/.*"text":"\([^"]*\)".*/\1/')
[ -n "$a" ] && [ "$a" = "$b" ] && ok || no "seeded simulated text repeats ($a / $b)"
# a streaming client that never reads: aborted once its backlog passes the
# limit (a server with a long context and no step latency)
"$B/llmd-engine" make-model --arch llama --out "$t/long" --layers 1 --hidden 32 --heads 2 --kv-heads 1 \
	--intermediate 64 --max-pos 131072 >/dev/null 2>&1
"$B/llmd-engine" serve "$t/long" --simulate --host 127.0.0.1 --port 0 --served-model-name sim \
	--sim-ttft-ms 0 --sim-itl-ms 0 --sim-jitter 0 --max-stream-backlog 64KiB >"$t/port3" 2>"$t/log3" &
pid3=$!
for _ in $(seq 100); do [ -s "$t/port3" ] && break; sleep 0.05; done
P3=$(tail -1 "$t/port3")
/usr/bin/python3 - "$P3" >"$t/slow.out" 2>&1 <<'PYEOF'
import socket, sys, time, urllib.request
port = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
body = b'{"prompt":"x","max_tokens":120000,"ignore_eos":true,"stream":true}'
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body)
# never read; wait for the server to give up on us
for _ in range(600):
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port).read().decode()
    if 'finished_reason="abort"} 1' in m:
        print("aborted"); break
    time.sleep(0.05)
s.close()
PYEOF
grep -q aborted "$t/slow.out" && grep -q "reads too slowly" "$t/log3" && ok || no "a client that never reads is aborted: $(cat "$t/slow.out")"
# clients that reset their connection while their stream is being written: no SIGPIPE death
/usr/bin/python3 - "$P3" >"$t/rst.out" 2>&1 <<'PYEOF'
import socket, struct, sys
port = int(sys.argv[1])
body = b'{"prompt":"x","max_tokens":120000,"ignore_eos":true,"stream":true}'
for _ in range(10):
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    s.recv(65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print("done")
PYEOF
sleep 0.5
curl -sf "http://127.0.0.1:$P3/health" >/dev/null && kill -0 $pid3 2>/dev/null && ok || no "the engine survives clients resetting mid-stream: $(tail -3 "$t/log3")"
kill -TERM $pid3; wait $pid3; rc=$?
[ $rc = 0 ] && ok || no "exit after the slow client: $rc"

# P/D between two simulated engines: the prefill holds its blocks, the decoder
# "pulls" (latency only), its DONE frees them
# (side channels on free ports: the producer's params name its own)
"$B/llmd-engine" serve "$t/m" --simulate --host 127.0.0.1 --port 0 --served-model-name sim \
	--kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_producer","kv_connector_extra_config":{"side_channel":"127.0.0.1:0"}}' \
	>"$t/pre.port" 2>"$t/log4" &
pid4=$!
"$B/llmd-engine" serve "$t/m" --simulate --host 127.0.0.1 --port 0 --served-model-name sim \
	--kv-transfer-config '{"kv_connector":"LlmdConnector","kv_role":"kv_consumer","kv_connector_extra_config":{"side_channel":"127.0.0.1:0"}}' \
	>"$t/dec.port" 2>"$t/log5" &
pid5=$!
for _ in $(seq 100); do [ -s "$t/pre.port" ] && [ -s "$t/dec.port" ] && break; sleep 0.05; done
PRE="http://127.0.0.1:$(tail -1 "$t/pre.port")"; DEC="http://127.0.0.1:$(tail -1 "$t/dec.port")"
kv=$(curl -s -d '{"prompt":"a prompt long enough to fill a few blocks of the simulated cache, more words here","max_tokens":1,"kv_transfer_params":{"do_remote_decode":true}}' \
	"$PRE/v1/completions" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["kv_transfer_params"]))' 2>/dev/null)
d=$(curl -s -d "{\"prompt\":\"a prompt long enough to fill a few blocks of the simulated cache, more words here\",\"max_tokens\":4,\"kv_transfer_params\":$kv}" "$DEC/v1/completions")
grep -q '"completion_tokens":4' <<<"$d" && ok || no "simulated P/D decode: $kv / $d $(tail -2 "$t/log4")"
curl -s "$DEC/metrics" | grep -q 'llmd:kv_transfer_pulls_total{model_name="sim",engine="0"} 1' && ok || no "simulated pull counted"
freed=0
for _ in $(seq 50); do curl -s "$PRE/metrics" | grep -q 'vllm:kv_cache_usage_perc{model_name="sim",engine="0"} 0$' && { freed=1; break; }; sleep 0.05; done
[ $freed = 1 ] && ok || no "DONE freed the simulated prefill's blocks"
kill -TERM $pid4 $pid5; wait $pid4; rc4=$?; wait $pid5; rc5=$?
[ $rc4 = 0 ] && [ $rc5 = 0 ] && ok || no "P/D engines exit $rc4 $rc5"

# a side-channel port in use: a start-up error, everything freed (no leak report)
/usr/bin/python3 - "$B/llmd-engine" "$t/m" >"$t/log6" 2>&1 <<'PYEOF'
import os, socket, subprocess, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
env = dict(os.environ, VLLM_NIXL_SIDE_CHANNEL_PORT=str(s.getsockname()[1]))
r = subprocess.run([sys.argv[1], "serve", sys.argv[2], "--simulate", "--host", "127.0.0.1", "--port", "0",
    "--kv-transfer-config", '{"kv_connector":"LlmdConnector","kv_role":"kv_producer"}'],
    env=env, capture_output=True, text=True)
sys.stdout.write(r.stderr)
print("rc=%d" % r.returncode)
PYEOF
grep -q "rc=1" "$t/log6" && grep -q "cannot listen" "$t/log6" && ok || no "side channel in use: $(tail -3 "$t/log6")"

# SIGTERM with a stream in flight: it finishes within the grace, exit 0
curl -s -N -d '{"prompt":"in flight","max_tokens":150,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}' \
	"$U/v1/completions" >"$t/inflight" 2>/dev/null &
cpid=$!
for _ in $(seq 100); do grep -q '^data: {' "$t/inflight" && break; sleep 0.02; done
kill -TERM $pid; wait $pid; rc=$?; pid=
wait $cpid
[ $rc = 0 ] && ok || no "SIGTERM exit $rc"
grep -q '"completion_tokens":150' "$t/inflight" && grep -q '^data: \[DONE\]' "$t/inflight" && ok ||
	no "the in-flight stream finished after SIGTERM: $(tail -c 300 "$t/inflight")"

# the grace runs out with streams and a queued request in flight: dropped, clean exit
"$B/llmd-engine" serve "$t/m" --simulate --host 127.0.0.1 --port 0 --served-model-name sim \
	--sim-ttft-ms 5 --sim-itl-ms 5 --max-num-seqs 2 --shutdown-grace 300ms >"$t/port2" 2>"$t/log2" &
pid=$!
for _ in $(seq 100); do [ -s "$t/port2" ] && break; sleep 0.05; done
U2="http://127.0.0.1:$(tail -1 "$t/port2")"
for i in 1 2 3; do
	curl -s -N -d '{"prompt":"never done","max_tokens":5000,"ignore_eos":true,"stream":'$([ $i = 3 ] && echo false || echo true)'}' \
		"$U2/v1/completions" >"$t/long$i" 2>/dev/null &
done
for _ in $(seq 100); do grep -q '^data: {' "$t/long1" && grep -q '^data: {' "$t/long2" && break; sleep 0.02; done
kill -TERM $pid; wait $pid; rc=$?; pid=
[ $rc = 0 ] && ok || no "exit after the grace ran out: $rc"
grep -q "Sanitizer\|runtime error" "$t"/log* && { no "sanitizer report in the engine log"; grep -h -A20 "Sanitizer\|runtime error" "$t"/log* | head -60; } || ok
echo "engine-simulate: $pass passed, $fail failed"
[ $fail = 0 ]
