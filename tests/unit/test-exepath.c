/*
 * tests/unit/test-exepath.c - sibling program lookup order.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/exepath.h"

Test(exepath, self_dir_is_absolute)
{
	char dir[PATH_MAX];

	cr_assert_eq(exepath_self_dir(dir, sizeof(dir)), 0);
	cr_assert_eq(dir[0], '/');
	cr_assert(strstr(dir, "/.libs") == NULL);
}

Test(exepath, bindir_then_path)
{
	char tmpl[] = "/tmp/llmd-exepath-XXXXXX";
	char *d = mkdtemp(tmpl);
	char p[PATH_MAX], out[PATH_MAX];

	cr_assert_not_null(d);
	snprintf(p, sizeof(p), "%s/llmd-fake-prog", d);
	FILE *f = fopen(p, "w");
	fputs("#!/bin/sh\n", f);
	fclose(f);
	chmod(p, 0755);

	unsetenv("LLMD_BINDIR");
	setenv("PATH", "/nonexistent", 1);
	cr_assert_eq(exepath_find_sibling("llmd-fake-prog", out, sizeof(out)), -ENOENT);
	setenv("PATH", d, 1);
	cr_assert_eq(exepath_find_sibling("llmd-fake-prog", out, sizeof(out)), 0);
	cr_assert_str_eq(out, p);
	setenv("PATH", "/nonexistent", 1);
	setenv("LLMD_BINDIR", d, 1);
	cr_assert_eq(exepath_find_sibling("llmd-fake-prog", out, sizeof(out)), 0);
	cr_assert_str_eq(out, p);
	unlink(p);
	rmdir(d);
}
