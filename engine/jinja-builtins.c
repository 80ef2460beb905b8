/*
 * engine/jinja-builtins.c - the filters, tests, str/dict methods and global
 * functions (namespace, range, raise_exception, dict, strftime_now) that
 * chat templates use, with transformers' tojson (json.dumps semantics,
 * ensure_ascii off by default).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <utf8proc.h>

#include "engine/jinja-impl.h"
#include "lib/util.h"

/* Positional argument pos or keyword argument name; NULL when absent. */
static const struct jv *arg(struct jv *args, const char **kw, size_t nargs, size_t pos,
    const char *name)
{
	size_t i, p = 0;

	for (i = 0; i < nargs; i++) {
		if (kw && kw[i]) {
			if (name && !strcmp(kw[i], name))
				return &args[i];
		} else if (p++ == pos) {
			return &args[i];
		}
	}
	return NULL;
}

static struct jv want_str(struct jrender *r, size_t off, const char *what, struct jv v)
{
	if (v.t == JV_UNDEF)
		jr_fail(r, -EINVAL, off, "%s: value is undefined", what);
	if (v.t != JV_STR)
		jr_fail(r, -EINVAL, off, "%s: expected a string, got %s", what, jv_typename(v));
	return v;
}

static int64_t want_int(struct jrender *r, size_t off, const char *what, struct jv v)
{
	if (v.t == JV_INT)
		return v.u.i;
	if (v.t == JV_BOOL)
		return v.u.b;
	jr_fail(r, -EINVAL, off, "%s: expected an integer, got %s", what, jv_typename(v));
}

static const char PY_SPACE[] = " \t\n\r\v\f";

static struct jv strip(struct jv s, const struct jv *chars, int left, int right)
{
	const char *set = PY_SPACE;
	size_t setn = sizeof(PY_SPACE) - 1, a = 0, b = s.u.s.n;

	if (chars && chars->t == JV_STR) {
		set = chars->u.s.p;
		setn = chars->u.s.n;
	}
	if (left)
		while (a < b && memchr(set, s.u.s.p[a], setn))
			a++;
	if (right)
		while (b > a && memchr(set, s.u.s.p[b - 1], setn))
			b--;
	return jv_str(s.u.s.p + a, b - a);
}

static int is_cased(int32_t cp)
{
	utf8proc_category_t c = utf8proc_category(cp);

	return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

/* lower/upper/capitalize/title over code points as Python's str methods
 * (Unicode simple case mapping, plus sharp s to "SS"; Python applies the
 * other full mappings too, e.g. ligatures); invalid UTF-8 bytes are kept. */
static struct jv map_chars(struct jrender *r, size_t off, struct jv s, int mode)
{
	struct buf *b = jr_buf_open(r, off);
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s.u.s.p;
	utf8proc_ssize_t i = 0, n = (utf8proc_ssize_t)s.u.s.n;
	int prev_cased = 0, first = 1;

	while (i < n) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t len = utf8proc_iterate(p + i, n - i, &cp);
		utf8proc_uint8_t enc[4];

		if (len <= 0) {
			buf_addch(b, (char)p[i++]);
			prev_cased = 0;
			continue;
		}
		if (cp == 0xdf && (mode == 'u' || ((mode == 't' && !prev_cased) || (mode == 'c' && first)))) {
			/* sharp s: the one full case mapping that matters in practice */
			buf_adds(b, mode == 'u' ? "SS" : "Ss");
			prev_cased = 1;
			first = 0;
			i += len;
			continue;
		}
		switch (mode) {
		case 'l': cp = utf8proc_tolower(cp); break;
		case 'u': cp = utf8proc_toupper(cp); break;
		case 'c': cp = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp); break;
		case 't': {
			int cased = is_cased(cp);

			cp = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
			prev_cased = cased;
			break;
		}
		}
		first = 0;
		buf_add(b, enc, (size_t)utf8proc_encode_char(cp, enc));
		i += len;
	}
	return jr_buf_close(r, b);
}

static const char *find_sub(const char *h, size_t hn, const char *n, size_t nn)
{
	size_t i;

	if (nn == 0)
		return h;
	for (i = 0; i + nn <= hn; i++)
		if (!memcmp(h + i, n, nn))
			return h + i;
	return NULL;
}

static struct jv replace(struct jrender *r, size_t off, struct jv s, struct jv old, struct jv nw,
    int64_t count)
{
	struct buf *b = jr_buf_open(r, off);
	const char *p = s.u.s.p, *end = s.u.s.p + s.u.s.n, *hit;
	int64_t done = 0;

	if (old.u.s.n == 0) {
		/* Python inserts new between every character */
		size_t cnt, *o = ju_offsets(r, s.u.s.p, s.u.s.n, &cnt), i;

		for (i = 0; i <= cnt; i++) {
			if (count < 0 || done < count) {
				buf_add(b, nw.u.s.p, nw.u.s.n);
				done++;
			}
			if (i < cnt)
				buf_add(b, s.u.s.p + o[i], o[i + 1] - o[i]);
			if (b->len > r->lim.max_output) {
				jr_fail(r, -E2BIG, off, "replace: result too large");
			}
		}
	} else {
		while ((count < 0 || done < count) &&
		    (hit = find_sub(p, (size_t)(end - p), old.u.s.p, old.u.s.n))) {
			buf_add(b, p, (size_t)(hit - p));
			buf_add(b, nw.u.s.p, nw.u.s.n);
			p = hit + old.u.s.n;
			done++;
			if (b->len > r->lim.max_output) {
				jr_fail(r, -E2BIG, off, "replace: result too large");
			}
		}
		buf_add(b, p, (size_t)(end - p));
	}
	return jr_buf_close(r, b);
}

