/*
 * engine/jinja-value.c - template values: constructors, lists and ordered
 * dicts, truthiness and equality as Python has them, str()/repr() and
 * json.dumps() output, conversion from cJSON, UTF-8 code point helpers.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/jinja-impl.h"
#include "lib/util.h"

struct jv jv_undef(const char *name)
{
	struct jv v = { .t = JV_UNDEF };

	v.u.s.p = name;
	v.u.s.n = name ? strlen(name) : 0;
	return v;
}

struct jv jv_none(void)
{
	struct jv v = { .t = JV_NONE };

	return v;
}

struct jv jv_bool(int b)
{
	struct jv v = { .t = JV_BOOL };

	v.u.b = !!b;
	return v;
}

struct jv jv_int(int64_t i)
{
	struct jv v = { .t = JV_INT };

	v.u.i = i;
	return v;
}

struct jv jv_float(double f)
{
	struct jv v = { .t = JV_FLOAT };

	v.u.f = f;
	return v;
}

struct jv jv_str(const char *p, size_t n)
{
	struct jv v = { .t = JV_STR };

	v.u.s.p = p;
	v.u.s.n = n;
	return v;
}

struct jv jv_cstr(const char *s)
{
	return jv_str(s, strlen(s));
}

struct jv jv_strdup(struct jrender *r, const char *p, size_t n)
{
	char *s = jr_alloc(r, n + 1);

	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return jv_str(s, n);
}

struct jv jv_list(struct jrender *r, size_t hint)
{
	struct jv v = { .t = JV_LIST };

	v.u.l = jr_alloc(r, sizeof(*v.u.l));
	v.u.l->n = 0;
	v.u.l->cap = hint;
	v.u.l->v = hint ? jr_alloc(r, hint * sizeof(struct jv)) : NULL;
	return v;
}

struct jv jv_dict(struct jrender *r, size_t hint)
{
	struct jv v = { .t = JV_DICT };

	v.u.d = jr_alloc(r, sizeof(*v.u.d));
	v.u.d->n = 0;
	v.u.d->cap = hint;
	v.u.d->k = hint ? jr_alloc(r, hint * sizeof(struct jv)) : NULL;
	v.u.d->v = hint ? jr_alloc(r, hint * sizeof(struct jv)) : NULL;
	return v;
}

void jl_push(struct jrender *r, struct jlist *l, struct jv v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		struct jv *nv = jr_alloc(r, cap * sizeof(*nv));

		if (l->n)
			memcpy(nv, l->v, l->n * sizeof(*nv));
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = v;
}

struct jv *jd_get(const struct jdict *d, struct jv k)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (jv_eq(d->k[i], k))
			return &d->v[i];
	return NULL;
}

struct jv *jd_gets(const struct jdict *d, const char *k, size_t n)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->k[i].t == JV_STR && d->k[i].u.s.n == n && !memcmp(d->k[i].u.s.p, k, n))
			return &d->v[i];
	return NULL;
}

void jd_set(struct jrender *r, struct jdict *d, struct jv k, struct jv v)
{
	struct jv *slot = jd_get(d, k);

	if (slot) {
		*slot = v;
		return;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 4;
		struct jv *nk = jr_alloc(r, cap * sizeof(*nk));
		struct jv *nv = jr_alloc(r, cap * sizeof(*nv));

		if (d->n) {
			memcpy(nk, d->k, d->n * sizeof(*nk));
			memcpy(nv, d->v, d->n * sizeof(*nv));
		}
		d->k = nk;
		d->v = nv;
		d->cap = cap;
	}
	d->k[d->n] = k;
	d->v[d->n] = v;
	d->n++;
}

int jv_truthy(struct jv v)
{
	switch (v.t) {
	case JV_UNDEF: case JV_NONE: return 0;
	case JV_BOOL: return v.u.b;
	case JV_INT: return v.u.i != 0;
	case JV_FLOAT: return v.u.f != 0.0;
	case JV_STR: return v.u.s.n != 0;
	case JV_LIST: return v.u.l->n != 0;
	case JV_DICT: return v.u.d->n != 0;
	default: return 1;
	}
}

static int is_num(struct jv v)
{
	return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
}

static double num(struct jv v)
{
	return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b;
}

int jv_eq(struct jv a, struct jv b)
{
	size_t i;

	if (is_num(a) && is_num(b)) {
		if (a.t != JV_FLOAT && b.t != JV_FLOAT)
			return (a.t == JV_INT ? a.u.i : a.u.b) == (b.t == JV_INT ? b.u.i : b.u.b);
		return num(a) == num(b);
	}
	if (a.t != b.t)
		return 0;
	switch (a.t) {
	case JV_UNDEF: case JV_NONE: return 1;
	case JV_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
	case JV_LIST:
		if (a.u.l->n != b.u.l->n)
			return 0;
		for (i = 0; i < a.u.l->n; i++)
			if (!jv_eq(a.u.l->v[i], b.u.l->v[i]))
				return 0;
		return 1;
	case JV_DICT:
		if (a.u.d->n != b.u.d->n)
			return 0;
		for (i = 0; i < a.u.d->n; i++) {
			struct jv *o = jd_get(b.u.d, a.u.d->k[i]);

			if (!o || !jv_eq(a.u.d->v[i], *o))
				return 0;
		}
		return 1;
	case JV_NS: return a.u.d == b.u.d;
	case JV_MACRO: return a.u.m == b.u.m;
	case JV_FUNC: return a.u.fn == b.u.fn;
	default: return 0;
	}
}

static int fold(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int jv_cmp(struct jrender *r, struct jv a, struct jv b, int fold_case, size_t off)
{
	size_t i;

	if (is_num(a) && is_num(b)) {
		if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
			int64_t x = a.t == JV_INT ? a.u.i : a.u.b, y = b.t == JV_INT ? b.u.i : b.u.b;

			return (x > y) - (x < y);
		}
		return (num(a) > num(b)) - (num(a) < num(b));
	}
	if (a.t == JV_STR && b.t == JV_STR) {
		size_t n = MIN(a.u.s.n, b.u.s.n);

		for (i = 0; i < n; i++) {
			int x = (unsigned char)a.u.s.p[i], y = (unsigned char)b.u.s.p[i];

			if (fold_case) {
				x = fold(x);
				y = fold(y);
			}
			if (x != y)
				return x < y ? -1 : 1;
		}
		return (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
	}
	if (a.t == JV_LIST && b.t == JV_LIST) {
		for (i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
			int c = jv_cmp(r, a.u.l->v[i], b.u.l->v[i], fold_case, off);

			if (c)
				return c;
		}
		return (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
	}
	jr_fail(r, -EINVAL, off, "cannot compare %s with %s", jv_typename(a), jv_typename(b));
}

const char *jv_typename(struct jv v)
{
	static const char *const names[] = {
		"undefined", "none", "bool", "int", "float", "string", "list", "dict",
		"namespace", "macro", "function",
	};

	return names[v.t];
}

/* Python float repr: shortest digits that read back, fixed notation for
 * exponents in [-4, 16), otherwise d.ddde+XX. */
