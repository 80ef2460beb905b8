/*
 * tests/unit/test-jinja.c - the Jinja-subset interpreter (engine/jinja*.c)
 * and chat_render() (engine/chat.c): syntax, whitespace control as
 * transformers configures it, Jinja2 semantics, filters/tests/methods,
 * errors with line:col, and the limits that stop hostile templates.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/chat.h"
#include "engine/jinja.h"

static struct llmd_err last_err;

/* Renders src with vars (JSON text or NULL); returns the output (caller
 * frees) or NULL with last_err set and *rc the error code. */
static char *render_lim(const char *src, const char *vars, const struct jinja_limits *lim, int *rc)
{
	struct jinja_template *t = NULL;
	struct buf out = BUF_INIT;
	cJSON *v = vars ? cJSON_Parse(vars) : NULL;
	int r;

	err_clear(&last_err);
	if (vars)
		cr_assert_not_null(v, "bad test JSON: %s", vars);
	r = jinja_parse(src, strlen(src), &t, &last_err);
	if (r == 0) {
		r = jinja_render(t, v, lim, &out, &last_err);
		jinja_free(t);
	}
	cJSON_Delete(v);
	if (rc)
		*rc = r;
	if (r < 0) {
		cr_assert_eq(out.len, 0, "output left behind on failure");
		buf_release(&out);
		return NULL;
	}
	return buf_detach(&out, NULL);
}

static char *render(const char *src, const char *vars)
{
	return render_lim(src, vars, NULL, NULL);
}

#define EXPECT(src, vars, want) do { \
	char *got_ = render(src, vars); \
	cr_assert_not_null(got_, "%s: failed: %s: %s", src, last_err.field, last_err.msg); \
	cr_expect_str_eq(got_, want, "%s", src); \
	free(got_); \
} while (0)

#define EXPECT_FAIL(src, vars, code, fld, msgpart) do { \
	int rc_; \
	char *got_ = render_lim(src, vars, NULL, &rc_); \
	cr_assert_null(got_, "%s: rendered %s", src, got_ ? got_ : ""); \
	cr_expect_eq(rc_, code, "%s: rc %d", src, rc_); \
	cr_expect_str_eq(last_err.field, fld, "%s", src); \
	cr_expect(strstr(last_err.msg, msgpart) != NULL, "%s: message '%s' lacks '%s'", src, \
	    last_err.msg, msgpart); \
} while (0)

Test(jinja, text_and_output)
{
	EXPECT("plain text", NULL, "plain text");
	EXPECT("{{ 'a' }}{{ \"b\" }}{{ 1 }}{{ 2.5 }}{{ true }}{{ none }}{{ x }}|", NULL,
	    "ab12.5TrueNone|");
	EXPECT("{{ 'tab\\there\\n\\u00e9\\x41' }}", NULL, "tab\there\n\xc3\xa9" "A");
	EXPECT("{{ 'it''s' }}", NULL, "its");
	EXPECT("{{ [1, 'a', none, True] }}", NULL, "[1, 'a', None, True]");
	EXPECT("{{ {'k': \"it's\"} }}", NULL, "{'k': \"it's\"}");
	EXPECT("{# comment #}x{# another\nline #}", NULL, "x");
	EXPECT("{% raw %}{{ not parsed }}{% endraw %}", NULL, "{{ not parsed }}");
	/* Jinja2 drops one trailing newline and turns \r\n and \r into \n */
	EXPECT("{{ 1 }}\n", NULL, "1");
	EXPECT("{{ 1 }}\n\n", NULL, "1\n");
	EXPECT("a\r\nb\rc\r\n", NULL, "a\nb\nc");
}