static struct jv split(struct jrender *r, struct jv s, const struct jv *sep, int64_t maxsplit)
{
	struct jv res = jv_list(r, 0);
	const char *p = s.u.s.p, *end = s.u.s.p + s.u.s.n;
	int64_t done = 0;

	if (!sep || sep->t == JV_NONE) {
		for (;;) {
			const char *w;

			while (p < end && strchr(PY_SPACE, *p) && *p)
				p++;
			if (p == end)
				break;
			if (maxsplit >= 0 && done >= maxsplit) {
				const char *e2 = end;

				while (e2 > p && strchr(PY_SPACE, e2[-1]) && e2[-1])
					e2--;
				jl_push(r, res.u.l, jv_str(p, (size_t)(e2 - p)));
				break;
			}
			w = p;
			while (p < end && !(strchr(PY_SPACE, *p) && *p))
				p++;
			jl_push(r, res.u.l, jv_str(w, (size_t)(p - w)));
			done++;
		}
		return res;
	}
	for (;;) {
		const char *hit = (maxsplit < 0 || done < maxsplit) ?
		    find_sub(p, (size_t)(end - p), sep->u.s.p, sep->u.s.n) : NULL;

		if (!hit) {
			jl_push(r, res.u.l, jv_str(p, (size_t)(end - p)));
			return res;
		}
		jl_push(r, res.u.l, jv_str(p, (size_t)(hit - p)));
		p = hit + sep->u.s.n;
		done++;
	}
}

static int affix(struct jv s, struct jv x, int suffix)
{
	if (x.t != JV_STR || x.u.s.n > s.u.s.n)
		return 0;
	return !memcmp(suffix ? s.u.s.p + s.u.s.n - x.u.s.n : s.u.s.p, x.u.s.p, x.u.s.n);
}

static struct jv items_of(struct jrender *r, struct jv d)
{
	struct jv res = jv_list(r, d.u.d->n);
	size_t i;

	for (i = 0; i < d.u.d->n; i++) {
		struct jv pair = jv_list(r, 2);

		jl_push(r, pair.u.l, d.u.d->k[i]);
		jl_push(r, pair.u.l, d.u.d->v[i]);
		jl_push(r, res.u.l, pair);
	}
	return res;
}

static struct jv join(struct jrender *r, size_t off, struct jv seq, struct jv sep,
    const struct jv *attribute)
{
	struct buf *b;
	size_t i;

	if (seq.t == JV_UNDEF)
		return jv_str("", 0);
	if (seq.t != JV_LIST)
		jr_fail(r, -EINVAL, off, "join: expected a list, got %s", jv_typename(seq));
	b = jr_buf_open(r, off);
	for (i = 0; i < seq.u.l->n; i++) {
		struct jv v = seq.u.l->v[i];

		if (i)
			jv_to_str(r, b, sep, off);
		if (attribute && attribute->t == JV_STR && (v.t == JV_DICT || v.t == JV_NS)) {
			struct jv *a = jd_gets(v.u.d, attribute->u.s.p, attribute->u.s.n);

			v = a ? *a : jv_undef(NULL);
		}
		jv_to_str(r, b, v, off);
		if (b->len > r->lim.max_output) {
			jr_fail(r, -E2BIG, off, "join: result too large");
		}
	}
	return jr_buf_close(r, b);
}

int jb_method(struct jrender *r, size_t off, struct jv obj, const char *name,
    struct jv *args, const char **kw, size_t nargs, struct jv *res)
{
	const struct jv *a0 = arg(args, kw, nargs, 0, NULL), *a1 = arg(args, kw, nargs, 1, NULL);

