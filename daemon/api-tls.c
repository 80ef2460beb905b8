/*
 * daemon/api-tls.c - choosing HTTPS or plain HTTP for the API and preparing
 * the server's TLS context and cluster CA (see api-tls.h).
 */
#include "config.h"
#include "daemon/api-tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api.h"
#include "lib/buf.h"
#include "lib/ca.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/util.h"

int
api_tls_option(struct api_tls_opts *o, int c, const char *arg)
{
	switch (c - API_TLS_OPT_FIRST) {
	case 0: free(o->cert); o->cert = xstrdup(arg); return 1;
	case 1: free(o->key); o->key = xstrdup(arg); return 1;
	case 2: free(o->client_ca); o->client_ca = xstrdup(arg); return 1;
	case 3: o->force = 1; return 1;
	case 4: o->insecure_http = 1; return 1;
	case 5:
		o->sans = xreallocarray(o->sans, o->nsans + 1, sizeof(*o->sans));
		o->sans[o->nsans++] = xstrdup(arg);
		return 1;
	default:
		return 0;
	}
}

void
api_tls_opts_release(struct api_tls_opts *o)
{
	free(o->cert);
	free(o->key);
	free(o->client_ca);
	for (size_t i = 0; i < o->nsans; i++)
		free(o->sans[i]);
	free(o->sans);
	memset(o, 0, sizeof(*o));
}

static void
add_san(char ***v, size_t *n, const char *s)
{
	if (s == NULL || !*s)
		return;
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0)
			return;
	*v = xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

/* Every address of the machine's interfaces (for a wildcard listen). */
static void
add_interface_addrs(char ***v, size_t *n)
{
	struct ifaddrs *ifs, *i;
	char a[INET6_ADDRSTRLEN];

	if (getifaddrs(&ifs) < 0)
		return;
	for (i = ifs; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr,
			    a, sizeof(a));
		else if (i->ifa_addr->sa_family == AF_INET6 &&
		    !IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr))
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr,
			    a, sizeof(a));
		else
			continue;
		add_san(v, n, a);
	}
	freeifaddrs(ifs);
}

static int
is_dns_name(const char *s)
{
	if (!*s || strlen(s) > 253)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

static int
auto_pki(const struct api_tls_opts *o, const char *host, const char *data_dir,
    SSL_CTX **ctx, struct ca **ca, struct llmd_err *e)
{
	struct buf dir = BUF_INIT, crt = BUF_INIT, key = BUF_INIT, cacrt = BUF_INIT;
	char **sans = NULL, hn[256];
	size_t n = 0;
	int rc;

	add_san(&sans, &n, "127.0.0.1");
	add_san(&sans, &n, "::1");
	add_san(&sans, &n, "localhost");
	if (gethostname(hn, sizeof(hn)) == 0 && is_dns_name(hn))
		add_san(&sans, &n, hn);
	if (*host == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
		add_interface_addrs(&sans, &n);
	else
		add_san(&sans, &n, host);
	for (size_t i = 0; i < o->nsans; i++)
		add_san(&sans, &n, o->sans[i]);
	buf_addf(&dir, "%s/pki", data_dir);
	if (mkdir(dir.buf, 0700) < 0 && errno != EEXIST) {
		rc = err_set(e, -errno, dir.buf, "mkdir: %s", strerror(errno));
		goto out;
	}
	if ((rc = ca_ensure_dir(dir.buf, (const char *const *)sans, ca, e)) < 0)
		goto out;
	buf_addf(&crt, "%s/server.crt", dir.buf);
	buf_addf(&key, "%s/server.key", dir.buf);
	buf_addf(&cacrt, "%s/ca.crt", dir.buf);
	*ctx = tls_server_ctx_new(&(struct tls_server_opts){ .cert = crt.buf, .key = key.buf,
	    .client_ca = o->client_ca ? o->client_ca : cacrt.buf }, e);
	if (*ctx == NULL) {
		rc = e && e->code ? e->code : -EINVAL;
		if (ca != NULL) {
			ca_free(*ca);
			*ca = NULL;
		}
	} else {
		log_info("API over HTTPS; clients verify it with %s", cacrt.buf);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(sans[i]);
	free(sans);
	buf_release(&dir);
	buf_release(&crt);
	buf_release(&key);
	buf_release(&cacrt);
	return rc;
}

int
api_tls_setup(const struct api_tls_opts *o, const char *listen, const char *data_dir,
    SSL_CTX **ctx, struct ca **ca, struct llmd_err *e)
{
	char host[256];
	int port;

	*ctx = NULL;
	if (ca != NULL)
		*ca = NULL;
	if (http_parse_hostport(listen, host, sizeof(host), &port) < 0)
		return err_set(e, -EINVAL, "--listen", "expected HOST:PORT, got \"%s\"", listen);
	if ((o->cert != NULL) != (o->key != NULL))
		return err_set(e, -EINVAL, o->cert ? "--tls-key" : "--tls-cert",
		    "--tls-cert and --tls-key go together");
	if (o->cert != NULL) {
		*ctx = tls_server_ctx_new(&(struct tls_server_opts){ .cert = o->cert,
		    .key = o->key, .client_ca = o->client_ca }, e);
		if (*ctx == NULL)
			return e && e->code ? e->code : -EINVAL;
		log_info("API over HTTPS with %s", o->cert);
		return 0;
	}
	if (o->force || (!o->insecure_http && !(*host && api_host_is_loopback(host))))
		return auto_pki(o, host, data_dir, ctx, ca, e);
	if (*host && api_host_is_loopback(host))
		return 0;
	log_warnx("API over plain HTTP on %s (--insecure-http): tokens travel in clear text",
	    listen);
	return 0;
}
