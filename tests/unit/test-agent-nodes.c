/*
 * tests/unit/test-agent-nodes.c - daemon/nodes.c: join tokens (reusable,
 * expiring, unknown/forged ones refused), node credentials, and the monitor:
 * Ready=Unknown after the grace period, pods evicted after the eviction
 * timeout, Ready again on a heartbeat; nodes without an agent are left alone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/nodes.h"
#include "daemon/store.h"
#include "lib/json.h"
#include "lib/util.h"

/* nodes.c pumps the watch hub after writes; no hub in these tests. */
void watch_hub_pump(struct watch_hub *h);
void
watch_hub_pump(struct watch_hub *h)
{
	(void)h;
}

static char dir[64];
static struct store *st;

static void
setup(void)
{
	struct store_opts o = { 1, 1000, 1000 };
	struct nodes_opts no = { 1000, 5000, 1000 };

	strcpy(dir, "/tmp/llmd-test-nodes-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(store_open(&st, dir, &o, NULL), 0);
	nodes_start(NULL, st, NULL, &no);
}

static void
teardown(void)
{
	char cmd[128];

	nodes_stop();
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(nodes, .init = setup, .fini = teardown);

static void
put(const char *resource, const char *json)
{
	cJSON *o = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(json_parse(json, strlen(json), &o, NULL), 0);
	cr_assert_eq(store_create(st, resource, o, NULL, &e), 0, "%s", e.msg);
	cJSON_Delete(o);
}

static const char *
ready_status(const char *node, char *buf)
{
	cJSON *o = NULL, *c;

	buf[0] = '\0';
	cr_assert_eq(store_get(st, "nodes", "", node, &o, NULL), 0);
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), "conditions"))
		if (strcmp(cJSON_GetObjectItem(c, "type")->valuestring, "Ready") == 0)
			strcpy(buf, cJSON_GetObjectItem(c, "status")->valuestring);
	cJSON_Delete(o);
	return buf;
}

Test(nodes, join_tokens)
{
	char *tok = NULL, *other = NULL, forged[64];
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(nodes_token_create(st, 0, &tok, &e), 0, "%s", e.msg);
	cr_assert_eq(strlen(tok), 12 + 1 + 32);
	/* Reusable by several nodes until it expires. */
	cr_assert_eq(nodes_token_check(st, tok, &e), 0, "%s", e.msg);
	cr_assert_eq(nodes_token_check(st, tok, &e), 0, "%s", e.msg);
	snprintf(forged, sizeof(forged), "%s", tok);
	forged[20] = forged[20] == 'a' ? 'b' : 'a';
	cr_assert_eq(nodes_token_check(st, forged, &e), -EACCES);
	cr_assert_eq(nodes_token_check(st, "abc.def", &e), -EACCES);
	cr_assert_eq(nodes_token_check(st, NULL, &e), -EACCES);
	cr_assert_eq(nodes_token_create(st, 1, &other, &e), 0);
	usleep(5000);
	cr_assert_eq(nodes_token_check(st, other, &e), -EACCES);
	cr_assert(strstr(e.msg, "expired"), "%s", e.msg);
	free(tok);
	free(other);
}

Test(nodes, credentials)
{
	char *c1 = NULL, *c2 = NULL, *n;

	cr_assert_eq(nodes_credential_issue(st, "gpu-1", &c1, NULL), 0);
	n = nodes_credential_node(st, c1);
	cr_assert_str_eq(n, "gpu-1");
	free(n);
	/* Re-registration replaces the credential. */
	cr_assert_eq(nodes_credential_issue(st, "gpu-1", &c2, NULL), 0);
	cr_assert_null(nodes_credential_node(st, c1));
	n = nodes_credential_node(st, c2);
	cr_assert_str_eq(n, "gpu-1");
	free(n);
	cr_assert_null(nodes_credential_node(st, "llmdnode.gpu-1.00"));
	cr_assert_null(nodes_credential_node(st, "garbage"));
	free(c1);
	free(c2);
}

Test(nodes, monitor_not_ready_then_evicts)
{
	char b[16];
	cJSON *pods = NULL;
	uint64_t t0 = now_ms();

	put("nodes", "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"a\","
	    "\"annotations\":{\"llmd.io/agent-url\":\"http://10.0.0.1:1\"}},\"spec\":{}}");
	put("nodes", "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"manual\"},"
	    "\"spec\":{}}");
	put("pods", "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\","
	    "\"namespace\":\"default\"},\"spec\":{\"nodeName\":\"a\"}}");
	put("pods", "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p2\","
	    "\"namespace\":\"default\"},\"spec\":{\"nodeName\":\"manual\"}}");
	nodes_heartbeat(st, "a");
	cr_assert_str_eq(ready_status("a", b), "True");
	nodes_monitor_pass(st, t0 + 500);
	cr_assert_str_eq(ready_status("a", b), "True");
	nodes_monitor_pass(st, t0 + 2000);
	cr_assert_str_eq(ready_status("a", b), "Unknown");
	cr_assert_str_eq(ready_status("manual", b), "");
	cr_assert_eq(store_list(st, "pods", NULL, &pods, NULL, NULL), 0);
	cr_assert_eq(cJSON_GetArraySize(pods), 2);
	cJSON_Delete(pods);
	nodes_monitor_pass(st, t0 + 6000);
	cr_assert_eq(store_list(st, "pods", NULL, &pods, NULL, NULL), 0);
	cr_assert_eq(cJSON_GetArraySize(pods), 1, "only the agent node's pod is evicted");
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(pods->child, "metadata"),
	    "name")->valuestring, "p2");
	cJSON_Delete(pods);
	nodes_heartbeat(st, "a");
	cr_assert_str_eq(ready_status("a", b), "True");
}
