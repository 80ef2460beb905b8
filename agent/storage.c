/*
 * agent/storage.c - the built-in storage initializer: resolves a model URI
 * to a local directory. file:// and pvc://NAME/path are used in place;
 * hf://org/model[@revision] (Hugging Face HTTP API; HF_ENDPOINT, HF_TOKEN),
 * s3://bucket/prefix (ListObjectsV2 + GET signed with AWS SigV4 by libcurl;
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
 * AWS_ENDPOINT_URL[_S3] for S3-compatible stores) and gs://bucket/prefix
 * (GCS JSON API; GOOGLE_OAUTH_ACCESS_TOKEN, STORAGE_EMULATOR_HOST) are
 * fetched with libcurl into a per-node cache keyed by URI+revision: only the
 * files an engine needs, into a temp dir renamed into place when complete,
 * sizes checked, complete files of an interrupted fetch kept (resume), and
 * concurrent fetches of one model wait on a lock file and share the result.
 * Those variables come from storage_opts.env (the initializer container's
 * env, Secret values included) before the agent's own environment.
 * Blocking: callers run it on a worker thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

static int
is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int
local_model(const char *path, char **out, struct llmd_err *e)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_set(e, -ENOENT, NULL, "model path %s does not exist on this node",
		    path);
	*out = xstrdup(path);
	return 0;
}

static int
pvc_model(const char *rest, const struct storage_opts *o, char **out, struct llmd_err *e)
{
	const char *slash = strchr(rest, '/');
	size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
	size_t i;

	for (i = 0; o->pvcs && o->pvcs[i]; i++) {
		const char *eq = strchr(o->pvcs[i], '=');
		struct buf b = BUF_INIT;
		int rc;

		if (eq == NULL || (size_t)(eq - o->pvcs[i]) != nl ||
		    strncmp(o->pvcs[i], rest, nl) != 0)
			continue;
		buf_adds(&b, eq + 1);
		if (slash)
			buf_adds(&b, slash);
		rc = local_model(b.buf, out, e);
		buf_release(&b);
		return rc;
	}
	return err_set(e, -ENOENT, NULL, "volume claim \"%.*s\" is not mapped on this node "
	    "(llmd-agent --pvc NAME=PATH)", (int)nl, rest);
}

/* Files an engine needs from a model repository. */
static int
wanted_file(const char *f)
{
	static const char *const exact[] = {
		"config.json", "generation_config.json", "tokenizer.json",
		"tokenizer_config.json", "special_tokens_map.json", "vocab.json",
		"merges.txt", "tokenizer.model", "added_tokens.json",
		"model.safetensors.index.json", "chat_template.jinja", "chat_template.json",
		"preprocessor_config.json",
	};
	size_t i, l = strlen(f);

	if (strchr(f, '/'))
		return 0;
	for (i = 0; i < ARRAY_SIZE(exact); i++)
		if (strcmp(f, exact[i]) == 0)
			return 1;
	return l > 12 && strcmp(f + l - 12, ".safetensors") == 0;
}

/* One file of a remote model: its name in the model dir, URL and size (-1: unknown). */
struct rfile {
	char *name;
	char *url;
	int64_t size;
	char sha256[65];            /* expected digests, "" when unknown */
	char md5[33];
};

/* How requests to one store are authenticated. */
struct auth {
	struct curl_slist *hdrs;    /* e.g. "Authorization: Bearer ..." */
	const char *sigv4;          /* CURLOPT_AWS_SIGV4 provider, or NULL */
	char *userpwd;              /* "KEY:SECRET" for SigV4 */
};

struct dl {
	FILE *f;
	uint64_t done, total_all, done_all;
	void (*progress)(uint64_t, uint64_t, void *);
	void *parg;
	EVP_MD_CTX *sha256, *md5;   /* running digests of the file, when checked */
};

static size_t
dl_write(char *p, size_t sz, size_t n, void *arg)
{
	struct dl *d = arg;
	size_t w = fwrite(p, sz, n, d->f);

	if (d->sha256)
		EVP_DigestUpdate(d->sha256, p, w * sz);
	if (d->md5)
		EVP_DigestUpdate(d->md5, p, w * sz);
	d->done += w * sz;
	d->done_all += w * sz;
	if (d->progress)
		d->progress(d->done_all, d->total_all, d->parg);
	return w * sz;
}

static size_t
mem_write(char *p, size_t sz, size_t n, void *arg)
{
	buf_add(arg, p, sz * n);
	return sz * n;
}

