/*
 * daemon/template.c - a small Go text/template evaluator over cJSON data.
 *
 * A template string is split into text and action nodes; actions are
 * evaluated by a recursive-descent parser over their tokens. Values are
 * cJSON items (owned by the evaluator) or "missing" with the path that was
 * looked up, so a missing field is reported by name instead of crashing.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/naming.h"
#include "daemon/template.h"
#include "lib/buf.h"
#include "lib/util.h"

struct tval {
	cJSON *j;           /* owned; NULL when missing */
	char miss[160];     /* the field path when missing */
};

enum tok { T_EOF, T_FIELD, T_STR, T_NUM, T_IDENT, T_LP, T_RP, T_PIPE, T_ERR };

struct lex {
	const char *p, *end;
	enum tok t;
	char *text;         /* token text (field path without the leading '.', string contents, ident) */
	double num;
};

struct ctx {
	const cJSON *root;
	const cJSON *global;
	struct llmd_err *e;
};

static void
tval_free(struct tval *v)
{
	cJSON_Delete(v->j);
	v->j = NULL;
}

static int terr(struct ctx *c, const char *fmt, ...) LLMD_PRINTF(2, 3);

static int
terr(struct ctx *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(c->e, -EINVAL, "", "template: %s", msg);
}

/* ---- lexer ---- */

static void
lex_next(struct lex *l)
{
	const char *s;

	free(l->text);
	l->text = NULL;
	while (l->p < l->end && isspace((unsigned char)*l->p))
		l->p++;
	if (l->p >= l->end) {
		l->t = T_EOF;
		return;
	}
	s = l->p;
	switch (*s) {
	case '(': l->t = T_LP; l->p++; return;
	case ')': l->t = T_RP; l->p++; return;
	case '|': l->t = T_PIPE; l->p++; return;
	case '"': {
		struct buf b = BUF_INIT;

		for (l->p++; l->p < l->end && *l->p != '"'; l->p++) {
			if (*l->p == '\\' && l->p + 1 < l->end) {
				l->p++;
				switch (*l->p) {
				case 'n': buf_addch(&b, '\n'); break;
				case 't': buf_addch(&b, '\t'); break;
				default: buf_addch(&b, *l->p); break;
				}
			} else {
				buf_addch(&b, *l->p);
			}
		}
		if (l->p >= l->end) {
			buf_release(&b);
			l->t = T_ERR;
			return;
		}
		l->p++;
		l->text = buf_detach(&b, NULL);
		l->t = T_STR;
		return;
	}
	case '`': {
		const char *q = memchr(s + 1, '`', (size_t)(l->end - s - 1));

		if (!q) {
			l->t = T_ERR;
			return;
		}
		l->text = xstrndup(s + 1, (size_t)(q - s - 1));
		l->p = q + 1;
		l->t = T_STR;
		return;
	}
	case '.':
		l->p++;
		while (l->p < l->end && (isalnum((unsigned char)*l->p) || *l->p == '_' || *l->p == '.'))
			l->p++;
		l->text = xstrndup(s + 1, (size_t)(l->p - s - 1));
		l->t = T_FIELD;
		return;
	default:
		break;
	}
	if (isdigit((unsigned char)*s) || *s == '-' || *s == '+') {
		char *endp;

		l->num = strtod(s, &endp);
		if (endp == s) {
			l->t = T_ERR;
			return;
		}
		l->p = endp;
		l->t = T_NUM;
		return;
	}
	if (isalpha((unsigned char)*s) || *s == '_') {
		while (l->p < l->end && (isalnum((unsigned char)*l->p) || *l->p == '_'))
			l->p++;
		l->text = xstrndup(s, (size_t)(l->p - s));
		l->t = T_IDENT;
		return;
	}
	l->t = T_ERR;
}

/* ---- values ---- */

static int
truthy(const struct tval *v)
{
	const cJSON *j = v->j;

	if (!j || cJSON_IsNull(j) || cJSON_IsFalse(j))
		return 0;
	if (cJSON_IsNumber(j))
		return j->valuedouble != 0;
	if (cJSON_IsString(j))
		return j->valuestring[0] != '\0';
	if (cJSON_IsArray(j) || cJSON_IsObject(j))
		return j->child != NULL;
	return 1;
}

