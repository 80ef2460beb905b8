/*
 * lib/yaml.c - YAML streams to cJSON documents: libyaml events, core-schema
 * scalar typing, anchors/aliases/merge keys and limits (see yaml.h).
 */
#include "config.h"
#include "lib/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "lib/buf.h"
#include "lib/util.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

/*
 * A set of key strings (owned by the cJSON items they name) so that large
 * mappings check duplicates in constant time; small ones stay a list scan.
 */
struct keyset {
	const char **slot;
	size_t cap, n;
};

#define KEYSET_MIN 16

struct frame {
	cJSON *node;
	int is_map;
	char *key;          /* mapping: key waiting for its value, or NULL */
	int key_is_merge;   /* the waiting key is "<<" */
	cJSON *merge;       /* mapping: members brought in by merge keys */
	struct keyset keys, merge_keys;
	size_t nkeys, nmerge;
	char *anchor;       /* anchor to register when the node completes */
	size_t nodes_at_start;
};

struct anchor {
	char *name;
	cJSON *node;        /* a private copy */
	size_t nodes;       /* nodes an alias expansion produces */
};

struct yctx {
	const char *filename;
	const char *text;
	struct llmd_err *e;
	struct frame frames[YAML_MAX_DEPTH];
	int depth;
	cJSON *root;
	struct anchor *anchors;
	size_t nanchors, anchors_alloc;
	size_t nodes;
};

static int yerr_at(struct yctx *c, size_t line, size_t col, const char *fmt, ...)
    LLMD_PRINTF(4, 5);
static int yerr(struct yctx *c, const yaml_mark_t *m, const char *fmt, ...)
    LLMD_PRINTF(3, 4);

static int
yerr_vat(struct yctx *c, size_t line, size_t col, const char *fmt, va_list ap)
{
	char field[256], msg[512];

	if (c->filename != NULL)
		snprintf(field, sizeof(field), "%s:%zu:%zu", c->filename, line + 1, col + 1);
	else
		snprintf(field, sizeof(field), "%zu:%zu", line + 1, col + 1);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	return err_set(c->e, -EINVAL, field, "%s", msg);
}

