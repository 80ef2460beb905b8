/*
 * engine/jinja-parse.c - the Jinja parser: tokens to the syntax tree of
 * engine/jinja-impl.h, with Jinja2's operator precedence, and
 * jinja_parse()/jinja_free()/jinja_iterates_over().
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/jinja-impl.h"
#include "lib/util.h"

#define PARSE_MAX_DEPTH 200

struct parser {
	jmp_buf jb;
	struct jinja_template *t;
	struct jtoken *tk;
	size_t n, pos;
	unsigned depth;
	struct llmd_err *e;
};

static void perr(struct parser *P, size_t off, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

static void perr(struct parser *P, size_t off, const char *fmt, ...)
{
	char lc[64], msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jinja_linecol(P->t->src, P->t->len, off, lc, sizeof(lc));
	err_set(P->e, -EINVAL, lc, "template syntax error: %s", msg);
	longjmp(P->jb, 1);
}

static void *palloc(struct parser *P, size_t n)
{
	void *p = ja_alloc(&P->t->ar, n);

	if (!p) {
		err_set(P->e, -E2BIG, NULL, "template too large");
		longjmp(P->jb, 1);
	}
	memset(p, 0, n);
	return p;
}

static struct jnode *node(struct parser *P, enum jn_kind k, size_t off)
{
	struct jnode *n = palloc(P, sizeof(*n));

	n->k = k;
	n->off = off;
	return n;
}

static void nodes_push(struct parser *P, struct jnodes *l, struct jnode *n)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		struct jnode **v = palloc(P, cap * sizeof(*v));

		if (l->n)
			memcpy(v, l->v, l->n * sizeof(*v));
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = n;
}

static void names_push(struct parser *P, struct jnode *n, const char *name)
{
	const char **v = palloc(P, (n->n_names + 1) * sizeof(*v));

	if (n->n_names)
		memcpy(v, n->names, n->n_names * sizeof(*v));
	v[n->n_names++] = name;
	n->names = v;
}

static char *pstrndup(struct parser *P, const char *s, size_t n)
{
	char *p = palloc(P, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static struct jtoken *cur(struct parser *P)
{
	return &P->tk[P->pos];
}

static struct jtoken *next(struct parser *P)
{
	struct jtoken *k = &P->tk[P->pos];

	if (k->t != JT_EOF)
		P->pos++;
	return k;
}

static int tok_is(const struct jtoken *k, enum jtok t, const char *s)
{
	if (k->t != t)
		return 0;
	if (!s)
		return 1;
	return strlen(s) == k->n && !memcmp(k->p, s, k->n);
}

static int is_op(struct parser *P, const char *s)
{
	return tok_is(cur(P), JT_OP, s);
}

static int is_kw(struct parser *P, const char *s)
{
	return tok_is(cur(P), JT_NAME, s);
}

static int accept_op(struct parser *P, const char *s)
{
	if (is_op(P, s)) {
		next(P);
		return 1;
	}
	return 0;
}

static int accept_kw(struct parser *P, const char *s)
{
	if (is_kw(P, s)) {
		next(P);
		return 1;
	}
	return 0;
}

static const char *tok_desc(const struct jtoken *k, char *buf, size_t len)
{
	switch (k->t) {
	case JT_EOF: return "end of template";
	case JT_VEND: return "'}}'";
	case JT_BEND: return "'%}'";
	case JT_STR: return "string";
	case JT_INT: case JT_FLOAT: return "number";
	default:
		snprintf(buf, len, "'%.*s'", (int)MIN(k->n, 40), k->p ? k->p : "");
		return buf;
	}
}

static void expect_op(struct parser *P, const char *s)
{
	char b[64];

	if (!accept_op(P, s))
		perr(P, cur(P)->off, "expected '%s', got %s", s, tok_desc(cur(P), b, sizeof(b)));
}

static const char *expect_name(struct parser *P)
{
	char b[64];
	struct jtoken *k = cur(P);

	if (k->t != JT_NAME)
		perr(P, k->off, "expected a name, got %s", tok_desc(k, b, sizeof(b)));
	next(P);
	return pstrndup(P, k->p, k->n);
}

static void expect_end(struct parser *P, enum jtok t)
{
	char b[64];

	if (cur(P)->t != t)
		perr(P, cur(P)->off, "expected %s, got %s", t == JT_BEND ? "'%}'" : "'}}'",
		    tok_desc(cur(P), b, sizeof(b)));
	next(P);
}

static void enter(struct parser *P)
{
	if (++P->depth > PARSE_MAX_DEPTH)
		perr(P, cur(P)->off, "nesting too deep");
}

static struct jnode *parse_expr(struct parser *P);
static struct jnode *parse_or(struct parser *P);
static struct jnode *parse_unary(struct parser *P, int with_filter);
static struct jnode *parse_primary(struct parser *P);

/* "(" args ")" after the opening paren; fills n->l1 and n->names. */
static void parse_args(struct parser *P, struct jnode *n)
{
	int any_kw = 0;

	while (!is_op(P, ")")) {
		const char *kw = NULL;

		if (n->l1.n)
			expect_op(P, ",");
		if (is_op(P, ")"))
			break;
		if (cur(P)->t == JT_NAME && tok_is(&P->tk[P->pos + 1], JT_OP, "=")) {
			kw = expect_name(P);
			next(P);
			any_kw = 1;
		} else if (any_kw) {
			perr(P, cur(P)->off, "positional argument after keyword argument");
		}
		nodes_push(P, &n->l1, parse_expr(P));
		names_push(P, n, kw);
	}
	expect_op(P, ")");
}

