#!/bin/sh
# tests/integration/programs.sh - every program answers --help and --version,
# and rejects an unknown option with exit status 2.
set -u
b=${top_builddir:-.}
fail=0
pass=0
for p in llmd llmd-agent llmd-engine llmd-router llmd-admin; do
	if "$b/$p" --help | grep -q "usage: $p"; then pass=$((pass+1)); else echo "FAIL: $p --help"; fail=$((fail+1)); fi
	if "$b/$p" --version | grep -q "^$p (llmd) [0-9]"; then pass=$((pass+1)); else echo "FAIL: $p --version"; fail=$((fail+1)); fi
	"$b/$p" --no-such-flag >/dev/null 2>&1
	if [ $? -eq 2 ]; then pass=$((pass+1)); else echo "FAIL: $p bad flag exit status"; fail=$((fail+1)); fi
done
echo "programs: $pass passed, $fail failed"
[ $fail -eq 0 ]
