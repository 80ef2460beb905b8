/*
 * lib/err.h - error conventions.
 *
 * Functions return 0 on success or a negative errno-style code (-EINVAL,
 * -ENOMEM, ...). When the caller wants to know why, it passes a struct
 * llmd_err that the callee fills with a message and, where input was at
 * fault, the path of the offending field ("spec.model.uri", "$.messages[2]")
 * or a "file:line:column" location. err_set() returns the code so a failure is
 * one line:  return err_set(e, -EINVAL, "spec.replicas", "must be >= 0");
 */
#ifndef LLMD_ERR_H
#define LLMD_ERR_H

#include <stddef.h>

#include "lib/log.h"

struct llmd_err {
	int code;          /* negative errno, 0 when unset */
	char field[256];   /* field path or file:line:col; may be empty */
	char msg[512];     /* human readable, without the field */
};

#define LLMD_ERR_INIT { 0, "", "" }

/* Fills e (may be NULL) and returns code. */
int err_set(struct llmd_err *e, int code, const char *field, const char *fmt, ...)
    LLMD_PRINTF(4, 5);
/* Prepends "prefix." (or "prefix" when the field starts with '[') to e->field. */
void err_prefix_field(struct llmd_err *e, const char *prefix);
void err_clear(struct llmd_err *e);
/* "field: msg" or "msg" into out; returns out. */
const char *err_str(const struct llmd_err *e, char *out, size_t outlen);

#endif
