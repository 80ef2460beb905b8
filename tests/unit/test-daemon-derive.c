/*
 * tests/unit/test-daemon-derive.c - every etc/examples manifest is accepted,
 * combined with etc/presets and derived; children names, labels, pods,
 * engine flags, GPUs, LWS env and routes are checked per example.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/derive.h"
#include "daemon/naming.h"
#include "lib/yaml.h"
#include "tests/unit/daemon-fixtures.h"

static const char *
label(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(fx_at(o, "metadata.labels"), k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *
env_of(const cJSON *c, const char *name)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, cJSON_GetObjectItem(c, "env")) {
		if (strcmp(fx_str(e, "name"), name) == 0)
			return fx_str(e, "value");
	}
	return NULL;
}

static const char *
gpus_of(const cJSON *c)
{
	const cJSON *v = cJSON_GetObjectItem(fx_at(c, "resources.limits"), GPU_RESOURCE);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Combines and derives one service; asserts success. */
static cJSON *
derive(const cJSON *svc)
{
	cJSON *merged = NULL, *children = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(llmisvc_combine(svc, fx_env(), &merged, &e), 0, "combine %s: %s: %s",
	    fx_str(svc, "metadata.name"), e.field, e.msg);
	cr_assert_eq(llmisvc_derive(merged, fx_env(), &children, &e), 0, "derive: %s: %s", e.field, e.msg);
	cJSON_Delete(merged);
	return children;
}

static cJSON *
load_example(const char *file)
{
	char rel[256];
	cJSON **docs = NULL, *o;
	size_t n = 0;
	struct llmd_err e = LLMD_ERR_INIT;

	snprintf(rel, sizeof(rel), "etc/examples/%s", file);
	cr_assert_eq(yaml_parse_file(fx_src(rel), &docs, &n, &e), 0, "%s: %s", e.field, e.msg);
	cr_assert_eq(n, 1);
	o = docs[0];
	docs[0] = NULL;
	yaml_docs_free(docs, n);
	if (!fx_at(o, "metadata.namespace"))
		cJSON_AddStringToObject(cJSON_GetObjectItem(o, "metadata"), "namespace", "default");
	return o;
}

/* Every manifest validates; services combine and derive; generic invariants hold. */
Test(daemon_derive, every_example_is_accepted)
{
	DIR *d = opendir(fx_src("etc/examples"));
	struct dirent *de;
	int services = 0, configs = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		cJSON *o, *children;
		const cJSON *c;
		struct llmd_err e = LLMD_ERR_INIT;
		const char *svc;

		if (!strstr(de->d_name, ".yaml"))
			continue;
		o = load_example(de->d_name);
		if (strcmp(fx_str(o, "kind"), "LLMInferenceServiceConfig") == 0) {
			cr_expect_eq(llmisvcconfig_validate(o, &e), 0, "%s: %s: %s", de->d_name, e.field, e.msg);
			configs++;
			cJSON_Delete(o);
			continue;
		}
		services++;
		cr_expect_eq(llmisvc_validate(o, NULL, &e), 0, "%s: %s: %s", de->d_name, e.field, e.msg);
		svc = fx_str(o, "metadata.name");
		children = derive(o);
		cJSON_ArrayForEach(c, children) {
			const char *kind = fx_str(c, "kind"), *name = fx_str(c, "metadata.name");

			cr_expect_str_eq(label(c, LBL_PART_OF), "llminferenceservice", "%s %s", kind, name);
			cr_expect_str_eq(label(c, LBL_NAME), svc, "%s %s", kind, name);
			cr_expect_str_eq(fx_str(c, "metadata.namespace"), "default");
			if (strcmp(kind, "Pod") == 0 && label(c, LBL_KSERVE_COMP)) {
				const cJSON *main = fx_at(c, "spec.containers[0]");

				const cJSON *a;
				int named = 0;

				cJSON_ArrayForEach(a, fx_at(main, "args")) {
					if (cJSON_IsString(a) && strncmp(a->valuestring, "--served-model-name",
					    19) == 0)
						named = 1;
				}
				cr_expect(named, "%s: %s has no --served-model-name", de->d_name, name);
				cr_expect_geq(derive_pod_gpus(c), 1, "%s: %s", de->d_name, name);
				cr_expect_not_null(label(c, LBL_ROLE), "%s", name);
			}
		}
		{
			char *wsvc = llmd_child_name(svc, "-kserve-workload-svc");

			cr_expect_not_null(fx_find(children, "Service", wsvc), "%s", de->d_name);
			free(wsvc);
		}
		cJSON_Delete(children);
		cJSON_Delete(o);
	}
	closedir(d);
	cr_expect_geq(services, 15);
	cr_expect_eq(configs, 3);
}

