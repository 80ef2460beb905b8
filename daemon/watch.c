/*
 * daemon/watch.c - WATCH streams over chunked HTTP replies and in-process
 * event subscribers, fed from the store's event log. See watch.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/api.h"
#include "daemon/watch.h"
#include "lib/buf.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

/* A stream whose client does not read more than this is dropped. */
#define WATCH_MAX_BACKLOG (16u << 20)

struct watcher {
	struct watch_hub *hub;
	struct http_req *req;
	const struct api_resource *res;
	char *ns;
	struct selector *labels, *fields;
	int64_t last_rv;
	int bookmarks;
	struct event *timer;
	struct watcher *next;
};

struct sub {
	watch_sub_fn fn;
	void *arg;
	struct sub *next;
};

struct watch_hub {
	struct event_base *base;
	struct store *store;
	int64_t last_rv;
	struct watcher *watchers;
	struct sub *subs;
	struct event *heartbeat;
	int pumping;
};

struct watch_hub *
watch_hub_new(struct event_base *base, struct store *s)
{
	struct watch_hub *h = xcalloc(1, sizeof(*h));

	h->base = base;
	h->store = s;
	h->last_rv = store_current_rv(s);
	return h;
}

static void
watcher_unlink(struct watcher *w)
{
	struct watcher **pp;

	for (pp = &w->hub->watchers; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
}

static void
watcher_free(struct watcher *w)
{
	if (w->timer)
		event_free(w->timer);
	selector_free(w->labels);
	selector_free(w->fields);
	free(w->ns);
	free(w);
}

/* Ends the stream (the client left, it timed out, or the server stops). */
static void
watcher_end(struct watcher *w)
{
	watcher_unlink(w);
	http_req_on_close(w->req, NULL, NULL);
	http_stream_end(w->req);
	watcher_free(w);
}

static void
on_close(struct http_req *req, void *arg)
{
	watcher_end(arg);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	watcher_end(arg);
}

int
watch_hub_count(const struct watch_hub *h)
{
	const struct watcher *w;
	int n = 0;

	for (w = h->watchers; w; w = w->next)
		n++;
	return n;
}

void
watch_hub_end_streams(struct watch_hub *h)
{
	while (h->watchers)
		watcher_end(h->watchers);
}

static void
on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct watch_hub *h = arg;
	struct watcher *w;

	for (w = h->watchers; w; w = w->next) {
		if (w->bookmarks) {
			struct buf b = BUF_INIT;
			char av[128];

			buf_addf(&b, "{\"type\":\"BOOKMARK\",\"object\":{\"apiVersion\":"
			    "\"%s\",\"kind\":\"%s\",\"metadata\":{\"resourceVersion\":"
			    "\"%lld\"}}}\n", api_resource_api_version(w->res, av, sizeof(av)),
			    w->res->kind, (long long)w->last_rv);
			http_stream_chunk(w->req, b.buf, b.len);
			buf_release(&b);
		} else {
			http_stream_chunk(w->req, "\n", 1);
		}
	}
}

void
watch_hub_set_heartbeat(struct watch_hub *h, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

	if (h->heartbeat) {
		event_free(h->heartbeat);
		h->heartbeat = NULL;
	}
	if (ms <= 0)
		return;
	h->heartbeat = event_new(h->base, -1, EV_PERSIST, on_heartbeat, h);
	event_add(h->heartbeat, &tv);
}

void
watch_hub_free(struct watch_hub *h)
{
	struct sub *s, *sn;

	if (h == NULL)
		return;
	watch_hub_end_streams(h);
	if (h->heartbeat)
		event_free(h->heartbeat);
	for (s = h->subs; s; s = sn) {
		sn = s->next;
		free(s);
	}
	free(h);
}

void
watch_hub_subscribe(struct watch_hub *h, watch_sub_fn fn, void *arg)
{
	struct sub *s = xcalloc(1, sizeof(*s));

	s->fn = fn;
	s->arg = arg;
	s->next = h->subs;
	h->subs = s;
}

