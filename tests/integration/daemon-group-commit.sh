#!/bin/sh
# tests/integration/daemon-group-commit.sh - writes that reach llmd together
# share a commit (group commit) yet keep their own results: among concurrent
# POSTs, the one that conflicts gets its 409 alone while the others are
# created, a stale PUT fails alone, and every acknowledged write survives
# kill -9.
set -u
b=${top_builddir:-.}
LLMD="$b/llmd"
tmp=$(mktemp -d /tmp/llmd-group-commit.XXXXXX)
pass=0
fail=0
pid=""

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { # check DESCRIPTION EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi
}

start() {
	rm -f "$tmp/d/llmd.addr"
	"$LLMD" --listen 127.0.0.1:0 --data-dir "$tmp/d" --presets-dir /nonexistent 2>>"$tmp/llmd.log" &
	pid=$!
	i=0
	while [ ! -s "$tmp/d/llmd.addr" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
	U="http://$(cat "$tmp/d/llmd.addr")"
}

post() { # post NAME OUTFILE: HTTP code into OUTFILE
	curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	    --data-binary "{\"metadata\":{\"name\":\"$1\"},\"data\":{}}" \
	    "$U/api/v1/namespaces/gc/secrets" > "$2"
}

start
S=$U/api/v1/namespaces/gc/secrets
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary '{"metadata":{"name":"old"},"data":{}}' "$S"
rv=$(curl -s "$S/old" | grep -o '"resourceVersion":"[0-9]*"' | grep -o '[0-9]*')
curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' \
    --data-binary '{"metadata":{"name":"old"},"data":{"x":"eQ=="}}' "$S/old"

# 40 concurrent writes: 36 new names, the name "dup" twice, one stale PUT
# (the resourceVersion read before the update above), one delete of nothing.
jobs=""
for i in $(seq 1 36); do post "s$i" "$tmp/c$i" & jobs="$jobs $!"; done
post dup "$tmp/dup1" & jobs="$jobs $!"
post dup "$tmp/dup2" & jobs="$jobs $!"
curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    --data-binary "{\"metadata\":{\"name\":\"old\",\"resourceVersion\":\"$rv\"},\"data\":{}}" \
    "$S/old" > "$tmp/stale" & jobs="$jobs $!"
curl -s -o /dev/null -w '%{http_code}' -X DELETE "$S/nope" > "$tmp/gone" & jobs="$jobs $!"
for j in $jobs; do wait $j; done
created=0
for i in $(seq 1 36); do [ "$(cat "$tmp/c$i")" = 201 ] && created=$((created+1)); done
check "concurrent creates" 36 "$created"
check "one dup created, one conflict" "201 409" "$( (cat "$tmp/dup1"; echo; cat "$tmp/dup2"; echo) | sort | tr '\n' ' ' | sed 's/ $//')"
check "stale update fails alone" 409 "$(cat "$tmp/stale")"
check "delete of nothing" 404 "$(cat "$tmp/gone")"
n=$(curl -s "$S" | grep -o '"name":"\(s[0-9]*\|dup\|old\)"' | sort -u | wc -l)
check "objects listed" 38 "$n"
check "update before the batch kept" 1 "$(curl -s "$S/old" | grep -c '"x":"eQ=="')"

# Acknowledged means committed: kill -9 loses none of them.
kill -9 $pid; wait $pid 2>/dev/null; pid=""
start
S=$U/api/v1/namespaces/gc/secrets
n=$(curl -s "$S" | grep -o '"name":"\(s[0-9]*\|dup\|old\)"' | sort -u | wc -l)
check "after kill -9" 38 "$n"

echo "daemon-group-commit: $pass passed, $fail failed"
[ $fail -eq 0 ]