static int
yerr_at(struct yctx *c, size_t line, size_t col, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = yerr_vat(c, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

static int
yerr(struct yctx *c, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = yerr_vat(c, m->line, m->column, fmt, ap);
	va_end(ap);
	return rc;
}

static int
count_node(struct yctx *c, const yaml_mark_t *m, size_t n)
{
	if (n > YAML_MAX_NODES || c->nodes + n > YAML_MAX_NODES)
		return yerr(c, m, "document too large: more than %d nodes (alias expansion included)",
		    YAML_MAX_NODES);
	c->nodes += n;
	return 0;
}

static void
anchors_clear(struct yctx *c)
{
	for (size_t i = 0; i < c->nanchors; i++) {
		free(c->anchors[i].name);
		cJSON_Delete(c->anchors[i].node);
	}
	c->nanchors = 0;
}

static void
anchor_add(struct yctx *c, const char *name, const cJSON *node, size_t nodes)
{
	struct anchor *a;

	if (c->nanchors == c->anchors_alloc) {
		c->anchors_alloc = c->anchors_alloc ? 2 * c->anchors_alloc : 8;
		c->anchors = xreallocarray(c->anchors, c->anchors_alloc, sizeof(*c->anchors));
	}
	a = &c->anchors[c->nanchors++];
	a->name = xstrdup(name);
	a->node = cJSON_Duplicate(node, 1);
	a->nodes = nodes ? nodes : 1;
	if (a->node == NULL)
		fatalx("yaml: out of memory");
}

static const struct anchor *
anchor_find(const struct yctx *c, const char *name)
{
	for (size_t i = c->nanchors; i > 0; i--)
		if (strcmp(c->anchors[i - 1].name, name) == 0)
			return &c->anchors[i - 1];
	return NULL;
}

static uint64_t
str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static const char **
keyset_find(const struct keyset *ks, const char *k)
{
	size_t i = (size_t)str_hash(k) & (ks->cap - 1);

	while (ks->slot[i] != NULL && strcmp(ks->slot[i], k) != 0)
		i = (i + 1) & (ks->cap - 1);
	return &ks->slot[i];
}

static void
keyset_add(struct keyset *ks, const char *k)
{
	const char **sl;

	if (2 * (ks->n + 1) > ks->cap) {
		struct keyset big = { xcalloc(ks->cap ? 2 * ks->cap : 64, sizeof(char *)),
		    ks->cap ? 2 * ks->cap : 64, 0 };
		for (size_t i = 0; i < ks->cap; i++)
			if (ks->slot[i] != NULL)
				keyset_add(&big, ks->slot[i]);
		free(ks->slot);
		*ks = big;
	}
	sl = keyset_find(ks, k);
	if (*sl == NULL) {
		*sl = k;
		ks->n++;
	}
}

/* Is key k in obj, which has n members indexed by ks once it grew? */
static int
has_key(const cJSON *obj, size_t n, struct keyset *ks, const char *k)
{
	if (n < KEYSET_MIN)
		return cJSON_GetObjectItemCaseSensitive(obj, k) != NULL;
	if (ks->cap == 0) {
		const cJSON *c;
		cJSON_ArrayForEach(c, obj)
			keyset_add(ks, c->string);
	}
	return *keyset_find(ks, k) != NULL;
}

/* Adds member v under key k to obj (k not present yet). */
static void
add_member(cJSON *obj, size_t *n, struct keyset *ks, const char *k, cJSON *v)
{
	cJSON_AddItemToObject(obj, k, v);
	(*n)++;
	if (ks->cap != 0)
		keyset_add(ks, v->string);
}

/* ---- scalars ---- */

static int
all_in(const char *s, const char *set)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (strchr(set, *s) == NULL)
			return 0;
	return 1;
}

static int
is_float(const char *s)
{
	int digits = 0;

	if (*s == '+' || *s == '-')
		s++;
	while (*s >= '0' && *s <= '9') {
		s++;
		digits++;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			s++;
			digits++;
		}
	}
	if (digits == 0)
		return 0;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!all_in(s, "0123456789"))
			return 0;
		return 1;
	}
	return *s == '\0';
}

enum scalar_kind { SC_STR, SC_NULL, SC_BOOL, SC_INT, SC_FLOAT, SC_BAD };

/* Resolves a plain scalar by the core schema; *num and *b take the value. */
static enum scalar_kind
resolve_plain(const char *s, double *num, int *b)
{
	const char *d = s;

	if (!strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return SC_NULL;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		*b = 1;
		return SC_BOOL;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		*b = 0;
		return SC_BOOL;
	}
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
		const char *set = s[1] == 'x' ? "0123456789abcdefABCDEF" : "01234567";
		if (!all_in(s + 2, set))
			return SC_STR;
		if (strlen(s + 2) > 21)
			return SC_BAD;
		*num = (double)strtoull(s + 2, NULL, s[1] == 'x' ? 16 : 8);
		return SC_INT;
	}
	if (*d == '+' || *d == '-')
		d++;
	if (all_in(d, "0123456789")) {
		*num = strtod(s, NULL);
		return SC_INT;
	}
	if (is_float(s)) {
		*num = strtod(s, NULL);
		return isfinite(*num) ? SC_FLOAT : SC_BAD;
	}
	if (!strcmp(d, ".inf") || !strcmp(d, ".Inf") || !strcmp(d, ".INF") ||
	    !strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
		return SC_BAD;
	return SC_STR;
}