Test(daemon_derive, quickstart_file_model)
{
	cJSON *o = load_example("quickstart.yaml"), *ch = derive(o);
	const cJSON *dep = fx_find(ch, "Deployment", "quickstart-kserve"), *pod = NULL, *c, *v;

	cr_assert_not_null(dep);
	cr_expect_eq(fx_at(dep, "spec.replicas")->valueint, 1);
	cr_expect_str_eq(label(dep, LBL_ROLE), "both");
	cr_expect_str_eq(label(dep, LBL_COMPONENT), COMP_WORKLOAD);
	cr_expect_not_null(fx_find(ch, "Service", "quickstart-kserve-workload-svc"));
	cr_expect_not_null(fx_find(ch, "HTTPRoute", "quickstart-kserve-route"));
	cr_expect_null(fx_find(ch, "InferencePool", "quickstart-inference-pool"));
	cr_expect_eq(fx_count(ch, "Pod"), 1);
	cJSON_ArrayForEach(c, ch) {
		if (strcmp(fx_str(c, "kind"), "Pod") == 0)
			pod = c;
	}
	cr_assert_not_null(pod);
	cr_expect_eq(strncmp(fx_str(pod, "metadata.name"), "quickstart-kserve-", 18), 0);
	cr_expect_eq(strlen(fx_str(pod, "metadata.name")), strlen("quickstart-kserve-") + 10 + 1 + 5);
	cr_expect_str_eq(fx_str(pod, "metadata.ownerReferences[0].name"), "quickstart-kserve");
	v = fx_at(pod, "spec.volumes");
	cr_expect_str_eq(fx_str(v, "[3].name"), "kserve-local-model");
	cr_expect_str_eq(fx_str(v, "[3].hostPath.path"), "/var/lib/llmd/models/qwen3-0.6b");
	c = fx_at(pod, "spec.containers[0]");
	cr_expect_str_eq(fx_str(c, "command[0]"), "llmd-engine");
	cr_expect(fx_has(c, "args", "qwen3-0.6b"));
	cr_expect_null(fx_at(pod, "spec.initContainers"), "no storage-initializer for file://");
	cr_expect_str_eq(gpus_of(c), "1");
	c = fx_find(ch, "HTTPRoute", "quickstart-kserve-route");
	cr_expect_str_eq(fx_str(c, "spec.rules[0].matches[0].path.value"), "/default/quickstart");
	cr_expect_str_eq(fx_str(c, "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch"), "/");
	cr_expect_str_eq(fx_str(c, "spec.rules[0].matches[1].headers[0].name"), "X-Gateway-Model-Name");
	cr_expect_str_eq(fx_str(c, "spec.rules[0].matches[1].headers[0].value"), "qwen3-0.6b");
	cr_expect_str_eq(fx_str(c, "spec.rules[0].backendRefs[0].name"), "quickstart-kserve-workload-svc");
	cr_expect_str_eq(fx_str(c, "spec.parentRefs[0].name"), "kserve-ingress-gateway");
	cJSON_Delete(ch);
	cJSON_Delete(o);
}

