/*
 * daemon/auth.c - role tokens (hashed in Secrets), request attributes and
 * the role rules of the API (see auth.h).
 */
#include "config.h"
#include "daemon/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "daemon/api-internal.h"
#include "daemon/nodes.h"
#include "daemon/reconcile.h"
#include "daemon/store.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/tls.h"
#include "lib/util.h"

#define ID_HEX 12
#define SECRET_HEX 40
#define SECRET_TYPE "llmd.io/api-token"

static const char *const roles[] = { "admin", "operator", "viewer", "router", "node" };

int
auth_role_valid(const char *role)
{
	for (size_t i = 0; role != NULL && i < ARRAY_SIZE(roles); i++)
		if (strcmp(role, roles[i]) == 0)
			return 1;
	return 0;
}

static int
is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0' || s[n] == '.';
}

static const char *
sdata(const cJSON *secret, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(secret, "stringData"), key));
}

static void
fill_info(const cJSON *o, const char *id, struct auth_token_info *info)
{
	const char *v;

	memset(info, 0, sizeof(*info));
	snprintf(info->id, sizeof(info->id), "%s", id);
	snprintf(info->role, sizeof(info->role), "%s", (v = sdata(o, "role")) ? v : "");
	info->created_ms = (v = sdata(o, "created-ms")) ? strtoll(v, NULL, 10) : 0;
	info->expires_ms = (v = sdata(o, "expiration-ms")) ? strtoll(v, NULL, 10) : 0;
}

int
auth_token_create(struct store *s, const char *role, int64_t ttl_ms,
    const char *description, char **out, struct auth_token_info *info, struct llmd_err *e)
{
	char id[ID_HEX + 1], sec[SECRET_HEX + 1], h[65], name[64], num[32];
	cJSON *o, *md, *sd;
	int64_t now = wall_ms();
	int rc;

	if (!auth_role_valid(role))
		return err_set(e, -EINVAL, "role", "\"%s\": must be one of admin, operator, "
		    "viewer, router, node", role ? role : "");
	if (secret_random_hex(ID_HEX / 2, id) < 0 || secret_random_hex(SECRET_HEX / 2, sec) < 0)
		return err_set(e, -EIO, "", "no random bytes");
	secret_sha256_hex(sec, h);
	snprintf(name, sizeof(name), "api-token-%s", id);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Secret");
	md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", LLMD_SYSTEM_NAMESPACE);
	cJSON_AddStringToObject(o, "type", SECRET_TYPE);
	sd = cJSON_AddObjectToObject(o, "stringData");
	cJSON_AddStringToObject(sd, "token-hash", h);
	cJSON_AddStringToObject(sd, "role", role);
	snprintf(num, sizeof(num), "%lld", (long long)now);
	cJSON_AddStringToObject(sd, "created-ms", num);
	snprintf(num, sizeof(num), "%lld", (long long)(ttl_ms > 0 ? now + ttl_ms : 0));
	cJSON_AddStringToObject(sd, "expiration-ms", num);
	if (description != NULL)
		cJSON_AddStringToObject(sd, "description", description);
	rc = store_create(s, "secrets", o, NULL, e);
	if (rc == 0 && info != NULL)
		fill_info(o, id, info);
	cJSON_Delete(o);
	if (rc < 0)
		return rc;
	{
		size_t n = strlen(AUTH_TOKEN_PREFIX) + ID_HEX + SECRET_HEX + 2;

		*out = xmalloc(n);
		snprintf(*out, n, AUTH_TOKEN_PREFIX "%s.%s", id, sec);
	}
	OPENSSL_cleanse(sec, sizeof(sec));
	return 0;
}

int
auth_token_check(struct store *s, const char *token, struct auth_token_info *info,
    struct llmd_err *e)
{
	size_t pl = strlen(AUTH_TOKEN_PREFIX);
	char name[64], h[65], id[ID_HEX + 1];
	const char *want, *sec;
	cJSON *o = NULL;
	int rc = -EACCES;

	if (token == NULL || strncmp(token, AUTH_TOKEN_PREFIX, pl) != 0 ||
	    strlen(token) != pl + ID_HEX + 1 + SECRET_HEX || token[pl + ID_HEX] != '.' ||
	    !is_hex(token + pl, ID_HEX) || !is_hex(token + pl + ID_HEX + 1, SECRET_HEX))
		return err_set(e, -EACCES, "", "malformed token");
	memcpy(id, token + pl, ID_HEX);
	id[ID_HEX] = '\0';
	sec = token + pl + ID_HEX + 1;
	snprintf(name, sizeof(name), "api-token-%s", id);
	if (store_get(s, "secrets", LLMD_SYSTEM_NAMESPACE, name, &o, NULL) < 0)
		return err_set(e, -EACCES, "", "unknown or revoked token");
	secret_sha256_hex(sec, h);
	want = sdata(o, "token-hash");
	if (want == NULL || strlen(want) != 64 || CRYPTO_memcmp(want, h, 64) != 0) {
		err_set(e, -EACCES, "", "unknown or revoked token");
	} else {
		struct auth_token_info ti;

		fill_info(o, id, &ti);
		if (ti.expires_ms != 0 && ti.expires_ms <= wall_ms())
			err_set(e, -EACCES, "", "token %s expired", id);
		else if (!auth_role_valid(ti.role))
			err_set(e, -EACCES, "", "token %s has no valid role", id);
		else {
			rc = 0;
			if (info != NULL)
				*info = ti;
		}
	}
	cJSON_Delete(o);
	return rc;
}

