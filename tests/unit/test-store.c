/*
 * tests/unit/test-store.c - daemon/store.c: CRUD, resourceVersion and
 * generation rules, conflicts, status subresource, event log and its
 * compaction, cascading deletes, schema migrations and reopening; group
 * commit (batches), reads beside an open batch, lookups by owner.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon/store.h"

static char dir[64];

static void
mkdir_tmp(void)
{
	strcpy(dir, "/tmp/llmd-test-store-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(store, .init = mkdir_tmp, .fini = rm_tmp);

static struct store *
open_store(int64_t keep)
{
	struct store_opts o = { 0, 1000, keep };
	struct llmd_err e = LLMD_ERR_INIT;
	struct store *s = NULL;

	cr_assert_eq(store_open(&s, dir, &o, &e), 0, "%s", e.msg);
	return s;
}

static cJSON *
obj(const char *ns, const char *name, int replicas)
{
	char txt[512];

	snprintf(txt, sizeof(txt), "{\"apiVersion\":\"serving.kserve.io/v1alpha1\","
	    "\"kind\":\"LLMInferenceService\",\"metadata\":{\"name\":\"%s\","
	    "\"namespace\":\"%s\",\"labels\":{\"a\":\"b\"}},\"spec\":{\"replicas\":%d}}",
	    name, ns, replicas);
	return cJSON_Parse(txt);
}

static const char *
md_str(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), k)->valuestring;
}

static int
md_num(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), k)->valueint;
}

Test(store, create_get_list_delete)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *in = obj("ns1", "a", 1), *out = NULL, *got = NULL, *items = NULL;
	int64_t rv;

	cr_assert_eq(store_schema_version(s), 2);
	cr_assert_eq(store_create(s, "llminferenceservices", in, &out, &e), 0, "%s", e.msg);
	cr_assert_str_eq(md_str(out, "resourceVersion"), "1");
	cr_assert_eq(md_num(out, "generation"), 1);
	cr_assert_eq(strlen(md_str(out, "uid")), 36);
	cr_assert_not_null(md_str(out, "creationTimestamp"));
	cr_assert_eq(store_create(s, "llminferenceservices", in, NULL, &e), -EEXIST);
	cr_assert_eq(store_get(s, "llminferenceservices", "ns1", "a", &got, &e), 0);
	cr_assert_str_eq(md_str(got, "uid"), md_str(out, "uid"));
	cr_assert_eq(store_get(s, "llminferenceservices", "ns2", "a", &got, &e), -ENOENT);
	cJSON_Delete(got);

	cJSON_Delete(in);
	in = obj("ns2", "b", 1);
	cr_assert_eq(store_create(s, "llminferenceservices", in, NULL, &e), 0);
	cr_assert_eq(store_list(s, "llminferenceservices", NULL, &items, &rv, &e), 0);
	cr_assert_eq(cJSON_GetArraySize(items), 2);
	cr_assert_eq(rv, 2);
	cJSON_Delete(items);
	cr_assert_eq(store_list(s, "llminferenceservices", "ns2", &items, NULL, &e), 0);
	cr_assert_eq(cJSON_GetArraySize(items), 1);
	cJSON_Delete(items);
	cr_assert_eq(store_namespaces(s, &items, &e), 0);
	cr_assert_eq(cJSON_GetArraySize(items), 2);
	cJSON_Delete(items);

	cJSON_Delete(out);
	cr_assert_eq(store_delete(s, "llminferenceservices", "ns1", "a", 0, &out, &e), 0);
	cr_assert_not_null(md_str(out, "deletionTimestamp"));
	cr_assert_eq(store_delete(s, "llminferenceservices", "ns1", "a", 0, NULL, &e), -ENOENT);
	cr_assert_eq(store_current_rv(s), 3);
	cJSON_Delete(out);
	cJSON_Delete(in);
	store_close(s);
}

Test(store, generation_and_conflicts)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *in = obj("ns", "a", 1), *out = NULL, *upd;
	int changed;

	cr_assert_eq(store_create(s, "llminferenceservices", in, &out, &e), 0);
	/* Label change: new resourceVersion, same generation. */
	upd = cJSON_Duplicate(out, 1);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(upd, "metadata"), "labels",
	    cJSON_Parse("{\"x\":\"y\"}"));
	cJSON_Delete(out);
	cr_assert_eq(store_update(s, "llminferenceservices", upd, 0, &out, &changed, &e), 0);
	cr_assert_eq(changed, 1);
	cr_assert_str_eq(md_str(out, "resourceVersion"), "2");
	cr_assert_eq(md_num(out, "generation"), 1);
	/* Stale resourceVersion: conflict. */
	cr_assert_eq(store_update(s, "llminferenceservices", upd, 0, NULL, NULL, &e), -ESTALE);
	cJSON_Delete(upd);
	/* Spec change: generation bumps. */
	upd = cJSON_Duplicate(out, 1);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(upd, "spec"), "replicas",
	    cJSON_CreateNumber(3));
	cJSON_Delete(out);
	cr_assert_eq(store_update(s, "llminferenceservices", upd, 0, &out, &changed, &e), 0);
	cr_assert_eq(md_num(out, "generation"), 2);
	cr_assert_str_eq(md_str(out, "resourceVersion"), "3");
	/* Same content again: unchanged, no new resourceVersion. */
	cJSON_Delete(upd);
	upd = cJSON_Duplicate(out, 1);
	cJSON_Delete(out);
	cr_assert_eq(store_update(s, "llminferenceservices", upd, 0, &out, &changed, &e), 0);
	cr_assert_eq(changed, 0);
	cr_assert_eq(store_current_rv(s), 3);
	/* Status write: generation stays, status kept across spec writes. */
	cJSON_AddItemToObject(upd, "status", cJSON_Parse("{\"observedGeneration\":2}"));
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(upd, "metadata"), "resourceVersion");
	cJSON_Delete(out);
	cr_assert_eq(store_update(s, "llminferenceservices", upd, STORE_STATUS, &out,
	    &changed, &e), 0);
	cr_assert_eq(changed, 1);
	cr_assert_eq(md_num(out, "generation"), 2);
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "status"),
	    "observedGeneration")->valueint, 2);
	cJSON_DeleteItemFromObject(upd, "status");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(upd, "spec"), "replicas",
	    cJSON_CreateNumber(4));
	cJSON_Delete(out);
	cr_assert_eq(store_update(s, "llminferenceservices", upd, 0, &out, &changed, &e), 0);
	cr_assert_not_null(cJSON_GetObjectItem(out, "status"));
	cr_assert_eq(md_num(out, "generation"), 3);
	cJSON_Delete(upd);
	cJSON_Delete(out);
	cJSON_Delete(in);
	cr_assert_eq(store_delete(s, "llminferenceservices", "ns", "a", 1, NULL, &e), -ESTALE);
	store_close(s);
}