/* Sends one event line; returns -1 when the watcher was dropped. */
static int
send_event(struct watcher *w, const char *type, int64_t rv, const cJSON *obj)
{
	struct buf b = BUF_INIT;

	if (rv <= w->last_rv)
		return 0;
	if (!selector_match(w->labels, obj) || !selector_match(w->fields, obj))
		goto done;
	if (http_stream_pending(w->req) > WATCH_MAX_BACKLOG) {
		log_warnx("watch: dropping a client that does not read");
		watcher_end(w);
		return -1;
	}
	buf_addf(&b, "{\"type\":\"%s\",\"object\":", type);
	json_print_compact(obj, &b);
	buf_adds(&b, "}\n");
	http_stream_chunk(w->req, b.buf, b.len);
	buf_release(&b);
done:
	w->last_rv = rv;
	return 0;
}

static int
matches(const struct watcher *w, const struct store_event *ev)
{
	return strcmp(ev->resource, w->res->plural) == 0 &&
	    (w->ns == NULL || strcmp(w->ns, ev->ns) == 0);
}

static int
pump_one(const struct store_event *ev, void *arg)
{
	struct watch_hub *h = arg;
	struct watcher *w, *next;
	struct sub *s;

	for (w = h->watchers; w; w = next) {
		next = w->next;
		if (matches(w, ev))
			send_event(w, store_event_type_name(ev->type), ev->rv, ev->object);
	}
	for (s = h->subs; s; s = s->next)
		s->fn(ev, s->arg);
	h->last_rv = ev->rv;
	return 0;
}

void
watch_hub_pump(struct watch_hub *h)
{
	struct llmd_err e = LLMD_ERR_INIT;

	if (h->pumping)
		return;  /* a subscriber wrote: the outer pump picks it up */
	h->pumping = 1;
	for (;;) {
		int64_t before = h->last_rv;

		if (store_events_since(h->store, h->last_rv, NULL, NULL, pump_one, h, &e) < 0) {
			log_warnx("watch: %s; resynchronising", e.msg);
			h->last_rv = store_current_rv(h->store);
			break;
		}
		if (h->last_rv == before)
			break;
	}
	h->pumping = 0;
}

struct replay {
	struct watcher *w;
	int dropped;
};

static int
replay_one(const struct store_event *ev, void *arg)
{
	struct replay *r = arg;

	if (matches(r->w, ev) &&
	    send_event(r->w, store_event_type_name(ev->type), ev->rv, ev->object) < 0) {
		r->dropped = 1;
		return 1;
	}
	return 0;
}

int
watch_start(struct watch_hub *h, struct http_req *req,
    const struct api_resource *r, const char *ns, struct selector *labels,
    struct selector *fields, int64_t rv, int timeout_s, int bookmarks,
    struct llmd_err *e)
{
	struct watcher *w;
	struct replay rp;
	int64_t from = rv;
	cJSON *items = NULL, *it;
	int rc;

	if (rv == 0) {
		if ((rc = store_list(h->store, r->plural, ns, &items, &from, e)) < 0)
			goto fail;
	} else {
		/* Fails early with -ERANGE (410) before any header is sent. */
		if ((rc = store_events_since(h->store, rv, r->plural, ns, NULL, NULL, e)) < 0)
			goto fail;
	}
	w = xcalloc(1, sizeof(*w));
	w->hub = h;
	w->req = req;
	w->res = r;
	w->ns = ns ? xstrdup(ns) : NULL;
	w->labels = labels;
	w->fields = fields;
	w->bookmarks = bookmarks;
	http_reply_header(req, "Cache-Control", "no-cache, private");
	http_stream_start(req, 200, "application/json");
	http_req_on_close(req, on_close, w);
	w->next = h->watchers;
	h->watchers = w;
	if (items) {
		cJSON_ArrayForEach(it, items) {
			int64_t save = w->last_rv;

			w->last_rv = -1;
			if (send_event(w, "ADDED", 0, it) < 0) {
				cJSON_Delete(items);
				return 0;
			}
			w->last_rv = save;
		}
		cJSON_Delete(items);
	}
	w->last_rv = from;
	/* Replay what is logged after `from` (and not yet pumped). */
	rp.w = w;
	rp.dropped = 0;
	if (store_events_since(h->store, from, r->plural, ns, replay_one, &rp, e) < 0 &&
	    !rp.dropped) {
		watcher_end(w);
		return 0;
	}
	if (!rp.dropped && timeout_s > 0) {
		struct timeval tv = { timeout_s, 0 };

		w->timer = evtimer_new(h->base, on_timeout, w);
		evtimer_add(w->timer, &tv);
	}
	return 0;
fail:
	selector_free(labels);
	selector_free(fields);
	return rc;
}
