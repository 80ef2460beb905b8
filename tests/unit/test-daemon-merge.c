/*
 * tests/unit/test-daemon-merge.c - strategic merge (list keys, explicit
 * zero/false/""/null overrides, directives) and preset selection by mode.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/merge.h"
#include "tests/unit/daemon-fixtures.h"

static const struct {
	const char *name, *base, *patch, *want;
} merge_cases[] = {
	{ "scalar override", "{a: 1, b: x}", "{a: 2}", "{a: 2, b: x}" },
	{ "explicit zero", "{replicas: 3}", "{replicas: 0}", "{replicas: 0}" },
	{ "explicit false", "{parallelism: {expert: true, tensor: 2}}", "{parallelism: {expert: false}}",
	  "{parallelism: {expert: false, tensor: 2}}" },
	{ "explicit empty string", "{s: abc}", "{s: ''}", "{s: ''}" },
	{ "null deletes", "{a: 1, b: 2}", "{a: null}", "{b: 2}" },
	{ "maps merge per key", "{r: {requests: {cpu: '4', memory: 16Gi}}}",
	  "{r: {requests: {nvidia.com/gpu: '1'}}}",
	  "{r: {requests: {cpu: '4', memory: 16Gi, nvidia.com/gpu: '1'}}}" },
	{ "containers by name", "{containers: [{name: main, image: a, args: [x, y]}, {name: side, image: s}]}",
	  "{containers: [{name: main, image: b}, {name: new, image: n}]}",
	  "{containers: [{name: main, image: b, args: [x, y]}, {name: side, image: s}, {name: new, image: n}]}" },
	{ "args replaced whole", "{containers: [{name: main, args: [a, b, c]}]}",
	  "{containers: [{name: main, args: [z]}]}", "{containers: [{name: main, args: [z]}]}" },
	{ "command replaced whole", "{containers: [{name: main, command: [a, b]}]}",
	  "{containers: [{name: main, command: [c]}]}", "{containers: [{name: main, command: [c]}]}" },
	{ "env by name", "{env: [{name: A, value: '1'}, {name: B, value: '2'}]}",
	  "{env: [{name: B, value: '3'}, {name: C, value: '4'}]}",
	  "{env: [{name: A, value: '1'}, {name: B, value: '3'}, {name: C, value: '4'}]}" },
	{ "volumeMounts by mountPath", "{volumeMounts: [{name: a, mountPath: /x}, {name: b, mountPath: /y}]}",
	  "{volumeMounts: [{name: c, mountPath: /x}]}",
	  "{volumeMounts: [{name: c, mountPath: /x}, {name: b, mountPath: /y}]}" },
	{ "ports by containerPort", "{ports: [{containerPort: 8000, name: http}]}",
	  "{ports: [{containerPort: 8000, protocol: TCP}, {containerPort: 9000}]}",
	  "{ports: [{containerPort: 8000, name: http, protocol: TCP}, {containerPort: 9000}]}" },
	{ "volumes by name", "{volumes: [{name: v, emptyDir: {}}]}", "{volumes: [{name: v, hostPath: {path: /p}}]}",
	  "{volumes: [{name: v, emptyDir: {}, hostPath: {path: /p}}]}" },
	{ "tolerations replaced", "{tolerations: [{key: a}]}", "{tolerations: [{key: b}]}",
	  "{tolerations: [{key: b}]}" },
	{ "route rules replaced", "{rules: [{matches: [{path: {value: /a}}], backendRefs: [{name: p}]}]}",
	  "{rules: [{matches: [{path: {value: /b}}]}]}", "{rules: [{matches: [{path: {value: /b}}]}]}" },
	{ "patch delete item", "{env: [{name: A, value: '1'}, {name: B, value: '2'}]}",
	  "{env: [{name: A, $patch: delete}]}", "{env: [{name: B, value: '2'}]}" },
	{ "patch replace map", "{nodeSelector: {a: '1', b: '2'}}", "{nodeSelector: {$patch: replace, c: '3'}}",
	  "{nodeSelector: {c: '3'}}" },
	{ "null container list keeps nothing", "{template: {containers: [{name: main}]}}",
	  "{template: {containers: null}}", "{template: {}}" },
	{ "new nested", "{}", "{router: {route: {}}}", "{router: {route: {}}}" },
};

Test(daemon_merge, strategic_table)
{
	for (size_t i = 0; i < sizeof(merge_cases) / sizeof(merge_cases[0]); i++) {
		cJSON *b = fx_yaml(merge_cases[i].base), *p = fx_yaml(merge_cases[i].patch);
		cJSON *w = fx_yaml(merge_cases[i].want);
		char *got;

		merge_strategic(b, p);
		got = cJSON_PrintUnformatted(b);
		cr_expect(cJSON_Compare(b, w, 1), "%s: got %s", merge_cases[i].name, got);
		free(got);
		cJSON_Delete(b);
		cJSON_Delete(p);
		cJSON_Delete(w);
	}
}

static const struct {
	const char *name, *spec;
	const char *want[4];
} mode_cases[] = {
	{ "single node", "{model: {uri: 'hf://o/r'}}", { PRESET_TEMPLATE } },
	{ "single node + route", "{router: {gateway: {}, route: {}}}",
	  { PRESET_ROUTER_ROUTE, PRESET_TEMPLATE } },
	{ "byo route refs", "{router: {gateway: {refs: [{name: g}]}, route: {http: {refs: [{name: r}]}}}}",
	  { PRESET_TEMPLATE } },
	{ "scheduler", "{router: {route: {}, scheduler: {}}}",
	  { PRESET_SCHEDULER, PRESET_ROUTER_ROUTE, PRESET_TEMPLATE } },
	{ "scheduler pool ref", "{router: {scheduler: {pool: {ref: {name: p}}}}}", { PRESET_TEMPLATE } },
	{ "multi-node dp", "{parallelism: {data: 4, dataLocal: 2}, worker: {}}", { PRESET_WORKER_DP } },
	{ "multi-node pp", "{parallelism: {pipeline: 2}, worker: {}}", { PRESET_WORKER_PP } },
	{ "p/d", "{prefill: {replicas: 1}}", { PRESET_PREFILL_TEMPLATE, PRESET_DECODE_TEMPLATE } },
	{ "p/d prefill dp decode pp", "{prefill: {parallelism: {data: 2, dataLocal: 1}, worker: {}}, "
	  "parallelism: {pipeline: 2}, worker: {}}", { PRESET_PREFILL_WORKER_DP, PRESET_DECODE_WORKER_PP } },
	{ "p/d prefill pp decode dp", "{prefill: {parallelism: {pipeline: 2}, worker: {}}, "
	  "parallelism: {data: 2, dataLocal: 1}, worker: {}}", { PRESET_PREFILL_WORKER_PP, PRESET_DECODE_WORKER_DP } },
};

Test(daemon_merge, preset_selection_by_mode)
{
	for (size_t i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++) {
		cJSON *s = fx_yaml(mode_cases[i].spec);
		const char *names[8];
		int n = merge_select_presets(s, names, 8), want = 0;

		while (want < 4 && mode_cases[i].want[want])
			want++;
		cr_expect_eq(n, want, "%s: %d presets", mode_cases[i].name, n);
		for (int j = 0; j < n && j < want; j++)
			cr_expect_str_eq(names[j], mode_cases[i].want[j], "%s [%d]", mode_cases[i].name, j);
		cJSON_Delete(s);
	}
}

/* combine: presets < baseRefs < service, explicit zero/false from the service win. */
Test(daemon_merge, combine_layers)
{
	struct reconcile_env *env = fx_env();
	cJSON *svc, *out = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	fx_env_add(fx_yaml("kind: LLMInferenceServiceConfig\nmetadata: {name: base-a, namespace: ns}\n"
	    "spec: {replicas: 5, parallelism: {tensor: 2, expert: true}, template: {containers: "
	    "[{name: main, env: [{name: FROM, value: base-a}], resources: {requests: {cpu: '4'}}}]}}"));
	fx_env_add(fx_yaml("kind: LLMInferenceServiceConfig\nmetadata: {name: base-b, namespace: llmd-system}\n"
	    "spec: {model: {name: from-b}, template: {containers: [{name: main, env: "
	    "[{name: FROM, value: base-b}]}]}}"));
	svc = fx_yaml("kind: LLMInferenceService\nmetadata: {name: svc, namespace: ns}\n"
	    "spec: {baseRefs: [{name: base-a}, {name: base-b}], model: {uri: 'hf://o/r'}, replicas: 0, "
	    "parallelism: {expert: false}}");
	cr_assert_eq(llmisvc_combine(svc, env, &out, &e), 0, "%s: %s", e.field, e.msg);
	cr_expect_eq(fx_at(out, "spec.replicas")->valueint, 0);
	cr_expect(cJSON_IsFalse(fx_at(out, "spec.parallelism.expert")));
	cr_expect_eq(fx_at(out, "spec.parallelism.tensor")->valueint, 2);
	cr_expect_str_eq(fx_str(out, "spec.model.name"), "from-b");
	cr_expect_null(fx_at(out, "spec.baseRefs"));
	/* preset (image, --port), base-a (cpu), base-b (env) on one container */
	cr_expect_str_eq(fx_str(out, "spec.template.containers[0].image"), "llmd-engine");
	cr_expect_str_eq(fx_str(out, "spec.template.containers[0].resources.requests.cpu"), "4");
	cr_expect_str_eq(fx_str(out, "spec.template.containers[0].env[3].value"), "base-b");
	/* rendered: the model name from base-b */
	cr_expect(fx_has(out, "spec.template.containers[0].args", "from-b"));
	cJSON_Delete(out);
	cJSON_Delete(svc);
}

