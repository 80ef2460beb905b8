/*
 * tests/unit/test-daemon-conditions.c - status conditions from observed
 * children: workloads, router parts, Ready, lastTransitionTime, URL.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "daemon/conditions.h"
#include "daemon/reconcile.h"
#include "tests/unit/daemon-fixtures.h"

static const char *
cstat(const cJSON *st, const char *type)
{
	return fx_str(cond_find(cJSON_GetObjectItem(st, "conditions"), type), "status");
}

static const char *
cfield(const cJSON *st, const char *type, const char *f)
{
	return fx_str(cond_find(cJSON_GetObjectItem(st, "conditions"), type), f);
}

/* Marks every desired pod Ready (or not) and adds router objects as observed. */
static cJSON *
observe(const cJSON *desired, int ready_pods, int skip_last_pod)
{
	cJSON *obs = cJSON_Duplicate(desired, 1), *o, *last = NULL;

	cJSON_ArrayForEach(o, obs) {
		if (strcmp(fx_str(o, "kind"), "Pod") == 0) {
			cJSON_AddItemToObject(o, "status", fx_yaml(ready_pods ?
			    "{phase: Running, conditions: [{type: Ready, status: 'True'}]}" :
			    "{phase: Pending, conditions: [{type: PodScheduled, status: 'False', message: "
			    "'0/1 nodes are available: 1 Insufficient nvidia.com/gpu.'}]}"));
			last = o;
		}
	}
	if (skip_last_pod && last)
		cJSON_Delete(cJSON_DetachItemViaPointer(obs, last));
	return obs;
}

Test(daemon_conditions, ready_lifecycle)
{
	struct reconcile_env *env = fx_env();
	cJSON *svc = fx_yaml("kind: LLMInferenceService\nmetadata: {name: s, namespace: ns, generation: 3}\n"
	    "spec: {model: {uri: 'hf://o/r'}, replicas: 2, router: {gateway: {}, route: {}, scheduler: {}}}");
	cJSON *merged = NULL, *desired = NULL, *obs, *st = NULL, *st2 = NULL, *st3 = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(llmisvc_combine(svc, env, &merged, &e), 0, "%s", e.msg);
	cr_assert_eq(llmisvc_derive(merged, env, &desired, &e), 0, "%s", e.msg);

	/* nothing observed yet */
	cr_assert_eq(llmisvc_status(svc, merged, NULL, NULL, env, "2026-01-01T00:00:00Z", &st), 0);
	cr_expect_str_eq(cstat(st, COND_PRESETS_COMBINED), "True");
	cr_expect_str_eq(cstat(st, COND_MAIN_WORKLOAD), "False");
	cr_expect_str_eq(cfield(st, COND_MAIN_WORKLOAD, "reason"), "Progressing");
	cr_expect_str_eq(cstat(st, COND_WORKLOADS), "False");
	cr_expect_str_eq(cstat(st, COND_READY), "False");
	cr_expect_str_eq(cstat(st, COND_HTTPROUTES), "False");
	cr_expect_str_eq(cstat(st, COND_SCHEDULER_WORKLOAD), "False");
	cr_expect_eq(fx_at(st, "observedGeneration")->valueint, 3);
	cr_expect_str_eq(fx_str(st, "url"), "http://gw.example:8080/ns/s");
	cr_expect_str_eq(fx_str(st, "addresses[0].url"), "http://gw.example:8080/ns/s");

	/* everything running */
	obs = observe(desired, 1, 0);
	cJSON_AddItemToObject(svc, "status", st);
	cr_assert_eq(llmisvc_status(svc, merged, NULL, obs, env, "2026-01-01T00:01:00Z", &st2), 0);
	cr_expect_str_eq(cstat(st2, COND_MAIN_WORKLOAD), "True");
	cr_expect_str_eq(cstat(st2, COND_SCHEDULER_WORKLOAD), "True");
	cr_expect_str_eq(cstat(st2, COND_HTTPROUTES), "True");
	cr_expect_str_eq(cstat(st2, COND_INFERENCE_POOL), "True");
	cr_expect_str_eq(cstat(st2, COND_ROUTER), "True");
	cr_expect_str_eq(cstat(st2, COND_READY), "True");
	cr_expect_str_eq(cfield(st2, COND_READY, "lastTransitionTime"), "2026-01-01T00:01:00Z");
	/* PresetsCombined did not change: its time stays */
	cr_expect_str_eq(cfield(st2, COND_PRESETS_COMBINED, "lastTransitionTime"), "2026-01-01T00:00:00Z");
	cr_expect_str_eq(cfield(st2, COND_PRESETS_COMBINED, "severity"), "Info");
	cJSON_Delete(obs);

	/* one pod gone: not ready, message counts pods */
	obs = observe(desired, 1, 1);
	cJSON_ReplaceItemInObject(svc, "status", st2);
	cr_assert_eq(llmisvc_status(svc, merged, NULL, obs, env, "2026-01-01T00:02:00Z", &st3), 0);
	cr_expect_str_eq(cstat(st3, COND_READY), "False");
	cr_expect(strstr(cfield(st3, COND_READY, "message"), "1/2 pods ready") != NULL ||
	    strstr(cfield(st3, COND_READY, "message"), "0/1 pods ready") != NULL,
	    "%s", cfield(st3, COND_READY, "message"));
	cr_expect_str_eq(cfield(st3, COND_READY, "lastTransitionTime"), "2026-01-01T00:02:00Z");
	cJSON_Delete(obs);
	cJSON_Delete(st3);
	cJSON_Delete(desired);
	cJSON_Delete(merged);
	cJSON_Delete(svc);
}