static void
curl_setup(CURL *c, const char *url, const struct auth *au)
{
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "llmd-agent/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, au->hdrs);
	if (au->sigv4) {
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, au->sigv4);
		curl_easy_setopt(c, CURLOPT_USERPWD, au->userpwd);
	}
}

/* GET url into body; 0 or -EACCES/-ENOENT/-EIO with e set. */
static int
get_body(CURL *c, const char *url, const struct auth *au, struct buf *body,
    struct llmd_err *e)
{
	long code = 0;
	CURLcode cc;

	buf_reset(body);
	curl_setup(c, url, au);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	if ((cc = curl_easy_perform(c)) != CURLE_OK)
		return err_set(e, -EIO, NULL, "%s: %s", url, curl_easy_strerror(cc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code == 200)
		return 0;
	return err_set(e, code == 401 || code == 403 ? -EACCES : code == 404 ? -ENOENT : -EIO,
	    NULL, "%s answered HTTP %ld%s", url, code, code == 401 || code == 403 ?
	    " (credentials?)" : "");
}

/* Finishes a running digest into hex and compares it with want. */
static int
digest_matches(EVP_MD_CTX *ctx, const char *want)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	EVP_DigestFinal_ex(ctx, md, &n);
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return strcasecmp(hex, want) == 0;
}

static int
check_digests(const struct rfile *f, struct dl *d, struct llmd_err *e)
{
	int rc = 0;

	if (d->sha256 && !digest_matches(d->sha256, f->sha256))
		rc = err_set(e, -EIO, NULL, "downloading %s: SHA-256 differs from the listing's",
		    f->url);
	if (rc == 0 && d->md5 && !digest_matches(d->md5, f->md5))
		rc = err_set(e, -EIO, NULL, "downloading %s: MD5 differs from the ETag", f->url);
	return rc;
}

/* Downloads one file into path, checking its size. */
static int
get_file_body(CURL *c, const struct rfile *f, const char *path, const struct auth *au,
    struct dl *d, struct llmd_err *e)
{
	CURLcode cc;
	curl_off_t clen = -1;
	long code = 0;
	int werr;

	if ((d->f = fopen(path, "wb")) == NULL)
		return err_set(e, errno == ENOSPC ? -ENOSPC : -errno, NULL, "%s: %s", path,
		    strerror(errno));
	d->done = 0;
	curl_setup(c, f->url, au);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dl_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	cc = curl_easy_perform(c);
	werr = ferror(d->f) || fflush(d->f) != 0;
	werr |= fclose(d->f) != 0;
	d->f = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
	if (werr || cc == CURLE_WRITE_ERROR)
		return err_set(e, -ENOSPC, NULL, "writing %s failed: no space left on the "
		    "model cache's disk?", path);
	if (cc != CURLE_OK)
		return err_set(e, -EIO, NULL, "downloading %s: %s", f->url, curl_easy_strerror(cc));
	if (code != 200)
		return err_set(e, code == 404 ? -ENOENT : code == 401 || code == 403 ? -EACCES :
		    -EIO, NULL, "downloading %s: HTTP %ld", f->url, code);
	if ((clen >= 0 && (curl_off_t)d->done != clen) ||
	    (f->size >= 0 && (int64_t)d->done != f->size))
		return err_set(e, -EIO, NULL, "downloading %s: got %llu bytes, expected %lld",
		    f->url, (unsigned long long)d->done,
		    (long long)(f->size >= 0 ? f->size : (int64_t)clen));
	return 0;
}

/* Downloads one file into path, checking its size and digests (LFS SHA-256, ETag). */
static int
get_file(CURL *c, const struct rfile *f, const char *path, const struct auth *au,
    struct dl *d, struct llmd_err *e)
{
	int rc;

	if (f->sha256[0]) {
		d->sha256 = EVP_MD_CTX_new();
		EVP_DigestInit_ex(d->sha256, EVP_sha256(), NULL);
	}
	if (f->md5[0]) {
		d->md5 = EVP_MD_CTX_new();
		EVP_DigestInit_ex(d->md5, EVP_md5(), NULL);
	}
	rc = get_file_body(c, f, path, au, d, e);
	if (rc == 0)
		rc = check_digests(f, d, e);
	EVP_MD_CTX_free(d->sha256);
	EVP_MD_CTX_free(d->md5);
	d->sha256 = d->md5 = NULL;
	return rc;
}

