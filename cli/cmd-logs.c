/*
 * cli/cmd-logs.c - "logs POD [-c CONTAINER] [-f] [--tail N]": a pod's process
 * output, read from the agent of its node at the address the agent
 * registered (the node's llmd.io/agent-url annotation), with our API token
 * (the agent has the daemon check it).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/http.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/util.h"

static size_t
to_stdout(char *p, size_t sz, size_t n, void *arg)
{
	(void)arg;
	fwrite(p, sz, n, stdout);
	fflush(stdout);
	return sz * n;
}

static int
cmd_logs_exec(struct admin *a, int argc, char **argv)
{
	const char *pod = NULL, *container = NULL, *tail = NULL;
	int follow = 0, i, rc = 1;
	cJSON *po = NULL, *no = NULL;
	const char *node, *url;
	struct buf u = BUF_INIT, h = BUF_INIT;
	struct curl_slist *hdrs = NULL;
	CURL *c;
	long code = 0;
	char *q;

	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--container") == 0) &&
		    i + 1 < argc)
			container = argv[++i];
		else if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0)
			follow = 1;
		else if (strcmp(argv[i], "--tail") == 0 && i + 1 < argc)
			tail = argv[++i];
		else if (strncmp(argv[i], "--tail=", 7) == 0)
			tail = argv[i] + 7;
		else if (argv[i][0] != '-' && pod == NULL)
			pod = strncmp(argv[i], "pod/", 4) == 0 ? argv[i] + 4 : argv[i];
		else {
			fprintf(stderr, "error: unexpected argument \"%s\"\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (pod == NULL) {
		fprintf(stderr, "error: USAGE: logs POD [-c CONTAINER] [-f] [--tail N]\n");
		return EXIT_USAGE;
	}
	if (admin_get_obj(a, api_resource_by_name("pods"), admin_ns(a, NULL), pod, &po, 0) < 0)
		return 1;
	node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(po, "spec"), "nodeName"));
	if (node == NULL) {
		fprintf(stderr, "error: pod %s is not scheduled on a node yet\n", pod);
		goto out;
	}
	if (admin_get_obj(a, api_resource_by_name("nodes"), NULL, node, &no, 0) < 0)
		goto out;
	url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(no, "metadata"),
	    "annotations"), "llmd.io/agent-url"));
	if (url == NULL || !*url) {
		fprintf(stderr, "error: node %s has no agent address\n", node);
		goto out;
	}
	q = evhttp_encode_uri(admin_ns(a, NULL));
	buf_addf(&u, "%s/v1/logs/%s/", url, q);
	free(q);
	q = evhttp_encode_uri(pod);
	buf_adds(&u, q);
	free(q);
	if (container) {
		q = evhttp_encode_uri(container);
		buf_addf(&u, "/%s", q);
		free(q);
	}
	buf_addf(&u, "?follow=%d", follow);
	if (tail)
		buf_addf(&u, "&tail=%s", tail);
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, u.buf);
	/* The agent checks our API token with the daemon. */
	if (a->token) {
		buf_addf(&h, "Authorization: Bearer %s", a->token);
		hdrs = curl_slist_append(NULL, h.buf);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_stdout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) != CURLE_OK) {
		fprintf(stderr, "error: cannot reach the agent of node %s at %s\n", node, url);
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		rc = code == 200 ? 0 : 1;
		if (code == 401)
			fprintf(stderr, "\nerror: the agent of node %s refused our credentials\n", node);
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
out:
	buf_release(&h);
	buf_release(&u);
	cJSON_Delete(po);
	cJSON_Delete(no);
	return rc;
}

const struct cmd_entry cmd_logs_entry = {
	.name = "logs", .alias = NULL, .usage = "POD [-c CONTAINER] [-f] [--tail N]",
	.exec = cmd_logs_exec,
};
