/*
 * daemon/api-agent.c - the agent-facing endpoints of the API:
 *   POST /agent/v1/tokens     (admin)        {"ttl":"24h"} -> {"token":"ID.SECRET"}
 *   POST /agent/v1/register   (join token)   node, address, labels, GPUs -> credential
 *   POST /agent/v1/heartbeat  (credential)   -> {} and Ready=True
 * and which regular API paths a node credential may use: read and watch pods
 * and nodes; write (status patches) only pods bound to its node; delete
 * pods of an LWS group that has a member on its node (group restarts).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "daemon/auth.h"
#include "daemon/nodes.h"
#include "daemon/store.h"
#include "daemon/watch.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
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

static int
is_admin(const struct nodes_api *a, struct http_req *req)
{
	const char *t = bearer(req);
	size_t n;

	if (a->admin_token == NULL)
		return 1;
	if (t == NULL)
		return 0;
	n = strlen(a->admin_token);
	if (strlen(t) == n && CRYPTO_memcmp(t, a->admin_token, n) == 0)
		return 1;
	{   /* role tokens (daemon/auth.h): admin and operator add nodes */
		struct auth_token_info ti;

		return auth_token_check(a->store, t, &ti, NULL) == 0 &&
		    (strcmp(ti.role, "admin") == 0 || strcmp(ti.role, "operator") == 0);
	}
}

static cJSON *
read_body(struct http_req *req)
{
	size_t n;
	const char *p = http_req_body(req, &n);
	cJSON *o = NULL;

	if (n == 0)
		return cJSON_CreateObject();
	if (json_parse(p, n, &o, NULL) < 0 || !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		o = NULL;
	}
	return o;
}

static const char *
jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* A join token's write, on the workpool (the loop answers when done). */
struct join_job {
	struct store *store;
	struct http_req *req;     /* valid until answered (lib/http_server.h) */
	int64_t ttl_ms;
	char *tok;
	struct llmd_err e;
	int rc;
};

static void
join_work(void *arg)
{
	struct join_job *j = arg;

	j->rc = nodes_token_create(j->store, j->ttl_ms, &j->tok, &j->e);
}

static void
join_done(void *arg)
{
	struct join_job *j = arg;
	cJSON *r;

	if (j->rc < 0) {
		http_reply_error(j->req, 500, "InternalError", "%s", j->e.msg);
	} else {
		r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "token", j->tok);
		http_reply_json(j->req, 201, r);
		cJSON_Delete(r);
	}
	if (j->tok)
		OPENSSL_cleanse(j->tok, strlen(j->tok));
	free(j->tok);
	free(j);
}

static void
do_token(const struct nodes_api *a, struct http_req *req, const cJSON *body)
{
	const char *ttl = jstr(body, "ttl");
	int64_t ms = 0;
	struct join_job *j;

	if (!is_admin(a, req)) {
		http_reply_error(req, 401, "Unauthorized", "%s", "Unauthorized");
		return;
	}
	if (ttl && (parse_duration_ms(ttl, &ms) < 0 || ms <= 0)) {
		http_reply_error(req, 400, "BadRequest", "%s", "ttl: invalid duration");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->store = a->store;
	j->req = req;
	j->ttl_ms = ms;
	workpool_run(a->wp, join_work, join_done, j);
}

static int
valid_node_name(const char *n)
{
	size_t i, len = n ? strlen(n) : 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') ||
		    n[i] == '-' || n[i] == '.'))
			return 0;
	return n[0] != '-' && n[0] != '.';
}

