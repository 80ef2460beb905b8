/*
 * lib/watchdog.h - systemd watchdog keep-alives from an event loop: a timer
 * that sends WATCHDOG=1 (lib/notify) every half of the interval systemd
 * asked for ($WATCHDOG_USEC, WatchdogSec= in the unit). A stalled loop
 * stops the keep-alives, and systemd restarts the service.
 */
#ifndef LLMD_WATCHDOG_H
#define LLMD_WATCHDOG_H

struct event_base;
struct watchdog;

/* NULL (and nothing to do) when no watchdog is asked for. */
struct watchdog *watchdog_start(struct event_base *base);
/* NULL ok. */
void watchdog_stop(struct watchdog *w);

#endif
