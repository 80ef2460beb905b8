/*
 * tests/unit/test-daemon-surge.c - surge-then-stop (daemon/surge.c): a pod
 * on a draining node gets a replacement, is kept until the replacement is
 * Ready, then dropped; the replacement keeps the slot; LWS pods, cordoned
 * (not draining) nodes and template changes behave as without a drain.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/surge.h"
#include "lib/json.h"
#include "tests/unit/daemon-fixtures.h"

#define SLOT "svc-kserve-abc-x1"

static cJSON *
nodes(void)
{
	return fx_yaml("[{kind: Node, metadata: {name: a}, spec: {unschedulable: true, taints: "
	    "[{key: llmd.ai/draining, effect: NoSchedule}]}},"
	    " {kind: Node, metadata: {name: b}, spec: {}},"
	    " {kind: Node, metadata: {name: c}, spec: {unschedulable: true}}]");
}

static cJSON *
desired_pod(const char *labels)
{
	char y[512];

	snprintf(y, sizeof(y), "[{kind: Pod, metadata: {name: " SLOT ", labels: {app: x%s}}, "
	    "spec: {containers: [{name: main}]}}, {kind: Service, metadata: {name: svc}}]",
	    labels ? labels : "");
	return fx_yaml(y);
}

/* An observed pod: name, node (NULL: unbound), ready, the slot it replaces. */
static cJSON *
stored(const char *name, const char *node, int ready, const char *replaces)
{
	char y[1024];

	snprintf(y, sizeof(y), "{kind: Pod, metadata: {name: %s%s%s%s, labels: {app: x}}, spec: "
	    "{containers: [{name: main}]%s%s}, status: {conditions: [{type: Ready, status: '%s'}]}}",
	    name, replaces ? ", annotations: {llmd.ai/replaces: " : "", replaces ? replaces : "",
	    replaces ? "}" : "", node ? ", nodeName: " : "", node ? node : "",
	    ready ? "True" : "False");
	return fx_yaml(y);
}

static int
count_pods(const cJSON *arr)
{
	const cJSON *o;
	int n = 0;

	cJSON_ArrayForEach(o, arr)
		n += strcmp(json_member_str(o, "kind"), "Pod") == 0;
	return n;
}

static const cJSON *
pod_named(const cJSON *arr, const char *name)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, arr)
		if (strcmp(json_member_str(json_member(o, "metadata"), "name"), name) == 0)
			return o;
	return NULL;
}

/* The one desired pod whose name is not SLOT (the replacement). */
static const cJSON *
other_pod(const cJSON *arr)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, arr)
		if (strcmp(json_member_str(o, "kind"), "Pod") == 0 &&
		    strcmp(json_member_str(json_member(o, "metadata"), "name"), SLOT) != 0)
			return o;
	return NULL;
}

Test(surge, node_draining_needs_cordon_and_taint)
{
	cJSON *n = nodes();

	cr_assert(surge_node_draining(cJSON_GetArrayItem(n, 0)));
	cr_assert_not(surge_node_draining(cJSON_GetArrayItem(n, 1)));
	cr_assert_not(surge_node_draining(cJSON_GetArrayItem(n, 2)), "cordoned only");
	cJSON_Delete(n);
}

