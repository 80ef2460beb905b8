#!/bin/sh
# tests/integration/systemd-units.sh - the generated units carry the install
# paths and the settings llmd relies on; `systemd-analyze verify` checks them
# where systemd-analyze exists (skip otherwise: these machines run no systemd).
set -u
B=${top_builddir:-.}
pass=0 fail=0
for u in llmd llmd-agent llmd-router; do
	f="$B/systemd/$u.service"
	if [ -f "$f" ] && grep -q '^Type=notify' "$f" && ! grep -q '@bindir@' "$f" &&
	   grep -q "^ExecStart=/.*/$u " "$f"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $u unit"; fi
done
grep -q '^KillMode=mixed' "$B/systemd/llmd-agent.service" && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: agent KillMode"; }
grep -q '^LimitMEMLOCK=infinity' "$B/systemd/llmd-agent.service" && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: agent MEMLOCK"; }
if command -v systemd-analyze >/dev/null 2>&1; then
	for u in llmd llmd-agent llmd-router; do
		# verify needs the ExecStart binary to exist; point it at the build tree
		sed "s|^ExecStart=[^ ]*/$u |ExecStart=$(cd "$B" && pwd)/$u |" "$B/systemd/$u.service" >"/tmp/$u-verify.service"
		if systemd-analyze verify "/tmp/$u-verify.service" >/tmp/$u-verify.log 2>&1; then pass=$((pass+1));
		else fail=$((fail+1)); echo "FAIL: systemd-analyze verify $u"; cat /tmp/$u-verify.log; fi
		rm -f "/tmp/$u-verify.service" "/tmp/$u-verify.log"
	done
fi
echo "systemd-units: $pass passed, $fail failed"
[ $fail -eq 0 ]
