/*
 * engine/jinja-eval.c - the renderer: walks the syntax tree with Jinja2's
 * semantics (scopes per loop iteration and macro call, namespace
 * attributes, Undefined that prints as nothing but fails on attribute
 * access), Python operators, and the limits; jinja_render().
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/jinja-impl.h"
#include "lib/log.h"
#include "lib/util.h"

#define MAX_CAPTURES 64

enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE };

/* Scratch buffers (outputs of macro calls and {% set %} blocks, strings
 * being built), released on failure too. */
struct capture_stack {
	struct buf b[MAX_CAPTURES];
	int n;
};

static struct capture_stack *caps_of(struct jrender *r);

void jr_fail(struct jrender *r, int code, size_t off, const char *fmt, ...)
{
	char lc[64], msg[480];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jinja_linecol(r->t->src, r->t->len, off, lc, sizeof(lc));
	err_set(r->e, code, lc, "%s", msg);
	longjmp(r->jb, 1);
}

void *jr_alloc(struct jrender *r, size_t n)
{
	void *p = ja_alloc(&r->ar, n);

	if (!p)
		jr_fail(r, -E2BIG, 0, "template render exceeds the memory limit of %zu bytes",
		    r->lim.max_memory);
	return p;
}

static struct jv eval(struct jrender *r, const struct jnode *n);
static int exec_list(struct jrender *r, const struct jnodes *l);

static void enter(struct jrender *r, size_t off)
{
	if (++r->depth > r->lim.max_depth)
		jr_fail(r, -ELOOP, off, "template recursion deeper than %u", r->lim.max_depth);
}

static void emit(struct jrender *r, const char *p, size_t n, size_t off)
{
	if (r->out->len + n > r->lim.max_output)
		jr_fail(r, -E2BIG, off, "template output exceeds %zu bytes", r->lim.max_output);
	buf_add(r->out, p, n);
}

static struct jv lookup(struct jrender *r, const char *name, size_t n)
{
	struct jscope *s;
	struct jv f;

	for (s = r->scope; s; s = s->parent) {
		struct jv *v = jd_gets(&s->vars, name, n);

		if (v)
			return *v;
	}
	if (jb_lookup_func(name, n, &f))
		return f;
	return jv_undef(name);
}

static struct jscope *new_scope(struct jrender *r, struct jscope *parent)
{
	struct jscope *s = jr_alloc(r, sizeof(*s));

	memset(s, 0, sizeof(*s));
	s->parent = parent;
	return s;
}

static void set_var(struct jrender *r, struct jscope *s, const char *name, struct jv v)
{
	jd_set(r, &s->vars, jv_cstr(name), v);
}

static void fail_undefined(struct jrender *r, struct jv v, size_t off)
{
	if (v.u.s.p)
		jr_fail(r, -EINVAL, off, "'%.*s' is undefined", (int)MIN(v.u.s.n, 100), v.u.s.p);
	jr_fail(r, -EINVAL, off, "value is undefined");
}

static struct jv getattr(struct jrender *r, struct jv obj, const char *name, size_t off)
{
	if (obj.t == JV_UNDEF)
		fail_undefined(r, obj, off);
	if (obj.t == JV_DICT || obj.t == JV_NS) {
		struct jv *v = jd_gets(obj.u.d, name, strlen(name));

		if (v)
			return *v;
	}
	return jv_undef(name);
}

static int64_t as_index(struct jrender *r, struct jv k, size_t off)
{
	if (k.t == JV_INT)
		return k.u.i;
	if (k.t == JV_BOOL)
		return k.u.b;
	jr_fail(r, -EINVAL, off, "indices must be integers, not %s", jv_typename(k));
}