/* Prefixes e->msg with "what: " (the message is copied first: no overlap). */
static int
err_prefix(struct llmd_err *e, const char *what)
{
	char m[sizeof(e->msg)];

	snprintf(m, sizeof(m), "%s", e->msg);
	return err_set(e, e->code, NULL, "%s: %s", what, m);
}

static void
rfiles_free(struct rfile *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].url);
	}
	free(v);
}

static struct rfile *
rfile_add(struct rfile **v, size_t *n, const char *name, char *url, int64_t size)
{
	struct rfile *f;

	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	f = &(*v)[(*n)++];
	memset(f, 0, sizeof(*f));
	f->name = xstrdup(name);
	f->url = url;
	f->size = size;
	return f;
}

/* Copies a hex digest of exactly len digits, else leaves out empty. */
static void
set_digest(char *out, size_t len, const char *hex)
{
	size_t i;

	out[0] = '\0';
	if (hex == NULL || strlen(hex) != len)
		return;
	for (i = 0; i < len; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f') ||
		    (hex[i] >= 'A' && hex[i] <= 'F')))
			return;
	memcpy(out, hex, len + 1);
}

/*
 * Lists a remote model (lister fills files) and downloads what an engine
 * needs into the cache: CACHE/<sha256(key)>, via CACHE/<..>.tmp and a
 * rename; a lock file serializes fetches of one key (other pods wait and
 * share); complete files of an interrupted fetch are kept (resume).
 */
typedef int (*lister_fn)(CURL *c, void *arg, const struct auth *au, struct rfile **files,
    size_t *n, struct llmd_err *e);

static int
fetch_cached(const char *key_text, const struct storage_opts *o, lister_fn list, void *larg,
    const struct auth *au, char **out, void (*progress)(uint64_t, uint64_t, void *),
    void *parg, struct llmd_err *e)
{
	char key[65], final[4096], tmp[4200], lockp[4200];
	unsigned char md[32];
	unsigned int mdn = 0;
	struct rfile *files = NULL;
	size_t nfiles = 0, i, got = 0;
	CURL *c = NULL;
	int rc = 0, lockfd = -1;
	struct dl d = { NULL, 0, 0, 0, progress, parg };

	EVP_Digest(key_text, strlen(key_text), md, &mdn, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(key + 2 * i, 3, "%02x", md[i]);
	mkdir(o->cache_dir, 0755);
	snprintf(final, sizeof(final), "%s/%s", o->cache_dir, key);
	snprintf(lockp, sizeof(lockp), "%s/%s.lock", o->cache_dir, key);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", o->cache_dir, key);
	if ((lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
	    flock(lockfd, LOCK_EX) < 0) {
		rc = err_set(e, errno == ENOSPC ? -ENOSPC : -errno, NULL, "%s: %s", lockp,
		    strerror(errno));
		goto out;
	}
	if (is_dir(final)) {
		*out = xstrdup(final);
		goto out;
	}
	c = curl_easy_init();
	if ((rc = list(c, larg, au, &files, &nfiles, e)) < 0)
		goto out;
	for (i = 0; i < nfiles; i++)
		if (files[i].size > 0)
			d.total_all += (uint64_t)files[i].size;
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
		rc = err_set(e, errno == ENOSPC ? -ENOSPC : -errno, NULL, "%s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	for (i = 0; i < nfiles; i++) {
		char path[4400];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", tmp, files[i].name);
		if (files[i].size >= 0 && stat(path, &st) == 0 && st.st_size == files[i].size) {
			d.done_all += (uint64_t)st.st_size;
			got++;
			continue;
		}
		if ((rc = get_file(c, &files[i], path, au, &d, e)) < 0) {
			unlink(path);
			goto out;
		}
		got++;
	}
	if (got == 0) {
		rc = err_set(e, -ENOENT, NULL, "%s has no model files", key_text);
		goto out;
	}
	if (rename(tmp, final) < 0) {
		rc = err_set(e, -errno, NULL, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	log_info("storage: %s -> %s (%zu files)", key_text, final, got);
	*out = xstrdup(final);
out:
	if (c)
		curl_easy_cleanup(c);
	rfiles_free(files, nfiles);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}

/* ---- Hugging Face ---- */

struct hf {
	const char *ep, *repo, *rev;
};

static int
hf_list(CURL *c, void *arg, const struct auth *au, struct rfile **files, size_t *n,
    struct llmd_err *e)
{
	struct hf *h = arg;
	struct buf url = BUF_INIT, body = BUF_INIT;
	cJSON *info = NULL;
	const cJSON *sib;
	int rc;

	buf_addf(&url, "%s/api/models/%s/revision/%s?blobs=true", h->ep, h->repo, h->rev);
	rc = get_body(c, url.buf, au, &body, e);
	if (rc == 0 && json_parse(body.buf, body.len, &info, NULL) < 0)
		rc = err_set(e, -EPROTO, NULL, "%s: not JSON", url.buf);
	cJSON_ArrayForEach(sib, cJSON_GetObjectItemCaseSensitive(info, "siblings")) {
		const char *f = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sib,
		    "rfilename"));
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(sib, "size");
		struct buf u = BUF_INIT;

		if (f == NULL || !wanted_file(f))
			continue;
		buf_addf(&u, "%s/%s/resolve/%s/%s", h->ep, h->repo, h->rev, f);
		set_digest(rfile_add(files, n, f, buf_detach(&u, NULL),
		    cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : -1)->sha256, 64,
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(sib, "lfs"), "sha256")));
	}
	if (rc < 0) {
		struct buf w = BUF_INIT;

		buf_addf(&w, "hf://%s@%s", h->repo, h->rev);
		err_prefix(e, w.buf);
		buf_release(&w);
	}
	cJSON_Delete(info);
	buf_release(&url);
	buf_release(&body);
	return rc;
}

