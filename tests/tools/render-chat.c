/*
 * tests/tools/render-chat.c - renders chat templates for the conformance
 * test: render-chat TEMPLATE CASES.json, where TEMPLATE is a .jinja file or
 * a tokenizer_config.json (its chat_template, bos_token and eos_token; a bare
 * template gets bos_token "<s>" and eos_token "</s>"), and
 * CASES.json an array of {"name", "messages", "vars"}. Prints a JSON array
 * with, per case, {"name", "output"} or {"name", "error"}.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/chat.h"
#include "engine/jinja.h"
#include "lib/buf.h"
#include "lib/err.h"

static int read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	char tmp[65536];
	size_t n;

	if (!f)
		return -errno;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(b, tmp, n);
	fclose(f);
	return 0;
}

/* Special tokens in tokenizer_config.json are strings or {"content": ...}. */
static void add_token(cJSON *vars, const cJSON *cfg, const char *key)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, key);

	if (cJSON_IsObject(t))
		t = cJSON_GetObjectItemCaseSensitive(t, "content");
	if (cJSON_IsString(t))
		cJSON_AddStringToObject(vars, key, t->valuestring);
}

int main(int argc, char **argv)
{
	struct buf tsrc = BUF_INIT, csrc = BUF_INIT, out = BUF_INIT;
	struct llmd_err e = LLMD_ERR_INIT;
	struct jinja_template *t = NULL;
	cJSON *cfg = NULL, *cases, *results, *c, *tokvars;
	const char *text;
	char msg[1024];
	size_t len;
	char *printed;

	if (argc != 3) {
		fprintf(stderr, "usage: render-chat TEMPLATE CASES.json\n");
		return 2;
	}
	if (read_file(argv[1], &tsrc) < 0 || read_file(argv[2], &csrc) < 0) {
		fprintf(stderr, "render-chat: cannot read inputs\n");
		return 2;
	}
	tokvars = cJSON_CreateObject();
	text = tsrc.buf;
	len = tsrc.len;
	if ((len = strlen(argv[1])) > 5 && !strcmp(argv[1] + len - 5, ".json")) {
		const cJSON *ct;

		cfg = cJSON_Parse(tsrc.buf);
		ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
		if (!cJSON_IsString(ct)) {
			fprintf(stderr, "render-chat: %s has no string chat_template\n", argv[1]);
			return 2;
		}
		text = ct->valuestring;
		add_token(tokvars, cfg, "bos_token");
		add_token(tokvars, cfg, "eos_token");
	} else {
		/* the conformance script gives bare templates the same tokens */
		cJSON_AddStringToObject(tokvars, "bos_token", "<s>");
		cJSON_AddStringToObject(tokvars, "eos_token", "</s>");
	}
	len = strlen(text);
	if (jinja_parse(text, len, &t, &e) < 0) {
		fprintf(stderr, "render-chat: %s: %s\n", argv[1], err_str(&e, msg, sizeof(msg)));
		return 1;
	}
	cases = cJSON_Parse(csrc.buf);
	if (!cJSON_IsArray(cases)) {
		fprintf(stderr, "render-chat: %s is not a JSON array\n", argv[2]);
		return 2;
	}
	results = cJSON_CreateArray();
	cJSON_ArrayForEach(c, cases) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
		cJSON *vars = cJSON_Duplicate(tokvars, 1), *res = cJSON_CreateObject(), *v;

		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(c, "vars")) {
			cJSON_DeleteItemFromObjectCaseSensitive(vars, v->string);
			cJSON_AddItemToObject(vars, v->string, cJSON_Duplicate(v, 1));
		}
		cJSON_AddStringToObject(res, "name", cJSON_IsString(name) ? name->valuestring : "");
		buf_reset(&out);
		err_clear(&e);
		if (chat_render(t, cJSON_GetObjectItemCaseSensitive(c, "messages"), vars, &out, &e) < 0)
			cJSON_AddStringToObject(res, "error", err_str(&e, msg, sizeof(msg)));
		else
			cJSON_AddStringToObject(res, "output", out.buf);
		cJSON_AddItemToArray(results, res);
		cJSON_Delete(vars);
	}
	printed = cJSON_Print(results);
	fputs(printed, stdout);
	fputc('\n', stdout);
	free(printed);
	cJSON_Delete(results);
	cJSON_Delete(cases);
	cJSON_Delete(cfg);
	cJSON_Delete(tokvars);
	jinja_free(t);
	buf_release(&tsrc);
	buf_release(&csrc);
	buf_release(&out);
	return 0;
}
