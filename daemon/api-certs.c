/*
 * daemon/api-certs.c - client certificates from the cluster CA:
 *   GET  /agent/v1/ca                         (anyone) the CA certificate, PEM
 *   POST /agent/v1/certificatesigningrequests {"csr": PEM, ...}
 *	-> 201 {"certificate": PEM, "caCertificate": PEM, "commonName", "role"}
 * The subject is the daemon's choice: with a node credential CN = its node
 * and O = node; with a join token CN = body.nodeName (the token already lets
 * its holder join under any name) and O = node; with the admin token (or an
 * open loopback API) CN = body.commonName and O = body.role (node, router,
 * admin, operator, viewer). See docs/security.md.
 */
#include "config.h"
#include "daemon/api-certs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "daemon/naming.h"
#include "daemon/nodes.h"
#include "lib/ca.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define NODE_CERT_DAYS 365

static struct ca *cluster_ca;

void
api_certs_set_ca(struct ca *ca)
{
	cluster_ca = ca;
}

static const char *
bearer(struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	return h + 7;
}

static int
is_admin(const char *admin_token, const char *t)
{
	size_t n;

	if (admin_token == NULL)
		return 1;   /* open API: loopback only (api_start enforces it) */
	if (t == NULL)
		return 0;
	n = strlen(admin_token);
	return strlen(t) == n && CRYPTO_memcmp(t, admin_token, n) == 0;
}

static int
valid_role(const char *r)
{
	static const char *const roles[] = { "node", "router", "admin", "operator", "viewer" };

	for (size_t i = 0; r != NULL && i < ARRAY_SIZE(roles); i++)
		if (strcmp(r, roles[i]) == 0)
			return 1;
	return 0;
}

static void
reply_ca(struct http_req *req)
{
	char *pem;

	if (cluster_ca == NULL) {
		http_reply_error(req, 404, "NotFound", "%s",
		    "this llmd does not run the cluster CA (plain HTTP or --tls-cert)");
		return;
	}
	pem = ca_cert_pem(cluster_ca);
	http_reply_data(req, 200, "application/x-pem-file", pem, strlen(pem));
	free(pem);
}

static const char *
jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static void
sign(struct store *s, const char *admin_token, struct http_req *req)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const char *tok = bearer(req), *csr, *cn = NULL, *role = "node";
	char *node = NULL, *crt = NULL, *capem = NULL;
	size_t len;
	const char *body = http_req_body(req, &len);
	cJSON *o = NULL, *r;

	if (cluster_ca == NULL) {
		http_reply_error(req, 404, "NotFound", "%s",
		    "this llmd does not run the cluster CA (plain HTTP or --tls-cert)");
		return;
	}
	if (json_parse(body, len, &o, NULL) < 0 || !cJSON_IsObject(o) ||
	    (csr = jstr(o, "csr")) == NULL) {
		http_reply_error(req, 400, "BadRequest", "%s",
		    "expected a JSON object with \"csr\": a PEM certificate request");
		goto out;
	}
	if (tok != NULL && (node = nodes_credential_node(s, tok)) != NULL) {
		cn = node;
	} else if (tok != NULL && nodes_token_check(s, tok, NULL) == 0) {
		cn = jstr(o, "nodeName");
		if (cn == NULL || !naming_is_dns1123_subdomain(cn)) {
			http_reply_error(req, 422, "Invalid", "%s",
			    "nodeName: must be a lowercase DNS subdomain");
			goto out;
		}
	} else if (is_admin(admin_token, tok)) {
		cn = jstr(o, "commonName");
		role = jstr(o, "role") ? jstr(o, "role") : "node";
		if (cn == NULL || !naming_is_dns1123_subdomain(cn) || !valid_role(role)) {
			http_reply_error(req, 422, "Invalid", "%s", "commonName must be a lowercase "
			    "DNS subdomain and role one of node, router, admin, operator, viewer");
			goto out;
		}
	} else {
		http_reply_error(req, 401, "Unauthorized", "%s",
		    "a node credential, join token or admin token is required");
		goto out;
	}
	if (ca_sign_csr(cluster_ca, csr, cn, role, NODE_CERT_DAYS, &crt, &e) < 0) {
		http_reply_error(req, e.code == -EINVAL ? 400 : 500,
		    e.code == -EINVAL ? "BadRequest" : "InternalError", "%s", e.msg);
		goto out;
	}
	capem = ca_cert_pem(cluster_ca);
	log_info("signed a client certificate CN=%s O=%s for %s", cn, role, http_req_peer(req));
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "certificate", crt);
	cJSON_AddStringToObject(r, "caCertificate", capem);
	cJSON_AddStringToObject(r, "commonName", cn);
	cJSON_AddStringToObject(r, "role", role);
	http_reply_json(req, 201, r);
	cJSON_Delete(r);
out:
	free(crt);
	free(capem);
	free(node);
	cJSON_Delete(o);
}

int
api_certs_request(struct store *s, const char *admin_token, struct http_req *req,
    const char *path)
{
	const char *m = http_req_method(req);

	if (strcmp(path, API_CERTS_CA_PATH) == 0) {
		if (strcmp(m, "GET") != 0)
			http_reply_error(req, 405, "MethodNotAllowed", "%s", "use GET");
		else
			reply_ca(req);
		return 1;
	}
	if (strcmp(path, API_CERTS_CSR_PATH) == 0) {
		if (strcmp(m, "POST") != 0)
			http_reply_error(req, 405, "MethodNotAllowed", "%s", "use POST");
		else
			sign(s, admin_token, req);
		return 1;
	}
	return 0;
}
