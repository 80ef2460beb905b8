#!/bin/sh
# tests/integration/cli-config.sh - llmd-admin's config file against an
# HTTPS llmd: server, tokenFile and the CA bundle (inline PEM, or a path
# relative to the file) from $LLMD_CONFIG and from --config, the private
# temp file of the inline CA removed afterwards, the environment winning
# over the file and flags over the environment, an unknown key refused at
# FILE:LINE with exit 2, and `config view` with the token redacted.
set -u
b=${top_builddir:-.}
LLMD="$b/llmd"
ADMIN="$b/llmd-admin"
command -v curl >/dev/null || { echo "SKIP: no curl command"; exit 77; }
tmp=$(mktemp -d /tmp/llmd-cli-config.XXXXXX)
pass=0
fail=0
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in $(head -c 400 "$3")"; fi; }
absent() { if grep -q -- "$2" "$3"; then ko "$1: '$2' found"; else ok; fi; }

echo "cli-config-admin-token" >"$tmp/token"
"$LLMD" --listen 127.0.0.1:0 --data-dir "$tmp/d" --tls --token-file "$tmp/token" \
    2>"$tmp/llmd.log" &
pid=$!
i=0
while [ ! -s "$tmp/d/llmd.addr" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
U="https://$(cat "$tmp/d/llmd.addr")"
unset LLMD_SERVER LLMD_TOKEN LLMD_CA LLMD_CONFIG
export HOME="$tmp/home" TMPDIR="$tmp/t"
mkdir -p "$HOME/.config/llmd" "$TMPDIR" "$tmp/c"

# inline PEM, token from a file next to the config
cp "$tmp/token" "$tmp/c/admin.token"
{
	echo "server: $U"
	echo "tokenFile: admin.token"
	echo "certificateAuthorityData: |"
	sed 's/^/  /' "$tmp/d/pki/ca.crt"
} >"$tmp/c/inline.yaml"
chmod 600 "$tmp/c/inline.yaml"
LLMD_CONFIG="$tmp/c/inline.yaml" "$ADMIN" get nodes >"$tmp/out" 2>&1
check "LLMD_CONFIG with an inline CA" 0 "$?"
check "the inline CA's temp file is gone" "" "$(ls "$TMPDIR")"

# the default file, with the CA as a path relative to it
cp "$tmp/d/pki/ca.crt" "$HOME/.config/llmd/ca.crt"
printf 'server: %s\ntoken: cli-config-admin-token\ncertificateAuthority: ca.crt\n' "$U" \
    >"$HOME/.config/llmd/config.yaml"
chmod 600 "$HOME/.config/llmd/config.yaml"
"$ADMIN" get nodes >"$tmp/out" 2>&1
check "~/.config/llmd/config.yaml" 0 "$?"
"$ADMIN" --config "$tmp/c/inline.yaml" get nodes >"$tmp/out" 2>&1
check "--config" 0 "$?"

# precedence: environment over the file, flags over the environment
LLMD_TOKEN=wrong-token "$ADMIN" get nodes >"$tmp/out" 2>&1
check "LLMD_TOKEN wins over the file" 1 "$?"
contains "LLMD_TOKEN's token was sent" "Unauthorized" "$tmp/out"
LLMD_TOKEN=wrong-token "$ADMIN" --token cli-config-admin-token get nodes >"$tmp/out" 2>&1
check "--token wins over LLMD_TOKEN" 0 "$?"
LLMD_CA=/dev/null "$ADMIN" get nodes >"$tmp/out" 2>&1
[ $? -ne 0 ] && ok || ko "LLMD_CA did not replace the file's CA"
LLMD_CA=/dev/null "$ADMIN" --certificate-authority "$tmp/d/pki/ca.crt" get nodes \
    >"$tmp/out" 2>&1
check "--certificate-authority wins over LLMD_CA" 0 "$?"

# errors
printf 'server: %s\n# the kubectl spelling\ncertificate-authority: ca.crt\n' "$U" \
    >"$tmp/c/bad.yaml"
"$ADMIN" --config "$tmp/c/bad.yaml" get nodes >"$tmp/out" 2>&1
check "unknown key: exit 2" 2 "$?"
contains "unknown key at FILE:LINE" "$tmp/c/bad.yaml:3: unknown key \"certificate-authority\"" \
    "$tmp/out"
LLMD_CONFIG="$tmp/c/none.yaml" "$ADMIN" get nodes >"$tmp/out" 2>&1
check "a missing LLMD_CONFIG file: exit 2" 2 "$?"

# config view
"$ADMIN" config view >"$tmp/view" 2>&1
check "config view" 0 "$?"
contains "view names the file" "# $HOME/.config/llmd/config.yaml" "$tmp/view"
contains "view shows the server" "server: $U" "$tmp/view"
contains "view redacts the token" "token: REDACTED" "$tmp/view"
absent "no token in the view" "cli-config-admin-token" "$tmp/view"
"$ADMIN" --config "$tmp/c/inline.yaml" config view >"$tmp/view" 2>&1
contains "view omits inline CA data" "certificateAuthorityData: DATA+OMITTED" "$tmp/view"
absent "no PEM in the view" "BEGIN CERTIFICATE" "$tmp/view"

echo "cli-config: $pass passed, $fail failed"
[ "$fail" = 0 ]
