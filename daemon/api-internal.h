/*
 * daemon/api-internal.h - what the API's files share: the server state, one
 * request in flight (struct api_call) and the reply helpers.
 */
#ifndef LLMD_DAEMON_API_INTERNAL_H
#define LLMD_DAEMON_API_INTERNAL_H

#include <stddef.h>

#include "daemon/api.h"
#include "lib/http_server.h"

struct api {
	struct event_base *base;
	struct http_server *srv;
	struct store *store;
	struct watch_hub *hub;
	struct workpool *wp;
	char *token;
	size_t max_body;
	int ready;
	char bound[128];
	/* Group commit (api-verbs.c): writes waiting for the group on the workpool. */
	struct write_job *wq_head, *wq_tail;
	int wq_busy;
};

struct api_call {
	struct api *api;
	struct http_req *req;
	const char *method;  /* "GET", ... */
	const struct api_resource *res;
	char *ns;           /* NULL: cluster-scoped or all namespaces */
	char *name;         /* NULL: the collection */
	int status_sub;     /* .../{name}/status */
};

/* Replies with obj (compact JSON + newline). */
void api_reply_json(struct http_req *req, int code, const cJSON *obj);
/*
 * Replies with a Kubernetes Status (kind Status, status Failure). e (may be
 * NULL) with a field adds details.causes: e->msg may hold several
 * "; "-separated problems, each "field: message" after the first.
 */
void api_reply_status(struct http_req *req, int code, const char *reason,
    const char *message, const struct api_resource *r, const char *name,
    const struct llmd_err *e);
/* Maps a negative errno from the store/validation to a Status reply. */
void api_reply_err(struct api_call *c, int rc, const struct llmd_err *e);

/* Runs the verb of c (api-verbs.c). */
void api_verbs_dispatch(struct api_call *c);
/* Namespace objects (/api/v1/namespaces[/{name}]). */
void api_verbs_namespaces(struct api_call *c);

/* Discovery (api-discovery.c): /api, /apis, /api/v1, /apis/G/V. */
void api_discovery_versions(struct api_call *c);
void api_discovery_groups(struct api_call *c);
void api_discovery_resources(struct api_call *c, const char *group, const char *version);

#endif
