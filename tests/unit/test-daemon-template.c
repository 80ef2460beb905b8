/*
 * tests/unit/test-daemon-template.c - the Go-template subset: variables,
 * functions, blocks, escaping, and errors that name the missing field.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/template.h"
#include "tests/unit/daemon-fixtures.h"

static const char root_yaml[] =
	"metadata: {name: my-llm, namespace: team-a, labels: {tier: gold, app.kubernetes.io/x: y}}\n"
	"spec: {model: {name: llama, uri: 'hf://o/r'}, replicas: 3, parallelism: {tensor: 4, "
	"dataRPCPort: 5555, expert: false}, router: {gateway: {}}}\n";

static const struct {
	const char *in, *want;
} render_cases[] = {
	{ "plain", "plain" },
	{ "{{ .Name }}", "my-llm" },
	{ "{{.Name}}-model", "my-llm-model" },
	{ "{{ .Namespace }}/{{ .Name }}", "team-a/my-llm" },
	{ "{{ .ObjectMeta.Name }}", "my-llm" },
	{ "{{ .ObjectMeta.Labels.tier }}", "gold" },
	{ "{{ index .ObjectMeta.Labels \"app.kubernetes.io/x\" }}", "y" },
	{ "--served-model-name={{ .Spec.Model.Name }}", "--served-model-name=llama" },
	{ "{{ .Spec.Model.URI }}", "hf://o/r" },
	{ "{{ .Spec.Parallelism.Tensor }}", "4" },
	{ "{{ .Spec.Parallelism.DataRPCPort }}", "5555" },
	{ "{{ .Spec.Replicas }}", "3" },
	{ "{{ .Spec.Parallelism.Expert }}", "false" },
	{ "{{ ChildName .Name `-inference-pool` }}", "my-llm-inference-pool" },
	{ "{{ ChildName .Name \"-kserve\" }}", "my-llm-kserve" },
	{ "{{ ChildName .ObjectMeta.Name \"-epp-service\" }}", "my-llm-epp-service" },
	{ "{{ or .Spec.Parallelism.Data 1 }}", "1" },
	{ "{{ or .Spec.Parallelism.Tensor 1 }}", "4" },
	{ "{{ .Spec.Parallelism.DataRPCPort | printf \"%d\" }}", "5555" },
	{ "{{ printf \"%s-%d\" .Name .Spec.Replicas }}", "my-llm-3" },
	{ "{{ if .Spec.Parallelism.Tensor }}--tp={{ .Spec.Parallelism.Tensor }}{{ end }}", "--tp=4" },
	{ "{{ if .Spec.Parallelism.Pipeline }}--pp{{ else }}none{{ end }}", "none" },
	{ "{{ if not .Spec.Parallelism.Expert }}no-ep{{ end }}", "no-ep" },
	{ "{{ if eq .Namespace \"team-a\" }}yes{{ end }}", "yes" },
	{ "a {{- \" b \" -}} c", "a b c" },
	{ "{{ len .Spec.Model.Name }}", "5" },
	{ "{{ .GlobalConfig.IngressGatewayName }}", "gw" },
	{ "{{/* a comment */}}x", "x" },
};

Test(daemon_template, render_table)
{
	cJSON *root = fx_yaml(root_yaml);
	cJSON *global = fx_yaml("{IngressGatewayName: gw}");

	for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++) {
		struct llmd_err e = LLMD_ERR_INIT;
		char *out = NULL;
		int rc = template_render_string(render_cases[i].in, root, global, &out, &e);

		cr_expect_eq(rc, 0, "'%s': %s", render_cases[i].in, e.msg);
		if (rc == 0)
			cr_expect_str_eq(out, render_cases[i].want, "'%s'", render_cases[i].in);
		free(out);
	}
	cJSON_Delete(root);
	cJSON_Delete(global);
}

static const struct {
	const char *in, *msg_part;
} error_cases[] = {
	{ "{{ .Spec.Parallelism.Pipeline }}", "field .Spec.Parallelism.Pipeline is not set" },
	{ "--dp={{ .Spec.Prefill.Parallelism.Data }}", ".Spec.Prefill.Parallelism.Data" },
	{ "{{ .Name ", "unclosed action" },
	{ "{{ Nope .Name }}", "unexpected \"Nope\"" },
	{ "{{ if .Name }}x", "without {{ end }}" },
	{ "{{ end }}", "unexpected {{ end }}" },
	{ "{{ ChildName .Name }}", "ChildName wants 2 arguments" },
	{ "{{ \"unterminated }}", "syntax error" },
	{ "{{ .Name .Namespace }}", "non-function" },
};

