/*
 * engine/jinja-impl.h - internals shared by the engine/jinja-*.c files:
 * the allocation arena, values, tokens, the syntax tree and the render
 * context. Not for use outside engine/jinja-*.c.
 *
 * Memory: the syntax tree lives in the template's arena; every value made
 * while rendering lives in the render's arena (capped by max_memory) and is
 * released in one go. Errors inside the parser and the renderer unwind with
 * longjmp to the entry point, which is safe because nothing is owned outside
 * the arenas.
 */
#ifndef LLMD_ENGINE_JINJA_IMPL_H
#define LLMD_ENGINE_JINJA_IMPL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "engine/jinja.h"
#include "lib/buf.h"
#include "lib/err.h"

/* ---- arena ---- */
struct jblock;
struct jarena {
	struct jblock *blocks;
	char *cur;
	size_t left;
	size_t total;
	size_t cap;
};
/* NULL when the cap would be passed. */
void *ja_alloc(struct jarena *a, size_t n);
void ja_free(struct jarena *a);

/* ---- values ---- */
enum jv_type {
	JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
	JV_NS, JV_MACRO, JV_FUNC,
};

struct jlist;
struct jdict;
struct jnode;

struct jv {
	enum jv_type t;
	union {
		int b;
		int64_t i;
		double f;
		struct { const char *p; size_t n; } s;  /* JV_STR; JV_UNDEF: name or NULL */
		struct jlist *l;
		struct jdict *d;                         /* JV_DICT, JV_NS */
		const struct jnode *m;                   /* JV_MACRO */
		int fn;                                  /* JV_FUNC: enum jfunc */
	} u;
};

struct jlist { size_t n, cap; struct jv *v; };
struct jdict { size_t n, cap; struct jv *k; struct jv *v; };

enum jfunc { JF_NAMESPACE, JF_RANGE, JF_RAISE, JF_DICT, JF_STRFTIME };

/* ---- tokens ---- */
enum jtok {
	JT_EOF, JT_TEXT, JT_VBEGIN, JT_VEND, JT_BBEGIN, JT_BEND,
	JT_NAME, JT_STR, JT_INT, JT_FLOAT, JT_OP,
};

struct jtoken {
	enum jtok t;
	size_t off;          /* offset in the source, for line:col */
	const char *p;       /* NAME/OP: in the source; STR/TEXT: decoded copy */
	size_t n;
	int64_t i;
	double f;
};

/* ---- syntax tree ---- */
enum jn_kind {
	/* statements */
	JN_TEXT, JN_OUT, JN_IF, JN_FOR, JN_SET, JN_SETBLOCK, JN_MACRO,
	JN_BREAK, JN_CONTINUE, JN_BLOCK,
	/* expressions */
	JE_LIT, JE_NAME, JE_ATTR, JE_INDEX, JE_SLICE, JE_CALL, JE_FILTER,
	JE_TEST, JE_NEG, JE_POS, JE_NOT, JE_BIN, JE_AND, JE_OR, JE_COND,
	JE_LIST, JE_DICT,
};

/* Binary operators (JE_BIN's op). */
enum jop {
	JO_ADD, JO_SUB, JO_MUL, JO_DIV, JO_FLOORDIV, JO_MOD, JO_POW, JO_CAT,
	JO_EQ, JO_NE, JO_LT, JO_GT, JO_LE, JO_GE, JO_IN, JO_NOTIN,
};

struct jnodes { struct jnode **v; size_t n, cap; };

struct jnode {
	enum jn_kind k;
	size_t off;
	int op;                 /* JE_BIN: enum jop; JE_TEST: negated */
	const char *name;       /* NAME/ATTR/FILTER/TEST/SET/MACRO; TEXT: text */
	size_t name_n;
	const char *attr;       /* JN_SET on ns.attr: the attribute */
	struct jv lit;          /* JE_LIT */
	struct jnode *a, *b, *c, *d;
	struct jnodes l1, l2;   /* args/items/body; kwarg values/else/dict values */
	const char **names;     /* JE_CALL/FILTER: kwarg name per l1 entry (NULL:
	                           positional); FOR: targets; MACRO: params */
	size_t n_names;
};

struct jinja_template {
	struct jarena ar;
	const char *src;        /* copy, for line:col */
	size_t len;
	struct jnodes body;
};

/* "line:col" of offset off in src. */
void jinja_linecol(const char *src, size_t len, size_t off, char *out, size_t outlen);

