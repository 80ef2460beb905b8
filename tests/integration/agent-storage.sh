#!/bin/bash
# tests/integration/agent-storage.sh - the storage initializer
# (`llmd-agent storage-init`) against a local HTTP server that plays the
# Hugging Face and S3 APIs: only the files an engine needs, HF_TOKEN sent,
# the cache reused, concurrent fetches sharing one download, resume of an
# interrupted fetch, size and digest checks (HF LFS SHA-256, S3 ETag MD5),
# clear errors (unknown model, full disk on
# a small tmpfs), s3:// requests whose SigV4 signatures the server verifies
# (its verifier first checked against AWS's published get-vanilla vector),
# gs:// through the JSON API.
set -u
b=${top_builddir:-.}
b=$(cd "$b" && pwd)
tmp=$(mktemp -d /tmp/llmd-agent-storage.XXXXXX)
pass=0
fail=0
spid=""
ok() { pass=$((pass+1)); }
ko() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if grep -q -- "$2" "$3"; then ok; else ko "$1: '$2' not in: $(head -c 600 "$3")"; fi; }
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	wait 2>/dev/null
	mountpoint -q "$tmp/small" 2>/dev/null && umount "$tmp/small"
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
command -v python3 >/dev/null || { echo "SKIP: python3 needed for the mock server"; exit 77; }

"$b/llmd-engine" make-model --arch qwen3 --out "$tmp/model" --layers 2 --hidden 64 \
    --heads 4 --kv-heads 2 --intermediate 128 --seed 1 >/dev/null 2>&1 ||
	{ echo "FAIL: make-model"; exit 1; }
echo "not for the engine" >"$tmp/model/README.md"

cat >"$tmp/mock.py" <<'PY'
import hashlib, hmac, json, os, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL, LOG, SECRET = sys.argv[1], sys.argv[2], sys.argv[3]
KEY_ID = "AKIDLLMDTEST"

