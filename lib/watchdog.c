/*
 * lib/watchdog.c - WATCHDOG=1 keep-alives on a libevent timer (see
 * watchdog.h).
 */
#include "config.h"
#include "lib/watchdog.h"

#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/notify.h"
#include "lib/util.h"

struct watchdog {
	struct event *ev;
};

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_watchdog();
}

struct watchdog *
watchdog_start(struct event_base *base)
{
	uint64_t usec = notify_watchdog_usec(), half = usec / 2;
	struct timeval tv = { (time_t)(half / 1000000), (suseconds_t)(half % 1000000) };
	struct watchdog *w;

	if (usec == 0)
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->ev = event_new(base, -1, EV_PERSIST, on_tick, w);
	event_add(w->ev, &tv);
	notify_watchdog();
	log_debug("systemd watchdog: keep-alive every %llu ms", (unsigned long long)(half / 1000));
	return w;
}

void
watchdog_stop(struct watchdog *w)
{
	if (w == NULL)
		return;
	event_free(w->ev);
	free(w);
}