/* NAME from the initializer container's env, else the agent's own. */
static const char *
opt_env(const struct storage_opts *o, const char *name)
{
	size_t l = strlen(name), i;

	for (i = 0; o && o->env && o->env[i]; i++)
		if (strncmp(o->env[i], name, l) == 0 && o->env[i][l] == '=')
			return o->env[i] + l + 1;
	return getenv(name);
}

static int
hf_fetch(const char *rest, const struct storage_opts *o, char **out,
    void (*progress)(uint64_t, uint64_t, void *), void *parg, struct llmd_err *e)
{
	const char *tok = opt_env(o, "HF_TOKEN");
	char *repo = xstrdup(rest), *at;
	struct hf h = { opt_env(o, "HF_ENDPOINT"), NULL, "main" };
	struct auth au = { NULL, NULL, NULL };
	struct buf key = BUF_INIT, hdr = BUF_INIT;
	int rc;

	if (h.ep == NULL || !*h.ep)
		h.ep = "https://huggingface.co";
	if ((at = strchr(repo, '@'))) {
		*at = '\0';
		h.rev = at + 1;
	}
	h.repo = repo;
	if (strchr(repo, '/') == NULL || !*h.rev) {
		free(repo);
		return err_set(e, -ENOTSUP, "spec.model.uri", "expected hf://ORG/MODEL[@REVISION]");
	}
	if (tok && *tok) {
		buf_addf(&hdr, "Authorization: Bearer %s", tok);
		au.hdrs = curl_slist_append(NULL, hdr.buf);
	}
	buf_addf(&key, "hf://%s@%s", repo, h.rev);
	rc = fetch_cached(key.buf, o, hf_list, &h, &au, out, progress, parg, e);
	curl_slist_free_all(au.hdrs);
	buf_release(&key);
	buf_release(&hdr);
	free(repo);
	return rc;
}

/* ---- S3 (AWS SigV4 by libcurl) ---- */

struct s3 {
	const char *ep, *bucket, *prefix;
};

/* The text of the next <tag>...</tag> at or after *p; advances *p. */
static char *
xml_next(const char **p, const char *tag)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if ((a = strstr(*p, open)) == NULL || (b = strstr(a, close)) == NULL)
		return NULL;
	a += strlen(open);
	*p = b + strlen(close);
	return xstrndup(a, (size_t)(b - a));
}

static int
s3_list(CURL *c, void *arg, const struct auth *au, struct rfile **files, size_t *n,
    struct llmd_err *e)
{
	struct s3 *s = arg;
	struct buf url = BUF_INIT, body = BUF_INIT;
	char *q = curl_easy_escape(c, s->prefix, 0);
	const char *p;
	char *ct;
	int rc;

