/*
 * daemon/nodes.c - join tokens, node credentials, heartbeats and the node
 * monitor (NotReady after the grace period, pod eviction after the eviction
 * timeout). See daemon/nodes.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "daemon/nodes.h"
#include "daemon/reconcile.h"
#include "daemon/store.h"
#include "daemon/watch.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "lib/workpool.h"

struct hb {
	char *node;
	uint64_t last;      /* monotonic ms of the last heartbeat */
	int evicted;        /* pods were deleted since the last heartbeat */
};

static struct {
	struct event_base *base;
	struct store *store;
	struct watch_hub *hub;
	struct event *timer;
	struct workpool *wp;   /* g.o.wp */
	struct nodes_opts o;
	uint64_t started;
	struct hb *hbs;
	size_t nhbs;
} g;

void
nodes_opts_from_env(struct nodes_opts *o)
{
	const char *v;
	int64_t ms;

	/*
	 * Fast failover by default (agents heartbeat every 5 s): NotReady after
	 * two missed heartbeats, pods moved 5 s later. Kubernetes waits 40 s and
	 * 5 min; llmd moves a dead node's work in well under 30 s.
	 */
	o->grace_ms = 10000;
	o->eviction_ms = 15000;
	o->period_ms = 1000;
	o->metrics = NULL;
	o->wp = NULL;
	if ((v = getenv("LLMD_NODE_GRACE")) && parse_duration_ms(v, &ms) == 0 && ms > 0)
		o->grace_ms = ms;
	if ((v = getenv("LLMD_NODE_EVICTION")) && parse_duration_ms(v, &ms) == 0 && ms > 0)
		o->eviction_ms = ms;
	if ((v = getenv("LLMD_NODE_MONITOR_PERIOD")) && parse_duration_ms(v, &ms) == 0 &&
	    ms > 0)
		o->period_ms = ms;
}

static const char *
sdata(const cJSON *secret, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(secret, "stringData"), key));
}

static cJSON *
secret_new(const char *name, const char *type)
{
	cJSON *o = cJSON_CreateObject(), *md;

	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Secret");
	md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", LLMD_SYSTEM_NAMESPACE);
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddObjectToObject(o, "stringData");
	return o;
}

static void
pump(void)
{
	if (g.hub)
		watch_hub_pump(g.hub);
}

int
nodes_token_create(struct store *s, int64_t ttl_ms, char **out, struct llmd_err *e)
{
	char id[13], sec[33], h[65], name[64], exp[32];
	cJSON *o;
	int rc;

	if (ttl_ms <= 0)
		ttl_ms = NODES_DEFAULT_TOKEN_TTL_MS;
	if (secret_random_hex(6, id) < 0 || secret_random_hex(16, sec) < 0)
		return err_set(e, -EIO, NULL, "no random bytes");
	secret_sha256_hex(sec, h);
	snprintf(name, sizeof(name), "join-token-%s", id);
	snprintf(exp, sizeof(exp), "%lld", (long long)(wall_ms() + ttl_ms));
	o = secret_new(name, "bootstrap.llmd.io/token");
	cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(o, "stringData"),
	    "token-hash", h);
	cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(o, "stringData"),
	    "expiration-ms", exp);
	rc = store_create(s, "secrets", o, NULL, e);
	cJSON_Delete(o);
	if (rc < 0)
		return rc;
	pump();
	{
		size_t n = strlen(id) + strlen(sec) + 2;

		*out = xmalloc(n);
		snprintf(*out, n, "%s.%s", id, sec);
	}
	return 0;
}