void jv_format_float(struct buf *b, double f)
{
	char tmp[64], digits[32];
	int prec, exp10, nd = 0, i;
	char *e;

	if (isnan(f)) {
		buf_adds(b, "nan");
		return;
	}
	if (isinf(f)) {
		buf_adds(b, f < 0 ? "-inf" : "inf");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	/* tmp: [-]d[.ddd]e[+-]XX */
	e = strchr(tmp, 'e');
	exp10 = atoi(e + 1);
	for (i = 0; tmp + i < e; i++)
		if (tmp[i] >= '0' && tmp[i] <= '9')
			digits[nd++] = tmp[i];
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	if (tmp[0] == '-')
		buf_addch(b, '-');
	if (exp10 >= -5 + 1 && exp10 < 16) {
		if (exp10 < 0) {
			buf_adds(b, "0.");
			for (i = 0; i < -exp10 - 1; i++)
				buf_addch(b, '0');
			buf_add(b, digits, (size_t)nd);
		} else if (nd <= exp10 + 1) {
			buf_add(b, digits, (size_t)nd);
			for (i = nd; i < exp10 + 1; i++)
				buf_addch(b, '0');
			buf_adds(b, ".0");
		} else {
			buf_add(b, digits, (size_t)exp10 + 1);
			buf_addch(b, '.');
			buf_add(b, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
		}
	} else {
		buf_addch(b, digits[0]);
		if (nd > 1) {
			buf_addch(b, '.');
			buf_add(b, digits + 1, (size_t)nd - 1);
		}
		buf_addf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
	}
}

static void check_out(struct jrender *r, struct buf *b, size_t off)
{
	if (b->len > r->lim.max_output)
		jr_fail(r, -E2BIG, off, "template output exceeds %zu bytes", r->lim.max_output);
}

void jv_repr(struct jrender *r, struct buf *b, struct jv v, size_t off)
{
	size_t i;

	if (++r->depth > r->lim.max_depth)
		jr_fail(r, -ELOOP, off, "value nested too deeply");
	switch (v.t) {
	case JV_STR: {
		char q = memchr(v.u.s.p, '\'', v.u.s.n) && !memchr(v.u.s.p, '"', v.u.s.n) ? '"' : '\'';

		buf_addch(b, q);
		for (i = 0; i < v.u.s.n; i++) {
			unsigned char c = (unsigned char)v.u.s.p[i];

			if (c == '\\' || c == (unsigned char)q)
				buf_addf(b, "\\%c", c);
			else if (c == '\n')
				buf_adds(b, "\\n");
			else if (c == '\r')
				buf_adds(b, "\\r");
			else if (c == '\t')
				buf_adds(b, "\\t");
			else if (c < 0x20 || c == 0x7f)
				buf_addf(b, "\\x%02x", c);
			else
				buf_addch(b, (char)c);
		}
		buf_addch(b, q);
		break;
	}
	case JV_LIST:
		buf_addch(b, '[');
		for (i = 0; i < v.u.l->n; i++) {
			if (i)
				buf_adds(b, ", ");
			jv_repr(r, b, v.u.l->v[i], off);
			check_out(r, b, off);
		}
		buf_addch(b, ']');
		break;
	case JV_DICT:
		buf_addch(b, '{');
		for (i = 0; i < v.u.d->n; i++) {
			if (i)
				buf_adds(b, ", ");
			jv_repr(r, b, v.u.d->k[i], off);
			buf_adds(b, ": ");
			jv_repr(r, b, v.u.d->v[i], off);
			check_out(r, b, off);
		}
		buf_addch(b, '}');
		break;
	default:
		jv_to_str(r, b, v, off);
	}
	r->depth--;
}

void jv_to_str(struct jrender *r, struct buf *b, struct jv v, size_t off)
{
	switch (v.t) {
	case JV_UNDEF: break;
	case JV_NONE: buf_adds(b, "None"); break;
	case JV_BOOL: buf_adds(b, v.u.b ? "True" : "False"); break;
	case JV_INT: buf_addf(b, "%lld", (long long)v.u.i); break;
	case JV_FLOAT: jv_format_float(b, v.u.f); break;
	case JV_STR: buf_add(b, v.u.s.p, v.u.s.n); break;
	case JV_LIST: case JV_DICT: jv_repr(r, b, v, off); break;
	case JV_NS: buf_adds(b, "<Namespace>"); break;
	case JV_MACRO: buf_adds(b, "<Macro>"); break;
	case JV_FUNC: buf_adds(b, "<function>"); break;
	}
	check_out(r, b, off);
}

struct jv jv_stringify(struct jrender *r, struct jv v, size_t off)
{
	struct buf *b;

	if (v.t == JV_STR)
		return v;
	b = jr_buf_open(r, off);
	jv_to_str(r, b, v, off);
	return jr_buf_close(r, b);
}

static uint32_t utf8_next(const char *s, size_t n, size_t *i)
{
	unsigned char c = (unsigned char)s[*i];
	uint32_t cp;
	int more, k;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if ((c & 0xe0) == 0xc0) {
		cp = c & 0x1f;
		more = 1;
	} else if ((c & 0xf0) == 0xe0) {
		cp = c & 0x0f;
		more = 2;
	} else if ((c & 0xf8) == 0xf0) {
		cp = c & 0x07;
		more = 3;
	} else {
		(*i)++;
		return 0xfffd;
	}
	for (k = 1; k <= more; k++) {
		if (*i + (size_t)k >= n || ((unsigned char)s[*i + (size_t)k] & 0xc0) != 0x80) {
			(*i)++;
			return 0xfffd;
		}
		cp = (cp << 6) | ((unsigned char)s[*i + (size_t)k] & 0x3f);
	}
	*i += (size_t)more + 1;
	return cp;
}

static void json_str(struct buf *b, const char *s, size_t n, int ensure_ascii)
{
	size_t i = 0;

	buf_addch(b, '"');
	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': buf_adds(b, "\\\""); i++; continue;
		case '\\': buf_adds(b, "\\\\"); i++; continue;
		case '\n': buf_adds(b, "\\n"); i++; continue;
		case '\r': buf_adds(b, "\\r"); i++; continue;
		case '\t': buf_adds(b, "\\t"); i++; continue;
		case '\b': buf_adds(b, "\\b"); i++; continue;
		case '\f': buf_adds(b, "\\f"); i++; continue;
		default: break;
		}
		if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
			buf_addf(b, "\\u%04x", c);
			i++;
		} else if (c < 0x80 || !ensure_ascii) {
			buf_addch(b, (char)c);
			i++;
		} else {
			uint32_t cp = utf8_next(s, n, &i);

			if (cp >= 0x10000) {
				cp -= 0x10000;
				buf_addf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
			} else {
				buf_addf(b, "\\u%04x", cp);
			}
		}
	}
	buf_addch(b, '"');
}

