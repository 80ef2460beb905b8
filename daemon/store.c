/*
 * daemon/store.c - SQLite object store with a global resourceVersion counter,
 * a compacted event log for WATCH, owner-reference cascading deletes,
 * PRAGMA user_version schema migrations, group commit (batches of writes in
 * one transaction, a savepoint each) and a read-only connection for the
 * reads of other threads. See store.h.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include <sqlite3.h>

#include "daemon/store.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

/* Statements kept prepared on a connection (sqlite3_prepare_v3 PERSISTENT). */
enum stmt_id {
	Q_ROW, Q_LIST, Q_LIST_NS, Q_LIST_OWNED, Q_EVENTS, Q_META, Q_META_SET,
	Q_PUT, Q_EVENT_ADD, Q_BEGIN_READ, Q_END_READ, N_STMTS
};

static const char *const stmt_sql[N_STMTS] = {
	[Q_ROW] = "SELECT uid, rv, body, status FROM objects "
	    "WHERE resource = ? AND ns = ? AND name = ?",
	[Q_LIST] = "SELECT rv, body, status FROM objects WHERE resource = ?1 "
	    "ORDER BY ns, name",
	[Q_LIST_NS] = "SELECT rv, body, status FROM objects WHERE resource = ?1 "
	    "AND ns = ?2 ORDER BY ns, name",
	[Q_LIST_OWNED] = "SELECT rv, body, status FROM objects WHERE owner_uid = ?1 "
	    "ORDER BY resource, ns, name",
	[Q_EVENTS] = "SELECT rv, type, resource, ns, name, object "
	    "FROM events WHERE rv > ?1 AND (?2 IS NULL OR resource = ?2) AND "
	    "(?3 IS NULL OR ns = ?3) ORDER BY rv",
	[Q_META] = "SELECT value FROM meta WHERE key = ?",
	[Q_META_SET] = "UPDATE meta SET value = ? WHERE key = ?",
	[Q_PUT] = "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	[Q_EVENT_ADD] = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_END_READ] = "COMMIT",
};

/* One SQLite connection, its mutex and its prepared statements. */
struct conn {
	sqlite3 *db;
	pthread_mutex_t mu;
	sqlite3_stmt *st[N_STMTS];
};

/*
 * Writes go through w (one writer; its mutex is held for a whole batch),
 * reads of other threads through r, a read-only connection: WAL lets them
 * read the last committed state while the writer fsyncs, so a GET never
 * waits behind a commit. rv and compacted are atomics for the same reason.
 */
struct store {
	struct conn w, r;
	int64_t rv;         /* last resourceVersion written (atomic) */
	int64_t committed;  /* last resourceVersion committed (atomic) */
	int64_t compacted;  /* events with rv <= compacted are gone (atomic) */
	int64_t event_keep;
	int schema;
	int64_t batch_rv;   /* rv when the open batch began */
	int batch_failed;   /* a statement outside any savepoint failed */
};

/* The store whose batch the calling thread has open (store_batch_begin). */
static _Thread_local struct store *batch_of_thread;

static int
in_batch(const struct store *s)
{
	return batch_of_thread == s;
}