int
nodes_token_check(struct store *s, const char *token, struct llmd_err *e)
{
	const char *dot = token ? strchr(token, '.') : NULL;
	char name[64], h[65];
	const char *want, *exp;
	cJSON *o = NULL;
	int rc = -EACCES;

	if (dot == NULL || dot - token != 12 || strlen(dot + 1) != 32)
		return err_set(e, -EACCES, NULL, "malformed join token");
	snprintf(name, sizeof(name), "join-token-%.12s", token);
	if (store_get(s, "secrets", LLMD_SYSTEM_NAMESPACE, name, &o, NULL) < 0)
		return err_set(e, -EACCES, NULL, "unknown join token");
	secret_sha256_hex(dot + 1, h);
	want = sdata(o, "token-hash");
	exp = sdata(o, "expiration-ms");
	if (want == NULL || strlen(want) != 64 || CRYPTO_memcmp(want, h, 64) != 0)
		err_set(e, -EACCES, NULL, "unknown join token");
	else if (exp == NULL || strtoll(exp, NULL, 10) < wall_ms())
		err_set(e, -EACCES, NULL, "join token expired");
	else
		rc = 0;
	cJSON_Delete(o);
	return rc;
}

int
nodes_credential_issue(struct store *s, const char *node, char **out, struct llmd_err *e)
{
	char sec[65], h[65], name[300];
	cJSON *o;
	int rc;

	if (secret_random_hex(32, sec) < 0)
		return err_set(e, -EIO, NULL, "no random bytes");
	secret_sha256_hex(sec, h);
	snprintf(name, sizeof(name), "node-credential-%s", node);
	o = secret_new(name, "llmd.io/node-credential");
	cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(o, "stringData"), "node", node);
	cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(o, "stringData"),
	    "credential-hash", h);
	rc = store_create(s, "secrets", o, NULL, e);
	if (rc == -EEXIST)
		rc = store_update(s, "secrets", o, 0, NULL, NULL, e);
	cJSON_Delete(o);
	if (rc < 0)
		return rc;
	pump();
	{
		size_t n = strlen(node) + strlen(sec) + 12;

		*out = xmalloc(n);
		snprintf(*out, n, "llmdnode.%s.%s", node, sec);
	}
	return 0;
}

char *
nodes_credential_node(struct store *s, const char *cred)
{
	const char *dot;
	char *node, name[300], h[65];
	const char *want;
	cJSON *o = NULL;

	if (cred == NULL || strncmp(cred, "llmdnode.", 9) != 0 ||
	    (dot = strrchr(cred, '.')) == cred + 8 || strlen(dot + 1) != 64)
		return NULL;
	node = xstrndup(cred + 9, (size_t)(dot - cred - 9));
	snprintf(name, sizeof(name), "node-credential-%s", node);
	if (store_get(s, "secrets", LLMD_SYSTEM_NAMESPACE, name, &o, NULL) < 0) {
		free(node);
		return NULL;
	}
	secret_sha256_hex(dot + 1, h);
	want = sdata(o, "credential-hash");
	if (want == NULL || strlen(want) != 64 || CRYPTO_memcmp(want, h, 64) != 0) {
		free(node);
		node = NULL;
	}
	cJSON_Delete(o);
	return node;
}

static struct hb *
hb_find(const char *node, int create)
{
	size_t i;

	for (i = 0; i < g.nhbs; i++)
		if (strcmp(g.hbs[i].node, node) == 0)
			return &g.hbs[i];
	if (!create)
		return NULL;
	g.hbs = xreallocarray(g.hbs, g.nhbs + 1, sizeof(*g.hbs));
	g.hbs[g.nhbs].node = xstrdup(node);
	g.hbs[g.nhbs].last = g.started ? g.started : now_ms();
	g.hbs[g.nhbs].evicted = 0;
	return &g.hbs[g.nhbs++];
}

static const cJSON *
ready_cond(const cJSON *node)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(node, "status"), "conditions")) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));

		if (t && strcmp(t, "Ready") == 0)
			return c;
	}
	return NULL;
}