static int
to_string(struct ctx *c, const struct tval *v, struct buf *out)
{
	const cJSON *j = v->j;

	if (!j)
		return err_set(c->e, -EINVAL, "", "template: field .%s is not set", v->miss);
	if (cJSON_IsNull(j))
		return 0;
	if (cJSON_IsString(j)) {
		buf_adds(out, j->valuestring);
	} else if (cJSON_IsNumber(j)) {
		double d = j->valuedouble;

		if (d == floor(d) && fabs(d) < 1e15)
			buf_addf(out, "%lld", (long long)d);
		else
			buf_addf(out, "%g", d);
	} else if (cJSON_IsBool(j)) {
		buf_adds(out, cJSON_IsTrue(j) ? "true" : "false");
	} else {
		char *s = cJSON_PrintUnformatted(j);

		buf_adds(out, s);
		cJSON_free(s);
	}
	return 0;
}

static const cJSON *
get_ci(const cJSON *o, const char *k)
{
	const cJSON *v;

	if (!cJSON_IsObject(o))
		return NULL;
	v = cJSON_GetObjectItemCaseSensitive(o, k);
	return v ? v : cJSON_GetObjectItem(o, k);
}

/* Looks up "Spec.Model.Name" (no leading dot) in the data. */
static void
lookup(struct ctx *c, const char *path, struct tval *out)
{
	char *dup = xstrdup(path), *save = NULL, *seg;
	const cJSON *cur = c->root;
	int first = 1;

	out->j = NULL;
	snprintf(out->miss, sizeof(out->miss), "%s", path);
	for (seg = strtok_r(dup, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
		const cJSON *meta = get_ci(c->root, "metadata");

		if (first && strcmp(seg, "Name") == 0)
			cur = get_ci(meta, "name");
		else if (first && strcmp(seg, "Namespace") == 0)
			cur = get_ci(meta, "namespace");
		else if (first && strcmp(seg, "ObjectMeta") == 0)
			cur = meta;
		else if (first && strcmp(seg, "GlobalConfig") == 0)
			cur = c->global;
		else if (first && get_ci(cur, seg) == NULL && get_ci(meta, seg))
			cur = get_ci(meta, seg);   /* .Labels, .UID, ... promoted from ObjectMeta */
		else if (cJSON_IsObject(cur))
			cur = get_ci(cur, seg);
		else
			cur = NULL;
		first = 0;
		if (!cur || cJSON_IsNull(cur)) {
			free(dup);
			return;
		}
	}
	free(dup);
	out->j = cJSON_Duplicate(cur ? cur : c->root, 1);
}

/* ---- functions ---- */

static int
fn_call(struct ctx *c, const char *name, struct tval *a, int n, struct tval *out)
{
	struct buf b = BUF_INIT;
	int rc = 0;

	out->j = NULL;
	out->miss[0] = '\0';
	if (strcmp(name, "ChildName") == 0) {
		struct buf p = BUF_INIT;
		char *s;

		if (n != 2)
			return terr(c, "ChildName wants 2 arguments, got %s", n < 2 ? "fewer" : "more");
		if ((rc = to_string(c, &a[0], &p)) < 0 || (rc = to_string(c, &a[1], &b)) < 0) {
			buf_release(&p);
			buf_release(&b);
			return rc;
		}
		s = llmd_child_name(p.buf, b.buf);
		out->j = cJSON_CreateString(s);
		free(s);
		buf_release(&p);
	} else if (strcmp(name, "or") == 0 || strcmp(name, "and") == 0) {
		int want = name[0] == 'o';
		int pick = n - 1;

		if (n < 1)
			return terr(c, "%s wants arguments", name);
		for (int i = 0; i < n; i++) {
			if (truthy(&a[i]) == want) {
				pick = i;
				break;
			}
		}
		out->j = a[pick].j ? cJSON_Duplicate(a[pick].j, 1) : cJSON_CreateNull();
	} else if (strcmp(name, "not") == 0) {
		if (n != 1)
			return terr(c, "%s wants 1 argument", name);
		out->j = cJSON_CreateBool(!truthy(&a[0]));
	} else if (strcmp(name, "eq") == 0 || strcmp(name, "ne") == 0) {
		int eq = 0;

		if (n < 2)
			return terr(c, "%s wants 2 arguments", name);
		for (int i = 1; i < n && !eq; i++) {
			if (!a[0].j || !a[i].j)
				eq = !a[0].j && !a[i].j;
			else
				eq = cJSON_Compare(a[0].j, a[i].j, 1);
		}
		out->j = cJSON_CreateBool(name[0] == 'e' ? eq : !eq);
	} else if (strcmp(name, "printf") == 0) {
		const char *f;
		int ai = 1;

		if (n < 1 || !cJSON_IsString(a[0].j))
			return terr(c, "%s wants a format string", name);
		for (f = a[0].j->valuestring; *f; f++) {
			if (*f != '%') {
				buf_addch(&b, *f);
				continue;
			}
			f++;
			if (*f == '%') {
				buf_addch(&b, '%');
				continue;
			}
			if (*f != 's' && *f != 'd' && *f != 'v') {
				buf_release(&b);
				return terr(c, "printf: unsupported verb in \"%s\"", a[0].j->valuestring);
			}
			if (ai >= n) {
				buf_release(&b);
				return terr(c, "printf: missing argument for \"%s\"", a[0].j->valuestring);
			}
			if ((rc = to_string(c, &a[ai++], &b)) < 0) {
				buf_release(&b);
				return rc;
			}
		}
		out->j = cJSON_CreateString(b.buf);
	} else if (strcmp(name, "print") == 0) {
		for (int i = 0; i < n; i++) {
			if ((rc = to_string(c, &a[i], &b)) < 0) {
				buf_release(&b);
				return rc;
			}
		}
		out->j = cJSON_CreateString(b.buf);
	} else if (strcmp(name, "index") == 0) {
		const cJSON *cur = a[0].j;
		struct buf path = BUF_INIT;

		if (n < 1)
			return terr(c, "%s wants arguments", name);
		buf_adds(&path, a[0].j ? "(index)" : a[0].miss);
		for (int i = 1; i < n && cur; i++) {
			if (cJSON_IsString(a[i].j)) {
				buf_addf(&path, "[%s]", a[i].j->valuestring);
				cur = cJSON_IsObject(cur) ?
				    cJSON_GetObjectItemCaseSensitive(cur, a[i].j->valuestring) : NULL;
			} else if (cJSON_IsNumber(a[i].j)) {
				buf_addf(&path, "[%d]", a[i].j->valueint);
				cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, a[i].j->valueint) : NULL;
			} else {
				cur = NULL;
			}
		}
		if (cur)
			out->j = cJSON_Duplicate(cur, 1);
		else
			snprintf(out->miss, sizeof(out->miss), "%s", path.buf);
		buf_release(&path);
	} else if (strcmp(name, "len") == 0) {
		if (n != 1 || !a[0].j)
			return terr(c, "%s wants 1 set argument", name);
		if (cJSON_IsString(a[0].j))
			out->j = cJSON_CreateNumber((double)strlen(a[0].j->valuestring));
		else
			out->j = cJSON_CreateNumber(cJSON_GetArraySize(a[0].j));
	} else {
		return terr(c, "function \"%s\" not defined", name);
	}
	buf_release(&b);
	return 0;
}