static int64_t
rv_load(const int64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void
rv_store(int64_t *p, int64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The next resourceVersion (writer's lock held). */
static void
rv_next(struct store *s)
{
	__atomic_add_fetch(&s->rv, 1, __ATOMIC_ACQ_REL);
}

/* Takes the writer's connection (already held inside this thread's batch). */
static struct conn *
wlock(struct store *s)
{
	if (!in_batch(s))
		pthread_mutex_lock(&s->w.mu);
	return &s->w;
}

static void
wunlock(struct store *s)
{
	if (!in_batch(s))
		pthread_mutex_unlock(&s->w.mu);
}

/*
 * The connection for a read: the writer's inside this thread's batch (to see
 * its own uncommitted writes), else the read-only one.
 */
static struct conn *
rlock(struct store *s)
{
	if (in_batch(s))
		return &s->w;
	pthread_mutex_lock(&s->r.mu);
	return &s->r;
}

static void
runlock(struct store *s, struct conn *c)
{
	if (c == &s->r)
		pthread_mutex_unlock(&s->r.mu);
}

/* A prepared statement of c, reset and unbound; NULL on error. */
static sqlite3_stmt *
stmt(struct conn *c, enum stmt_id id)
{
	if (c->st[id] == NULL && sqlite3_prepare_v3(c->db, stmt_sql[id], -1,
	    SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL) != SQLITE_OK)
		return NULL;
	return c->st[id];
}

/* Returns a statement from stmt() for its next use. */
static void
stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static void
conn_close(struct conn *c)
{
	size_t i;

	for (i = 0; i < N_STMTS; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->mu);
	memset(c, 0, sizeof(*c));
}

/* Schema migrations: migrations[i] takes user_version i to i+1. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('rv', 0), ('compacted', 0);"
	"CREATE TABLE objects ("
	"  resource TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
	"  uid TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL,"
	"  status TEXT, owner_uid TEXT,"
	"  PRIMARY KEY (resource, ns, name));"
	"CREATE TABLE events (rv INTEGER PRIMARY KEY, type INTEGER NOT NULL,"
	"  resource TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
	"  object TEXT NOT NULL);",
	/* 1 -> 2: cascading deletes look objects up by owner */
	"CREATE INDEX objects_owner ON objects (owner_uid);",
};
#define SCHEMA_VERSION ((int)ARRAY_SIZE(migrations))

/* Filesystems on which SQLite's WAL locking/fsync cannot be trusted. */
static const struct {
	unsigned long magic;
	const char *name;
} network_fs[] = {
	{ 0x6969, "NFS" },
	{ 0x517B, "SMB" },
	{ 0xFF534D42, "CIFS" },
	{ 0xFE534D42, "SMB2" },
	{ 0x65735546, "FUSE" },
	{ 0x0BD00BD0, "Lustre" },
	{ 0x00C36400, "Ceph" },
	{ 0x5346414F, "AFS" },
	{ 0x01161970, "GFS2" },
	{ 0x47504653, "GPFS" },
	{ 0x013111A8, "IBRIX" },
	{ 0x6B414653, "kAFS" },
};

const char *
store_event_type_name(enum store_event_type t)
{
	switch (t) {
	case STORE_ADDED: return "ADDED";
	case STORE_MODIFIED: return "MODIFIED";
	case STORE_DELETED: return "DELETED";
	}
	return "ERROR";
}

void
store_timestamp(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
make_uid(char out[37])
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		fatal("getrandom");
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6],
	    r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

static int
db_err(struct conn *c, struct llmd_err *e, const char *what)
{
	int rc = sqlite3_errcode(c->db);

	return err_set(e, rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY : -EIO,
	    "", "store: %s: %s", what, sqlite3_errmsg(c->db));
}

/* Runs sql on the writer's connection. */
static int
exec(struct store *s, const char *sql, struct llmd_err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(s->w.db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(e, -EIO, "", "store: %s", msg ? msg : "sqlite error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int64_t
meta_get(struct conn *c, const char *key)
{
	sqlite3_stmt *st = stmt(c, Q_META);
	int64_t v = 0;

	if (st == NULL)
		return 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	stmt_done(st);
	return v;
}

static int
meta_set(struct store *s, const char *key, int64_t v, struct llmd_err *e)
{
	sqlite3_stmt *st = stmt(&s->w, Q_META_SET);
	int rc;

	if (st == NULL)
		return db_err(&s->w, e, "prepare");
	sqlite3_bind_int64(st, 1, v);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	stmt_done(st);
	return rc == SQLITE_DONE ? 0 : db_err(&s->w, e, "meta");
}

const char *
store_network_fs_name(unsigned long f_type)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(network_fs); i++)
		if (f_type == network_fs[i].magic)
			return network_fs[i].name;
	return NULL;
}

static int
check_fs(const char *dir, struct llmd_err *e)
{
	struct statfs sf;
	const char *name;

	if (statfs(dir, &sf) < 0)
		return err_set(e, -errno, dir, "statfs: %s", strerror(errno));
	if ((name = store_network_fs_name((unsigned long)sf.f_type)) != NULL)
		return err_set(e, -EXDEV, dir, "data directory is on a %s "
		    "filesystem; SQLite WAL needs a local filesystem "
		    "(ext4, xfs, btrfs, tmpfs): choose another --data-dir", name);
	return 0;
}

static int
migrate(struct store *s, struct llmd_err *e)
{
	sqlite3_stmt *st;
	int v = 0, rc;
	char sql[64];

	if (sqlite3_prepare_v2(s->w.db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_err(&s->w, e, "user_version");
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (v > SCHEMA_VERSION)
		return err_set(e, -EPROTO, "", "store schema version %d is newer "
		    "than this llmd supports (%d): upgrade llmd", v, SCHEMA_VERSION);
	for (; v < SCHEMA_VERSION; v++) {
		if ((rc = exec(s, "BEGIN IMMEDIATE", e)) < 0)
			return rc;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if ((rc = exec(s, migrations[v], e)) < 0 || (rc = exec(s, sql, e)) < 0) {
			exec(s, "ROLLBACK", NULL);
			err_prefix_field(e, "migration");
			return rc;
		}
		if ((rc = exec(s, "COMMIT", e)) < 0)
			return rc;
		log_info("store: schema migrated to version %d", v + 1);
	}
	s->schema = v;
	return 0;
}

int
store_open(struct store **out, const char *dir, const struct store_opts *o,
    struct llmd_err *e)
{
	struct store_opts defaults = { 0, 5000, 10000 };
	struct store *s;
	char *path;
	int rc;

	if (o == NULL)
		o = &defaults;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, -errno, dir, "mkdir: %s", strerror(errno));
	if (!o->allow_network_fs && (rc = check_fs(dir, e)) < 0)
		return rc;
	s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->w.mu, NULL);
	pthread_mutex_init(&s->r.mu, NULL);
	s->event_keep = o->event_keep > 0 ? o->event_keep : 10000;
	path = xmalloc(strlen(dir) + 16);
	sprintf(path, "%s/llmd.db", dir);
	rc = sqlite3_open_v2(path, &s->w.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = err_set(e, -EIO, dir, "store: open: %s",
		    s->w.db ? sqlite3_errmsg(s->w.db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->w.db, o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000);
	/* WAL + synchronous=FULL: every COMMIT fsyncs the WAL before returning. */
	if ((rc = exec(s, "PRAGMA journal_mode=WAL", e)) < 0 ||
	    (rc = exec(s, "PRAGMA synchronous=FULL", e)) < 0 ||
	    (rc = exec(s, "PRAGMA foreign_keys=ON", e)) < 0 ||
	    (rc = migrate(s, e)) < 0)
		goto fail;
	/* Opened after the writer made the database WAL and migrated it. */
	rc = sqlite3_open_v2(path, &s->r.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK) {
		rc = err_set(e, -EIO, dir, "store: open for reading: %s",
		    s->r.db ? sqlite3_errmsg(s->r.db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->r.db, o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000);
	free(path);
	s->rv = s->committed = meta_get(&s->w, "rv");
	s->compacted = meta_get(&s->w, "compacted");
	*out = s;
	return 0;
fail:
	free(path);
	conn_close(&s->r);
	conn_close(&s->w);
	free(s);
	return rc;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	conn_close(&s->r);
	conn_close(&s->w);
	free(s);
}

int
store_schema_version(struct store *s)
{
	return s->schema;
}

int64_t
store_current_rv(struct store *s)
{
	return rv_load(in_batch(s) ? &s->rv : &s->committed);
}

/* ---- object assembly ---- */

static cJSON *
ensure_object(cJSON *parent, const char *key)
{
	cJSON *c = cJSON_GetObjectItemCaseSensitive(parent, key);

	if (!cJSON_IsObject(c)) {
		cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
		c = cJSON_AddObjectToObject(parent, key);
	}
	return c;
}

static void
set_str(cJSON *o, const char *key, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddStringToObject(o, key, v);
}

static const char *
get_str(const cJSON *o, const char *key)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* Builds the full object from a row's body, rv and status. */
static cJSON *
assemble(const char *body, int64_t rv, const char *status)
{
	cJSON *o = cJSON_Parse(body), *md, *st;
	char rvs[24];

	if (o == NULL)
		return NULL;
	md = ensure_object(o, "metadata");
	snprintf(rvs, sizeof(rvs), "%" PRId64, rv);
	set_str(md, "resourceVersion", rvs);
	if (status != NULL && (st = cJSON_Parse(status)) != NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
		cJSON_AddItemToObject(o, "status", st);
	}
	return o;
}

static char *
print_compact(const cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s == NULL)
		fatalx("out of memory printing JSON");
	return s;
}

/* Controller owner uid (first ownerReference) or NULL. */
static const char *
owner_uid(const cJSON *md)
{
	const cJSON *refs = cJSON_GetObjectItemCaseSensitive(md, "ownerReferences");
	const cJSON *r;

	cJSON_ArrayForEach(r, refs) {
		const char *u = get_str(r, "uid");

		if (u != NULL)
			return u;
	}
	return NULL;
}

/* ---- reads ---- */

struct row {
	int found;
	char *uid;
	int64_t rv;
	char *body;
	char *status;
};

static void
row_release(struct row *r)
{
	free(r->uid);
	free(r->body);
	free(r->status);
	memset(r, 0, sizeof(*r));
}

static char *
col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? xstrdup((const char *)t) : NULL;
}

static int
load_row(struct conn *c, const char *resource, const char *ns, const char *name,
    struct row *r, struct llmd_err *e)
{
	sqlite3_stmt *st = stmt(c, Q_ROW);
	int rc;

	memset(r, 0, sizeof(*r));
	if (st == NULL)
		return db_err(c, e, "prepare");
	sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->found = 1;
		r->uid = col_dup(st, 0);
		r->rv = sqlite3_column_int64(st, 1);
		r->body = col_dup(st, 2);
		r->status = col_dup(st, 3);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = db_err(c, e, "select");
	}
	stmt_done(st);
	return rc;
}

int
store_get(struct store *s, const char *resource, const char *ns,
    const char *name, cJSON **out, struct llmd_err *e)
{
	struct conn *c = rlock(s);
	struct row r;
	int rc;

	rc = load_row(c, resource, ns ? ns : "", name, &r, e);
	runlock(s, c);
	if (rc < 0)
		return rc;
	if (!r.found)
		return err_set(e, -ENOENT, "", "%s \"%s\" not found", resource, name);
	*out = assemble(r.body, r.rv, r.status);
	row_release(&r);
	return *out ? 0 : err_set(e, -EIO, "", "store: corrupt object %s/%s", resource, name);
}

/*
 * Opens a read transaction on the read-only connection (one snapshot for
 * several statements); the writer's connection inside a batch needs none.
 * Returns whether one was opened, for read_end.
 */
static int
read_begin(struct store *s, struct conn *c)
{
	sqlite3_stmt *tx;
	int ok;

	if (c != &s->r || (tx = stmt(c, Q_BEGIN_READ)) == NULL)
		return 0;
	ok = sqlite3_step(tx) == SQLITE_DONE;
	stmt_done(tx);
	return ok;
}

static void
read_end(struct conn *c, int opened)
{
	sqlite3_stmt *tx;

	if (opened && (tx = stmt(c, Q_END_READ)) != NULL) {
		sqlite3_step(tx);
		stmt_done(tx);
	}
}

/*
 * Runs a (rv, body, status) query bound to a and b (b may be NULL) into an
 * array of objects; *rv_out gets the resourceVersion of the same snapshot
 * (the read runs in one read transaction).
 */
static int
list_query(struct store *s, enum stmt_id q, const char *a, const char *b,
    cJSON **items_out, int64_t *rv_out, struct llmd_err *e)
{
	struct conn *c = rlock(s);
	int tx = read_begin(s, c);
	sqlite3_stmt *st;
	cJSON *items = cJSON_CreateArray();
	int rc;

	if ((st = stmt(c, q)) == NULL) {
		rc = db_err(c, e, "prepare");
		goto out;
	}
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *o = assemble((const char *)sqlite3_column_text(st, 1),
		    sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 2));

		if (o)
			cJSON_AddItemToArray(items, o);
	}
	rc = rc == SQLITE_DONE ? 0 : db_err(c, e, "list");
	stmt_done(st);
	if (rv_out)
		*rv_out = c == &s->r ? meta_get(c, "rv") : rv_load(&s->rv);
out:
	read_end(c, tx);
	runlock(s, c);
	if (rc < 0) {
		cJSON_Delete(items);
		return rc;
	}
	*items_out = items;
	return 0;
}

int
store_list(struct store *s, const char *resource, const char *ns,
    cJSON **items_out, int64_t *rv_out, struct llmd_err *e)
{
	return list_query(s, ns ? Q_LIST_NS : Q_LIST, resource, ns, items_out, rv_out, e);
}

int
store_list_owned(struct store *s, const char *owner_uid, cJSON **items_out,
    struct llmd_err *e)
{
	return list_query(s, Q_LIST_OWNED, owner_uid, NULL, items_out, NULL, e);
}

int
store_namespaces(struct store *s, cJSON **out, struct llmd_err *e)
{
	struct conn *c = rlock(s);
	sqlite3_stmt *st;
	cJSON *a = cJSON_CreateArray();
	int rc;

	rc = sqlite3_prepare_v2(c->db, "SELECT DISTINCT ns FROM objects WHERE ns != '' "
	    "ORDER BY ns", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			cJSON_AddItemToArray(a, cJSON_CreateString(
			    (const char *)sqlite3_column_text(st, 0)));
		rc = rc == SQLITE_DONE ? 0 : db_err(c, e, "namespaces");
		sqlite3_finalize(st);
	} else {
		rc = db_err(c, e, "prepare");
	}
	runlock(s, c);
	if (rc < 0) {
		cJSON_Delete(a);
		return rc;
	}
	*out = a;
	return 0;
}

int
store_events_since(struct store *s, int64_t since, const char *resource,
    const char *ns, store_event_fn fn, void *arg, struct llmd_err *e)
{
	struct conn *c;
	sqlite3_stmt *st;
	int64_t compacted;
	int rc, tx;
	struct ev {
		struct store_event ev;
		char *resource, *ns, *name;
		cJSON *obj;
	} *evs = NULL;
	size_t n = 0, cap = 0, i;

	/* Collect under the lock from one snapshot, call fn without it (fn may use the store). */
	c = rlock(s);
	tx = read_begin(s, c);
	compacted = tx ? meta_get(c, "compacted") : rv_load(&s->compacted);
	if (since < compacted) {
		read_end(c, tx);
		runlock(s, c);
		return err_set(e, -ERANGE, "", "too old resource version: %" PRId64
		    " (%" PRId64 ")", since, compacted + 1);
	}
	if ((st = stmt(c, Q_EVENTS)) == NULL) {
		rc = db_err(c, e, "prepare");
		read_end(c, tx);
		runlock(s, c);
		return rc;
	}
	sqlite3_bind_int64(st, 1, since);
	if (resource)
		sqlite3_bind_text(st, 2, resource, -1, SQLITE_STATIC);
	if (ns)
		sqlite3_bind_text(st, 3, ns, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ev *v;

		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			evs = xreallocarray(evs, cap, sizeof(*evs));
		}
		v = &evs[n];
		v->obj = cJSON_Parse((const char *)sqlite3_column_text(st, 5));
		if (v->obj == NULL)
			continue;
		v->resource = col_dup(st, 2);
		v->ns = col_dup(st, 3);
		v->name = col_dup(st, 4);
		v->ev.rv = sqlite3_column_int64(st, 0);
		v->ev.type = (enum store_event_type)sqlite3_column_int(st, 1);
		n++;
	}
	rc = rc == SQLITE_DONE ? 0 : db_err(c, e, "events");
	stmt_done(st);
	read_end(c, tx);
	runlock(s, c);
	for (i = 0; i < n; i++) {
		evs[i].ev.resource = evs[i].resource;
		evs[i].ev.ns = evs[i].ns;
		evs[i].ev.name = evs[i].name;
		evs[i].ev.object = evs[i].obj;
		if (rc == 0 && fn != NULL && fn(&evs[i].ev, arg) != 0)
			rc = 1;
		free(evs[i].resource);
		free(evs[i].ns);
		free(evs[i].name);
		cJSON_Delete(evs[i].obj);
	}
	free(evs);
	return rc < 0 ? rc : 0;
}

/* ---- writes ---- */

static int
log_event(struct store *s, enum store_event_type type, const char *resource,
    const char *ns, const char *name, int64_t rv, const cJSON *obj,
    struct llmd_err *e)
{
	sqlite3_stmt *st = stmt(&s->w, Q_EVENT_ADD);
	char *txt;
	int rc;

	if (st == NULL)
		return db_err(&s->w, e, "prepare");
	txt = print_compact(obj);
	sqlite3_bind_int64(st, 1, rv);
	sqlite3_bind_int(st, 2, (int)type);
	sqlite3_bind_text(st, 3, resource, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, txt, -1, free);
	rc = sqlite3_step(st);
	stmt_done(st);
	return rc == SQLITE_DONE ? 0 : db_err(&s->w, e, "event");
}

/*
 * Starts one write: its own transaction, or inside this thread's batch a
 * savepoint, so that a failing write is undone alone.
 */
static int
begin(struct store *s, struct llmd_err *e)
{
	return exec(s, in_batch(s) ? "SAVEPOINT w" : "BEGIN IMMEDIATE", e);
}

/* Before a commit: compacts the event log and records rv (writer's lock held). */
static int
pre_commit(struct store *s, int64_t rv_before, struct llmd_err *e)
{
	int64_t rv = rv_load(&s->rv), compacted = rv_load(&s->compacted);
	int rc = 0;

	if (rv - compacted > s->event_keep) {
		int64_t upto = rv - s->event_keep;
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(s->w.db, "DELETE FROM events WHERE rv <= ?", -1,
		    &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, upto);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = db_err(&s->w, e, "compact");
			sqlite3_finalize(st);
		}
		if (rc == 0 && (rc = meta_set(s, "compacted", upto, e)) == 0)
			rv_store(&s->compacted, upto);
	}
	if (rc == 0 && rv != rv_before)
		rc = meta_set(s, "rv", rv, e);
	return rc;
}

