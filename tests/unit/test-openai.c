/*
 * tests/unit/test-openai.c - OpenAI/vLLM request parsing: defaults, every
 * validation error names its parameter, unsupported features are refused.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "engine/openai.h"

static int
parse(struct oai_request *r, enum oai_kind k, const char *body, struct llmd_err *e)
{
	static const struct oai_defaults d = { 0.7, 0.9, 0.0, 1.0, 20 };
	return oai_request_parse(r, k, body, strlen(body), &d, e);
}

Test(openai, completion_defaults_and_fields)
{
	struct oai_request r;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(parse(&r, OAI_COMPLETION, "{\"model\":\"m\",\"prompt\":\"hi\"}", &e), 0, "%s", e.msg);
	cr_assert_str_eq(r.model, "m");
	cr_assert_str_eq(r.prompt_text, "hi");
	cr_assert_eq(r.max_tokens, 16);
	cr_assert_float_eq(r.temperature, 0.7, 1e-9);   /* generation_config default */
	cr_assert_eq(r.top_k, 20);
	cr_assert(r.add_special_tokens);
	oai_request_release(&r);

	cr_assert_eq(parse(&r, OAI_COMPLETION, "{\"prompt\":[1,2,3],\"max_tokens\":5,\"temperature\":0,"
	    "\"stop\":[\"\\n\",\"END\"],\"seed\":7,\"logprobs\":2,\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true},\"ignore_eos\":true,\"min_tokens\":2,"
	    "\"unknown_field\":1}", &e), 0, "%s", e.msg);
	cr_assert_eq(r.n_prompt_ids, 3);
	cr_assert_eq(r.prompt_ids[2], 3);
	cr_assert_eq(r.max_tokens, 5);
	cr_assert_float_eq(r.temperature, 0.0, 1e-9);
	cr_assert_eq(r.n_stop, 2);
	cr_assert_str_eq(r.stop[1], "END");
	cr_assert(r.has_seed && r.seed == 7);
	cr_assert(r.logprobs && r.top_logprobs == 2);
	cr_assert(r.stream && r.include_usage && r.ignore_eos);
	cr_assert_eq(r.min_tokens, 2);
	oai_request_release(&r);

	/* stream_options present: include_usage defaults to true, as vLLM's */
	cr_assert_eq(parse(&r, OAI_COMPLETION, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{}}", &e),
	    0, "%s", e.msg);
	cr_assert(r.include_usage && !r.continuous_usage);
	oai_request_release(&r);
	cr_assert_eq(parse(&r, OAI_COMPLETION, "{\"prompt\":\"x\",\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":false}}", &e), 0, "%s", e.msg);
	cr_assert(!r.include_usage);
	oai_request_release(&r);
	cr_assert_eq(parse(&r, OAI_COMPLETION, "{\"prompt\":\"x\",\"stream\":true}", &e), 0, "%s", e.msg);
	cr_assert(!r.include_usage, "no stream_options: no usage chunk");
	oai_request_release(&r);

	cr_assert_eq(parse(&r, OAI_COMPLETION, "{\"prompt\":[[4,5]]}", &e), 0, "%s", e.msg);
	cr_assert_eq(r.n_prompt_ids, 2);
	oai_request_release(&r);
}

Test(openai, chat_fields)
{
	struct oai_request r;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(parse(&r, OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
	    "\"max_completion_tokens\":9,\"logprobs\":true,\"top_logprobs\":3}", &e), 0, "%s", e.msg);
	cr_assert_eq(cJSON_GetArraySize(r.messages), 2);
	cr_assert_eq(r.max_tokens, 9);
	cr_assert(r.logprobs && r.top_logprobs == 3);
	cr_assert(r.add_generation_prompt);
	cr_assert(!r.add_special_tokens);
	oai_request_release(&r);

	cr_assert_eq(parse(&r, OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &e), 0);
	cr_assert_eq(r.max_tokens, -1, "chat without a limit runs to max_model_len");
	oai_request_release(&r);
}

/* Inline arrays, not pointers: criterion re-executes the binary for each
 * parameter, so pointers into the parent's address space are not valid. */
struct bad_case {
	int kind;
	char body[200];
	char field[40];
};

static struct bad_case bad_cases[] = {
	{ OAI_COMPLETION, "{\"prompt\":\"x\"", "request body:1:14" },
	{ OAI_COMPLETION, "[1,2]", "" },
	{ OAI_COMPLETION, "{}", "prompt" },
	{ OAI_COMPLETION, "{\"prompt\":5}", "prompt" },
	{ OAI_COMPLETION, "{\"prompt\":[]}", "prompt" },
	{ OAI_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", "prompt" },
	{ OAI_COMPLETION, "{\"prompt\":[1,-2]}", "prompt" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":-1}", "max_tokens" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":\"5\"}", "max_tokens" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":1.5}", "max_tokens" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"temperature\":-1}", "temperature" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"temperature\":\"hot\"}", "temperature" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"top_p\":0}", "top_p" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"top_p\":1.5}", "top_p" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"top_k\":-2}", "top_k" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"n\":2}", "n" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"best_of\":3}", "best_of" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"suffix\":\"y\"}", "suffix" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"stop\":5}", "stop" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}", "stream_options" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":50}", "logprobs" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"min_tokens\":20,\"max_tokens\":5}", "min_tokens" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"seed\":\"s\"}", "seed" },
	{ OAI_COMPLETION, "{\"prompt\":\"x\",\"stop_token_ids\":[\"a\"]}", "stop_token_ids" },
	{ OAI_COMPLETION, "{\"model\":5,\"prompt\":\"x\"}", "model" },
	{ OAI_CHAT, "{}", "messages" },
	{ OAI_CHAT, "{\"messages\":[]}", "messages" },
	{ OAI_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role" },
	{ OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content" },
	{ OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages[0].content" },
	{ OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}", "tools" },
	{ OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}", "response_format" },
	{ OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}", "top_logprobs" },
	{ OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":0}", "max_completion_tokens" },
	{ OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"add_generation_prompt\":true,\"continue_final_message\":true}", "continue_final_message" },
};

ParameterizedTestParameters(openai, rejects_with_field)
{
	return cr_make_param_array(struct bad_case, bad_cases, sizeof(bad_cases) / sizeof(bad_cases[0]));
}

ParameterizedTest(struct bad_case *c, openai, rejects_with_field)
{
	struct oai_request r;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_lt(parse(&r, (enum oai_kind)c->kind, c->body, &e), 0, "accepted: %s", c->body);
	cr_assert_str_eq(e.field, c->field, "body %s: field '%s' (%s)", c->body, e.field, e.msg);
	cr_assert_neq(e.msg[0], '\0');
	oai_request_release(&r);
}

Test(openai, invalid_utf8_rejected)
{
	struct oai_request r;
	struct llmd_err e = LLMD_ERR_INIT;
	const char body[] = "{\"prompt\":\"\xc3\x28\"}";

	cr_assert_lt(oai_request_parse(&r, OAI_COMPLETION, body, sizeof(body) - 1, NULL, &e), 0);
	oai_request_release(&r);
}