Test(daemon_template, errors_name_the_problem)
{
	cJSON *root = fx_yaml(root_yaml);

	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		struct llmd_err e = LLMD_ERR_INIT;
		char *out = NULL;
		int rc = template_render_string(error_cases[i].in, root, NULL, &out, &e);

		cr_expect_eq(rc, -EINVAL, "'%s' rendered as '%s'", error_cases[i].in, out ? out : "");
		cr_expect(strstr(e.msg, error_cases[i].msg_part) != NULL, "'%s': msg '%s'",
		    error_cases[i].in, e.msg);
		free(out);
	}
	cJSON_Delete(root);
}

/* Values go in as string contents: quotes and braces in data cannot break the document. */
Test(daemon_template, values_are_not_reparsed)
{
	cJSON *root = fx_yaml("metadata: {name: x, labels: {evil: '\", \"injected\": \"{{ .Name }}'}}\n");
	cJSON *tree = fx_yaml("{a: '{{ .ObjectMeta.Labels.evil }}', b: ['{{ .Name }}'], n: 5}");
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(template_render_tree(tree, "spec", root, NULL, &e), 0, "%s", e.msg);
	cr_expect_str_eq(fx_str(tree, "a"), "\", \"injected\": \"{{ .Name }}");
	cr_expect_str_eq(fx_str(tree, "b[0]"), "x");
	cr_expect_eq(cJSON_GetArraySize(tree), 3);
	cJSON_Delete(root);
	cJSON_Delete(tree);
}

Test(daemon_template, tree_error_has_field_path)
{
	cJSON *root = fx_yaml(root_yaml);
	cJSON *tree = fx_yaml("{template: {containers: [{name: main, args: [ok, '{{ .Spec.Worker.X }}']}]}}");
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(template_render_tree(tree, "spec", root, NULL, &e), -EINVAL);
	cr_expect_str_eq(e.field, "spec.template.containers[0].args[1]");
	cr_expect(strstr(e.msg, ".Spec.Worker.X") != NULL, "%s", e.msg);
	cJSON_Delete(root);
	cJSON_Delete(tree);
}

/* The merged spec is what templates see (upstream #5439): a baseRef value is visible. */
Test(daemon_template, combine_renders_merged_values)
{
	struct reconcile_env *env = fx_env();
	cJSON *svc = fx_yaml("kind: LLMInferenceService\nmetadata: {name: my-llm-templated, namespace: default}\n"
	    "spec: {baseRefs: [{name: dynamic-config}], model: {uri: 'hf://o/r'}}");
	cJSON *bad = fx_yaml("kind: LLMInferenceService\nmetadata: {name: t, namespace: default}\n"
	    "spec: {model: {uri: 'hf://o/r'}, template: {containers: [{name: main, args: "
	    "['--x={{ .Spec.Parallelism.Tensor }}']}]}}");
	cJSON *out = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(llmisvc_combine(svc, env, &out, &e), 0, "%s: %s", e.field, e.msg);
	cr_expect_str_eq(fx_str(out, "spec.model.name"), "my-llm-templated-model");
	cr_expect(fx_has(out, "spec.template.containers[0].args", "--model-name=my-llm-templated-model"));
	cr_expect(fx_has(out, "spec.template.containers[0].args", "--namespace=default"));
	cr_expect_str_eq(fx_str(out, "spec.template.containers[0].env[4].value"), "default/my-llm-templated");
	cJSON_Delete(out);
	out = NULL;
	cr_expect_eq(llmisvc_combine(bad, env, &out, &e), -EINVAL);
	cr_expect_null(out);
	cr_expect_str_eq(e.field, "spec.template.containers[0].args[0]");
	cr_expect(strstr(e.msg, ".Spec.Parallelism.Tensor") != NULL, "%s", e.msg);
	cJSON_Delete(svc);
	cJSON_Delete(bad);
}