/* Rolls the writer's transaction back and restores rv (writer's lock held). */
static void
rollback(struct store *s, int64_t rv_before)
{
	exec(s, "ROLLBACK", NULL);
	rv_store(&s->rv, rv_before);
	rv_store(&s->compacted, meta_get(&s->w, "compacted"));
}

/*
 * Ends one write begun by begin(): commits (compacting the event log) or, in
 * a batch, releases its savepoint; on failure undoes it and restores rv.
 */
static int
finish(struct store *s, int rc, int64_t rv_before, struct llmd_err *e)
{
	if (in_batch(s)) {
		if (rc == 0 && (rc = exec(s, "RELEASE w", e)) == 0)
			return 0;
		if (exec(s, "ROLLBACK TO w", NULL) < 0 || exec(s, "RELEASE w", NULL) < 0)
			s->batch_failed = 1;
		rv_store(&s->rv, rv_before);
		return rc;
	}
	if (rc == 0)
		rc = pre_commit(s, rv_before, e);
	if (rc == 0 && (rc = exec(s, "COMMIT", e)) == 0) {
		rv_store(&s->committed, rv_load(&s->rv));
		return 0;
	}
	rollback(s, rv_before);
	return rc;
}

int
store_batch_begin(struct store *s, struct llmd_err *e)
{
	int rc;

	if (in_batch(s))
		return err_set(e, -EALREADY, "", "store: batch already open");
	pthread_mutex_lock(&s->w.mu);
	if ((rc = exec(s, "BEGIN IMMEDIATE", e)) < 0) {
		pthread_mutex_unlock(&s->w.mu);
		return rc;
	}
	s->batch_rv = rv_load(&s->rv);
	s->batch_failed = 0;
	batch_of_thread = s;
	return 0;
}

