/*
 * engine/chat.c - builds the variables of a chat template render from an
 * OpenAI messages array and options, then renders (see chat.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/chat.h"
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

static int build_messages(const struct jinja_template *t, const cJSON *messages, cJSON *out,
    struct llmd_err *e)
{
	int keep_parts = jinja_iterates_over(t, "content");
	const cJSON *m;
	size_t i = 0;

	if (!cJSON_IsArray(messages))
		return err_set(e, -EINVAL, "messages", "must be an array");
	cJSON_ArrayForEach(m, messages) {
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		cJSON *copy;
		char field[64];

		snprintf(field, sizeof(field), "messages[%zu]", i);
		if (!cJSON_IsObject(m))
			return err_set(e, -EINVAL, field, "must be an object");
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role")))
			return err_set(e, -EINVAL, field, "needs a string \"role\"");
		copy = cJSON_Duplicate(m, 1);
		if (!copy)
			return err_set(e, -ENOMEM, field, "out of memory");
		cJSON_AddItemToArray(out, copy);
		if (cJSON_IsArray(content) && !keep_parts) {
			struct buf b = BUF_INIT;
			int rc = join_parts(content, i, &b, e);

			if (rc == 0)
				cJSON_ReplaceItemInObjectCaseSensitive(copy, "content",
				    cJSON_CreateString(b.buf));
			buf_release(&b);
			if (rc < 0)
				return rc;
		}
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