/* Creates or updates the Node object of a registering agent. */
static int
write_node(struct store *s, const char *name, const cJSON *body, struct llmd_err *e)
{
	cJSON *node = NULL, *md, *labels, *ann, *st, *cap, *addrs, *a;
	const cJSON *l, *gpus = cJSON_GetObjectItemCaseSensitive(body, "gpus");
	const char *addr = jstr(body, "address"), *url = jstr(body, "agentUrl");
	char n[32];
	int rc, exists;

	exists = store_get(s, "nodes", "", name, &node, NULL) == 0;
	if (!exists) {
		node = cJSON_CreateObject();
		cJSON_AddStringToObject(node, "apiVersion", "v1");
		cJSON_AddStringToObject(node, "kind", "Node");
		md = cJSON_AddObjectToObject(node, "metadata");
		cJSON_AddStringToObject(md, "name", name);
		cJSON_AddObjectToObject(node, "spec");
	}
	md = cJSON_GetObjectItemCaseSensitive(node, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
	if (!cJSON_IsObject(labels = cJSON_GetObjectItemCaseSensitive(md, "labels")))
		labels = cJSON_AddObjectToObject(md, "labels");
	cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(body, "labels"))
		if (cJSON_IsString(l) && l->string) {
			cJSON_DeleteItemFromObjectCaseSensitive(labels, l->string);
			cJSON_AddStringToObject(labels, l->string, l->valuestring);
		}
	cJSON_DeleteItemFromObjectCaseSensitive(labels, "kubernetes.io/hostname");
	cJSON_AddStringToObject(labels, "kubernetes.io/hostname", name);
	if (!cJSON_IsObject(ann = cJSON_GetObjectItemCaseSensitive(md, "annotations")))
		ann = cJSON_AddObjectToObject(md, "annotations");
	cJSON_DeleteItemFromObjectCaseSensitive(ann, NODES_AGENT_URL_ANNOTATION);
	cJSON_AddStringToObject(ann, NODES_AGENT_URL_ANNOTATION, url ? url : "");
	cJSON_DeleteItemFromObjectCaseSensitive(node, "status");
	rc = exists ? store_update(s, "nodes", node, 0, NULL, NULL, e) :
	    store_create(s, "nodes", node, NULL, e);
	if (rc < 0)
		goto out;
	st = cJSON_AddObjectToObject(node, "status");
	snprintf(n, sizeof(n), "%d", cJSON_GetArraySize(gpus));
	cap = cJSON_AddObjectToObject(st, "capacity");
	cJSON_AddStringToObject(cap, "nvidia.com/gpu", n);
	cap = cJSON_AddObjectToObject(st, "allocatable");
	cJSON_AddStringToObject(cap, "nvidia.com/gpu", n);
	addrs = cJSON_AddArrayToObject(st, "addresses");
	if (addr) {
		a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "type", "InternalIP");
		cJSON_AddStringToObject(a, "address", addr);
		cJSON_AddItemToArray(addrs, a);
	}
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", "Hostname");
	cJSON_AddStringToObject(a, "address", name);
	cJSON_AddItemToArray(addrs, a);
	if (cJSON_IsArray(gpus))
		cJSON_AddItemToObject(st, "gpus", cJSON_Duplicate(gpus, 1));
	cJSON_AddArrayToObject(st, "conditions");
	rc = store_update(s, "nodes", node, STORE_STATUS, NULL, NULL, e);
out:
	cJSON_Delete(node);
	return rc;
}

/* A registration's writes, on the workpool (the loop answers when done). */
struct reg_job {
	struct store *store;
	struct watch_hub *hub;
	struct http_req *req;     /* valid until answered (lib/http_server.h) */
	cJSON *body;
	char *cred;
	struct llmd_err e;
	int rc;
};

static void
reg_work(void *arg)
{
	struct reg_job *j = arg;
	const char *name = jstr(j->body, "nodeName");

	j->rc = write_node(j->store, name, j->body, &j->e);
	if (j->rc == 0)
		j->rc = nodes_credential_issue(j->store, name, &j->cred, &j->e);
}

static void
reg_done(void *arg)
{
	struct reg_job *j = arg;
	const char *name = jstr(j->body, "nodeName");
	cJSON *r;

	if (j->rc < 0) {
		http_reply_error(j->req, 500, "InternalError", "%s", j->e.msg);
		goto out;
	}
	if (j->hub)
		watch_hub_pump(j->hub);
	nodes_heartbeat(j->store, name);
	log_info("node %s registered (%s, %d GPU(s))", name,
	    jstr(j->body, "agentUrl") ? jstr(j->body, "agentUrl") : "?",
	    cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j->body, "gpus")));
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "nodeName", name);
	cJSON_AddStringToObject(r, "credential", j->cred);
	http_reply_json(j->req, 200, r);
	cJSON_Delete(r);
out:
	if (j->cred)
		OPENSSL_cleanse(j->cred, strlen(j->cred));
	free(j->cred);
	cJSON_Delete(j->body);
	free(j);
}

static void
do_register(const struct nodes_api *a, struct http_req *req, const cJSON *body)
{
	const char *name = jstr(body, "nodeName");
	struct llmd_err e = LLMD_ERR_INIT;
	struct reg_job *j;

	if (nodes_token_check(a->store, bearer(req), &e) < 0) {
		http_reply_error(req, 401, "Unauthorized", "%s", e.msg);
		return;
	}
	if (!valid_node_name(name)) {
		http_reply_error(req, 422, "Invalid", "%s", "nodeName: must be a lowercase DNS subdomain");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->store = a->store;
	j->hub = a->hub;
	j->req = req;
	j->body = cJSON_Duplicate(body, 1);
	/* Node and credential writes off the event loop, in order with the API's. */
	workpool_run(a->wp, reg_work, reg_done, j);
}

static void
do_heartbeat(const struct nodes_api *a, struct http_req *req)
{
	char *node = nodes_credential_node(a->store, bearer(req));
	cJSON *r;

	if (node == NULL) {
		http_reply_error(req, 401, "Unauthorized", "%s", "invalid node credential");
		return;
	}
	nodes_heartbeat(a->store, node);
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "nodeName", node);
	http_reply_json(req, 200, r);
	cJSON_Delete(r);
	free(node);
}