	buf_addf(&url, "%s/%s?list-type=2&prefix=%s", s->ep, s->bucket, q);
	curl_free(q);
	if ((rc = get_body(c, url.buf, au, &body, e)) < 0) {
		struct buf w = BUF_INIT;

		buf_addf(&w, "s3://%s/%s", s->bucket, s->prefix);
		err_prefix(e, w.buf);
		buf_release(&w);
		goto out;
	}
	p = body.buf;
	while ((ct = xml_next(&p, "Contents")) != NULL) {
		const char *cp = ct;
		struct rfile *f;
		char *k = xml_next(&cp, "Key"), *sz, *etag;
		const char *base;

		cp = ct;
		sz = xml_next(&cp, "Size");
		cp = ct;
		etag = xml_next(&cp, "ETag");
		base = k ? strrchr(k, '/') : NULL;
		base = base ? base + 1 : k;
		if (k && base && wanted_file(base) &&
		    strncmp(k, s->prefix, strlen(s->prefix)) == 0 &&
		    strchr(k + strlen(s->prefix) + (k[strlen(s->prefix)] == '/'), '/') == NULL) {
			struct buf u = BUF_INIT;
			char *ek = curl_easy_escape(c, k, 0), *sl;

			/* keep the slashes of the key */
			buf_addf(&u, "%s/%s/", s->ep, s->bucket);
			for (sl = ek; *sl; sl++) {
				if (strncmp(sl, "%2F", 3) == 0) {
					buf_addch(&u, '/');
					sl += 2;
				} else {
					buf_addch(&u, *sl);
				}
			}
			curl_free(ek);
			f = rfile_add(files, n, base, buf_detach(&u, NULL), sz ? strtoll(sz, NULL, 10) :
			    -1);
			/* A single-part upload's ETag is the MD5 of the object. */
			if (etag) {
				char *t = etag, *end;

				if (strncmp(t, "&quot;", 6) == 0)
					t += 6;
				else if (*t == '"')
					t++;
				end = t + strspn(t, "0123456789abcdefABCDEF");
				*end = '\0';
				set_digest(f->md5, 32, t);
			}
		}
		free(k);
		free(sz);
		free(etag);
		free(ct);
	}
out:
	buf_release(&url);
	buf_release(&body);
	return rc;
}

static int
s3_fetch(const char *rest, const struct storage_opts *o, char **out,
    void (*progress)(uint64_t, uint64_t, void *), void *parg, struct llmd_err *e)
{
	const char *key = opt_env(o, "AWS_ACCESS_KEY_ID");
	const char *sec = opt_env(o, "AWS_SECRET_ACCESS_KEY");
	const char *sess = opt_env(o, "AWS_SESSION_TOKEN"), *region = opt_env(o, "AWS_REGION");
	const char *ep = opt_env(o, "AWS_ENDPOINT_URL_S3");
	char *bucket = xstrdup(rest), *slash;
	struct s3 s;
	struct auth au = { NULL, NULL, NULL };
	struct buf prov = BUF_INIT, up = BUF_INIT, k = BUF_INIT, epb = BUF_INIT, hdr = BUF_INIT;
	int rc;

	if (!ep || !*ep)
		ep = opt_env(o, "AWS_ENDPOINT_URL");
	if (!region || !*region)
		region = opt_env(o, "AWS_DEFAULT_REGION");
	if (!region || !*region)
		region = "us-east-1";
	if ((slash = strchr(bucket, '/')) != NULL)
		*slash++ = '\0';
	s.bucket = bucket;
	s.prefix = slash ? slash : "";
	if (ep && *ep)
		buf_adds(&epb, ep);
	else
		buf_addf(&epb, "https://s3.%s.amazonaws.com", region);
	while (epb.len && epb.buf[epb.len - 1] == '/')
		buf_setlen(&epb, epb.len - 1);
	s.ep = epb.buf;
	if (!*bucket) {
		rc = err_set(e, -ENOTSUP, "spec.model.uri", "expected s3://BUCKET/PREFIX");
		goto out;
	}
	if (key && sec) {
		buf_addf(&prov, "aws:amz:%s:s3", region);
		buf_addf(&up, "%s:%s", key, sec);
		au.sigv4 = prov.buf;
		au.userpwd = up.buf;
		if (sess && *sess) {
			buf_addf(&hdr, "x-amz-security-token: %s", sess);
			au.hdrs = curl_slist_append(NULL, hdr.buf);
		}
	}
	buf_addf(&k, "s3://%s/%s@%s", bucket, s.prefix, s.ep);
	rc = fetch_cached(k.buf, o, s3_list, &s, &au, out, progress, parg, e);
out:
	curl_slist_free_all(au.hdrs);
	buf_release(&prov);
	buf_release(&up);
	buf_release(&k);
	buf_release(&epb);
	buf_release(&hdr);
	free(bucket);
	return rc;
}

