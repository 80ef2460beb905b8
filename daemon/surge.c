/*
 * daemon/surge.c - surge-then-stop for the pods of draining nodes: which
 * pods a service keeps, adds and lets go while a node drains (the rules
 * are in daemon/surge.h). Pure: reads the objects it is given, writes only
 * the desired array.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/naming.h"
#include "daemon/surge.h"
#include "lib/json.h"
#include "lib/util.h"

#define MAX_CHAIN 16

static int
str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static const char *
name_of(const cJSON *o)
{
	return json_member_str(json_member(o, "metadata"), "name");
}

static int
on_draining_node(const cJSON *pod, const cJSON *nodes)
{
	const char *nn = json_member_str(json_member(pod, "spec"), "nodeName");
	const cJSON *n;

	if (nn == NULL)
		return 0;
	cJSON_ArrayForEach(n, nodes)
		if (str_eq(name_of(n), nn))
			return surge_node_draining(n);
	return 0;
}

static int
pod_ready(const cJSON *pod)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, json_member(json_member(pod, "status"), "conditions"))
		if (str_eq(json_member_str(c, "type"), "Ready"))
			return str_eq(json_member_str(c, "status"), "True");
	return 0;
}

/* Does the observed pod hold slot (its name, or a replacement of it)? */
static int
holds_slot(const cJSON *pod, const char *slot)
{
	const cJSON *md = json_member(pod, "metadata");

	if (!str_eq(json_member_str(pod, "kind"), "Pod"))
		return 0;
	return str_eq(json_member_str(md, "name"), slot) ||
	    str_eq(json_member_str(json_member(md, "annotations"), SURGE_REPLACES_ANNOTATION), slot);
}

/* The desired pod d under name (a replacement of d's slot when it differs). */
static cJSON *
pod_as(const cJSON *d, const char *name)
{
	cJSON *c = cJSON_Duplicate(d, 1);
	cJSON *md = cJSON_GetObjectItemCaseSensitive(c, "metadata"), *ann;
	const char *slot = name_of(d);

	if (str_eq(slot, name))
		return c;
	ann = cJSON_GetObjectItemCaseSensitive(md, "annotations");
	if (!cJSON_IsObject(ann)) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "annotations");
		ann = cJSON_AddObjectToObject(md, "annotations");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(ann, SURGE_REPLACES_ANNOTATION);
	cJSON_AddStringToObject(ann, SURGE_REPLACES_ANNOTATION, slot);
	cJSON_DeleteItemFromObjectCaseSensitive(md, "name");
	cJSON_AddStringToObject(md, "name", name);
	return c;
}

/* "<slot>-s<5 hex>", from the slot and the pod it replaces. */
static cJSON *
replacement(const cJSON *d, const cJSON *replaced)
{
	char key[600], h[33], name[400];
	cJSON *r;

	snprintf(key, sizeof(key), "%s/%s", name_of(d), name_of(replaced));
	naming_md5_hex(key, strlen(key), h);
	snprintf(name, sizeof(name), "%s-s%.5s", name_of(d), h);
	r = pod_as(d, name);
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "spec"),
	    "nodeName");
	return r;
}

/* Appends to out what stands for desired pod d; returns the pods beyond one. */
static int
plan_slot(cJSON *out, const cJSON *d, const cJSON *observed, const cJSON *nodes)
{
	const cJSON *draining[MAX_CHAIN], *healthy[MAX_CHAIN], *o, *holder = NULL;
	const char *slot = name_of(d);
	int nd = 0, nh = 0, i, extra = 0;

	cJSON_ArrayForEach(o, observed) {
		if (!holds_slot(o, slot))
			continue;
		if (on_draining_node(o, nodes)) {
			if (nd < MAX_CHAIN)
				draining[nd++] = o;
		} else if (nh < MAX_CHAIN) {
			healthy[nh++] = o;
		}
	}
	/* The holder off the draining nodes: a Ready one, the slot's own name first. */
	for (i = 0; i < nh && holder == NULL; i++)
		if (pod_ready(healthy[i]) && str_eq(name_of(healthy[i]), slot))
			holder = healthy[i];
	for (i = 0; i < nh && holder == NULL; i++)
		if (pod_ready(healthy[i]))
			holder = healthy[i];
	for (i = 0; i < nh && holder == NULL; i++)
		if (str_eq(name_of(healthy[i]), slot))
			holder = healthy[i];
	if (holder == NULL && nh > 0)
		holder = healthy[0];
	if (nd == 0) {   /* nothing draining: the holder keeps the slot, strays go */
		cJSON_AddItemToArray(out, holder ? pod_as(d, name_of(holder)) :
		    cJSON_Duplicate(d, 1));
		return 0;
	}
	if (holder != NULL)
		cJSON_AddItemToArray(out, pod_as(d, name_of(holder)));
	else
		cJSON_AddItemToArray(out, replacement(d, draining[0]));
	/* The draining ones serve until a holder elsewhere is Ready. */
	if (holder == NULL || !pod_ready(holder))
		for (i = 0; i < nd; i++, extra++)
			cJSON_AddItemToArray(out, pod_as(d, name_of(draining[i])));
	return extra;
}

int
surge_plan(cJSON *desired, const cJSON *observed, const cJSON *nodes)
{
	cJSON *out = cJSON_CreateArray(), *d;
	int extra = 0;

	while ((d = cJSON_DetachItemFromArray(desired, 0)) != NULL) {
		/* (desired pods get their owner reference when written) */
		if (!str_eq(json_member_str(d, "kind"), "Pod") || name_of(d) == NULL ||
		    surge_pod_grouped(d)) {
			cJSON_AddItemToArray(out, d);
			continue;
		}
		extra += plan_slot(out, d, observed, nodes);
		cJSON_Delete(d);
	}
	while ((d = cJSON_DetachItemFromArray(out, 0)) != NULL)
		cJSON_AddItemToArray(desired, d);
	cJSON_Delete(out);
	return extra;
}
