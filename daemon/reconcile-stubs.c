/*
 * daemon/reconcile-stubs.c - temporary stubs of daemon/reconcile.h so callers
 * link while the logic modules land; each returns -ENOSYS.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "daemon/reconcile.h"
#include "lib/util.h"

int
llmisvc_validate(const cJSON *obj, const cJSON *old, struct llmd_err *e)
{
	return 0;
}

int
llmisvcconfig_validate(const cJSON *obj, struct llmd_err *e)
{
	return 0;
}

int
llmisvc_combine(const cJSON *svc, const struct reconcile_env *env, cJSON **out,
    struct llmd_err *e)
{
	*out = NULL;
	return err_set(e, -ENOSYS, "", "not implemented");
}

int
llmisvc_derive(const cJSON *merged, const struct reconcile_env *env, cJSON **children,
    struct llmd_err *e)
{
	*children = NULL;
	return err_set(e, -ENOSYS, "", "not implemented");
}

char *
llmd_child_name(const char *parent, const char *suffix)
{
	size_t n = strlen(parent), m = strlen(suffix);
	char *s = xmalloc(n + m + 1);

	memcpy(s, parent, n);
	memcpy(s + n, suffix, m + 1);
	return s;
}

int
placement_schedule(cJSON *pods, const cJSON *nodes, const cJSON *bound,
    struct placement_result *res)
{
	memset(res, 0, sizeof(*res));
	return -ENOSYS;
}

void
placement_result_release(struct placement_result *res)
{
	cJSON_Delete(res->failures);
	res->failures = NULL;
}

int
llmisvc_status(const cJSON *svc, const cJSON *merged, const struct llmd_err *combine_err,
    const cJSON *observed, const struct reconcile_env *env, const char *now,
    cJSON **status)
{
	*status = NULL;
	return -ENOSYS;
}
