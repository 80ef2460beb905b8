/*
 * tests/unit/test-notify.c - the sd_notify datagrams reach a test
 * NOTIFY_SOCKET listener (path and abstract), and WATCHDOG_USEC parsing.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/notify.h"

static int
listener(const char *name, int abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	socklen_t len;

	cr_assert_geq(fd, 0);
	if (abstract) {
		sa.sun_path[0] = '\0';
		memcpy(sa.sun_path + 1, name, strlen(name));
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	} else {
		unlink(name);
		memcpy(sa.sun_path, name, strlen(name));
		len = sizeof(sa);
	}
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void
expect_msg(int fd, const char *want)
{
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	cr_assert_gt(n, 0, "no datagram");
	buf[n] = '\0';
	cr_assert_str_eq(buf, want);
}

Test(notify, no_socket_is_noop)
{
	unsetenv("NOTIFY_SOCKET");
	cr_assert_eq(notify_ready(NULL), 0);
}

Test(notify, path_socket)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/llmd-notify-%d", (int)getpid());
	int fd = listener(path, 0);

	setenv("NOTIFY_SOCKET", path, 1);
	cr_assert_eq(notify_ready("serving"), 0);
	expect_msg(fd, "READY=1\nSTATUS=serving");
	cr_assert_eq(notify_watchdog(), 0);
	expect_msg(fd, "WATCHDOG=1");
	cr_assert_eq(notify_stopping(), 0);
	expect_msg(fd, "STOPPING=1");
	close(fd);
	unlink(path);
}

Test(notify, abstract_socket)
{
	char name[64], env[70];
	snprintf(name, sizeof(name), "llmd-notify-abs-%d", (int)getpid());
	int fd = listener(name, 1);

	snprintf(env, sizeof(env), "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	cr_assert_eq(notify_ready(NULL), 0);
	expect_msg(fd, "READY=1");
	close(fd);
}

Test(notify, bad_socket_and_watchdog_env)
{
	char pid[32];

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	cr_assert_lt(notify_ready(NULL), 0);
	setenv("WATCHDOG_USEC", "3000000", 1);
	unsetenv("WATCHDOG_PID");
	cr_assert_eq(notify_watchdog_usec(), 3000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	cr_assert_eq(notify_watchdog_usec(), 0, "another pid's watchdog");
	setenv("WATCHDOG_USEC", "x", 1);
	unsetenv("WATCHDOG_PID");
	cr_assert_eq(notify_watchdog_usec(), 0);
}