static int
is_func(const char *s)
{
	static const char *const f[] = { "ChildName", "or", "and", "not", "eq", "ne", "printf",
		"print", "index", "len" };

	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		if (strcmp(s, f[i]) == 0)
			return 1;
	return 0;
}

/* ---- parser/evaluator ---- */

static int eval_pipeline(struct ctx *c, struct lex *l, struct tval *out);

static int
eval_operand(struct ctx *c, struct lex *l, struct tval *out)
{
	int rc;

	out->j = NULL;
	out->miss[0] = '\0';
	switch (l->t) {
	case T_FIELD:
		if (l->text[0] == '\0')
			out->j = cJSON_Duplicate(c->root, 1);
		else
			lookup(c, l->text, out);
		break;
	case T_STR:
		out->j = cJSON_CreateString(l->text);
		break;
	case T_NUM:
		out->j = cJSON_CreateNumber(l->num);
		break;
	case T_IDENT:
		if (strcmp(l->text, "true") == 0 || strcmp(l->text, "false") == 0)
			out->j = cJSON_CreateBool(l->text[0] == 't');
		else if (strcmp(l->text, "nil") == 0)
			out->j = cJSON_CreateNull();
		else
			return terr(c, "unexpected \"%s\" in operand", l->text);
		break;
	case T_LP:
		lex_next(l);
		if ((rc = eval_pipeline(c, l, out)) < 0)
			return rc;
		if (l->t != T_RP) {
			tval_free(out);
			return terr(c, "%s", "missing )");
		}
		break;
	default:
		return terr(c, "%s", "bad operand");
	}
	lex_next(l);
	return 0;
}