Test(surge, no_drain_leaves_desired_alone)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes(), *want;

	cJSON_AddItemToArray(obs, stored(SLOT, "b", 1, NULL));
	want = cJSON_Duplicate(d, 1);
	cr_assert_eq(surge_plan(d, obs, n), 0);
	cr_assert(cJSON_Compare(d, want, 1));
	cJSON_Delete(want);
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, cordoned_node_is_not_drained)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes();

	cJSON_AddItemToArray(obs, stored(SLOT, "c", 1, NULL));
	cr_assert_eq(surge_plan(d, obs, n), 0);
	cr_assert_eq(count_pods(d), 1);
	cr_assert_not_null(pod_named(d, SLOT));
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, draining_pod_gets_an_unbound_replacement_and_stays)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes();
	const cJSON *r, *md;
	const char *rn;

	cJSON_AddItemToArray(obs, stored(SLOT, "a", 1, NULL));
	cr_assert_eq(surge_plan(d, obs, n), 1);
	cr_assert_eq(count_pods(d), 2);
	cr_assert_not_null(pod_named(d, SLOT), "the draining pod keeps serving");
	r = other_pod(d);
	cr_assert_not_null(r);
	md = json_member(r, "metadata");
	rn = json_member_str(md, "name");
	cr_assert_eq(strncmp(rn, SLOT "-s", strlen(SLOT) + 2), 0, "name %s", rn);
	cr_assert_eq(strlen(rn), strlen(SLOT) + 7);
	cr_assert_str_eq(json_member_str(json_member(md, "annotations"),
	    SURGE_REPLACES_ANNOTATION), SLOT);
	cr_assert_str_eq(json_member_str(json_member(md, "labels"), "app"), "x",
	    "same labels: the router sees it");
	cr_assert_null(json_member(json_member(r, "spec"), "nodeName"));
	cr_assert_not_null(pod_named(d, "svc"), "other children untouched");
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, replacement_name_is_stable)
{
	cJSON *d1 = desired_pod(NULL), *d2 = desired_pod(NULL), *obs = cJSON_CreateArray();
	cJSON *n = nodes();

	cJSON_AddItemToArray(obs, stored(SLOT, "a", 1, NULL));
	surge_plan(d1, obs, n);
	surge_plan(d2, obs, n);
	cr_assert_str_eq(json_member_str(json_member(other_pod(d1), "metadata"), "name"),
	    json_member_str(json_member(other_pod(d2), "metadata"), "name"));
	cJSON_Delete(d1);
	cJSON_Delete(d2);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, draining_pod_kept_while_replacement_not_ready)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes();

	cJSON_AddItemToArray(obs, stored(SLOT, "a", 1, NULL));
	cJSON_AddItemToArray(obs, stored(SLOT "-s12345", "b", 0, SLOT));
	cr_assert_eq(surge_plan(d, obs, n), 1);
	cr_assert_eq(count_pods(d), 2);
	cr_assert_not_null(pod_named(d, SLOT));
	cr_assert_not_null(pod_named(d, SLOT "-s12345"), "no second replacement");
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, draining_pod_dropped_once_replacement_ready)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes();
	const cJSON *r;

	cJSON_AddItemToArray(obs, stored(SLOT, "a", 1, NULL));
	cJSON_AddItemToArray(obs, stored(SLOT "-s12345", "b", 1, SLOT));
	cr_assert_eq(surge_plan(d, obs, n), 0);
	cr_assert_eq(count_pods(d), 1);
	cr_assert_null(pod_named(d, SLOT), "the reconciler deletes what is not desired");
	r = pod_named(d, SLOT "-s12345");
	cr_assert_not_null(r);
	cr_assert_str_eq(json_member_str(json_member(json_member(r, "metadata"), "annotations"),
	    SURGE_REPLACES_ANNOTATION), SLOT);
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, replacement_keeps_the_slot_after_the_drain)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes();

	cJSON_AddItemToArray(obs, stored(SLOT "-s12345", "b", 1, SLOT));
	cr_assert_eq(surge_plan(d, obs, n), 0);
	cr_assert_eq(count_pods(d), 1);
	cr_assert_not_null(pod_named(d, SLOT "-s12345"), "not recreated under the slot name");
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, replacement_on_a_node_that_drains_too_gets_its_own)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes();
	const cJSON *r;

	cJSON_AddItemToArray(obs, stored(SLOT "-s12345", "a", 1, SLOT));
	cr_assert_eq(surge_plan(d, obs, n), 1);
	cr_assert_eq(count_pods(d), 2);
	cr_assert_not_null(pod_named(d, SLOT "-s12345"));
	r = other_pod(d);
	cr_assert_not_null(r);
	cr_assert_str_neq(json_member_str(json_member(r, "metadata"), "name"), SLOT "-s12345");
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, cancelled_drain_keeps_one_ready_pod_slot_name_first)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes();

	cJSON_AddItemToArray(obs, stored(SLOT, "b", 1, NULL));
	cJSON_AddItemToArray(obs, stored(SLOT "-s12345", "b", 1, SLOT));
	cr_assert_eq(surge_plan(d, obs, n), 0);
	cr_assert_eq(count_pods(d), 1);
	cr_assert_not_null(pod_named(d, SLOT));
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, lws_pods_are_not_surged)
{
	cJSON *d = desired_pod(", leaderworkerset.sigs.k8s.io/group-key: k");
	cJSON *obs = cJSON_CreateArray(), *n = nodes();

	cJSON_AddItemToArray(obs, stored(SLOT, "a", 1, NULL));
	cr_assert_eq(surge_plan(d, obs, n), 0);
	cr_assert_eq(count_pods(d), 1);
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, new_template_slot_ignores_old_chain)
{
	cJSON *d = desired_pod(NULL), *obs = cJSON_CreateArray(), *n = nodes();

	cJSON_AddItemToArray(obs, stored("svc-kserve-old-x1", "a", 1, NULL));
	cr_assert_eq(surge_plan(d, obs, n), 0);
	cr_assert_eq(count_pods(d), 1);
	cr_assert_not_null(pod_named(d, SLOT));
	cJSON_Delete(d);
	cJSON_Delete(obs);
	cJSON_Delete(n);
}

Test(surge, set_draining_adds_and_clears_cordon_and_taint)
{
	cJSON *n = fx_yaml("{kind: Node, metadata: {name: a}, spec: {taints: "
	    "[{key: gpu, effect: NoSchedule}]}}");
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(n, "spec");

	surge_spec_set_draining(spec, 1);
	surge_spec_set_draining(spec, 1);   /* idempotent: one drain taint */
	cr_assert(surge_node_draining(n));
	cr_assert_eq(cJSON_GetArraySize(json_member(spec, "taints")), 2);
	surge_spec_set_draining(spec, 0);
	cr_assert_not(surge_node_draining(n));
	cr_assert_null(json_member(spec, "unschedulable"));
	cr_assert_eq(cJSON_GetArraySize(json_member(spec, "taints")), 1, "other taints stay");
	cr_assert_str_eq(json_member_str(cJSON_GetArrayItem(json_member(spec, "taints"), 0),
	    "key"), "gpu");
	cJSON_Delete(n);
}

Test(surge, which_pods_a_drain_replaces)
{
	cJSON *svc = fx_yaml("{kind: Pod, metadata: {name: p, ownerReferences: "
	    "[{kind: LLMInferenceService, name: s}]}}");
	cJSON *grp = fx_yaml("{kind: Pod, metadata: {name: p, labels: "
	    "{leaderworkerset.sigs.k8s.io/group-key: k}, ownerReferences: "
	    "[{kind: LLMInferenceService, name: s}]}}");
	cJSON *bare = fx_yaml("{kind: Pod, metadata: {name: p}}");

	cr_assert(surge_pod_replaced(svc));
	cr_assert_not(surge_pod_replaced(grp), "a group moves whole");
	cr_assert_not(surge_pod_replaced(bare), "nothing would replace it");
	cJSON_Delete(svc);
	cJSON_Delete(grp);
	cJSON_Delete(bare);
}