static struct jnode *parse_postfix(struct parser *P, struct jnode *e)
{
	for (;;) {
		struct jtoken *k = cur(P);

		if (accept_op(P, ".")) {
			struct jnode *n = node(P, JE_ATTR, k->off);
			struct jtoken *nm = cur(P);

			n->a = e;
			if (nm->t == JT_INT) {
				/* foo.0 is foo[0] */
				n->k = JE_INDEX;
				n->b = node(P, JE_LIT, nm->off);
				n->b->lit = jv_int(nm->i);
				next(P);
			} else {
				n->name = expect_name(P);
			}
			e = n;
		} else if (accept_op(P, "[")) {
			struct jnode *idx[3] = { NULL, NULL, NULL };
			int part = 0, is_slice = 0;

			for (;;) {
				if (is_op(P, ":")) {
					next(P);
					is_slice = 1;
					if (++part > 2)
						perr(P, k->off, "too many ':' in subscript");
					continue;
				}
				if (is_op(P, "]"))
					break;
				if (idx[part])
					perr(P, cur(P)->off, "expected ':' or ']'");
				idx[part] = parse_expr(P);
			}
			expect_op(P, "]");
			if (is_slice) {
				struct jnode *n = node(P, JE_SLICE, k->off);

				n->a = e;
				n->b = idx[0];
				n->c = idx[1];
				n->d = idx[2];
				e = n;
			} else {
				struct jnode *n = node(P, JE_INDEX, k->off);

				if (!idx[0])
					perr(P, k->off, "empty subscript");
				n->a = e;
				n->b = idx[0];
				e = n;
			}
		} else if (accept_op(P, "(")) {
			struct jnode *n = node(P, JE_CALL, k->off);

			n->a = e;
			parse_args(P, n);
			e = n;
		} else {
			return e;
		}
	}
}

static int starts_test_arg(struct parser *P)
{
	struct jtoken *k = cur(P);
	static const char *const stop[] = { "else", "or", "and", "if", "is", "in", "not" };
	size_t i;

	if (k->t == JT_STR || k->t == JT_INT || k->t == JT_FLOAT)
		return 1;
	if (k->t == JT_OP)
		return tok_is(k, JT_OP, "[") || tok_is(k, JT_OP, "{");
	if (k->t != JT_NAME)
		return 0;
	for (i = 0; i < ARRAY_SIZE(stop); i++)
		if (tok_is(k, JT_NAME, stop[i]))
			return 0;
	return 1;
}

static struct jnode *parse_filter_expr(struct parser *P, struct jnode *e)
{
	for (;;) {
		struct jtoken *k = cur(P);

		if (accept_op(P, "|")) {
			struct jnode *n = node(P, JE_FILTER, k->off);

			n->a = e;
			n->name = expect_name(P);
			if (accept_op(P, "("))
				parse_args(P, n);
			e = n;
		} else if (is_kw(P, "is")) {
			struct jnode *n = node(P, JE_TEST, k->off);

			next(P);
			n->a = e;
			if (accept_kw(P, "not"))
				n->op = 1;
			/* none/true/false are names of tests too */
			n->name = expect_name(P);
			if (accept_op(P, "(")) {
				parse_args(P, n);
			} else if (starts_test_arg(P)) {
				nodes_push(P, &n->l1, parse_postfix(P, parse_primary(P)));
				names_push(P, n, NULL);
			}
			e = n;
		} else {
			return e;
		}
	}
}

