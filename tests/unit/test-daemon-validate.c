/*
 * tests/unit/test-daemon-validate.c - admission rules, table-driven: each
 * case is a YAML manifest and the expected first error field (NULL = valid).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/reconcile.h"
#include "lib/yaml.h"
#include "tests/unit/daemon-fixtures.h"

#define HDR "apiVersion: serving.kserve.io/v1alpha1\nkind: LLMInferenceService\n" \
	"metadata: {name: svc, namespace: ns}\n"

static const struct {
	const char *name, *yaml, *field, *msg_part;
} svc_cases[] = {
	{ "minimal", HDR "spec: {model: {uri: 'hf://org/repo'}}", NULL, NULL },
	{ "file uri", HDR "spec: {model: {uri: 'file:///models/x'}}", NULL, NULL },
	{ "s3 gs pvc", HDR "spec: {model: {uri: 's3://b/k', lora: {adapters: [{uri: 'gs://b/a'}, "
	  "{uri: 'pvc://claim/p'}]}}}", NULL, NULL },
	{ "no spec", HDR, "spec", "required" },
	{ "bad name", "apiVersion: serving.kserve.io/v1alpha1\nkind: LLMInferenceService\n"
	  "metadata: {name: Bad_Name}\nspec: {model: {uri: 'hf://o/r'}}", "metadata.name", "RFC 1123" },
	{ "bad namespace", "kind: LLMInferenceService\nmetadata: {name: a, namespace: 'x.y'}\n"
	  "spec: {model: {uri: 'hf://o/r'}}", "metadata.namespace", NULL },
	{ "wrong kind", "kind: Deployment\nmetadata: {name: a}\nspec: {model: {uri: 'hf://o/r'}}",
	  "kind", NULL },
	{ "uri required", HDR "spec: {model: {name: x}}", "spec.model.uri", "required" },
	{ "uri scheme", HDR "spec: {model: {uri: 'ftp://x/y'}}", "spec.model.uri",
	  "unsupported schema in model URI: ftp://x/y" },
	{ "uri no scheme", HDR "spec: {model: {uri: 'just-a-path'}}", "spec.model.uri",
	  "invalid model URI" },
	{ "file relative", HDR "spec: {model: {uri: 'file://models/x'}}", "spec.model.uri",
	  "absolute path" },
	{ "hf no repo", HDR "spec: {model: {uri: 'hf://org'}}", "spec.model.uri", "hf://<org>/<repo>" },
	{ "lora uri", HDR "spec: {model: {uri: 'hf://o/r', lora: {adapters: [{uri: 'x://y'}]}}}",
	  "spec.model.lora.adapters[0].uri", NULL },
	{ "lora name dup", HDR "spec: {model: {uri: 'hf://o/r', lora: {adapters: [{uri: 'hf://a/b', name: x}, "
	  "{uri: 'hf://a/c', name: x}]}}}", "spec.model.lora.adapters[1].name", "Duplicate" },
	{ "lora name path", HDR "spec: {model: {uri: 'hf://o/r', lora: {adapters: [{uri: 'hf://a/b', "
	  "name: '../etc'}]}}}", "spec.model.lora.adapters[0].name", NULL },
	{ "criticality", HDR "spec: {model: {uri: 'hf://o/r', criticality: Normal}}",
	  "spec.model.criticality", "Critical" },
	{ "replicas negative", HDR "spec: {model: {uri: 'hf://o/r'}, replicas: -1}", "spec.replicas",
	  ">= 0" },
	{ "replicas zero ok", HDR "spec: {model: {uri: 'hf://o/r'}, replicas: 0}", NULL, NULL },
	{ "replicas string", HDR "spec: {model: {uri: 'hf://o/r'}, replicas: 'two'}", "spec.replicas",
	  NULL },
	{ "tensor zero", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {tensor: 0}}",
	  "spec.parallelism.tensor", "greater than 0" },
	{ "pipeline zero", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {pipeline: 0}}",
	  "spec.parallelism.pipeline", "pipeline parallelism must be greater than 0" },
	{ "rpc port", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {dataRPCPort: 70000}}",
	  "spec.parallelism.dataRPCPort", "65535" },
	{ "expert type", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {expert: 'yes'}}",
	  "spec.parallelism.expert", NULL },
	{ "V5 worker without parallelism", HDR "spec: {model: {uri: 'hf://o/r'}, worker: {containers: []}}",
	  "spec.worker", "when worker is specified" },
	{ "V5 worker tensor only", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {tensor: 2}, "
	  "worker: {}}", "spec.worker", NULL },
	{ "V6 pp and dp", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {pipeline: 2, data: 4, "
	  "dataLocal: 2}}", "spec.parallelism", "cannot set both" },
	{ "V7 data without local", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {data: 4}}",
	  "spec.parallelism.dataLocal", "dataLocal must be set when data is set" },
	{ "V8 local without data", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {dataLocal: 2}}",
	  "spec.parallelism.data", "data must be set when dataLocal is set" },
	{ "V7 in prefill", HDR "spec: {model: {uri: 'hf://o/r'}, prefill: {parallelism: {data: 4}}}",
	  "spec.prefill.parallelism.dataLocal", NULL },
	{ "dp multinode ok", HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {data: 4, dataLocal: 2},"
	  " template: {containers: [{name: main}]}, worker: {containers: [{name: main}]}}", NULL, NULL },
	{ "multinode digit name", "kind: LLMInferenceService\nmetadata: {name: 1svc}\nspec: {model: "
	  "{uri: 'hf://o/r'}, parallelism: {pipeline: 2}, worker: {}}", "metadata.name", "DNS-1035" },
	{ "container name", HDR "spec: {model: {uri: 'hf://o/r'}, template: {containers: [{image: x}]}}",
	  "spec.template.containers[0].name", NULL },
	{ "V2 refs and spec", HDR "spec: {model: {uri: 'hf://o/r'}, router: {gateway: {refs: [{name: g}]}, "
	  "route: {http: {refs: [{name: r}], spec: {rules: []}}}}}", "spec.router.route.http",
	  "cannot use both" },
	{ "V3 route refs managed gw", HDR "spec: {model: {uri: 'hf://o/r'}, router: {gateway: {}, "
	  "route: {http: {refs: [{name: r}]}}}}", "spec.router.route.http.refs", "managed gateway" },
	{ "byo gateway + route spec ok", HDR "spec: {model: {uri: 'hf://o/r'}, router: {gateway: {refs: "
	  "[{name: g, namespace: gns}]}, route: {http: {spec: {rules: []}}}}}", NULL, NULL },
	{ "ingress with route", HDR "spec: {model: {uri: 'hf://o/r'}, router: {ingress: {refs: [{name: i}]},"
	  " route: {}}}", "spec.router.ingress", NULL },
	{ "gateway ref name", HDR "spec: {model: {uri: 'hf://o/r'}, router: {gateway: {refs: [{namespace: x}]}}}",
	  "spec.router.gateway.refs[0].name", NULL },
	{ "pool ref and spec", HDR "spec: {model: {uri: 'hf://o/r'}, router: {scheduler: {pool: {ref: "
	  "{name: p}, spec: {}}}}}", "spec.router.scheduler.pool", NULL },
	{ "unknown field", HDR "spec: {model: {uri: 'hf://o/r'}, replica: 2}", "spec.replica",
	  "unknown field" },
	{ "baseRefs ok", HDR "spec: {baseRefs: [{name: base}], model: {uri: 'hf://o/r'}}", NULL, NULL },
};

Test(daemon_validate, service_table)
{
	for (size_t i = 0; i < sizeof(svc_cases) / sizeof(svc_cases[0]); i++) {
		cJSON *o = fx_yaml(svc_cases[i].yaml);
		struct llmd_err e = LLMD_ERR_INIT;
		int rc = llmisvc_validate(o, NULL, &e);

		if (!svc_cases[i].field) {
			cr_expect_eq(rc, 0, "%s: unexpected error %s: %s", svc_cases[i].name, e.field, e.msg);
		} else {
			cr_expect_eq(rc, -EINVAL, "%s: accepted", svc_cases[i].name);
			cr_expect_str_eq(e.field, svc_cases[i].field, "%s (msg %s)", svc_cases[i].name, e.msg);
			if (svc_cases[i].msg_part)
				cr_expect(strstr(e.msg, svc_cases[i].msg_part) != NULL, "%s: msg '%s'",
				    svc_cases[i].name, e.msg);
		}
		cJSON_Delete(o);
	}
}

Test(daemon_validate, all_errors_reported)
{
	cJSON *o = fx_yaml(HDR "spec: {model: {uri: 'ftp://x'}, replicas: -1}");
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(llmisvc_validate(o, NULL, &e), -EINVAL);
	cr_expect_str_eq(e.field, "spec.model.uri");
	cr_expect(strstr(e.msg, "; spec.replicas: must be an integer >= 0") != NULL, "%s", e.msg);
	cJSON_Delete(o);
}

Test(daemon_validate, size_immutable_on_update)
{
	cJSON *old = fx_yaml(HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {pipeline: 2}, worker: {}}");
	cJSON *same = fx_yaml(HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {pipeline: 2, tensor: 4}, "
	    "worker: {}}");
	cJSON *grow = fx_yaml(HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: {pipeline: 4}, worker: {}}");
	struct llmd_err e = LLMD_ERR_INIT;

	cr_expect_eq(llmisvc_validate(same, old, &e), 0, "%s", e.msg);
	cr_expect_eq(llmisvc_validate(grow, old, &e), -EINVAL);
	cr_expect_str_eq(e.field, "spec.parallelism");
	cr_expect(strstr(e.msg, "previous size 2, curr size 4") != NULL, "%s", e.msg);
	cJSON_Delete(old);
	cJSON_Delete(same);
	cJSON_Delete(grow);
}

Test(daemon_validate, configs)
{
	cJSON *ok = fx_yaml("kind: LLMInferenceServiceConfig\nmetadata: {name: c}\n"
	    "spec: {model: {name: '{{ .Name }}-m'}, template: {containers: [{name: main, args: "
	    "['--tp={{ .Spec.Parallelism.Tensor }}']}]}}");
	cJSON *refs = fx_yaml("kind: LLMInferenceServiceConfig\nmetadata: {name: c}\n"
	    "spec: {baseRefs: [{name: x}]}");
	cJSON *bad = fx_yaml("kind: LLMInferenceServiceConfig\nmetadata: {name: c}\n"
	    "spec: {template: {containers: [{name: main, args: ['{{ .Spec.Nope.Field }}']}]}}");
	struct llmd_err e = LLMD_ERR_INIT;

	cr_expect_eq(llmisvcconfig_validate(ok, &e), 0, "%s: %s", e.field, e.msg);
	cr_expect_eq(llmisvcconfig_validate(refs, &e), -EINVAL);
	cr_expect_str_eq(e.field, "spec.baseRefs");
	cr_expect(strstr(e.msg, "not a permitted field") != NULL);
	cr_expect_eq(llmisvcconfig_validate(bad, &e), -EINVAL);
	cr_expect_str_eq(e.field, "spec.template.containers[0].args[0]");
	cr_expect(strstr(e.msg, "Spec.Nope.Field") != NULL, "%s", e.msg);
	cJSON_Delete(ok);
	cJSON_Delete(refs);
	cJSON_Delete(bad);
}

/* The shipped presets are valid configs and render against the sample service. */
Test(daemon_validate, every_preset_is_valid)
{
	static const char *const names[] = { "template", "decode-template", "prefill-template",
		"worker-data-parallel", "decode-worker-data-parallel", "prefill-worker-data-parallel",
		"worker-pipeline-parallel", "decode-worker-pipeline-parallel",
		"prefill-worker-pipeline-parallel", "scheduler", "router-route" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char rel[128];
		cJSON **docs = NULL;
		size_t n = 0;
		struct llmd_err e = LLMD_ERR_INIT;

		snprintf(rel, sizeof(rel), "etc/presets/kserve-config-llm-%s.yaml", names[i]);
		cr_assert_eq(yaml_parse_file(fx_src(rel), &docs, &n, &e), 0, "%s: %s %s", rel, e.field, e.msg);
		cr_assert_eq(n, 1);
		cr_expect_eq(llmisvcconfig_validate(docs[0], &e), 0, "%s: %s: %s", rel, e.field, e.msg);
		cr_expect(strstr(rel, fx_str(docs[0], "metadata.name")) != NULL, "%s", rel);
		yaml_docs_free(docs, n);
	}
}

