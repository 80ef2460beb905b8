/*
 * agent/storage.c - the built-in storage initializer: resolves a model URI
 * to a local directory. file:// and pvc://NAME/path are used in place;
 * hf://org/model[@revision] is fetched through the Hugging Face HTTP API
 * (HF_ENDPOINT, HF_TOKEN) with libcurl into a per-node cache keyed by
 * URI+revision: files go to a temp dir that is renamed into place when
 * complete, sizes are checked, and concurrent fetches of one model wait on a
 * lock file and share the result. Blocking: callers run it on a worker.
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

struct dl {
	FILE *f;
	uint64_t done, total_all, done_all;
	void (*progress)(uint64_t, uint64_t, void *);
	void *parg;
};

static size_t
dl_write(char *p, size_t sz, size_t n, void *arg)
{
	struct dl *d = arg;
	size_t w = fwrite(p, sz, n, d->f);

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
curl_common(CURL *c, const char *url, struct curl_slist *hdrs)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "llmd-agent/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
}

static int
hf_fetch(const char *rest, const struct storage_opts *o, char **out,
    void (*progress)(uint64_t, uint64_t, void *), void *parg, struct llmd_err *e)
{
	const char *ep = getenv("HF_ENDPOINT"), *tok = getenv("HF_TOKEN");
	char *repo = xstrdup(rest), *at, key[65], final[4096], tmp[4200], lockp[4200];
	const char *rev = "main";
	unsigned char md[32];
	unsigned int mdn = 0;
	struct curl_slist *hdrs = NULL;
	struct buf url = BUF_INIT, body = BUF_INIT, auth = BUF_INIT;
	cJSON *info = NULL;
	const cJSON *sib;
	CURL *c = NULL;
	long code = 0;
	int rc = 0, lockfd = -1, nfiles = 0, i;
	struct dl d = { NULL, 0, 0, 0, progress, parg };

	if (ep == NULL || !*ep)
		ep = "https://huggingface.co";
	if ((at = strchr(repo, '@'))) {
		*at = '\0';
		rev = at + 1;
	}
	if (strchr(repo, '/') == NULL || !*rev) {
		rc = err_set(e, -EINVAL, "spec.model.uri", "expected hf://ORG/MODEL[@REVISION]");
		goto out;
	}
	{
		struct buf k = BUF_INIT;

		buf_addf(&k, "hf://%s@%s", repo, rev);
		EVP_Digest(k.buf, k.len, md, &mdn, EVP_sha256(), NULL);
		buf_release(&k);
		for (i = 0; i < 32; i++)
			snprintf(key + 2 * i, 3, "%02x", md[i]);
	}
	mkdir(o->cache_dir, 0755);
	snprintf(final, sizeof(final), "%s/%s", o->cache_dir, key);
	snprintf(lockp, sizeof(lockp), "%s/%s.lock", o->cache_dir, key);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", o->cache_dir, key);
	if ((lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
	    flock(lockfd, LOCK_EX) < 0) {
		rc = err_set(e, -errno, NULL, "%s: %s", lockp, strerror(errno));
		goto out;
	}
	if (is_dir(final)) {
		*out = xstrdup(final);
		goto out;
	}
	if (tok && *tok) {
		buf_addf(&auth, "Authorization: Bearer %s", tok);
		hdrs = curl_slist_append(hdrs, auth.buf);
	}
	c = curl_easy_init();
	buf_addf(&url, "%s/api/models/%s/revision/%s", ep, repo, rev);
	curl_common(c, url.buf, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	if (curl_easy_perform(c) != CURLE_OK ||
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200) {
		rc = err_set(e, code == 401 || code == 403 ? -EACCES : -ENOENT, NULL,
		    "hf://%s@%s: model info %s answered %ld%s", repo, rev, url.buf, code,
		    code == 401 || code == 403 ? " (set HF_TOKEN?)" : "");
		goto out;
	}
	if (json_parse(body.buf, body.len, &info, NULL) < 0) {
		rc = err_set(e, -EPROTO, NULL, "hf://%s: model info is not JSON", repo);
		goto out;
	}
	cJSON_ArrayForEach(sib, cJSON_GetObjectItemCaseSensitive(info, "siblings")) {
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(sib, "size");

		if (cJSON_IsNumber(sz))
			d.total_all += (uint64_t)sz->valuedouble;
	}
	mkdir(tmp, 0755);
	cJSON_ArrayForEach(sib, cJSON_GetObjectItemCaseSensitive(info, "siblings")) {
		const char *f = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sib,
		    "rfilename"));
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(sib, "size");
		char path[4400];
		struct stat st;
		curl_off_t clen = -1;

		if (f == NULL || !wanted_file(f))
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp, f);
		/* Resume: a complete file from an interrupted fetch is kept. */
		if (cJSON_IsNumber(sz) && stat(path, &st) == 0 &&
		    (uint64_t)st.st_size == (uint64_t)sz->valuedouble) {
			d.done_all += (uint64_t)st.st_size;
			nfiles++;
			continue;
		}
		buf_reset(&url);
		buf_addf(&url, "%s/%s/resolve/%s/%s", ep, repo, rev, f);
		if ((d.f = fopen(path, "wb")) == NULL) {
			rc = err_set(e, -errno, NULL, "%s: %s", path, strerror(errno));
			goto out;
		}
		d.done = 0;
		curl_easy_reset(c);
		curl_common(c, url.buf, hdrs);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dl_write);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
		{
			CURLcode cc = curl_easy_perform(c);
			int werr = ferror(d.f) || fclose(d.f) != 0;

			d.f = NULL;
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
			curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
			if (werr) {
				rc = err_set(e, -ENOSPC, NULL, "writing %s failed (disk full?)", path);
				goto out;
			}
			if (cc != CURLE_OK || code != 200) {
				rc = err_set(e, cc == CURLE_WRITE_ERROR ? -ENOSPC : -EIO, NULL,
				    "downloading %s: %s", url.buf, cc != CURLE_OK ?
				    curl_easy_strerror(cc) : "HTTP error");
				if (cc == CURLE_OK)
					snprintf(e->msg + strlen(e->msg), sizeof(e->msg) -
					    strlen(e->msg), " %ld", code);
				goto out;
			}
			if ((clen >= 0 && (curl_off_t)d.done != clen) ||
			    (cJSON_IsNumber(sz) && (double)d.done != sz->valuedouble)) {
				rc = err_set(e, -EIO, NULL, "downloading %s: got %llu bytes, expected "
				    "%.0f", url.buf, (unsigned long long)d.done,
				    cJSON_IsNumber(sz) ? sz->valuedouble : (double)clen);
				goto out;
			}
		}
		nfiles++;
	}
	if (nfiles == 0) {
		rc = err_set(e, -ENOENT, NULL, "hf://%s@%s has no model files", repo, rev);
		goto out;
	}
	if (rename(tmp, final) < 0) {
		rc = err_set(e, -errno, NULL, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	log_info("storage: hf://%s@%s -> %s (%d files)", repo, rev, final, nfiles);
	*out = xstrdup(final);
out:
	if (d.f)
		fclose(d.f);
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	cJSON_Delete(info);
	buf_release(&url);
	buf_release(&body);
	buf_release(&auth);
	if (lockfd >= 0)
		close(lockfd);
	free(repo);
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
	return err_set(e, -ENOTSUP, "spec.model.uri", "unsupported model URI \"%s\" "
	    "(file://, pvc://, hf:// are supported on this node)", uri);
}
