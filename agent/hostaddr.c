/*
 * agent/hostaddr.c - the address this host reaches the daemon from: the
 * default for --address (where pods are reached), as a kubelet takes its
 * node IP from the default route. A UDP socket "connected" to the server
 * sends nothing; getsockname() then names the source address the kernel's
 * routing picked. Runs once before the event loop starts (its DNS lookup
 * may block).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/http.h>

#include "agent/agent.h"

int
agent_route_address(const char *server_url, char *out, size_t outlen)
{
	struct evhttp_uri *u = server_url ? evhttp_uri_parse(server_url) : NULL;
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *host;
	char port[8];
	int fd = -1, rc = -EINVAL;

	if (u == NULL || (host = evhttp_uri_get_host(u)) == NULL)
		goto out;
	snprintf(port, sizeof(port), "%d", evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		rc = -EHOSTUNREACH;
		goto out;
	}
	if ((fd = socket(ai->ai_family, SOCK_DGRAM, 0)) < 0 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		rc = -errno;
		goto out;
	}
	if (ss.ss_family == AF_INET)
		rc = inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out,
		    (socklen_t)outlen) ? 0 : -ENOSPC;
	else if (ss.ss_family == AF_INET6)
		rc = inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
		    (socklen_t)outlen) ? 0 : -ENOSPC;
	else
		rc = -EAFNOSUPPORT;
out:
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	if (u)
		evhttp_uri_free(u);
	return rc;
}
