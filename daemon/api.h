/*
 * daemon/api.h - the Kubernetes-shaped REST admin API of llmd: resource
 * table, request routing, verbs (GET/LIST/WATCH/POST/PUT/PATCH/DELETE),
 * Status error bodies, bearer-token authentication, label selectors.
 *
 * Paths: /api/v1[/namespaces/{ns}]/{resource}[/{name}[/status]] and
 * /apis/{group}/{version}[/namespaces/{ns}]/{resource}[/{name}[/status]],
 * plus /healthz, /readyz, /version and /api/v1/namespaces (those in use).
 */
#ifndef LLMD_DAEMON_API_H
#define LLMD_DAEMON_API_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/err.h"

struct event_base;
struct store;
struct watch_hub;

/* ---- resources (daemon/api-resources.c) ---- */

#define RES_NAMESPACED  0x1
#define RES_WRITABLE    0x2  /* users may create/update/delete (else derived, read-only) */
#define RES_STATUS      0x4  /* has a /status subresource */
#define RES_DELETABLE   0x8  /* derived, but users may delete it (pods: drain) */

struct api_resource {
	const char *plural;
	const char *group;     /* "" for the core group */
	const char *version;
	const char *kind;
	int flags;
};

/* Looks up by group and plural; NULL when unknown. */
const struct api_resource *api_resource_find(const char *group, const char *plural);
/* By kind (case-insensitive), plural or short name ("llmisvc", "po"); NULL when unknown. */
const struct api_resource *api_resource_by_name(const char *name);
/* "serving.kserve.io/v1alpha1" or "v1" into buf. */
const char *api_resource_api_version(const struct api_resource *r, char *buf, size_t len);
/* Every resource, NULL-terminated. */
extern const struct api_resource *const api_resources[];

/* ---- label and field selectors (daemon/api-selector.c) ---- */

struct selector;
/* Parses a Kubernetes label selector ("a=b,c!=d,e in (x,y),f notin (z),g,!h"). */
int selector_parse(const char *s, struct selector **out, struct llmd_err *e);
/* Field selector: "path.to.field=value,other!=value" on string/number fields. */
int selector_parse_fields(const char *s, struct selector **out, struct llmd_err *e);
/* Does obj match (labels from metadata.labels, or fields of obj)? NULL matches all. */
int selector_match(const struct selector *sel, const cJSON *obj);
void selector_free(struct selector *sel);

/* ---- request bodies (daemon/api-body.c) ---- */

/* Largest request body accepted (413 above). */
#define API_MAX_BODY (3u * 1024 * 1024)
/*
 * Parses a JSON or (when content_type says yaml, or the body does not look like
 * JSON) YAML document. Rejects invalid UTF-8, NUL bytes and excessive nesting
 * with -EINVAL and a message naming the position.
 */
int api_body_parse(const char *p, size_t n, const char *content_type, cJSON **out,
    struct llmd_err *e);

/* ---- the server (daemon/api.c) ---- */

struct api_opts {
	const char *listen;        /* "HOST:PORT"; port 0 picks a free one */
	const char *token;         /* admin bearer token, NULL = open (loopback only) */
	size_t max_body;           /* 0 = API_MAX_BODY */
	int write_timeout_s;       /* idle timeout of connections (watch excluded) */
	struct workpool *workpool; /* writes (fsync) run here; NULL: on the loop */
	void *tls_ctx;             /* SSL_CTX: HTTPS (daemon/api-tls.c); NULL: plain HTTP */
};

struct api;
/* Hook run (on the loop) after every committed write, e.g. to pump watches. */
typedef void (*api_write_hook)(void *arg);

int api_start(struct api **out, struct event_base *base, struct store *store,
    struct watch_hub *hub, const struct api_opts *o, struct llmd_err *e);
/* The bound "HOST:PORT" (after port 0 was resolved). */
const char *api_bound_address(const struct api *a);
void api_set_ready(struct api *a, int ready);
/* Graceful shutdown: stop accepting, run the hooks, exit the loop when idle. */
void api_shutdown(struct api *a);
void api_on_shutdown(struct api *a, void (*fn)(void *arg), void *arg);
void api_stop(struct api *a);

/* Is host (an address literal or "localhost") a loopback address? */
int api_host_is_loopback(const char *host);

#endif
