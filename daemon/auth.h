/*
 * daemon/auth.h - role-bearing API tokens and the authorization of API
 * requests by role.
 *
 * Tokens look like "llmd_ID.SECRET" (ID 12 hex digits, SECRET 40). Only a
 * SHA-256 of the secret is stored, in the Secret "api-token-ID" (type
 * llmd.io/api-token) of namespace llmd-system, with the role, the creation
 * and expiry times (wall clock ms; 0: never) and a description. Revoking a
 * token deletes that Secret.
 *
 * Roles and what they may do on the Kubernetes-style API:
 *	admin     everything
 *	operator  everything except reading Secrets
 *	viewer    get, list, watch everything except Secrets
 *	router    get, list, watch the routing objects (inferencepools,
 *	          inferencemodels, httproutes, gateways, services, pods,
 *	          llminferenceservices, nodes)
 *	node      get, list, watch pods and nodes; create events
 * A verified client certificate (lib/tls) carries its role in O and is
 * authorized the same way when the request has no bearer token.
 */
#ifndef LLMD_DAEMON_AUTH_H
#define LLMD_DAEMON_AUTH_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/err.h"

struct http_req;
struct store;

#define AUTH_TOKEN_PREFIX "llmd_"

struct auth_token_info {
	char id[16];
	char role[16];
	int64_t created_ms;
	int64_t expires_ms;        /* 0: never */
};

/* Is role one of admin, operator, viewer, router, node? */
int auth_role_valid(const char *role);

/*
 * A new token for role, valid ttl_ms (<= 0: forever), into *out (malloc'd,
 * shown once: only its hash is kept).
 */
int auth_token_create(struct store *s, const char *role, int64_t ttl_ms,
    const char *description, char **out, struct auth_token_info *info, struct llmd_err *e);
/* 0 and info when token is a known, unexpired token; -EACCES (e says why) otherwise. */
int auth_token_check(struct store *s, const char *token, struct auth_token_info *info,
    struct llmd_err *e);
/* A JSON array of {id, role, created, expires, description} (no secrets). */
int auth_token_list(struct store *s, cJSON **out, struct llmd_err *e);
/* Deletes token ID (the id part, or a whole token); -ENOENT when unknown. */
int auth_token_revoke(struct store *s, const char *id, struct llmd_err *e);

/* The request's Kubernetes attributes, from its method, path and ?watch. */
struct auth_attrs {
	char verb[24];              /* get list watch create update patch delete deletecollection */
	char group[64];
	char resource[64];
	char subresource[32];
	char ns[64];
	int non_resource;           /* /version, discovery */
};
void auth_request_attrs(const char *method, const char *path, const char *watch,
    struct auth_attrs *out);
/* Does role allow the request? */
int auth_role_allows(const char *role, const struct auth_attrs *a);

/*
 * For a request that carries no admin token and no node credential: 1 when
 * a role token (or a client certificate's role) allows it; otherwise it
 * replies 401 (no or bad token) or 403 (a Kubernetes Status naming the role
 * and verb) and returns 0.
 */
int auth_check_request(struct store *s, struct http_req *req, const char *path);

/*
 * A client certificate of role node must belong to the node whose
 * credential the request carries: 1 when it does (or either is absent);
 * otherwise it replies 403 and returns 0.
 */
int auth_check_cert_binding(struct store *s, struct http_req *req);

#endif
