/*
 * daemon/api-body.c - request bodies: JSON (strict: UTF-8, depth, trailing
 * data) or YAML (one document), chosen by Content-Type or by sniffing.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "daemon/api.h"
#include "lib/json.h"
#include "lib/yaml.h"

static int
looks_like_json(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')
			continue;
		return p[i] == '{' || p[i] == '[';
	}
	return 1;
}

int
api_body_parse(const char *p, size_t n, const char *content_type, cJSON **out,
    struct llmd_err *e)
{
	int yaml = 0;

	*out = NULL;
	if (n == 0)
		return err_set(e, -EINVAL, "", "request body is empty");
	if (content_type != NULL && (strcasestr(content_type, "yaml") != NULL))
		yaml = 1;
	else if (content_type == NULL || strcasestr(content_type, "json") == NULL)
		yaml = !looks_like_json(p, n);
	if (!json_utf8_valid(p, n))
		return err_set(e, -EINVAL, "", "request body is not valid UTF-8");
	if (yaml)
		return yaml_parse_one(p, n, "request body", out, e);
	return json_parse_named(p, n, "request body", out, e);
}