static struct jnode *parse_primary(struct parser *P)
{
	struct jtoken *k = cur(P);
	struct jnode *n;
	char b[64];

	switch (k->t) {
	case JT_STR:
		n = node(P, JE_LIT, k->off);
		next(P);
		{
			/* adjacent literals concatenate */
			size_t len = k->n, i;
			char *s;

			for (i = P->pos; P->tk[i].t == JT_STR; i++)
				len += P->tk[i].n;
			s = palloc(P, len + 1);
			memcpy(s, k->p, k->n);
			len = k->n;
			while (cur(P)->t == JT_STR) {
				memcpy(s + len, cur(P)->p, cur(P)->n);
				len += cur(P)->n;
				next(P);
			}
			n->lit = jv_str(s, len);
		}
		return n;
	case JT_INT:
		n = node(P, JE_LIT, k->off);
		n->lit = jv_int(k->i);
		next(P);
		return n;
	case JT_FLOAT:
		n = node(P, JE_LIT, k->off);
		n->lit = jv_float(k->f);
		next(P);
		return n;
	case JT_NAME:
		n = node(P, JE_LIT, k->off);
		if (tok_is(k, JT_NAME, "true") || tok_is(k, JT_NAME, "True"))
			n->lit = jv_bool(1);
		else if (tok_is(k, JT_NAME, "false") || tok_is(k, JT_NAME, "False"))
			n->lit = jv_bool(0);
		else if (tok_is(k, JT_NAME, "none") || tok_is(k, JT_NAME, "None"))
			n->lit = jv_none();
		else {
			n->k = JE_NAME;
			n->name = pstrndup(P, k->p, k->n);
			n->name_n = k->n;
		}
		next(P);
		return n;
	case JT_OP:
		if (accept_op(P, "(")) {
			struct jnode *e;

			enter(P);
			if (accept_op(P, ")")) {
				n = node(P, JE_LIST, k->off);
				P->depth--;
				return n;
			}
			e = parse_expr(P);
			if (is_op(P, ",")) {
				n = node(P, JE_LIST, k->off);
				nodes_push(P, &n->l1, e);
				while (accept_op(P, ",")) {
					if (is_op(P, ")"))
						break;
					nodes_push(P, &n->l1, parse_expr(P));
				}
				e = n;
			}
			expect_op(P, ")");
			P->depth--;
			return e;
		}
		if (accept_op(P, "[")) {
			enter(P);
			n = node(P, JE_LIST, k->off);
			while (!is_op(P, "]")) {
				if (n->l1.n)
					expect_op(P, ",");
				if (is_op(P, "]"))
					break;
				nodes_push(P, &n->l1, parse_expr(P));
			}
			expect_op(P, "]");
			P->depth--;
			return n;
		}
		if (accept_op(P, "{")) {
			enter(P);
			n = node(P, JE_DICT, k->off);
			while (!is_op(P, "}")) {
				if (n->l1.n)
					expect_op(P, ",");
				if (is_op(P, "}"))
					break;
				nodes_push(P, &n->l1, parse_expr(P));
				expect_op(P, ":");
				nodes_push(P, &n->l2, parse_expr(P));
			}
			expect_op(P, "}");
			P->depth--;
			return n;
		}
		break;
	default:
		break;
	}
	perr(P, k->off, "unexpected %s", tok_desc(k, b, sizeof(b)));
}

static struct jnode *parse_unary(struct parser *P, int with_filter)
{
	struct jtoken *k = cur(P);
	struct jnode *n;

	enter(P);
	if (accept_op(P, "-") || accept_op(P, "+")) {
		n = node(P, *k->p == '-' ? JE_NEG : JE_POS, k->off);
		n->a = parse_unary(P, 0);
	} else {
		n = parse_postfix(P, parse_primary(P));
	}
	if (with_filter)
		n = parse_filter_expr(P, n);
	P->depth--;
	return n;
}

static struct jnode *bin(struct parser *P, size_t off, int op, struct jnode *a, struct jnode *b)
{
	struct jnode *n = node(P, JE_BIN, off);