Test(jinja, whitespace_control)
{
	/* trim_blocks eats the newline after a block tag, lstrip_blocks the
	 * indentation before it; variable tags keep both */
	EXPECT("{% if true %}\n  yes\n{% endif %}\n", NULL, "  yes\n");
	EXPECT("a\n    {% if true %}b{% endif %}\n", NULL, "a\nb");
	EXPECT("a  {% if true %}b{% endif %}", NULL, "a  b");
	EXPECT("  {{ 'v' }}\n\n", NULL, "  v\n");
	EXPECT("a  {{- 'v' -}}  \n b", NULL, "avb");
	EXPECT("a\n  {%- if true -%}\n  b  \n{%- endif %}", NULL, "ab");
	EXPECT("x\n  {%+ if true %}y{% endif %}", NULL, "x\n  y");
	EXPECT("{% if true +%}\nz{% endif %}", NULL, "\nz");
	EXPECT("  {# c #}\nq", NULL, "q");
}

Test(jinja, for_loops)
{
	EXPECT("{% for x in [10, 20, 30] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
	    "{{ loop.revindex0 }}{{ loop.length }}{{ loop.first }}{{ loop.last }}:{{ x }} {% endfor %}",
	    NULL, "10323TrueFalse:10 21213FalseFalse:20 32103FalseTrue:30 ");
	EXPECT("{% for x in [] %}no{% else %}empty{% endfor %}", NULL, "empty");
	EXPECT("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "{\"d\":{\"a\":1,\"b\":[2]}}",
	    "a=1;b=[2];");
	EXPECT("{% for k in d %}{{ k }}{% endfor %}", "{\"d\":{\"x\":1,\"y\":2}}", "xy");
	EXPECT("{% for x in range(10) if x is odd %}{{ x }}{{ '/' ~ loop.length }} {% endfor %}", NULL,
	    "1/5 3/5 5/5 7/5 9/5 ");
	EXPECT("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
	    "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", NULL, "013");
	EXPECT("{% for c in 'h\xc3\xa9' %}[{{ c }}]{% endfor %}", NULL, "[h][\xc3\xa9]");
	EXPECT("{% for x in [1,2] %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}", NULL, "-2;1-;");
	EXPECT("{% for x in nothing %}x{% endfor %}ok", NULL, "ok");
}

Test(jinja, set_scoping_and_namespace)
{
	/* a set in a loop body stays in the iteration; namespaces carry state out */
	EXPECT("{% set x = 1 %}{% for i in [1,2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", NULL,
	    "231");
	EXPECT("{% set ns = namespace(n=0, s='') %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}"
	    "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}", NULL, "6 123");
	EXPECT("{% if true %}{% set y = 'in-if' %}{% endif %}{{ y }}", NULL, "in-if");
	EXPECT("{% set b %}block {{ 1 + 1 }}{% endset %}[{{ b }}]", NULL, "[block 2]");
	EXPECT_FAIL("{% set x = 1 %}{% set x.a = 2 %}", NULL, -EINVAL, "1:16", "not a namespace");
}

Test(jinja, expressions)
{
	EXPECT("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }}"
	    " {{ 2 ** 10 }} {{ 4 / 2 }}", NULL, "7 9 3 -4 2 3.5 1024 2.0");
	EXPECT("{{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1] + [2] }}", NULL,
	    "ab a1None ababab [1, 2]");
	EXPECT("{{ 1 < 2 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 'x' != 'x' }} {{ 2 >= 3 }}", NULL,
	    "True True True False False");
	EXPECT("{{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in d }} {{ 'z' not in d }}", "{\"d\":{\"k\":1}}",
	    "True True True True");
	EXPECT("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ not 0 }} {{ none or [] }}", NULL, "x y True []");
	EXPECT("{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'v' if 0 }}]", NULL,
	    "yes no []");
	EXPECT("{{ s[0] }}{{ s[-1] }} {{ s[1:] }} {{ s[:2] }} {{ s[::-1] }} {{ l[::2] }} {{ l[-2:] }}",
	    "{\"s\":\"h\xc3\xa9llo\",\"l\":[1,2,3,4,5]}",
	    "ho \xc3\xa9llo h\xc3\xa9 oll\xc3\xa9h [1, 3, 5] [4, 5]");
	EXPECT("{{ m.role }}{{ m['role'] }}{{ l[0].a }}{{ l.0.a }}", "{\"m\":{\"role\":\"u\"},\"l\":[{\"a\":7}]}",
	    "uu77");
	EXPECT("{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 100.0 }} {{ -0.5 }}", NULL,
	    "0.30000000000000004 1e+20 1.5e-07 100.0 -0.5");
	EXPECT("{{ messages|length - 1 }}", "{\"messages\":[1,2,3]}", "2");
	EXPECT("{{ not x is defined }} {{ x is not defined }}", NULL, "True True");
}

Test(jinja, filters)
{
	EXPECT("[{{ '  a b \\n'|trim }}] {{ 'AbC'|lower }}{{ 'AbC'|upper }} {{ 'hello world'|title }}"
	    " {{ 'hELLO'|capitalize }}", NULL, "[a b] abcABC Hello World Hello");
	EXPECT("{{ 'h\xc3\xa9'|length }} {{ [1,2]|length }} {{ d|length }} {{ d|count }}",
	    "{\"d\":{\"a\":1}}", "2 2 1 1");
	EXPECT("{{ [1,'a']|join(', ') }} {{ x|default('dflt') }} {{ ''|default('e', true) }}"
	    " {{ 0|default(5) }}", NULL, "1, a dflt e 0");
	EXPECT("{{ [3,1,2]|first }}{{ [3,1,2]|last }} {{ [1,2,3]|reverse|list }} {{ 'abc'|reverse }}",
	    NULL, "32 [3, 2, 1] cba");
	EXPECT("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='c')|join }}"
	    "{{ msgs|rejectattr('role', 'equalto', 'user')|list|length }}"
	    "{{ msgs|selectattr('x', 'undefined')|list|length }}",
	    "{\"msgs\":[{\"role\":\"user\",\"c\":\"a\"},{\"role\":\"bot\",\"c\":\"b\"},"
	    "{\"role\":\"user\",\"c\":\"c\"}]}", "ac13");
	EXPECT("{{ [1,2,3,4]|select('even')|list }} {{ ['a','b']|map('upper')|list }}", NULL,
	    "[2, 4] ['A', 'B']");
	EXPECT("{{ d|items|list }} {{ '42'|int + 1 }} {{ 'x'|int }} {{ 3|float }} {{ 5|string ~ 'x' }}",
	    "{\"d\":{\"a\":1}}", "[['a', 1]] 43 0 3.0 5x");
	EXPECT("{{ 'a\\nb'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}", NULL, "a\n  b|  a\n  b");
	EXPECT("{{ 'aXbX'|replace('X', '-') }} {{ -3|abs }}", NULL, "a-b- 3");
	EXPECT("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A']|sort(case_sensitive=true) }}"
	    " {{ [1, 3, 2]|sort(reverse=true) }} {{ l|sort(attribute='n')|map(attribute='n')|list }}",
	    "{\"l\":[{\"n\":2},{\"n\":1}]}", "[1, 2, 3] ['A', 'b', 'c'] ['A', 'b'] [3, 2, 1] [1, 2]");
	EXPECT("{{ ['a', 'A', 'b', 'a']|unique|list }} {{ [4, 2, 9]|min }} {{ [4, 2, 9]|max }}"
	    " {{ [1, 2, 3]|sum }} {{ [1, 2.5]|sum }} {{ 2.567|round(2) }} {{ 2.5|round(method='floor') }}"
	    " {{ d|dictsort }}", "{\"d\":{\"b\":1,\"a\":2}}",
	    "['a', 'b'] 2 9 6 3.5 2.57 2.0 [['a', 2], ['b', 1]]");
	EXPECT_FAIL("{{ [1, 'a']|sort }}", NULL, -EINVAL, "1:12", "cannot compare");
	/* Unicode case mapping, as Python's str methods */
	EXPECT("{{ '\xc3\x89T\xc3\x89'|lower }} {{ 'stra\xc3\x9f" "e \xc3\xa9t\xc3\xa9'.upper() }}"
	    " {{ '\xc3\xa9" "cole ouverte'|title }}", NULL,
	    "\xc3\xa9t\xc3\xa9 STRASSE \xc3\x89T\xc3\x89 \xc3\x89" "cole Ouverte");
}

Test(jinja, tojson)
{
	/* json.dumps(ensure_ascii=False) as transformers' tojson */
	EXPECT("{{ v|tojson }}", "{\"v\":{\"name\":\"f\",\"args\":[1,2.5,true,null,\"\xc3\xa9\\\"\\n\"],\"e\":{}}}",
	    "{\"name\": \"f\", \"args\": [1, 2.5, true, null, \"\xc3\xa9\\\"\\n\"], \"e\": {}}");
	EXPECT("{{ v|tojson(indent=2) }}", "{\"v\":{\"a\":[1,{\"b\":null}],\"c\":[],\"d\":{}}}",
	    "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": [],\n  \"d\": {}\n}");
	EXPECT("{{ '\xc3\xa9\xf0\x9f\xa6\x99'|tojson(ensure_ascii=true) }}", NULL,
	    "\"\\u00e9\\ud83e\\udd99\"");
	EXPECT("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}", NULL, "{\"a\": 2, \"b\": 1}");
	EXPECT("{{ dict(call_id='x', n=1)|tojson }}", NULL, "{\"call_id\": \"x\", \"n\": 1}");
	EXPECT("{{ {'a': [1, 2]}|tojson(separators=(',', ':')) }}", NULL, "{\"a\":[1,2]}");
	EXPECT_FAIL("{{ x|tojson }}", NULL, -EINVAL, "1:5", "cannot serialize");
}

Test(jinja, string_and_dict_methods)
{
	EXPECT("{{ s.startswith('<a') }}{{ s.endswith('b>') }}{{ s.startswith(['x', '<']) }}",
	    "{\"s\":\"<a b>\"}", "TrueTrueTrue");
	EXPECT("[{{ '\\n x \\n'.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\nq'.lstrip('\\n') }}]"
	    "[{{ 'q  '.rstrip() }}]", NULL, "[x][a][q][q]");
	EXPECT("{{ 'a</think>b</think>c'.split('</think>')[-1] }} {{ ' a  b '.split() }}"
	    " {{ 'a,b,c'.split(',', 1) }}", NULL, "c ['a', 'b'] ['a', 'b,c']");
	EXPECT("{{ 'aaa'.replace('a', 'b', 2) }} {{ 'Hi'.upper() }}{{ 'Hi'.lower() }} {{ 'abc'.find('c') }}",
	    NULL, "bba HIhi 2");
	EXPECT("{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }} {{ d.keys()|list }}"
	    " {{ d.values()|list }}", "{\"d\":{\"a\":1}}", "1 None 0 ['a'] [1]");
	EXPECT("{{ '-'.join(['a', 'b']) }}", NULL, "a-b");
	EXPECT("{{ 'a/b/c'.rfind('/') }} {{ 'x\\ny\\r\\nz'.splitlines() }} {{ '123'.isdigit() }}"
	    "{{ 'ab1'.isalpha() }}{{ 'ab1'.isalnum() }}{{ ' '.isspace() }}{{ ''.isdigit() }}", NULL,
	    "3 ['x', 'y', 'z'] TrueFalseTrueTrueFalse");
}

Test(jinja, tests)
{
	EXPECT("{{ x is defined }}{{ none is none }}{{ 's' is string }}{{ d is mapping }}"
	    "{{ [] is iterable }}{{ 3 is number }}{{ 3 is integer }}{{ 3.0 is float }}"
	    "{{ false is false }}{{ 0 is false }}{{ true is true }}{{ 4 is divisibleby 2 }}"
	    "{{ 'a' is in ['a'] }}{{ 1 is eq 1 }}{{ 'ab' is lower }}", "{\"d\":{}}",
	    "FalseTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueTrue");
}

Test(jinja, macros)
{
	EXPECT("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
	    "{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}", NULL,
	    "Hi a! Hi b? Hi c.");
	EXPECT("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}",
	    NULL, "321");
}

Test(jinja, undefined_and_runtime_errors)
{
	EXPECT("[{{ missing }}][{{ d.missing }}][{{ d['missing'] }}][{{ missing|length }}]",
	    "{\"d\":{}}", "[][][][0]");
	EXPECT_FAIL("line1\n  {{ missing.attr }}", NULL, -EINVAL, "2:13", "'missing' is undefined");
	EXPECT_FAIL("{{ 1 + 'a' }}", NULL, -EINVAL, "1:6", "unsupported operand");
	EXPECT_FAIL("{{ 1 // 0 }}", NULL, -EDOM, "1:6", "division by zero");
	EXPECT_FAIL("{{ x|nosuchfilter }}", NULL, -EINVAL, "1:5", "no filter named 'nosuchfilter'");
	EXPECT_FAIL("{{ nosuchfunc() }}", NULL, -EINVAL, "1:14", "'nosuchfunc' is undefined");
	EXPECT_FAIL("{% for m in messages %}{% if m.role != 'user' %}"
	    "{{ raise_exception('Only user roles are supported!') }}{% endif %}{% endfor %}",
	    "{\"messages\":[{\"role\":\"user\"},{\"role\":\"system\"}]}", -EINVAL, "1:67",
	    "Only user roles are supported!");
	cr_expect_str_eq(last_err.msg, "Only user roles are supported!");
}

Test(jinja, syntax_errors_at_load)
{
	struct jinja_template *t = NULL;
	static const struct {
		const char *src, *field, *msg;
	} cases[] = {
		{ "{{ 1 + }}", "1:8", "unexpected '}}'" },
		{ "ok\n{% if x %}never closed", "2:1", "unclosed 'if'" },
		{ "{% endfor %}", "1:4", "unknown or unexpected tag" },
		{ "{% frobnicate %}", "1:4", "unknown or unexpected tag" },
		{ "a\nb {{ 'unterminated }}", "2:6", "unterminated string" },
		{ "{{ x", "1:1", "unclosed '{{'" },
		{ "{# never", "1:1", "unclosed comment" },
		{ "{% for x in y %}{% endif %}", "1:20", "unknown or unexpected tag" },
		{ "{{ a b }}", "1:6", "expected '}}'" },
		{ "{% set = 1 %}", "1:8", "expected a name" },
		{ "{{ x | }}", "1:8", "expected a name" },
		{ "{{ f(a=1, 2) }}", "1:11", "positional argument after keyword" },
		{ "{{ @ }}", "1:4", "unexpected character" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct llmd_err e = LLMD_ERR_INIT;

		cr_expect_eq(jinja_parse(cases[i].src, strlen(cases[i].src), &t, &e), -EINVAL, "%s",
		    cases[i].src);
		cr_expect_str_eq(e.field, cases[i].field, "%s: %s", cases[i].src, e.msg);
		cr_expect(strstr(e.msg, cases[i].msg) != NULL, "%s: '%s'", cases[i].src, e.msg);
	}
}

Test(jinja, limits_stop_hostile_templates)
{
	struct jinja_limits lim = JINJA_LIMITS_DEFAULT;
	struct jinja_template *t = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	char *deep;
	int rc;
	size_t i;

	/* unbounded recursion */
	cr_expect_null(render_lim("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", NULL, NULL, &rc));
	cr_expect_eq(rc, -ELOOP);
	/* too many iterations */
	lim.max_iterations = 1000;
	cr_expect_null(render_lim("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}"
	    "{% endfor %}", NULL, &lim, &rc));
	cr_expect_eq(rc, -ELOOP);
	cr_expect(strstr(last_err.msg, "iterations") != NULL, "%s", last_err.msg);
	/* output size */
	lim = (struct jinja_limits)JINJA_LIMITS_DEFAULT;
	lim.max_output = 1000;
	cr_expect_null(render_lim("{% for i in range(500) %}xyz{% endfor %}", NULL, &lim, &rc));
	cr_expect_eq(rc, -E2BIG);
	/* memory: a huge string */
	cr_expect_null(render_lim("{% set s = 'x' * 1000000000 %}", NULL, NULL, &rc));
	cr_expect_eq(rc, -E2BIG);
	/* doubling strings */
	lim = (struct jinja_limits)JINJA_LIMITS_DEFAULT;
	lim.max_memory = 1u << 20;
	cr_expect_null(render_lim("{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
	    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL, &lim, &rc));
	cr_expect_eq(rc, -E2BIG);
	/* deep nesting is a syntax error, not a stack overflow */
	deep = malloc(200001);
	for (i = 0; i < 100000; i++)
		deep[i] = '(';
	for (; i < 200000; i++)
		deep[i] = ')';
	deep[i] = '\0';
	{
		char *src = malloc(200010);

		strcpy(src, "{{ ");
		strcat(src, deep);
		strcat(src, " }}");
		cr_expect_eq(jinja_parse(src, strlen(src), &t, &e), -EINVAL);
		cr_expect(strstr(e.msg, "nesting too deep") != NULL, "%s", e.msg);
		free(src);
	}
	free(deep);
}

Test(jinja, iterates_over_content)
{
	struct jinja_template *t = NULL;
	const char *a = "{% for m in messages %}{% for p in m['content'] %}{{ p.text }}{% endfor %}{% endfor %}";
	const char *b = "{% for m in messages %}{{ m.content }}{% endfor %}";

	cr_assert_eq(jinja_parse(a, strlen(a), &t, NULL), 0);
	cr_expect_eq(jinja_iterates_over(t, "content"), 1);
	jinja_free(t);
	cr_assert_eq(jinja_parse(b, strlen(b), &t, NULL), 0);
	cr_expect_eq(jinja_iterates_over(t, "content"), 0);
	jinja_free(t);
}

static const char CHATML[] =
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    "{% if enable_thinking is defined and enable_thinking is false %}<nothink>{% endif %}"
    "{{ tools is none }}{{ bos_token }}";

static char *chat(const char *tpl, const char *messages, const char *vars, int *rc)
{
	struct jinja_template *t = NULL;
	struct buf out = BUF_INIT;
	cJSON *m = cJSON_Parse(messages), *v = vars ? cJSON_Parse(vars) : NULL;

	err_clear(&last_err);
	cr_assert_eq(jinja_parse(tpl, strlen(tpl), &t, &last_err), 0, "%s", last_err.msg);
	*rc = chat_render(t, m, v, &out, &last_err);
	jinja_free(t);
	cJSON_Delete(m);
	cJSON_Delete(v);
	if (*rc < 0) {
		buf_release(&out);
		return NULL;
	}
	return buf_detach(&out, NULL);
}

Test(chat, renders_messages_and_options)
{
	int rc;
	char *s = chat(CHATML, "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":"
	    "[{\"type\":\"text\",\"text\":\"p1\"},{\"type\":\"text\",\"text\":\"p2\"}]}]",
	    "{\"add_generation_prompt\":true,\"bos_token\":\"<s>\","
	    "\"chat_template_kwargs\":{\"enable_thinking\":false}}", &rc);

	cr_assert_not_null(s, "%s: %s", last_err.field, last_err.msg);
	cr_expect_str_eq(s, "<|system|>S\n<|user|>p1\np2\n<|assistant|><nothink>True<s>");
	free(s);
	s = chat(CHATML, "[{\"role\":\"user\",\"content\":\"hi\"}]", NULL, &rc);
	cr_assert_not_null(s);
	cr_expect_str_eq(s, "<|user|>hi\nTrue");
	free(s);
}

Test(chat, keeps_part_lists_for_templates_that_iterate_content)
{
	const char *tpl = "{% for m in messages %}{% for p in m.content %}[{{ p.type }}:{{ p.text }}]"
	    "{% endfor %}{% endfor %}";
	int rc;
	char *s = chat(tpl, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]}]", NULL, &rc);

	cr_assert_not_null(s, "%s", last_err.msg);
	cr_expect_str_eq(s, "[text:a]");
	free(s);
}

