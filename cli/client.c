/*
 * cli/client.c - llmd-admin's HTTP calls to the llmd API over libcurl
 * (blocking, as a CLI may be): whole responses, line-streamed watches and
 * printing the server's Status errors.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/admin.h"
#include "lib/util.h"

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	buf_add(arg, p, sz * n);
	return sz * n;
}

static CURL *
setup(struct admin *a, const char *method, const char *path, struct curl_slist **hdrs,
    const char *content_type)
{
	CURL *c = curl_easy_init();
	struct buf url = BUF_INIT, h = BUF_INIT;

	if (c == NULL)
		fatalx("curl_easy_init failed");
	buf_addf(&url, "%s%s", a->server, path);
	curl_easy_setopt(c, CURLOPT_URL, url.buf);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	if (a->ca_file && *a->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
	*hdrs = NULL;
	if (a->token) {
		buf_addf(&h, "Authorization: Bearer %s", a->token);
		*hdrs = curl_slist_append(*hdrs, h.buf);
	}
	if (content_type) {
		buf_reset(&h);
		buf_addf(&h, "Content-Type: %s", content_type);
		*hdrs = curl_slist_append(*hdrs, h.buf);
	}
	*hdrs = curl_slist_append(*hdrs, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	buf_release(&url);
	buf_release(&h);
	return c;
}

int
admin_call(struct admin *a, const char *method, const char *path,
    const char *content_type, const char *body, size_t len, struct admin_resp *resp)
{
	struct curl_slist *hdrs;
	CURL *c = setup(a, method, path, &hdrs, body ? content_type : NULL);
	CURLcode rc;

	buf_init(&resp->body, 0);
	resp->code = 0;
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->code);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "error: cannot reach the llmd API at %s: %s\n", a->server,
		    curl_easy_strerror(rc));
		return -EIO;
	}
	return 0;
}

void
admin_resp_release(struct admin_resp *r)
{
	buf_release(&r->body);
}

struct stream {
	struct buf pending;
	int (*fn)(const char *line, size_t len, void *arg);
	void *arg;
	int stopped;
	long code;
	CURL *c;
};

static size_t
on_stream(char *p, size_t sz, size_t n, void *arg)
{
	struct stream *s = arg;
	char *nl;

	if (s->code == 0)
		curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->code);
	buf_add(&s->pending, p, sz * n);
	if (s->code != 200)
		return sz * n;
	while ((nl = memchr(s->pending.buf, '\n', s->pending.len)) != NULL) {
		size_t len = (size_t)(nl - s->pending.buf);

		if (s->fn(s->pending.buf, len, s->arg) != 0) {
			s->stopped = 1;
			return 0;
		}
		buf_consume(&s->pending, len + 1);
	}
	return sz * n;
}

int
admin_stream(struct admin *a, const char *path,
    int (*fn)(const char *line, size_t len, void *arg), void *arg)
{
	struct curl_slist *hdrs;
	struct stream s = { BUF_INIT, fn, arg, 0, 0, NULL };
	CURLcode rc;
	int ret = 0;

	s.c = setup(a, "GET", path, &hdrs, NULL);
	curl_easy_setopt(s.c, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(s.c, CURLOPT_WRITEDATA, &s);
	rc = curl_easy_perform(s.c);
	if (rc != CURLE_OK && !s.stopped) {
		fprintf(stderr, "error: watch: %s\n", curl_easy_strerror(rc));
		ret = 1;
	} else if (s.code != 200 && !s.stopped) {
		struct admin_resp r = { s.code, s.pending };

		ret = admin_server_error(&r);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(s.c);
	buf_release(&s.pending);
	return ret;
}

int
admin_server_error(const struct admin_resp *r)
{
	cJSON *st = admin_resp_json(r);
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "message"));
	const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "reason"));

	if (msg)
		fprintf(stderr, "Error from server (%s): %s\n", reason ? reason : "Unknown", msg);
	else
		fprintf(stderr, "Error from server (HTTP %ld): %.*s\n", r->code,
		    (int)MIN(r->body.len, 500), r->body.buf);
	cJSON_Delete(st);
	return 1;
}
