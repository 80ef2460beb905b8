/*
 * lib/err.c - the error record carried back by fallible functions (see err.h).
 */
#include "config.h"
#include "lib/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
err_set(struct llmd_err *e, int code, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return code;
	e->code = code;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

void
err_prefix_field(struct llmd_err *e, const char *prefix)
{
	char tmp[sizeof(e->field)];

	if (e == NULL || prefix == NULL || *prefix == '\0')
		return;
	if (e->field[0] == '\0')
		snprintf(tmp, sizeof(tmp), "%s", prefix);
	else if (e->field[0] == '[')
		snprintf(tmp, sizeof(tmp), "%s%s", prefix, e->field);
	else
		snprintf(tmp, sizeof(tmp), "%s.%s", prefix, e->field);
	memcpy(e->field, tmp, sizeof(tmp));
}

void
err_clear(struct llmd_err *e)
{
	if (e == NULL)
		return;
	e->code = 0;
	e->field[0] = '\0';
	e->msg[0] = '\0';
}

const char *
err_str(const struct llmd_err *e, char *out, size_t outlen)
{
	if (e->field[0] != '\0')
		snprintf(out, outlen, "%s: %s", e->field, e->msg);
	else
		snprintf(out, outlen, "%s", e->msg);
	return out;
}