struct evs {
	int n;
	char types[64];
	int64_t last;
};

static int
collect(const struct store_event *ev, void *arg)
{
	struct evs *v = arg;

	v->types[v->n++] = store_event_type_name(ev->type)[0];
	v->last = ev->rv;
	return 0;
}

Test(store, events_and_compaction)
{
	struct store *s = open_store(4);
	struct llmd_err e = LLMD_ERR_INIT;
	struct evs v = { 0 };
	cJSON *in = obj("ns", "a", 1), *out = NULL;
	char name[8];

	cr_assert_eq(store_create(s, "llminferenceservices", in, &out, &e), 0);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(out, "spec"), "replicas",
	    cJSON_CreateNumber(2));
	cr_assert_eq(store_update(s, "llminferenceservices", out, 0, NULL, NULL, &e), 0);
	cr_assert_eq(store_delete(s, "llminferenceservices", "ns", "a", 0, NULL, &e), 0);
	cr_assert_eq(store_events_since(s, 0, NULL, NULL, collect, &v, &e), 0);
	cr_assert_eq(v.n, 3);
	cr_assert_eq(memcmp(v.types, "AMD", 3), 0);
	memset(&v, 0, sizeof(v));
	cr_assert_eq(store_events_since(s, 1, "llminferenceservices", "ns", collect, &v, &e), 0);
	cr_assert_eq(v.n, 2);
	memset(&v, 0, sizeof(v));
	cr_assert_eq(store_events_since(s, 0, "nodes", NULL, collect, &v, &e), 0);
	cr_assert_eq(v.n, 0);
	/* Push past the retention of 4 events: old resourceVersions are gone. */
	for (int i = 0; i < 6; i++) {
		cJSON *o = obj("ns", "x", 1);

		snprintf(name, sizeof(name), "n%d", i);
		cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o, "metadata"), "name",
		    cJSON_CreateString(name));
		cr_assert_eq(store_create(s, "llminferenceservices", o, NULL, &e), 0);
		cJSON_Delete(o);
	}
	cr_assert_eq(store_events_since(s, 1, NULL, NULL, collect, &v, &e), -ERANGE);
	memset(&v, 0, sizeof(v));
	cr_assert_eq(store_events_since(s, store_current_rv(s) - 2, NULL, NULL,
	    collect, &v, &e), 0);
	cr_assert_eq(v.n, 2);
	cr_assert_eq(v.last, 9);
	cJSON_Delete(in);
	cJSON_Delete(out);
	store_close(s);
}