static void json_nl(struct buf *b, int indent, int level)
{
	int i;

	buf_addch(b, '\n');
	for (i = 0; i < indent * level; i++)
		buf_addch(b, ' ');
}

static int key_cmp(const void *pa, const void *pb)
{
	const struct jv *a = *(const struct jv *const *)pa, *b = *(const struct jv *const *)pb;
	size_t n = MIN(a->u.s.n, b->u.s.n);
	int c = memcmp(a->u.s.p, b->u.s.p, n);

	return c ? c : (a->u.s.n > b->u.s.n) - (a->u.s.n < b->u.s.n);
}

struct json_opts {
	int ensure_ascii, indent, sort_keys;
	struct jv item_sep, key_sep;  /* strings */
};

static void json_val(struct jrender *r, struct buf *b, struct jv v, const struct json_opts *o,
    int level, size_t off)
{
	int indent = o->indent;

	size_t i;

	if (++r->depth > r->lim.max_depth)
		jr_fail(r, -ELOOP, off, "value nested too deeply for tojson");
	switch (v.t) {
	case JV_NONE: buf_adds(b, "null"); break;
	case JV_BOOL: buf_adds(b, v.u.b ? "true" : "false"); break;
	case JV_INT: buf_addf(b, "%lld", (long long)v.u.i); break;
	case JV_FLOAT:
		if (isnan(v.u.f))
			buf_adds(b, "NaN");
		else if (isinf(v.u.f))
			buf_adds(b, v.u.f < 0 ? "-Infinity" : "Infinity");
		else
			jv_format_float(b, v.u.f);
		break;
	case JV_STR: json_str(b, v.u.s.p, v.u.s.n, o->ensure_ascii); break;
	case JV_LIST:
		buf_addch(b, '[');
		for (i = 0; i < v.u.l->n; i++) {
			if (i)
				buf_add(b, o->item_sep.u.s.p, o->item_sep.u.s.n);
			if (indent >= 0)
				json_nl(b, indent, level + 1);
			json_val(r, b, v.u.l->v[i], o, level + 1, off);
			check_out(r, b, off);
		}
		if (indent >= 0 && v.u.l->n)
			json_nl(b, indent, level);
		buf_addch(b, ']');
		break;
	case JV_DICT: case JV_NS: {
		const struct jv **keys = jr_alloc(r, (v.u.d->n + 1) * sizeof(*keys));

		for (i = 0; i < v.u.d->n; i++) {
			if (v.u.d->k[i].t != JV_STR)
				jr_fail(r, -EINVAL, off, "tojson: dict keys must be strings");
			keys[i] = &v.u.d->k[i];
		}
		if (o->sort_keys)
			qsort(keys, v.u.d->n, sizeof(*keys), key_cmp);
		buf_addch(b, '{');
		for (i = 0; i < v.u.d->n; i++) {
			size_t idx = (size_t)(keys[i] - v.u.d->k);

			if (i)
				buf_add(b, o->item_sep.u.s.p, o->item_sep.u.s.n);
			if (indent >= 0)
				json_nl(b, indent, level + 1);
			json_str(b, keys[i]->u.s.p, keys[i]->u.s.n, o->ensure_ascii);
			buf_add(b, o->key_sep.u.s.p, o->key_sep.u.s.n);
			json_val(r, b, v.u.d->v[idx], o, level + 1, off);
			check_out(r, b, off);
		}
		if (indent >= 0 && v.u.d->n)
			json_nl(b, indent, level);
		buf_addch(b, '}');
		break;
	}
	default:
		jr_fail(r, -EINVAL, off, "tojson: cannot serialize a value of type %s", jv_typename(v));
	}
	r->depth--;
}

