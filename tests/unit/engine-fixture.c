/*
 * tests/unit/engine-fixture.c - see engine-fixture.h.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/commands.h"
#include "tests/unit/engine-fixture.h"

int
fx_tmpdir(char *dir, size_t len, const char *prefix)
{
	if ((size_t)snprintf(dir, len, "/tmp/%s.XXXXXX", prefix) >= len)
		return -ENAMETOOLONG;
	return mkdtemp(dir) ? 0 : -errno;
}

int
fx_write_tokenizer(const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/tok.json", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -errno;
	fputs("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1}},\"added_tokens\":"
	    "[{\"id\":2,\"content\":\"</s>\",\"special\":true}]}", f);
	return fclose(f) == 0 ? 0 : -errno;
}

int
fx_make_model(const char *fmt, ...)
{
	char cmd[2048], *argv[64], *save = NULL;
	int argc = 0, n;
	va_list ap;

	n = snprintf(cmd, sizeof(cmd), "make-model ");
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	for (char *p = strtok_r(cmd, " ", &save); p && argc < 63; p = strtok_r(NULL, " ", &save))
		argv[argc++] = p;
	argv[argc] = NULL;
	optind = 1;   /* make-model parses with getopt */
	return cmd_make_model(argc, argv);
}

int
fx_remove_tree(const char *dir)
{
	char cmd[4200];

	if (strchr(dir, '\'') != NULL)
		return -EINVAL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -EIO;
}