	if (obj.t == JV_STR) {
		if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
			int suffix = name[0] == 'e', hit = 0;

			if (!a0)
				jr_fail(r, -EINVAL, off, "%s() takes one argument", name);
			if (a0->t == JV_LIST) {
				size_t i;

				for (i = 0; i < a0->u.l->n && !hit; i++)
					hit = affix(obj, a0->u.l->v[i], suffix);
			} else {
				hit = affix(obj, want_str(r, off, name, *a0), suffix);
			}
			*res = jv_bool(hit);
			return 0;
		}
		if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
			*res = strip(obj, a0, name[0] != 'r', name[0] != 'l');
			return 0;
		}
		if (!strcmp(name, "split")) {
			const struct jv *sep = arg(args, kw, nargs, 0, "sep");
			const struct jv *mx = arg(args, kw, nargs, 1, "maxsplit");

			if (sep && sep->t == JV_STR && sep->u.s.n == 0)
				jr_fail(r, -EINVAL, off, "split: empty separator");
			if (sep && sep->t != JV_NONE)
				want_str(r, off, "split", *sep);
			*res = split(r, obj, sep, mx ? want_int(r, off, "split", *mx) : -1);
			return 0;
		}
		if (!strcmp(name, "replace")) {
			const struct jv *a2 = arg(args, kw, nargs, 2, "count");

			if (!a0 || !a1)
				jr_fail(r, -EINVAL, off, "replace() takes two arguments");
			*res = replace(r, off, obj, want_str(r, off, "replace", *a0),
			    want_str(r, off, "replace", *a1), a2 ? want_int(r, off, "replace", *a2) : -1);
			return 0;
		}
		if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") ||
		    !strcmp(name, "capitalize")) {
			*res = map_chars(r, off, obj, name[0] == 'l' ? 'l' : name[0] == 'u' ? 'u' :
			    name[0] == 't' ? 't' : 'c');
			return 0;
		}
		if (!strcmp(name, "find") || !strcmp(name, "count")) {
			struct jv sub;
			const char *hit;

			if (!a0)
				jr_fail(r, -EINVAL, off, "%s() takes one argument", name);
			sub = want_str(r, off, name, *a0);
			if (name[0] == 'f') {
				hit = find_sub(obj.u.s.p, obj.u.s.n, sub.u.s.p, sub.u.s.n);
				*res = jv_int(hit ? (int64_t)ju_len(obj.u.s.p, (size_t)(hit - obj.u.s.p)) : -1);
			} else {
				int64_t c = 0;
				const char *p = obj.u.s.p, *end = p + obj.u.s.n;

				if (sub.u.s.n == 0) {
					c = (int64_t)ju_len(obj.u.s.p, obj.u.s.n) + 1;
				} else {
					while ((hit = find_sub(p, (size_t)(end - p), sub.u.s.p, sub.u.s.n))) {
						c++;
						p = hit + sub.u.s.n;
					}
				}
				*res = jv_int(c);
			}
			return 0;
		}
		if (!strcmp(name, "rfind")) {
			const char *hit = NULL, *p;
			struct jv sub;

			if (!a0)
				jr_fail(r, -EINVAL, off, "rfind() takes one argument");
			sub = want_str(r, off, name, *a0);
			for (p = obj.u.s.p; (p = find_sub(p, (size_t)(obj.u.s.p + obj.u.s.n - p), sub.u.s.p,
			    sub.u.s.n)); p++) {
				hit = p;
				if (p == obj.u.s.p + obj.u.s.n)
					break;
			}
			*res = jv_int(hit ? (int64_t)ju_len(obj.u.s.p, (size_t)(hit - obj.u.s.p)) : -1);
			return 0;
		}
		if (!strcmp(name, "splitlines")) {
			const char *p = obj.u.s.p, *end = p + obj.u.s.n, *ls = p;

			*res = jv_list(r, 0);
			while (p < end) {
				if (*p == '\n' || *p == '\r') {
					jl_push(r, res->u.l, jv_str(ls, (size_t)(p - ls)));
					if (*p == '\r' && p + 1 < end && p[1] == '\n')
						p++;
					ls = ++p;
				} else {
					p++;
				}
			}
			if (ls < end)
				jl_push(r, res->u.l, jv_str(ls, (size_t)(end - ls)));
			return 0;
		}
		if (!strcmp(name, "isdigit") || !strcmp(name, "isalpha") || !strcmp(name, "isalnum") ||
		    !strcmp(name, "isspace")) {
			size_t i;
			int ok = obj.u.s.n > 0;

			for (i = 0; i < obj.u.s.n && ok; i++) {
				int c = (unsigned char)obj.u.s.p[i];

				ok = name[2] == 'd' ? isdigit(c) : name[2] == 's' ? isspace(c) :
				    name[4] == 'p' ? isalpha(c) : isalnum(c);
			}
			*res = jv_bool(ok);
			return 0;
		}
		if (!strcmp(name, "join")) {
			if (!a0)
				jr_fail(r, -EINVAL, off, "join() takes one argument");
			*res = join(r, off, *a0, obj, NULL);
			return 0;
		}
		return -ENOENT;
	}
	if (obj.t == JV_DICT) {
		if (!strcmp(name, "items")) {
			*res = items_of(r, obj);
			return 0;
		}
		if (!strcmp(name, "keys") || !strcmp(name, "values")) {
			size_t i;

			*res = jv_list(r, obj.u.d->n);
			for (i = 0; i < obj.u.d->n; i++)
				jl_push(r, res->u.l, name[0] == 'k' ? obj.u.d->k[i] : obj.u.d->v[i]);
			return 0;
		}
		if (!strcmp(name, "get")) {
			struct jv *v;

			if (!a0)
				jr_fail(r, -EINVAL, off, "get() takes a key");
			v = jd_get(obj.u.d, *a0);
			*res = v ? *v : a1 ? *a1 : jv_none();
			return 0;
		}
	}
	return -ENOENT;
}

static int test_named(struct jrender *r, size_t off, const char *name, struct jv v,
    struct jv *args, size_t nargs)
{
	const struct jv *a0 = nargs ? &args[0] : NULL;