static struct jv getitem(struct jrender *r, struct jv obj, struct jv key, size_t off)
{
	if (obj.t == JV_UNDEF)
		fail_undefined(r, obj, off);
	if (obj.t == JV_DICT || obj.t == JV_NS) {
		struct jv *v = jd_get(obj.u.d, key);

		return v ? *v : jv_undef(key.t == JV_STR ? key.u.s.p : NULL);
	}
	if (obj.t == JV_LIST && (key.t == JV_INT || key.t == JV_BOOL)) {
		int64_t i = as_index(r, key, off), n = (int64_t)obj.u.l->n;

		if (i < 0)
			i += n;
		return i >= 0 && i < n ? obj.u.l->v[i] : jv_undef(NULL);
	}
	if (obj.t == JV_STR && (key.t == JV_INT || key.t == JV_BOOL)) {
		size_t cnt, *o = ju_offsets(r, obj.u.s.p, obj.u.s.n, &cnt);
		int64_t i = as_index(r, key, off), n = (int64_t)cnt;

		if (i < 0)
			i += n;
		if (i < 0 || i >= n)
			return jv_undef(NULL);
		return jv_str(obj.u.s.p + o[i], o[i + 1] - o[i]);
	}
	if (obj.t == JV_STR && key.t == JV_STR)
		return jv_undef(key.u.s.p);
	return jv_undef(NULL);
}

/* Python slice index adjustment. */
static void slice_indices(struct jrender *r, const struct jnode *n, int64_t len,
    int64_t *start, int64_t *stop, int64_t *step)
{
	struct jv v;

	*step = 1;
	if (n->d) {
		v = eval(r, n->d);
		if (v.t != JV_NONE && v.t != JV_UNDEF)
			*step = as_index(r, v, n->off);
	}
	if (*step == 0)
		jr_fail(r, -EINVAL, n->off, "slice step cannot be zero");
	if (n->b && (v = eval(r, n->b), v.t != JV_NONE && v.t != JV_UNDEF)) {
		*start = as_index(r, v, n->off);
		if (*start < 0)
			*start += len;
		if (*start < 0)
			*start = *step < 0 ? -1 : 0;
		else if (*start >= len)
			*start = *step < 0 ? len - 1 : len;
	} else {
		*start = *step < 0 ? len - 1 : 0;
	}
	if (n->c && (v = eval(r, n->c), v.t != JV_NONE && v.t != JV_UNDEF)) {
		*stop = as_index(r, v, n->off);
		if (*stop < 0)
			*stop += len;
		if (*stop < 0)
			*stop = *step < 0 ? -1 : 0;
		else if (*stop >= len)
			*stop = *step < 0 ? len - 1 : len;
	} else {
		*stop = *step < 0 ? -1 : len;
	}
}

static struct jv eval_slice(struct jrender *r, const struct jnode *n)
{
	struct jv obj = eval(r, n->a), res;
	int64_t start, stop, step, i;

	if (obj.t == JV_UNDEF)
		fail_undefined(r, obj, n->off);
	if (obj.t == JV_LIST) {
		slice_indices(r, n, (int64_t)obj.u.l->n, &start, &stop, &step);
		res = jv_list(r, 0);
		for (i = start; step > 0 ? i < stop : i > stop; i += step)
			jl_push(r, res.u.l, obj.u.l->v[i]);
		return res;
	}
	if (obj.t == JV_STR) {
		size_t cnt, *o = ju_offsets(r, obj.u.s.p, obj.u.s.n, &cnt);
		char *s = jr_alloc(r, obj.u.s.n + 1);
		size_t len = 0;

		slice_indices(r, n, (int64_t)cnt, &start, &stop, &step);
		for (i = start; step > 0 ? i < stop : i > stop; i += step) {
			memcpy(s + len, obj.u.s.p + o[i], o[i + 1] - o[i]);
			len += o[i + 1] - o[i];
		}
		s[len] = '\0';
		return jv_str(s, len);
	}
	jr_fail(r, -EINVAL, n->off, "cannot slice a value of type %s", jv_typename(obj));
}

static struct jv call_macro(struct jrender *r, const struct jnode *m, struct jv *args,
    const char **kw, size_t nargs, size_t off);

