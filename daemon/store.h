/*
 * daemon/store.h - the daemon's object store: Kubernetes-shaped objects in
 * SQLite (WAL, synchronous=FULL, so an acknowledged write survives kill -9).
 *
 * Objects are cJSON trees {apiVersion, kind, metadata, spec..., status}.
 * The store owns metadata.uid, generation (bumped when anything but metadata
 * and status changes), resourceVersion (one global monotonic counter, as a
 * decimal string), creationTimestamp. Status is stored in its own column and
 * only changed through STORE_STATUS updates. Every write appends an event
 * (ADDED, MODIFIED, DELETED) to an event log that watchers replay from a
 * resourceVersion; the log keeps the last `event_keep` entries and older
 * requests get -ERANGE (HTTP 410 Gone).
 *
 * Resources are keyed by their plural name ("llminferenceservices",
 * "nodes", ...); cluster-scoped objects use the namespace "".
 * Thread-safety: writes take the writer's mutex and are meant to run on a
 * worker thread (they fsync); reads go through a separate read-only
 * connection and see the last committed state, so they never wait behind a
 * commit's fsync.
 */
#ifndef LLMD_DAEMON_STORE_H
#define LLMD_DAEMON_STORE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/err.h"

struct store;

enum store_event_type { STORE_ADDED = 0, STORE_MODIFIED, STORE_DELETED };

struct store_event {
	enum store_event_type type;
	int64_t rv;
	const char *resource;
	const char *ns;
	const char *name;
	const cJSON *object;   /* full object (status included) */
};

struct store_opts {
	int allow_network_fs;  /* skip the statfs check (tests on odd filesystems) */
	int busy_timeout_ms;   /* default 5000 */
	int64_t event_keep;    /* events retained for WATCH; default 10000 */
};

/* Update flags. */
#define STORE_STATUS     0x1  /* write only .status (the /status subresource) */
#define STORE_KEEP_STATUS 0x2 /* (default for spec writes) keep the stored status */

const char *store_event_type_name(enum store_event_type t);

/*
 * Opens (creating) DIR/llmd.db; refuses network filesystems (NFS, CIFS/SMB,
 * FUSE, Lustre, Ceph...) and databases of a newer schema.
 */
int store_open(struct store **out, const char *dir, const struct store_opts *o,
    struct llmd_err *e);
void store_close(struct store *s);
/* Schema version of the open database (PRAGMA user_version). */
int store_schema_version(struct store *s);
/*
 * Highest resourceVersion committed (inside the caller's own batch: written
 * so far by it).
 */
int64_t store_current_rv(struct store *s);

/* *out is a new full object; -ENOENT when absent. */
int store_get(struct store *s, const char *resource, const char *ns,
    const char *name, cJSON **out, struct llmd_err *e);
/*
 * Array of full objects ordered by namespace, name; ns NULL lists every
 * namespace. *rv_out (may be NULL) is the store's resourceVersion at the read.
 */
int store_list(struct store *s, const char *resource, const char *ns,
    cJSON **items_out, int64_t *rv_out, struct llmd_err *e);
/*
 * Creates obj (metadata.name and, unless cluster-scoped, metadata.namespace
 * set; metadata.generateName honoured). -EEXIST when present. *out (may be
 * NULL) receives the stored object.
 */
int store_create(struct store *s, const char *resource, const cJSON *obj,
    cJSON **out, struct llmd_err *e);
/*
 * Replaces obj's spec (everything but status) or, with STORE_STATUS, its
 * status. A non-empty metadata.resourceVersion must equal the stored one, else
 * -ESTALE (409 Conflict). -ENOENT when absent. When nothing changes the
 * object is not rewritten and no event is logged (*changed = 0).
 */
int store_update(struct store *s, const char *resource, const cJSON *obj,
    int flags, cJSON **out, int *changed, struct llmd_err *e);
/*
 * Deletes; precondition_rv > 0 must match (else -ESTALE). *out (may be NULL)
 * gets the last state with metadata.deletionTimestamp set.
 */
int store_delete(struct store *s, const char *resource, const char *ns,
    const char *name, int64_t precondition_rv, cJSON **out, struct llmd_err *e);

/*
 * Objects whose controller owner (metadata.ownerReferences' first entry with
 * a uid) is owner_uid, of every resource, ordered by resource, namespace,
 * name (an indexed lookup, not a scan).
 */
int store_list_owned(struct store *s, const char *owner_uid, cJSON **items_out,
    struct llmd_err *e);

/*
 * Group commit: the calling thread's writes between store_batch_begin and
 * store_batch_end share one transaction, so one fsync commits them all.
 * Each write still succeeds or fails on its own (it runs in a savepoint: a
 * conflicting write returns its error and leaves the others of the batch in
 * place). The thread's reads inside the batch see its uncommitted writes;
 * other threads see none of them until the end, and other writers wait.
 * Nothing of a batch is durable before store_batch_end returns 0; when it
 * fails, every write of the batch is undone (report its error to all).
 */
int store_batch_begin(struct store *s, struct llmd_err *e);
int store_batch_end(struct store *s, struct llmd_err *e);

typedef int (*store_event_fn)(const struct store_event *ev, void *arg);
/*
 * Calls fn for every logged event with rv > since of `resource` (NULL: all)
 * in namespace ns (NULL: all), in order. -ERANGE when events after `since`
 * were already compacted away (410 Gone). fn returning non-zero stops; fn NULL only checks the range.
 */
int store_events_since(struct store *s, int64_t since, const char *resource,
    const char *ns, store_event_fn fn, void *arg, struct llmd_err *e);

/* Distinct namespaces that hold any object, as a cJSON array of strings. */
int store_namespaces(struct store *s, cJSON **out, struct llmd_err *e);

/* "NFS", "CIFS", "FUSE"... for a statfs f_type store_open refuses; NULL if local. */
const char *store_network_fs_name(unsigned long f_type);

/* RFC 3339 UTC "2026-11-25T13:00:00Z" of the current time into buf[32]. */
void store_timestamp(char *buf, size_t len);

#endif