def sign(secret, date, region, service, method, path, query, headers, signed, payload_hash):
    canon_q = "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                       for k, v in sorted(query))
    canon_h = "".join("%s:%s\n" % (h, " ".join(headers[h].strip().split())) for h in signed)
    creq = "\n".join([method, path, canon_q, canon_h, ";".join(signed), payload_hash])
    scope = "%s/%s/%s/aws4_request" % (date[:8], region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()

# AWS's published SigV4 test suite, case get-vanilla.
got = sign("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z", "us-east-1", "service",
           "GET", "/", [], {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"},
           ["host", "x-amz-date"], hashlib.sha256(b"").hexdigest())
if got != "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31":
    print("sigv4 verifier fails the get-vanilla vector: " + got, file=sys.stderr)
    sys.exit(3)

def files():
    return sorted(f for f in os.listdir(MODEL) if os.path.isfile(os.path.join(MODEL, f)))

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def reply(self, code, body, ctype="application/octet-stream", length=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
    def record(self, what):
        with open(LOG, "a") as f:
            f.write("%s %s auth=%s\n" % (what, self.path, self.headers.get("Authorization", "-")))
    def s3_ok(self, u):
        auth = self.headers.get("Authorization", "")
        try:
            parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
            cred = parts["Credential"].split("/")
            signed = parts["SignedHeaders"].split(";")
            hdrs = {h: self.headers.get(h, "") for h in signed}
            ph = self.headers.get("x-amz-content-sha256", hashlib.sha256(b"").hexdigest())
            want = sign(SECRET, self.headers["x-amz-date"], cred[2], cred[3], self.command, u.path,
                        urllib.parse.parse_qsl(u.query, keep_blank_values=True), hdrs, signed, ph)
            good = cred[0] == KEY_ID and hmac.compare_digest(want, parts["Signature"])
        except Exception as ex:
            good = False
        self.record("S3-SIG-%s" % ("OK" if good else "BAD"))
        return good
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        p = u.path.split("/")
        if u.path.startswith("/api/models/"):
            repo = "/".join(p[3:5])
            if repo not in ("org/tiny", "org/liar", "org/big", "org/corrupt"):
                return self.reply(404, b'{"error":"Repository not found"}', "application/json")
            self.record("HF-INFO")
            if repo == "org/big":
                sib = [{"rfilename": "model.safetensors", "size": 4 << 20}]
            else:
                sib = [{"rfilename": f, "size": os.path.getsize(os.path.join(MODEL, f))} for f in files()]
                for x in sib:   # LFS files carry their SHA-256 (?blobs=true)
                    if x["rfilename"].endswith(".safetensors"):
                        data = open(os.path.join(MODEL, x["rfilename"]), "rb").read()
                        x["lfs"] = {"sha256": hashlib.sha256(data + (b"x" if repo == "org/corrupt" else b"")).hexdigest(),
                                    "size": len(data)}
                sib.append({"rfilename": "sub/extra.safetensors", "size": 1})
                if repo == "org/liar":
                    for x in sib:
                        if x["rfilename"] == "config.json":
                            x["size"] += 1
            return self.reply(200, json.dumps({"id": repo, "siblings": sib}).encode(), "application/json")
        if len(p) >= 6 and p[3] == "resolve":
            self.record("HF-GET")
            time.sleep(0.05)
            if p[2] == "big":
                return self.reply(200, b"\0" * (4 << 20))
            return self.reply(200, open(os.path.join(MODEL, p[-1]), "rb").read())
        if p[1] == "bucket":
            if not self.s3_ok(u):
                return self.reply(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
            if len(p) == 2 or p[2] == "":
                q = dict(urllib.parse.parse_qsl(u.query))
                pre = q.get("prefix", "")
                def etag(f, k):
                    md5 = hashlib.md5(open(os.path.join(MODEL, f), "rb").read()).hexdigest()
                    return md5[::-1] if k.startswith("models/badetag/") else md5
                xml = "".join("<Contents><Key>%s</Key><Size>%d</Size><ETag>&quot;%s&quot;</ETag></Contents>"
                              % (k, os.path.getsize(os.path.join(MODEL, f)), etag(f, k))
                              for f in files() for k in ["models/tiny/" + f, "models/badetag/" + f] if k.startswith(pre))
                return self.reply(200, ("<ListBucketResult>%s</ListBucketResult>" % xml).encode(), "application/xml")
            return self.reply(200, open(os.path.join(MODEL, p[-1]), "rb").read())
        if u.path.startswith("/storage/v1/b/gbucket/o"):
            self.record("GS")
            if u.path.endswith("/o"):
                items = [{"name": "tiny/" + f, "size": str(os.path.getsize(os.path.join(MODEL, f)))} for f in files()]
                return self.reply(200, json.dumps({"items": items}).encode(), "application/json")
            name = urllib.parse.unquote(p[-1])
            return self.reply(200, open(os.path.join(MODEL, name.split("/")[-1]), "rb").read())
        self.reply(404, b"not found")

class S(ThreadingHTTPServer):
    def server_bind(self):
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$tmp/mock.py" "$tmp/model" "$tmp/requests.log" "llmd-test-secret" >"$tmp/port" 2>"$tmp/mock.err" &
spid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
if ! [ -s "$tmp/port" ]; then echo "FAIL: mock server: $(cat "$tmp/mock.err")"; exit 1; fi
ok   # the SigV4 verifier reproduced AWS's get-vanilla signature (else it exits)
port=$(cat "$tmp/port")
export HF_ENDPOINT="http://127.0.0.1:$port" HF_TOKEN=hf_llmd_test
si() { "$b/llmd-agent" storage-init "$@"; }

# --- hf:// ---
si hf://org/tiny --cache "$tmp/cache" >"$tmp/out" 2>"$tmp/err" || ko "hf fetch: $(cat "$tmp/err")"
dir=$(tail -1 "$tmp/out")
for f in config.json tokenizer.json model.safetensors; do
	cmp -s "$tmp/model/$f" "$dir/$f" && ok || ko "hf: $f differs or is missing"
done
[ ! -e "$dir/README.md" ] && [ ! -e "$dir/extra.safetensors" ] && ok || ko "hf: fetched files the engine does not need"
contains "HF_TOKEN sent" "auth=Bearer hf_llmd_test" "$tmp/requests.log"
n1=$(grep -c HF-GET "$tmp/requests.log")
si hf://org/tiny --cache "$tmp/cache" >"$tmp/out2" 2>&1
check "cache hit: same dir" "$dir" "$(tail -1 "$tmp/out2")"
check "cache hit: no download" "$n1" "$(grep -c HF-GET "$tmp/requests.log")"

# concurrent fetches of one model share one download
: >"$tmp/requests.log"
si hf://org/tiny@v2 --cache "$tmp/cc" >"$tmp/c1" 2>&1 &
p1=$!
si hf://org/tiny@v2 --cache "$tmp/cc" >"$tmp/c2" 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
check "concurrent fetches succeed" "0 0" "$r1 $r2"
check "concurrent fetches: one directory" "$(tail -1 "$tmp/c1")" "$(tail -1 "$tmp/c2")"
check "concurrent fetches: one download" "$(ls "$tmp/model" | grep -vc README)" "$(grep -c HF-GET "$tmp/requests.log")"

# resume: complete files of an interrupted fetch are kept
key=$(printf 'hf://org/tiny@v3' | sha256sum | cut -d' ' -f1)
mkdir -p "$tmp/rc/$key.tmp"
cp "$tmp/model/model.safetensors" "$tmp/rc/$key.tmp/"
: >"$tmp/requests.log"
si hf://org/tiny@v3 --cache "$tmp/rc" >/dev/null 2>&1 || ko "resume fetch failed"
if grep -q "resolve/v3/model.safetensors" "$tmp/requests.log"; then ko "resume: fetched a complete file again"; else ok; fi
contains "resume: the rest fetched" "resolve/v3/config.json" "$tmp/requests.log"

# errors
si hf://org/nope --cache "$tmp/cache" >/dev/null 2>"$tmp/err" && ko "unknown model accepted"
contains "unknown model: clear error" "404" "$tmp/err"
si hf://org/liar --cache "$tmp/cache" >/dev/null 2>"$tmp/err" && ko "size mismatch accepted"
contains "size checked" "expected" "$tmp/err"
si hf://org/corrupt --cache "$tmp/cache" >/dev/null 2>"$tmp/err" && ko "corrupt file accepted"
contains "LFS SHA-256 checked" "SHA-256 differs" "$tmp/err"
si ftp://x/y --cache "$tmp/cache" >/dev/null 2>"$tmp/err" && ko "ftp accepted"
contains "bad URI: clear error" "unsupported model URI" "$tmp/err"
mkdir -p "$tmp/small"
if mount -t tmpfs -o size=1m tmpfs "$tmp/small" 2>/dev/null; then
	si hf://org/big --cache "$tmp/small/cache" >/dev/null 2>"$tmp/err" && ko "full disk accepted"
	contains "full disk: clear error" "no space left" "$tmp/err"
	umount "$tmp/small"
else
	echo "note: no tmpfs (not root?): full-disk case skipped"
fi

# --- s3:// with SigV4 (libcurl), checked by the server ---
export AWS_ACCESS_KEY_ID=AKIDLLMDTEST AWS_SECRET_ACCESS_KEY=llmd-test-secret AWS_REGION=eu-west-3
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
: >"$tmp/requests.log"
si s3://bucket/models/tiny --cache "$tmp/cache" >"$tmp/out" 2>"$tmp/err" || ko "s3 fetch: $(cat "$tmp/err")"
d3=$(tail -1 "$tmp/out")
cmp -s "$tmp/model/tokenizer.json" "$d3/tokenizer.json" && ok || ko "s3: tokenizer.json"
cmp -s "$tmp/model/model.safetensors" "$d3/model.safetensors" && ok || ko "s3: weights"
check "s3: every request correctly signed" 0 "$(grep -c S3-SIG-BAD "$tmp/requests.log")"
[ "$(grep -c S3-SIG-OK "$tmp/requests.log")" -ge 2 ] && ok || ko "s3: no signed requests seen"
si s3://bucket/models/badetag --cache "$tmp/cache" >/dev/null 2>"$tmp/err" && ko "s3: bad ETag accepted"
contains "s3: ETag (MD5) checked" "MD5 differs" "$tmp/err"
AWS_SECRET_ACCESS_KEY=wrong si s3://bucket/models/tiny --cache "$tmp/cache2" >/dev/null 2>"$tmp/err" &&
	ko "s3: a wrong secret was accepted"
contains "s3: refused signature, clear error" "403" "$tmp/err"

# --- gs:// ---
STORAGE_EMULATOR_HOST="http://127.0.0.1:$port" si gs://gbucket/tiny --cache "$tmp/cache" \
    >"$tmp/out" 2>"$tmp/err" || ko "gs fetch: $(cat "$tmp/err")"
cmp -s "$tmp/model/config.json" "$(tail -1 "$tmp/out")/config.json" && ok || ko "gs: config.json"

echo "agent-storage: $pass passed, $fail failed"
[ $fail -eq 0 ]