Test(store, cascade_delete_by_owner)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *in = obj("ns", "a", 1), *owner = NULL, *child, *items;
	char txt[512];

	cr_assert_eq(store_create(s, "llminferenceservices", in, &owner, &e), 0);
	snprintf(txt, sizeof(txt), "{\"kind\":\"Deployment\",\"metadata\":{\"name\":"
	    "\"a-kserve\",\"namespace\":\"ns\",\"ownerReferences\":[{\"kind\":"
	    "\"LLMInferenceService\",\"name\":\"a\",\"uid\":\"%s\"}]}}",
	    md_str(owner, "uid"));
	child = cJSON_Parse(txt);
	cr_assert_eq(store_create(s, "deployments", child, NULL, &e), 0);
	cr_assert_eq(store_delete(s, "llminferenceservices", "ns", "a", 0, NULL, &e), 0);
	cr_assert_eq(store_list(s, "deployments", NULL, &items, NULL, &e), 0);
	cr_assert_eq(cJSON_GetArraySize(items), 0);
	cJSON_Delete(items);
	cJSON_Delete(child);
	cJSON_Delete(owner);
	cJSON_Delete(in);
	store_close(s);
}

Test(store, reopen_keeps_objects_and_counter)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *in = obj("ns", "a", 1), *got = NULL;

	cr_assert_eq(store_create(s, "llminferenceservices", in, NULL, &e), 0);
	cr_assert_eq(store_create(s, "nodes", cJSON_GetObjectItem(in, "kind") ? in : in,
	    NULL, &e), 0);
	store_close(s);
	s = open_store(0);
	cr_assert_eq(store_current_rv(s), 2);
	cr_assert_eq(store_get(s, "llminferenceservices", "ns", "a", &got, &e), 0);
	cr_assert_str_eq(md_str(got, "resourceVersion"), "1");
	cJSON_Delete(got);
	cJSON_Delete(in);
	store_close(s);
}

Test(store, migrates_from_v1_and_refuses_newer)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct store *s = NULL;
	sqlite3 *db;
	char path[128];

	/* A version-1 database (as the first release wrote it). */
	snprintf(path, sizeof(path), "%s/llmd.db", dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
	    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	    "INSERT INTO meta VALUES ('rv', 7), ('compacted', 0);"
	    "CREATE TABLE objects (resource TEXT NOT NULL, ns TEXT NOT NULL,"
	    " name TEXT NOT NULL, uid TEXT NOT NULL, rv INTEGER NOT NULL,"
	    " body TEXT NOT NULL, status TEXT, owner_uid TEXT,"
	    " PRIMARY KEY (resource, ns, name));"
	    "CREATE TABLE events (rv INTEGER PRIMARY KEY, type INTEGER NOT NULL,"
	    " resource TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
	    " object TEXT NOT NULL);"
	    "PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_store(0);
	cr_assert_eq(store_schema_version(s), 2);
	cr_assert_eq(store_current_rv(s), 7);
	store_close(s);

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(store_open(&s, dir, NULL, &e), -EPROTO);
	cr_assert(strstr(e.msg, "newer") != NULL);
}

Test(store, generate_name)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *in = cJSON_Parse("{\"kind\":\"Event\",\"metadata\":{\"generateName\":"
	    "\"ev-\",\"namespace\":\"ns\"}}"), *out = NULL;

	cr_assert_eq(store_create(s, "events", in, &out, &e), 0, "%s", e.msg);
	cr_assert_eq(strncmp(md_str(out, "name"), "ev-", 3), 0);
	cr_assert_eq(strlen(md_str(out, "name")), 8);
	cJSON_Delete(out);
	cJSON_Delete(in);
	cJSON_Delete(in = cJSON_Parse("{\"metadata\":{}}"));
	in = cJSON_Parse("{\"metadata\":{}}");
	cr_assert_eq(store_create(s, "events", in, NULL, &e), -EINVAL);
	cJSON_Delete(in);
	store_close(s);
}