static struct jv call_value(struct jrender *r, struct jv f, struct jv *args,
    const char **kw, size_t nargs, size_t off)
{
	if (f.t == JV_MACRO)
		return call_macro(r, f.u.m, args, kw, nargs, off);
	if (f.t == JV_FUNC)
		return jb_call_func(r, off, f.u.fn, args, kw, nargs);
	if (f.t == JV_UNDEF)
		fail_undefined(r, f, off);
	jr_fail(r, -EINVAL, off, "a value of type %s is not callable", jv_typename(f));
}

static struct jv *eval_args(struct jrender *r, const struct jnode *n)
{
	struct jv *args = jr_alloc(r, (n->l1.n + 1) * sizeof(*args));
	size_t i;

	for (i = 0; i < n->l1.n; i++)
		args[i] = eval(r, n->l1.v[i]);
	return args;
}

static struct jv eval_call(struct jrender *r, const struct jnode *n)
{
	struct jv *args, res;

	if (n->a->k == JE_ATTR) {
		struct jv obj = eval(r, n->a->a);

		if (obj.t == JV_UNDEF)
			fail_undefined(r, obj, n->a->off);
		args = eval_args(r, n);
		if (jb_method(r, n->off, obj, n->a->name, args, n->names, n->l1.n, &res) == 0)
			return res;
		return call_value(r, getattr(r, obj, n->a->name, n->off), args, n->names,
		    n->l1.n, n->off);
	}
	{
		struct jv f = eval(r, n->a);

		args = eval_args(r, n);
		return call_value(r, f, args, n->names, n->l1.n, n->off);
	}
}

static int is_num(struct jv v)
{
	return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
}

static int64_t ival(struct jv v)
{
	return v.t == JV_INT ? v.u.i : v.u.b;
}

static double fval(struct jv v)
{
	return v.t == JV_FLOAT ? v.u.f : (double)ival(v);
}

static const char *const op_names[] = {
	"+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in",
};

static void type_fail(struct jrender *r, const struct jnode *n, struct jv a, struct jv b)
{
	jr_fail(r, -EINVAL, n->off, "unsupported operand types for %s: %s and %s",
	    op_names[n->op], jv_typename(a), jv_typename(b));
}

static struct jv repeat(struct jrender *r, const struct jnode *n, struct jv s, int64_t times)
{
	struct jv res;
	int64_t i;

	if (times < 0)
		times = 0;
	if (s.t == JV_STR) {
		char *p;

		if (s.u.s.n && (uint64_t)times > r->lim.max_memory / s.u.s.n)
			jr_fail(r, -E2BIG, n->off, "string repetition too large");
		p = jr_alloc(r, s.u.s.n * (size_t)times + 1);
		for (i = 0; i < times; i++)
			memcpy(p + (size_t)i * s.u.s.n, s.u.s.p, s.u.s.n);
		p[s.u.s.n * (size_t)times] = '\0';
		return jv_str(p, s.u.s.n * (size_t)times);
	}
	if (s.u.l->n && (uint64_t)times > r->lim.max_memory / (s.u.l->n * sizeof(struct jv)))
		jr_fail(r, -E2BIG, n->off, "list repetition too large");
	res = jv_list(r, s.u.l->n * (size_t)times);
	for (i = 0; i < times; i++) {
		size_t k;

		for (k = 0; k < s.u.l->n; k++)
			jl_push(r, res.u.l, s.u.l->v[k]);
	}
	return res;
}

static int compare(struct jrender *r, const struct jnode *n, struct jv a, struct jv b)
{
	if ((a.t == JV_LIST) != (b.t == JV_LIST) || (a.t != JV_LIST && a.t != JV_STR && !is_num(a)))
		type_fail(r, n, a, b);
	return jv_cmp(r, a, b, 0, n->off);
}

