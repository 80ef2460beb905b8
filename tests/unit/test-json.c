/*
 * tests/unit/test-json.c - strict JSON parsing with line:column errors, typed
 * getters with field paths, printing and merge patch.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "lib/json.h"

static cJSON *
parse_ok(const char *s)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *v = NULL;

	cr_assert_eq(json_parse(s, strlen(s), &v, &e), 0, "%s: %s", e.field, e.msg);
	return v;
}

Test(json, parse_valid)
{
	cJSON *v = parse_ok("  {\"a\": [1, 2.5, \"h\\u00e9\"], \"b\": null}\n");

	cr_assert(cJSON_IsArray(cJSON_GetObjectItem(v, "a")));
	cJSON_Delete(v);
}

Test(json, syntax_error_line_col)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const char *s = "{\n  \"a\": 1,\n  \"b\": tru\n}";
	cJSON *v = (cJSON *)1;

	cr_assert_eq(json_parse(s, strlen(s), &v, &e), -EINVAL);
	cr_assert_null(v);
	cr_assert_str_eq(e.field, "3:8", "field %s msg %s", e.field, e.msg);
	cr_assert(strstr(e.msg, "invalid JSON") != NULL);

	s = "{\"a\": 1,}";
	cr_assert_eq(json_parse_named(s, strlen(s), "body", &v, &e), -EINVAL);
	cr_assert_str_eq(e.field, "body:1:9", "%s", e.field);

	s = "[1, 2";
	cr_assert_eq(json_parse(s, strlen(s), &v, &e), -EINVAL);
	cr_assert_str_eq(e.field, "1:6", "%s", e.field);
	cr_assert(strstr(e.msg, "end of input") != NULL, "%s", e.msg);

	s = "{} {}";
	cr_assert_eq(json_parse(s, strlen(s), &v, &e), -EINVAL);
	cr_assert_str_eq(e.field, "1:4", "%s", e.field);

	cr_assert_eq(json_parse("", 0, &v, &e), -EINVAL);
}

Test(json, columns_count_characters)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const char *s = "[\"\xc3\xa9\xc3\xa9\", x]";
	cJSON *v;

	cr_assert_eq(json_parse(s, strlen(s), &v, &e), -EINVAL);
	cr_assert_str_eq(e.field, "1:8", "%s", e.field);
}

Test(json, rejects_bad_utf8_nul_and_depth)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char deep[200];
	cJSON *v;

	cr_assert_eq(json_parse("\"\xc0\xaf\"", 4, &v, &e), -EINVAL);
	cr_assert(strstr(e.msg, "UTF-8") != NULL);
	cr_assert_str_eq(e.field, "1:2");
	cr_assert_eq(json_parse("\"\xed\xa0\x80\"", 5, &v, &e), -EINVAL); /* surrogate */
	cr_assert_eq(json_parse("\"a\0b\"", 5, &v, &e), -EINVAL);
	cr_assert(strstr(e.msg, "NUL") != NULL);

	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	cr_assert_eq(json_parse(deep, 130, &v, &e), -EINVAL);
	cr_assert(strstr(e.msg, "nesting") != NULL);
	cr_assert_str_eq(e.field, "1:65");
	cr_assert_eq(json_parse(deep + 1, 128, &v, &e), 0);
	cJSON_Delete(v);
	/* brackets inside strings do not count */
	cr_assert_eq(json_parse("\"[[[[\\\"[[\"", 10, &v, &e), 0);
	cJSON_Delete(v);
	cr_assert(json_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
	cr_assert(!json_utf8_valid("\xf4\x90\x80\x80", 4));
}

