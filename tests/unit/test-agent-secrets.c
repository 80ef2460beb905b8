/*
 * tests/unit/test-agent-secrets.c - the agent's view of a pod's Secret
 * references (agent/secrets.c): which pods have any, one container's
 * values as environment entries, and wiping.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/json.h"

static cJSON *
parse(const char *s)
{
	cJSON *o = NULL;

	cr_assert_eq(json_parse(s, strlen(s), &o, NULL), 0, "%s", s);
	return o;
}

Test(agent_secrets, referenced)
{
	cJSON *plain = parse("{\"spec\":{\"containers\":[{\"name\":\"main\",\"env\":"
	    "[{\"name\":\"A\",\"value\":\"1\"}]}]}}");
	cJSON *key = parse("{\"spec\":{\"containers\":[{\"name\":\"main\",\"env\":"
	    "[{\"name\":\"T\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}}]}]}}");
	cJSON *from = parse("{\"spec\":{\"initContainers\":[{\"name\":\"storage-initializer\","
	    "\"envFrom\":[{\"secretRef\":{\"name\":\"s\"}}]}],\"containers\":[{\"name\":\"main\"}]}}");
	cJSON *cm = parse("{\"spec\":{\"containers\":[{\"name\":\"main\",\"envFrom\":"
	    "[{\"configMapRef\":{\"name\":\"c\"}}]}]}}");

	cr_assert_eq(secrets_referenced(plain), 0);
	cr_assert_eq(secrets_referenced(key), 1);
	cr_assert_eq(secrets_referenced(from), 1);   /* init containers count */
	cr_assert_eq(secrets_referenced(cm), 0);
	cr_assert_eq(secrets_referenced(NULL), 0);
	cJSON_Delete(plain);
	cJSON_Delete(key);
	cJSON_Delete(from);
	cJSON_Delete(cm);
}

Test(agent_secrets, env_of_one_container)
{
	cJSON *cs = parse("{\"main\":{\"HF_TOKEN\":\"hf_x\",\"CRED_user\":\"me=you\","
	    "\"BAD=NAME\":\"v\",\"\":\"v\",\"NUM\":3},\"storage-initializer\":{\"AWS_KEY\":\"k\"}}");
	char **v = secrets_env(cs, "main");

	cr_assert_str_eq(v[0], "HF_TOKEN=hf_x");
	cr_assert_str_eq(v[1], "CRED_user=me=you");
	cr_assert_null(v[2]);   /* no '=' in names, no empty names, strings only */
	secrets_strv_free(v);
	v = secrets_env(cs, "storage-initializer");
	cr_assert_str_eq(v[0], "AWS_KEY=k");
	cr_assert_null(v[1]);
	secrets_strv_free(v);
	v = secrets_env(cs, "sidecar");
	cr_assert_null(v[0]);
	secrets_strv_free(v);
	v = secrets_env(NULL, "main");
	cr_assert_null(v[0]);
	secrets_strv_free(v);
	secrets_free(cs);
	secrets_free(NULL);
	secrets_strv_free(NULL);
}