static int contains(struct jrender *r, const struct jnode *n, struct jv item, struct jv coll)
{
	size_t i;

	switch (coll.t) {
	case JV_STR:
		if (item.t != JV_STR)
			jr_fail(r, -EINVAL, n->off, "'in <string>' requires a string on the left, not %s",
			    jv_typename(item));
		if (item.u.s.n == 0)
			return 1;
		if (item.u.s.n > coll.u.s.n)
			return 0;
		for (i = 0; i + item.u.s.n <= coll.u.s.n; i++)
			if (!memcmp(coll.u.s.p + i, item.u.s.p, item.u.s.n))
				return 1;
		return 0;
	case JV_LIST:
		for (i = 0; i < coll.u.l->n; i++)
			if (jv_eq(coll.u.l->v[i], item))
				return 1;
		return 0;
	case JV_DICT: case JV_NS:
		return jd_get(coll.u.d, item) != NULL;
	case JV_UNDEF:
		return 0;
	default:
		jr_fail(r, -EINVAL, n->off, "argument of type %s is not iterable", jv_typename(coll));
	}
}

static struct jv eval_bin(struct jrender *r, const struct jnode *n)
{
	struct jv a = eval(r, n->a), b = eval(r, n->b), res;
	int64_t x;

	switch (n->op) {
	case JO_ADD:
		if (a.t == JV_STR && b.t == JV_STR) {
			char *p = jr_alloc(r, a.u.s.n + b.u.s.n + 1);

			memcpy(p, a.u.s.p, a.u.s.n);
			memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
			p[a.u.s.n + b.u.s.n] = '\0';
			return jv_str(p, a.u.s.n + b.u.s.n);
		}
		if (a.t == JV_LIST && b.t == JV_LIST) {
			size_t i;

			res = jv_list(r, a.u.l->n + b.u.l->n);
			for (i = 0; i < a.u.l->n; i++)
				jl_push(r, res.u.l, a.u.l->v[i]);
			for (i = 0; i < b.u.l->n; i++)
				jl_push(r, res.u.l, b.u.l->v[i]);
			return res;
		}
		if (!is_num(a) || !is_num(b))
			type_fail(r, n, a, b);
		if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
			if (__builtin_add_overflow(ival(a), ival(b), &x))
				jr_fail(r, -ERANGE, n->off, "integer overflow");
			return jv_int(x);
		}
		return jv_float(fval(a) + fval(b));
	case JO_SUB:
		if (!is_num(a) || !is_num(b))
			type_fail(r, n, a, b);
		if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
			if (__builtin_sub_overflow(ival(a), ival(b), &x))
				jr_fail(r, -ERANGE, n->off, "integer overflow");
			return jv_int(x);
		}
		return jv_float(fval(a) - fval(b));
	case JO_MUL:
		if ((a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL))
			return repeat(r, n, a, ival(b));
		if ((b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL))
			return repeat(r, n, b, ival(a));
		if (!is_num(a) || !is_num(b))
			type_fail(r, n, a, b);
		if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
			if (__builtin_mul_overflow(ival(a), ival(b), &x))
				jr_fail(r, -ERANGE, n->off, "integer overflow");
			return jv_int(x);
		}
		return jv_float(fval(a) * fval(b));
	case JO_DIV:
		if (!is_num(a) || !is_num(b))
			type_fail(r, n, a, b);
		if (fval(b) == 0.0)
			jr_fail(r, -EDOM, n->off, "division by zero");
		return jv_float(fval(a) / fval(b));
	case JO_FLOORDIV:
	case JO_MOD:
		if (!is_num(a) || !is_num(b))
			type_fail(r, n, a, b);
		if (fval(b) == 0.0)
			jr_fail(r, -EDOM, n->off, "division by zero");
		if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
			int64_t p = ival(a), q = ival(b), d, m;

			if (p == INT64_MIN && q == -1)
				jr_fail(r, -ERANGE, n->off, "integer overflow");
			d = p / q;
			m = p % q;
			if (m != 0 && ((m < 0) != (q < 0))) {
				d--;
				m += q;
			}
			return jv_int(n->op == JO_FLOORDIV ? d : m);
		} else {
			double p = fval(a), q = fval(b), m = fmod(p, q);

			if (m != 0 && ((m < 0) != (q < 0)))
				m += q;
			return jv_float(n->op == JO_FLOORDIV ? floor(p / q) : m);
		}
	case JO_POW:
		if (!is_num(a) || !is_num(b))
			type_fail(r, n, a, b);
		if (a.t != JV_FLOAT && b.t != JV_FLOAT && ival(b) >= 0) {
			int64_t base = ival(a), e = ival(b), acc = 1;

			while (e-- > 0)
				if (__builtin_mul_overflow(acc, base, &acc))
					jr_fail(r, -ERANGE, n->off, "integer overflow");
			return jv_int(acc);
		}
		return jv_float(pow(fval(a), fval(b)));
	case JO_CAT: {
		struct buf *s = jr_buf_open(r, n->off);

		jv_to_str(r, s, a, n->off);
		jv_to_str(r, s, b, n->off);
		return jr_buf_close(r, s);
	}
	case JO_EQ: return jv_bool(jv_eq(a, b));
	case JO_NE: return jv_bool(!jv_eq(a, b));
	case JO_LT: return jv_bool(compare(r, n, a, b) < 0);
	case JO_GT: return jv_bool(compare(r, n, a, b) > 0);
	case JO_LE: return jv_bool(compare(r, n, a, b) <= 0);
	case JO_GE: return jv_bool(compare(r, n, a, b) >= 0);
	case JO_IN: return jv_bool(contains(r, n, a, b));
	case JO_NOTIN: return jv_bool(!contains(r, n, a, b));
	}
	jr_fail(r, -EINVAL, n->off, "bad operator");
}