Test(daemon_merge, combine_missing_config)
{
	struct reconcile_env *env = fx_env();
	cJSON *svc = fx_yaml("kind: LLMInferenceService\nmetadata: {name: svc, namespace: ns}\n"
	    "spec: {baseRefs: [{name: nope}], model: {uri: 'hf://o/r'}}");
	cJSON *out = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_expect_eq(llmisvc_combine(svc, env, &out, &e), -ENOENT);
	cr_expect_null(out);
	cr_expect_str_eq(e.field, "spec.baseRefs[0]");
	cr_expect_str_eq(e.msg, "failed to get LLMInferenceServiceConfig \"nope\" from namespaces "
	    "[\"ns\", \"llmd-system\"]: not found");
	cJSON_Delete(svc);
}

Test(daemon_merge, combine_scheduler_defaults_and_backend)
{
	struct reconcile_env *env = fx_env();
	cJSON *a = fx_yaml("kind: LLMInferenceService\nmetadata: {name: s, namespace: ns}\n"
	    "spec: {model: {uri: 'hf://o/r'}, router: {gateway: {}, route: {}, scheduler: {}}}");
	cJSON *b = fx_yaml("kind: LLMInferenceService\nmetadata: {name: s, namespace: ns}\n"
	    "spec: {model: {uri: 'hf://o/r'}, router: {gateway: {}, route: {}}}");
	cJSON *oa = NULL, *ob = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(llmisvc_combine(a, env, &oa, &e), 0, "%s", e.msg);
	cr_assert_eq(llmisvc_combine(b, env, &ob, &e), 0, "%s", e.msg);
	cr_expect_eq(cJSON_GetArraySize(fx_at(oa, "spec.router.scheduler.pool.spec.selector")), 3);
	cr_expect_str_eq(fx_str(oa, "spec.router.scheduler.template.serviceAccountName"), "s-epp-sa");
	cr_expect_str_eq(fx_str(oa, "spec.router.route.http.spec.rules[0].backendRefs[0].kind"),
	    "InferencePool");
	cr_expect_str_eq(fx_str(oa, "spec.router.route.http.spec.rules[0].matches[0].path.value"), "/ns/s");
	cr_expect_str_eq(fx_str(oa, "spec.router.route.http.spec.parentRefs[0].name"), "kserve-ingress-gateway");
	/* no scheduler: the backend is the workload Service */
	cr_expect_str_eq(fx_str(ob, "spec.router.route.http.spec.rules[0].backendRefs[0].kind"), "Service");
	cr_expect_str_eq(fx_str(ob, "spec.router.route.http.spec.rules[0].backendRefs[0].name"),
	    "s-kserve-workload-svc");
	cr_expect_str_eq(fx_str(ob, "spec.router.route.http.spec.rules[0].backendRefs[0].group"), "");
	cJSON_Delete(oa);
	cJSON_Delete(ob);
	cJSON_Delete(a);
	cJSON_Delete(b);
}