Test(chat, prepares_messages_as_vllm)
{
	const char *tpl = "{% for m in messages %}[{{ m.content }}]{% for c in m.tool_calls or [] %}"
	    "{{ c.function.arguments is mapping }}{{ c.function.arguments|tojson }}{% endfor %}{% endfor %}";
	const char *parts_tpl = "{% for m in messages %}{% for p in m['content'] %}<{{ p.text }}>{% endfor %}"
	    "{{ m.content|length }};{% endfor %}";
	int rc;
	char *s;

	/* null content is "", string arguments become objects */
	s = chat(tpl, "[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"a\","
	    "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\": [1, 2.5]}\"}}]},"
	    "{\"role\":\"user\"}]", NULL, &rc);
	cr_assert_not_null(s, "%s: %s", last_err.field, last_err.msg);
	cr_expect_str_eq(s, "[]True{\"x\": [1, 2.5]}[]");
	free(s);
	/* templates that walk content get part lists */
	s = chat(parts_tpl, "[{\"role\":\"user\",\"content\":\"plain\"},{\"role\":\"assistant\","
	    "\"content\":null}]", NULL, &rc);
	cr_assert_not_null(s, "%s: %s", last_err.field, last_err.msg);
	cr_expect_str_eq(s, "<plain>1;0;");
	free(s);
	cr_expect_null(chat(tpl, "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":"
	    "{\"name\":\"f\",\"arguments\":\"{oops\"}}]}]", NULL, &rc));
	cr_expect_eq(rc, -EINVAL);
	cr_expect_str_eq(last_err.field, "messages[0].tool_calls[0].function.arguments");
	cr_expect_null(chat(tpl, "[{\"role\":\"user\",\"content\":42}]", NULL, &rc));
	cr_expect_str_eq(last_err.field, "messages[0].content");
}