Test(store, refuses_network_filesystems)
{
	cr_assert_str_eq(store_network_fs_name(0x6969), "NFS");
	cr_assert_str_eq(store_network_fs_name(0xFF534D42), "CIFS");
	cr_assert_str_eq(store_network_fs_name(0x65735546), "FUSE");
	cr_assert_null(store_network_fs_name(0xEF53));      /* ext4 */
	cr_assert_null(store_network_fs_name(0x58465342));  /* xfs */
	cr_assert_null(store_network_fs_name(0x01021994));  /* tmpfs */
}

/* ---- group commit ---- */

struct reader {
	struct store *s;
	int rc;
	int64_t list_rv;
	int n;
};

/* Reads from another thread: sees only committed writes, and does not wait. */
static void *
read_other_thread(void *arg)
{
	struct reader *r = arg;
	cJSON *o = NULL, *items = NULL;

	r->rc = store_get(r->s, "llminferenceservices", "ns", "a", &o, NULL);
	cJSON_Delete(o);
	if (store_list(r->s, "llminferenceservices", NULL, &items, &r->list_rv, NULL) == 0)
		r->n = cJSON_GetArraySize(items);
	cJSON_Delete(items);
	return NULL;
}

Test(store, batch_keeps_each_writes_error_separate)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT, e2 = LLMD_ERR_INIT;
	cJSON *a = obj("ns", "a", 1), *b = obj("ns", "b", 1), *c = obj("ns", "c", 1);
	cJSON *bout = NULL, *got = NULL, *items = NULL;
	struct evs v = { 0 };
	int64_t rv0;

	cr_assert_eq(store_create(s, "llminferenceservices", b, &bout, &e), 0);
	rv0 = store_current_rv(s);
	cr_assert_eq(store_batch_begin(s, &e), 0, "%s", e.msg);
	cr_assert_eq(store_batch_begin(s, &e2), -EALREADY);
	cr_assert_eq(store_create(s, "llminferenceservices", a, NULL, &e), 0);
	/* The conflicts fail alone, with their own errors. */
	cr_assert_eq(store_create(s, "llminferenceservices", a, NULL, &e2), -EEXIST);
	cr_assert_str_eq(e2.field, "metadata.name");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(bout, "metadata"), "resourceVersion",
	    cJSON_CreateString("999"));
	cr_assert_eq(store_update(s, "llminferenceservices", bout, 0, NULL, NULL, &e2),
	    -ESTALE);
	cr_assert_eq(store_delete(s, "llminferenceservices", "ns", "nope", 0, NULL, &e2),
	    -ENOENT);
	cr_assert_eq(store_create(s, "llminferenceservices", c, NULL, &e), 0);
	/* Inside the batch its writes are visible to its own thread. */
	cr_assert_eq(store_get(s, "llminferenceservices", "ns", "a", &got, &e), 0);
	cr_assert_str_eq(md_str(got, "resourceVersion"), "2");
	cJSON_Delete(got);
	cr_assert_eq(store_batch_end(s, &e), 0, "%s", e.msg);
	cr_assert_eq(store_batch_end(s, &e2), -EINVAL);

	/* Two writes stored, with consecutive versions and two events. */
	cr_assert_eq(store_current_rv(s), rv0 + 2);
	cr_assert_eq(store_list(s, "llminferenceservices", "ns", &items, NULL, &e), 0);
	cr_assert_eq(cJSON_GetArraySize(items), 3);
	cJSON_Delete(items);
	cr_assert_eq(store_events_since(s, rv0, NULL, NULL, collect, &v, &e), 0);
	cr_assert_eq(v.n, 2);
	cr_assert_eq(memcmp(v.types, "AA", 2), 0);
	cr_assert_eq(v.last, rv0 + 2);
	/* b kept its version. */
	cr_assert_eq(store_get(s, "llminferenceservices", "ns", "b", &got, &e), 0);
	cr_assert_str_eq(md_str(got, "resourceVersion"), "1");
	cJSON_Delete(got);

	/* Committed means durable: a reopened store has them. */
	store_close(s);
	s = open_store(0);
	cr_assert_eq(store_current_rv(s), rv0 + 2);
	cr_assert_eq(store_get(s, "llminferenceservices", "ns", "c", &got, &e), 0);
	cJSON_Delete(got);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(c);
	cJSON_Delete(bout);
	store_close(s);
}

