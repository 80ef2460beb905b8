/*
 * lib/tls.c - OpenSSL contexts and bufferevents for llmd's HTTPS servers
 * and clients, and the peer certificate's identity (see tls.h).
 */
#include "config.h"
#include "lib/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/http_server.h"
#include "lib/log.h"

static const char *
ssl_reason(char *out, size_t outlen)
{
	unsigned long code = ERR_peek_last_error();

	if (code == 0)
		snprintf(out, outlen, "unknown OpenSSL error");
	else
		ERR_error_string_n(code, out, outlen);
	ERR_clear_error();
	return out;
}

static SSL_CTX *
base_ctx(const SSL_METHOD *m)
{
	SSL_CTX *ctx = SSL_CTX_new(m);

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

static int
load_pair(SSL_CTX *ctx, const char *cert, const char *key, struct llmd_err *e)
{
	char why[256];

	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return err_set(e, -EINVAL, cert, "cannot load the certificate: %s",
		    ssl_reason(why, sizeof(why)));
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return err_set(e, -EINVAL, key, "cannot load the private key: %s",
		    ssl_reason(why, sizeof(why)));
	if (SSL_CTX_check_private_key(ctx) != 1)
		return err_set(e, -EINVAL, key, "the key does not match %s", cert);
	return 0;
}

SSL_CTX *
tls_server_ctx_new(const struct tls_server_opts *o, struct llmd_err *e)
{
	SSL_CTX *ctx = base_ctx(TLS_server_method());
	char why[256];

	if (ctx == NULL) {
		err_set(e, -ENOMEM, "", "SSL_CTX_new: %s", ssl_reason(why, sizeof(why)));
		return NULL;
	}
	if (load_pair(ctx, o->cert, o->key, e) < 0)
		goto fail;
	if (o->client_ca != NULL) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca);

		if (SSL_CTX_load_verify_locations(ctx, o->client_ca, NULL) != 1 || names == NULL) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			err_set(e, -EINVAL, o->client_ca, "cannot load the client CA: %s",
			    ssl_reason(why, sizeof(why)));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    (o->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
		SSL_CTX_set_verify_depth(ctx, 4);
		/* client certificates must be for clients */
		SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx_new(const struct tls_client_opts *o, struct llmd_err *e)
{
	SSL_CTX *ctx = base_ctx(TLS_client_method());
	char why[256];
	int ok;

	if (ctx == NULL) {
		err_set(e, -ENOMEM, "", "SSL_CTX_new: %s", ssl_reason(why, sizeof(why)));
		return NULL;
	}
	ok = o != NULL && o->ca != NULL ? SSL_CTX_load_verify_locations(ctx, o->ca, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		err_set(e, -EINVAL, o && o->ca ? o->ca : "", "cannot load the CA bundle: %s",
		    ssl_reason(why, sizeof(why)));
		goto fail;
	}
	if (o != NULL && o->cert != NULL && load_pair(ctx, o->cert, o->key ? o->key : o->cert,
	    e) < 0)
		goto fail;
	SSL_CTX_set_verify(ctx, o != NULL && o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
	    NULL);
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct bufferevent *
tls_server_make_bev(struct event_base *base, void *arg)
{
	SSL *ssl = SSL_new(arg);

	if (ssl == NULL)
		return NULL;
	/* frees ssl on failure and with the bufferevent */
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
}

static int
is_ip(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

struct bufferevent *
tls_client_bev(struct event_base *base, SSL_CTX *ctx, const char *host)
{
	SSL *ssl = SSL_new(ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	if (is_ip(host)) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1)
			goto fail;
	} else {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
			goto fail;
	}
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
fail:
	SSL_free(ssl);
	return NULL;
}

static void
name_entry(X509_NAME *n, int nid, char *out, size_t outlen)
{
	int i;
	const ASN1_STRING *s;
	size_t len;

	if (out == NULL || outlen == 0)
		return;
	out[0] = '\0';
	if ((i = X509_NAME_get_index_by_NID(n, nid, -1)) < 0)
		return;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
	len = (size_t)ASN1_STRING_length(s);
	if (len >= outlen || memchr(ASN1_STRING_get0_data(s), '\0', len) != NULL)
		return;  /* too long or embedded NUL: no identity */
	memcpy(out, ASN1_STRING_get0_data(s), len);
	out[len] = '\0';
}

int
tls_peer_identity(struct bufferevent *bev, char *cn, size_t cnlen, char *org, size_t orglen)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *x;

	if (cn != NULL && cnlen > 0)
		cn[0] = '\0';
	if (org != NULL && orglen > 0)
		org[0] = '\0';
	if (ssl == NULL || (x = SSL_get0_peer_certificate(ssl)) == NULL ||
	    SSL_get_verify_result(ssl) != X509_V_OK)
		return -ENOENT;
	name_entry(X509_get_subject_name(x), NID_commonName, cn, cnlen);
	name_entry(X509_get_subject_name(x), NID_organizationName, org, orglen);
	return 0;
}

int
http_req_peer_cert(const struct http_req *req, char *cn, size_t cnlen, char *org, size_t orglen)
{
	return tls_peer_identity(http_req_bufferevent(req), cn, cnlen, org, orglen);
}

void
tls_bev_nodelay(struct bufferevent *bev)
{
	int one = 1;
	evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

const char *
tls_bev_error(struct bufferevent *bev, char *out, size_t outlen)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	unsigned long code;
	long vr;

	if (ssl == NULL)
		return NULL;
	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		snprintf(out, outlen, "certificate verify failed: %s",
		    X509_verify_cert_error_string(vr));
		return out;
	}
	code = bufferevent_get_openssl_error(bev);
	if (code == 0)
		return NULL;
	ERR_error_string_n(code, out, outlen);
	return out;
}
