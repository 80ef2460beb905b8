#!/bin/bash
# tests/integration/router-backpressure.sh - a slow client never makes the
# router buffer a whole response: a fake engine (python) streams a 48 MiB SSE
# body as fast as loopback allows; a client reading at 1 MiB/s through the
# router keeps the router's resident memory far below the body size; the
# client's disconnect cancels the upstream transfer (the engine sees its
# connection closed) and the router keeps serving.
set -u
. "${top_srcdir:-.}/tests/integration/router-lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }

cat >"$t/fake.py" <<'EOP'
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/metrics":
            b = b'vllm:num_requests_waiting{model_name="f",engine="0"} 0\nvllm:kv_cache_usage_perc{model_name="f",engine="0"} 0\n'
            try:
                self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers()
                self.wfile.write(b)
            except OSError:
                pass
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        ev = b"data: " + b"x" * 65520 + b"\n\n"
        try:
            for _ in range(768):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            self.wfile.write(b"0\r\n\r\n")
            open(sys.argv[2], "a").write("complete\n")
        except (BrokenPipeError, ConnectionResetError):
            open(sys.argv[2], "a").write("closed\n")
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write("%d\n" % s.server_address[1])
s.serve_forever()
EOP
python3 "$t/fake.py" "$t/fake.port" "$t/fake.result" &
pids+=($!)
fp=$(wait_port "$t/fake.port")
cat >"$t/cfg.yaml" <<EOC
pools:
- name: fake
  endpoints: ["127.0.0.1:$fp"]
  scheduler: {metricsStalenessThreshold: 5s}
routes:
- {name: ns/fake, pool: fake}
EOC
# under ASan freed memory sits in a quarantine and inflates RSS: keep it small
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4" start_router "$t/cfg.yaml"
rss() { awk '/^VmRSS/{print $2}' /proc/$router_pid/status; }
before=$(rss)
curl -s -N --limit-rate 1M "$R/ns/fake/big" -o "$t/body" &
cpid=$!
max=0
for _ in $(seq 30); do
	sleep 0.1
	r=$(rss)
	[ "$r" -gt "$max" ] && max=$r
done
got=$(stat -c %s "$t/body")
kill $cpid; wait $cpid 2>/dev/null
grown=$(( (max - before) / 1024 ))
[ "$got" -gt 1000000 ] && ok || no "the slow client received only $got bytes"
[ $grown -lt 16 ] && ok || no "router RSS grew by $grown MiB while relaying to a slow client (body 48 MiB)"
for _ in $(seq 50); do [ -s "$t/fake.result" ] && break; sleep 0.1; done
grep -q closed "$t/fake.result" && ok || no "upstream transfer not cancelled: $(cat "$t/fake.result" 2>/dev/null)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$R/ns/fake/metrics")
[ "$code" = 200 ] && ok || no "router after the slow client: $code"
sanitizer_check
kill -TERM $router_pid; wait $router_pid; rc=$?
[ $rc = 0 ] && ok || no "router SIGTERM exit $rc"
echo "router-backpressure: $pass passed, $fail failed"
[ $fail = 0 ]