	if (!strcmp(name, "defined"))
		return v.t != JV_UNDEF;
	if (!strcmp(name, "undefined"))
		return v.t == JV_UNDEF;
	if (!strcmp(name, "none"))
		return v.t == JV_NONE;
	if (!strcmp(name, "boolean"))
		return v.t == JV_BOOL;
	if (!strcmp(name, "true"))
		return v.t == JV_BOOL && v.u.b;
	if (!strcmp(name, "false"))
		return v.t == JV_BOOL && !v.u.b;
	if (!strcmp(name, "string"))
		return v.t == JV_STR;
	if (!strcmp(name, "number"))
		return v.t == JV_INT || v.t == JV_FLOAT;
	if (!strcmp(name, "integer"))
		return v.t == JV_INT;
	if (!strcmp(name, "float"))
		return v.t == JV_FLOAT;
	if (!strcmp(name, "mapping"))
		return v.t == JV_DICT;
	if (!strcmp(name, "iterable"))
		return v.t == JV_LIST || v.t == JV_DICT || v.t == JV_STR || v.t == JV_UNDEF;
	if (!strcmp(name, "sequence"))
		return v.t == JV_LIST || v.t == JV_DICT || v.t == JV_STR;
	if (!strcmp(name, "callable"))
		return v.t == JV_MACRO || v.t == JV_FUNC;
	if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
		size_t i;

		if (v.t != JV_STR)
			return 0;
		for (i = 0; i < v.u.s.n; i++)
			if (name[0] == 'l' ? isupper((unsigned char)v.u.s.p[i]) :
			    islower((unsigned char)v.u.s.p[i]))
				return 0;
		return 1;
	}
	if (!strcmp(name, "even") || !strcmp(name, "odd")) {
		int64_t i = want_int(r, off, name, v);

		return ((i % 2) == 0) == (name[0] == 'e');
	}
	if (!strcmp(name, "divisibleby")) {
		int64_t d;

		if (!a0)
			jr_fail(r, -EINVAL, off, "divisibleby needs an argument");
		d = want_int(r, off, name, *a0);
		if (d == 0)
			jr_fail(r, -EDOM, off, "division by zero");
		return want_int(r, off, name, v) % d == 0;
	}
	if (!a0 && (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==") ||
	    !strcmp(name, "sameas") || !strcmp(name, "in") || !strcmp(name, "ne")))
		jr_fail(r, -EINVAL, off, "test '%s' needs an argument", name);
	if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "=="))
		return jv_eq(v, *a0);
	if (!strcmp(name, "ne") || !strcmp(name, "!="))
		return !jv_eq(v, *a0);
	if (!strcmp(name, "sameas"))
		return v.t == a0->t && jv_eq(v, *a0);
	if (!strcmp(name, "in")) {
		size_t i;

		if (a0->t == JV_LIST) {
			for (i = 0; i < a0->u.l->n; i++)
				if (jv_eq(a0->u.l->v[i], v))
					return 1;
			return 0;
		}
		if (a0->t == JV_DICT)
			return jd_get(a0->u.d, v) != NULL;
		if (a0->t == JV_STR && v.t == JV_STR)
			return find_sub(a0->u.s.p, a0->u.s.n, v.u.s.p, v.u.s.n) != NULL;
		jr_fail(r, -EINVAL, off, "test 'in': cannot search a %s", jv_typename(*a0));
	}
	jr_fail(r, -EINVAL, off, "no test named '%s'", name);
}

int jb_test(struct jrender *r, const struct jnode *n, struct jv v, struct jv *args,
    size_t nargs)
{
	return test_named(r, n->off, n->name, v, args, nargs);
}

static struct jv length_of(struct jrender *r, size_t off, struct jv v)
{
	switch (v.t) {
	case JV_STR: return jv_int((int64_t)ju_len(v.u.s.p, v.u.s.n));
	case JV_LIST: return jv_int((int64_t)v.u.l->n);
	case JV_DICT: case JV_NS: return jv_int((int64_t)v.u.d->n);
	case JV_UNDEF: return jv_int(0);
	default:
		jr_fail(r, -EINVAL, off, "object of type %s has no length", jv_typename(v));
	}
}

static struct jv to_list(struct jrender *r, size_t off, struct jv v)
{
	struct jv res;
	size_t i;

	switch (v.t) {
	case JV_LIST:
		return v;
	case JV_DICT:
		res = jv_list(r, v.u.d->n);
		for (i = 0; i < v.u.d->n; i++)
			jl_push(r, res.u.l, v.u.d->k[i]);
		return res;
	case JV_STR: {
		size_t cnt, *o = ju_offsets(r, v.u.s.p, v.u.s.n, &cnt);

		res = jv_list(r, cnt);
		for (i = 0; i < cnt; i++)
			jl_push(r, res.u.l, jv_str(v.u.s.p + o[i], o[i + 1] - o[i]));
		return res;
	}
	case JV_UNDEF:
		return jv_list(r, 0);
	default:
		jr_fail(r, -EINVAL, off, "a value of type %s is not iterable", jv_typename(v));
	}
}

static struct jv indent(struct jrender *r, size_t off, struct jv s, struct jv *args,
    const char **kw, size_t nargs)
{
	const struct jv *w = arg(args, kw, nargs, 0, "width");
	const struct jv *first = arg(args, kw, nargs, 1, "first");
	const struct jv *blank = arg(args, kw, nargs, 2, "blank");
	struct buf *pad = jr_buf_open(r, off), *b;
	const char *p = s.u.s.p, *end = p + s.u.s.n;
	int line = 0;
	struct jv res;

	if (w && w->t == JV_STR)
		buf_add(pad, w->u.s.p, w->u.s.n);
	else {
		int64_t i, n = w ? want_int(r, off, "indent", *w) : 4;

		for (i = 0; i < n && i < 1024; i++)
			buf_addch(pad, ' ');
	}
	b = jr_buf_open(r, off);
	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		int empty = le == p;

		if ((line > 0 || (first && jv_truthy(*first))) && (!empty || (blank && jv_truthy(*blank))))
			buf_add(b, pad->buf, pad->len);
		buf_add(b, p, (size_t)(le - p));
		if (!nl)
			break;
		buf_addch(b, '\n');
		p = nl + 1;
		line++;
		if (b->len > r->lim.max_output)
			break;
	}
	res = jr_buf_close(r, b);
	jr_buf_drop(r, pad);
	return res;
}

