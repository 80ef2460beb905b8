/*
 * cli/cmd-node.c - "cordon NODE", "uncordon NODE" (spec.unschedulable; the
 * drain taint goes too) and "drain NODE": cordon and taint the node
 * llmd.ai/draining (daemon/surge.h), so the daemon starts a replacement
 * elsewhere for each service pod and deletes the old pod once the
 * replacement is Ready; pods nothing replaces (LeaderWorkerSet groups, pods
 * no service owns) are deleted at once. Waits until the node has no pods
 * left (--timeout, 5m). --disable-eviction deletes every pod at once
 * (no surge), as kubectl's flag of that name skips the graceful path.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>

#include "cli/admin.h"
#include "daemon/surge.h"
#include "lib/cli.h"
#include "lib/util.h"


/* GETs node name, lets edit change its spec, PUTs it back (the exit status). */
static int
node_edit(struct admin *a, const char *name, void (*edit)(cJSON *spec, int on), int on,
    const char *verb)
{
	const struct api_resource *r = api_resource_by_name("nodes");
	struct buf path = BUF_INIT;
	struct admin_resp resp;
	cJSON *o = NULL, *spec;
	char *body;
	int rc;

	if (admin_get_obj(a, r, NULL, name, &o, 0) < 0)
		return 1;
	spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
	if (!cJSON_IsObject(spec)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, "spec");
		spec = cJSON_AddObjectToObject(o, "spec");
	}
	edit(spec, on);
	body = cJSON_PrintUnformatted(o);
	admin_path(&path, r, NULL, name);
	rc = admin_call(a, "PUT", path.buf, "application/json", body, strlen(body), &resp);
	buf_release(&path);
	cJSON_free(body);
	cJSON_Delete(o);
	if (rc < 0)
		return 1;
	if (resp.code != 200) {
		rc = admin_server_error(&resp);
		admin_resp_release(&resp);
		return rc ? rc : 1;
	}
	admin_resp_release(&resp);
	printf("node/%s %s\n", name, verb);
	return 0;
}

/* cordon keeps any drain taint: only unschedulable changes. */
static void
edit_cordon(cJSON *spec, int on)
{
	(void)on;
	cJSON_DeleteItemFromObjectCaseSensitive(spec, "unschedulable");
	cJSON_AddBoolToObject(spec, "unschedulable", 1);
}

static int
usage_nodes(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "error: USAGE: %s NODE...\n", argv[0]);
		return EXIT_USAGE;
	}
	return 0;
}

static int
cmd_cordon_exec(struct admin *a, int argc, char **argv)
{
	int i, rc = usage_nodes(argc, argv);

	for (i = 1; rc != EXIT_USAGE && i < argc; i++)
		rc |= node_edit(a, argv[i], edit_cordon, 1, "cordoned");
	return rc;
}

static int
cmd_uncordon_exec(struct admin *a, int argc, char **argv)
{
	int i, rc = usage_nodes(argc, argv);

	for (i = 1; rc != EXIT_USAGE && i < argc; i++)
		rc |= node_edit(a, argv[i], surge_spec_set_draining, 0, "uncordoned");
	return rc;
}

/* The node's pods (a List's items array, owned by the caller); NULL on error. */
static cJSON *
node_pods(struct admin *a, const char *node)
{
	struct buf path = BUF_INIT;
	struct admin_resp resp;
	cJSON *list, *items;
	char *q = evhttp_encode_uri(node);
	int rc;

	buf_addf(&path, "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", q);
	free(q);
	rc = admin_call(a, "GET", path.buf, NULL, NULL, 0, &resp);
	buf_release(&path);
	if (rc < 0)
		return NULL;
	if (resp.code != 200) {
		admin_server_error(&resp);
		admin_resp_release(&resp);
		return NULL;
	}
	list = admin_resp_json(&resp);
	admin_resp_release(&resp);
	items = cJSON_DetachItemFromObjectCaseSensitive(list, "items");
	cJSON_Delete(list);
	return items ? items : cJSON_CreateArray();
}

static int
delete_pod(struct admin *a, const cJSON *pod)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
	struct buf path = BUF_INIT;
	struct admin_resp resp;
	int rc = 0;

	if (!ns || !name)
		return 0;
	admin_path(&path, api_resource_by_name("pods"), ns, name);
	if (admin_call(a, "DELETE", path.buf, NULL, NULL, 0, &resp) == 0) {
		if (resp.code == 200 || resp.code == 404)
			printf("pod/%s evicted\n", name);
		else
			{ admin_server_error(&resp); rc = 1; }
		admin_resp_release(&resp);
	} else {
		rc = 1;
	}
	buf_release(&path);
	return rc;
}

static const char *
pod_name(const cJSON *pod)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "name"));
}

int
node_drain_start(struct admin *a, const char *node, int direct)
{
	const cJSON *it;
	cJSON *pods;
	int rc;

	rc = node_edit(a, node, direct ? edit_cordon : surge_spec_set_draining, 1, "cordoned");
	if (rc != 0)
		return rc;
	if ((pods = node_pods(a, node)) == NULL)
		return 1;
	cJSON_ArrayForEach(it, pods)
		if (direct || !surge_pod_replaced(it))
			rc |= delete_pod(a, it);
		else
			printf("pod/%s waiting for its replacement\n", pod_name(it));
	cJSON_Delete(pods);
	return rc;
}

int
node_drain_wait(struct admin *a, char *const *nodes, int n, int64_t timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	const cJSON *it;
	cJSON *pods;
	int i, left;

	for (;;) {
		for (i = 0, left = 0; i < n; i++) {
			if ((pods = node_pods(a, nodes[i])) == NULL)
				return 1;
			left += cJSON_GetArraySize(pods);
			if (cJSON_GetArraySize(pods) > 0 && now_ms() >= deadline) {
				fprintf(stderr, "error: timed out draining node/%s; still there:",
				    nodes[i]);
				cJSON_ArrayForEach(it, pods)
					fprintf(stderr, " pod/%s", pod_name(it));
				fprintf(stderr, "\n");
			}
			cJSON_Delete(pods);
		}
		if (left == 0)
			return 0;
		if (now_ms() >= deadline)
			return 1;
		usleep(250 * 1000);
	}
}

static int
cmd_drain_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "disable-eviction", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t timeout_ms = 300000;
	int c, rc, direct = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_duration_ms(optarg, &timeout_ms) < 0 || timeout_ms < 0) {
				fprintf(stderr, "error: invalid --timeout \"%s\"\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'd': direct = 1; break;
		default: return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "error: USAGE: drain NODE [--timeout=DUR] [--disable-eviction]\n");
		return EXIT_USAGE;
	}
	rc = node_drain_start(a, argv[optind], direct);
	if (node_drain_wait(a, &argv[optind], 1, timeout_ms) != 0)
		return 1;
	if (rc == 0)
		printf("node/%s drained\n", argv[optind]);
	return rc ? 1 : 0;
}

const struct cmd_entry cmd_cordon_entry = {
	.name = "cordon", .alias = NULL, .usage = "NODE...", .exec = cmd_cordon_exec,
};
const struct cmd_entry cmd_uncordon_entry = {
	.name = "uncordon", .alias = NULL, .usage = "NODE...", .exec = cmd_uncordon_exec,
};
const struct cmd_entry cmd_drain_entry = {
	.name = "drain", .alias = NULL, .usage = "NODE [--timeout=DUR] [--disable-eviction]",
	.exec = cmd_drain_exec,
};