int
api_agent_request(const struct nodes_api *a, struct http_req *req, const char *path)
{
	cJSON *body;

	if (strncmp(path, "/agent/v1/", 10) != 0)
		return 0;
	if (strcmp(http_req_method(req), "POST") != 0) {
		http_reply_error(req, 405, "MethodNotAllowed", "%s", "use POST");
		return 1;
	}
	if ((body = read_body(req)) == NULL) {
		http_reply_error(req, 400, "BadRequest", "%s", "body: expected a JSON object");
		return 1;
	}
	path += 10;
	if (strcmp(path, "tokens") == 0)
		do_token(a, req, body);
	else if (strcmp(path, "register") == 0)
		do_register(a, req, body);
	else if (strcmp(path, "heartbeat") == 0)
		do_heartbeat(a, req);
	else
		http_reply_error(req, 404, "NotFound", "%s", "the server could not find the requested resource");
	cJSON_Delete(body);
	return 1;
}

/* Does a pod of namespace ns with this LWS group key run on node? */
static int
group_on_node(struct store *s, const char *ns, const char *key, const char *node)
{
	cJSON *pods = NULL;
	const cJSON *p;
	int yes = 0;

	if (store_list(s, "pods", ns, &pods, NULL, NULL) < 0)
		return 0;
	cJSON_ArrayForEach(p, pods) {
		const char *k = jstr(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(p, "metadata"), "labels"),
		    "leaderworkerset.sigs.k8s.io/group-key");
		const char *n = jstr(cJSON_GetObjectItemCaseSensitive(p, "spec"), "nodeName");

		if (k && n && strcmp(k, key) == 0 && strcmp(n, node) == 0)
			yes = 1;
	}
	cJSON_Delete(pods);
	return yes;
}

/*
 * A write by node to namespaces/NS/pods/NAME[/status]: only pods bound to
 * the node, and (DELETE) pods of an LWS group with a member on the node.
 */
static int
pod_write_allowed(const struct nodes_api *a, const char *method, const char *rest,
    const char *node)
{
	char ns[256], name[256];
	const char *slash, *pods;
	cJSON *pod = NULL;
	const char *bound, *key;
	int ok = 0;

	slash = strchr(rest, '/');
	if (slash == NULL || (size_t)(slash - rest) >= sizeof(ns))
		return 0;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - rest), rest);
	pods = slash;
	if (strncmp(pods, "/pods/", 6) != 0)
		return 0;
	pods += 6;
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(pods, "/"), pods);
	if (!*name || store_get(a->store, "pods", ns, name, &pod, NULL) < 0)
		return 1;   /* absent: the API answers 404 */
	bound = jstr(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "nodeName");
	key = jstr(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod,
	    "metadata"), "labels"), "leaderworkerset.sigs.k8s.io/group-key");
	if (bound && strcmp(bound, node) == 0)
		ok = 1;
	else if (strcmp(method, "DELETE") == 0 && key)
		ok = group_on_node(a->store, ns, key, node);
	cJSON_Delete(pod);
	return ok;
}

int
api_agent_authorized(const struct nodes_api *a, struct http_req *req, const char *path)
{
	const char *method = http_req_method(req);
	int read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	char *node;
	int ok;

	if (strncmp(path, "/api/v1/", 8) != 0)
		return 0;
	path += 8;
	if (strncmp(path, "pods", 4) == 0 || strncmp(path, "nodes", 5) == 0)
		ok = read;
	else if (strncmp(path, "namespaces/", 11) == 0 && strstr(path, "/pods") != NULL)
		ok = read || strcmp(method, "PATCH") == 0 || strcmp(method, "PUT") == 0 ||
		    strcmp(method, "DELETE") == 0;
	else
		ok = 0;
	if (!ok)
		return 0;
	if ((node = nodes_credential_node(a->store, bearer(req))) == NULL)
		return 0;
	if (!read)
		ok = pod_write_allowed(a, method, path + 11, node);
	free(node);
	return ok;
}