Test(chat, rejects_bad_input)
{
	int rc;

	cr_expect_null(chat(CHATML, "{\"role\":\"user\"}", NULL, &rc));
	cr_expect_eq(rc, -EINVAL);
	cr_expect_str_eq(last_err.field, "messages");
	cr_expect_null(chat(CHATML, "[{\"role\":\"user\",\"content\":\"a\"},{\"content\":\"b\"}]", NULL, &rc));
	cr_expect_str_eq(last_err.field, "messages[1]");
	cr_expect_null(chat(CHATML, "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]", NULL, &rc));
	cr_expect_eq(rc, -EINVAL);
	cr_expect_str_eq(last_err.field, "messages[0].content[0]");
	cr_expect(strstr(last_err.msg, "image_url") != NULL, "%s", last_err.msg);
	cr_expect_null(chat(CHATML, "[]", "{\"chat_template_kwargs\":[1]}", &rc));
	cr_expect_str_eq(last_err.field, "chat_template_kwargs");
}

static char model_dir[64];

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", model_dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void make_model_dir(void)
{
	strcpy(model_dir, "/tmp/llmd-test-jinja-XXXXXX");
	cr_assert_not_null(mkdtemp(model_dir));
}

static void remove_model_dir(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/tokenizer_config.json", model_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/chat_template.jinja", model_dir);
	unlink(path);
	rmdir(model_dir);
}

