/*
 * daemon/api-tokens.c - the role token endpoints (admin only):
 *   GET    /auth/v1/tokens        -> {"items": [{id, role, createdMs, expiresMs, ...}]}
 *   POST   /auth/v1/tokens        {"role": "viewer", "ttl": "24h", "description": ""}
 *                                 -> 201 {"token": "llmd_ID.SECRET", "id", "role", ...}
 *   DELETE /auth/v1/tokens/ID     -> 200 {"id": ID} (404 when unknown)
 * "Admin" is the daemon's admin token (--token-file; anyone on an open
 * loopback API), a role token of role admin, or a client certificate with
 * O=admin.
 */
#include "config.h"
#include "daemon/api-tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "daemon/auth.h"
#include "daemon/watch.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/util.h"
#include "lib/workpool.h"

static const char *
bearer(struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	return h + 7;
}

/* 1 admin, 0 authenticated but not admin (403), -1 unauthenticated (401). */
static int
admin_level(struct store *s, const char *admin_token, struct http_req *req)
{
	const char *t = bearer(req);
	struct auth_token_info ti;
	char cn[64], org[16];

	if (admin_token == NULL)
		return 1;
	if (t != NULL) {
		size_t n = strlen(admin_token);

		if (strlen(t) == n && CRYPTO_memcmp(t, admin_token, n) == 0)
			return 1;
		if (auth_token_check(s, t, &ti, NULL) == 0)
			return strcmp(ti.role, "admin") == 0;
		return -1;
	}
	if (http_req_peer_cert(req, cn, sizeof(cn), org, sizeof(org)) == 0)
		return strcmp(org, "admin") == 0;
	return -1;
}

/* A token write (create or revoke), on the workpool; the loop answers. */
struct tok_job {
	struct store *store;
	struct watch_hub *hub;
	struct http_req *req;        /* valid until answered (lib/http_server.h) */
	int revoke;
	char *role, *desc, *id;      /* inputs (id: revoke) */
	int64_t ttl_ms;
	char *tok;                   /* create: the new token */
	struct auth_token_info ti;
	struct llmd_err e;
	int rc;
};

static void
tok_work(void *arg)
{
	struct tok_job *j = arg;

	if (j->revoke)
		j->rc = auth_token_revoke(j->store, j->id, &j->e);
	else
		j->rc = auth_token_create(j->store, j->role, j->ttl_ms, j->desc, &j->tok, &j->ti,
		    &j->e);
}

static void
tok_done(void *arg)
{
	struct tok_job *j = arg;
	cJSON *r;

	if (j->revoke && j->rc == -ENOENT) {
		http_reply_error(j->req, 404, "NotFound", "token \"%s\" not found", j->id);
	} else if (j->revoke && j->rc < 0) {
		http_reply_error(j->req, j->rc == -EINVAL ? 400 : 500,
		    j->rc == -EINVAL ? "BadRequest" : "InternalError", "%s", j->e.msg);
	} else if (j->rc < 0) {
		http_reply_error(j->req, j->e.code == -EINVAL ? 422 : 500,
		    j->e.code == -EINVAL ? "Invalid" : "InternalError", "%s: %s", j->e.field,
		    j->e.msg);
	} else {
		if (j->hub != NULL)
			watch_hub_pump(j->hub);
		r = cJSON_CreateObject();
		if (j->revoke) {
			log_info("revoked API token %s", j->id);
			cJSON_AddStringToObject(r, "id", j->id);
			http_reply_json(j->req, 200, r);
		} else {
			log_info("created API token %s (role %s) for %s", j->ti.id, j->ti.role,
			    http_req_peer(j->req));
			cJSON_AddStringToObject(r, "token", j->tok);
			cJSON_AddStringToObject(r, "id", j->ti.id);
			cJSON_AddStringToObject(r, "role", j->ti.role);
			cJSON_AddNumberToObject(r, "expiresMs", (double)j->ti.expires_ms);
			http_reply_json(j->req, 201, r);
		}
		cJSON_Delete(r);
	}
	if (j->tok != NULL)
		OPENSSL_cleanse(j->tok, strlen(j->tok));
	free(j->tok);
	free(j->role);
	free(j->desc);
	free(j->id);
	free(j);
}

static void
create(struct store *s, struct watch_hub *hub, struct workpool *wp, struct http_req *req)
{
	size_t len;
	const char *body = http_req_body(req, &len), *ttl, *role, *desc;
	struct tok_job *j;
	cJSON *o = NULL;
	int64_t ms = 0;

	if (json_parse(body, len, &o, NULL) < 0 || !cJSON_IsObject(o)) {
		http_reply_error(req, 400, "BadRequest", "%s", "expected a JSON object");
		goto out;
	}
	role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "role"));
	ttl = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "ttl"));
	desc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "description"));
	if (ttl != NULL && *ttl && strcmp(ttl, "0") != 0 &&
	    (parse_duration_ms(ttl, &ms) < 0 || ms <= 0)) {
		http_reply_error(req, 422, "Invalid", "ttl: invalid duration \"%s\"", ttl);
		goto out;
	}
	if (desc != NULL && strlen(desc) > 200) {
		http_reply_error(req, 422, "Invalid", "%s", "description: at most 200 characters");
		goto out;
	}
	j = xcalloc(1, sizeof(*j));
	j->store = s;
	j->hub = hub;
	j->req = req;
	j->role = role ? xstrdup(role) : NULL;
	j->desc = desc ? xstrdup(desc) : NULL;
	j->ttl_ms = ms;
	workpool_run(wp, tok_work, tok_done, j);
out:
	cJSON_Delete(o);
}

int
api_tokens_request(struct store *s, struct watch_hub *hub, struct workpool *wp,
    const char *admin_token, struct http_req *req, const char *path)
{
	const char *m = http_req_method(req), *id = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	int lvl, rc;

	if (strcmp(path, API_TOKENS_PATH) != 0) {
		if (strncmp(path, API_TOKENS_PATH "/", strlen(API_TOKENS_PATH) + 1) != 0)
			return 0;
		id = path + strlen(API_TOKENS_PATH) + 1;
	}
	lvl = admin_level(s, admin_token, req);
	if (lvl < 0) {
		http_reply_error(req, 401, "Unauthorized", "%s", "Unauthorized");
		return 1;
	}
	if (lvl == 0) {
		http_reply_error(req, 403, "Forbidden", "%s", "only role admin manages tokens");
		return 1;
	}
	if (id == NULL && strcmp(m, "GET") == 0) {
		cJSON *items, *r = cJSON_CreateObject();

		if ((rc = auth_token_list(s, &items, &e)) < 0) {
			cJSON_Delete(items);
			cJSON_Delete(r);
			http_reply_error(req, 500, "InternalError", "%s", e.msg);
			return 1;
		}
		cJSON_AddItemToObject(r, "items", items);
		http_reply_json(req, 200, r);
		cJSON_Delete(r);
	} else if (id == NULL && strcmp(m, "POST") == 0) {
		create(s, hub, wp, req);
	} else if (id != NULL && strcmp(m, "DELETE") == 0) {
		struct tok_job *j = xcalloc(1, sizeof(*j));

		j->store = s;
		j->hub = hub;
		j->req = req;
		j->revoke = 1;
		j->id = xstrdup(id);
		workpool_run(wp, tok_work, tok_done, j);
	} else {
		http_reply_error(req, 405, "MethodNotAllowed", "%s",
		    id ? "use DELETE" : "use GET or POST");
	}
	return 1;
}