#define MAX_ARGS 16

static int
eval_command(struct ctx *c, struct lex *l, struct tval *piped, struct tval *out)
{
	struct tval args[MAX_ARGS + 1];
	char *fname = NULL;
	int n = 0, rc = 0;

	if (l->t == T_IDENT && is_func(l->text)) {
		fname = xstrdup(l->text);
		lex_next(l);
	}
	while (l->t != T_EOF && l->t != T_RP && l->t != T_PIPE) {
		if (n == MAX_ARGS) {
			rc = terr(c, "%s", "too many arguments");
			goto done;
		}
		if ((rc = eval_operand(c, l, &args[n])) < 0)
			goto done;
		n++;
	}
	if (piped) {
		args[n++] = *piped;
		piped->j = NULL;
	}
	if (fname) {
		rc = fn_call(c, fname, args, n, out);
	} else if (n == 1) {
		*out = args[0];
		args[0].j = NULL;
	} else {
		rc = terr(c, "%s", n == 0 ? "empty command" : "can't give arguments to a non-function");
	}
done:
	for (int i = 0; i < n; i++)
		tval_free(&args[i]);
	free(fname);
	return rc;
}

static int
eval_pipeline(struct ctx *c, struct lex *l, struct tval *out)
{
	struct tval prev;
	int rc, have = 0;

	for (;;) {
		if (l->t == T_ERR)
			return terr(c, "%s", "syntax error");
		rc = eval_command(c, l, have ? &prev : NULL, out);
		if (have)
			tval_free(&prev);
		if (rc < 0)
			return rc;
		if (l->t != T_PIPE)
			return 0;
		lex_next(l);
		prev = *out;
		have = 1;
	}
}

static int
eval_action(struct ctx *c, const char *s, size_t n, struct tval *out)
{
	struct lex l = { s, s + n, T_EOF, NULL, 0 };
	int rc;

	lex_next(&l);
	rc = eval_pipeline(c, &l, out);
	if (rc == 0 && l.t != T_EOF) {
		tval_free(out);
		rc = terr(c, "%s", l.t == T_ERR ? "syntax error" : "unexpected token");
	}
	free(l.text);
	return rc;
}

/* ---- nodes ---- */

struct node {
	int action;
	const char *s;
	size_t n;
};

static int
keyword(const struct node *nd, const char *kw)
{
	size_t k = strlen(kw);

	return nd->action && nd->n >= k && strncmp(nd->s, kw, k) == 0 &&
	    (nd->n == k || isspace((unsigned char)nd->s[k]));
}

