/*
 * router/tls.c - the TLS listener: OpenSSL server context (TLS 1.2+, the
 * certificate chain and key checked at start) and accepted connections
 * wrapped in bufferevent_openssl.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lib/util.h"
#include "router/tls.h"

struct router_tls {
	SSL_CTX *ctx;
};

static int
ssl_fail(struct llmd_err *e, const char *field, const char *what)
{
	char msg[256];

	ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
	return err_set(e, -EINVAL, field, "%s: %s", what, msg);
}

struct router_tls *
router_tls_new(const char *cert_file, const char *key_file, struct llmd_err *e)
{
	struct router_tls *t = xcalloc(1, sizeof(*t));

	t->ctx = SSL_CTX_new(TLS_server_method());
	if (t->ctx == NULL) {
		ssl_fail(e, "tls", "cannot create a TLS context");
		free(t);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
		ssl_fail(e, cert_file, "cannot load the certificate");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_fail(e, key_file, "cannot load the key");
		goto fail;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		ssl_fail(e, key_file, "the key does not match the certificate");
		goto fail;
	}
	return t;
fail:
	SSL_CTX_free(t->ctx);
	free(t);
	return NULL;
}

struct bufferevent *
router_tls_bev(struct event_base *base, void *arg)
{
	struct router_tls *t = arg;
	SSL *ssl = SSL_new(t->ctx);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
}

void
router_tls_free(struct router_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}
