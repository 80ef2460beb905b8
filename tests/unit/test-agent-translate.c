/*
 * tests/unit/test-agent-translate.c - agent/translate.c: which program runs a
 * container, vLLM arguments translated to llmd-engine serve, port rewriting,
 * mount path rewriting, Kubernetes $(VAR) expansion, clear errors for images
 * that cannot run here.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/json.h"

static cJSON *
parse(const char *s)
{
	cJSON *o = NULL;

	cr_assert_eq(json_parse(s, strlen(s), &o, NULL), 0, "bad test JSON: %s", s);
	return o;
}

static const struct mount_map mounts[] = {
	{ "/mnt/models", "/var/lib/llmd-agent/models/abc" },
	{ "/home", "/data/pods/u1/volumes/home" },
};

static struct translate_ctx
ctx(void)
{
	struct translate_ctx c = { "/opt/llmd/bin/llmd-engine", "/opt/llmd/bin/llmd-router",
		mounts, 2, 31000, 31001, "0.0.0.0" };

	return c;
}

static char *
joined(char **v)
{
	static char out[2048];
	size_t i;

	out[0] = '\0';
	for (i = 0; v[i]; i++) {
		strcat(out, i ? " " : "");
		strcat(out, v[i]);
	}
	return out;
}

Test(translate, expand_like_kubernetes)
{
	cJSON *env = parse("[{\"name\":\"A\",\"value\":\"x\"},{\"name\":\"B\",\"value\":\"\"}]");
	char *s;

	s = translate_expand("$(A)-$(B)-$(C)-$$(A)-$", env);
	cr_assert_str_eq(s, "x--$(C)-$(A)-$");
	free(s);
	s = translate_expand("$(A", env);
	cr_assert_str_eq(s, "$(A");
	free(s);
	cJSON_Delete(env);
}

Test(translate, paths_under_mounts)
{
	char *s;

	s = translate_path("/mnt/models", mounts, 2);
	cr_assert_str_eq(s, "/var/lib/llmd-agent/models/abc");
	free(s);
	s = translate_path("/mnt/models/tokenizer.json", mounts, 2);
	cr_assert_str_eq(s, "/var/lib/llmd-agent/models/abc/tokenizer.json");
	free(s);
	s = translate_path("/mnt/modelsX", mounts, 2);
	cr_assert_str_eq(s, "/mnt/modelsX");
	free(s);
	s = translate_path("--download-dir=/home/cache", mounts, 2);
	cr_assert_str_eq(s, "--download-dir=/data/pods/u1/volumes/home/cache");
	free(s);
}

Test(translate, vllm_serve_becomes_llmd_engine)
{
	cJSON *c = parse("{\"name\":\"main\",\"image\":\"vllm/vllm-openai:v0.8\","
	    "\"command\":[\"vllm\",\"serve\",\"/mnt/models\"],"
	    "\"args\":[\"--served-model-name\",\"m\",\"--port\",\"8000\",\"--tensor-parallel-size=2\"],"
	    "\"env\":[{\"name\":\"HOME\",\"value\":\"/home\"}],\"workingDir\":\"/home\"}");
	struct translate_ctx x = ctx();
	struct translated t;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(translate_container(c, &x, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(t.kind, PROC_ENGINE);
	cr_assert_str_eq(joined(t.argv), "/opt/llmd/bin/llmd-engine serve "
	    "/var/lib/llmd-agent/models/abc --served-model-name m --port 31000 "
	    "--tensor-parallel-size=2 --host 0.0.0.0");
	cr_assert_str_eq(t.env[0], "HOME=/data/pods/u1/volumes/home");
	cr_assert_null(t.env[1]);
	cr_assert_str_eq(t.cwd, "/data/pods/u1/volumes/home");
	translated_release(&t);
	cJSON_Delete(c);
}

Test(translate, python_module_with_model_flag_and_no_port)
{
	cJSON *c = parse("{\"name\":\"main\",\"image\":\"registry/custom:1\","
	    "\"command\":[\"python3\",\"-m\",\"vllm.entrypoints.openai.api_server\"],"
	    "\"args\":[\"--model=/mnt/models\",\"--host\",\"::\",\"--enable-prefix-caching\"]}");
	struct translate_ctx x = ctx();
	struct translated t;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(translate_container(c, &x, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(t.kind, PROC_ENGINE);
	cr_assert_str_eq(joined(t.argv), "/opt/llmd/bin/llmd-engine serve "
	    "/var/lib/llmd-agent/models/abc --host 0.0.0.0 --enable-prefix-caching --port 31000");
	translated_release(&t);
	cJSON_Delete(c);
}

Test(translate, vllm_image_without_command_uses_args)
{
	cJSON *c = parse("{\"name\":\"main\",\"image\":\"vllm/vllm-openai:latest\","
	    "\"args\":[\"--model\",\"/mnt/models\",\"--port=8001\"]}");
	struct translate_ctx x = ctx();
	struct translated t;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(translate_container(c, &x, &t, &e), 0, "%s", e.msg);
	cr_assert_str_eq(joined(t.argv), "/opt/llmd/bin/llmd-engine serve "
	    "/var/lib/llmd-agent/models/abc --port 31000 --host 0.0.0.0");
	translated_release(&t);
	cJSON_Delete(c);
}

Test(translate, sidecar_ports_or_clear_error)
{
	cJSON *c = parse("{\"name\":\"llm-d-routing-sidecar\","
	    "\"image\":\"ghcr.io/llm-d/llm-d-routing-sidecar:v0.2.0\","
	    "\"args\":[\"--port=8000\",\"--vllm-port=8001\",\"--connector=nixlv2\"]}");
	struct translate_ctx x = ctx();
	struct translated t;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert(translate_is_sidecar(c));
	cr_assert_eq(translate_container(c, &x, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(t.kind, PROC_SIDECAR);
	cr_assert_str_eq(joined(t.argv), "/opt/llmd/bin/llmd-router sidecar --port 31000 "
	    "--vllm-port 31001 --connector=nixlv2");
	translated_release(&t);
	x.router_path = NULL;
	cr_assert_eq(translate_container(c, &x, &t, &e), -ENOTSUP);
	cr_assert(strstr(e.msg, "llm-d-routing-sidecar:v0.2.0"), "%s", e.msg);
	cr_assert(strstr(e.msg, "sidecar mode"), "%s", e.msg);
	cJSON_Delete(c);
}

Test(translate, scheduler_is_skipped)
{
	cJSON *c = parse("{\"name\":\"main\","
	    "\"image\":\"ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.1\"}");
	struct translate_ctx x = ctx();
	struct translated t;

	cr_assert_eq(translate_container(c, &x, &t, NULL), 0);
	cr_assert_eq(t.kind, PROC_SKIP);
	translated_release(&t);
	cJSON_Delete(c);
}

Test(translate, host_executable_runs_as_is)
{
	cJSON *c = parse("{\"name\":\"tool\",\"image\":\"busybox\","
	    "\"command\":[\"sh\",\"-c\",\"ls $(DIR)\"],"
	    "\"env\":[{\"name\":\"DIR\",\"value\":\"/mnt/models\"}]}");
	struct translate_ctx x = ctx();
	struct translated t;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(translate_container(c, &x, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(t.kind, PROC_HOST);
	cr_assert_str_eq(joined(t.argv), "sh -c ls /mnt/models");
	translated_release(&t);
	cJSON_Delete(c);
}

Test(translate, unknown_image_names_the_image)
{
	cJSON *c = parse("{\"name\":\"main\",\"image\":\"example.com/triton:24.01\","
	    "\"command\":[\"tritonserver-not-here\"]}");
	struct translate_ctx x = ctx();
	struct translated t;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(translate_container(c, &x, &t, &e), -ENOTSUP);
	cr_assert(strstr(e.msg, "example.com/triton:24.01"), "%s", e.msg);
	cr_assert(strstr(e.msg, "tritonserver-not-here"), "%s", e.msg);
	cJSON_Delete(c);
}

Test(gpu, fake_spec)
{
	struct gpu g[16];
	int n = -1;
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *j;

	cr_assert_eq(gpu_parse_fake("8xH100-80GB", g, 16, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 8);
	cr_assert_str_eq(g[7].model, "H100");
	cr_assert_eq(g[7].index, 7);
	cr_assert_eq(g[0].memory_mib, 80000);
	cr_assert(g[3].healthy);
	cr_assert_eq(gpu_parse_fake("2xA100-40GB,1xL4", g, 16, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(g[2].model, "L4");
	cr_assert_eq(g[2].memory_mib, 0);
	cr_assert_eq(gpu_parse_fake("0", g, 16, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(gpu_parse_fake("x", g, 16, &n, &e), -EINVAL);
	cr_assert_eq(gpu_parse_fake("20xH100", g, 16, &n, &e), -EINVAL);
	cr_assert_eq(gpu_parse_fake("2x", g, 16, &n, &e), -EINVAL);
	gpu_parse_fake("2xH100-80GB", g, 16, &n, &e);
	j = gpu_to_json(g, n);
	cr_assert_eq(cJSON_GetArraySize(j), 2);
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "model")->valuestring,
	    "H100");
	cJSON_Delete(j);
}