static struct jv eval(struct jrender *r, const struct jnode *n)
{
	struct jv v, res;
	size_t i;

	enter(r, n->off);
	switch (n->k) {
	case JE_LIT:
		res = n->lit;
		break;
	case JE_NAME:
		res = lookup(r, n->name, n->name_n);
		break;
	case JE_ATTR:
		res = getattr(r, eval(r, n->a), n->name, n->off);
		break;
	case JE_INDEX:
		v = eval(r, n->a);
		res = getitem(r, v, eval(r, n->b), n->off);
		break;
	case JE_SLICE:
		res = eval_slice(r, n);
		break;
	case JE_CALL:
		res = eval_call(r, n);
		break;
	case JE_FILTER:
		v = eval(r, n->a);
		res = jb_filter(r, n, v, eval_args(r, n), n->names, n->l1.n);
		break;
	case JE_TEST:
		v = eval(r, n->a);
		res = jv_bool(jb_test(r, n, v, eval_args(r, n), n->l1.n) ^ n->op);
		break;
	case JE_NEG:
	case JE_POS:
		v = eval(r, n->a);
		if (!is_num(v))
			jr_fail(r, -EINVAL, n->off, "bad operand type for unary %c: %s",
			    n->k == JE_NEG ? '-' : '+', jv_typename(v));
		if (n->k == JE_POS)
			res = v.t == JV_BOOL ? jv_int(v.u.b) : v;
		else if (v.t == JV_FLOAT)
			res = jv_float(-v.u.f);
		else if (ival(v) == INT64_MIN)
			jr_fail(r, -ERANGE, n->off, "integer overflow");
		else
			res = jv_int(-ival(v));
		break;
	case JE_NOT:
		res = jv_bool(!jv_truthy(eval(r, n->a)));
		break;
	case JE_AND:
		v = eval(r, n->a);
		res = jv_truthy(v) ? eval(r, n->b) : v;
		break;
	case JE_OR:
		v = eval(r, n->a);
		res = jv_truthy(v) ? v : eval(r, n->b);
		break;
	case JE_BIN:
		res = eval_bin(r, n);
		break;
	case JE_COND:
		if (jv_truthy(eval(r, n->b)))
			res = eval(r, n->a);
		else
			res = n->c ? eval(r, n->c) : jv_undef(NULL);
		break;
	case JE_LIST:
		res = jv_list(r, n->l1.n);
		for (i = 0; i < n->l1.n; i++)
			jl_push(r, res.u.l, eval(r, n->l1.v[i]));
		break;
	case JE_DICT:
		res = jv_dict(r, n->l1.n);
		for (i = 0; i < n->l1.n; i++) {
			struct jv k = eval(r, n->l1.v[i]);

			jd_set(r, res.u.d, k, eval(r, n->l2.v[i]));
		}
		break;
	default:
		jr_fail(r, -EINVAL, n->off, "not an expression");
	}
	r->depth--;
	return res;
}