static char *template_render(const struct chat_template *ct, const char *messages, const char *vars)
{
	struct buf out = BUF_INIT;
	cJSON *m = cJSON_Parse(messages), *v = vars ? cJSON_Parse(vars) : NULL;
	int rc;

	err_clear(&last_err);
	rc = chat_template_render(ct, m, v, &out, &last_err);
	cJSON_Delete(m);
	cJSON_Delete(v);
	if (rc < 0) {
		buf_release(&out);
		return NULL;
	}
	return buf_detach(&out, NULL);
}

Test(chat_template, loads_tokenizer_config_and_picks_tool_use, .init = make_model_dir,
    .fini = remove_model_dir)
{
	struct chat_template *ct = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	char *s;

	write_file("tokenizer_config.json", "{\"bos_token\": {\"content\": \"<B>\", \"lstrip\": false},"
	    " \"eos_token\": \"<E>\", \"chat_template\": ["
	    "{\"name\": \"default\", \"template\": \"{{ bos_token }}D:{{ messages[0].content }}{{ eos_token }}\"},"
	    "{\"name\": \"tool_use\", \"template\": \"T:{{ tools|length }}\"},"
	    "{\"name\": \"rag\", \"template\": \"{{ unused\"}]}");
	cr_assert_eq(chat_template_load(model_dir, &ct, &e), 0, "%s: %s", e.field, e.msg);
	cr_expect_str_eq(ct->bos_token, "<B>");
	s = template_render(ct, "[{\"role\":\"user\",\"content\":\"x\"}]", NULL);
	cr_expect_str_eq(s, "<B>D:x<E>");
	free(s);
	s = template_render(ct, "[]", "{\"tools\":[{\"type\":\"function\"}]}");
	cr_expect_str_eq(s, "T:1");
	free(s);
	s = template_render(ct, "[{\"role\":\"user\",\"content\":\"x\"}]", "{\"tools\":[],\"bos_token\":\"\"}");
	cr_expect_str_eq(s, "D:x<E>");
	free(s);
	chat_template_free(ct);
}