int
auth_token_list(struct store *s, cJSON **out, struct llmd_err *e)
{
	cJSON *items = NULL, *it;
	int rc;

	*out = cJSON_CreateArray();
	if ((rc = store_list(s, "secrets", LLMD_SYSTEM_NAMESPACE, &items, NULL, e)) < 0)
		return rc;
	cJSON_ArrayForEach(it, items) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(it, "metadata"), "name"));
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "type"));
		struct auth_token_info ti;
		cJSON *t;

		if (name == NULL || type == NULL || strcmp(type, SECRET_TYPE) != 0 ||
		    strncmp(name, "api-token-", 10) != 0)
			continue;
		fill_info(it, name + 10, &ti);
		t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "id", ti.id);
		cJSON_AddStringToObject(t, "role", ti.role);
		cJSON_AddNumberToObject(t, "createdMs", (double)ti.created_ms);
		cJSON_AddNumberToObject(t, "expiresMs", (double)ti.expires_ms);
		cJSON_AddBoolToObject(t, "expired", ti.expires_ms != 0 && ti.expires_ms <= wall_ms());
		if (sdata(it, "description") != NULL)
			cJSON_AddStringToObject(t, "description", sdata(it, "description"));
		cJSON_AddItemToArray(*out, t);
	}
	cJSON_Delete(items);
	return 0;
}

int
auth_token_revoke(struct store *s, const char *id, struct llmd_err *e)
{
	size_t pl = strlen(AUTH_TOKEN_PREFIX);
	char name[64];

	if (id != NULL && strncmp(id, AUTH_TOKEN_PREFIX, pl) == 0)
		id += pl;
	if (id == NULL || strlen(id) < ID_HEX || !is_hex(id, ID_HEX))
		return err_set(e, -EINVAL, "id", "expected a token id (12 hex digits)");
	snprintf(name, sizeof(name), "api-token-%.*s", ID_HEX, id);
	return store_delete(s, "secrets", LLMD_SYSTEM_NAMESPACE, name, 0, NULL, e);
}

/* ---- authorization ---- */

static void
copy_seg(char *dst, size_t len, const char *p, size_t n)
{
	snprintf(dst, len, "%.*s", (int)MIN(n, len - 1), p);
}

void
auth_request_attrs(const char *method, const char *path, const char *watch,
    struct auth_attrs *a)
{
	const char *segs[10];
	size_t lens[10];
	int n = 0, k, named;
	const char *p = path;

	memset(a, 0, sizeof(*a));
	while (*p && n < 10) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		segs[n] = p;
		while (*p && *p != '/')
			p++;
		lens[n] = (size_t)(p - segs[n]);
		n++;
	}
#define SEG(i, s) (lens[i] == strlen(s) && strncmp(segs[i], s, lens[i]) == 0)
	if (n >= 2 && SEG(0, "api"))
		k = 2;
	else if (n >= 3 && SEG(0, "apis")) {
		copy_seg(a->group, sizeof(a->group), segs[1], lens[1]);
		k = 3;
	} else {
		a->non_resource = 1;
		k = n;
	}
	if (!a->non_resource && n == k)
		a->non_resource = 1;   /* discovery of a group version */
	if (!a->non_resource) {
		if (n - k >= 3 && SEG(k, "namespaces")) {
			copy_seg(a->ns, sizeof(a->ns), segs[k + 1], lens[k + 1]);
			k += 2;
		}
		copy_seg(a->resource, sizeof(a->resource), segs[k], lens[k]);
		named = n - k >= 2;
		if (n - k >= 3)
			copy_seg(a->subresource, sizeof(a->subresource), segs[k + 2], lens[k + 2]);
	} else {
		named = 1;
	}
#undef SEG
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		snprintf(a->verb, sizeof(a->verb), "%s", named ? "get" :
		    watch && (strcmp(watch, "true") == 0 || strcmp(watch, "1") == 0) ? "watch" :
		    "list");
	else if (strcmp(method, "POST") == 0)
		snprintf(a->verb, sizeof(a->verb), "create");
	else if (strcmp(method, "PUT") == 0)
		snprintf(a->verb, sizeof(a->verb), "update");
	else if (strcmp(method, "PATCH") == 0)
		snprintf(a->verb, sizeof(a->verb), "patch");
	else if (strcmp(method, "DELETE") == 0)
		snprintf(a->verb, sizeof(a->verb), named ? "delete" : "deletecollection");
	else
		snprintf(a->verb, sizeof(a->verb), "%s", method);
}