Test(json, getters_types_and_paths)
{
	cJSON *v = parse_ok("{\"s\":\"x\",\"i\":42,\"f\":1.5,\"b\":true,\"o\":{},\"a\":[],"
	    "\"n\":null,\"big\":1e300,\"neg\":-7}");
	struct llmd_err e = LLMD_ERR_INIT;
	const char *s = NULL;
	int64_t i = 0;
	double d = 0;
	int b = 0;
	const cJSON *o = NULL;

	cr_assert_eq(json_get_str(v, "s", &s, 1, &e), 0);
	cr_assert_str_eq(s, "x");
	cr_assert_eq(json_get_int64(v, "i", &i, 1, &e), 0);
	cr_assert_eq(i, 42);
	cr_assert_eq(json_get_int64(v, "neg", &i, 1, &e), 0);
	cr_assert_eq(i, -7);
	cr_assert_eq(json_get_double(v, "f", &d, 1, &e), 0);
	cr_assert_eq(d, 1.5);
	cr_assert_eq(json_get_bool(v, "b", &b, 1, &e), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(json_get_object(v, "o", &o, 1, &e), 0);
	cr_assert_eq(json_get_array(v, "a", &o, 1, &e), 0);

	cr_assert_eq(json_get_str(v, "i", &s, 1, &e), -EINVAL);
	cr_assert_str_eq(e.field, "i");
	cr_assert_str_eq(e.msg, "must be a string");
	cr_assert_eq(json_get_int64(v, "f", &i, 1, &e), -EINVAL);
	cr_assert_str_eq(e.msg, "must be an integer");
	cr_assert_eq(json_get_int64(v, "big", &i, 1, &e), -ERANGE);
	cr_assert_eq(json_get_int64_range(v, "i", 0, 10, &i, 1, &e), -ERANGE);
	cr_assert_str_eq(e.msg, "must be between 0 and 10");
	cr_assert_eq(json_get_bool(v, "s", &b, 1, &e), -EINVAL);
	cr_assert_eq(json_get_object(v, "a", &o, 1, &e), -EINVAL);
	cr_assert_eq(json_get_array(v, "o", &o, 1, &e), -EINVAL);

	/* missing: -ENOENT when required, else 0 with the default untouched */
	cr_assert_eq(json_get_str(v, "nope", &s, 1, &e), -ENOENT);
	cr_assert_str_eq(e.field, "nope");
	cr_assert_str_eq(e.msg, "is required");
	i = 99;
	cr_assert_eq(json_get_int64(v, "nope", &i, 0, &e), 0);
	cr_assert_eq(i, 99);
	cr_assert_eq(json_get_int64(v, "n", &i, 0, &e), 0);
	cr_assert_eq(i, 99);
	cr_assert_eq(json_get_int64(v, "n", &i, 1, &e), -ENOENT);
	cJSON_Delete(v);
}

/* A nested validator in the style the daemon will write. */
static int
check_container(const cJSON *c, struct llmd_err *e)
{
	const char *image;

	return json_get_str(c, "image", &image, 1, e);
}

static int
check_spec(const cJSON *spec, struct llmd_err *e)
{
	const cJSON *tmpl, *cs, *c;
	size_t i = 0;
	int rc;

	if ((rc = json_get_object(spec, "template", &tmpl, 1, e)) < 0)
		return rc;
	if ((rc = json_get_array(tmpl, "containers", &cs, 1, e)) < 0)
		return json_path_prefix(e, "template");
	cJSON_ArrayForEach(c, cs) {
		if ((rc = check_container(c, e)) < 0) {
			json_path_prefix_index(e, "containers", i);
			return json_path_prefix(e, "template");
		}
		i++;
	}
	return 0;
}

Test(json, nested_field_path)
{
	cJSON *v = parse_ok("{\"spec\":{\"template\":{\"containers\":[{\"image\":\"a\"},{\"image\":5}]}}}");
	struct llmd_err e = LLMD_ERR_INIT;
	const cJSON *spec;

	cr_assert_eq(json_get_object(v, "spec", &spec, 1, &e), 0);
	cr_assert_eq(check_spec(spec, &e), -EINVAL);
	cr_assert_eq(json_path_prefix(&e, "spec"), -EINVAL);
	cr_assert_str_eq(e.field, "spec.template.containers[1].image");
	cr_assert_str_eq(e.msg, "must be a string");
	cJSON_Delete(v);
}

Test(json, print_and_merge_patch)
{
	cJSON *v = parse_ok("{\"a\":{\"b\":1,\"c\":[1,2]},\"d\":\"x\"}");
	cJSON *p = parse_ok("{\"a\":{\"b\":null,\"e\":true},\"d\":{\"f\":2}}");
	struct buf b = BUF_INIT;

	json_print_compact(v, &b);
	cr_assert_str_eq(b.buf, "{\"a\":{\"b\":1,\"c\":[1,2]},\"d\":\"x\"}");
	buf_reset(&b);
	v = json_merge_patch(v, p);
	json_print_compact(v, &b);
	cr_assert_str_eq(b.buf, "{\"a\":{\"c\":[1,2],\"e\":true},\"d\":{\"f\":2}}");
	buf_reset(&b);
	json_print_pretty(p, &b);
	cr_assert_str_eq(b.buf, "{\n  \"a\": {\n    \"b\": null,\n    \"e\": true\n  },\n"
	    "  \"d\": {\n    \"f\": 2\n  }\n}\n");
	buf_release(&b);
	cJSON_Delete(v);
	cJSON_Delete(p);
}