Test(chat_template, prefers_chat_template_jinja, .init = make_model_dir, .fini = remove_model_dir)
{
	struct chat_template *ct = NULL;
	char *s;

	write_file("tokenizer_config.json", "{\"chat_template\": \"config\"}");
	write_file("chat_template.jinja", "{% for m in messages %}file:{{ m.content }}{% endfor %}\n");
	cr_assert_eq(chat_template_load(model_dir, &ct, NULL), 0);
	s = template_render(ct, "[{\"role\":\"user\",\"content\":\"y\"}]", NULL);
	cr_expect_str_eq(s, "file:y");
	free(s);
	chat_template_free(ct);
}

Test(chat_template, errors, .init = make_model_dir, .fini = remove_model_dir)
{
	struct chat_template *ct = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_expect_eq(chat_template_load(model_dir, &ct, &e), -ENOENT);
	write_file("tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
	cr_expect_eq(chat_template_load(model_dir, &ct, &e), -ENOENT);
	write_file("tokenizer_config.json", "{\"chat_template\": \"ok\\n{% if x %}\"}");
	cr_expect_eq(chat_template_load(model_dir, &ct, &e), -EINVAL);
	cr_expect_str_eq(e.field, "tokenizer_config.json:2:1");
	cr_expect(strstr(e.msg, "unclosed 'if'") != NULL, "%s", e.msg);
	write_file("tokenizer_config.json", "{\"chat_template\": ");
	cr_expect_eq(chat_template_load(model_dir, &ct, &e), -EINVAL);
	write_file("chat_template.jinja", "{{ 1 +");
	cr_expect_eq(chat_template_load(model_dir, &ct, &e), -EINVAL);
}

Test(chat_template, shipped_qwen3)
{
	struct chat_template *ct = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	char dir[512];
	char *s;
	const char *src = getenv("top_srcdir");

	snprintf(dir, sizeof(dir), "%s/etc/tokenizers/qwen3", src ? src : "..");
	cr_assert_eq(chat_template_load(dir, &ct, &e), 0, "%s: %s", e.field, e.msg);
	s = template_render(ct, "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Hi\"},"
	    "{\"role\":\"assistant\",\"content\":\"<think>\\nr\\n</think>\\n\\nA\"},{\"role\":\"user\",\"content\":\"Q\"}]",
	    "{\"add_generation_prompt\":true,\"chat_template_kwargs\":{\"enable_thinking\":false}}");
	cr_assert_not_null(s, "%s: %s", last_err.field, last_err.msg);
	cr_expect_str_eq(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
	    "<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
	    "<|im_start|>assistant\n<think>\n\n</think>\n\n");
	free(s);
	chat_template_free(ct);
}
