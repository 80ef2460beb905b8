/*
 * daemon/reconciler.h - the event-driven reconcile loop of
 * LLMInferenceServices: store events (services, configs, nodes, children)
 * queue service keys; one batch at a time (the queued services, up to a
 * bound, in one store transaction) runs on the workpool and calls
 * daemon/reconcile.h (combine, derive, placement, status), writes the
 * derived children (owned by the service, so deleting it removes them) and
 * status (observedGeneration, conditions). Level-triggered and idempotent:
 * an unchanged object is not rewritten. A periodic resync queues every
 * service.
 */
#ifndef LLMD_DAEMON_RECONCILER_H
#define LLMD_DAEMON_RECONCILER_H

#include <stdint.h>

struct event_base;
struct store;
struct watch_hub;
struct workpool;
struct reconciler;

struct reconciler *reconciler_new(struct event_base *base, struct store *s,
    struct watch_hub *hub, struct workpool *wp, int64_t resync_ms);
void reconciler_free(struct reconciler *r);
/* Queues namespace/name for a reconcile. */
void reconciler_enqueue(struct reconciler *r, const char *ns, const char *name);
/*
 * One synchronous pass over ns/name (used by the loop's worker and tests).
 * Returns 0 or a negative errno (the reason is also written to status).
 */
int reconcile_service(struct store *s, const char *ns, const char *name);

#endif