static int
exec_nodes(struct ctx *c, const struct node *nd, int from, int to, struct buf *out)
{
	int i = from, rc;

	while (i < to) {
		if (!nd[i].action) {
			buf_add(out, nd[i].s, nd[i].n);
			i++;
			continue;
		}
		if (nd[i].n >= 2 && strncmp(nd[i].s, "/*", 2) == 0) {
			i++;
			continue;
		}
		if (keyword(&nd[i], "if")) {
			int depth = 0, j, els = -1, end = -1;
			struct tval cond;

			for (j = i + 1; j < to && end < 0; j++) {
				if (keyword(&nd[j], "if"))
					depth++;
				else if (keyword(&nd[j], "end") && depth-- == 0)
					end = j;
				else if (keyword(&nd[j], "else") && depth == 0 && els < 0)
					els = j;
			}
			if (end < 0)
				return terr(c, "%s", "unexpected EOF: {{ if }} without {{ end }}");
			if ((rc = eval_action(c, nd[i].s + 2, nd[i].n - 2, &cond)) < 0)
				return rc;
			if (truthy(&cond))
				rc = exec_nodes(c, nd, i + 1, els >= 0 ? els : end, out);
			else
				rc = els >= 0 ? exec_nodes(c, nd, els + 1, end, out) : 0;
			tval_free(&cond);
			if (rc < 0)
				return rc;
			i = end + 1;
			continue;
		}
		if (keyword(&nd[i], "else") || keyword(&nd[i], "end"))
			return terr(c, "unexpected {{ %s }}", keyword(&nd[i], "end") ? "end" : "else");
		{
			struct tval v;

			if ((rc = eval_action(c, nd[i].s, nd[i].n, &v)) < 0)
				return rc;
			rc = to_string(c, &v, out);
			tval_free(&v);
			if (rc < 0)
				return rc;
		}
		i++;
	}
	return 0;
}

int
template_render_string(const char *in, const cJSON *root, const cJSON *global, char **out,
    struct llmd_err *e)
{
	struct ctx c = { root, global, e };
	struct node *nd = NULL;
	size_t nn = 0, alloc = 0;
	const char *p = in;
	struct buf b = BUF_INIT;
	int rc;

	*out = NULL;
	if (!strstr(in, "{{")) {
		*out = xstrdup(in);
		return 0;
	}
	while (*p) {
		const char *o = strstr(p, "{{"), *cl, *as, *ae;
		int ltrim, rtrim;

		if (nn + 2 > alloc) {
			alloc = alloc ? 2 * alloc : 16;
			nd = xreallocarray(nd, alloc, sizeof(*nd));
		}
		if (!o) {
			nd[nn++] = (struct node){ 0, p, strlen(p) };
			break;
		}
		cl = strstr(o + 2, "}}");
		if (!cl) {
			free(nd);
			return err_set(e, -EINVAL, "", "template: unclosed action");
		}
		as = o + 2;
		ae = cl;
		ltrim = as < ae && *as == '-' && as + 1 < ae && isspace((unsigned char)as[1]);
		rtrim = ae - 1 > as && ae[-1] == '-' && isspace((unsigned char)ae[-2]);
		if (ltrim)
			as++;
		if (rtrim)
			ae--;
		{
			const char *te = o;

			if (ltrim)
				while (te > p && isspace((unsigned char)te[-1]))
					te--;
			nd[nn++] = (struct node){ 0, p, (size_t)(te - p) };
		}
		while (as < ae && isspace((unsigned char)*as))
			as++;
		while (ae > as && isspace((unsigned char)ae[-1]))
			ae--;
		nd[nn++] = (struct node){ 1, as, (size_t)(ae - as) };
		p = cl + 2;
		if (rtrim)
			while (*p && isspace((unsigned char)*p))
				p++;
	}
	rc = exec_nodes(&c, nd, 0, (int)nn, &b);
	free(nd);
	if (rc < 0) {
		buf_release(&b);
		return rc;
	}
	*out = buf_detach(&b, NULL);
	return 0;
}

int
template_render_tree(cJSON *tree, const char *path, const cJSON *root, const cJSON *global,
    struct llmd_err *e)
{
	cJSON *it;
	int i = 0, rc;

	cJSON_ArrayForEach(it, tree) {
		char sub[256];

		if (cJSON_IsArray(tree))
			snprintf(sub, sizeof(sub), "%s[%d]", path, i);
		else
			snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", it->string);
		i++;
		if (cJSON_IsString(it) && strstr(it->valuestring, "{{")) {
			char *s;

			if ((rc = template_render_string(it->valuestring, root, global, &s, e)) < 0) {
				if (e)
					snprintf(e->field, sizeof(e->field), "%s", sub);
				return rc;
			}
			cJSON_SetValuestring(it, s);
			free(s);
		} else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
			if ((rc = template_render_tree(it, sub, root, global, e)) < 0)
				return rc;
		}
	}
	return 0;
}
