/*
 * tests/unit/test-err.c - error records and field-path prefixes.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "lib/err.h"

Test(err, set_returns_code_and_fills)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char s[800];

	cr_assert_eq(err_set(&e, -EINVAL, "replicas", "must be >= %d", 0), -EINVAL);
	cr_assert_eq(e.code, -EINVAL);
	cr_assert_str_eq(e.field, "replicas");
	cr_assert_str_eq(err_str(&e, s, sizeof(s)), "replicas: must be >= 0");
	cr_assert_eq(err_set(NULL, -ENOENT, NULL, "x"), -ENOENT);
}

Test(err, prefix_field_paths)
{
	struct llmd_err e = LLMD_ERR_INIT;

	err_set(&e, -EINVAL, "uri", "bad scheme");
	err_prefix_field(&e, "model");
	err_prefix_field(&e, "spec");
	cr_assert_str_eq(e.field, "spec.model.uri");
	err_set(&e, -EINVAL, "[2].name", "missing");
	err_prefix_field(&e, "containers");
	cr_assert_str_eq(e.field, "containers[2].name");
	err_set(&e, -EINVAL, "", "empty");
	err_prefix_field(&e, "spec");
	cr_assert_str_eq(e.field, "spec");
	err_clear(&e);
	cr_assert_eq(e.code, 0);
	cr_assert_str_eq(err_str(&e, (char[8]){0}, 8), "");
}
