/*
 * daemon/surge-rules.c - what marks a node draining and which pods a drain
 * replaces before they go (daemon/surge.h): shared by the daemon (the
 * agent's drain, the reconciler's plan) and llmd-admin drain/uncordon, so
 * both sides agree on the taint and the rule. Pure functions on objects.
 */
#include "config.h"

#include <string.h>

#include "daemon/reconcile.h"
#include "daemon/surge.h"
#include "lib/json.h"

static int
str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

int
surge_node_draining(const cJSON *node)
{
	const cJSON *spec = json_member(node, "spec"), *t;

	if (!cJSON_IsTrue(json_member(spec, "unschedulable")))
		return 0;
	cJSON_ArrayForEach(t, json_member(spec, "taints"))
		if (str_eq(json_member_str(t, "key"), SURGE_DRAIN_TAINT))
			return 1;
	return 0;
}

void
surge_spec_set_draining(cJSON *spec, int on)
{
	cJSON *taints = cJSON_GetObjectItemCaseSensitive(spec, "taints"), *t, *next;
	int have = 0;

	cJSON_DeleteItemFromObjectCaseSensitive(spec, "unschedulable");
	if (on)
		cJSON_AddBoolToObject(spec, "unschedulable", 1);
	for (t = cJSON_IsArray(taints) ? taints->child : NULL; t; t = next) {
		next = t->next;
		if (!str_eq(json_member_str(t, "key"), SURGE_DRAIN_TAINT))
			continue;
		if (on)
			have = 1;
		else
			cJSON_Delete(cJSON_DetachItemViaPointer(taints, t));
	}
	if (on && !have) {
		if (!cJSON_IsArray(taints)) {
			cJSON_DeleteItemFromObjectCaseSensitive(spec, "taints");
			taints = cJSON_AddArrayToObject(spec, "taints");
		}
		t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "key", SURGE_DRAIN_TAINT);
		cJSON_AddStringToObject(t, "effect", "NoSchedule");
		cJSON_AddItemToArray(taints, t);
	}
	if (cJSON_IsArray(taints) && taints->child == NULL)
		cJSON_DeleteItemFromObjectCaseSensitive(spec, "taints");
}

int
surge_pod_grouped(const cJSON *pod)
{
	return json_member(json_member(json_member(pod, "metadata"), "labels"),
	    SURGE_LWS_GROUP_KEY) != NULL;
}

int
surge_pod_replaced(const cJSON *pod)
{
	const cJSON *r;

	if (surge_pod_grouped(pod))
		return 0;
	cJSON_ArrayForEach(r, json_member(json_member(pod, "metadata"), "ownerReferences"))
		if (str_eq(json_member_str(r, "kind"), LLMISVC_KIND))
			return 1;
	return 0;
}
