/*
 * cli/cmd-wait.c - "wait --for=condition=TYPE[=STATUS] | --for=delete
 * KIND/NAME [-n NS] [--timeout=DURATION]": polls until the condition holds.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <time.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/util.h"

static int
cond_holds(const cJSON *o, const char *type, const char *want)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "status"), "conditions")) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));
		const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));

		if (t && strcasecmp(t, type) == 0)
			return s && strcasecmp(s, want) == 0;
	}
	return 0;
}

static int
cmd_wait_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "for", required_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "namespace", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *forv = NULL, *ns = NULL;
	int64_t timeout_ms = 30000;
	char type[128], want[32] = "True", name[256];
	const struct api_resource *r;
	struct buf ref = BUF_INIT;
	uint64_t deadline;
	int c, i, del = 0, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': forv = optarg; break;
		case 'n': ns = optarg; break;
		case 't':
			if (parse_duration_ms(optarg, &timeout_ms) < 0) {
				fprintf(stderr, "error: invalid --timeout \"%s\"\n", optarg);
				return EXIT_USAGE;
			}
			break;
		default: return EXIT_USAGE;
		}
	}
	if (forv == NULL) {
		fprintf(stderr, "error: --for is required\n");
		return EXIT_USAGE;
	}
	if (strcmp(forv, "delete") == 0) {
		del = 1;
	} else if (strncmp(forv, "condition=", 10) == 0 && forv[10]) {
		const char *eq = strchr(forv + 10, '=');

		snprintf(type, sizeof(type), "%.*s", eq ? (int)(eq - forv - 10) : 127, forv + 10);
		if (eq)
			snprintf(want, sizeof(want), "%s", eq + 1);
	} else {
		fprintf(stderr, "error: unrecognized condition: \"%s\"\n", forv);
		return EXIT_USAGE;
	}
	i = optind;
	if ((rc = admin_operand(argc, argv, &i, &r, name, sizeof(name))) != 0)
		return rc;
	ns = admin_ns(a, ns);
	admin_kind_ref(&ref, r);
	deadline = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		cJSON *o = NULL;
		int got = admin_get_obj(a, r, ns, name, &o, 1);

		if (got == -EIO) {
			buf_release(&ref);
			return 1;
		}
		if (del ? got == -ENOENT : (got == 0 && cond_holds(o, type, want))) {
			cJSON_Delete(o);
			printf("%s/%s %s\n", ref.buf, name, del ? "deleted" : "condition met");
			buf_release(&ref);
			return 0;
		}
		cJSON_Delete(o);
		if (now_ms() >= deadline)
			break;
		{
			struct timespec ts = { 0, 200 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	fprintf(stderr, "error: timed out waiting for the condition on %s/%s\n",
	    r->plural, name);
	buf_release(&ref);
	return 1;
}

const struct cmd_entry cmd_wait_entry = {
	.name = "wait",
	.alias = NULL,
	.usage = "--for=condition=TYPE[=STATUS]|--for=delete KIND/NAME [-n NS] [--timeout=DUR]",
	.exec = cmd_wait_exec,
};