static struct jv attr_of(struct jv v, struct jv name)
{
	struct jv *a;

	if ((v.t == JV_DICT || v.t == JV_NS) && name.t == JV_STR) {
		const char *p = name.u.s.p, *dot;
		size_t n = name.u.s.n;

		/* "a.b" walks nested attributes */
		while ((dot = memchr(p, '.', n))) {
			a = (v.t == JV_DICT || v.t == JV_NS) ? jd_gets(v.u.d, p, (size_t)(dot - p)) : NULL;
			if (!a)
				return jv_undef(NULL);
			v = *a;
			n -= (size_t)(dot - p) + 1;
			p = dot + 1;
		}
		if (v.t != JV_DICT && v.t != JV_NS)
			return jv_undef(NULL);
		a = jd_gets(v.u.d, p, n);
		return a ? *a : jv_undef(NULL);
	}
	return jv_undef(NULL);
}

/* select/reject/selectattr/rejectattr */
static struct jv select_items(struct jrender *r, const struct jnode *n, struct jv seq,
    struct jv *args, size_t nargs, int by_attr, int keep)
{
	struct jv res = jv_list(r, 0), *targs = args + (by_attr ? 2 : 1);
	size_t i, ntargs = nargs > (size_t)(by_attr ? 2 : 1) ? nargs - (by_attr ? 2 : 1) : 0;
	const char *test = NULL;

	seq = to_list(r, n->off, seq);
	if (by_attr && nargs < 1)
		jr_fail(r, -EINVAL, n->off, "%s needs an attribute name", n->name);
	if (nargs > (size_t)(by_attr ? 1 : 0)) {
		struct jv t = want_str(r, n->off, n->name, args[by_attr ? 1 : 0]);

		test = jv_strdup(r, t.u.s.p, t.u.s.n).u.s.p;
	}
	for (i = 0; i < seq.u.l->n; i++) {
		struct jv v = by_attr ? attr_of(seq.u.l->v[i], args[0]) : seq.u.l->v[i];
		int ok = test ? test_named(r, n->off, test, v, targs, ntargs) : jv_truthy(v);

		if (ok == keep)
			jl_push(r, res.u.l, seq.u.l->v[i]);
	}
	return res;
}

struct keyed {
	struct jv key, item;
};

static void merge_sort(struct jrender *r, struct keyed *v, struct keyed *tmp, size_t n,
    int fold_case, size_t off)
{
	size_t mid = n / 2, i = 0, j = mid, k = 0;

	if (n < 2)
		return;
	merge_sort(r, v, tmp, mid, fold_case, off);
	merge_sort(r, v + mid, tmp, n - mid, fold_case, off);
	while (i < mid && j < n)
		tmp[k++] = jv_cmp(r, v[j].key, v[i].key, fold_case, off) < 0 ? v[j++] : v[i++];
	while (i < mid)
		tmp[k++] = v[i++];
	while (j < n)
		tmp[k++] = v[j++];
	memcpy(v, tmp, n * sizeof(*v));
}

/* Items of seq with their sort keys (the item or its attribute), sorted
 * stably when sort is set. */
static struct keyed *keyed_items(struct jrender *r, size_t off, struct jlist *l,
    const struct jv *attribute, int fold_case, int sort)
{
	struct keyed *v = jr_alloc(r, (l->n + 1) * sizeof(*v));
	size_t i;

	for (i = 0; i < l->n; i++) {
		v[i].item = l->v[i];
		v[i].key = attribute && attribute->t != JV_NONE ? attr_of(l->v[i], *attribute) : l->v[i];
	}
	if (sort)
		merge_sort(r, v, jr_alloc(r, (l->n + 1) * sizeof(*v)), l->n, fold_case, off);
	return v;
}

struct jv jb_filter(struct jrender *r, const struct jnode *n, struct jv v,
    struct jv *args, const char **kw, size_t nargs)
{
	const char *name = n->name;
	size_t off = n->off;
	const struct jv *a0 = arg(args, kw, nargs, 0, NULL);