Test(daemon_conditions, unschedulable_surfaces)
{
	struct reconcile_env *env = fx_env();
	cJSON *svc = fx_yaml("kind: LLMInferenceService\nmetadata: {name: s, namespace: ns}\n"
	    "spec: {model: {uri: 'hf://o/r'}}");
	cJSON *merged = NULL, *desired = NULL, *obs, *st = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(llmisvc_combine(svc, env, &merged, &e), 0);
	cr_assert_eq(llmisvc_derive(merged, env, &desired, &e), 0);
	obs = observe(desired, 0, 0);
	cr_assert_eq(llmisvc_status(svc, merged, NULL, obs, env, "t", &st), 0);
	cr_expect_str_eq(cfield(st, COND_MAIN_WORKLOAD, "reason"), "Unschedulable");
	cr_expect(strstr(cfield(st, COND_READY, "message"), "Insufficient nvidia.com/gpu") != NULL);
	cr_expect_str_eq(cstat(st, COND_ROUTER), "True", "no router configured");
	cr_expect_null(fx_at(st, "url"));
	cJSON_Delete(obs);
	cJSON_Delete(st);
	cJSON_Delete(desired);
	cJSON_Delete(merged);
	cJSON_Delete(svc);
}

Test(daemon_conditions, combine_failure_and_refs)
{
	struct reconcile_env *env = fx_env();
	cJSON *svc = fx_yaml("kind: LLMInferenceService\nmetadata: {name: s, namespace: ns}\n"
	    "spec: {model: {uri: 'hf://o/r'}, router: {gateway: {refs: [{name: gw}]}, route: "
	    "{http: {refs: [{name: r1}]}}}}");
	cJSON *merged = NULL, *st = NULL, *obs;
	struct llmd_err e = LLMD_ERR_INIT;

	err_set(&e, -ENOENT, "spec.baseRefs[0]", "failed to get LLMInferenceServiceConfig \"x\"");
	cr_assert_eq(llmisvc_status(svc, NULL, &e, NULL, env, "t", &st), 0);
	cr_expect_str_eq(cstat(st, COND_PRESETS_COMBINED), "False");
	cr_expect_str_eq(cfield(st, COND_PRESETS_COMBINED, "reason"), "CombineBaseError");
	cr_expect_str_eq(cstat(st, COND_READY), "False");
	cJSON_Delete(st);
	st = NULL;

	err_clear(&e);
	cr_assert_eq(llmisvc_combine(svc, env, &merged, &e), 0, "%s", e.msg);
	obs = fx_yaml("[{kind: HTTPRoute, metadata: {name: other}}, {kind: HTTPRoute, metadata: {name: r1}, "
	    "spec: {rules: [{matches: [{path: {type: PathPrefix, value: /custom}}]}]}}, {kind: Gateway, "
	    "metadata: {name: missing-one}}]");
	cr_assert_eq(llmisvc_status(svc, merged, NULL, obs, env, "t", &st), 0);
	cr_expect_str_eq(cstat(st, COND_GATEWAYS), "False");
	cr_expect_str_eq(cfield(st, COND_GATEWAYS, "message"), "Gateway ns/gw does not exist");
	cr_expect_str_eq(cstat(st, COND_HTTPROUTES), "True");
	cr_expect_str_eq(cstat(st, COND_ROUTER), "False");
	cr_expect_str_eq(cfield(st, COND_ROUTER, "reason"), "RefsInvalid");
	cr_expect_str_eq(fx_str(st, "url"), "http://gw.example:8080/custom");
	cJSON_Delete(obs);
	cJSON_Delete(st);
	st = NULL;
	obs = fx_yaml("[{kind: Gateway, metadata: {name: gw, namespace: ns}, status: {conditions: "
	    "[{type: Programmed, status: 'True'}]}}]");
	cr_assert_eq(llmisvc_status(svc, merged, NULL, obs, env, "t", &st), 0);
	cr_expect_str_eq(cstat(st, COND_GATEWAYS), "True");
	cr_expect_str_eq(cfield(st, COND_HTTPROUTES, "reason"), "RefsInvalid");
	cr_expect_str_eq(cfield(st, COND_HTTPROUTES, "message"), "HTTPRoute ns/r1 does not exist");
	cr_expect_str_eq(cfield(st, COND_ROUTER, "message"), "HTTPRoute ns/r1 does not exist");
	cr_expect_null(fx_at(st, "url"));
	cJSON_Delete(obs);
	cJSON_Delete(st);
	cJSON_Delete(merged);
	cJSON_Delete(svc);
}

Test(daemon_conditions, lws_worker_condition)
{
	struct reconcile_env *env = fx_env();
	cJSON *svc = fx_yaml("kind: LLMInferenceService\nmetadata: {name: mn, namespace: ns}\n"
	    "spec: {model: {uri: 'hf://o/r'}, parallelism: {pipeline: 2}, template: {}, worker: {}}");
	cJSON *merged = NULL, *desired = NULL, *obs, *st = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(llmisvc_combine(svc, env, &merged, &e), 0, "%s", e.msg);
	cr_assert_eq(llmisvc_derive(merged, env, &desired, &e), 0);
	obs = observe(desired, 1, 1);   /* the worker pod is missing */
	cr_assert_eq(llmisvc_status(svc, merged, NULL, obs, env, "t", &st), 0);
	cr_expect_str_eq(cstat(st, COND_WORKER_WORKLOAD), "False");
	cr_expect_str_eq(cfield(st, COND_WORKER_WORKLOAD, "message"),
	    "LeaderWorkerSet mn-kserve-mn: 0/1 worker pods ready");
	cr_expect_str_eq(cstat(st, COND_WORKLOADS), "False");
	cJSON_Delete(obs);
	cJSON_Delete(st);
	cJSON_Delete(desired);
	cJSON_Delete(merged);
	cJSON_Delete(svc);
}
