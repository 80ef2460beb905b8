/*
 * daemon/api-podsecrets.c - the Secret values a pod's containers reference,
 * for the agent of the node the pod is bound to and nobody else:
 *   GET /agent/v1/podsecrets?namespace=NS&pod=NAME   (node credential)
 *	-> 200 {"containers": {"main": {"HF_TOKEN": "...", ...}, ...}}
 * from env[].valueFrom.secretKeyRef {name, key, optional} and
 * envFrom[].secretRef {name, optional} (every key, with envFrom's prefix).
 * Pod specs, events and logs only ever hold the references; values leave
 * the daemon only here. 403 for a pod on another node, 404 for an unknown
 * pod, 422 naming (never showing) a missing non-optional Secret or key.
 */
#include "config.h"
#include "daemon/api-podsecrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "daemon/nodes.h"
#include "daemon/store.h"
#include "lib/buf.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"

static const cJSON *
get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *
bearer(struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	return h + 7;
}

/* A Secret's value for key (stringData wins, data is base64); malloc'd or NULL. */
static char *
secret_value(const cJSON *secret, const char *key)
{
	const char *s = cJSON_GetStringValue(get(get(secret, "stringData"), key));
	unsigned char *out;
	size_t len;
	int n;

	if (s != NULL)
		return xstrdup(s);
	if ((s = cJSON_GetStringValue(get(get(secret, "data"), key))) == NULL)
		return NULL;
	len = strlen(s);
	out = xmalloc(len / 4 * 3 + 4);
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts '=' padding as zero bytes */
	while (len > 0 && s[len - 1] == '=' && n > 0) {
		len--;
		n--;
	}
	out[n] = '\0';
	return (char *)out;
}

static void
put(cJSON *env, const char *name, char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(env, name);
	cJSON_AddStringToObject(env, name, value);
	OPENSSL_cleanse(value, strlen(value));
	free(value);
}

/* The env of one container; -ENOENT with e naming what is missing. */
static int
resolve(struct store *s, const char *ns, const cJSON *c, cJSON *env, struct llmd_err *e)
{
	const cJSON *v, *ef;

	cJSON_ArrayForEach(ef, get(c, "envFrom")) {
		const cJSON *ref = get(ef, "secretRef"), *kv;
		const char *name = cJSON_GetStringValue(get(ref, "name"));
		const char *prefix = cJSON_GetStringValue(get(ef, "prefix"));
		cJSON *sec = NULL;

		if (name == NULL)
			continue;
		if (store_get(s, "secrets", ns, name, &sec, NULL) < 0) {
			if (cJSON_IsTrue(get(ref, "optional")))
				continue;
			return err_set(e, -ENOENT, "envFrom", "secret \"%s\" not found", name);
		}
		for (int pass = 0; pass < 2; pass++)
			cJSON_ArrayForEach(kv, get(sec, pass ? "stringData" : "data")) {
				struct buf n = BUF_INIT;
				char *val = secret_value(sec, kv->string);

				if (val != NULL) {
					buf_addf(&n, "%s%s", prefix ? prefix : "", kv->string);
					put(env, n.buf, val);
				}
				buf_release(&n);
			}
		cJSON_Delete(sec);
	}
	cJSON_ArrayForEach(v, get(c, "env")) {
		const cJSON *ref = get(get(v, "valueFrom"), "secretKeyRef");
		const char *var = cJSON_GetStringValue(get(v, "name"));
		const char *name = cJSON_GetStringValue(get(ref, "name"));
		const char *key = cJSON_GetStringValue(get(ref, "key"));
		cJSON *sec = NULL;
		char *val = NULL;

		if (ref == NULL || var == NULL || name == NULL || key == NULL)
			continue;
		if (store_get(s, "secrets", ns, name, &sec, NULL) == 0)
			val = secret_value(sec, key);
		cJSON_Delete(sec);
		if (val == NULL) {
			if (cJSON_IsTrue(get(ref, "optional")))
				continue;
			return err_set(e, -ENOENT, var, "key \"%s\" of secret \"%s\" not found", key,
			    name);
		}
		put(env, var, val);
	}
	return 0;
}

int
api_podsecrets_request(struct store *s, struct http_req *req, const char *path)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const char *ns, *name, *bound;
	char *node = NULL;
	cJSON *pod = NULL, *r = NULL, *cs;
	const cJSON *c;

	if (strcmp(path, API_PODSECRETS_PATH) != 0)
		return 0;
	if (strcmp(http_req_method(req), "GET") != 0) {
		http_reply_error(req, 405, "MethodNotAllowed", "%s", "use GET");
		return 1;
	}
	if ((node = nodes_credential_node(s, bearer(req))) == NULL) {
		http_reply_error(req, 401, "Unauthorized", "%s", "invalid node credential");
		return 1;
	}
	ns = http_req_query(req, "namespace");
	name = http_req_query(req, "pod");
	if (ns == NULL || name == NULL) {
		http_reply_error(req, 400, "BadRequest", "%s", "namespace and pod are required");
		goto out;
	}
	if (store_get(s, "pods", ns, name, &pod, NULL) < 0) {
		http_reply_error(req, 404, "NotFound", "pod %s/%s not found", ns, name);
		goto out;
	}
	bound = cJSON_GetStringValue(get(get(pod, "spec"), "nodeName"));
	if (bound == NULL || strcmp(bound, node) != 0) {
		log_warnx("node %s asked for the secrets of pod %s/%s bound to %s: refused", node,
		    ns, name, bound ? bound : "no node");
		http_reply_error(req, 403, "Forbidden", "pod %s/%s is not bound to node %s", ns,
		    name, node);
		goto out;
	}
	r = cJSON_CreateObject();
	cs = cJSON_AddObjectToObject(r, "containers");
	for (int pass = 0; pass < 2; pass++)
		cJSON_ArrayForEach(c, get(get(pod, "spec"), pass ? "containers" : "initContainers")) {
			const char *cn = cJSON_GetStringValue(get(c, "name"));
			cJSON *env = cJSON_CreateObject();

			if (resolve(s, ns, c, env, &e) < 0) {
				cJSON_Delete(env);
				http_reply_error(req, 422, "Invalid", "pod %s/%s container %s: %s: %s", ns,
				    name, cn ? cn : "?", e.field, e.msg);
				goto out;
			}
			cJSON_AddItemToObject(cs, cn ? cn : "", env);
		}
	http_reply_json(req, 200, r);
out:
	cJSON_Delete(r);
	cJSON_Delete(pod);
	free(node);
	return 1;
}