Test(daemon_derive, disaggregated_with_scheduler)
{
	cJSON *o = load_example("example2-disaggregated.yaml"), *ch = derive(o);
	const cJSON *dec = fx_find(ch, "Deployment", "llama-70b-disagg-kserve");
	const cJSON *pf = fx_find(ch, "Deployment", "llama-70b-disagg-kserve-prefill");
	const cJSON *pool = fx_find(ch, "InferencePool", "llama-70b-disagg-inference-pool");
	const cJSON *model = fx_find(ch, "InferenceModel", "llama-70b-disagg-inference-model");
	const cJSON *epp = fx_find(ch, "Deployment", "llama-70b-disagg-kserve-router-scheduler");
	const cJSON *eppsvc = fx_find(ch, "Service", "llama-70b-disagg-epp-service");
	const cJSON *c, *sc, *main;
	int decode_pods = 0, prefill_pods = 0;

	cr_assert_not_null(dec);
	cr_assert_not_null(pf);
	cr_assert_not_null(pool);
	cr_assert_not_null(model);
	cr_assert_not_null(epp);
	cr_assert_not_null(eppsvc);
	cr_expect_eq(fx_count(ch, "Pod"), 2 + 8 + 1);
	cr_expect_str_eq(label(dec, LBL_ROLE), "decode");
	cr_expect_str_eq(label(pf, LBL_ROLE), "prefill");
	cr_expect_str_eq(label(pf, LBL_COMPONENT), COMP_WORKLOAD_PREFILL);
	cr_expect_str_eq(label(epp, LBL_COMPONENT), COMP_SCHEDULER);
	cr_expect_str_eq(fx_str(model, "spec.modelName"), "llama-70b-disagg");
	cr_expect_str_eq(fx_str(model, "spec.criticality"), "Critical");
	cr_expect_str_eq(fx_str(model, "spec.poolRef.name"), "llama-70b-disagg-inference-pool");
	cr_expect_eq(fx_at(pool, "spec.targetPortNumber")->valueint, 8000);
	cr_expect_str_eq(fx_str(pool, "spec.extensionRef.name"), "llama-70b-disagg-epp-service");
	cr_expect_eq(cJSON_GetArraySize(fx_at(pool, "spec.selector")), 3);
	cr_expect_eq(cJSON_GetArraySize(fx_at(eppsvc, "spec.ports")), 3);
	cr_expect(fx_has(fx_at(epp, "spec.template.spec.containers[0]"), "args",
	    "llama-70b-disagg-inference-pool"));
	cr_expect(fx_has(fx_at(epp, "spec.template.spec.containers[0]"), "args", "--configText"));
	cJSON_ArrayForEach(c, ch) {
		if (strcmp(fx_str(c, "kind"), "Pod") != 0)
			continue;
		main = fx_at(c, "spec.containers[0]");
		if (strcmp(fx_str(c, "metadata.ownerReferences[0].name"), "llama-70b-disagg-kserve") == 0) {
			decode_pods++;
			cr_expect(fx_has(main, "args", "--tensor-parallel-size=2"));
			cr_expect(fx_has(main, "args", "8001"));
			cr_expect(fx_has(main, "args", "--kv-transfer-config=" KV_TRANSFER_CONFIG));
			cr_expect_str_eq(gpus_of(main), "2");
			sc = fx_at(c, "spec.initContainers[0]");
			cr_expect_str_eq(fx_str(sc, "name"), "llm-d-routing-sidecar");
			cr_expect_str_eq(env_of(sc, "INFERENCE_POOL_NAME"), "llama-70b-disagg-inference-pool");
			cr_expect_str_eq(env_of(sc, "INFERENCE_POOL_NAMESPACE"), "default");
			cr_expect_str_eq(fx_str(c, "spec.initContainers[1].name"), "storage-initializer");
			cr_expect_str_eq(fx_str(c, "spec.initContainers[1].args[0]"),
			    "hf://meta-llama/Llama-3-70B-Instruct");
			cr_expect_str_eq(label(c, LBL_ROLE), "decode");
		} else if (strcmp(fx_str(c, "metadata.ownerReferences[0].name"),
		    "llama-70b-disagg-kserve-prefill") == 0) {
			prefill_pods++;
			cr_expect(fx_has(main, "args", "--tensor-parallel-size=8"));
			cr_expect(fx_has(main, "args", "--kv-transfer-config=" KV_TRANSFER_CONFIG));
			cr_expect_str_eq(gpus_of(main), "8");
			cr_expect_str_eq(env_of(main, "VLLM_PREFILL_MODE"), "true");
			cr_expect_str_eq(label(c, LBL_ROLE), "prefill");
			cr_expect_str_eq(label(c, LBL_KSERVE_COMP), "workload");
		}
	}
	cr_expect_eq(decode_pods, 8);
	cr_expect_eq(prefill_pods, 2);
	cJSON_Delete(ch);
	cJSON_Delete(o);
}

