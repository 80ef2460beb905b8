/*
 * cli/cmd-describe.c - "describe KIND NAME | KIND/NAME [-n NS]": metadata,
 * conditions, spec and status of one object, and its events.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "cli/admin.h"
#include "lib/cli.h"

static void
section(const char *title, const cJSON *v)
{
	if (v == NULL)
		return;
	printf("%s:\n", title);
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) {
		printf("  ");
		print_yaml(stdout, v);
		return;
	}
	/* Indent the YAML by two spaces. */
	{
		char *txt = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&txt, &len);
		char *line, *save = NULL;

		print_yaml(m, v);
		fclose(m);
		for (line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			printf("  %s\n", line);
		free(txt);
	}
}

static void
map_line(const char *title, const cJSON *m)
{
	const cJSON *c;
	int first = 1;

	printf("%-13s", title);
	cJSON_ArrayForEach(c, m) {
		printf("%s%s=%s\n", first ? "" : "             ", c->string,
		    cJSON_GetStringValue(c) ? cJSON_GetStringValue(c) : "");
		first = 0;
	}
	if (first)
		printf("<none>\n");
}

static int
cmd_describe_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const struct api_resource *r, *evr;
	const char *ns = NULL;
	char name[256];
	cJSON *o, *md, *evs = NULL;
	int c, i, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		if (c == 'n')
			ns = optarg;
		else
			return EXIT_USAGE;
	}
	i = optind;
	if ((rc = admin_operand(argc, argv, &i, &r, name, sizeof(name))) != 0)
		return rc;
	ns = admin_ns(a, ns);
	if (admin_get_obj(a, r, ns, name, &o, 0) < 0)
		return 1;
	md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	printf("%-13s%s\n", "Name:", name);
	if (r->flags & RES_NAMESPACED)
		printf("%-13s%s\n", "Namespace:", ns);
	map_line("Labels:", cJSON_GetObjectItemCaseSensitive(md, "labels"));
	map_line("Annotations:", cJSON_GetObjectItemCaseSensitive(md, "annotations"));
	printf("%-13s%s\n", "API Version:", cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(o, "apiVersion")));
	printf("%-13s%s\n", "Kind:", r->kind);
	section("Metadata", md);
	section("Spec", cJSON_GetObjectItemCaseSensitive(o, "spec"));
	section("Data", cJSON_GetObjectItemCaseSensitive(o, "data"));
	section("Status", cJSON_GetObjectItemCaseSensitive(o, "status"));
	/* Events about this object. */
	evr = api_resource_by_name("events");
	if (evr && (r->flags & RES_NAMESPACED)) {
		struct buf path = BUF_INIT;
		struct admin_resp resp;
		char *q = evhttp_encode_uri(name);

		admin_path(&path, evr, ns, NULL);
		buf_addf(&path, "?fieldSelector=involvedObject.name%%3D%s", q);
		free(q);
		if (admin_call(a, "GET", path.buf, NULL, NULL, 0, &resp) == 0) {
			if (resp.code == 200)
				evs = admin_resp_json(&resp);
			admin_resp_release(&resp);
		}
		buf_release(&path);
	}
	{
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(evs, "items"), *e;

		printf("Events:");
		if (cJSON_GetArraySize(items) == 0)
			printf("       <none>\n");
		else
			printf("\n  %-8s %-20s %s\n", "Type", "Reason", "Message");
		cJSON_ArrayForEach(e, items)
			printf("  %-8s %-20s %s\n",
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type")) ?
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type")) : "Normal",
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "reason")) ?
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "reason")) : "",
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message")) ?
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message")) : "");
	}
	cJSON_Delete(evs);
	cJSON_Delete(o);
	return 0;
}

const struct cmd_entry cmd_describe_entry = {
	.name = "describe",
	.alias = NULL,
	.usage = "KIND NAME | KIND/NAME [-n NS]",
	.exec = cmd_describe_exec,
};