Test(store, batch_is_invisible_to_other_threads_until_committed)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *a = obj("ns", "a", 1);
	struct reader r = { s, 0, 0, 0 };
	pthread_t t;

	cr_assert_eq(store_batch_begin(s, &e), 0, "%s", e.msg);
	cr_assert_eq(store_create(s, "llminferenceservices", a, NULL, &e), 0);
	cr_assert_eq(store_current_rv(s), 1);
	/* The reader runs while the batch holds the writer: it must not block. */
	cr_assert_eq(pthread_create(&t, NULL, read_other_thread, &r), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(r.rc, -ENOENT);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(r.list_rv, 0, "a list's version is its snapshot's");
	cr_assert_eq(store_batch_end(s, &e), 0, "%s", e.msg);
	cr_assert_eq(pthread_create(&t, NULL, read_other_thread, &r), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(r.rc, 0);
	cr_assert_eq(r.n, 1);
	cr_assert_eq(r.list_rv, 1);
	cJSON_Delete(a);
	store_close(s);
}

Test(store, batch_write_failure_leaves_no_trace)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *a = obj("ns", "a", 1), *bad = cJSON_Parse("{\"metadata\":{}}");
	struct evs v = { 0 };

	cr_assert_eq(store_batch_begin(s, &e), 0, "%s", e.msg);
	cr_assert_eq(store_create(s, "llminferenceservices", bad, NULL, &e), -EINVAL);
	cr_assert_eq(store_create(s, "llminferenceservices", a, NULL, &e), 0);
	cr_assert_eq(store_delete(s, "llminferenceservices", "ns", "a", 5, NULL, &e), -ESTALE);
	cr_assert_eq(store_batch_end(s, &e), 0, "%s", e.msg);
	cr_assert_eq(store_current_rv(s), 1);
	cr_assert_eq(store_events_since(s, 0, NULL, NULL, collect, &v, &e), 0);
	cr_assert_eq(v.n, 1);
	cJSON_Delete(a);
	cJSON_Delete(bad);
	store_close(s);
}

Test(store, list_owned_by_uid)
{
	struct store *s = open_store(0);
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *in = obj("ns", "a", 1), *owner = NULL, *items = NULL, *o;
	const char *kinds[][2] = { { "pods", "Pod" }, { "deployments", "Deployment" },
		{ "services", "Service" } };
	char txt[512];
	size_t i;

	cr_assert_eq(store_create(s, "llminferenceservices", in, &owner, &e), 0);
	for (i = 0; i < 3; i++) {
		snprintf(txt, sizeof(txt), "{\"kind\":\"%s\",\"metadata\":{\"name\":"
		    "\"a-%zu\",\"namespace\":\"ns\",\"ownerReferences\":[{\"kind\":"
		    "\"LLMInferenceService\",\"name\":\"a\",\"uid\":\"%s\"}]}}",
		    kinds[i][1], i, i == 2 ? "someone-else" : md_str(owner, "uid"));
		o = cJSON_Parse(txt);
		cr_assert_eq(store_create(s, kinds[i][0], o, NULL, &e), 0, "%s", e.msg);
		cJSON_Delete(o);
	}
	cr_assert_eq(store_list_owned(s, md_str(owner, "uid"), &items, &e), 0);
	cr_assert_eq(cJSON_GetArraySize(items), 2);
	/* Ordered by resource: deployments before pods. */
	cr_assert_str_eq(cJSON_GetArrayItem(items, 0)->child->valuestring, "Deployment");
	cr_assert_str_eq(md_str(cJSON_GetArrayItem(items, 1), "name"), "a-0");
	cr_assert_str_eq(md_str(cJSON_GetArrayItem(items, 1), "resourceVersion"), "2");
	cJSON_Delete(items);
	cr_assert_eq(store_list_owned(s, "nobody", &items, &e), 0);
	cr_assert_eq(cJSON_GetArraySize(items), 0);
	cJSON_Delete(items);
	cJSON_Delete(owner);
	cJSON_Delete(in);
	store_close(s);
}