	n->op = op;
	n->a = a;
	n->b = b;
	return n;
}

static struct jnode *parse_pow(struct parser *P)
{
	struct jnode *e = parse_unary(P, 1);

	while (is_op(P, "**")) {
		size_t off = next(P)->off;

		e = bin(P, off, JO_POW, e, parse_unary(P, 1));
	}
	return e;
}

static struct jnode *parse_math2(struct parser *P)
{
	struct jnode *e = parse_pow(P);

	for (;;) {
		int op;

		if (is_op(P, "*"))
			op = JO_MUL;
		else if (is_op(P, "/"))
			op = JO_DIV;
		else if (is_op(P, "//"))
			op = JO_FLOORDIV;
		else if (is_op(P, "%"))
			op = JO_MOD;
		else
			return e;
		{
			size_t off = next(P)->off;

			e = bin(P, off, op, e, parse_pow(P));
		}
	}
}

static struct jnode *parse_concat(struct parser *P)
{
	struct jnode *e = parse_math2(P);

	while (is_op(P, "~")) {
		size_t off = next(P)->off;

		e = bin(P, off, JO_CAT, e, parse_math2(P));
	}
	return e;
}

static struct jnode *parse_math1(struct parser *P)
{
	struct jnode *e = parse_concat(P);

	for (;;) {
		int op;

		if (is_op(P, "+"))
			op = JO_ADD;
		else if (is_op(P, "-"))
			op = JO_SUB;
		else
			return e;
		{
			size_t off = next(P)->off;

			e = bin(P, off, op, e, parse_concat(P));
		}
	}
}

static struct jnode *parse_compare(struct parser *P)
{
	struct jnode *e = parse_math1(P);

	for (;;) {
		struct jtoken *k = cur(P);
		int op;

		if (is_op(P, "=="))
			op = JO_EQ;
		else if (is_op(P, "!="))
			op = JO_NE;
		else if (is_op(P, "<"))
			op = JO_LT;
		else if (is_op(P, ">"))
			op = JO_GT;
		else if (is_op(P, "<="))
			op = JO_LE;
		else if (is_op(P, ">="))
			op = JO_GE;
		else if (is_kw(P, "in"))
			op = JO_IN;
		else if (is_kw(P, "not") && tok_is(&P->tk[P->pos + 1], JT_NAME, "in")) {
			next(P);
			op = JO_NOTIN;
		} else
			return e;
		next(P);
		e = bin(P, k->off, op, e, parse_math1(P));
	}
}

static struct jnode *parse_not(struct parser *P)
{
	struct jtoken *k = cur(P);

	if (accept_kw(P, "not")) {
		struct jnode *n = node(P, JE_NOT, k->off);

		enter(P);
		n->a = parse_not(P);
		P->depth--;
		return n;
	}
	return parse_compare(P);
}

static struct jnode *parse_and(struct parser *P)
{
	struct jnode *e = parse_not(P);

	while (is_kw(P, "and")) {
		struct jnode *n = node(P, JE_AND, next(P)->off);

		n->a = e;
		n->b = parse_not(P);
		e = n;
	}
	return e;
}

static struct jnode *parse_or(struct parser *P)
{
	struct jnode *e = parse_and(P);

	while (is_kw(P, "or")) {
		struct jnode *n = node(P, JE_OR, next(P)->off);

		n->a = e;
		n->b = parse_and(P);
		e = n;
	}
	return e;
}

static struct jnode *parse_expr(struct parser *P)
{
	struct jnode *e;

	enter(P);
	e = parse_or(P);
	while (is_kw(P, "if")) {
		struct jnode *n = node(P, JE_COND, next(P)->off);

		n->a = e;
		n->b = parse_or(P);
		if (accept_kw(P, "else"))
			n->c = parse_expr(P);
		e = n;
	}
	P->depth--;
	return e;
}

/* Statements until a block tag whose keyword is one of ends (NULL-ended);
 * returns the index of the keyword found, the parser standing after it. */
static int parse_body(struct parser *P, struct jnodes *body, const char *const *ends,
    size_t open_off, const char *what);

static void parse_stmt(struct parser *P, struct jnodes *body, size_t off);

static const char *const END_IF[] = { "elif", "else", "endif", NULL };
static const char *const END_FOR[] = { "else", "endfor", NULL };
static const char *const END_ENDFOR[] = { "endfor", NULL };
static const char *const END_SET[] = { "endset", NULL };
static const char *const END_MACRO[] = { "endmacro", NULL };
static const char *const END_GEN[] = { "endgeneration", NULL };