	if (!strcmp(name, "default") || !strcmp(name, "d")) {
		const struct jv *dv = arg(args, kw, nargs, 0, "default_value");
		const struct jv *boolean = arg(args, kw, nargs, 1, "boolean");

		if (v.t == JV_UNDEF || (boolean && jv_truthy(*boolean) && !jv_truthy(v)))
			return dv ? *dv : jv_str("", 0);
		return v;
	}
	if (!strcmp(name, "length") || !strcmp(name, "count"))
		return length_of(r, off, v);
	if (!strcmp(name, "tojson")) {
		const struct jv *ea = arg(args, kw, nargs, 0, "ensure_ascii");
		const struct jv *ind = arg(args, kw, nargs, 1, "indent");
		const struct jv *sk = arg(args, kw, nargs, 3, "sort_keys");
		struct buf *b;
		int indent = -1;

		if (ind && ind->t != JV_NONE) {
			int64_t i = want_int(r, off, "tojson indent", *ind);

			indent = i < 0 ? 0 : i > 64 ? 64 : (int)i;
		}
		const struct jv *seps = arg(args, kw, nargs, 2, "separators");

		if (seps && seps->t == JV_NONE)
			seps = NULL;
		b = jr_buf_open(r, off);
		jv_to_json(r, b, v, ea && jv_truthy(*ea), indent, sk && jv_truthy(*sk), seps, off);
		return jr_buf_close(r, b);
	}
	if (!strcmp(name, "safe"))
		return v;
	if (!strcmp(name, "string"))
		return jv_stringify(r, v, off);
	if (!strcmp(name, "list"))
		return to_list(r, off, v);
	if (!strcmp(name, "items")) {
		if (v.t == JV_UNDEF)
			return jv_list(r, 0);
		if (v.t != JV_DICT)
			jr_fail(r, -EINVAL, off, "items: expected a mapping, got %s", jv_typename(v));
		return items_of(r, v);
	}
	if (!strcmp(name, "join")) {
		const struct jv *sep = arg(args, kw, nargs, 0, "d");

		return join(r, off, to_list(r, off, v), sep ? *sep : jv_str("", 0),
		    arg(args, kw, nargs, 1, "attribute"));
	}
	if (!strcmp(name, "first") || !strcmp(name, "last")) {
		struct jv l = to_list(r, off, v);

		if (l.u.l->n == 0)
			return jv_undef(NULL);
		return l.u.l->v[name[0] == 'f' ? 0 : l.u.l->n - 1];
	}
	if (!strcmp(name, "reverse")) {
		struct jv l = to_list(r, off, v), res;
		size_t i;

		if (v.t == JV_STR) {
			char *p = jr_alloc(r, v.u.s.n + 1);
			size_t len = 0;

			for (i = l.u.l->n; i-- > 0;) {
				memcpy(p + len, l.u.l->v[i].u.s.p, l.u.l->v[i].u.s.n);
				len += l.u.l->v[i].u.s.n;
			}
			p[len] = '\0';
			return jv_str(p, len);
		}
		res = jv_list(r, l.u.l->n);
		for (i = l.u.l->n; i-- > 0;)
			jl_push(r, res.u.l, l.u.l->v[i]);
		return res;
	}
	if (!strcmp(name, "map")) {
		const struct jv *attribute = arg(args, kw, nargs, 99, "attribute");
		const struct jv *dflt = arg(args, kw, nargs, 99, "default");
		struct jv l = to_list(r, off, v), res = jv_list(r, l.u.l->n);
		size_t i;

		if (!attribute && (!a0 || a0->t != JV_STR))
			jr_fail(r, -EINVAL, off, "map needs a filter name or attribute=");
		for (i = 0; i < l.u.l->n; i++) {
			struct jv x;

			if (attribute) {
				x = attr_of(l.u.l->v[i], *attribute);
				if (x.t == JV_UNDEF && dflt)
					x = *dflt;
			} else {
				struct jnode fn = *n;

				fn.name = jv_strdup(r, a0->u.s.p, a0->u.s.n).u.s.p;
				if (!strcmp(fn.name, "map"))
					jr_fail(r, -EINVAL, off, "map cannot apply map");
				x = jb_filter(r, &fn, l.u.l->v[i], args + 1, kw ? kw + 1 : NULL,
				    nargs - 1);
			}
			jl_push(r, res.u.l, x);
		}
		return res;
	}
	if (!strcmp(name, "sort") || !strcmp(name, "unique") || !strcmp(name, "min") ||
	    !strcmp(name, "max")) {
		const struct jv *rev = arg(args, kw, nargs, 0, "reverse");
		const struct jv *cs = arg(args, kw, nargs, name[1] == 'o' ? 1 : 0, "case_sensitive");
		const struct jv *attribute = arg(args, kw, nargs, name[1] == 'o' ? 2 :
		    name[0] == 'u' ? 1 : 1, "attribute");
		struct jlist *l = to_list(r, off, v).u.l;
		int fold_case = !(cs && jv_truthy(*cs));
		struct keyed *kv;
		struct jv res;
		size_t i;

		if (name[0] != 's')
			rev = NULL;  /* only sort takes reverse */
		if (name[0] == 'u') {
			res = jv_list(r, l->n);
			kv = keyed_items(r, off, l, attribute, fold_case, 0);
			for (i = 0; i < l->n; i++) {
				size_t k;

				for (k = 0; k < i; k++) {
					struct jv a = kv[k].key, b = kv[i].key;

					if (a.t == JV_STR && b.t == JV_STR ? jv_cmp(r, a, b, fold_case, off) == 0 :
					    jv_eq(a, b))
						break;
				}
				if (k == i)
					jl_push(r, res.u.l, kv[i].item);
			}
			return res;
		}
		kv = keyed_items(r, off, l, attribute, fold_case, 1);
		if (name[1] == 'i' || name[1] == 'a') {
			if (l->n == 0)
				return jv_undef(NULL);
			return name[1] == 'i' ? kv[0].item : kv[l->n - 1].item;
		}
		res = jv_list(r, l->n);
		for (i = 0; i < l->n; i++)
			jl_push(r, res.u.l, kv[rev && jv_truthy(*rev) ? l->n - 1 - i : i].item);
		return res;
	}
	if (!strcmp(name, "dictsort")) {
		const struct jv *cs = arg(args, kw, nargs, 0, "case_sensitive");
		const struct jv *by = arg(args, kw, nargs, 1, "by");
		const struct jv *rev = arg(args, kw, nargs, 2, "reverse");
		struct jv pairs, res;
		struct keyed *kv;
		size_t i;
		int by_value = by && by->t == JV_STR && by->u.s.n == 5 && !memcmp(by->u.s.p, "value", 5);

		if (v.t != JV_DICT)
			jr_fail(r, -EINVAL, off, "dictsort: expected a mapping, got %s", jv_typename(v));
		pairs = items_of(r, v);
		kv = jr_alloc(r, (pairs.u.l->n + 1) * sizeof(*kv));
		for (i = 0; i < pairs.u.l->n; i++) {
			kv[i].item = pairs.u.l->v[i];
			kv[i].key = pairs.u.l->v[i].u.l->v[by_value ? 1 : 0];
		}
		merge_sort(r, kv, jr_alloc(r, (pairs.u.l->n + 1) * sizeof(*kv)), pairs.u.l->n,
		    !(cs && jv_truthy(*cs)), off);
		res = jv_list(r, pairs.u.l->n);
		for (i = 0; i < pairs.u.l->n; i++)
			jl_push(r, res.u.l, kv[rev && jv_truthy(*rev) ? pairs.u.l->n - 1 - i : i].item);
		return res;
	}
	if (!strcmp(name, "sum")) {
		const struct jv *attribute = arg(args, kw, nargs, 0, "attribute");
		const struct jv *start = arg(args, kw, nargs, 1, "start");
		struct jlist *l = to_list(r, off, v).u.l;
		int64_t acc = 0;
		double facc = 0;
		int is_float = 0;
		size_t i;

		if (start) {
			if (start->t == JV_FLOAT) {
				is_float = 1;
				facc = start->u.f;
			} else {
				acc = want_int(r, off, "sum", *start);
			}
		}
		for (i = 0; i < l->n; i++) {
			struct jv x = attribute ? attr_of(l->v[i], *attribute) : l->v[i];

			if (x.t == JV_FLOAT && !is_float) {
				is_float = 1;
				facc = (double)acc;
			}
			if (x.t == JV_FLOAT)
				facc += x.u.f;
			else if (is_float)
				facc += (double)want_int(r, off, "sum", x);
			else if (__builtin_add_overflow(acc, want_int(r, off, "sum", x), &acc))
				jr_fail(r, -ERANGE, off, "integer overflow");
		}
		return is_float ? jv_float(facc) : jv_int(acc);
	}
	if (!strcmp(name, "round")) {
		const struct jv *prec = arg(args, kw, nargs, 0, "precision");
		const struct jv *method = arg(args, kw, nargs, 1, "method");
		double x, m;
		int64_t p = prec ? want_int(r, off, "round", *prec) : 0;

		if (v.t != JV_INT && v.t != JV_FLOAT && v.t != JV_BOOL)
			jr_fail(r, -EINVAL, off, "round: expected a number, got %s", jv_typename(v));
		x = v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
		if (p < -15 || p > 15)
			jr_fail(r, -EINVAL, off, "round: precision out of range");
		m = pow(10.0, (double)p);
		if (method && method->t == JV_STR && !strcmp(jv_strdup(r, method->u.s.p, method->u.s.n).u.s.p, "floor"))
			return jv_float(floor(x * m) / m);
		if (method && method->t == JV_STR && !strcmp(jv_strdup(r, method->u.s.p, method->u.s.n).u.s.p, "ceil"))
			return jv_float(ceil(x * m) / m);
		return jv_float(round(x * m) / m);
	}
	if (!strcmp(name, "select") || !strcmp(name, "reject"))
		return select_items(r, n, v, args, nargs, 0, name[0] == 's');
	if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr"))
		return select_items(r, n, v, args, nargs, 1, name[0] == 's');
	if (!strcmp(name, "int")) {
		const struct jv *dflt = arg(args, kw, nargs, 0, "default");

		if (v.t == JV_INT)
			return v;
		if (v.t == JV_BOOL)
			return jv_int(v.u.b);
		if (v.t == JV_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18)
			return jv_int((int64_t)v.u.f);
		if (v.t == JV_STR) {
			char *end;
			struct jv s = jv_strdup(r, v.u.s.p, v.u.s.n);
			long long i;

			errno = 0;
			i = strtoll(s.u.s.p, &end, 10);
			if (!errno && end != s.u.s.p && *strip(jv_str(end, strlen(end)), NULL, 1, 1).u.s.p == '\0')
				return jv_int(i);
		}
		return dflt ? *dflt : jv_int(0);
	}
	if (!strcmp(name, "float")) {
		const struct jv *dflt = arg(args, kw, nargs, 0, "default");

		if (v.t == JV_FLOAT)
			return v;
		if (v.t == JV_INT || v.t == JV_BOOL)
			return jv_float(v.t == JV_INT ? (double)v.u.i : v.u.b);
		if (v.t == JV_STR) {
			struct jv s = jv_strdup(r, v.u.s.p, v.u.s.n);
			char *end;
			double f = strtod(s.u.s.p, &end);

			if (end != s.u.s.p && *end == '\0')
				return jv_float(f);
		}
		return dflt ? *dflt : jv_float(0.0);
	}
	if (!strcmp(name, "abs")) {
		if (v.t == JV_INT)
			return jv_int(v.u.i < 0 && v.u.i != INT64_MIN ? -v.u.i : v.u.i);
		if (v.t == JV_FLOAT)
			return jv_float(fabs(v.u.f));
		jr_fail(r, -EINVAL, off, "abs: expected a number, got %s", jv_typename(v));
	}
	if (v.t == JV_UNDEF && (!strcmp(name, "trim") || !strcmp(name, "lower") ||
	    !strcmp(name, "upper") || !strcmp(name, "title") || !strcmp(name, "capitalize") ||
	    !strcmp(name, "replace") || !strcmp(name, "indent")))
		return jv_str("", 0);
	if (!strcmp(name, "trim"))
		return strip(jv_stringify(r, v, off), arg(args, kw, nargs, 0, "chars"), 1, 1);
	if (!strcmp(name, "lower") || !strcmp(name, "upper") || !strcmp(name, "title") ||
	    !strcmp(name, "capitalize"))
		return map_chars(r, off, jv_stringify(r, v, off), name[0] == 'l' ? 'l' :
		    name[0] == 'u' ? 'u' : name[0] == 't' ? 't' : 'c');
	if (!strcmp(name, "replace")) {
		const struct jv *a1 = arg(args, kw, nargs, 1, NULL), *a2 = arg(args, kw, nargs, 2, "count");

		if (!a0 || !a1)
			jr_fail(r, -EINVAL, off, "replace needs two arguments");
		return replace(r, off, jv_stringify(r, v, off), jv_stringify(r, *a0, off),
		    jv_stringify(r, *a1, off), a2 && a2->t != JV_NONE ? want_int(r, off, "replace", *a2) : -1);
	}
	if (!strcmp(name, "indent"))
		return indent(r, off, jv_stringify(r, v, off), args, kw, nargs);
	jr_fail(r, -EINVAL, off, "no filter named '%s'", name);
}

