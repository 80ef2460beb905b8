/*
 * agent/secrets.c - the Secret values a pod's containers reference
 * (env[].valueFrom.secretKeyRef, envFrom[].secretRef): whether a pod has
 * any, fetching them from the daemon's GET /agent/v1/podsecrets with the
 * node credential (asynchronously, on the agent's loop), turning one
 * container's values into "NAME=value" environment entries, and wiping
 * them from memory when done. Values are never logged: messages name the
 * Secret and key only (the daemon's 422 does the same).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/util.h"

static const cJSON *
jget(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static int
container_refs(const cJSON *c)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, jget(c, "env"))
		if (jget(jget(v, "valueFrom"), "secretKeyRef"))
			return 1;
	cJSON_ArrayForEach(v, jget(c, "envFrom"))
		if (jget(v, "secretRef"))
			return 1;
	return 0;
}

int
secrets_referenced(const cJSON *pod)
{
	const cJSON *spec = jget(pod, "spec"), *c;

	cJSON_ArrayForEach(c, jget(spec, "initContainers"))
		if (container_refs(c))
			return 1;
	cJSON_ArrayForEach(c, jget(spec, "containers"))
		if (container_refs(c))
			return 1;
	return 0;
}

struct fetch {
	secrets_cb cb;
	void *arg;
};

static void
fetch_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct fetch *f = arg;
	cJSON *o = NULL, *cs = NULL;
	const char *msg = NULL;
	struct buf m = BUF_INIT;
	int status = resp ? resp->status : 0;

	if (resp == NULL) {
		buf_addf(&m, "%s", e ? e->msg : "request failed");
	} else if (json_parse(resp->body, resp->body_len, &o, NULL) < 0) {
		buf_addf(&m, "HTTP %d: not JSON", status);
		if (status == 200)
			status = -EPROTO;
	} else if (status == 200) {
		cs = cJSON_DetachItemFromObjectCaseSensitive(o, "containers");
		if (!cJSON_IsObject(cs)) {
			secrets_free(cs);
			cs = NULL;
			status = -EPROTO;
			buf_addf(&m, "HTTP 200 without \"containers\"");
		}
	} else {
		msg = cJSON_GetStringValue(jget(o, "message"));
		buf_addf(&m, "%s", msg ? msg : "HTTP error");
	}
	/* o may still hold values (a 200 answer's other members): wipe it too. */
	secrets_free(o);
	f->cb(status, cs, m.buf ? m.buf : "", f->arg);
	buf_release(&m);
	free(f);
}

struct http_client_req *
secrets_fetch(struct agent *a, const char *ns, const char *name, secrets_cb cb, void *arg)
{
	struct buf path = BUF_INIT;
	struct fetch *f = xcalloc(1, sizeof(*f));
	char *qns = evhttp_encode_uri(ns), *qn = evhttp_encode_uri(name);
	struct http_client_req *r;

	f->cb = cb;
	f->arg = arg;
	buf_addf(&path, "/agent/v1/podsecrets?namespace=%s&pod=%s", qns, qn);
	free(qns);
	free(qn);
	if ((r = control_request(a, "GET", path.buf, NULL, NULL, 0, fetch_done, f)) == NULL)
		free(f);
	buf_release(&path);
	return r;
}

char **
secrets_env(const cJSON *containers, const char *container)
{
	const cJSON *v;
	char **out = xcalloc(1, sizeof(*out));
	size_t n = 0;

	cJSON_ArrayForEach(v, jget(containers, container)) {
		struct buf b = BUF_INIT;

		if (!cJSON_IsString(v) || v->string == NULL || !*v->string ||
		    strchr(v->string, '=') != NULL)
			continue;
		buf_addf(&b, "%s=%s", v->string, v->valuestring);
		out = xreallocarray(out, n + 2, sizeof(*out));
		out[n++] = buf_detach(&b, NULL);
		out[n] = NULL;
	}
	return out;
}

static void
wipe(cJSON *o)
{
	cJSON *c;

	for (c = o ? o->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c) && c->valuestring)
			OPENSSL_cleanse(c->valuestring, strlen(c->valuestring));
		wipe(c);
	}
}

void
secrets_free(cJSON *o)
{
	wipe(o);
	cJSON_Delete(o);
}

void
secrets_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i]; i++) {
		OPENSSL_cleanse(v[i], strlen(v[i]));
		free(v[i]);
	}
	free(v);
}