static struct capture_stack *caps_of(struct jrender *r)
{
	return (struct capture_stack *)r->caps;
}

struct buf *jr_buf_open(struct jrender *r, size_t off)
{
	struct capture_stack *cs = caps_of(r);
	struct buf *b;

	if (cs->n == MAX_CAPTURES)
		jr_fail(r, -ELOOP, off, "macro calls or filters nested too deeply");
	b = &cs->b[cs->n++];
	buf_init(b, 0);
	return b;
}

void jr_buf_drop(struct jrender *r, struct buf *b)
{
	struct capture_stack *cs = caps_of(r);

	if (cs->n == 0 || b != &cs->b[cs->n - 1])
		fatal("jinja: scratch buffers released out of order");
	buf_release(b);
	cs->n--;
}

struct jv jr_buf_close(struct jrender *r, struct buf *b)
{
	struct jv res = jv_strdup(r, b->buf, b->len);

	jr_buf_drop(r, b);
	return res;
}

/* Runs body with output going to a fresh buffer; returns it as a string. */
static struct jv capture(struct jrender *r, const struct jnodes *body, struct jscope *scope,
    size_t off)
{
	struct buf *saved = r->out, *b = jr_buf_open(r, off);
	struct jscope *saved_scope = r->scope;

	r->out = b;
	r->scope = scope;
	exec_list(r, body);
	r->scope = saved_scope;
	r->out = saved;
	return jr_buf_close(r, b);
}

static struct jv call_macro(struct jrender *r, const struct jnode *m, struct jv *args,
    const char **kw, size_t nargs, size_t off)
{
	struct jscope *s = new_scope(r, r->globals);
	size_t np = m->n_names, nd = m->l2.n, i, k;
	int *bound = jr_alloc(r, (np + 1) * sizeof(*bound));

	memset(bound, 0, (np + 1) * sizeof(*bound));
	for (i = 0, k = 0; i < nargs; i++) {
		if (kw && kw[i]) {
			size_t p;

			for (p = 0; p < np; p++)
				if (!strcmp(m->names[p], kw[i]))
					break;
			if (p == np)
				jr_fail(r, -EINVAL, off, "macro '%s' has no parameter '%s'", m->name, kw[i]);
			set_var(r, s, m->names[p], args[i]);
			bound[p] = 1;
		} else {
			if (k >= np)
				jr_fail(r, -EINVAL, off, "macro '%s' takes %zu arguments", m->name, np);
			set_var(r, s, m->names[k], args[i]);
			bound[k++] = 1;
		}
	}
	for (i = 0; i < np; i++) {
		if (bound[i])
			continue;
		if (i >= np - nd) {
			struct jscope *saved = r->scope;

			r->scope = s;
			set_var(r, s, m->names[i], eval(r, m->l2.v[i - (np - nd)]));
			r->scope = saved;
		} else {
			set_var(r, s, m->names[i], jv_undef(m->names[i]));
		}
	}
	return capture(r, &m->l1, s, off);
}

