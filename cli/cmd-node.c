/*
 * cli/cmd-node.c - "cordon NODE", "uncordon NODE" (spec.unschedulable) and
 * "drain NODE" (cordon, then delete the node's pods so their services
 * reschedule them elsewhere).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "cli/admin.h"
#include "lib/cli.h"

static int
set_unschedulable(struct admin *a, int argc, char **argv, int on, const char *verb)
{
	const struct api_resource *r = api_resource_by_name("nodes");
	int i, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "error: USAGE: %s NODE\n", argv[0]);
		return EXIT_USAGE;
	}
	for (i = 1; i < argc; i++)
		rc |= admin_patch(a, r, NULL, argv[i], on ?
		    "{\"spec\":{\"unschedulable\":true}}" :
		    "{\"spec\":{\"unschedulable\":null}}", verb);
	return rc;
}

static int
cmd_cordon_exec(struct admin *a, int argc, char **argv)
{
	return set_unschedulable(a, argc, argv, 1, "cordoned");
}

static int
cmd_uncordon_exec(struct admin *a, int argc, char **argv)
{
	return set_unschedulable(a, argc, argv, 0, "uncordoned");
}

static int
cmd_drain_exec(struct admin *a, int argc, char **argv)
{
	const struct api_resource *pods = api_resource_by_name("pods");
	struct buf path = BUF_INIT;
	struct admin_resp resp;
	cJSON *list;
	const cJSON *it;
	char *q;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "error: USAGE: drain NODE\n");
		return EXIT_USAGE;
	}
	if ((rc = set_unschedulable(a, argc, argv, 1, "cordoned")) != 0)
		return rc;
	q = evhttp_encode_uri(argv[1]);
	buf_addf(&path, "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", q);
	free(q);
	rc = admin_call(a, "GET", path.buf, NULL, NULL, 0, &resp);
	buf_release(&path);
	if (rc < 0)
		return 1;
	if (resp.code != 200) {
		rc = admin_server_error(&resp);
		admin_resp_release(&resp);
		return rc;
	}
	list = admin_resp_json(&resp);
	admin_resp_release(&resp);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
		const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));

		if (!ns || !name)
			continue;
		admin_path(&path, pods, ns, name);
		if (admin_call(a, "DELETE", path.buf, NULL, NULL, 0, &resp) == 0) {
			if (resp.code == 200 || resp.code == 404)
				printf("pod/%s evicted\n", name);
			else
				rc |= admin_server_error(&resp);
			admin_resp_release(&resp);
		} else {
			rc = 1;
		}
		buf_reset(&path);
	}
	buf_release(&path);
	cJSON_Delete(list);
	if (rc == 0)
		printf("node/%s drained\n", argv[1]);
	return rc ? 1 : 0;
}

const struct cmd_entry cmd_cordon_entry = {
	.name = "cordon", .alias = NULL, .usage = "NODE...", .exec = cmd_cordon_exec,
};
const struct cmd_entry cmd_uncordon_entry = {
	.name = "uncordon", .alias = NULL, .usage = "NODE...", .exec = cmd_uncordon_exec,
};
const struct cmd_entry cmd_drain_entry = {
	.name = "drain", .alias = NULL, .usage = "NODE", .exec = cmd_drain_exec,
};
