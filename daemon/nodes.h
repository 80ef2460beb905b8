/*
 * daemon/nodes.h - agent-managed nodes on the daemon side: join tokens
 * (kubeadm-style "ID.SECRET", reusable until they expire), per-node
 * credentials issued at registration, heartbeats kept in memory, and the
 * node monitor that marks a silent node Ready=Unknown after a grace period
 * and, after an eviction timeout, deletes its pods so the reconciler places
 * them on other nodes. Plus the agent-facing HTTP endpoints (api-agent.c).
 *
 * Storage: join tokens and credentials are Secrets in namespace
 * llmd-system ("join-token-ID", "node-credential-NODE") holding only a
 * SHA-256 of the secret part, so they survive a daemon restart (kill -9).
 * A node counts as agent-managed when it carries the annotation
 * NODES_AGENT_URL_ANNOTATION; other Node objects are never marked NotReady.
 *
 * Settings (environment of llmd): LLMD_NODE_GRACE (default 40s),
 * LLMD_NODE_EVICTION (5m), LLMD_NODE_MONITOR_PERIOD (1s): durations as
 * parse_duration_ms() reads them.
 */
#ifndef LLMD_DAEMON_NODES_H
#define LLMD_DAEMON_NODES_H

#include <stdint.h>

#include "lib/err.h"

struct api;
struct event_base;
struct http_req;
struct store;
struct watch_hub;

#define NODES_AGENT_URL_ANNOTATION "llmd.io/agent-url"
#define NODES_DEFAULT_TOKEN_TTL_MS (24LL * 3600 * 1000)

struct metrics;
struct workpool;

struct nodes_opts {
	int64_t grace_ms;      /* missed heartbeats before Ready=Unknown */
	int64_t eviction_ms;   /* silence before the node's pods are deleted */
	int64_t period_ms;     /* how often the monitor looks */
	struct metrics *metrics;  /* heartbeat ages go here; NULL: none */
	struct workpool *wp;      /* node writes run here (in order); NULL: inline */
};

/* Defaults (10 s, 15 s, 1 s) overridden by the LLMD_NODE_* environment
 * variables; llmd's --node-grace/--node-eviction/--node-monitor-period win. */
void nodes_opts_from_env(struct nodes_opts *o);
/* Starts the node monitor (one per process); hub may be NULL in tests. */
int nodes_start(struct event_base *base, struct store *s, struct watch_hub *hub,
    const struct nodes_opts *o);
void nodes_stop(void);

/* A new join token "ID.SECRET" valid for ttl_ms (<= 0: 24 h) into *out. */
int nodes_token_create(struct store *s, int64_t ttl_ms, char **out, struct llmd_err *e);
/* 0 when token is a known, unexpired join token; -EACCES otherwise. */
int nodes_token_check(struct store *s, const char *token, struct llmd_err *e);
/* Issues (replacing any previous one) the credential of node; *out owned by caller. */
int nodes_credential_issue(struct store *s, const char *node, char **out, struct llmd_err *e);
/* The node a credential belongs to (new string) or NULL when invalid. */
char *nodes_credential_node(struct store *s, const char *cred);
/*
 * Records a heartbeat of node now (monotonic clock); marks the node
 * Ready=True again when it was not.
 */
void nodes_heartbeat(struct store *s, const char *node);
/*
 * Writes the node's Ready condition when it differs: on the workpool when
 * nodes_start got one, else inline.
 */
void nodes_set_ready(struct store *s, const char *node, const char *status,
    const char *reason, const char *message);
/* One monitor pass at monotonic time now_ms (exposed for tests). */
void nodes_monitor_pass(struct store *s, uint64_t now);

/* ---- api-agent.c (over lib/http_server) ---- */

struct nodes_api {
	struct store *store;
	struct watch_hub *hub;       /* may be NULL */
	const char *admin_token;     /* NULL: open API */
	struct workpool *wp;         /* registrations write here; NULL: inline */
};

/* Handles /agent/v1/... paths; returns 1 when it replied. */
int api_agent_request(const struct nodes_api *a, struct http_req *req, const char *path);
/*
 * Is req (which failed the admin token check) a node credential allowed on
 * path? Agents may read and watch pods, patch pod status and read nodes.
 */
int api_agent_authorized(const struct nodes_api *a, struct http_req *req, const char *path);

#endif
