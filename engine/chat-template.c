/*
 * engine/chat-template.c - finds and compiles a model's chat template
 * (chat_template.jinja or tokenizer_config.json), keeps its special tokens,
 * and renders with the right template for the request (see chat.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"
#include "lib/json.h"
#include "lib/util.h"

/* Largest template file or tokenizer_config.json read. */
#define CHAT_FILE_MAX (64u << 20)

static int read_file(const char *path, struct buf *b, struct llmd_err *e)
{
	FILE *f = fopen(path, "rb");
	char tmp[65536];
	size_t n;

	if (!f)
		return err_set(e, -errno, path, "cannot open: %s", strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		if (b->len + n > CHAT_FILE_MAX) {
			fclose(f);
			return err_set(e, -EFBIG, path, "larger than %u bytes", CHAT_FILE_MAX);
		}
		buf_add(b, tmp, n);
	}
	if (ferror(f)) {
		fclose(f);
		return err_set(e, -EIO, path, "read error");
	}
	fclose(f);
	return 0;
}

static int compile(const char *src, size_t len, const char *where, struct jinja_template **out,
    struct llmd_err *e)
{
	int rc = jinja_parse(src, len, out, e);

	if (rc < 0 && e) {
		char field[sizeof(e->field)];

		snprintf(field, sizeof(field), "%s:%s", where, e->field);
		snprintf(e->field, sizeof(e->field), "%s", field);
	}
	return rc;
}

/* A special token: a string or an AddedToken object {"content": ...}. */
static char *token_text(const cJSON *cfg, const char *key)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, key);

	if (cJSON_IsObject(t))
		t = cJSON_GetObjectItemCaseSensitive(t, "content");
	return cJSON_IsString(t) ? xstrdup(t->valuestring) : NULL;
}

static int load_from_config(const cJSON *ct, const char *where, struct chat_template *c,
    struct llmd_err *e)
{
	const cJSON *item;
	int rc;

	if (cJSON_IsString(ct))
		return compile(ct->valuestring, strlen(ct->valuestring), where, &c->tmpl, e);
	if (!cJSON_IsArray(ct))
		return err_set(e, -EINVAL, where, "chat_template must be a string or a list");
	cJSON_ArrayForEach(item, ct) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
		const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(item, "template");
		struct jinja_template **slot;

		if (!cJSON_IsString(name) || !cJSON_IsString(tpl))
			return err_set(e, -EINVAL, where,
			    "chat_template list entries need string \"name\" and \"template\"");
		if (!strcmp(name->valuestring, "default"))
			slot = &c->tmpl;
		else if (!strcmp(name->valuestring, "tool_use"))
			slot = &c->tool_use;
		else
			continue;
		if (*slot)
			return err_set(e, -EINVAL, where, "chat_template \"%s\" given twice",
			    name->valuestring);
		rc = compile(tpl->valuestring, strlen(tpl->valuestring), where, slot, e);
		if (rc < 0)
			return rc;
	}
	if (!c->tmpl)
		return err_set(e, -ENOENT, where, "no \"default\" chat template");
	return 0;
}

int chat_template_load(const char *model_dir, struct chat_template **out, struct llmd_err *e)
{
	struct chat_template *c = xcalloc(1, sizeof(*c));
	struct buf path = BUF_INIT, text = BUF_INIT;
	cJSON *cfg = NULL;
	int rc, have_jinja;

	buf_addf(&path, "%s/tokenizer_config.json", model_dir);
	rc = read_file(path.buf, &text, NULL);
	if (rc == 0) {
		rc = json_parse_named(text.buf, text.len, "tokenizer_config.json", &cfg, e);
		if (rc < 0)
			goto out;
		c->bos_token = token_text(cfg, "bos_token");
		c->eos_token = token_text(cfg, "eos_token");
	} else if (rc != -ENOENT) {
		rc = err_set(e, rc, path.buf, "cannot read: %s", strerror(-rc));
		goto out;
	}
	buf_reset(&path);
	buf_reset(&text);
	buf_addf(&path, "%s/chat_template.jinja", model_dir);
	rc = read_file(path.buf, &text, NULL);
	have_jinja = rc == 0;
	if (have_jinja) {
		rc = compile(text.buf, text.len, "chat_template.jinja", &c->tmpl, e);
	} else if (rc != -ENOENT) {
		rc = err_set(e, rc, path.buf, "cannot read: %s", strerror(-rc));
	} else if (cfg && cJSON_GetObjectItemCaseSensitive(cfg, "chat_template") &&
	    !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "chat_template"))) {
		rc = load_from_config(cJSON_GetObjectItemCaseSensitive(cfg, "chat_template"),
		    "tokenizer_config.json", c, e);
	} else {
		rc = err_set(e, -ENOENT, model_dir,
		    "the model has no chat template (chat_template.jinja or tokenizer_config.json)");
	}
out:
	cJSON_Delete(cfg);
	buf_release(&path);
	buf_release(&text);
	if (rc < 0) {
		chat_template_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void chat_template_free(struct chat_template *ct)
{
	if (!ct)
		return;
	jinja_free(ct->tmpl);
	jinja_free(ct->tool_use);
	free(ct->bos_token);
	free(ct->eos_token);
	free(ct);
}

int chat_template_render(const struct chat_template *ct, const cJSON *messages,
    const cJSON *extra_vars, struct buf *out, struct llmd_err *e)
{
	const cJSON *tools = cJSON_GetObjectItemCaseSensitive(extra_vars, "tools");
	const struct jinja_template *t = ct->tmpl;
	cJSON *vars;
	int rc;

	if (ct->tool_use && cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0)
		t = ct->tool_use;
	vars = extra_vars ? cJSON_Duplicate(extra_vars, 1) : cJSON_CreateObject();
	if (!vars)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	if (!cJSON_IsObject(vars)) {
		cJSON_Delete(vars);
		return err_set(e, -EINVAL, NULL, "chat template variables must be an object");
	}
	if (ct->bos_token && !cJSON_GetObjectItemCaseSensitive(vars, "bos_token"))
		cJSON_AddStringToObject(vars, "bos_token", ct->bos_token);
	if (ct->eos_token && !cJSON_GetObjectItemCaseSensitive(vars, "eos_token"))
		cJSON_AddStringToObject(vars, "eos_token", ct->eos_token);
	rc = chat_render(t, messages, vars, out, e);
	cJSON_Delete(vars);
	return rc;
}