/* Wrong types anywhere: rejected by validation, and combine/derive never crash on them. */
Test(daemon_validate, hostile_inputs)
{
	static const char *const docs[] = {
		HDR "spec: {model: 'hf://o/r'}",
		HDR "spec: {model: {uri: 5}}",
		HDR "spec: {model: {uri: 'hf://o/r'}, template: []}",
		HDR "spec: {model: {uri: 'hf://o/r'}, template: {containers: {name: main}}}",
		HDR "spec: {model: {uri: 'hf://o/r'}, template: {containers: [5, {name: main, args: 7}]}}",
		HDR "spec: {model: {uri: 'hf://o/r'}, parallelism: [1], worker: 3}",
		HDR "spec: {model: {uri: 'hf://o/r'}, router: {gateway: {refs: 'x'}, route: []}}",
		HDR "spec: {model: {uri: 'hf://o/r'}, router: {scheduler: {pool: {spec: 1}}}}",
		HDR "spec: {model: {uri: 'hf://o/r'}, prefill: 'yes'}",
		HDR "spec: {model: {uri: 'hf://o/r'}, baseRefs: [{}, 3]}",
		HDR "spec: {model: {uri: 'hf://o/r', lora: {adapters: 'x'}}, replicas: 1.5}",
		"kind: LLMInferenceService\nmetadata: []\nspec: {}",
		"[1, 2]",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		cJSON *o = fx_yaml(docs[i]), *m = NULL, *ch = NULL, *st = NULL;
		struct llmd_err e = LLMD_ERR_INIT;

		cr_expect_eq(llmisvc_validate(o, NULL, &e), -EINVAL, "doc %zu accepted", i);
		if (llmisvc_combine(o, fx_env(), &m, &e) == 0) {
			llmisvc_derive(m, fx_env(), &ch, &e);
			cJSON_Delete(ch);
		}
		if (cJSON_IsObject(o))
			llmisvc_status(o, m, &e, NULL, fx_env(), "t", &st);
		cJSON_Delete(st);
		cJSON_Delete(m);
		cJSON_Delete(o);
	}
}
