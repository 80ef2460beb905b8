/*
 * lib/notify.h - systemd's readiness protocol without libsystemd: one
 * datagram ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1") to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace). Without $NOTIFY_SOCKET every call is a no-op that
 * returns 0, as sd_notify() does.
 */
#ifndef LLMD_NOTIFY_H
#define LLMD_NOTIFY_H

#include <stdint.h>

/* Sends state (newline-separated assignments); 0, or a negative errno. */
int notify_send(const char *state);
int notify_ready(const char *status);
int notify_stopping(void);
int notify_watchdog(void);
/* The watchdog interval asked for by $WATCHDOG_USEC (for this pid), in
 * microseconds; 0 when none. Keep-alives go out at half of it. */
uint64_t notify_watchdog_usec(void);

#endif
