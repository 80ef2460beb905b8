/*
 * cli/cmd-apitoken.c - "token create --role ROLE [--ttl DURATION]
 * [--description TEXT]" (the token alone on the last stdout line),
 * "token list" and "token revoke ID": role-bearing API tokens
 * (/auth/v1/tokens, daemon/api-tokens.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/util.h"

#define TOKEN_USAGE "error: USAGE: token create --role ROLE [--ttl DURATION] " \
	"[--description TEXT] | token list | token revoke ID\n"

/* "--name VALUE" or "--name=VALUE" at argv[*i]; NULL when not that flag. */
static const char *
flag_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strcmp(argv[*i], name) == 0 && *i + 1 < argc)
		return argv[++*i];
	if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	return NULL;
}

static int
finish(struct admin_resp *resp, cJSON **out)
{
	if (resp->code < 200 || resp->code > 299) {
		int rc = admin_server_error(resp);
		admin_resp_release(resp);
		return rc;
	}
	*out = admin_resp_json(resp);
	admin_resp_release(resp);
	if (*out == NULL) {
		fprintf(stderr, "error: unexpected answer from the server\n");
		return 1;
	}
	return 0;
}

static int
do_create(struct admin *a, int argc, char **argv)
{
	const char *role = NULL, *ttl = NULL, *desc = NULL, *v, *tok;
	struct admin_resp resp;
	cJSON *req, *o = NULL;
	char *body;
	int64_t ms;
	int rc;

	for (int i = 2; i < argc; i++) {
		if ((v = flag_value(argc, argv, &i, "--role")) != NULL)
			role = v;
		else if ((v = flag_value(argc, argv, &i, "--ttl")) != NULL)
			ttl = v;
		else if ((v = flag_value(argc, argv, &i, "--description")) != NULL)
			desc = v;
		else {
			fprintf(stderr, "error: unexpected argument \"%s\"\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (role == NULL) {
		fprintf(stderr, "error: --role is required (admin, operator, viewer, router, "
		    "node)\n");
		return EXIT_USAGE;
	}
	if (ttl && (parse_duration_ms(ttl, &ms) < 0 || ms <= 0)) {
		fprintf(stderr, "error: --ttl: invalid duration \"%s\"\n", ttl);
		return EXIT_USAGE;
	}
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "role", role);
	if (ttl)
		cJSON_AddStringToObject(req, "ttl", ttl);
	if (desc)
		cJSON_AddStringToObject(req, "description", desc);
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	rc = admin_call(a, "POST", "/auth/v1/tokens", "application/json", body, strlen(body),
	    &resp);
	free(body);
	if (rc < 0)
		return 1;
	if ((rc = finish(&resp, &o)) != 0)
		return rc;
	tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "token"));
	if (tok == NULL) {
		fprintf(stderr, "error: unexpected answer from the server\n");
		cJSON_Delete(o);
		return 1;
	}
	fprintf(stderr, "token %s (role %s, %s%s); it is shown only once:\n",
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id")), role,
	    ttl ? "valid " : "no expiry", ttl ? ttl : "");
	printf("%s\n", tok);
	cJSON_Delete(o);
	return 0;
}

static void
fmt_time(double ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0) {
		snprintf(out, len, "never");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
do_list(struct admin *a)
{
	struct admin_resp resp;
	struct table t;
	cJSON *o = NULL, *it;
	int rc;

	if (admin_call(a, "GET", "/auth/v1/tokens", NULL, NULL, 0, &resp) < 0)
		return 1;
	if ((rc = finish(&resp, &o)) != 0)
		return rc;
	table_init(&t, 5);
	table_add(&t, (const char *const[]){ "ID", "ROLE", "CREATED", "EXPIRES", "DESCRIPTION" });
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "items")) {
		char created[32], expires[40];
		const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it,
		    "description"));

		fmt_time(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "createdMs")),
		    created, sizeof(created));
		fmt_time(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "expiresMs")),
		    expires, sizeof(expires));
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "expired")))
			strcat(expires, " (expired)");
		table_add(&t, (const char *const[]){
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id")),
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "role")),
		    created, expires, d ? d : "" });
	}
	table_print(stdout, &t);
	table_release(&t);
	cJSON_Delete(o);
	return 0;
}

static int
do_revoke(struct admin *a, const char *id)
{
	struct admin_resp resp;
	struct buf path = BUF_INIT;
	cJSON *o = NULL;
	int rc;

	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
		    *p == '.')) {
			fprintf(stderr, "error: invalid token id \"%s\"\n", id);
			return EXIT_USAGE;
		}
	buf_addf(&path, "/auth/v1/tokens/%s", id);
	rc = admin_call(a, "DELETE", path.buf, NULL, NULL, 0, &resp);
	buf_release(&path);
	if (rc < 0)
		return 1;
	if ((rc = finish(&resp, &o)) != 0)
		return rc;
	printf("token %s revoked\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o,
	    "id")));
	cJSON_Delete(o);
	return 0;
}

static int
cmd_token_exec(struct admin *a, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return do_create(a, argc, argv);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return do_list(a);
	if (argc == 3 && strcmp(argv[1], "revoke") == 0)
		return do_revoke(a, argv[2]);
	fprintf(stderr, TOKEN_USAGE);
	return EXIT_USAGE;
}

const struct cmd_entry cmd_token_entry = {
	.name = "token", .alias = NULL,
	.usage = "create --role ROLE [--ttl D] | list | revoke ID",
	.exec = cmd_token_exec,
};
