/*
 * tests/unit/test-watchdog.c - lib/watchdog: keep-alives reach a test
 * NOTIFY_SOCKET while the loop runs; nothing is started without
 * WATCHDOG_USEC.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/watchdog.h"

struct rx {
	struct event_base *base;
	int n;
	int bad;
};

static void
on_dgram(evutil_socket_t fd, short what, void *arg)
{
	struct rx *rx = arg;
	char buf[64];
	ssize_t r;

	(void)what;
	while ((r = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[r] = '\0';
		if (strcmp(buf, "WATCHDOG=1") != 0)
			rx->bad++;
		if (++rx->n >= 3)
			event_base_loopbreak(rx->base);
	}
}

Test(watchdog, keepalives_while_the_loop_runs)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct event_base *base = event_base_new();
	struct rx rx = { .base = base };
	struct watchdog *w;
	struct event *ev;
	char path[64], pid[16];
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	snprintf(path, sizeof(path), "/tmp/llmd-watchdog-%d", (int)getpid());
	unlink(path);
	memcpy(sa.sun_path, path, strlen(path));
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	setenv("WATCHDOG_USEC", "100000", 1);   /* keep-alive every 50 ms */
	ev = event_new(base, fd, EV_READ | EV_PERSIST, on_dgram, &rx);
	event_add(ev, NULL);
	w = watchdog_start(base);
	cr_assert_not_null(w);
	/* until three keep-alives came (a safety net, not a timing check) */
	event_base_loopexit(base, &(struct timeval){ 30, 0 });
	event_base_dispatch(base);
	cr_assert_geq(rx.n, 3, "%d keep-alives", rx.n);
	cr_assert_eq(rx.bad, 0);
	event_free(ev);
	watchdog_stop(w);

	unsetenv("WATCHDOG_USEC");
	cr_assert_null(watchdog_start(base));
	watchdog_stop(NULL);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_PID");
	event_base_free(base);
	close(fd);
	unlink(path);
}
