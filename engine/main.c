/*
 * engine/main.c - llmd-engine entry point: global flags and the subcommand
 * table. Each subcommand lives in its own engine/cmd-*.c file.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "engine/commands.h"
#include "lib/cli.h"
#include "lib/log.h"

static const struct engine_cmd engine_cmds[] = {
	{ "serve", cmd_serve, "serve a model over a vLLM-compatible OpenAI API" },
	{ "generate", cmd_generate, "complete one prompt and print the text" },
	{ "tokenize", cmd_tokenize, "print the token ids of stdin as a JSON array" },
	{ "detokenize", cmd_detokenize, "print the text of a JSON array of ids on stdin" },
	{ "make-model", cmd_make_model, "write a random-weight model directory for tests" },
	{ NULL, NULL, NULL },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmd-engine COMMAND [OPTIONS]\n"
	    "       llmd-engine --help | --version\n\n"
	    "llmd's inference engine: Hugging Face models (Llama, Mistral, Qwen2, Qwen3)\n"
	    "on the CPU or CUDA backend.\n\nCommands:\n");
	for (const struct engine_cmd *c = engine_cmds; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'llmd-engine COMMAND --help' for a command's options.\n"
	    "Environment: LLMD_LOG_LEVEL=error|warn|info|debug\n");
}

int
main(int argc, char **argv)
{
	log_init("llmd-engine", LOG_LVL_INFO);
	if (argc < 2)
		cli_usage_error("llmd-engine", "a command is required");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		cli_print_version("llmd-engine");
		return 0;
	}
	for (const struct engine_cmd *c = engine_cmds; c->name; c++)
		if (strcmp(argv[1], c->name) == 0)
			return c->run(argc - 1, argv + 1);
	cli_usage_error("llmd-engine", "unknown command '%s'", argv[1]);
}