/* The write itself (a worker thread): 1 when the condition changed. */
static int
write_ready(struct store *s, const char *node, const char *status,
    const char *reason, const char *message)
{
	cJSON *o = NULL, *st, *conds, *c;
	const cJSON *old;
	const char *os;
	char now[32];
	int rc;

	if (store_get(s, "nodes", "", node, &o, NULL) < 0)
		return 0;
	old = ready_cond(o);
	os = old ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(old, "status")) : NULL;
	if (os && strcmp(os, status) == 0) {
		cJSON_Delete(o);
		return 0;
	}
	store_timestamp(now, sizeof(now));
	st = cJSON_GetObjectItemCaseSensitive(o, "status");
	if (!cJSON_IsObject(st)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
		st = cJSON_AddObjectToObject(o, "status");
	}
	conds = cJSON_GetObjectItemCaseSensitive(st, "conditions");
	if (!cJSON_IsArray(conds)) {
		cJSON_DeleteItemFromObjectCaseSensitive(st, "conditions");
		conds = cJSON_AddArrayToObject(st, "conditions");
	}
	if (old)
		cJSON_Delete(cJSON_DetachItemViaPointer(conds, (cJSON *)old));
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", "Ready");
	cJSON_AddStringToObject(c, "status", status);
	cJSON_AddStringToObject(c, "reason", reason);
	cJSON_AddStringToObject(c, "message", message);
	cJSON_AddStringToObject(c, "lastHeartbeatTime", now);
	cJSON_AddStringToObject(c, "lastTransitionTime", now);
	cJSON_AddItemToArray(conds, c);
	cJSON_DeleteItemFromObjectCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "metadata"), "resourceVersion");
	rc = store_update(s, "nodes", o, STORE_STATUS, NULL, NULL, NULL);
	cJSON_Delete(o);
	if (rc < 0) {
		log_warnx("node %s: cannot write its Ready condition", node);
		return 0;
	}
	return 1;
}

/*
 * Node writes leave the event loop: they run in order on the daemon's
 * workpool (the one thread that also runs API writes and reconcile
 * batches), or inline without one (unit tests).
 */
enum job_kind { JOB_READY, JOB_EVICT };

struct node_job {
	enum job_kind kind;
	struct store *s;
	char *node, *status, *reason, *message;
	int result;   /* JOB_READY: changed; JOB_EVICT: pods deleted */
};

static int evict_pods(struct store *s, const char *node);

static void
job_work(void *arg)
{
	struct node_job *j = arg;

	if (j->kind == JOB_READY)
		j->result = write_ready(j->s, j->node, j->status, j->reason, j->message);
	else
		j->result = evict_pods(j->s, j->node);
}

static void
job_done(void *arg)
{
	struct node_job *j = arg;

	if (j->kind == JOB_READY && j->result)
		log_info("node %s: Ready=%s (%s)", j->node, j->status, j->reason);
	else if (j->kind == JOB_EVICT && j->result)
		log_info("node %s: evicted %d pod(s) after the eviction timeout", j->node,
		    j->result);
	if (j->result)
		pump();
	free(j->node);
	free(j->status);
	free(j->reason);
	free(j->message);
	free(j);
}

void
nodes_set_ready(struct store *s, const char *node, const char *status,
    const char *reason, const char *message)
{
	struct node_job *j;
	cJSON *o = NULL;
	const cJSON *old;
	const char *os;
	int same;

	/* A read (the read connection): most heartbeats change nothing. */
	if (store_get(s, "nodes", "", node, &o, NULL) < 0)
		return;
	old = ready_cond(o);
	os = old ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(old, "status")) : NULL;
	same = os && strcmp(os, status) == 0;
	cJSON_Delete(o);
	if (same)
		return;
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_READY;
	j->s = s;
	j->node = xstrdup(node);
	j->status = xstrdup(status);
	j->reason = xstrdup(reason);
	j->message = xstrdup(message);
	workpool_run(g.wp, job_work, job_done, j);
}

