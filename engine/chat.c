/*
 * engine/chat.c - builds the variables of a chat template render from an
 * OpenAI messages array and options, then renders (see chat.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/chat.h"
#include "lib/json.h"
#include "lib/util.h"

/* Joins the text parts of a content list; -EINVAL on other part types. */
static int join_parts(const cJSON *parts, size_t mi, struct buf *b, struct llmd_err *e)
{
	const cJSON *p;
	char field[96];
	size_t i = 0;

	cJSON_ArrayForEach(p, parts) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
		const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");

		snprintf(field, sizeof(field), "messages[%zu].content[%zu]", mi, i);
		if (cJSON_IsString(p)) {
			text = p;
		} else if (!cJSON_IsObject(p) || !cJSON_IsString(type)) {
			return err_set(e, -EINVAL, field, "must be an object with a \"type\"");
		} else if (strcmp(type->valuestring, "text")) {
			return err_set(e, -EINVAL, field, "content part type \"%s\" is not supported",
			    type->valuestring);
		} else if (!cJSON_IsString(text)) {
			return err_set(e, -EINVAL, field, "a text part needs a string \"text\"");
		}
		if (i++)
			buf_addch(b, '\n');
		buf_adds(b, text->valuestring);
	}
	return 0;
}

static void set_member(cJSON *obj, const char *key, cJSON *v)
{
	if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v))
		cJSON_AddItemToObject(obj, key, v);
}

/*
 * Content as vLLM hands it to templates. "string" format: one string (text
 * parts joined with "\n", null or absent as ""). "openai" format, for
 * templates that iterate over content: a list of parts (a string becomes
 * one text part, null or absent an empty list).
 */
static int normalize_content(cJSON *msg, const cJSON *content, int openai, size_t mi,
    struct llmd_err *e)
{
	char field[64];

	snprintf(field, sizeof(field), "messages[%zu].content", mi);
	if (content && !cJSON_IsNull(content) && !cJSON_IsString(content) && !cJSON_IsArray(content))
		return err_set(e, -EINVAL, field, "must be a string, a list of parts or null");
	if (openai) {
		cJSON *parts, *p;

		if (cJSON_IsArray(content))
			return 0;
		parts = cJSON_CreateArray();
		if (cJSON_IsString(content)) {
			p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "type", "text");
			cJSON_AddStringToObject(p, "text", content->valuestring);
			cJSON_AddItemToArray(parts, p);
		}
		set_member(msg, "content", parts);
		return 0;
	}
	if (cJSON_IsString(content))
		return 0;
	if (cJSON_IsArray(content)) {
		struct buf b = BUF_INIT;
		int rc = join_parts(content, mi, &b, e);

		if (rc == 0)
			set_member(msg, "content", cJSON_CreateString(b.buf));
		buf_release(&b);
		return rc;
	}
	set_member(msg, "content", cJSON_CreateString(""));
	return 0;
}

/* OpenAI sends tool call arguments as a JSON string; templates expect the
 * object (vLLM parses them too). */
static int parse_tool_arguments(cJSON *msg, size_t mi, struct llmd_err *e)
{
	cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"), *call;
	size_t j = 0;

	if (!cJSON_IsArray(calls))
		return 0;
	cJSON_ArrayForEach(call, calls) {
		cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
		cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments"), *parsed = NULL;
		char field[96];

		snprintf(field, sizeof(field), "messages[%zu].tool_calls[%zu].function.arguments", mi, j++);
		if (!cJSON_IsString(args))
			continue;
		if (json_parse(args->valuestring, strlen(args->valuestring), &parsed, NULL) < 0)
			return err_set(e, -EINVAL, field, "is not valid JSON");
		set_member(fn, "arguments", parsed);
	}
	return 0;
}

static int build_messages(const struct jinja_template *t, const cJSON *messages, cJSON *out,
    struct llmd_err *e)
{
	int openai = jinja_iterates_over(t, "content");
	const cJSON *m;
	size_t i = 0;

	if (!cJSON_IsArray(messages))
		return err_set(e, -EINVAL, "messages", "must be an array");
	cJSON_ArrayForEach(m, messages) {
		cJSON *copy;
		char field[64];
		int rc;

		snprintf(field, sizeof(field), "messages[%zu]", i);
		if (!cJSON_IsObject(m))
			return err_set(e, -EINVAL, field, "must be an object");
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role")))
			return err_set(e, -EINVAL, field, "needs a string \"role\"");
		copy = cJSON_Duplicate(m, 1);
		if (!copy)
			return err_set(e, -ENOMEM, field, "out of memory");
		cJSON_AddItemToArray(out, copy);
		rc = normalize_content(copy, cJSON_GetObjectItemCaseSensitive(m, "content"), openai, i, e);
		if (rc == 0)
			rc = parse_tool_arguments(copy, i, e);
		if (rc < 0)
			return rc;
		i++;
	}
	return 0;
}

int chat_render(const struct jinja_template *t, const cJSON *messages, const cJSON *extra_vars,
    struct buf *out, struct llmd_err *e)
{
	cJSON *vars = cJSON_CreateObject(), *msgs = cJSON_CreateArray();
	const cJSON *c, *kwargs = NULL;
	int rc;

	cJSON_AddItemToObject(vars, "messages", msgs);
	rc = build_messages(t, messages, msgs, e);
	if (rc < 0)
		goto out;
	cJSON_AddItemToObject(vars, "add_generation_prompt", cJSON_CreateFalse());
	cJSON_AddItemToObject(vars, "tools", cJSON_CreateNull());
	if (extra_vars && !cJSON_IsObject(extra_vars)) {
		rc = err_set(e, -EINVAL, NULL, "chat template variables must be an object");
		goto out;
	}
	cJSON_ArrayForEach(c, extra_vars) {
		if (!strcmp(c->string, "messages"))
			continue;
		if (!strcmp(c->string, "chat_template_kwargs")) {
			kwargs = c;
			continue;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(vars, c->string);
		cJSON_AddItemToObject(vars, c->string, cJSON_Duplicate(c, 1));
	}
	if (kwargs && !cJSON_IsNull(kwargs)) {
		if (!cJSON_IsObject(kwargs)) {
			rc = err_set(e, -EINVAL, "chat_template_kwargs", "must be an object");
			goto out;
		}
		cJSON_ArrayForEach(c, kwargs) {
			if (!strcmp(c->string, "messages"))
				continue;
			cJSON_DeleteItemFromObjectCaseSensitive(vars, c->string);
			cJSON_AddItemToObject(vars, c->string, cJSON_Duplicate(c, 1));
		}
	}
	rc = jinja_render(t, vars, NULL, out, e);
out:
	cJSON_Delete(vars);
	return rc;
}
