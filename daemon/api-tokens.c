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

static void
create(struct store *s, struct watch_hub *hub, struct http_req *req)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct auth_token_info ti;
	size_t len;
	const char *body = http_req_body(req, &len), *ttl, *role, *desc;
	cJSON *o = NULL, *r;
	int64_t ms = 0;
	char *tok = NULL;

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
	if (auth_token_create(s, role, ms, desc, &tok, &ti, &e) < 0) {
		http_reply_error(req, e.code == -EINVAL ? 422 : 500,
		    e.code == -EINVAL ? "Invalid" : "InternalError", "%s: %s", e.field, e.msg);
		goto out;
	}
	if (hub != NULL)
		watch_hub_pump(hub);
	log_info("created API token %s (role %s) for %s", ti.id, ti.role, http_req_peer(req));
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "token", tok);
	cJSON_AddStringToObject(r, "id", ti.id);
	cJSON_AddStringToObject(r, "role", ti.role);
	cJSON_AddNumberToObject(r, "expiresMs", (double)ti.expires_ms);
	http_reply_json(req, 201, r);
	cJSON_Delete(r);
out:
	if (tok != NULL)
		OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
	cJSON_Delete(o);
}

int
api_tokens_request(struct store *s, struct watch_hub *hub, const char *admin_token,
    struct http_req *req, const char *path)
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
		create(s, hub, req);
	} else if (id != NULL && strcmp(m, "DELETE") == 0) {
		rc = auth_token_revoke(s, id, &e);
		if (rc == -ENOENT)
			http_reply_error(req, 404, "NotFound", "token \"%s\" not found", id);
		else if (rc < 0)
			http_reply_error(req, rc == -EINVAL ? 400 : 500,
			    rc == -EINVAL ? "BadRequest" : "InternalError", "%s", e.msg);
		else {
			cJSON *r = cJSON_CreateObject();

			if (hub != NULL)
				watch_hub_pump(hub);
			log_info("revoked API token %s", id);
			cJSON_AddStringToObject(r, "id", id);
			http_reply_json(req, 200, r);
			cJSON_Delete(r);
		}
	} else {
		http_reply_error(req, 405, "MethodNotAllowed", "%s",
		    id ? "use DELETE" : "use GET or POST");
	}
	return 1;
}
