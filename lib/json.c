/*
 * lib/json.c - strict JSON parsing, typed getters with field paths, printing
 * and merge patch over cJSON (see json.h).
 */
#include "config.h"
#include "lib/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* Length of the UTF-8 sequence at s[0..len), or 0 when it is invalid. */
static size_t
utf8_seq_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return c == 0 ? 0 : 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
json_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq_len(p + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* 1-based line and column (in characters) of byte offset off. */
static void
line_col(const char *s, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n') {
			(*line)++;
			*col = 1;
		} else if ((c & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static int parse_error(struct llmd_err *e, const char *name, const char *s, size_t off,
    const char *fmt, ...) LLMD_PRINTF(5, 6);

static int
parse_error(struct llmd_err *e, const char *name, const char *s, size_t off,
    const char *fmt, ...)
{
	unsigned line, col;
	char field[256], msg[512];
	va_list ap;

	line_col(s, off, &line, &col);
	if (name != NULL)
		snprintf(field, sizeof(field), "%s:%u:%u", name, line, col);
	else
		snprintf(field, sizeof(field), "%u:%u", line, col);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(e, -EINVAL, field, "%s", msg);
}

/* One pass over the text: UTF-8 validity, NUL bytes and nesting depth. */
static int
prescan(const char *s, size_t len, const char *name, struct llmd_err *e)
{
	const unsigned char *p = (const unsigned char *)s;
	int in_str = 0, depth = 0;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n = utf8_seq_len(p + i, len - i);

		if (n == 0)
			return parse_error(e, name, s, i, "%s",
			    c == 0 ? "NUL byte in JSON text" : "invalid UTF-8");
		if (in_str) {
			if (c == '\\')
				n = (i + 1 < len && p[i + 1] != 0 && p[i + 1] < 0x80) ? 2 : 1;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > JSON_MAX_DEPTH)
				return parse_error(e, name, s, i,
				    "nesting deeper than %d levels", JSON_MAX_DEPTH);
		} else if (c == ']' || c == '}') {
			depth--;
		}
		i += n;
	}
	return 0;
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Where cJSON's parse of s[0..len) failed. cJSON clamps positions at the end
 * of its buffer, which hides truncation; parsing a copy padded with two
 * spaces tells them apart: a position past len means "unexpected end".
 */
static size_t
error_offset(const char *s, size_t len)
{
	char *t = xmalloc(len + 3);
	const char *end = NULL;
	size_t off;

	memcpy(t, s, len);
	memcpy(t + len, "  ", 3);
	cJSON_Delete(cJSON_ParseWithLengthOpts(t, len + 2, &end, 0));
	off = end != NULL && end >= t ? (size_t)(end - t) : 0;
	free(t);
	if (off > len)
		return len;
	return off == len && len > 0 ? len - 1 : off;
}

int
json_parse_named(const char *s, size_t len, const char *name, cJSON **out,
    struct llmd_err *e)
{
	const char *end = NULL;
	cJSON *v;
	size_t off;
	int rc;

	*out = NULL;
	if ((rc = prescan(s, len, name, e)) < 0)
		return rc;
	v = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	if (v == NULL) {
		off = error_offset(s, len);
		while (off < len && is_ws(s[off]))
			off++;
		if (off >= len)
			return parse_error(e, name, s, len, "%s",
			    "invalid JSON: unexpected end of input");
		char tok[8];
		size_t n = utf8_seq_len((const unsigned char *)s + off, len - off);
		snprintf(tok, sizeof(tok), "%.*s", (int)(n ? n : 1), s + off);
		return parse_error(e, name, s, off,
		    "invalid JSON: unexpected '%s'", tok);
	}
	off = (size_t)(end - s);
	while (off < len && is_ws(s[off]))
		off++;
	if (off < len) {
		cJSON_Delete(v);
		return parse_error(e, name, s, off, "%s",
		    "invalid JSON: unexpected data after the value");
	}
	*out = v;
	return 0;
}

int
json_parse(const char *s, size_t len, cJSON **out, struct llmd_err *e)
{
	return json_parse_named(s, len, NULL, out, e);
}

/* ---- typed getters ---- */

static int
lookup(const cJSON *obj, const char *key, int required, const cJSON **v,
    struct llmd_err *e)
{
	if (!cJSON_IsObject(obj))
		return err_set(e, -EINVAL, "", "must be an object");
	*v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (*v == NULL || cJSON_IsNull(*v)) {
		*v = NULL;
		return required ? err_set(e, -ENOENT, key, "is required") : 0;
	}
	return 1;
}

int
json_value_str(const cJSON *v, const char *field, const char **out, struct llmd_err *e)
{
	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return err_set(e, -EINVAL, field, "must be a string");
	*out = v->valuestring;
	return 0;
}

int
json_value_int64(const cJSON *v, const char *field, int64_t *out, struct llmd_err *e)
{
	double d;

	if (!cJSON_IsNumber(v))
		return err_set(e, -EINVAL, field, "must be an integer");
	d = v->valuedouble;
	if (!isfinite(d) || d != floor(d))
		return err_set(e, -EINVAL, field, "must be an integer");
	/* 2^63 is exactly representable; anything >= it does not fit. */
	if (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
		return err_set(e, -ERANGE, field, "integer out of range");
	*out = (int64_t)d;
	return 0;
}

int
json_value_double(const cJSON *v, const char *field, double *out, struct llmd_err *e)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return err_set(e, -EINVAL, field, "must be a number");
	*out = v->valuedouble;
	return 0;
}

int
json_value_bool(const cJSON *v, const char *field, int *out, struct llmd_err *e)
{
	if (!cJSON_IsBool(v))
		return err_set(e, -EINVAL, field, "must be a boolean");
	*out = cJSON_IsTrue(v);
	return 0;
}

int
json_get_str(const cJSON *obj, const char *key, const char **out, int required,
    struct llmd_err *e)
{
	const cJSON *v;
	int rc = lookup(obj, key, required, &v, e);

	return rc <= 0 ? rc : json_value_str(v, key, out, e);
}

int
json_get_int64(const cJSON *obj, const char *key, int64_t *out, int required,
    struct llmd_err *e)
{
	const cJSON *v;
	int rc = lookup(obj, key, required, &v, e);

	return rc <= 0 ? rc : json_value_int64(v, key, out, e);
}

int
json_get_int64_range(const cJSON *obj, const char *key, int64_t min, int64_t max,
    int64_t *out, int required, struct llmd_err *e)
{
	const cJSON *v;
	int64_t x;
	int rc = lookup(obj, key, required, &v, e);

	if (rc <= 0)
		return rc;
	if ((rc = json_value_int64(v, key, &x, e)) < 0)
		return rc;
	if (x < min || x > max)
		return err_set(e, -ERANGE, key, "must be between %" PRId64 " and %" PRId64,
		    min, max);
	*out = x;
	return 0;
}

int
json_get_double(const cJSON *obj, const char *key, double *out, int required,
    struct llmd_err *e)
{
	const cJSON *v;
	int rc = lookup(obj, key, required, &v, e);

	return rc <= 0 ? rc : json_value_double(v, key, out, e);
}

int
json_get_bool(const cJSON *obj, const char *key, int *out, int required,
    struct llmd_err *e)
{
	const cJSON *v;
	int rc = lookup(obj, key, required, &v, e);

	return rc <= 0 ? rc : json_value_bool(v, key, out, e);
}

int
json_get_object(const cJSON *obj, const char *key, const cJSON **out, int required,
    struct llmd_err *e)
{
	const cJSON *v;
	int rc = lookup(obj, key, required, &v, e);

	if (rc <= 0)
		return rc;
	if (!cJSON_IsObject(v))
		return err_set(e, -EINVAL, key, "must be an object");
	*out = v;
	return 0;
}

int
json_get_array(const cJSON *obj, const char *key, const cJSON **out, int required,
    struct llmd_err *e)
{
	const cJSON *v;
	int rc = lookup(obj, key, required, &v, e);

	if (rc <= 0)
		return rc;
	if (!cJSON_IsArray(v))
		return err_set(e, -EINVAL, key, "must be an array");
	*out = v;
	return 0;
}

int
json_path_prefix(struct llmd_err *e, const char *key)
{
	if (e == NULL)
		return 0;
	err_prefix_field(e, key);
	return e->code;
}

int
json_path_prefix_index(struct llmd_err *e, const char *key, size_t index)
{
	char idx[32];

	if (e == NULL)
		return 0;
	snprintf(idx, sizeof(idx), "[%zu]", index);
	err_prefix_field(e, idx);
	err_prefix_field(e, key);
	return e->code;
}

/* ---- printing ---- */

void
json_print_compact(const cJSON *v, struct buf *out)
{
	char *s = cJSON_PrintUnformatted((cJSON *)v);

	if (s == NULL)
		fatalx("json_print_compact: out of memory");
	buf_adds(out, s);
	cJSON_free(s);
}

static void
indent(struct buf *out, int depth)
{
	buf_addch(out, '\n');
	for (int i = 0; i < depth; i++)
		buf_add(out, "  ", 2);
}

static void
print_pretty(const cJSON *v, struct buf *out, int depth)
{
	const cJSON *c;
	int obj = cJSON_IsObject(v);

	if (!obj && !cJSON_IsArray(v)) {
		json_print_compact(v, out);
		return;
	}
	if (v->child == NULL) {
		buf_adds(out, obj ? "{}" : "[]");
		return;
	}
	buf_addch(out, obj ? '{' : '[');
	cJSON_ArrayForEach(c, v) {
		indent(out, depth + 1);
		if (obj) {
			const char *k = c->string ? c->string : "";
			buf_add_json_str(out, k, strlen(k));
			buf_add(out, ": ", 2);
		}
		print_pretty(c, out, depth + 1);
		if (c->next != NULL)
			buf_addch(out, ',');
	}
	indent(out, depth);
	buf_addch(out, obj ? '}' : ']');
}

void
json_print_pretty(const cJSON *v, struct buf *out)
{
	print_pretty(v, out, 0);
	buf_addch(out, '\n');
}

/* ---- merge patch ---- */

cJSON *
json_merge_patch(cJSON *target, const cJSON *patch)
{
	const cJSON *p;

	if (!cJSON_IsObject(patch)) {
		cJSON_Delete(target);
		return cJSON_Duplicate(patch, 1);
	}
	if (!cJSON_IsObject(target)) {
		cJSON_Delete(target);
		target = cJSON_CreateObject();
	}
	cJSON_ArrayForEach(p, patch) {
		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
			continue;
		}
		cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(target, p->string);
		cJSON_AddItemToObject(target, p->string, json_merge_patch(cur, p));
	}
	return target;
}

const cJSON *
json_member(const cJSON *o, const char *key)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

const char *
json_member_str(const cJSON *o, const char *key)
{
	const cJSON *v = json_member(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}