int
store_batch_end(struct store *s, struct llmd_err *e)
{
	int rc = 0;

	if (!in_batch(s))
		return err_set(e, -EINVAL, "", "store: no batch open");
	batch_of_thread = NULL;
	if (s->batch_failed)
		rc = err_set(e, -EIO, "", "store: a write of the batch could not be undone");
	if (rc == 0)
		rc = pre_commit(s, s->batch_rv, e);
	if (rc == 0)
		rc = exec(s, "COMMIT", e);
	if (rc < 0)
		rollback(s, s->batch_rv);
	else
		rv_store(&s->committed, rv_load(&s->rv));
	pthread_mutex_unlock(&s->w.mu);
	return rc;
}

/* INSERT OR REPLACE of one row. */
static int
put_row(struct store *s, const char *resource, const char *ns, const char *name,
    const char *uid, int64_t rv, const cJSON *body, const cJSON *status,
    struct llmd_err *e)
{
	sqlite3_stmt *st = stmt(&s->w, Q_PUT);
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(body, "metadata");
	const char *owner = owner_uid(md);
	int rc;

	if (st == NULL)
		return db_err(&s->w, e, "prepare");
	sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, uid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, rv);
	sqlite3_bind_text(st, 6, print_compact(body), -1, free);
	if (status)
		sqlite3_bind_text(st, 7, print_compact(status), -1, free);
	else
		sqlite3_bind_null(st, 7);
	if (owner)
		sqlite3_bind_text(st, 8, owner, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 8);
	rc = sqlite3_step(st);
	stmt_done(st);
	return rc == SQLITE_DONE ? 0 : db_err(&s->w, e, "write");
}