static int
is_read(const char *verb)
{
	return strcmp(verb, "get") == 0 || strcmp(verb, "list") == 0 ||
	    strcmp(verb, "watch") == 0;
}

static int
in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

int
auth_role_allows(const char *role, const struct auth_attrs *a)
{
	static const char *const routing[] = { "inferencepools", "inferencemodels",
	    "httproutes", "gateways", "services", "pods", "llminferenceservices", "nodes",
	    "endpoints", "ingresses", NULL };
	static const char *const served[] = { "httproutes", "inferencepools", "gateways", NULL };
	int secrets = strcmp(a->resource, "secrets") == 0;

	if (role == NULL)
		return 0;
	if (strcmp(role, "admin") == 0)
		return 1;
	if (a->non_resource)
		return is_read(a->verb);
	if (strcmp(role, "operator") == 0)
		/* llmd-system's Secrets hold tokens and credentials: admin only */
		return !(secrets && (is_read(a->verb) ||
		    strcmp(a->ns, LLMD_SYSTEM_NAMESPACE) == 0 || !*a->ns));
	if (strcmp(role, "viewer") == 0)
		return is_read(a->verb) && !secrets;
	if (strcmp(role, "router") == 0)
		/* reads what it routes; registers its own Gateway; writes the status
		 * (status.parents, Accepted) of the routes, pools and gateways it serves */
		return (is_read(a->verb) && in_list(a->resource, routing)) ||
		    (strcmp(a->resource, "gateways") == 0 && (strcmp(a->verb, "create") == 0 ||
		    strcmp(a->verb, "patch") == 0 || strcmp(a->verb, "update") == 0)) ||
		    (strcmp(a->subresource, "status") == 0 && in_list(a->resource, served) &&
		    (strcmp(a->verb, "patch") == 0 || strcmp(a->verb, "update") == 0));
	if (strcmp(role, "node") == 0)
		return (is_read(a->verb) && (strcmp(a->resource, "pods") == 0 ||
		    strcmp(a->resource, "nodes") == 0)) ||
		    (strcmp(a->verb, "create") == 0 && strcmp(a->resource, "events") == 0);
	return 0;
}

static const char *
bearer(struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	return h + 7;
}

int
auth_check_cert_binding(struct store *s, struct http_req *req)
{
	char cn[256], org[32], *node;
	const char *tok = bearer(req);
	struct buf msg = BUF_INIT;
	int ok;

	if (tok == NULL || http_req_peer_cert(req, cn, sizeof(cn), org, sizeof(org)) < 0 ||
	    strcmp(org, "node") != 0)
		return 1;
	if ((node = nodes_credential_node(s, tok)) == NULL)
		return 1;
	ok = strcmp(node, cn) == 0;
	if (!ok) {
		buf_addf(&msg, "the client certificate of node \"%s\" does not go with the "
		    "credential of node \"%s\"", cn, node);
		api_reply_status(req, 403, "Forbidden", msg.buf, NULL, NULL, NULL);
		buf_release(&msg);
	}
	free(node);
	return ok;
}

int
auth_check_request(struct store *s, struct http_req *req, const char *path)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct auth_token_info ti;
	struct auth_attrs a;
	struct buf msg = BUF_INIT;
	const char *tok = bearer(req);
	char who[96], role[16], cn[64];

	if (tok != NULL) {
		if (auth_token_check(s, tok, &ti, &e) < 0) {
			api_reply_status(req, 401, "Unauthorized", "Unauthorized", NULL, NULL, NULL);
			return 0;
		}
		snprintf(who, sizeof(who), "token:%s", ti.id);
		snprintf(role, sizeof(role), "%s", ti.role);
	} else if (http_req_peer_cert(req, cn, sizeof(cn), role, sizeof(role)) == 0 &&
	    auth_role_valid(role)) {
		snprintf(who, sizeof(who), "cert:%s", cn);
	} else {
		api_reply_status(req, 401, "Unauthorized", "Unauthorized", NULL, NULL, NULL);
		return 0;
	}
	auth_request_attrs(http_req_method(req), path, http_req_query(req, "watch"), &a);
	if (auth_role_allows(role, &a))
		return 1;
	if (a.non_resource)
		buf_addf(&msg, "%s (role %s) cannot %s path \"%s\"", who, role, a.verb, path);
	else {
		buf_addf(&msg, "%s (role %s) cannot %s resource \"%s%s%s\" in API group \"%s\"",
		    who, role, a.verb, a.resource, *a.subresource ? "/" : "", a.subresource,
		    a.group);
		if (*a.ns)
			buf_addf(&msg, " in the namespace \"%s\"", a.ns);
	}
	api_reply_status(req, 403, "Forbidden", msg.buf, NULL, NULL, NULL);
	buf_release(&msg);
	return 0;
}
