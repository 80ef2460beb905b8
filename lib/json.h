/*
 * lib/json.h - JSON over cJSON: a strict parser (UTF-8, depth limit, errors
 * at line:column), typed field getters that report the field path through
 * struct llmd_err, path prefix helpers for nested validators, compact
 * printing into a struct buf and an RFC 7386 merge patch.
 *
 * Getter contract (json_get_*): obj must be a JSON object. A member that is
 * absent or JSON null is "missing": with required set that is -ENOENT
 * ("is required"), otherwise 0 with *out left untouched so the caller's
 * default stays. A member of the wrong type is -EINVAL ("must be a string").
 * The error's field is the key; a nested validator prefixes its own location
 * with json_path_prefix()/json_path_prefix_index() on the way out, giving
 * "spec.template.containers[0].image".
 */
#ifndef LLMD_JSON_H
#define LLMD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/buf.h"
#include "lib/err.h"

/* Deepest nesting of arrays/objects json_parse() accepts. */
#define JSON_MAX_DEPTH 64

/*
 * Parses exactly one JSON value from s[0..len). Rejects invalid UTF-8, NUL
 * bytes, nesting deeper than JSON_MAX_DEPTH and trailing garbage. On error
 * returns -EINVAL with e->field "LINE:COL" (1-based, columns in characters).
 * The caller frees *out with cJSON_Delete().
 */
int json_parse(const char *s, size_t len, cJSON **out, struct llmd_err *e);
/* Same; e->field becomes "NAME:LINE:COL" (a file name, "request body"). */
int json_parse_named(const char *s, size_t len, const char *name, cJSON **out,
    struct llmd_err *e);

/* Checks that s[0..len) is valid UTF-8 (no overlongs, surrogates or NULs). */
int json_utf8_valid(const char *s, size_t len);

/* Typed getters; see the contract above. *out for str/object/array points into obj. */
int json_get_str(const cJSON *obj, const char *key, const char **out, int required,
    struct llmd_err *e);
/*
 * Integral numbers only, within [INT64_MIN, INT64_MAX] ("must be an
 * integer"); exact up to 2^53 since cJSON keeps numbers as doubles.
 */
int json_get_int64(const cJSON *obj, const char *key, int64_t *out, int required,
    struct llmd_err *e);
/* Integral and within [min,max] ("must be between MIN and MAX"). */
int json_get_int64_range(const cJSON *obj, const char *key, int64_t min, int64_t max,
    int64_t *out, int required, struct llmd_err *e);
int json_get_double(const cJSON *obj, const char *key, double *out, int required,
    struct llmd_err *e);
int json_get_bool(const cJSON *obj, const char *key, int *out, int required,
    struct llmd_err *e);
int json_get_object(const cJSON *obj, const char *key, const cJSON **out, int required,
    struct llmd_err *e);
int json_get_array(const cJSON *obj, const char *key, const cJSON **out, int required,
    struct llmd_err *e);

/*
 * The same checks on a value already in hand (an array element): field is
 * the name to report ("" for none, then prefix it with the index).
 */
int json_value_str(const cJSON *v, const char *field, const char **out, struct llmd_err *e);
int json_value_int64(const cJSON *v, const char *field, int64_t *out, struct llmd_err *e);
int json_value_double(const cJSON *v, const char *field, double *out, struct llmd_err *e);
int json_value_bool(const cJSON *v, const char *field, int *out, struct llmd_err *e);

/*
 * Field path helpers for nested validators; both return e->code (or 0 when
 * e is NULL) so a caller can write "return json_path_prefix(e, "spec");".
 *   json_path_prefix(e, "spec")                "image" -> "spec.image"
 *   json_path_prefix_index(e, "containers", 0) "image" -> "containers[0].image"
 */
int json_path_prefix(struct llmd_err *e, const char *key);
int json_path_prefix_index(struct llmd_err *e, const char *key, size_t index);

/*
 * Lenient lookups for code that walks documents it did not validate: the
 * member key of o (NULL when o is not an object or has none), and that
 * member's string (NULL when absent or not a string). No errors.
 */
const cJSON *json_member(const cJSON *o, const char *key);
const char *json_member_str(const cJSON *o, const char *key);

/* Appends the compact serialization of v to out. */
void json_print_compact(const cJSON *v, struct buf *out);
/* Appends an indented serialization (2 spaces) and a newline to out. */
void json_print_pretty(const cJSON *v, struct buf *out);

/*
 * RFC 7386 JSON merge patch: applies patch to target and returns the result,
 * which is target modified in place, or a new value when patch is not an
 * object (target is then freed). target may be NULL. patch is not modified.
 */
cJSON *json_merge_patch(cJSON *target, const cJSON *patch);

#endif
