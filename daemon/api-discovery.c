/*
 * daemon/api-discovery.c - Kubernetes discovery documents (/api, /apis,
 * /api/v1, /apis/GROUP/VERSION) built from the resource table, so generic
 * Kubernetes clients can find what llmd serves.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "daemon/api-internal.h"

static void
add_verbs(cJSON *res, int flags, int sub)
{
	cJSON *v = cJSON_AddArrayToObject(res, "verbs");

	cJSON_AddItemToArray(v, cJSON_CreateString("get"));
	if (sub) {
		cJSON_AddItemToArray(v, cJSON_CreateString("patch"));
		cJSON_AddItemToArray(v, cJSON_CreateString("update"));
		return;
	}
	cJSON_AddItemToArray(v, cJSON_CreateString("list"));
	cJSON_AddItemToArray(v, cJSON_CreateString("watch"));
	if (flags & (RES_WRITABLE | RES_DELETABLE))
		cJSON_AddItemToArray(v, cJSON_CreateString("delete"));
	if (flags & RES_WRITABLE) {
		cJSON_AddItemToArray(v, cJSON_CreateString("create"));
		cJSON_AddItemToArray(v, cJSON_CreateString("patch"));
		cJSON_AddItemToArray(v, cJSON_CreateString("update"));
	}
}

static cJSON *
resource_entry(const struct api_resource *r, int sub)
{
	cJSON *e = cJSON_CreateObject();
	char name[128], singular[64];
	size_t i;

	snprintf(name, sizeof(name), "%s%s", r->plural, sub ? "/status" : "");
	for (i = 0; r->kind[i] && i < sizeof(singular) - 1; i++)
		singular[i] = (char)(r->kind[i] >= 'A' && r->kind[i] <= 'Z' ?
		    r->kind[i] + 32 : r->kind[i]);
	singular[i] = '\0';
	cJSON_AddStringToObject(e, "name", name);
	cJSON_AddStringToObject(e, "singularName", sub ? "" : singular);
	cJSON_AddBoolToObject(e, "namespaced", (r->flags & RES_NAMESPACED) != 0);
	cJSON_AddStringToObject(e, "kind", r->kind);
	add_verbs(e, r->flags, sub);
	if (!sub && strncmp(r->plural, "llminferenceservice", 19) == 0) {
		cJSON *sn = cJSON_AddArrayToObject(e, "shortNames");

		cJSON_AddItemToArray(sn, cJSON_CreateString(r->plural[19] == 's' ?
		    "llmisvc" : "llmisvcconfig"));
	}
	return e;
}

void
api_discovery_resources(struct api_call *c, const char *group, const char *version)
{
	cJSON *doc = cJSON_CreateObject(), *list;
	char gv[128];
	size_t i;
	int found = 0;

	snprintf(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version);
	cJSON_AddStringToObject(doc, "kind", "APIResourceList");
	cJSON_AddStringToObject(doc, "apiVersion", "v1");
	cJSON_AddStringToObject(doc, "groupVersion", gv);
	list = cJSON_AddArrayToObject(doc, "resources");
	if (!*group) {
		cJSON *ns = cJSON_CreateObject(), *v;

		cJSON_AddStringToObject(ns, "name", "namespaces");
		cJSON_AddStringToObject(ns, "singularName", "namespace");
		cJSON_AddBoolToObject(ns, "namespaced", 0);
		cJSON_AddStringToObject(ns, "kind", "Namespace");
		v = cJSON_AddArrayToObject(ns, "verbs");
		cJSON_AddItemToArray(v, cJSON_CreateString("get"));
		cJSON_AddItemToArray(v, cJSON_CreateString("list"));
		cJSON_AddItemToArray(list, ns);
	}
	for (i = 0; api_resources[i]; i++) {
		const struct api_resource *r = api_resources[i];

		if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
			continue;
		found = 1;
		cJSON_AddItemToArray(list, resource_entry(r, 0));
		if (r->flags & RES_STATUS)
			cJSON_AddItemToArray(list, resource_entry(r, 1));
	}
	if (found)
		api_reply_json(c->req, 200, doc);
	else
		api_reply_status(c->req, 404, "NotFound", "the server could not find the "
		    "requested resource", NULL, NULL, NULL);
	cJSON_Delete(doc);
}

void
api_discovery_versions(struct api_call *c)
{
	cJSON *doc = cJSON_CreateObject(), *v;

	cJSON_AddStringToObject(doc, "kind", "APIVersions");
	v = cJSON_AddArrayToObject(doc, "versions");
	cJSON_AddItemToArray(v, cJSON_CreateString("v1"));
	api_reply_json(c->req, 200, doc);
	cJSON_Delete(doc);
}

void
api_discovery_groups(struct api_call *c)
{
	cJSON *doc = cJSON_CreateObject(), *groups;
	size_t i, j;

	cJSON_AddStringToObject(doc, "kind", "APIGroupList");
	cJSON_AddStringToObject(doc, "apiVersion", "v1");
	groups = cJSON_AddArrayToObject(doc, "groups");
	for (i = 0; api_resources[i]; i++) {
		const struct api_resource *r = api_resources[i];
		cJSON *g, *vs, *gv;
		char s[128];

		if (!*r->group)
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(api_resources[j]->group, r->group) == 0)
				break;
		if (j < i)
			continue;  /* one version per group in llmd */
		snprintf(s, sizeof(s), "%s/%s", r->group, r->version);
		g = cJSON_CreateObject();
		cJSON_AddStringToObject(g, "name", r->group);
		vs = cJSON_AddArrayToObject(g, "versions");
		gv = cJSON_CreateObject();
		cJSON_AddStringToObject(gv, "groupVersion", s);
		cJSON_AddStringToObject(gv, "version", r->version);
		cJSON_AddItemToArray(vs, gv);
		cJSON_AddItemToObject(g, "preferredVersion", cJSON_Duplicate(gv, 1));
		cJSON_AddItemToArray(groups, g);
	}
	api_reply_json(c->req, 200, doc);
	cJSON_Delete(doc);
}