Test(daemon_derive, multinode_pipeline_lws)
{
	cJSON *o = load_example("example3-multinode.yaml"), *ch = derive(o);
	const char *lws = "llama-405b-multinode-kserve-mn";
	const cJSON *set = fx_find(ch, "LeaderWorkerSet", lws), *leader, *worker, *c;

	cr_assert_not_null(set);
	cr_expect_eq(fx_at(set, "spec.replicas")->valueint, 4);
	cr_expect_eq(fx_at(set, "spec.leaderWorkerTemplate.size")->valueint, 4);
	cr_expect_str_eq(fx_str(set, "spec.leaderWorkerTemplate.restartPolicy"), "RecreateGroupOnPodRestart");
	cr_expect_str_eq(label(set, LBL_COMPONENT), COMP_WORKLOAD_WORKER);
	cr_expect_not_null(fx_find(ch, "Service", lws), "headless LWS service");
	cr_expect_eq(fx_count(ch, "Pod"), 16);
	leader = fx_find(ch, "Pod", "llama-405b-multinode-kserve-mn-0");
	worker = fx_find(ch, "Pod", "llama-405b-multinode-kserve-mn-3-2");
	cr_assert_not_null(leader);
	cr_assert_not_null(worker);
	cr_expect_null(fx_find(ch, "Pod", "llama-405b-multinode-kserve-mn-0-4"));
	cr_expect_str_eq(label(leader, LBL_COMPONENT), COMP_WORKLOAD_LEADER);
	cr_expect_str_eq(label(leader, LBL_ROLE), "both");
	cr_expect_str_eq(label(leader, "leaderworkerset.sigs.k8s.io/worker-index"), "0");
	cr_expect_str_eq(label(worker, "leaderworkerset.sigs.k8s.io/group-index"), "3");
	cr_expect_str_eq(label(worker, "leaderworkerset.sigs.k8s.io/worker-index"), "2");
	cr_expect_str_eq(label(worker, "leaderworkerset.sigs.k8s.io/group-key"),
	    label(fx_find(ch, "Pod", "llama-405b-multinode-kserve-mn-3"), "leaderworkerset.sigs.k8s.io/group-key"));
	c = fx_at(leader, "spec.containers[0]");
	cr_expect_str_eq(env_of(c, "LWS_LEADER_ADDRESS"),
	    "llama-405b-multinode-kserve-mn-0.llama-405b-multinode-kserve-mn.default");
	cr_expect_str_eq(env_of(c, "LWS_GROUP_SIZE"), "4");
	cr_expect_str_eq(env_of(c, "LWS_WORKER_INDEX"), "0");
	cr_expect(fx_has(c, "args", "--pipeline-parallel-size=4"));
	cr_expect(fx_has(c, "args", "--nnodes=4"));
	cr_expect(fx_has(c, "args", "--node-rank=0"));
	cr_expect(fx_has(c, "args",
	    "--master-addr=llama-405b-multinode-kserve-mn-0.llama-405b-multinode-kserve-mn.default"));
	cr_expect_not(fx_has(c, "args", "--headless"));
	cr_expect_str_eq(gpus_of(c), "8");
	c = fx_at(worker, "spec.containers[0]");
	cr_expect_str_eq(env_of(c, "LWS_WORKER_INDEX"), "2");
	cr_expect_str_eq(env_of(c, "LWS_LEADER_ADDRESS"),
	    "llama-405b-multinode-kserve-mn-3.llama-405b-multinode-kserve-mn.default");
	cr_expect(fx_has(c, "args", "--node-rank=2"));
	cr_expect(fx_has(c, "args", "--headless"));
	cr_expect_str_eq(fx_str(worker, "spec.hostname"), "llama-405b-multinode-kserve-mn-3-2");
	cr_expect_str_eq(fx_str(worker, "spec.subdomain"), lws);
	cJSON_Delete(ch);
	cJSON_Delete(o);
}

