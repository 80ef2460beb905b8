/*
 * lib/yaml.h - YAML (and therefore JSON) documents to cJSON, with libyaml's
 * event parser.
 *
 * Scalars are typed by the YAML 1.2 core schema, as Kubernetes manifests
 * expect: null/Null/NULL/~/empty, true/false (any of the three cases),
 * integers (decimal, 0x hex, 0o octal), floats (incl. .5, 1e3; .inf/.nan are
 * rejected, JSON has no such numbers). Quoted and block scalars, and scalars
 * tagged !!str or "!", stay strings. Mapping keys become strings. Anchors and
 * aliases work (aliases are expanded by copying); merge keys ("<<") merge
 * mappings with explicit keys winning. Duplicate keys are an error.
 *
 * Limits: nesting depth YAML_MAX_DEPTH, total nodes produced (aliases
 * expanded included, against "billion laughs") YAML_MAX_NODES, input size
 * YAML_MAX_INPUT. Errors have e->field "FILE:LINE:COL" (1-based; just
 * "LINE:COL" when filename is NULL) and a message.
 */
#ifndef LLMD_YAML_H
#define LLMD_YAML_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "lib/buf.h"
#include "lib/err.h"

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 1000000
#define YAML_MAX_INPUT (64u << 20)

/*
 * Parses every document of a stream. Empty documents (nothing, or a null
 * root) are skipped. On success *docs is an array of *ndocs documents (NULL
 * when none) to free with yaml_docs_free(); on error nothing is returned.
 */
int yaml_parse_docs(const char *text, size_t len, const char *filename,
    cJSON ***docs, size_t *ndocs, struct llmd_err *e);
void yaml_docs_free(cJSON **docs, size_t ndocs);

/*
 * Exactly one document: -ENODATA ("no document") when the stream is empty,
 * -EINVAL when it holds several.
 */
int yaml_parse_one(const char *text, size_t len, const char *filename, cJSON **out,
    struct llmd_err *e);

/* Reads and parses a file; path "-" is standard input. */
int yaml_parse_file(const char *path, cJSON ***docs, size_t *ndocs, struct llmd_err *e);

/*
 * Appends v as one block-style YAML document (no "---"; put one between
 * documents) to out. Strings that would read back as another type ("true",
 * "42", "null", "") are quoted, so yaml_parse_one() gives v back.
 */
int yaml_emit(const cJSON *v, struct buf *out, struct llmd_err *e);

#endif