static int
make_scalar(struct yctx *c, const yaml_event_t *ev, cJSON **out)
{
	const char *s = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	enum scalar_kind k = SC_STR, want = SC_STR;

	*out = NULL;
	double num = 0;
	int b = 0;

	if (strlen(s) != ev->data.scalar.length)
		return yerr(c, &ev->start_mark, "%s", "NUL character in scalar");
	if (tag != NULL && strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0) {
		const char *t = tag + strlen(TAG_PREFIX);
		if (!strcmp(t, "null"))
			want = SC_NULL;
		else if (!strcmp(t, "bool"))
			want = SC_BOOL;
		else if (!strcmp(t, "int"))
			want = SC_INT;
		else if (!strcmp(t, "float"))
			want = SC_FLOAT;
		else
			tag = "!";  /* !!str, !!binary, ...: a string */
	}
	if (want != SC_STR || (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (tag == NULL || strcmp(tag, "!") != 0)))
		k = resolve_plain(s, &num, &b);
	if (k == SC_BAD)
		return yerr(c, &ev->start_mark, "number \"%s\" cannot be represented in JSON", s);
	if (want == SC_FLOAT && k == SC_INT)
		k = SC_FLOAT;
	if (want != SC_STR && k != want)
		return yerr(c, &ev->start_mark, "\"%s\" does not match its tag", s);
	switch (k) {
	case SC_NULL: *out = cJSON_CreateNull(); break;
	case SC_BOOL: *out = cJSON_CreateBool(b); break;
	case SC_INT:
	case SC_FLOAT: *out = cJSON_CreateNumber(num); break;
	default: *out = cJSON_CreateString(s); break;
	}
	if (*out == NULL)
		fatalx("yaml: out of memory");
	return 0;
}

/* ---- tree building ---- */

static void
merge_into(struct frame *f, const cJSON *src)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, src) {
		if (!has_key(f->merge, f->nmerge, &f->merge_keys, m->string))
			add_member(f->merge, &f->nmerge, &f->merge_keys, m->string,
			    cJSON_Duplicate(m, 1));
	}
}

/* Hands a finished node v to its parent (or makes it the root). */
static int
add_value(struct yctx *c, cJSON *v, const yaml_mark_t *m)
{
	struct frame *f;

	if (c->depth == 0) {
		c->root = v;
		return 0;
	}
	f = &c->frames[c->depth - 1];
	if (!f->is_map) {
		cJSON_AddItemToArray(f->node, v);
		return 0;
	}
	if (f->key_is_merge) {
		int ok = cJSON_IsObject(v);
		const cJSON *it;
		if (cJSON_IsArray(v)) {
			ok = 1;
			cJSON_ArrayForEach(it, v)
				ok = ok && cJSON_IsObject(it);
		}
		if (!ok) {
			cJSON_Delete(v);
			return yerr(c, m, "%s", "merge key \"<<\" needs a mapping or a list of mappings");
		}
		if (f->merge == NULL)
			f->merge = cJSON_CreateObject();
		if (cJSON_IsObject(v)) {
			merge_into(f, v);
		} else {
			cJSON_ArrayForEach(it, v)
				merge_into(f, it);
		}
		cJSON_Delete(v);
	} else {
		if (has_key(f->node, f->nkeys, &f->keys, f->key)) {
			cJSON_Delete(v);
			return yerr(c, m, "duplicate mapping key \"%s\"", f->key);
		}
		add_member(f->node, &f->nkeys, &f->keys, f->key, v);
	}
	free(f->key);
	f->key = NULL;
	f->key_is_merge = 0;
	return 0;
}

static int
push(struct yctx *c, int is_map, const yaml_event_t *ev, const yaml_char_t *anchor)
{
	struct frame *f;
	int rc;

	if (c->depth >= YAML_MAX_DEPTH)
		return yerr(c, &ev->start_mark, "nesting deeper than %d levels", YAML_MAX_DEPTH);
	if ((rc = count_node(c, &ev->start_mark, 1)) < 0)
		return rc;
	f = &c->frames[c->depth++];
	memset(f, 0, sizeof(*f));
	f->is_map = is_map;
	f->node = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
	f->anchor = anchor ? xstrdup((const char *)anchor) : NULL;
	f->nodes_at_start = c->nodes - 1;
	return 0;
}

