/*
 * daemon/api-drain.c - an agent drains its own node:
 *   POST /agent/v1/drain   (node credential)  {"reason": "..."}
 *	-> 200 {"nodeName": N, "evicted": K, "surging": S}
 * The node is cordoned (spec.unschedulable) and tainted SURGE_DRAIN_TAINT,
 * so the reconciler starts a replacement elsewhere for each of the node's
 * service pods and deletes the old one once the replacement is Ready
 * (daemon/surge.h): the host can go away (a Slurm job reaching its time
 * limit or cancelled, agent/slurm.h) without its services dropping
 * requests. Pods nothing would replace that way (LeaderWorkerSet group
 * members, pods no LLMInferenceService owns) are deleted at once, as
 * before. The node comes from the credential: an agent can drain no other
 * node. "evicted" counts the pods deleted now, "surging" those left to the
 * reconciler.
 */
#include "config.h"
#include "daemon/api-drain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/nodes.h"
#include "daemon/reconcile.h"
#include "daemon/store.h"
#include "daemon/surge.h"
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
cordon(struct store *s, const char *node, struct llmd_err *e)
{
	cJSON *o = NULL, *spec;
	int rc;

	if ((rc = store_get(s, "nodes", "", node, &o, e)) < 0)
		return rc;
	spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
	if (!cJSON_IsObject(spec))
		spec = cJSON_AddObjectToObject(o, "spec");
	surge_spec_set_draining(spec, 1);
	rc = store_update(s, "nodes", o, 0, NULL, NULL, e);
	cJSON_Delete(o);
	return rc;
}

static int
evict(struct store *s, const char *node, int *surging)
{
	cJSON *pods = NULL;
	const cJSON *p;
	int n = 0;

	*surging = 0;
	if (store_list(s, "pods", NULL, &pods, NULL, NULL) < 0)
		return 0;
	cJSON_ArrayForEach(p, pods) {
		const cJSON *md = json_member(p, "metadata");
		const char *nn = json_member_str(json_member(p, "spec"), "nodeName");
		const char *ns = json_member_str(md, "namespace");
		const char *name = json_member_str(md, "name");

		if (!nn || !ns || !name || strcmp(nn, node) != 0)
			continue;
		if (surge_pod_replaced(p))
			(*surging)++;
		else if (store_delete(s, "pods", ns, name, 0, NULL, NULL) == 0)
			n++;
	}
	cJSON_Delete(pods);
	return n;
}

/* A drain's writes, on the workpool (the loop answers when done). */
struct drain_job {
	struct store *store;
	struct watch_hub *hub;
	struct http_req *req;   /* valid until answered (lib/http_server.h) */
	char *node, *reason;
	struct llmd_err e;
	int rc, evicted, surging;
};

static void
drain_work(void *arg)
{
	struct drain_job *j = arg;

	if ((j->rc = cordon(j->store, j->node, &j->e)) == 0)
		j->evicted = evict(j->store, j->node, &j->surging);
}

static void
drain_done(void *arg)
{
	struct drain_job *j = arg;
	cJSON *r;

	if (j->rc < 0) {
		http_reply_error(j->req, j->e.code == -ENOENT ? 404 : 500,
		    j->e.code == -ENOENT ? "NotFound" : "InternalError", "node %s: %s", j->node,
		    j->e.msg);
		goto out;
	}
	if (j->hub != NULL)
		watch_hub_pump(j->hub);
	log_info("node %s draining at its agent's request (%s): %d pod(s) evicted, "
	    "%d to move once replaced", j->node, j->reason ? j->reason : "no reason given",
	    j->evicted, j->surging);
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "nodeName", j->node);
	cJSON_AddNumberToObject(r, "evicted", j->evicted);
	cJSON_AddNumberToObject(r, "surging", j->surging);
	http_reply_json(j->req, 200, r);
	cJSON_Delete(r);
out:
	free(j->node);
	free(j->reason);
	free(j);
}

int
api_drain_request(struct store *s, struct watch_hub *hub, struct workpool *wp,
    struct http_req *req, const char *path)
{
	const char *body, *reason;
	struct drain_job *j;
	size_t len;
	char *node;
	cJSON *o = NULL;

	if (strcmp(path, API_DRAIN_PATH) != 0)
		return 0;
	if (strcmp(http_req_method(req), "POST") != 0) {
		http_reply_error(req, 405, "MethodNotAllowed", "%s", "use POST");
		return 1;
	}
	if ((node = nodes_credential_node(s, bearer(req))) == NULL) {
		http_reply_error(req, 401, "Unauthorized", "%s", "invalid node credential");
		return 1;
	}
	body = http_req_body(req, &len);
	if (len > 0)
		json_parse(body, len, &o, NULL);
	reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "reason"));
	j = xcalloc(1, sizeof(*j));
	j->store = s;
	j->hub = hub;
	j->req = req;
	j->node = node;
	j->reason = reason ? xstrndup(reason, 256) : NULL;
	cJSON_Delete(o);
	workpool_run(wp, drain_work, drain_done, j);
	return 1;
}