/* The items a for loop walks. */
static struct jlist *iter_items(struct jrender *r, struct jv v, size_t off)
{
	struct jlist *l;
	size_t i;

	switch (v.t) {
	case JV_LIST:
		return v.u.l;
	case JV_DICT: case JV_NS:
		l = jv_list(r, v.u.d->n).u.l;
		for (i = 0; i < v.u.d->n; i++)
			jl_push(r, l, v.u.d->k[i]);
		return l;
	case JV_STR: {
		size_t cnt, *o = ju_offsets(r, v.u.s.p, v.u.s.n, &cnt);

		l = jv_list(r, cnt).u.l;
		for (i = 0; i < cnt; i++)
			jl_push(r, l, jv_str(v.u.s.p + o[i], o[i + 1] - o[i]));
		return l;
	}
	case JV_UNDEF:
		return jv_list(r, 0).u.l;
	default:
		jr_fail(r, -EINVAL, off, "a value of type %s is not iterable", jv_typename(v));
	}
}

static void bind_targets(struct jrender *r, const struct jnode *n, struct jscope *s, struct jv item)
{
	size_t i;

	if (n->n_names == 1) {
		set_var(r, s, n->names[0], item);
		return;
	}
	if (item.t != JV_LIST || item.u.l->n != n->n_names)
		jr_fail(r, -EINVAL, n->off, "cannot unpack a %s into %zu loop variables",
		    jv_typename(item), n->n_names);
	for (i = 0; i < n->n_names; i++)
		set_var(r, s, n->names[i], item.u.l->v[i]);
}

static void count_iteration(struct jrender *r, size_t off)
{
	if (++r->iters > r->lim.max_iterations)
		jr_fail(r, -ELOOP, off, "template loops exceed %llu iterations",
		    (unsigned long long)r->lim.max_iterations);
}

static int exec_for(struct jrender *r, const struct jnode *n)
{
	struct jlist *items = iter_items(r, eval(r, n->a), n->off);
	struct jscope *outer = r->scope;
	size_t i, len;

	if (n->b) {
		struct jlist *kept = jv_list(r, 0).u.l;

		for (i = 0; i < items->n; i++) {
			struct jscope *s = new_scope(r, outer);

			count_iteration(r, n->off);
			bind_targets(r, n, s, items->v[i]);
			r->scope = s;
			if (jv_truthy(eval(r, n->b)))
				jl_push(r, kept, items->v[i]);
			r->scope = outer;
		}
		items = kept;
	}
	len = items->n;
	if (len == 0)
		return n->l2.n ? exec_list(r, &n->l2) : FLOW_NORMAL;
	for (i = 0; i < len; i++) {
		struct jscope *s = new_scope(r, outer);
		struct jv loop = jv_dict(r, 10);
		struct jdict *d = loop.u.d;
		int flow;

		count_iteration(r, n->off);
		jd_set(r, d, jv_cstr("index"), jv_int((int64_t)i + 1));
		jd_set(r, d, jv_cstr("index0"), jv_int((int64_t)i));
		jd_set(r, d, jv_cstr("revindex"), jv_int((int64_t)(len - i)));
		jd_set(r, d, jv_cstr("revindex0"), jv_int((int64_t)(len - i - 1)));
		jd_set(r, d, jv_cstr("first"), jv_bool(i == 0));
		jd_set(r, d, jv_cstr("last"), jv_bool(i == len - 1));
		jd_set(r, d, jv_cstr("length"), jv_int((int64_t)len));
		jd_set(r, d, jv_cstr("depth"), jv_int(1));
		jd_set(r, d, jv_cstr("depth0"), jv_int(0));
		if (i > 0)
			jd_set(r, d, jv_cstr("previtem"), items->v[i - 1]);
		if (i + 1 < len)
			jd_set(r, d, jv_cstr("nextitem"), items->v[i + 1]);
		set_var(r, s, "loop", loop);
		bind_targets(r, n, s, items->v[i]);
		r->scope = s;
		flow = exec_list(r, &n->l1);
		r->scope = outer;
		if (flow == FLOW_BREAK)
			break;
	}
	return FLOW_NORMAL;
}