static int
pop(struct yctx *c, const yaml_event_t *ev)
{
	struct frame *f = &c->frames[c->depth - 1];
	cJSON *node = f->node;
	const cJSON *m;

	if (f->merge != NULL) {
		cJSON_ArrayForEach(m, f->merge)
			if (!has_key(node, f->nkeys, &f->keys, m->string))
				add_member(node, &f->nkeys, &f->keys, m->string,
				    cJSON_Duplicate(m, 1));
		cJSON_Delete(f->merge);
	}
	free(f->keys.slot);
	free(f->merge_keys.slot);
	if (f->anchor != NULL) {
		anchor_add(c, f->anchor, node, c->nodes - f->nodes_at_start);
		free(f->anchor);
	}
	free(f->key);
	c->depth--;
	return add_value(c, node, &ev->start_mark);
}

static void
unwind(struct yctx *c)
{
	while (c->depth > 0) {
		struct frame *f = &c->frames[--c->depth];
		free(f->keys.slot);
		free(f->merge_keys.slot);
		cJSON_Delete(f->node);
		cJSON_Delete(f->merge);
		free(f->key);
		free(f->anchor);
	}
	cJSON_Delete(c->root);
	c->root = NULL;
}

/* Is the top frame a mapping waiting for a key? */
static int
want_key(const struct yctx *c)
{
	const struct frame *f = c->depth ? &c->frames[c->depth - 1] : NULL;

	return f != NULL && f->is_map && f->key == NULL && !f->key_is_merge;
}

static int
handle_event(struct yctx *c, const yaml_event_t *ev)
{
	struct frame *f = c->depth ? &c->frames[c->depth - 1] : NULL;
	cJSON *v = NULL;
	int rc;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if (want_key(c)) {
			const char *s = (const char *)ev->data.scalar.value;
			if (strlen(s) != ev->data.scalar.length)
				return yerr(c, &ev->start_mark, "%s", "NUL character in key");
			f->key_is_merge = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			    ev->data.scalar.tag == NULL && strcmp(s, "<<") == 0;
			if (!f->key_is_merge)
				f->key = xstrdup(s);
			if (ev->data.scalar.anchor != NULL) {
				cJSON *k = cJSON_CreateString(s);
				anchor_add(c, (const char *)ev->data.scalar.anchor, k, 1);
				cJSON_Delete(k);
			}
			return 0;
		}
		if ((rc = count_node(c, &ev->start_mark, 1)) < 0)
			return rc;
		if ((rc = make_scalar(c, ev, &v)) < 0)
			return rc;
		if (ev->data.scalar.anchor != NULL)
			anchor_add(c, (const char *)ev->data.scalar.anchor, v, 1);
		return add_value(c, v, &ev->start_mark);
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)ev->data.alias.anchor;
		const struct anchor *a = anchor_find(c, name);
		if (a == NULL)
			return yerr(c, &ev->start_mark, "unknown or recursive alias \"*%s\"", name);
		if (want_key(c)) {
			if (!cJSON_IsString(a->node))
				return yerr(c, &ev->start_mark, "alias \"*%s\" used as a key is not a string", name);
			f->key = xstrdup(a->node->valuestring);
			return 0;
		}
		if ((rc = count_node(c, &ev->start_mark, a->nodes)) < 0)
			return rc;
		v = cJSON_Duplicate(a->node, 1);
		if (v == NULL)
			fatalx("yaml: out of memory");
		return add_value(c, v, &ev->start_mark);
	}
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		if (want_key(c))
			return yerr(c, &ev->start_mark, "%s", "complex mapping keys are not supported");
		return push(c, ev->type == YAML_MAPPING_START_EVENT, ev,
		    ev->type == YAML_MAPPING_START_EVENT ? ev->data.mapping_start.anchor :
		    ev->data.sequence_start.anchor);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		return pop(c, ev);
	default:
		return 0;
	}
}