/* Lexer: fills *toks (in a's memory); 0 or -EINVAL with e. */
int jinja_lex(struct jarena *a, const char *src, size_t len, struct jtoken **toks,
    size_t *ntoks, struct llmd_err *e);

/* ---- render context ---- */
struct jscope {
	struct jscope *parent;
	struct jdict vars;
};

struct jrender {
	jmp_buf jb;
	struct llmd_err *e;
	const struct jinja_template *t;
	struct jarena ar;
	struct buf *out;
	struct jinja_limits lim;
	struct jscope *globals;
	struct jscope *scope;
	unsigned depth;
	uint64_t iters;
	void *caps;             /* capture buffers (jinja-eval.c) */
};

/* Fails the render: sets e (field "line:col" of off) and longjmps. */
void jr_fail(struct jrender *r, int code, size_t off, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));
/* Arena allocation that fails the render with -E2BIG past max_memory. */
void *jr_alloc(struct jrender *r, size_t n);

/* Scratch buffers that a failing render releases too; strictly LIFO.
 * close turns the contents into an arena string. */
struct buf *jr_buf_open(struct jrender *r, size_t off);
struct jv jr_buf_close(struct jrender *r, struct buf *b);
void jr_buf_drop(struct jrender *r, struct buf *b);

/* Value helpers (jinja-value.c). */
struct jv jv_undef(const char *name);
struct jv jv_none(void);
struct jv jv_bool(int b);
struct jv jv_int(int64_t i);
struct jv jv_float(double f);
struct jv jv_str(const char *p, size_t n);     /* no copy */
struct jv jv_strdup(struct jrender *r, const char *p, size_t n);
struct jv jv_cstr(const char *s);              /* static or long-lived */
struct jv jv_list(struct jrender *r, size_t hint);
struct jv jv_dict(struct jrender *r, size_t hint);
void jl_push(struct jrender *r, struct jlist *l, struct jv v);
void jd_set(struct jrender *r, struct jdict *d, struct jv k, struct jv v);
/* NULL when absent. */
struct jv *jd_get(const struct jdict *d, struct jv k);
struct jv *jd_gets(const struct jdict *d, const char *k, size_t n);
int jv_truthy(struct jv v);
int jv_eq(struct jv a, struct jv b);
/* <0, 0, >0 as Python orders numbers, strings (bytes, ASCII case folded on
 * request) and lists; other types fail the render. */
int jv_cmp(struct jrender *r, struct jv a, struct jv b, int fold_case, size_t off);
const char *jv_typename(struct jv v);
/* str(): what {{ v }} prints. */
void jv_to_str(struct jrender *r, struct buf *b, struct jv v, size_t off);
struct jv jv_stringify(struct jrender *r, struct jv v, size_t off);
/* Python repr() of v (used inside str() of lists and dicts). */
void jv_repr(struct jrender *r, struct buf *b, struct jv v, size_t off);
/* json.dumps(v, ensure_ascii, indent (<0: none), sort_keys, separators (NULL:
 * Python's defaults, else a list of two strings)). */
void jv_to_json(struct jrender *r, struct buf *b, struct jv v, int ensure_ascii,
    int indent, int sort_keys, const struct jv *separators, size_t off);
void jv_format_float(struct buf *b, double f);
struct jv jv_from_cjson(struct jrender *r, const cJSON *j, int depth);
/* UTF-8 code points in s[0..n). */
size_t ju_len(const char *s, size_t n);
/* Byte offsets of each code point plus n at the end (count+1 entries). */
size_t *ju_offsets(struct jrender *r, const char *s, size_t n, size_t *count);

/* Builtins (jinja-builtins.c). */
struct jv jb_filter(struct jrender *r, const struct jnode *n, struct jv v,
    struct jv *args, const char **kw, size_t nargs);
int jb_test(struct jrender *r, const struct jnode *n, struct jv v, struct jv *args,
    size_t nargs);
/* Method call obj.name(args); 0 and *res, or -ENOENT when obj has no such method. */
int jb_method(struct jrender *r, size_t off, struct jv obj, const char *name,
    struct jv *args, const char **kw, size_t nargs, struct jv *res);
struct jv jb_call_func(struct jrender *r, size_t off, int fn, struct jv *args,
    const char **kw, size_t nargs);
/* Global function by name, or 0. */
int jb_lookup_func(const char *name, size_t n, struct jv *out);

#endif