static struct jnode *parse_if(struct parser *P, size_t off)
{
	struct jnode *n = node(P, JN_IF, off);
	int which;

	n->a = parse_expr(P);
	expect_end(P, JT_BEND);
	which = parse_body(P, &n->l1, END_IF, off, "if");
	if (which == 0) {
		nodes_push(P, &n->l2, parse_if(P, P->tk[P->pos - 1].off));
		return n;
	}
	if (which == 1) {
		expect_end(P, JT_BEND);
		parse_body(P, &n->l2, END_IF + 2, off, "if");
	}
	expect_end(P, JT_BEND);
	return n;
}

static struct jnode *parse_for(struct parser *P, size_t off)
{
	struct jnode *n = node(P, JN_FOR, off);

	names_push(P, n, expect_name(P));
	while (accept_op(P, ","))
		names_push(P, n, expect_name(P));
	if (!accept_kw(P, "in"))
		perr(P, cur(P)->off, "expected 'in' in for");
	n->a = parse_or(P);
	if (accept_kw(P, "if"))
		n->b = parse_expr(P);
	if (accept_kw(P, "recursive"))
		perr(P, off, "recursive loops are not supported");
	expect_end(P, JT_BEND);
	if (parse_body(P, &n->l1, END_FOR, off, "for") == 0) {
		expect_end(P, JT_BEND);
		parse_body(P, &n->l2, END_ENDFOR, off, "for");
	}
	expect_end(P, JT_BEND);
	return n;
}

static struct jnode *parse_set(struct parser *P, size_t off)
{
	struct jnode *n = node(P, JN_SET, off);

	n->name = expect_name(P);
	if (accept_op(P, "."))
		n->attr = expect_name(P);
	if (!n->attr && cur(P)->t == JT_BEND) {
		n->k = JN_SETBLOCK;
		expect_end(P, JT_BEND);
		parse_body(P, &n->l1, END_SET, off, "set");
		expect_end(P, JT_BEND);
		return n;
	}
	if (is_op(P, ","))
		perr(P, cur(P)->off, "tuple assignment in set is not supported");
	expect_op(P, "=");
	n->a = parse_expr(P);
	expect_end(P, JT_BEND);
	return n;
}

static struct jnode *parse_macro(struct parser *P, size_t off)
{
	struct jnode *n = node(P, JN_MACRO, off);

	n->name = expect_name(P);
	expect_op(P, "(");
	while (!is_op(P, ")")) {
		if (n->n_names)
			expect_op(P, ",");
		names_push(P, n, expect_name(P));
		if (accept_op(P, "="))
			nodes_push(P, &n->l2, parse_expr(P));
		else if (n->l2.n)
			perr(P, cur(P)->off, "non-default parameter after default parameter");
	}
	expect_op(P, ")");
	expect_end(P, JT_BEND);
	parse_body(P, &n->l1, END_MACRO, off, "macro");
	if (cur(P)->t == JT_NAME)
		next(P);
	expect_end(P, JT_BEND);
	return n;
}

static void parse_stmt(struct parser *P, struct jnodes *body, size_t off)
{
	struct jtoken *k = cur(P);
	char b[64];

	if (accept_kw(P, "if")) {
		nodes_push(P, body, parse_if(P, off));
	} else if (accept_kw(P, "for")) {
		nodes_push(P, body, parse_for(P, off));
	} else if (accept_kw(P, "set")) {
		nodes_push(P, body, parse_set(P, off));
	} else if (accept_kw(P, "macro")) {
		nodes_push(P, body, parse_macro(P, off));
	} else if (accept_kw(P, "break")) {
		expect_end(P, JT_BEND);
		nodes_push(P, body, node(P, JN_BREAK, off));
	} else if (accept_kw(P, "continue")) {
		expect_end(P, JT_BEND);
		nodes_push(P, body, node(P, JN_CONTINUE, off));
	} else if (accept_kw(P, "generation")) {
		struct jnode *n = node(P, JN_BLOCK, off);

		expect_end(P, JT_BEND);
		parse_body(P, &n->l1, END_GEN, off, "generation");
		expect_end(P, JT_BEND);
		nodes_push(P, body, n);
	} else {
		perr(P, k->off, "unknown or unexpected tag %s", tok_desc(k, b, sizeof(b)));
	}
}

