/*
 * tests/unit/test-yaml.c - YAML streams to JSON: typing, multi-document,
 * anchors and their limits, and FILE:LINE:COL errors.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/json.h"
#include "lib/yaml.h"

static char *
compact(const cJSON *v)
{
	struct buf b = BUF_INIT;

	json_print_compact(v, &b);
	return buf_detach(&b, NULL);
}

static void
expect_one(const char *yaml, const char *json)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *v;
	char *s;

	cr_assert_eq(yaml_parse_one(yaml, strlen(yaml), "t.yaml", &v, &e), 0, "%s: %s",
	    e.field, e.msg);
	s = compact(v);
	cr_assert_str_eq(s, json);
	free(s);
	cJSON_Delete(v);
}

Test(yaml, scalars_core_schema)
{
	expect_one("a: null\nb: ~\nc:\nd: true\ne: False\nf: 42\ng: -0x10\nh: 0x1F\ni: 0o17\n"
	    "j: 017\nk: 1.5\nl: .5\nm: 1e3\nn: \"42\"\no: 'true'\np: yes\nq: !!str 7\n"
	    "r: |\n  12\ns: 1.2.3\nt: !!float 3\n",
	    "{\"a\":null,\"b\":null,\"c\":null,\"d\":true,\"e\":false,\"f\":42,\"g\":\"-0x10\","
	    "\"h\":31,\"i\":15,\"j\":17,\"k\":1.5,\"l\":0.5,\"m\":1000,\"n\":\"42\",\"o\":\"true\","
	    "\"p\":\"yes\",\"q\":\"7\",\"r\":\"12\\n\",\"s\":\"1.2.3\",\"t\":3}");
	expect_one("- 1\n- [a, {b: c}]\n- 3: x\n", "[1,[\"a\",{\"b\":\"c\"}],{\"3\":\"x\"}]");
}

Test(yaml, json_is_yaml)
{
	expect_one("{\"kind\": \"Pod\", \"spec\": {\"replicas\": 3, \"tags\": [\"a\", null]}}",
	    "{\"kind\":\"Pod\",\"spec\":{\"replicas\":3,\"tags\":[\"a\",null]}}");
}

Test(yaml, multi_document_skips_empty)
{
	const char *s = "---\na: 1\n---\n# only a comment\n---\n---\nb: [x]\n...\n---\n- 2\n";
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON **docs;
	size_t n;
	char *j;

	cr_assert_eq(yaml_parse_docs(s, strlen(s), "m.yaml", &docs, &n, &e), 0, "%s %s",
	    e.field, e.msg);
	cr_assert_eq(n, 3);
	j = compact(docs[1]);
	cr_assert_str_eq(j, "{\"b\":[\"x\"]}");
	free(j);
	yaml_docs_free(docs, n);

	cr_assert_eq(yaml_parse_docs("", 0, NULL, &docs, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(docs);
	cJSON *one;
	cr_assert_eq(yaml_parse_one("# x\n", 4, "c.yaml", &one, &e), -ENODATA);
	cr_assert_eq(yaml_parse_one(s, strlen(s), "c.yaml", &one, &e), -EINVAL);
	cr_assert(strstr(e.msg, "found 3") != NULL, "%s", e.msg);
}

Test(yaml, syntax_error_has_file_line_col)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const char *s = "a: 1\nb:\n  c: [1, 2\nd: 3\n";
	cJSON *v;

	cr_assert_eq(yaml_parse_one(s, strlen(s), "bad.yaml", &v, &e), -EINVAL);
	cr_assert(strncmp(e.field, "bad.yaml:", 9) == 0, "%s", e.field);
	cr_assert_str_eq(e.field, "bad.yaml:4:2", "%s %s", e.field, e.msg);

	s = "a: 1\n  b: 2\n";
	cr_assert_eq(yaml_parse_one(s, strlen(s), NULL, &v, &e), -EINVAL);
	cr_assert_str_eq(e.field, "2:4", "%s %s", e.field, e.msg);

	s = "a: 1\na: 2\n";
	cr_assert_eq(yaml_parse_one(s, strlen(s), "dup.yaml", &v, &e), -EINVAL);
	cr_assert_str_eq(e.field, "dup.yaml:2:4", "%s", e.field);
	cr_assert(strstr(e.msg, "duplicate") != NULL);

	s = "x: .inf\n";
	cr_assert_eq(yaml_parse_one(s, strlen(s), "f", &v, &e), -EINVAL);
	cr_assert_str_eq(e.field, "f:1:4");

	s = "x: \xff\n";
	cr_assert_eq(yaml_parse_one(s, strlen(s), "u", &v, &e), -EINVAL);
	cr_assert_str_eq(e.field, "u:1:4", "%s %s", e.field, e.msg);
}

Test(yaml, anchors_aliases_merge)
{
	expect_one("base: &b {image: x, port: 80}\nother: *b\nlist: &l [1, 2]\nl2: *l\n"
	    "m:\n  <<: *b\n  port: 81\ns: &s str\nt: *s\n",
	    "{\"base\":{\"image\":\"x\",\"port\":80},\"other\":{\"image\":\"x\",\"port\":80},"
	    "\"list\":[1,2],\"l2\":[1,2],\"m\":{\"port\":81,\"image\":\"x\"},\"s\":\"str\",\"t\":\"str\"}");
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *v;
	const char *s = "a: *nope\n";
	cr_assert_eq(yaml_parse_one(s, strlen(s), "a.yaml", &v, &e), -EINVAL);
	cr_assert(strstr(e.msg, "alias") != NULL);
	cr_assert_str_eq(e.field, "a.yaml:1:4");
}

Test(yaml, billion_laughs_is_refused)
{
	struct buf b = BUF_INIT;
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *v;

	buf_adds(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++)
		buf_addf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
		    i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	cr_assert_eq(yaml_parse_one(b.buf, b.len, "lol.yaml", &v, &e), -EINVAL);
	cr_assert(strstr(e.msg, "too large") != NULL, "%s", e.msg);
	buf_release(&b);
}

Test(yaml, depth_limit)
{
	struct buf b = BUF_INIT;
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *v;

	for (int i = 0; i < YAML_MAX_DEPTH + 1; i++)
		buf_addch(&b, '[');
	for (int i = 0; i < YAML_MAX_DEPTH + 1; i++)
		buf_addch(&b, ']');
	cr_assert_eq(yaml_parse_one(b.buf, b.len, "d.yaml", &v, &e), -EINVAL);
	cr_assert(strstr(e.msg, "nesting") != NULL, "%s", e.msg);
	buf_release(&b);
}

Test(yaml, emit_round_trips)
{
	const char *json = "{\"kind\":\"Pod\",\"s\":[\"true\",\"42\",\"\",\"null\",\"a: b\","
	    "\"x\\ny\\n\",\"-\",\"~\"],\"n\":{\"i\":3,\"f\":1.5,\"b\":false,\"z\":null,\"e\":{},"
	    "\"l\":[]},\"h\\u00e9\":\"\\u00e9t\\u00e9\"}";
	struct llmd_err e = LLMD_ERR_INIT;
	struct buf b = BUF_INIT;
	cJSON *v, *back;
	char *s1, *s2;

	cr_assert_eq(json_parse(json, strlen(json), &v, &e), 0, "%s", e.msg);
	cr_assert_eq(yaml_emit(v, &b, &e), 0, "%s", e.msg);
	cr_assert(strstr(b.buf, "kind: Pod\n") != NULL, "%s", b.buf);
	cr_assert(strstr(b.buf, "- \"true\"\n") != NULL, "%s", b.buf);
	cr_assert_eq(yaml_parse_one(b.buf, b.len, "emitted", &back, &e), 0, "%s %s\n%s",
	    e.field, e.msg, b.buf);
	s1 = compact(v);
	s2 = compact(back);
	cr_assert_str_eq(s1, s2, "%s", b.buf);
	free(s1);
	free(s2);
	cJSON_Delete(v);
	cJSON_Delete(back);
	buf_release(&b);
}

Test(yaml, large_mappings_keep_duplicate_and_merge_checks)
{
	struct buf b = BUF_INIT;
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *v;

	buf_adds(&b, "base: &b\n");
	for (int i = 0; i < 100; i++)
		buf_addf(&b, "  m%d: %d\n", i, i);
	buf_adds(&b, "top:\n  <<: *b\n");
	for (int i = 0; i < 100; i++)
		buf_addf(&b, "  k%d: %d\n", i, i);
	buf_adds(&b, "  m7: overridden\n");
	cr_assert_eq(yaml_parse_one(b.buf, b.len, "big.yaml", &v, &e), 0, "%s %s", e.field, e.msg);
	const cJSON *top = cJSON_GetObjectItem(v, "top");
	cr_assert_eq(cJSON_GetArraySize(top), 200);
	cr_assert_str_eq(cJSON_GetObjectItem(top, "m7")->valuestring, "overridden");
	cr_assert_eq(cJSON_GetObjectItem(top, "m8")->valuedouble, 8);
	cJSON_Delete(v);

	buf_adds(&b, "  k42: again\n");
	cr_assert_eq(yaml_parse_one(b.buf, b.len, "big.yaml", &v, &e), -EINVAL);
	cr_assert(strstr(e.msg, "duplicate mapping key \"k42\"") != NULL, "%s", e.msg);
	cr_assert_str_eq(e.field, "big.yaml:205:8", "%s", e.field);
	buf_release(&b);
}