static int
parser_error(struct yctx *c, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "syntax error";

	if (p->error == YAML_READER_ERROR) {
		size_t line = 0, col = 0;
		for (size_t i = 0; i < p->problem_offset; i++) {
			unsigned char ch = (unsigned char)c->text[i];
			if (ch == '\n') {
				line++;
				col = 0;
			} else if ((ch & 0xc0) != 0x80) {
				col++;
			}
		}
		return yerr_at(c, line, col, "%s", problem);
	}
	if (p->context != NULL) {
		char msg[400];
		snprintf(msg, sizeof(msg), "%s (%s at line %zu)", problem, p->context,
		    p->context_mark.line + 1);
		return yerr_at(c, p->problem_mark.line, p->problem_mark.column, "%s", msg);
	}
	return yerr_at(c, p->problem_mark.line, p->problem_mark.column, "%s", problem);
}

void
yaml_docs_free(cJSON **docs, size_t ndocs)
{
	for (size_t i = 0; i < ndocs; i++)
		cJSON_Delete(docs[i]);
	free(docs);
}

int
yaml_parse_docs(const char *text, size_t len, const char *filename,
    cJSON ***docs, size_t *ndocs, struct llmd_err *e)
{
	struct yctx c = { .filename = filename, .text = text, .e = e };
	yaml_parser_t p;
	yaml_event_t ev;
	cJSON **out = NULL;
	size_t n = 0, alloc = 0;
	int rc = 0, done = 0;

	*docs = NULL;
	*ndocs = 0;
	if (len > YAML_MAX_INPUT)
		return err_set(e, -EFBIG, filename ? filename : "", "input larger than %u bytes",
		    YAML_MAX_INPUT);
	if (!yaml_parser_initialize(&p))
		fatalx("yaml: out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = parser_error(&c, &p);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			c.nodes = 0;
			break;
		case YAML_DOCUMENT_END_EVENT:
			anchors_clear(&c);
			if (c.root == NULL || cJSON_IsNull(c.root)) {
				cJSON_Delete(c.root);
			} else {
				if (n == alloc) {
					alloc = alloc ? 2 * alloc : 4;
					out = xreallocarray(out, alloc, sizeof(*out));
				}
				out[n++] = c.root;
			}
			c.root = NULL;
			break;
		default:
			rc = handle_event(&c, &ev);
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	unwind(&c);
	anchors_clear(&c);
	free(c.anchors);
	if (rc < 0) {
		yaml_docs_free(out, n);
		return rc;
	}
	*docs = out;
	*ndocs = n;
	return 0;
}

int
yaml_parse_one(const char *text, size_t len, const char *filename, cJSON **out,
    struct llmd_err *e)
{
	cJSON **docs;
	size_t n;
	int rc;

	*out = NULL;
	if ((rc = yaml_parse_docs(text, len, filename, &docs, &n, e)) < 0)
		return rc;
	if (n != 1) {
		yaml_docs_free(docs, n);
		return n == 0 ? err_set(e, -ENODATA, filename ? filename : "", "no document")
		    : err_set(e, -EINVAL, filename ? filename : "",
		    "expected one document, found %zu", n);
	}
	*out = docs[0];
	free(docs);
	return 0;
}

int
yaml_parse_file(const char *path, cJSON ***docs, size_t *ndocs, struct llmd_err *e)
{
	struct buf b = BUF_INIT;
	int stdin_ = strcmp(path, "-") == 0;
	int fd = stdin_ ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	*docs = NULL;
	*ndocs = 0;
	if (fd < 0)
		return err_set(e, -errno, path, "%s", strerror(errno));
	for (;;) {
		ssize_t r;
		buf_grow(&b, 65536);
		r = read(fd, b.buf + b.len, b.alloc - b.len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_set(e, -errno, path, "%s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		buf_setlen(&b, b.len + (size_t)r);
		if (b.len > YAML_MAX_INPUT) {
			rc = err_set(e, -EFBIG, path, "larger than %u bytes", YAML_MAX_INPUT);
			goto out;
		}
	}
	rc = yaml_parse_docs(b.buf, b.len, stdin_ ? "<stdin>" : path, docs, ndocs, e);
out:
	if (!stdin_)
		close(fd);
	buf_release(&b);
	return rc;
}

/* ---- emitting ---- */

static int
emit_write(void *data, unsigned char *buffer, size_t size)
{
	buf_add(data, buffer, size);
	return 1;
}

static int
emit_scalar(yaml_emitter_t *em, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s),
	    1, 1, style))
		return 0;
	return yaml_emitter_emit(em, &ev);
}

