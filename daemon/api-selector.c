/*
 * daemon/api-selector.c - Kubernetes label selectors (=, ==, !=, in, notin,
 * exists, !exists) and simple field selectors (=, ==, != on dotted paths).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api.h"
#include "lib/util.h"

enum sel_op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT_EXISTS };

struct req {
	enum sel_op op;
	char *key;
	char **vals;
	size_t nvals;
};

struct selector {
	int fields;  /* keys are field paths of the object, not labels */
	struct req *reqs;
	size_t n;
};

void
selector_free(struct selector *sel)
{
	size_t i, j;

	if (sel == NULL)
		return;
	for (i = 0; i < sel->n; i++) {
		free(sel->reqs[i].key);
		for (j = 0; j < sel->reqs[i].nvals; j++)
			free(sel->reqs[i].vals[j]);
		free(sel->reqs[i].vals);
	}
	free(sel->reqs);
	free(sel);
}

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int
key_char(int c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static char *
word(const char **pp)
{
	const char *p = skip_ws(*pp), *s = p;

	while (*p && key_char((unsigned char)*p))
		p++;
	*pp = p;
	return p > s ? xstrndup(s, (size_t)(p - s)) : NULL;
}

static void
add_val(struct req *r, char *v)
{
	r->vals = xreallocarray(r->vals, r->nvals + 1, sizeof(char *));
	r->vals[r->nvals++] = v;
}

static int
parse(const char *s, int fields, struct selector **out, struct llmd_err *e)
{
	struct selector *sel = xcalloc(1, sizeof(*sel));
	const char *p = s;

	sel->fields = fields;
	while (*(p = skip_ws(p))) {
		struct req r = { 0 };

		if (*p == '!') {
			p++;
			r.op = OP_NOT_EXISTS;
			if ((r.key = word(&p)) == NULL)
				goto bad;
		} else {
			if ((r.key = word(&p)) == NULL)
				goto bad;
			p = skip_ws(p);
			if (p[0] == '=' && p[1] == '=') {
				r.op = OP_EQ;
				p += 2;
			} else if (p[0] == '=') {
				r.op = OP_EQ;
				p++;
			} else if (p[0] == '!' && p[1] == '=') {
				r.op = OP_NE;
				p += 2;
			} else if (!fields && (strncmp(p, "in", 2) == 0 ||
			    strncmp(p, "notin", 5) == 0) && !key_char((unsigned char)
			    p[p[0] == 'i' ? 2 : 5])) {
				r.op = p[0] == 'i' ? OP_IN : OP_NOTIN;
				p = skip_ws(p + (r.op == OP_IN ? 2 : 5));
				if (*p++ != '(')
					goto bad;
				for (;;) {
					char *v = word(&p);

					if (v)
						add_val(&r, v);
					p = skip_ws(p);
					if (*p == ',') {
						p++;
						continue;
					}
					if (*p == ')') {
						p++;
						break;
					}
					goto bad;
				}
			} else if (*p == ',' || *p == '\0') {
				if (fields)
					goto bad;
				r.op = OP_EXISTS;
			} else {
				goto bad;
			}
			if (r.op == OP_EQ || r.op == OP_NE) {
				char *v = word(&p);

				add_val(&r, v ? v : xstrdup(""));
			}
		}
		sel->reqs = xreallocarray(sel->reqs, sel->n + 1, sizeof(*sel->reqs));
		sel->reqs[sel->n++] = r;
		p = skip_ws(p);
		if (*p == ',')
			p++;
		else if (*p)
			goto bad_noreq;
		continue;
bad:
		free(r.key);
		for (size_t j = 0; j < r.nvals; j++)
			free(r.vals[j]);
		free(r.vals);
bad_noreq:
		selector_free(sel);
		return err_set(e, -EINVAL, fields ? "fieldSelector" : "labelSelector",
		    "unable to parse requirement at offset %zu of \"%s\"",
		    (size_t)(p - s), s);
	}
	*out = sel;
	return 0;
}

int
selector_parse(const char *s, struct selector **out, struct llmd_err *e)
{
	return parse(s, 0, out, e);
}

int
selector_parse_fields(const char *s, struct selector **out, struct llmd_err *e)
{
	return parse(s, 1, out, e);
}

/* Value of a label, or of a dotted field path rendered as a string. */
static const char *
lookup(const struct selector *sel, const cJSON *obj, const char *key, char *tmp,
    size_t tmplen)
{
	const cJSON *v;

	if (!sel->fields) {
		v = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
		v = cJSON_GetObjectItemCaseSensitive(v, key);
	} else {
		char *path = xstrdup(key), *save = NULL, *tok;

		v = obj;
		for (tok = strtok_r(path, ".", &save); tok && v;
		    tok = strtok_r(NULL, ".", &save))
			v = cJSON_GetObjectItemCaseSensitive(v, tok);
		free(path);
	}
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsNumber(v)) {
		snprintf(tmp, tmplen, "%.17g", v->valuedouble);
		return tmp;
	}
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? "true" : "false";
	return NULL;
}

int
selector_match(const struct selector *sel, const cJSON *obj)
{
	size_t i, j;

	if (sel == NULL)
		return 1;
	for (i = 0; i < sel->n; i++) {
		const struct req *r = &sel->reqs[i];
		char tmp[40];
		const char *v = lookup(sel, obj, r->key, tmp, sizeof(tmp));
		int in = 0;

		if (v == NULL && sel->fields)
			v = "";  /* a missing field compares as "" */
		for (j = 0; v && j < r->nvals; j++)
			if (strcmp(v, r->vals[j]) == 0)
				in = 1;
		switch (r->op) {
		case OP_EQ:
		case OP_IN:
			if (!in)
				return 0;
			break;
		case OP_NE:
		case OP_NOTIN:
			if (in)
				return 0;
			break;
		case OP_EXISTS:
			if (v == NULL)
				return 0;
			break;
		case OP_NOT_EXISTS:
			if (v != NULL)
				return 0;
			break;
		}
	}
	return 1;
}