Test(daemon_derive, multinode_data_parallel_ranks)
{
	cJSON *o = fx_yaml("kind: LLMInferenceService\nmetadata: {name: dp, namespace: ns}\n"
	    "spec: {model: {uri: 's3://bucket/model'}, replicas: 1, parallelism: {data: 8, dataLocal: 2, "
	    "tensor: 2, expert: true}, template: {}, worker: {}}");
	cJSON *ch = derive(o);
	const cJSON *set = fx_find(ch, "LeaderWorkerSet", "dp-kserve-mn");
	const cJSON *p0 = fx_find(ch, "Pod", "dp-kserve-mn-0"), *p3 = fx_find(ch, "Pod", "dp-kserve-mn-0-3");
	const cJSON *c;

	cr_assert_not_null(set);
	cr_expect_eq(fx_at(set, "spec.leaderWorkerTemplate.size")->valueint, 4);
	cr_assert_not_null(p0);
	cr_assert_not_null(p3);
	c = fx_at(p0, "spec.containers[0]");
	cr_expect(fx_has(c, "args", "--data-parallel-size=8"));
	cr_expect(fx_has(c, "args", "--data-parallel-size-local=2"));
	cr_expect(fx_has(c, "args", "--data-parallel-rpc-port=5555"));
	cr_expect(fx_has(c, "args", "--data-parallel-address=dp-kserve-mn-0.dp-kserve-mn.ns"));
	cr_expect(fx_has(c, "args", "--data-parallel-start-rank=0"));
	cr_expect(fx_has(c, "args", "--tensor-parallel-size=2"));
	cr_expect(fx_has(c, "args", "--enable-expert-parallel"));
	cr_expect_str_eq(gpus_of(c), "4");
	c = fx_at(p3, "spec.containers[0]");
	cr_expect(fx_has(c, "args", "--data-parallel-start-rank=6"));
	cr_expect(fx_has(c, "args", "--headless"));
	cr_expect_str_eq(fx_str(p3, "spec.initContainers[0].name"), "storage-initializer");
	cr_expect_str_eq(env_of(fx_at(p3, "spec.initContainers[0]"), "LWS_WORKER_INDEX"), "3");
	cJSON_Delete(ch);
	cJSON_Delete(o);
}

Test(daemon_derive, single_node_parallelism_never_dropped)
{
	cJSON *o = fx_yaml("kind: LLMInferenceService\nmetadata: {name: tp, namespace: ns}\n"
	    "spec: {model: {uri: 'pvc://models/llama/8b'}, parallelism: {tensor: 2, pipeline: 2}, "
	    "template: {containers: [{name: main, args: ['--tensor-parallel-size=4']}]}}");
	cJSON *ch = derive(o);
	const cJSON *pod = NULL, *c, *m;

	cJSON_ArrayForEach(c, ch) {
		if (strcmp(fx_str(c, "kind"), "Pod") == 0)
			pod = c;
	}
	cr_assert_not_null(pod);
	m = fx_at(pod, "spec.containers[0]");
	/* the user's own flag wins and is not duplicated; pipeline is added */
	cr_expect(fx_has(m, "args", "--tensor-parallel-size=4"));
	cr_expect_not(fx_has(m, "args", "--tensor-parallel-size=2"));
	cr_expect(fx_has(m, "args", "--pipeline-parallel-size=2"));
	cr_expect(fx_has(m, "args", "--served-model-name=tp"));
	cr_expect_str_eq(gpus_of(m), "4");
	cr_expect_str_eq(fx_str(pod, "spec.volumes[3].persistentVolumeClaim.claimName"), "models");
	cJSON_ArrayForEach(c, fx_at(m, "volumeMounts")) {
		if (strcmp(fx_str(c, "mountPath"), MODEL_MOUNT) == 0)
			cr_expect_str_eq(fx_str(c, "subPath"), "llama/8b");
	}
	cJSON_Delete(ch);
	cJSON_Delete(o);
}

Test(daemon_derive, byo_gateway_and_ingress)
{
	cJSON *o = load_example("gateway-byo.yaml"), *ch = derive(o), *i, *ich;
	const cJSON *r = fx_find(ch, "HTTPRoute", "byo-gateway-llm-kserve-route");

	cr_assert_not_null(r);
	cr_expect_eq(cJSON_GetArraySize(fx_at(r, "spec.parentRefs")), 1);
	cr_expect_str_eq(fx_str(r, "spec.parentRefs[0].name"), "istio-gateway");
	cr_expect_str_eq(fx_str(r, "spec.parentRefs[0].namespace"), "istio-system");
	cr_expect_str_eq(fx_str(r, "spec.rules[0].matches[0].path.value"), "/my-custom-path");
	cr_expect_str_eq(fx_str(r, "spec.rules[0].backendRefs[0].name"), "byo-gateway-llm-kserve-workload-svc");
	i = load_example("ingress.yaml");
	ich = derive(i);
	cr_expect_eq(fx_count(ich, "HTTPRoute"), 0);
	cJSON_Delete(ich);
	cJSON_Delete(i);
	cJSON_Delete(ch);
	cJSON_Delete(o);
}

