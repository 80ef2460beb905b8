/*
 * tests/unit/test-daemon-placement.c - placement: spreading preference,
 * bin-packing, all-or-nothing groups, cordoned/NotReady/taints/selectors,
 * bound capacity and Kubernetes-style failure messages.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/reconcile.h"
#include "lib/buf.h"
#include "tests/unit/daemon-fixtures.h"

static cJSON *
node(const char *name, int gpus, const char *extra)
{
	char y[1024];

	snprintf(y, sizeof(y), "{kind: Node, metadata: {name: %s, labels: {zone: a}}, status: {allocatable: "
	    "{nvidia.com/gpu: '%d'}, conditions: [{type: Ready, status: 'True'}]}%s%s}", name, gpus,
	    extra ? ", " : "", extra ? extra : "");
	return fx_yaml(y);
}

static cJSON *
pod(const char *name, const char *owner, int gpus, const char *extra)
{
	char y[1024];

	snprintf(y, sizeof(y), "{kind: Pod, metadata: {name: %s, namespace: ns, labels: {llm-d.ai/role: both}, "
	    "ownerReferences: [{kind: Deployment, name: %s}]}, spec: {containers: [{name: main, resources: "
	    "{limits: {nvidia.com/gpu: '%d'}}}]%s%s}}", name, owner, gpus, extra ? ", " : "",
	    extra ? extra : "");
	return fx_yaml(y);
}

static cJSON *
group_pod(const char *name, const char *key, int idx, int gpus)
{
	char y[1024];

	snprintf(y, sizeof(y), "{kind: Pod, metadata: {name: %s, namespace: ns, labels: {"
	    "leaderworkerset.sigs.k8s.io/group-key: %s, leaderworkerset.sigs.k8s.io/worker-index: '%d'}, "
	    "ownerReferences: [{kind: LeaderWorkerSet, name: lws}]}, spec: {containers: [{name: main, "
	    "resources: {limits: {nvidia.com/gpu: '%d'}}}]}}", name, key, idx, gpus);
	return fx_yaml(y);
}

static const char *
node_of(const cJSON *pods, const char *name)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, pods) {
		if (strcmp(fx_str(p, "metadata.name"), name) == 0)
			return fx_str(p, "spec.nodeName");
	}
	return NULL;
}

static const char *
failure(const struct placement_result *r, const char *pod_name)
{
	const cJSON *f = cJSON_GetObjectItem(r->failures, pod_name);

	return cJSON_IsString(f) ? f->valuestring : NULL;
}

Test(daemon_placement, spreads_replicas_of_a_role)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray();
	struct placement_result r;

	cJSON_AddItemToArray(nodes, node("n1", 8, NULL));
	cJSON_AddItemToArray(nodes, node("n2", 8, NULL));
	cJSON_AddItemToArray(pods, pod("a-1", "a", 1, NULL));
	cJSON_AddItemToArray(pods, pod("a-2", "a", 1, NULL));
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_eq(r.scheduled, 2);
	cr_expect_str_neq(node_of(pods, "a-1"), node_of(pods, "a-2"));
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
}

Test(daemon_placement, shares_a_node_when_only_one_fits)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray();
	struct placement_result r;

	cJSON_AddItemToArray(nodes, node("big", 8, NULL));
	cJSON_AddItemToArray(nodes, node("small", 1, NULL));
	cJSON_AddItemToArray(pods, pod("a-1", "a", 4, NULL));
	cJSON_AddItemToArray(pods, pod("a-2", "a", 4, NULL));
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_eq(r.scheduled, 2);
	cr_expect_str_eq(node_of(pods, "a-1"), "big");
	cr_expect_str_eq(node_of(pods, "a-2"), "big");
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
}

Test(daemon_placement, bin_packs_tightest_fit)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray();
	struct placement_result r;

	cJSON_AddItemToArray(nodes, node("n8", 8, NULL));
	cJSON_AddItemToArray(nodes, node("n4", 4, NULL));
	cJSON_AddItemToArray(pods, pod("x", "x", 4, NULL));
	cJSON_AddItemToArray(pods, pod("y", "y", 8, NULL));
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_str_eq(node_of(pods, "x"), "n4");
	cr_expect_str_eq(node_of(pods, "y"), "n8");
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
}

Test(daemon_placement, kubernetes_style_message)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray();
	struct placement_result r;

	cJSON_AddItemToArray(nodes, node("n1", 2, NULL));
	cJSON_AddItemToArray(nodes, node("n2", 4, NULL));
	cJSON_AddItemToArray(nodes, node("n3", 8, "spec: {unschedulable: true}"));
	cJSON_AddItemToArray(pods, pod("big", "b", 8, NULL));
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_eq(r.unschedulable, 1);
	cr_expect_null(node_of(pods, "big"));
	cr_expect_str_eq(failure(&r, "big"),
	    "0/3 nodes are available: 2 Insufficient nvidia.com/gpu, 1 node(s) were cordoned.");
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
}

Test(daemon_placement, not_ready_taints_and_selectors)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray();
	struct placement_result r;

	cJSON_AddItemToArray(nodes, fx_yaml("{metadata: {name: down}, status: {capacity: {nvidia.com/gpu: 8}, "
	    "conditions: [{type: Ready, status: 'False'}]}}"));
	cJSON_AddItemToArray(nodes, node("tainted", 8, "spec: {taints: [{key: gpu, value: h100, "
	    "effect: NoSchedule}]}"));
	cJSON_AddItemToArray(nodes, node("soft", 8, "spec: {taints: [{key: x, effect: PreferNoSchedule}]}"));
	cJSON_AddItemToArray(pods, pod("plain", "p", 8, NULL));
	cJSON_AddItemToArray(pods, pod("tolerant", "t", 8, "tolerations: [{key: gpu, operator: Equal, "
	    "value: h100, effect: NoSchedule}]"));
	cJSON_AddItemToArray(pods, pod("picky", "k", 1, "nodeSelector: {zone: b}"));
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_str_eq(node_of(pods, "plain"), "soft");
	cr_expect_str_eq(node_of(pods, "tolerant"), "tainted");
	cr_expect_null(node_of(pods, "picky"));
	cr_expect_str_eq(failure(&r, "picky"), "0/3 nodes are available: 1 node(s) didn't match Pod's "
	    "node selector, 1 node(s) had untolerated taint {gpu: h100}, 1 node(s) were not ready.");
	placement_result_release(&r);
	/* the taint is named when nothing tolerates it */
	cJSON_Delete(pods);
	pods = cJSON_CreateArray();
	cJSON_AddItemToArray(pods, pod("late", "l", 8, NULL));
	cJSON_DeleteItemFromArray(nodes, 2);
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_str_eq(failure(&r, "late"), "0/2 nodes are available: 1 node(s) had untolerated taint "
	    "{gpu: h100}, 1 node(s) were not ready.");
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
}