/* ---- Google Cloud Storage (JSON API over HTTPS) ---- */

static int
gs_list(CURL *c, void *arg, const struct auth *au, struct rfile **files, size_t *n,
    struct llmd_err *e)
{
	struct s3 *s = arg;   /* same shape: endpoint, bucket, prefix */
	struct buf url = BUF_INIT, body = BUF_INIT;
	char *q = curl_easy_escape(c, s->prefix, 0);
	cJSON *list = NULL;
	const cJSON *it;
	int rc;

	buf_addf(&url, "%s/storage/v1/b/%s/o?prefix=%s", s->ep, s->bucket, q);
	curl_free(q);
	rc = get_body(c, url.buf, au, &body, e);
	if (rc == 0 && json_parse(body.buf, body.len, &list, NULL) < 0)
		rc = err_set(e, -EPROTO, NULL, "%s: not JSON", url.buf);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
		const char *sz = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "size"));
		const char *base = name ? strrchr(name, '/') : NULL;
		struct buf u = BUF_INIT;
		char *en;

		base = base ? base + 1 : name;
		if (!name || !wanted_file(base))
			continue;
		en = curl_easy_escape(c, name, 0);
		buf_addf(&u, "%s/storage/v1/b/%s/o/%s?alt=media", s->ep, s->bucket, en);
		curl_free(en);
		rfile_add(files, n, base, buf_detach(&u, NULL), sz ? strtoll(sz, NULL, 10) : -1);
	}
	if (rc < 0) {
		struct buf w = BUF_INIT;

		buf_addf(&w, "gs://%s/%s", s->bucket, s->prefix);
		err_prefix(e, w.buf);
		buf_release(&w);
	}
	cJSON_Delete(list);
	buf_release(&url);
	buf_release(&body);
	return rc;
}

static int
gs_fetch(const char *rest, const struct storage_opts *o, char **out,
    void (*progress)(uint64_t, uint64_t, void *), void *parg, struct llmd_err *e)
{
	const char *tok = opt_env(o, "GOOGLE_OAUTH_ACCESS_TOKEN");
	const char *emu = opt_env(o, "STORAGE_EMULATOR_HOST");
	char *bucket = xstrdup(rest), *slash;
	struct s3 s;
	struct auth au = { NULL, NULL, NULL };
	struct buf k = BUF_INIT, hdr = BUF_INIT;
	int rc;

	if ((slash = strchr(bucket, '/')) != NULL)
		*slash++ = '\0';
	s.bucket = bucket;
	s.prefix = slash ? slash : "";
	s.ep = emu && *emu ? emu : "https://storage.googleapis.com";
	if (tok && *tok) {
		buf_addf(&hdr, "Authorization: Bearer %s", tok);
		au.hdrs = curl_slist_append(NULL, hdr.buf);
	}
	buf_addf(&k, "gs://%s/%s@%s", bucket, s.prefix, s.ep);
	rc = fetch_cached(k.buf, o, gs_list, &s, &au, out, progress, parg, e);
	curl_slist_free_all(au.hdrs);
	buf_release(&k);
	buf_release(&hdr);
	free(bucket);
	return rc;
}

int
storage_fetch(const char *uri, const struct storage_opts *o, char **out,
    void (*progress)(uint64_t done, uint64_t total, void *arg), void *parg,
    struct llmd_err *e)
{
	*out = NULL;
	if (strncmp(uri, "file://", 7) == 0)
		return local_model(uri + 7, out, e);
	if (uri[0] == '/')
		return local_model(uri, out, e);
	if (strncmp(uri, "pvc://", 6) == 0)
		return pvc_model(uri + 6, o, out, e);
	if (strncmp(uri, "hf://", 5) == 0)
		return hf_fetch(uri + 5, o, out, progress, parg, e);
	if (strncmp(uri, "s3://", 5) == 0)
		return s3_fetch(uri + 5, o, out, progress, parg, e);
	if (strncmp(uri, "gs://", 5) == 0)
		return gs_fetch(uri + 5, o, out, progress, parg, e);
	return err_set(e, -ENOTSUP, "spec.model.uri", "unsupported model URI \"%s\" "
	    "(file://, pvc://, hf://, s3://, gs:// are supported on this node)", uri);
}
