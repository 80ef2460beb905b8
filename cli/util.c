/*
 * cli/util.c - llmd-admin helpers: resource names to API paths, kind
 * references as kubectl prints them, namespaces, "kind/name" parsing.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/admin.h"
#include "lib/json.h"

const struct api_resource *
admin_resource(const char *name)
{
	const struct api_resource *r = api_resource_by_name(name);

	if (r == NULL)
		fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n",
		    name);
	return r;
}

void
admin_path(struct buf *out, const struct api_resource *r, const char *ns,
    const char *name)
{
	if (*r->group)
		buf_addf(out, "/apis/%s/%s", r->group, r->version);
	else
		buf_addf(out, "/api/%s", r->version);
	if ((r->flags & RES_NAMESPACED) && ns)
		buf_addf(out, "/namespaces/%s", ns);
	buf_addf(out, "/%s", r->plural);
	if (name)
		buf_addf(out, "/%s", name);
}

void
admin_kind_ref(struct buf *out, const struct api_resource *r)
{
	const char *k;

	for (k = r->kind; *k; k++)
		buf_addch(out, (char)tolower((unsigned char)*k));
	if (*r->group)
		buf_addf(out, ".%s", r->group);
}

const char *
admin_ns(const struct admin *a, const char *flag_ns)
{
	if (flag_ns)
		return flag_ns;
	return a->ns ? a->ns : "default";
}

int
admin_split_ref(const char *ref, char *kind, size_t kl, char *name, size_t nl)
{
	const char *slash = strchr(ref, '/');

	if (slash == NULL || slash == ref || !slash[1])
		return -1;
	snprintf(kind, kl, "%.*s", (int)(slash - ref), ref);
	snprintf(name, nl, "%s", slash + 1);
	return 0;
}

cJSON *
admin_resp_json(const struct admin_resp *r)
{
	cJSON *v = NULL;

	if (json_parse(r->body.buf, r->body.len, &v, NULL) < 0)
		return NULL;
	return v;
}

int
admin_get_obj(struct admin *a, const struct api_resource *r, const char *ns,
    const char *name, cJSON **out, int quiet_404)
{
	struct buf path = BUF_INIT;
	struct admin_resp resp;
	int rc;

	*out = NULL;
	admin_path(&path, r, ns, name);
	rc = admin_call(a, "GET", path.buf, NULL, NULL, 0, &resp);
	buf_release(&path);
	if (rc < 0)
		return -EIO;
	if (resp.code == 404 && quiet_404) {
		admin_resp_release(&resp);
		return -ENOENT;
	}
	if (resp.code != 200) {
		admin_server_error(&resp);
		admin_resp_release(&resp);
		return resp.code == 404 ? -ENOENT : -EIO;
	}
	*out = admin_resp_json(&resp);
	admin_resp_release(&resp);
	return *out ? 0 : -EIO;
}

int
admin_patch(struct admin *a, const struct api_resource *r, const char *ns,
    const char *name, const char *patch, const char *verb)
{
	struct buf path = BUF_INIT, ref = BUF_INIT;
	struct admin_resp resp;
	int rc = 1;

	admin_path(&path, r, ns, name);
	admin_kind_ref(&ref, r);
	if (admin_call(a, "PATCH", path.buf, "application/merge-patch+json", patch,
	    strlen(patch), &resp) == 0) {
		if (resp.code == 200) {
			printf("%s/%s %s\n", ref.buf, name, verb);
			rc = 0;
		} else {
			rc = admin_server_error(&resp);
		}
		admin_resp_release(&resp);
	}
	buf_release(&path);
	buf_release(&ref);
	return rc;
}

int
admin_operand(int argc, char **argv, int *i, const struct api_resource **r,
    char *name, size_t nl)
{
	char kind[128];

	if (*i >= argc) {
		fprintf(stderr, "error: expected KIND/NAME or KIND NAME\n");
		return 2;
	}
	if (admin_split_ref(argv[*i], kind, sizeof(kind), name, nl) == 0) {
		(*i)++;
	} else {
		if (*i + 1 >= argc) {
			fprintf(stderr, "error: expected KIND/NAME or KIND NAME\n");
			return 2;
		}
		snprintf(kind, sizeof(kind), "%s", argv[*i]);
		snprintf(name, nl, "%s", argv[*i + 1]);
		*i += 2;
	}
	return (*r = admin_resource(kind)) ? 0 : 1;
}