static int exec(struct jrender *r, const struct jnode *n)
{
	struct jv v;
	int flow = FLOW_NORMAL;

	enter(r, n->off);
	switch (n->k) {
	case JN_TEXT:
		emit(r, n->name, n->name_n, n->off);
		break;
	case JN_OUT: {
		size_t before = r->out->len;

		v = eval(r, n->a);
		if (v.t == JV_STR) {
			emit(r, v.u.s.p, v.u.s.n, n->off);
		} else {
			jv_to_str(r, r->out, v, n->off);
			if (r->out->len > r->lim.max_output) {
				buf_setlen(r->out, before);
				jr_fail(r, -E2BIG, n->off, "template output exceeds %zu bytes",
				    r->lim.max_output);
			}
		}
		break;
	}
	case JN_IF:
		flow = exec_list(r, jv_truthy(eval(r, n->a)) ? &n->l1 : &n->l2);
		break;
	case JN_FOR:
		flow = exec_for(r, n);
		break;
	case JN_SET:
		v = eval(r, n->a);
		if (n->attr) {
			struct jv ns = lookup(r, n->name, strlen(n->name));

			if (ns.t != JV_NS)
				jr_fail(r, -EINVAL, n->off,
				    "cannot assign attribute '%s' on '%s', which is not a namespace",
				    n->attr, n->name);
			jd_set(r, ns.u.d, jv_cstr(n->attr), v);
		} else {
			set_var(r, r->scope, n->name, v);
		}
		break;
	case JN_SETBLOCK:
		set_var(r, r->scope, n->name, capture(r, &n->l1, r->scope, n->off));
		break;
	case JN_MACRO:
		v.t = JV_MACRO;
		v.u.m = n;
		set_var(r, r->scope, n->name, v);
		break;
	case JN_BREAK:
		flow = FLOW_BREAK;
		break;
	case JN_CONTINUE:
		flow = FLOW_CONTINUE;
		break;
	case JN_BLOCK:
		flow = exec_list(r, &n->l1);
		break;
	default:
		jr_fail(r, -EINVAL, n->off, "not a statement");
	}
	r->depth--;
	return flow;
}

static int exec_list(struct jrender *r, const struct jnodes *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		int flow = exec(r, l->v[i]);

		if (flow != FLOW_NORMAL)
			return flow;
	}
	return FLOW_NORMAL;
}

int jinja_render(const struct jinja_template *t, const cJSON *vars,
    const struct jinja_limits *lim, struct buf *out, struct llmd_err *e)
{
	static const struct jinja_limits defaults = JINJA_LIMITS_DEFAULT;
	struct capture_stack *cs = xcalloc(1, sizeof(*cs));
	struct buf result = BUF_INIT;
	struct jrender *r = xcalloc(1, sizeof(*r));
	int rc = 0, i;

	r->e = e;
	r->t = t;
	r->lim = lim ? *lim : defaults;
	r->ar.cap = r->lim.max_memory;
	r->out = &result;
	r->caps = cs;
	if (setjmp(r->jb)) {
		rc = e && e->code ? e->code : -EINVAL;
		goto out;
	}
	r->globals = new_scope(r, NULL);
	r->scope = r->globals;
	if (vars && cJSON_IsObject(vars)) {
		const cJSON *c;

		cJSON_ArrayForEach(c, vars)
			set_var(r, r->globals, c->string, jv_from_cjson(r, c, 0));
	}
	exec_list(r, &t->body);
	buf_add(out, result.buf, result.len);
out:
	for (i = 0; i < cs->n; i++)
		buf_release(&cs->b[i]);
	free(cs);
	buf_release(&result);
	ja_free(&r->ar);
	free(r);
	return rc;
}
