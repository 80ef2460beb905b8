/*
 * cli/cmd-token.c - "node token create [--ttl DURATION]": a join token for
 * llmd-agent (POST /agent/v1/tokens), printed alone on the last line.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/util.h"

static int
cmd_node_exec(struct admin *a, int argc, char **argv)
{
	const char *ttl = NULL;
	struct admin_resp resp;
	struct buf body = BUF_INIT;
	cJSON *o;
	const char *tok;
	int64_t ms;
	int i, rc;

	if (argc >= 2 && (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "remove") == 0))
		return cmd_node_ssh(a, argc, argv);
	if (argc < 3 || strcmp(argv[1], "token") != 0 || strcmp(argv[2], "create") != 0) {
		fprintf(stderr, "error: USAGE: node token create [--ttl DURATION]\n");
		return EXIT_USAGE;
	}
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc)
			ttl = argv[++i];
		else if (strncmp(argv[i], "--ttl=", 6) == 0)
			ttl = argv[i] + 6;
		else {
			fprintf(stderr, "error: unexpected argument \"%s\"\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (ttl && (parse_duration_ms(ttl, &ms) < 0 || ms <= 0)) {
		fprintf(stderr, "error: --ttl: invalid duration \"%s\"\n", ttl);
		return EXIT_USAGE;
	}
	buf_adds(&body, "{");
	if (ttl) {
		buf_adds(&body, "\"ttl\":");
		buf_add_json_str(&body, ttl, strlen(ttl));
	}
	buf_adds(&body, "}");
	rc = admin_call(a, "POST", "/agent/v1/tokens", "application/json", body.buf, body.len,
	    &resp);
	buf_release(&body);
	if (rc < 0)
		return 1;
	if (resp.code != 201 && resp.code != 200) {
		rc = admin_server_error(&resp);
		admin_resp_release(&resp);
		return rc;
	}
	o = admin_resp_json(&resp);
	admin_resp_release(&resp);
	tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "token"));
	if (tok == NULL) {
		fprintf(stderr, "error: unexpected answer from the server\n");
		cJSON_Delete(o);
		return 1;
	}
	fprintf(stderr, "join token (valid %s; any number of nodes may use it):\n",
	    ttl ? ttl : "24h");
	printf("%s\n", tok);
	cJSON_Delete(o);
	return 0;
}

const struct cmd_entry cmd_node_entry = {
	.name = "node", .alias = NULL, .usage = "token create [--ttl DURATION] | add|remove HOST [OPTIONS]",
	.exec = cmd_node_exec,
};
