/*
 * tests/unit/test-api.c - the API's pure parts: label and field selectors,
 * request body parsing (JSON/YAML, hostile input) and the resource table.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/api.h"

static cJSON *
obj(const char *labels)
{
	char txt[512];

	snprintf(txt, sizeof(txt), "{\"metadata\":{\"name\":\"x\",\"labels\":%s},"
	    "\"spec\":{\"nodeName\":\"gpu-1\",\"replicas\":2}}", labels);
	return cJSON_Parse(txt);
}

static int
match(const char *sel, const char *labels)
{
	struct selector *s = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *o = obj(labels);
	int m;

	cr_assert_eq(selector_parse(sel, &s, &e), 0, "%s: %s", sel, e.msg);
	m = selector_match(s, o);
	selector_free(s);
	cJSON_Delete(o);
	return m;
}

Test(selector, operators)
{
	cr_assert(match("a=b", "{\"a\":\"b\"}"));
	cr_assert(match("a==b", "{\"a\":\"b\"}"));
	cr_assert(!match("a=b", "{\"a\":\"c\"}"));
	cr_assert(match("a!=b", "{\"a\":\"c\"}"));
	cr_assert(match("a!=b", "{}"));
	cr_assert(match("a in (x, b)", "{\"a\":\"b\"}"));
	cr_assert(!match("a in (x,y)", "{\"a\":\"b\"}"));
	cr_assert(match("a notin (x,y)", "{\"a\":\"b\"}"));
	cr_assert(!match("a notin (b)", "{\"a\":\"b\"}"));
	cr_assert(match("a", "{\"a\":\"\"}"));
	cr_assert(!match("a", "{}"));
	cr_assert(match("!a", "{}"));
	cr_assert(match("a=b,c", "{\"a\":\"b\",\"c\":\"d\"}"));
	cr_assert(!match("a=b,!c", "{\"a\":\"b\",\"c\":\"d\"}"));
	cr_assert(match("app.kubernetes.io/name=x", "{\"app.kubernetes.io/name\":\"x\"}"));
	cr_assert(match("", "{}"));
}

Test(selector, rejects_garbage)
{
	const char *bad[] = { "a in b", "a in (b", "=b", "a=b,,", "a>b", "a in (b) c" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct selector *s = NULL;
		struct llmd_err e = LLMD_ERR_INIT;

		cr_assert_eq(selector_parse(bad[i], &s, &e), -EINVAL, "%s accepted", bad[i]);
		cr_assert_str_eq(e.field, "labelSelector");
	}
}

Test(selector, fields)
{
	struct selector *s = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *o = obj("{}");

	cr_assert_eq(selector_parse_fields("spec.nodeName=gpu-1,metadata.name=x", &s, &e), 0);
	cr_assert(selector_match(s, o));
	selector_free(s);
	cr_assert_eq(selector_parse_fields("spec.replicas=2,spec.missing=", &s, &e), 0);
	cr_assert(selector_match(s, o));
	selector_free(s);
	cr_assert_eq(selector_parse_fields("spec.nodeName!=gpu-1", &s, &e), 0);
	cr_assert(!selector_match(s, o));
	selector_free(s);
	cr_assert_eq(selector_parse_fields("spec.nodeName", &s, &e), -EINVAL);
	cJSON_Delete(o);
}

Test(body, json_yaml_and_hostile)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *o = NULL;
	char deep[400];

	cr_assert_eq(api_body_parse("{\"a\":1}", 7, "application/json", &o, &e), 0);
	cr_assert_eq(cJSON_GetObjectItem(o, "a")->valueint, 1);
	cJSON_Delete(o);
	cr_assert_eq(api_body_parse("a: 1\nb: [x]\n", 12, "application/yaml", &o, &e), 0);
	cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "b"), 0)->valuestring, "x");
	cJSON_Delete(o);
	/* No content type: sniffed. */
	cr_assert_eq(api_body_parse("a: 2\n", 5, NULL, &o, &e), 0);
	cJSON_Delete(o);
	cr_assert_eq(api_body_parse("", 0, NULL, &o, &e), -EINVAL);
	cr_assert_eq(api_body_parse("{\"a\":\"\xff\"}", 9, "application/json", &o, &e), -EINVAL);
	cr_assert_eq(api_body_parse("{\"a\":1} x", 9, "application/json", &o, &e), -EINVAL);
	memset(deep, '[', sizeof(deep));
	cr_assert_eq(api_body_parse(deep, sizeof(deep), "application/json", &o, &e), -EINVAL);
	cr_assert_null(o);
}

Test(resources, lookup)
{
	char av[64];

	cr_assert_str_eq(api_resource_by_name("llmisvc")->plural, "llminferenceservices");
	cr_assert_str_eq(api_resource_by_name("LLMInferenceServiceConfig")->plural,
	    "llminferenceserviceconfigs");
	cr_assert_str_eq(api_resource_by_name("deploy")->group, "apps");
	cr_assert_null(api_resource_by_name("frobs"));
	cr_assert_str_eq(api_resource_api_version(api_resource_find("", "pods"), av,
	    sizeof(av)), "v1");
	cr_assert_str_eq(api_resource_api_version(api_resource_find(
	    "leaderworkerset.x-k8s.io", "leaderworkersets"), av, sizeof(av)),
	    "leaderworkerset.x-k8s.io/v1");
	cr_assert(api_resource_find("", "pods")->flags & RES_DELETABLE);
	cr_assert(!(api_resource_find("", "pods")->flags & RES_WRITABLE));
}
