/*
 * engine/commands.h - the llmd-engine subcommands. main.c dispatches
 * "llmd-engine NAME args..." to cmd_NAME(argc, argv) with argv[0] = NAME.
 * Each returns the process exit status (0 ok, 1 failure, 2 usage).
 */
#ifndef LLMD_ENGINE_COMMANDS_H
#define LLMD_ENGINE_COMMANDS_H

struct engine_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