void jv_to_json(struct jrender *r, struct buf *b, struct jv v, int ensure_ascii,
    int indent, int sort_keys, const struct jv *separators, size_t off)
{
	struct json_opts o = { ensure_ascii, indent, sort_keys,
		jv_cstr(indent >= 0 ? "," : ", "), jv_cstr(": ") };

	if (separators) {
		if (separators->t != JV_LIST || separators->u.l->n != 2 ||
		    separators->u.l->v[0].t != JV_STR || separators->u.l->v[1].t != JV_STR)
			jr_fail(r, -EINVAL, off, "tojson: separators must be a pair of strings");
		o.item_sep = separators->u.l->v[0];
		o.key_sep = separators->u.l->v[1];
	}
	json_val(r, b, v, &o, 0, off);
}

struct jv jv_from_cjson(struct jrender *r, const cJSON *j, int depth)
{
	const cJSON *c;
	struct jv v;

	if (depth > (int)r->lim.max_depth)
		jr_fail(r, -ELOOP, 0, "input JSON nested too deeply");
	if (!j || cJSON_IsNull(j))
		return jv_none();
	if (cJSON_IsBool(j))
		return jv_bool(cJSON_IsTrue(j));
	if (cJSON_IsNumber(j)) {
		double d = j->valuedouble;

		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			return jv_int((int64_t)d);
		return jv_float(d);
	}
	if (cJSON_IsString(j))
		return jv_str(j->valuestring, strlen(j->valuestring));
	if (cJSON_IsArray(j)) {
		v = jv_list(r, (size_t)cJSON_GetArraySize(j));
		cJSON_ArrayForEach(c, j)
			jl_push(r, v.u.l, jv_from_cjson(r, c, depth + 1));
		return v;
	}
	if (cJSON_IsObject(j)) {
		v = jv_dict(r, (size_t)cJSON_GetArraySize(j));
		cJSON_ArrayForEach(c, j)
			jd_set(r, v.u.d, jv_cstr(c->string), jv_from_cjson(r, c, depth + 1));
		return v;
	}
	return jv_none();
}

size_t ju_len(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

size_t *ju_offsets(struct jrender *r, const char *s, size_t n, size_t *count)
{
	size_t cnt = ju_len(s, n), i, k = 0;
	size_t *o = jr_alloc(r, (cnt + 1) * sizeof(*o));

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			o[k++] = i;
	o[k] = n;
	*count = cnt;
	return o;
}