static int parse_body(struct parser *P, struct jnodes *body, const char *const *ends,
    size_t open_off, const char *what)
{
	enter(P);
	for (;;) {
		struct jtoken *k = next(P);

		switch (k->t) {
		case JT_EOF:
			if (ends)
				perr(P, open_off, "unclosed '%s' block (end of template)", what);
			P->depth--;
			return -1;
		case JT_TEXT: {
			struct jnode *n = node(P, JN_TEXT, k->off);

			n->name = k->p;
			n->name_n = k->n;
			nodes_push(P, body, n);
			break;
		}
		case JT_VBEGIN: {
			struct jnode *n = node(P, JN_OUT, k->off);

			n->a = parse_expr(P);
			expect_end(P, JT_VEND);
			nodes_push(P, body, n);
			break;
		}
		case JT_BBEGIN: {
			size_t i;

			if (ends && cur(P)->t == JT_NAME) {
				for (i = 0; ends[i]; i++) {
					if (tok_is(cur(P), JT_NAME, ends[i])) {
						next(P);
						P->depth--;
						return (int)i;
					}
				}
			}
			parse_stmt(P, body, k->off);
			break;
		}
		default: {
			char b[64];

			perr(P, k->off, "unexpected %s", tok_desc(k, b, sizeof(b)));
		}
		}
	}
}

int jinja_parse(const char *src, size_t len, struct jinja_template **out, struct llmd_err *e)
{
	struct jinja_template *t = xcalloc(1, sizeof(*t));
	struct parser P;
	char *copy;
	int rc;

	t->ar.cap = (size_t)1 << 30;
	copy = ja_alloc(&t->ar, len + 1);
	if (!copy) {
		jinja_free(t);
		return err_set(e, -E2BIG, NULL, "template too large");
	}
	/* as Jinja2's lexer: newlines become "\n", and one at the very end
	 * goes (keep_trailing_newline is off) */
	{
		size_t i, n = 0;

		for (i = 0; i < len; i++) {
			if (src[i] == '\r') {
				copy[n++] = '\n';
				if (i + 1 < len && src[i + 1] == '\n')
					i++;
			} else {
				copy[n++] = src[i];
			}
		}
		if (n > 0 && copy[n - 1] == '\n')
			n--;
		copy[n] = '\0';
		len = n;
	}
	t->src = copy;
	t->len = len;
	memset(&P, 0, sizeof(P));
	P.t = t;
	P.e = e;
	rc = jinja_lex(&t->ar, copy, len, &P.tk, &P.n, e);
	if (rc < 0) {
		jinja_free(t);
		return rc;
	}
	if (setjmp(P.jb)) {
		free(P.tk);
		jinja_free(t);
		return e ? e->code : -EINVAL;
	}
	parse_body(&P, &t->body, NULL, 0, NULL);
	free(P.tk);
	*out = t;
	return 0;
}

void jinja_free(struct jinja_template *t)
{
	if (!t)
		return;
	ja_free(&t->ar);
	free(t);
}

static int iterates_over(const struct jnode *n, const char *attr);

static int list_iterates_over(const struct jnodes *l, const char *attr)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (iterates_over(l->v[i], attr))
			return 1;
	return 0;
}

static int names_attr(const struct jnode *e, const char *attr)
{
	if (!e)
		return 0;
	if (e->k == JE_ATTR && !strcmp(e->name, attr))
		return 1;
	if (e->k == JE_INDEX && e->b->k == JE_LIT && e->b->lit.t == JV_STR &&
	    e->b->lit.u.s.n == strlen(attr) && !memcmp(e->b->lit.u.s.p, attr, e->b->lit.u.s.n))
		return 1;
	if (e->k == JE_FILTER || e->k == JE_SLICE)
		return names_attr(e->a, attr);
	return 0;
}

static int iterates_over(const struct jnode *n, const char *attr)
{
	if (n->k == JN_FOR && names_attr(n->a, attr))
		return 1;
	return list_iterates_over(&n->l1, attr) ||
	    ((n->k == JN_IF || n->k == JN_FOR) && list_iterates_over(&n->l2, attr));
}

int jinja_iterates_over(const struct jinja_template *t, const char *attr)
{
	return list_iterates_over(&t->body, attr);
}
