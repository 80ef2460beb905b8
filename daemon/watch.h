/*
 * daemon/watch.h - WATCH streams and in-process subscribers of store events.
 *
 * The hub remembers the last resourceVersion it delivered. After every
 * committed write the API (and the reconciler) call watch_hub_pump(), which
 * replays the store's event log from there to every open watch stream
 * (newline-delimited {"type":"ADDED|MODIFIED|DELETED","object":{...}}) and
 * to in-process subscribers (the reconciler). Runs on the event loop only.
 */
#ifndef LLMD_DAEMON_WATCH_H
#define LLMD_DAEMON_WATCH_H

#include <stdint.h>

#include "daemon/store.h"

struct event_base;
struct http_req;
struct api_resource;
struct selector;
struct watch_hub;

typedef void (*watch_sub_fn)(const struct store_event *ev, void *arg);

struct watch_hub *watch_hub_new(struct event_base *base, struct store *s);
/* Ends every stream (graceful shutdown), and frees the hub. */
void watch_hub_end_streams(struct watch_hub *h);
void watch_hub_free(struct watch_hub *h);
void watch_hub_pump(struct watch_hub *h);
/*
 * Every ms, streams get a heartbeat so idle timeouts do not cut them: a
 * BOOKMARK event when the client asked (allowWatchBookmarks=true), else a
 * bare newline (JSON whitespace). 0 disables.
 */
void watch_hub_set_heartbeat(struct watch_hub *h, int64_t ms);
void watch_hub_subscribe(struct watch_hub *h, watch_sub_fn fn, void *arg);
/* Open streams (for tests and /metrics). */
int watch_hub_count(const struct watch_hub *h);

/*
 * Starts a chunked 200 stream on req for resource r in ns (NULL: all
 * namespaces) filtered by the selectors (owned by the watch afterwards).
 * rv 0 first sends the current objects as ADDED; rv > 0 replays events
 * after rv (-ERANGE when compacted: reply 410 Gone). timeout_s > 0 ends the
 * stream after that many seconds.
 */
int watch_start(struct watch_hub *h, struct http_req *req,
    const struct api_resource *r, const char *ns, struct selector *labels,
    struct selector *fields, int64_t rv, int timeout_s, int bookmarks,
    struct llmd_err *e);

#endif
