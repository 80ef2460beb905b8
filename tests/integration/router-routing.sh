#!/bin/bash
# tests/integration/router-routing.sh - llmd-router in front of four
# simulated engines and one real tiny CPU engine: managed-route prefix
# rewrite, /v1/models through the service path, JSON 404s for unknown paths
# and models, same-prefix requests sticking to one endpoint while distinct
# prefixes spread, token-id prompts routed and counted, decisions in the
# router's /metrics and headers, SSE streamed through, client disconnect
# cancelling the engine request, and the openai npm client streaming
# through the router (skipped without node).
set -u
. "${top_srcdir:-.}/tests/integration/router-lib.sh"

make_model
for i in 1 2 3 4; do
	start_engine e$i --served-model-name sim --sim-ttft-ms 2 --sim-itl-ms 1 --sim-jitter 0
done
"$ENGINE" serve "$t/full" --host 127.0.0.1 --port 0 --served-model-name tiny --threads 1 \
	>"$t/real.port" 2>"$t/real.log" &
pids+=($!)
real_port=$(wait_port "$t/real.port")
cat >"$t/cfg.yaml" <<EOC
pools:
- name: svc
  endpoints: ["127.0.0.1:$e1_port", "127.0.0.1:$e2_port", "127.0.0.1:$e3_port", "127.0.0.1:$e4_port"]
  models: [sim]
  scheduler: {metricsStalenessThreshold: 5s}
- name: real
  endpoints: ["127.0.0.1:$real_port"]
  models: [tiny]
routes:
- {name: ns/svc, pool: svc}
- {name: ns/real, pool: real}
EOC
start_router "$t/cfg.yaml"

# /v1/models through the service path (prefix rewritten to the engine path)
r=$(curl -s "$R/ns/svc/v1/models")
grep -q '"id":"sim"' <<<"$r" && ok || no "GET /ns/svc/v1/models: $r"

# unknown path and unknown model: 404 with a JSON error
code=$(curl -s -o "$t/b" -w '%{http_code}' "$R/nowhere/v1/models")
[ "$code" = 404 ] && grep -q '"error"' "$t/b" && ok || no "unknown path: $code $(cat "$t/b")"
code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"gpt-9","prompt":"x"}' "$R/ns/svc/v1/completions")
[ "$code" = 404 ] && grep -q 'gpt-9' "$t/b" && ok || no "unknown model: $code $(cat "$t/b")"
code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"sim",' "$R/ns/svc/v1/completions")
[ "$code" = 400 ] && grep -q '"error"' "$t/b" && ok || no "malformed JSON: $code $(cat "$t/b")"

# a body of another declared type passes through unparsed (proxied, not a router 400)
curl -s -o /dev/null -D "$t/hp" -H 'Content-Type: text/plain' --data 'plain words' "$R/ns/svc/v1/completions"
[ -n "$(dest "$t/hp")" ] && ok || no "text/plain body not proxied: $(head -1 "$t/hp")"

# same prefix sticks to one endpoint
long=$(printf 'You are a helpful assistant for the llmd project. %.0s' $(seq 20))
for i in $(seq 8); do
	curl -s -D "$t/h$i" -o "$t/o$i" -d "{\"model\":\"sim\",\"prompt\":\"$long question $i\",\"max_tokens\":2}" \
		"$R/ns/svc/v1/completions"
	sleep 0.1
done
first=$(dest "$t/h1")
same=0
for i in $(seq 8); do [ "$(dest "$t/h$i")" = "$first" ] && same=$((same+1)); done
[ -n "$first" ] && [ $same = 8 ] && ok || no "same-prefix requests on $same of 8 to $first"
grep -q '"completion_tokens":2' "$t/o8" && ok || no "response through the router: $(cat "$t/o8")"

# distinct prefixes spread over the endpoints
for i in $(seq 24); do
	p=$(printf "prefix-%d-%.0s" $i $(seq 40))
	curl -s -D "$t/d$i" -o /dev/null -d "{\"model\":\"sim\",\"prompt\":\"$p\",\"max_tokens\":1}" \
		"$R/ns/svc/v1/completions" &
done
wait $(jobs -p | grep -v -F -x -f <(printf '%s\n' "${pids[@]}")) 2>/dev/null
n=$(for i in $(seq 24); do dest "$t/d$i"; done | sort -u | wc -l)
[ "$n" -ge 3 ] && ok || no "distinct prefixes went to $n endpoints only"

