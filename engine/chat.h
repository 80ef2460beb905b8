/*
 * engine/chat.h - OpenAI chat messages to a prompt string through the
 * model's chat template (engine/jinja.h), as vLLM's chat completions do.
 */
#ifndef LLMD_ENGINE_CHAT_H
#define LLMD_ENGINE_CHAT_H

#include <cjson/cJSON.h>

#include "engine/jinja.h"
#include "lib/buf.h"
#include "lib/err.h"

/*
 * Renders messages (a JSON array of {"role", "content", ...} objects) with
 * template t, appending the prompt to out.
 *
 * extra_vars (a JSON object, may be NULL) holds the template variables:
 * add_generation_prompt (default false), bos_token, eos_token, tools
 * (default none) and any other member, plus chat_template_kwargs whose
 * members become variables of their own (e.g. enable_thinking), taking
 * precedence.
 *
 * Messages are prepared as vLLM prepares them: content becomes one string
 * (text parts joined with "\n", null as "") unless the template iterates
 * over message content itself (jinja_iterates_over(t, "content")), which
 * gets a list of parts instead (a string as one text part, null as []);
 * tool call arguments given as a JSON string are parsed into the object.
 * Errors: -EINVAL with e->field the offending message
 * ("messages[1].content[0]") or the template's line:col.
 */
int chat_render(const struct jinja_template *t, const cJSON *messages, const cJSON *extra_vars,
    struct buf *out, struct llmd_err *e);

/*
 * A model's chat template(s) and special tokens (engine/chat-template.c).
 * Loaded from MODEL_DIR/chat_template.jinja when present (what recent
 * transformers save), else the "chat_template" of tokenizer_config.json: a
 * string, or a list of {"name", "template"} of which "default" and
 * "tool_use" are kept.
 */
struct chat_template {
	struct jinja_template *tmpl;      /* default */
	struct jinja_template *tool_use;  /* NULL when the model has none */
	char *bos_token;                  /* NULL when unset */
	char *eos_token;
};

/*
 * -ENOENT when the model has no chat template; -EINVAL on a template that
 * does not compile, with e->field "FILE:LINE:COL" (tokenizer_config.json
 * templates count lines inside the template string).
 */
int chat_template_load(const char *model_dir, struct chat_template **out, struct llmd_err *e);
void chat_template_free(struct chat_template *ct);

/*
 * chat_render() with the model's template: tool_use when extra_vars has a
 * non-empty "tools" and the model has one, and bos_token/eos_token from the
 * model unless extra_vars sets them.
 */
int chat_template_render(const struct chat_template *ct, const cJSON *messages,
    const cJSON *extra_vars, struct buf *out, struct llmd_err *e);

#endif