void
nodes_heartbeat(struct store *s, const char *node)
{
	struct hb *h = hb_find(node, 1);

	h->last = now_ms();
	h->evicted = 0;
	nodes_set_ready(s, node, "True", "AgentReady", "llmd-agent is posting ready status");
}

static int
evict_pods(struct store *s, const char *node)
{
	cJSON *pods = NULL;
	const cJSON *p;
	int n = 0;

	if (store_list(s, "pods", NULL, &pods, NULL, NULL) < 0)
		return 0;
	cJSON_ArrayForEach(p, pods) {
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(p, "metadata");
		const char *nn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(p, "spec"), "nodeName"));
		const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));

		if (nn && ns && name && strcmp(nn, node) == 0 &&
		    store_delete(s, "pods", ns, name, 0, NULL, NULL) == 0)
			n++;
	}
	cJSON_Delete(pods);
	return n;
}

static void
evict(struct store *s, const char *node)
{
	struct node_job *j = xcalloc(1, sizeof(*j));

	j->kind = JOB_EVICT;
	j->s = s;
	j->node = xstrdup(node);
	workpool_run(g.wp, job_work, job_done, j);
}

/* llmd_node_heartbeat_age_seconds{node}, when the daemon gave a registry */
static struct metric_family *
heartbeat_age_family(void)
{
	static struct metric_family *f;
	static const char *const L[] = { "node" };

	if (f == NULL && g.o.metrics != NULL)
		f = metrics_gauge(g.o.metrics, "llmd_node_heartbeat_age_seconds",
		    "Seconds since the node's agent last reported.", 1, L);
	return f;
}

void
nodes_monitor_pass(struct store *s, uint64_t now)
{
	cJSON *nodes = NULL;
	const cJSON *n;

	if (store_list(s, "nodes", NULL, &nodes, NULL, NULL) < 0)
		return;
	cJSON_ArrayForEach(n, nodes) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(n, "metadata"), "name"));
		const cJSON *ann = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(n, "metadata"), "annotations");
		struct hb *h;
		uint64_t age;

		if (name == NULL || !cJSON_GetObjectItemCaseSensitive(ann,
		    NODES_AGENT_URL_ANNOTATION))
			continue;
		h = hb_find(name, 1);
		age = now > h->last ? now - h->last : 0;
		if (heartbeat_age_family() != NULL)
			metric_set(heartbeat_age_family(), (const char *[]){ name }, (double)age / 1000.0);
		if (age > (uint64_t)g.o.grace_ms)
			nodes_set_ready(s, name, "Unknown", "NodeStatusUnknown",
			    "llmd-agent stopped posting node status");
		if (age > (uint64_t)g.o.eviction_ms && !h->evicted) {
			h->evicted = 1;
			evict(s, name);
		}
	}
	cJSON_Delete(nodes);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	nodes_monitor_pass(g.store, now_ms());
}

int
nodes_start(struct event_base *base, struct store *s, struct watch_hub *hub,
    const struct nodes_opts *o)
{
	struct timeval tv;

	g.base = base;
	g.store = s;
	g.hub = hub;
	g.o = *o;
	g.wp = o->wp;
	g.started = now_ms();
	if (base) {
		tv.tv_sec = (time_t)(o->period_ms / 1000);
		tv.tv_usec = (suseconds_t)((o->period_ms % 1000) * 1000);
		g.timer = event_new(base, -1, EV_PERSIST, on_timer, NULL);
		event_add(g.timer, &tv);
	}
	log_info("nodes: heartbeat grace %lld ms, eviction after %lld ms",
	    (long long)o->grace_ms, (long long)o->eviction_ms);
	return 0;
}

void
nodes_stop(void)
{
	size_t i;

	if (g.timer)
		event_free(g.timer);
	for (i = 0; i < g.nhbs; i++)
		free(g.hbs[i].node);
	free(g.hbs);
	memset(&g, 0, sizeof(g));
}
