/*
 * cli/cmd-get.c - "get KIND[,KIND...] [NAME] [-n NS | -A] [-o wide|yaml|json]
 * [-l SELECTOR] [-w]" with kubectl-like tables per kind.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/json.h"
#include "lib/util.h"

struct get_opts {
	const char *ns;
	int all_ns;
	const char *output;  /* NULL, "wide", "yaml", "json", "name" */
	const char *selector;
	int watch;
};

static const char *
s_at(const cJSON *o, const char *path)
{
	char buf[256], *save = NULL, *tok;
	const cJSON *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
		v = cJSON_GetObjectItemCaseSensitive(v, tok);
	return cJSON_GetStringValue(v);
}

static const cJSON *
j_at(const cJSON *o, const char *path)
{
	char buf[256], *save = NULL, *tok;
	const cJSON *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
		v = cJSON_GetObjectItemCaseSensitive(v, tok);
	return v;
}

static const cJSON *
condition(const cJSON *o, const char *type)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, j_at(o, "status.conditions")) {
		const char *t = s_at(c, "type");

		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

static void
num_str(char *out, size_t len, const cJSON *v, const char *dflt)
{
	if (cJSON_IsNumber(v))
		snprintf(out, len, "%d", v->valueint);
	else if (cJSON_IsString(v))
		snprintf(out, len, "%s", v->valuestring);
	else
		snprintf(out, len, "%s", dflt);
}

/* Column headers and one row, per resource. */
static int
columns(const struct api_resource *r, int wide, const char **hdr)
{
	const char *p = r->plural;
	int n = 0;

	hdr[n++] = "NAME";
	if (strcmp(p, "llminferenceservices") == 0) {
		hdr[n++] = "URL"; hdr[n++] = "READY"; hdr[n++] = "REASON";
		hdr[n++] = "AGE";
		if (wide)
			hdr[n++] = "URLS";
	} else if (strcmp(p, "nodes") == 0) {
		hdr[n++] = "STATUS"; hdr[n++] = "GPUS"; hdr[n++] = "AGE";
		if (wide)
			hdr[n++] = "ADDRESS";
	} else if (strcmp(p, "pods") == 0) {
		hdr[n++] = "READY"; hdr[n++] = "STATUS"; hdr[n++] = "NODE"; hdr[n++] = "AGE";
	} else if (strcmp(p, "deployments") == 0 || strcmp(p, "leaderworkersets") == 0) {
		hdr[n++] = "READY"; hdr[n++] = "AGE";
	} else if (strcmp(p, "events") == 0) {
		hdr[0] = "LAST SEEN"; hdr[n++] = "TYPE"; hdr[n++] = "REASON";
		hdr[n++] = "OBJECT"; hdr[n++] = "MESSAGE";
	} else if (strcmp(p, "secrets") == 0) {
		hdr[n++] = "TYPE"; hdr[n++] = "DATA"; hdr[n++] = "AGE";
	} else if (strcmp(p, "gateways") == 0) {
		hdr[n++] = "CLASS"; hdr[n++] = "AGE";
	} else if (strcmp(p, "nodepools") == 0) {
		hdr[n++] = "PROVIDER"; hdr[n++] = "JOB"; hdr[n++] = "NODES"; hdr[n++] = "GPUS/NODE";
		hdr[n++] = "AGE";
	} else if (strcmp(p, "httproutes") == 0) {
		hdr[n++] = "HOSTNAMES"; hdr[n++] = "AGE";
	} else {
		hdr[n++] = "AGE";
	}
	return n;
}

static void
row(const struct api_resource *r, const cJSON *o, int wide, char cells[][256])
{
	const char *p = r->plural;
	const char *name = s_at(o, "metadata.name");
	int n = 0;
	char age[32];

	print_age(age, sizeof(age), s_at(o, "metadata.creationTimestamp"));
	snprintf(cells[n++], 256, "%s", name ? name : "");
	if (strcmp(p, "llminferenceservices") == 0) {
		const cJSON *rc = condition(o, "Ready"), *a;
		struct buf urls = BUF_INIT;

		snprintf(cells[n++], 256, "%s", s_at(o, "status.url") ? s_at(o, "status.url") : "");
		snprintf(cells[n++], 256, "%s", rc && s_at(rc, "status") ? s_at(rc, "status") : "");
		snprintf(cells[n++], 256, "%s", rc && s_at(rc, "reason") ? s_at(rc, "reason") : "");
		snprintf(cells[n++], 256, "%s", age);
		if (wide) {
			cJSON_ArrayForEach(a, j_at(o, "status.addresses"))
				if (s_at(a, "url"))
					buf_addf(&urls, "%s%s", urls.len ? "," : "", s_at(a, "url"));
			snprintf(cells[n++], 256, "%s", urls.buf);
			buf_release(&urls);
		}
	} else if (strcmp(p, "nodes") == 0) {
		const cJSON *rc = condition(o, "Ready"), *a;
		int unsched = cJSON_IsTrue(j_at(o, "spec.unschedulable"));
		const char *ready = rc && s_at(rc, "status") && strcmp(s_at(rc, "status"),
		    "True") == 0 ? "Ready" : rc ? "NotReady" : "Unknown";
		char gpus[32];

		snprintf(cells[n++], 256, "%s%s", ready, unsched ? ",SchedulingDisabled" : "");
		{
			const cJSON *alloc = j_at(o, "status.allocatable");
			const cJSON *g = cJSON_GetObjectItemCaseSensitive(alloc, "nvidia.com/gpu");

			if (g == NULL)
				g = cJSON_GetObjectItemCaseSensitive(j_at(o, "status.capacity"),
				    "nvidia.com/gpu");
			num_str(gpus, sizeof(gpus), g, "0");
		}
		snprintf(cells[n++], 256, "%s", gpus);
		snprintf(cells[n++], 256, "%s", age);
		if (wide) {
			const char *addr = "";

			cJSON_ArrayForEach(a, j_at(o, "status.addresses"))
				if (s_at(a, "address")) {
					addr = s_at(a, "address");
					break;
				}
			snprintf(cells[n++], 256, "%s", addr);
		}
	} else if (strcmp(p, "pods") == 0) {
		const cJSON *rc = condition(o, "Ready");
		int ready = rc && s_at(rc, "status") && strcmp(s_at(rc, "status"), "True") == 0;
		const char *phase = s_at(o, "status.phase") ? s_at(o, "status.phase") : "Pending";
		const char *why = rc ? s_at(rc, "reason") : NULL;

		snprintf(cells[n++], 256, "%d/1", ready);
		/* Like kubectl: why a pending pod waits (CreateContainerConfigError...). */
		if (strcmp(phase, "Pending") == 0 && why && strcmp(why, "ContainersNotReady") != 0)
			phase = why;
		snprintf(cells[n++], 256, "%s", phase);
		snprintf(cells[n++], 256, "%s", s_at(o, "spec.nodeName") ?
		    s_at(o, "spec.nodeName") : "<none>");
		snprintf(cells[n++], 256, "%s", age);
	} else if (strcmp(p, "deployments") == 0 || strcmp(p, "leaderworkersets") == 0) {
		char a[32], b[32];

		num_str(a, sizeof(a), j_at(o, "status.readyReplicas"), "0");
		num_str(b, sizeof(b), j_at(o, "spec.replicas"), "1");
		snprintf(cells[n++], 256, "%s/%s", a, b);
		snprintf(cells[n++], 256, "%s", age);
	} else if (strcmp(p, "events") == 0) {
		const char *ts = s_at(o, "lastTimestamp") ? s_at(o, "lastTimestamp") :
		    s_at(o, "metadata.creationTimestamp");

		print_age(cells[0], 256, ts);
		snprintf(cells[n++], 256, "%s", s_at(o, "type") ? s_at(o, "type") : "Normal");
		snprintf(cells[n++], 256, "%s", s_at(o, "reason") ? s_at(o, "reason") : "");
		snprintf(cells[n++], 256, "%s/%s", s_at(o, "involvedObject.kind") ?
		    s_at(o, "involvedObject.kind") : "", s_at(o, "involvedObject.name") ?
		    s_at(o, "involvedObject.name") : "");
		snprintf(cells[n++], 256, "%s", s_at(o, "message") ? s_at(o, "message") : "");
	} else if (strcmp(p, "secrets") == 0) {
		snprintf(cells[n++], 256, "%s", s_at(o, "type") ? s_at(o, "type") : "Opaque");
		snprintf(cells[n++], 256, "%d", cJSON_GetArraySize(j_at(o, "data")));
		snprintf(cells[n++], 256, "%s", age);
	} else if (strcmp(p, "gateways") == 0) {
		snprintf(cells[n++], 256, "%s", s_at(o, "spec.gatewayClassName") ?
		    s_at(o, "spec.gatewayClassName") : "");
		snprintf(cells[n++], 256, "%s", age);
	} else if (strcmp(p, "nodepools") == 0) {
		snprintf(cells[n++], 256, "%s", s_at(o, "spec.provider") ? s_at(o, "spec.provider") : "");
		snprintf(cells[n++], 256, "%s", s_at(o, "spec.jobId") ? s_at(o, "spec.jobId") : "");
		snprintf(cells[n++], 256, "%s", s_at(o, "spec.nodes") ? s_at(o, "spec.nodes") : "");
		snprintf(cells[n++], 256, "%s", s_at(o, "spec.gpusPerNode") ? s_at(o, "spec.gpusPerNode") : "");
		snprintf(cells[n++], 256, "%s", age);
	} else if (strcmp(p, "httproutes") == 0) {
		struct buf h = BUF_INIT;
		const cJSON *a;

		cJSON_ArrayForEach(a, j_at(o, "spec.hostnames"))
			if (cJSON_IsString(a))
				buf_addf(&h, "%s%s", h.len ? "," : "", a->valuestring);
		snprintf(cells[n++], 256, "%s", h.buf);
		buf_release(&h);
		snprintf(cells[n++], 256, "%s", age);
	} else {
		snprintf(cells[n++], 256, "%s", age);
	}
}

static void
add_row(struct table *t, const struct api_resource *r, const cJSON *o,
    const struct get_opts *g)
{
	char cells[8][256];
	const char *rowp[9];
	int n, i, k = 0;
	const char *hdr[8];

	n = columns(r, g->output && strcmp(g->output, "wide") == 0, hdr);
	row(r, o, g->output && strcmp(g->output, "wide") == 0, cells);
	if (g->all_ns)
		rowp[k++] = s_at(o, "metadata.namespace") ? s_at(o, "metadata.namespace") : "";
	for (i = 0; i < n; i++)
		rowp[k++] = cells[i];
	table_add(t, rowp);
}

static void
start_table(struct table *t, const struct api_resource *r, const struct get_opts *g)
{
	const char *hdr[9], *cols[8];
	int n, i, k = 0;

	n = columns(r, g->output && strcmp(g->output, "wide") == 0, cols);
	if (g->all_ns)
		hdr[k++] = "NAMESPACE";
	for (i = 0; i < n; i++)
		hdr[k++] = cols[i];
	table_init(t, k);
	table_add(t, hdr);
}

static void
emit(const cJSON *v, const char *output)
{
	if (strcmp(output, "json") == 0) {
		struct buf b = BUF_INIT;

		json_print_pretty(v, &b);
		fputs(b.buf, stdout);
		buf_release(&b);
	} else {
		print_yaml(stdout, v);
	}
}

struct watch_ctx {
	const struct api_resource *r;
	const struct get_opts *g;
};

static int
on_watch_line(const char *line, size_t len, void *arg)
{
	struct watch_ctx *w = arg;
	cJSON *ev = NULL;
	const cJSON *obj;

	if (json_parse(line, len, &ev, NULL) < 0)
		return 0;
	obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	if (w->g->output && (strcmp(w->g->output, "json") == 0 ||
	    strcmp(w->g->output, "yaml") == 0)) {
		if (strcmp(w->g->output, "yaml") == 0)
			printf("---\n");
		emit(ev, w->g->output);
	} else {
		struct table t;
		int i;

		start_table(&t, w->r, w->g);
		add_row(&t, w->r, obj, w->g);
		for (i = 0; i < t.ncols; i++)
			printf("%s%s", t.cells[t.ncols + i], i + 1 < t.ncols ? "   " : "\n");
		table_release(&t);
	}
	fflush(stdout);
	cJSON_Delete(ev);
	return 0;
}

static int
get_kind(struct admin *a, const char *kind, const char *name, const struct get_opts *g,
    int *printed)
{
	const struct api_resource *r = admin_resource(kind);
	struct buf path = BUF_INIT;
	struct admin_resp resp;
	cJSON *v, *items, *it;
	const char *ns;
	struct table t;
	int rc = 0;

	if (r == NULL)
		return 1;
	ns = g->all_ns && !name ? NULL : admin_ns(a, g->ns);
	admin_path(&path, r, ns, name);
	if (g->selector) {
		char *q = evhttp_encode_uri(g->selector);

		buf_addf(&path, "?labelSelector=%s", q);
		free(q);
	}
	if (g->watch) {
		struct watch_ctx w = { r, g };

		if (!g->output || strcmp(g->output, "wide") == 0) {
			start_table(&t, r, g);
			table_print(stdout, &t);
			table_release(&t);
			fflush(stdout);
		}
		buf_addf(&path, "%swatch=true", g->selector ? "&" : "?");
		rc = admin_stream(a, path.buf, on_watch_line, &w);
		buf_release(&path);
		return rc;
	}
	if (admin_call(a, "GET", path.buf, NULL, NULL, 0, &resp) < 0) {
		buf_release(&path);
		return 1;
	}
	buf_release(&path);
	if (resp.code != 200) {
		rc = admin_server_error(&resp);
		admin_resp_release(&resp);
		return rc;
	}
	v = admin_resp_json(&resp);
	admin_resp_release(&resp);
	if (v == NULL) {
		fprintf(stderr, "error: the server sent a response that is not JSON\n");
		return 1;
	}
	if (g->output && (strcmp(g->output, "json") == 0 || strcmp(g->output, "yaml") == 0)) {
		emit(v, g->output);
		cJSON_Delete(v);
		return 0;
	}
	items = name ? NULL : cJSON_GetObjectItemCaseSensitive(v, "items");
	if (g->output && strcmp(g->output, "name") == 0) {
		struct buf ref = BUF_INIT;

		admin_kind_ref(&ref, r);
		if (name)
			printf("%s/%s\n", ref.buf, s_at(v, "metadata.name"));
		cJSON_ArrayForEach(it, items)
			printf("%s/%s\n", ref.buf, s_at(it, "metadata.name"));
		buf_release(&ref);
		cJSON_Delete(v);
		return 0;
	}
	if (!name && cJSON_GetArraySize(items) == 0) {
		if (g->all_ns || !(r->flags & RES_NAMESPACED))
			fprintf(stderr, "No resources found\n");
		else
			fprintf(stderr, "No resources found in %s namespace.\n", ns);
		cJSON_Delete(v);
		return 0;
	}
	if ((*printed)++)
		printf("\n");
	start_table(&t, r, g);
	if (name)
		add_row(&t, r, v, g);
	cJSON_ArrayForEach(it, items)
		add_row(&t, r, it, g);
	table_print(stdout, &t);
	table_release(&t);
	cJSON_Delete(v);
	return 0;
}

static int
cmd_get_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "all-namespaces", no_argument, NULL, 'A' },
		{ "output", required_argument, NULL, 'o' },
		{ "selector", required_argument, NULL, 'l' },
		{ "watch", no_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct get_opts g = { 0 };
	char *kinds, *save = NULL, *k;
	const char *name = NULL;
	int c, rc = 0, printed = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+n:Ao:l:w", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': g.ns = optarg; break;
		case 'A': g.all_ns = 1; break;
		case 'o': g.output = optarg; break;
		case 'l': g.selector = optarg; break;
		case 'w': g.watch = 1; break;
		default: return EXIT_USAGE;
		}
	}
	/* Options may also follow the operands. */
	if (optind >= argc) {
		fprintf(stderr, "error: you must specify the type of resource to get\n");
		return EXIT_USAGE;
	}
	kinds = xstrdup(argv[optind++]);
	if (optind < argc && argv[optind][0] != '-')
		name = argv[optind++];
	while ((c = getopt_long(argc, argv, "n:Ao:l:w", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': g.ns = optarg; break;
		case 'A': g.all_ns = 1; break;
		case 'o': g.output = optarg; break;
		case 'l': g.selector = optarg; break;
		case 'w': g.watch = 1; break;
		default: free(kinds); return EXIT_USAGE;
		}
	}
	if (g.output && strcmp(g.output, "wide") && strcmp(g.output, "yaml") &&
	    strcmp(g.output, "json") && strcmp(g.output, "name")) {
		fprintf(stderr, "error: unable to match a printer suitable for the output "
		    "format \"%s\", allowed formats are: json,name,wide,yaml\n", g.output);
		free(kinds);
		return EXIT_USAGE;
	}
	if (strchr(kinds, '/') && name == NULL) {
		char *slash = strchr(kinds, '/');

		*slash = '\0';
		name = slash + 1;
	}
	for (k = strtok_r(kinds, ",", &save); k; k = strtok_r(NULL, ",", &save))
		if (get_kind(a, k, name, &g, &printed) != 0)
			rc = 1;
	free(kinds);
	return rc;
}

const struct cmd_entry cmd_get_entry = {
	.name = "get",
	.alias = NULL,
	.usage = "KIND[,KIND...] [NAME] [-n NS | -A] [-o wide|yaml|json|name] [-l SELECTOR] [-w]",
	.exec = cmd_get_exec,
};
