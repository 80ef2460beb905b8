/*
 * tests/unit/test-log.c - log level parsing and LLMD_LOG_LEVEL handling.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>

#include "lib/log.h"

Test(log, level_parse)
{
	cr_assert_eq(log_level_parse("error"), LOG_LVL_ERROR);
	cr_assert_eq(log_level_parse("WARN"), LOG_LVL_WARN);
	cr_assert_eq(log_level_parse("warning"), LOG_LVL_WARN);
	cr_assert_eq(log_level_parse("debug"), LOG_LVL_DEBUG);
	cr_assert_eq(log_level_parse("2"), LOG_LVL_INFO);
	cr_assert_eq(log_level_parse("loud"), -1);
	cr_assert_eq(log_level_parse(""), -1);
	cr_assert_eq(log_level_parse(NULL), -1);
}

Test(log, env_overrides_default)
{
	setenv("LLMD_LOG_LEVEL", "debug", 1);
	log_init("/usr/bin/llmd-test", LOG_LVL_WARN);
	cr_assert_eq(log_get_level(), LOG_LVL_DEBUG);
	cr_assert_str_eq(log_progname(), "llmd-test");
	unsetenv("LLMD_LOG_LEVEL");
	log_init("x", LOG_LVL_WARN);
	cr_assert_eq(log_get_level(), LOG_LVL_WARN);
}

Test(log, line_format, .init = cr_redirect_stderr)
{
	log_init("fmt-test", LOG_LVL_INFO);
	log_info("hello %d", 42);
	log_debug("hidden");
	fflush(stderr);
	/* "YYYY-MM-DDTHH:MM:SS.mmmZ fmt-test[pid] info: hello 42\n" */
	FILE *f = cr_get_redirected_stderr();
	char line[256] = "";
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_assert(strstr(line, " fmt-test[") != NULL, "line: %s", line);
	cr_assert(strstr(line, "] info: hello 42\n") != NULL, "line: %s", line);
	cr_assert_eq(line[4], '-');
	cr_assert_eq(line[23], 'Z');
	cr_assert_null(fgets(line, sizeof(line), f), "debug line leaked: %s", line);
}
