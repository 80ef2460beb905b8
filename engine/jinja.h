/*
 * engine/jinja.h - a Jinja2-subset template engine for Hugging Face chat
 * templates (the `chat_template` of tokenizer_config.json).
 *
 * Configured as transformers configures Jinja for apply_chat_template:
 * trim_blocks and lstrip_blocks on, loop controls (break/continue), the
 * {% generation %} tag accepted as a plain block, a sandbox without
 * mutation of lists and dicts. Supported: if/elif/else, for (loop.*,
 * else, inline if-filter, tuple targets), set (plain, namespace attribute,
 * block form), macros, the usual expressions, filters, tests and the str
 * and dict methods chat templates use. See engine/jinja-*.c.
 *
 * Errors: jinja_parse() reports syntax errors with e->field "line:col";
 * jinja_render() reports runtime errors (undefined attribute access, type
 * errors, raise_exception(msg), limits) with e->field "line:col" of the
 * failing construct and, for raise_exception, e->msg the template's message.
 * Limits bound a hostile template: recursion depth, output size, loop
 * iterations and render memory.
 */
#ifndef LLMD_ENGINE_JINJA_H
#define LLMD_ENGINE_JINJA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/buf.h"
#include "lib/err.h"

struct jinja_template;

struct jinja_limits {
	size_t max_output;        /* bytes of rendered text */
	size_t max_memory;        /* bytes of values allocated while rendering */
	unsigned max_depth;       /* nested expressions, statements and macro calls */
	uint64_t max_iterations;  /* loop iterations, all loops together */
};

/* 16 MiB output (a long-context prompt), 256 MiB memory, depth 400, 1e6
 * iterations. */
#define JINJA_LIMITS_DEFAULT { 16u << 20, 256u << 20, 400, 1000000 }

/* Compiles src[0..len). -EINVAL with e->field "line:col" on a syntax error. */
int jinja_parse(const char *src, size_t len, struct jinja_template **out, struct llmd_err *e);
void jinja_free(struct jinja_template *t);

/*
 * Renders t with the members of vars (a JSON object, may be NULL) as global
 * variables, appending to out. On failure out is left as it was and e says
 * why: -EINVAL (template error or raise_exception), -E2BIG (output or memory
 * limit), -ELOOP (depth or iteration limit). lim NULL means the defaults.
 */
int jinja_render(const struct jinja_template *t, const cJSON *vars,
    const struct jinja_limits *lim, struct buf *out, struct llmd_err *e);

/*
 * 1 when some {% for %} in t iterates over an attribute or item named attr
 * (`for part in message['content']`): how vLLM tells templates that take
 * OpenAI-style content part lists from those that take plain strings.
 */
int jinja_iterates_over(const struct jinja_template *t, const char *attr);

#endif