# token-id prompts are routed and counted as tokens
before=$(curl -s "$R/metrics" | sed -n 's/^llmd_router_prompt_tokens_total{pool="svc"} //p')
code=$(curl -s -o "$t/b" -w '%{http_code}' -d '{"model":"sim","prompt":[1,2,3,4,5,6,7],"max_tokens":2}' \
	"$R/ns/svc/v1/completions")
after=$(curl -s "$R/metrics" | sed -n 's/^llmd_router_prompt_tokens_total{pool="svc"} //p')
[ "$code" = 200 ] && grep -q '"prompt_tokens":7' "$t/b" && ok || no "token-id prompt: $code $(cat "$t/b")"
[ "$(awk -v a="$after" -v b="$before" 'BEGIN{print a-b}')" = 7 ] && ok || no "token count $before -> $after"

# decisions counted in the router's /metrics
m=$(curl -s "$R/metrics")
grep -q "llmd_router_scheduler_decisions_total{pool=\"svc\",endpoint=\"$first\"}" <<<"$m" && ok \
	|| no "decisions metric"
grep -q 'llmd_router_endpoint_ready{pool="svc",endpoint="127.0.0.1:'"$e1_port"'"} 1' <<<"$m" && ok \
	|| no "endpoint ready gauge"

# SSE streamed through, ends with [DONE]
curl -s -N -d '{"model":"sim","prompt":"stream me","max_tokens":5,"stream":true}' \
	"$R/ns/svc/v1/completions" >"$t/sse"
# (up to 5 chunks: the detokenizer holds back a token ending inside a UTF-8 sequence)
n=$(grep -c '^data: {' "$t/sse")
[ "$n" -ge 1 ] && [ "$n" -le 5 ] && grep '^data: {' "$t/sse" | tail -1 | grep -q '"finish_reason":"length"' &&
	tail -2 "$t/sse" | grep -q '^data: \[DONE\]' && ok \
	|| no "SSE through the router: $(head -c 300 "$t/sse")"

# a client that goes away cancels the engine request
curl -s -N --max-time 0.4 -D "$t/hc" -d '{"model":"sim","prompt":"cancel me please","max_tokens":3000,"stream":true}' \
	"$R/ns/svc/v1/completions" >/dev/null
ep=$(dest "$t/hc")
sleep 0.3
running=$(curl -s "http://$ep/metrics" | sed -n 's/^vllm:num_requests_running{[^}]*} //p')
[ -n "$ep" ] && [ "$running" = 0 ] && ok || no "engine $ep still runs $running after the client left"
curl -s "http://$ep/metrics" | grep -q 'finished_reason="abort"} 1' && ok || no "engine saw an abort"

# the openai npm client streams through the router (real tiny engine: greedy checks hold)
if command -v node >/dev/null 2>&1 && [ -d "$S/tests/node/node_modules/openai" ]; then
	if node "$S/tests/node/openai-serve.mjs" "$R/ns/real" tiny >"$t/node.out" 2>&1; then ok
	else no "openai client through the router"; tail -20 "$t/node.out"; fi
else
	echo "SKIP: node or the openai package missing"
fi
# an HTTPS listener (--tls-cert/--tls-key)
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$t/key.pem" \
	-out "$t/cert.pem" -subj /CN=localhost -days 1 >/dev/null 2>&1; then
	"$ROUTER" --config "$t/cfg.yaml" --listen 127.0.0.1:0 --tls-cert "$t/cert.pem" --tls-key "$t/key.pem" \
		>"$t/tls.port" 2>"$t/tls.log" &
	tls_pid=$!
	pids+=($tls_pid)
	TP=$(wait_port "$t/tls.port")
	sleep 0.3
	r=$(curl -s --cacert "$t/cert.pem" "https://localhost:$TP/ns/svc/v1/models")
	grep -q '"id":"sim"' <<<"$r" && ok || no "HTTPS listener: $r"
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TP/ns/svc/v1/models")
	[ "$code" != 200 ] && ok || no "plain HTTP on the TLS listener answered 200"
	kill $tls_pid
else
	echo "SKIP: openssl CLI cannot make a certificate"
fi
sanitizer_check
kill -TERM $router_pid; wait $router_pid; rc=$?
[ $rc = 0 ] && ok || no "router SIGTERM exit $rc"
echo "router-routing: $pass passed, $fail failed"
[ $fail = 0 ]
