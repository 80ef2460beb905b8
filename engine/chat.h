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
 * Content given as a list of parts is joined (text parts, "\n" between
 * them) into one string unless the template iterates over message content
 * itself (jinja_iterates_over(t, "content")), in which case the list is
 * passed through. Errors: -EINVAL with e->field the offending message
 * ("messages[1].content[0].type") or the template's line:col.
 */
int chat_render(const struct jinja_template *t, const cJSON *messages, const cJSON *extra_vars,
    struct buf *out, struct llmd_err *e);

#endif