static int
emit_node(yaml_emitter_t *em, const cJSON *v, int depth)
{
	yaml_event_t ev;
	const cJSON *c;

	if (depth > YAML_MAX_DEPTH)
		return 0;
	if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
		int obj = cJSON_IsObject(v);
		int ok = obj ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		    YAML_BLOCK_MAPPING_STYLE) : yaml_sequence_start_event_initialize(&ev, NULL,
		    NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
		if (!ok || !yaml_emitter_emit(em, &ev))
			return 0;
		cJSON_ArrayForEach(c, v) {
			if (obj && !emit_scalar(em, c->string ? c->string : "",
			    resolve_plain(c->string ? c->string : "", &(double){ 0 }, &(int){ 0 }) ==
			    SC_STR ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE))
				return 0;
			if (!emit_node(em, c, depth + 1))
				return 0;
		}
		ok = obj ? yaml_mapping_end_event_initialize(&ev) :
		    yaml_sequence_end_event_initialize(&ev);
		return ok && yaml_emitter_emit(em, &ev);
	}
	if (cJSON_IsString(v)) {
		double num;
		int b;
		const char *s = v->valuestring ? v->valuestring : "";
		yaml_scalar_style_t st = resolve_plain(s, &num, &b) == SC_STR ?
		    (strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE) :
		    YAML_DOUBLE_QUOTED_SCALAR_STYLE;
		return emit_scalar(em, s, st);
	}
	if (cJSON_IsNumber(v)) {
		char *s = cJSON_PrintUnformatted((cJSON *)v);
		int ok = s != NULL && emit_scalar(em, s, YAML_PLAIN_SCALAR_STYLE);
		cJSON_free(s);
		return ok;
	}
	if (cJSON_IsBool(v))
		return emit_scalar(em, cJSON_IsTrue(v) ? "true" : "false", YAML_PLAIN_SCALAR_STYLE);
	return emit_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
}

int
yaml_emit(const cJSON *v, struct buf *out, struct llmd_err *e)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int ok;

	if (!yaml_emitter_initialize(&em))
		fatalx("yaml: out of memory");
	yaml_emitter_set_output(&em, emit_write, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
	    yaml_emitter_emit(&em, &ev) &&
	    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
	    yaml_emitter_emit(&em, &ev) &&
	    emit_node(&em, v, 0) &&
	    yaml_document_end_event_initialize(&ev, 1) &&
	    yaml_emitter_emit(&em, &ev) &&
	    yaml_stream_end_event_initialize(&ev) &&
	    yaml_emitter_emit(&em, &ev);
	if (!ok) {
		int rc = err_set(e, -EINVAL, "", "cannot emit YAML: %s",
		    em.problem ? em.problem : "nesting too deep");
		yaml_emitter_delete(&em);
		return rc;
	}
	yaml_emitter_delete(&em);
	return 0;
}