Test(daemon_derive, long_name_children)
{
	cJSON *o = fx_yaml("kind: LLMInferenceService\nmetadata: {name: "
	    "llama-3-3-70b-instruct-fp8-dynamic-prefill-decode-disaggregated-x1, namespace: ns}\n"
	    "spec: {model: {uri: 'hf://o/r'}, router: {route: {}, gateway: {}, scheduler: {}}}");
	cJSON *ch = derive(o);

	cr_expect_not_null(fx_find(ch, "Service",
	    "llama-3-3-7ae85e3c76a068e388688ef433aee7882-kserve-workload-svc"));
	cr_expect_not_null(fx_find(ch, "Deployment",
	    "llama-3-3-70b-instruct-fae85e3c76a068e388688ef433aee7882-kserve"));
	cr_expect_not_null(fx_find(ch, "InferencePool",
	    "llama-3-3-70b-inae85e3c76a068e388688ef433aee7882-inference-pool"));
	cJSON_Delete(ch);
	cJSON_Delete(o);
}

Test(daemon_derive, expand_vars)
{
	cJSON *env = fx_yaml("[{name: A, value: x}, {name: B, value: '$(A)'}]");
	char *s = derive_expand_vars("--a=$(A) $(B) $$(A) $(C) $(", env);

	cr_expect_str_eq(s, "--a=x $(A) $(A) $(C) $(");
	free(s);
	cJSON_Delete(env);
}

Test(daemon_derive, pod_names_stable)
{
	cJSON *o = load_example("example1-simple.yaml"), *a = derive(o), *b = derive(o);
	const cJSON *c;
	int n = 0;

	cJSON_ArrayForEach(c, a) {
		if (strcmp(fx_str(c, "kind"), "Pod") == 0) {
			cr_expect_not_null(fx_find(b, "Pod", fx_str(c, "metadata.name")));
			n++;
		}
	}
	cr_expect_eq(n, 2);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(o);
}

Test(daemon_derive, lora_adapters)
{
	cJSON *o = load_example("lora.yaml"), *ch = derive(o), *q;
	const cJSON *pod = NULL, *c, *m, *init = NULL;
	int mounts = 0;

	cJSON_ArrayForEach(c, ch) {
		if (strcmp(fx_str(c, "kind"), "Pod") == 0)
			pod = c;
	}
	cr_assert_not_null(pod);
	m = fx_at(pod, "spec.containers[0]");
	cr_expect(fx_has(m, "args", "--enable-lora"));
	cr_expect(fx_has(m, "args", "sql-adapter=/mnt/lora/sql-adapter"));
	cr_expect(fx_has(m, "args", "math-adapter=/mnt/lora/math-adapter"));
	cr_expect_not(fx_has(m, "args", "--kv-transfer-config=" KV_TRANSFER_CONFIG), "no P/D");
	cJSON_ArrayForEach(c, fx_at(m, "volumeMounts")) {
		if (strncmp(fx_str(c, "mountPath"), "/mnt/lora/", 10) == 0)
			mounts++;
	}
	cr_expect_eq(mounts, 2);
	cJSON_ArrayForEach(c, fx_at(pod, "spec.initContainers")) {
		if (strcmp(fx_str(c, "name"), "storage-initializer-lora-1") == 0)
			init = c;
	}
	cr_assert_not_null(init);
	cr_expect_str_eq(fx_str(init, "args[0]"), "hf://user/math-lora");
	cr_expect_str_eq(fx_str(init, "args[1]"), "/mnt/lora/math-adapter");
	/* a file:// adapter is a host path, no download */
	q = fx_yaml("kind: LLMInferenceService\nmetadata: {name: q, namespace: ns}\n"
	    "spec: {model: {uri: 'file:///m/base', lora: {adapters: [{uri: 'file:///m/ad'}]}}}");
	cJSON_Delete(ch);
	ch = derive(q);
	cJSON_ArrayForEach(c, ch) {
		if (strcmp(fx_str(c, "kind"), "Pod") == 0)
			pod = c;
	}
	cr_expect_null(fx_at(pod, "spec.initContainers"));
	cr_expect(fx_has(fx_at(pod, "spec.containers[0]"), "args", "adapter-0=/mnt/lora/adapter-0"));
	cJSON_Delete(q);
	cJSON_Delete(ch);
	cJSON_Delete(o);
}