Test(daemon_placement, bound_pods_use_capacity)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray(), *bound = cJSON_CreateArray();
	cJSON *b = pod("running", "r", 6, "nodeName: n1");
	struct placement_result r;

	cJSON_AddItemToArray(bound, b);
	cJSON_AddItemToArray(nodes, node("n1", 8, NULL));
	cJSON_AddItemToArray(nodes, node("n2", 8, NULL));
	cJSON_AddItemToArray(pods, pod("already", "q", 7, "nodeName: n2"));
	cJSON_AddItemToArray(pods, pod("new", "q", 2, NULL));
	cJSON_AddItemToArray(pods, pod("new2", "z", 2, NULL));
	cr_assert_eq(placement_schedule(pods, nodes, bound, &r), 0);
	cr_expect_eq(r.scheduled, 1);
	cr_expect_str_eq(node_of(pods, "new"), "n1");
	cr_expect_str_eq(failure(&r, "new2"), "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.");
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
	cJSON_Delete(bound);
}

Test(daemon_placement, group_all_or_nothing)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray();
	struct placement_result r;

	cJSON_AddItemToArray(nodes, node("n1", 8, NULL));
	cJSON_AddItemToArray(nodes, node("n2", 8, "spec: {unschedulable: true}"));
	cJSON_AddItemToArray(pods, group_pod("lws-0", "g0", 0, 8));
	cJSON_AddItemToArray(pods, group_pod("lws-0-1", "g0", 1, 8));
	cJSON_AddItemToArray(pods, pod("solo", "s", 8, NULL));
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_null(node_of(pods, "lws-0"), "no partial group");
	cr_expect_null(node_of(pods, "lws-0-1"));
	cr_expect_str_eq(node_of(pods, "solo"), "n1", "the group's tentative GPUs were given back");
	cr_expect_str_eq(failure(&r, "lws-0-1"),
	    "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) were cordoned.");
	cr_expect(strstr(failure(&r, "lws-0"), "placed all or nothing: pod lws-0-1") != NULL);
	cr_expect_eq(r.unschedulable, 2);
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
}

Test(daemon_placement, group_spans_nodes)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray();
	struct placement_result r;

	for (int i = 0; i < 4; i++) {
		char n[8];

		snprintf(n, sizeof(n), "n%d", i);
		cJSON_AddItemToArray(nodes, node(n, 8, NULL));
	}
	for (int g = 0; g < 2; g++) {
		for (int i = 0; i < 2; i++) {
			char n[16], k[8];

			snprintf(n, sizeof(n), i ? "lws-%d-%d" : "lws-%d", g, i);
			snprintf(k, sizeof(k), "g%d", g);
			cJSON_AddItemToArray(pods, group_pod(n, k, i, 8));
		}
	}
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_eq(r.scheduled, 4);
	cr_expect_str_neq(node_of(pods, "lws-0"), node_of(pods, "lws-0-1"));
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
}

/* 1,000 services of one 1-GPU pod each onto 100 nodes of 8 GPUs: 800 fit. */
Test(daemon_placement, thousand_services)
{
	cJSON *nodes = cJSON_CreateArray(), *pods = cJSON_CreateArray();
	struct placement_result r;
	int per_node[100] = { 0 };
	const cJSON *p;

	for (int i = 0; i < 100; i++) {
		char n[16];

		snprintf(n, sizeof(n), "node-%d", i);
		cJSON_AddItemToArray(nodes, node(n, 8, NULL));
	}
	for (int i = 0; i < 1000; i++) {
		char n[32], o[32];

		snprintf(n, sizeof(n), "svc-%d-pod", i);
		snprintf(o, sizeof(o), "svc-%d-kserve", i);
		cJSON_AddItemToArray(pods, pod(n, o, 1, NULL));
	}
	cr_assert_eq(placement_schedule(pods, nodes, NULL, &r), 0);
	cr_expect_eq(r.scheduled, 800);
	cr_expect_eq(r.unschedulable, 200);
	cJSON_ArrayForEach(p, pods) {
		const char *nn = fx_str(p, "spec.nodeName");

		if (nn)
			per_node[atoi(nn + 5)]++;
	}
	for (int i = 0; i < 100; i++)
		cr_expect_eq(per_node[i], 8, "node-%d has %d", i, per_node[i]);
	cr_expect_str_eq(failure(&r, "svc-999-pod"),
	    "0/100 nodes are available: 100 Insufficient nvidia.com/gpu.");
	placement_result_release(&r);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
}