static void
random_suffix(char *out, size_t n)
{
	static const char al[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char r[16];
	size_t i;

	if (n > sizeof(r))
		n = sizeof(r);
	if (getrandom(r, n, 0) != (ssize_t)n)
		fatal("getrandom");
	for (i = 0; i < n; i++)
		out[i] = al[r[i] % (sizeof(al) - 1)];
	out[n] = '\0';
}

int
store_create(struct store *s, const char *resource, const cJSON *obj,
    cJSON **out, struct llmd_err *e)
{
	cJSON *body = cJSON_Duplicate(obj, 1), *md, *status;
	const char *name, *ns, *gen;
	char uid[37], ts[32], namebuf[300];
	struct row r;
	int64_t rv_before;
	int rc;

	md = ensure_object(body, "metadata");
	ns = get_str(md, "namespace");
	if (ns == NULL)
		ns = "";
	name = get_str(md, "name");
	if ((name == NULL || !*name) && (gen = get_str(md, "generateName")) != NULL &&
	    strlen(gen) < 250) {
		char sfx[6];

		random_suffix(sfx, 5);
		snprintf(namebuf, sizeof(namebuf), "%s%s", gen, sfx);
		set_str(md, "name", namebuf);
		name = get_str(md, "name");
		ns = get_str(md, "namespace") ? get_str(md, "namespace") : "";
	}
	if (name == NULL || !*name) {
		cJSON_Delete(body);
		return err_set(e, -EINVAL, "metadata.name", "name or generateName is required");
	}
	status = cJSON_DetachItemFromObjectCaseSensitive(body, "status");
	make_uid(uid);
	store_timestamp(ts, sizeof(ts));
	set_str(md, "uid", uid);
	set_str(md, "creationTimestamp", ts);
	cJSON_DeleteItemFromObjectCaseSensitive(md, "generation");
	cJSON_AddNumberToObject(md, "generation", 1);
	cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(md, "deletionTimestamp");

	wlock(s);
	rv_before = rv_load(&s->rv);
	if ((rc = begin(s, e)) < 0)
		goto unlock;
	rc = load_row(&s->w, resource, ns, name, &r, e);
	if (rc == 0 && r.found)
		rc = err_set(e, -EEXIST, "metadata.name", "%s \"%s\" already exists",
		    resource, name);
	row_release(&r);
	if (rc == 0) {
		rv_next(s);
		rc = put_row(s, resource, ns, name, uid, rv_load(&s->rv), body, status, e);
	}
	if (rc == 0) {
		char rvs[24];
		cJSON *full = cJSON_Duplicate(body, 1);

		snprintf(rvs, sizeof(rvs), "%" PRId64, rv_load(&s->rv));
		set_str(cJSON_GetObjectItemCaseSensitive(full, "metadata"),
		    "resourceVersion", rvs);
		if (status)
			cJSON_AddItemToObject(full, "status", cJSON_Duplicate(status, 1));
		rc = log_event(s, STORE_ADDED, resource, ns, name, rv_load(&s->rv), full, e);
		if (rc == 0 && out)
			*out = full;
		else
			cJSON_Delete(full);
	}
	rc = finish(s, rc, rv_before, e);
	if (rc < 0 && out && *out) {
		cJSON_Delete(*out);
		*out = NULL;
	}
unlock:
	wunlock(s);
	cJSON_Delete(body);
	cJSON_Delete(status);
	return rc;
}

static int64_t
md_rv(const cJSON *md)
{
	const char *v = get_str(md, "resourceVersion");
	long n;

	if (v == NULL || !*v)
		return 0;
	if (parse_long(v, 1, LONG_MAX, &n) < 0)
		return -1;
	return n;
}

/* Does a differ from b outside metadata and status? */
static int
spec_differs(const cJSON *a, const cJSON *b)
{
	cJSON *x = cJSON_Duplicate(a, 1), *y = cJSON_Duplicate(b, 1);
	int d;

	cJSON_DeleteItemFromObjectCaseSensitive(x, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(y, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(x, "status");
	cJSON_DeleteItemFromObjectCaseSensitive(y, "status");
	d = !cJSON_Compare(x, y, 1);
	cJSON_Delete(x);
	cJSON_Delete(y);
	return d;
}

static void
copy_item(cJSON *to, const cJSON *from, const char *key)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(from, key);

	cJSON_DeleteItemFromObjectCaseSensitive(to, key);
	if (c)
		cJSON_AddItemToObject(to, key, cJSON_Duplicate(c, 1));
}

int
store_update(struct store *s, const char *resource, const cJSON *obj,
    int flags, cJSON **out, int *changed, struct llmd_err *e)
{
	const cJSON *imd = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *name = get_str(imd, "name"), *ns = get_str(imd, "namespace");
	int64_t want_rv = md_rv(imd), rv_before;
	cJSON *old = NULL, *oldstatus = NULL, *body = NULL, *status = NULL, *md, *omd;
	struct row r = { 0 };
	int rc, differs;

	if (changed)
		*changed = 0;
	if (out)
		*out = NULL;
	if (name == NULL || !*name)
		return err_set(e, -EINVAL, "metadata.name", "name is required");
	if (want_rv < 0)
		return err_set(e, -EINVAL, "metadata.resourceVersion", "not a resource version");
	if (ns == NULL)
		ns = "";
	wlock(s);
	rv_before = rv_load(&s->rv);
	if ((rc = begin(s, e)) < 0)
		goto unlock;
	if ((rc = load_row(&s->w, resource, ns, name, &r, e)) < 0)
		goto done;
	if (!r.found) {
		rc = err_set(e, -ENOENT, "", "%s \"%s\" not found", resource, name);
		goto done;
	}
	if (want_rv > 0 && want_rv != r.rv) {
		rc = err_set(e, -ESTALE, "metadata.resourceVersion", "Operation cannot "
		    "be fulfilled on %s \"%s\": the object has been modified; please "
		    "apply your changes to the latest version and try again",
		    resource, name);
		goto done;
	}
	old = cJSON_Parse(r.body);
	oldstatus = r.status ? cJSON_Parse(r.status) : NULL;
	if (old == NULL) {
		rc = err_set(e, -EIO, "", "store: corrupt object %s/%s", resource, name);
		goto done;
	}
	omd = ensure_object(old, "metadata");
	if (flags & STORE_STATUS) {
		const cJSON *ns_ = cJSON_GetObjectItemCaseSensitive(obj, "status");

		body = cJSON_Duplicate(old, 1);
		status = ns_ ? cJSON_Duplicate(ns_, 1) : NULL;
		differs = !((status == NULL && oldstatus == NULL) ||
		    (status && oldstatus && cJSON_Compare(status, oldstatus, 1)));
	} else {
		const cJSON *g;
		int spec_changed;

		body = cJSON_Duplicate(obj, 1);
		cJSON_DeleteItemFromObjectCaseSensitive(body, "status");
		md = ensure_object(body, "metadata");
		/* Server-owned metadata comes from the stored object. */
		copy_item(md, omd, "uid");
		copy_item(md, omd, "creationTimestamp");
		copy_item(md, omd, "deletionTimestamp");
		copy_item(md, omd, "namespace");
		copy_item(md, omd, "name");
		cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
		g = cJSON_GetObjectItemCaseSensitive(omd, "generation");
		spec_changed = spec_differs(old, body);
		cJSON_DeleteItemFromObjectCaseSensitive(md, "generation");
		cJSON_AddNumberToObject(md, "generation",
		    (cJSON_IsNumber(g) ? g->valuedouble : 1) + (spec_changed ? 1 : 0));
		status = oldstatus ? cJSON_Duplicate(oldstatus, 1) : NULL;
		differs = !cJSON_Compare(old, body, 1);
	}
	if (!differs) {
		if (out)
			*out = assemble(r.body, r.rv, r.status);
		goto done;
	}
	rv_next(s);
	if ((rc = put_row(s, resource, ns, name, r.uid, rv_load(&s->rv), body, status, e)) == 0) {
		char rvs[24];
		cJSON *full = cJSON_Duplicate(body, 1);

		snprintf(rvs, sizeof(rvs), "%" PRId64, rv_load(&s->rv));
		set_str(ensure_object(full, "metadata"), "resourceVersion", rvs);
		if (status)
			cJSON_AddItemToObject(full, "status", cJSON_Duplicate(status, 1));
		rc = log_event(s, STORE_MODIFIED, resource, ns, name, rv_load(&s->rv), full, e);
		if (rc == 0 && out)
			*out = full;
		else
			cJSON_Delete(full);
		if (rc == 0 && changed)
			*changed = 1;
	}
done:
	rc = finish(s, rc, rv_before, e);
	if (rc < 0 && out && *out) {
		cJSON_Delete(*out);
		*out = NULL;
	}
unlock:
	wunlock(s);
	row_release(&r);
	cJSON_Delete(old);
	cJSON_Delete(oldstatus);
	cJSON_Delete(body);
	cJSON_Delete(status);
	return rc;
}

/* Deletes one row (and, recursively, the objects it owns), logging events. */
static int
delete_row(struct store *s, const char *resource, const char *ns, const char *name,
    const struct row *r, cJSON **out, int depth, struct llmd_err *e)
{
	sqlite3_stmt *st;
	cJSON *last = assemble(r->body, r->rv, r->status);
	char ts[32];
	int rc;
	struct child { char *resource, *ns, *name; } *kids = NULL;
	size_t n = 0, i;

	if (last == NULL)
		return err_set(e, -EIO, "", "store: corrupt object %s/%s", resource, name);
	store_timestamp(ts, sizeof(ts));
	set_str(ensure_object(last, "metadata"), "deletionTimestamp", ts);
	if (sqlite3_prepare_v2(s->w.db, "DELETE FROM objects WHERE resource = ? AND "
	    "ns = ? AND name = ?", -1, &st, NULL) != SQLITE_OK) {
		cJSON_Delete(last);
		return db_err(&s->w, e, "prepare");
	}
	sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(last);
		return db_err(&s->w, e, "delete");
	}
	rv_next(s);
	if ((rc = log_event(s, STORE_DELETED, resource, ns, name, rv_load(&s->rv), last, e)) < 0) {
		cJSON_Delete(last);
		return rc;
	}
	if (out)
		*out = last;
	else
		cJSON_Delete(last);
	if (depth > 8)
		return 0;
	/* Garbage-collect dependents (ownerReferences uid). */
	if (sqlite3_prepare_v2(s->w.db, "SELECT resource, ns, name FROM objects WHERE "
	    "owner_uid = ?", -1, &st, NULL) != SQLITE_OK)
		return db_err(&s->w, e, "prepare");
	sqlite3_bind_text(st, 1, r->uid, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		kids = xreallocarray(kids, n + 1, sizeof(*kids));
		kids[n].resource = col_dup(st, 0);
		kids[n].ns = col_dup(st, 1);
		kids[n].name = col_dup(st, 2);
		n++;
	}
	sqlite3_finalize(st);
	rc = 0;
	for (i = 0; i < n; i++) {
		struct row kr;

		if (rc == 0 && (rc = load_row(&s->w, kids[i].resource, kids[i].ns,
		    kids[i].name, &kr, e)) == 0 && kr.found)
			rc = delete_row(s, kids[i].resource, kids[i].ns, kids[i].name,
			    &kr, NULL, depth + 1, e);
		if (rc == 0)
			row_release(&kr);
		free(kids[i].resource);
		free(kids[i].ns);
		free(kids[i].name);
	}
	free(kids);
	return rc;
}

int
store_delete(struct store *s, const char *resource, const char *ns,
    const char *name, int64_t precondition_rv, cJSON **out, struct llmd_err *e)
{
	struct row r = { 0 };
	int64_t rv_before;
	int rc;

	if (out)
		*out = NULL;
	if (ns == NULL)
		ns = "";
	wlock(s);
	rv_before = rv_load(&s->rv);
	if ((rc = begin(s, e)) < 0)
		goto unlock;
	if ((rc = load_row(&s->w, resource, ns, name, &r, e)) < 0)
		goto done;
	if (!r.found)
		rc = err_set(e, -ENOENT, "", "%s \"%s\" not found", resource, name);
	else if (precondition_rv > 0 && precondition_rv != r.rv)
		rc = err_set(e, -ESTALE, "metadata.resourceVersion", "Operation cannot "
		    "be fulfilled on %s \"%s\": the object has been modified", resource,
		    name);
	else
		rc = delete_row(s, resource, ns, name, &r, out, 0, e);
done:
	rc = finish(s, rc, rv_before, e);
	if (rc < 0 && out && *out) {
		cJSON_Delete(*out);
		*out = NULL;
	}
unlock:
	wunlock(s);
	row_release(&r);
	return rc;
}