static const struct { const char *name; enum jfunc fn; } funcs[] = {
	{ "namespace", JF_NAMESPACE },
	{ "range", JF_RANGE },
	{ "raise_exception", JF_RAISE },
	{ "dict", JF_DICT },
	{ "strftime_now", JF_STRFTIME },
};

int jb_lookup_func(const char *name, size_t n, struct jv *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(funcs); i++) {
		if (strlen(funcs[i].name) == n && !memcmp(funcs[i].name, name, n)) {
			out->t = JV_FUNC;
			out->u.fn = (int)funcs[i].fn;
			return 1;
		}
	}
	return 0;
}

struct jv jb_call_func(struct jrender *r, size_t off, int fn, struct jv *args,
    const char **kw, size_t nargs)
{
	struct jv res;
	size_t i;

	switch (fn) {
	case JF_NAMESPACE:
	case JF_DICT:
		res = jv_dict(r, nargs);
		res.t = fn == JF_NAMESPACE ? JV_NS : JV_DICT;
		for (i = 0; i < nargs; i++) {
			if (kw && kw[i]) {
				jd_set(r, res.u.d, jv_cstr(kw[i]), args[i]);
			} else if (args[i].t == JV_DICT || args[i].t == JV_NS) {
				size_t k;

				for (k = 0; k < args[i].u.d->n; k++)
					jd_set(r, res.u.d, args[i].u.d->k[k], args[i].u.d->v[k]);
			} else {
				jr_fail(r, -EINVAL, off, "%s() takes keyword arguments or a mapping",
				    fn == JF_NAMESPACE ? "namespace" : "dict");
			}
		}
		return res;
	case JF_RANGE: {
		int64_t start = 0, stop, step = 1, k;

		if (nargs < 1 || nargs > 3)
			jr_fail(r, -EINVAL, off, "range() takes 1 to 3 arguments");
		if (nargs == 1) {
			stop = want_int(r, off, "range", args[0]);
		} else {
			start = want_int(r, off, "range", args[0]);
			stop = want_int(r, off, "range", args[1]);
			if (nargs == 3)
				step = want_int(r, off, "range", args[2]);
		}
		if (step == 0)
			jr_fail(r, -EINVAL, off, "range() step must not be zero");
		res = jv_list(r, 0);
		for (k = start; step > 0 ? k < stop : k > stop; k += step) {
			if (res.u.l->n >= r->lim.max_iterations)
				jr_fail(r, -ELOOP, off, "range() too long");
			jl_push(r, res.u.l, jv_int(k));
			if ((step > 0 && k > INT64_MAX - step) || (step < 0 && k < INT64_MIN - step))
				break;
		}
		return res;
	}
	case JF_RAISE: {
		struct jv msg = nargs ? jv_stringify(r, args[0], off) : jv_str("", 0);

		jr_fail(r, -EINVAL, off, "%.*s", (int)MIN(msg.u.s.n, 450), msg.u.s.p);
	}
	case JF_STRFTIME: {
		char out[256];
		time_t now = time(NULL);
		struct tm tm;
		size_t len;
		struct jv f;

		if (nargs != 1)
			jr_fail(r, -EINVAL, off, "strftime_now() takes a format");
		f = jv_strdup(r, want_str(r, off, "strftime_now", args[0]).u.s.p, args[0].u.s.n);
		localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		len = strftime(out, sizeof(out), f.u.s.p, &tm);
#pragma GCC diagnostic pop
		return jv_strdup(r, out, len);
	}
	}
	jr_fail(r, -EINVAL, off, "unknown function");
}
