/*
 * daemon/api-drain.c - an agent drains its own node:
 *   POST /agent/v1/drain   (node credential)  {"reason": "..."}
 *	-> 200 {"nodeName": N, "evicted": K}
 * The node is cordoned (spec.unschedulable) and its pods deleted, so the
 * reconciler places them on other nodes before the host goes away (a Slurm
 * job reaching its time limit, agent/slurm.h). The node comes from the
 * credential: an agent can drain no other node.
 */
#include "config.h"
#include "daemon/api-drain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/nodes.h"
#include "daemon/store.h"
#include "daemon/watch.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

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
	cJSON_DeleteItemFromObjectCaseSensitive(spec, "unschedulable");
	cJSON_AddBoolToObject(spec, "unschedulable", 1);
	rc = store_update(s, "nodes", o, 0, NULL, NULL, e);
	cJSON_Delete(o);
	return rc;
}

static int
evict(struct store *s, const char *node)
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

int
api_drain_request(struct store *s, struct watch_hub *hub, struct http_req *req,
    const char *path)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const char *body, *reason;
	size_t len;
	char *node;
	cJSON *o = NULL, *r;
	int n;

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
	if (cordon(s, node, &e) < 0) {
		http_reply_error(req, e.code == -ENOENT ? 404 : 500,
		    e.code == -ENOENT ? "NotFound" : "InternalError", "node %s: %s", node, e.msg);
		goto out;
	}
	n = evict(s, node);
	if (hub != NULL)
		watch_hub_pump(hub);
	log_info("node %s drained by its agent (%s): %d pod(s) evicted", node,
	    reason ? reason : "no reason given", n);
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "nodeName", node);
	cJSON_AddNumberToObject(r, "evicted", n);
	http_reply_json(req, 200, r);
	cJSON_Delete(r);
out:
	cJSON_Delete(o);
	free(node);
	return 1;
}
