/*
 * lib/tls.h - TLS for llmd's HTTP servers and clients (OpenSSL over
 * libevent's bufferevent_openssl): server contexts with optional or required
 * client certificates (mTLS) checked against a CA, client contexts with a CA
 * bundle, an optional client certificate and host name / IP verification,
 * and the verified peer's identity (subject CN and O) for request handlers.
 *
 * Server:
 *	SSL_CTX *ctx = tls_server_ctx_new(&(struct tls_server_opts){
 *	    .cert = "server.crt", .key = "server.key", .client_ca = "ca.crt" }, &e);
 *	http_server_new(base, &(struct http_server_config){
 *	    .make_bev = tls_server_make_bev, .make_bev_arg = ctx }, &e);
 *	// in a handler: http_req_peer_cert(req, cn, sizeof(cn), role, sizeof(role))
 * Client: http_client_config.tls_ctx = tls_client_ctx_new(&(struct
 *	tls_client_opts){ .ca = "ca.crt" }, &e); then "https://" URLs work.
 */
#ifndef LLMD_TLS_H
#define LLMD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "lib/err.h"

struct bufferevent;
struct event_base;
struct http_req;

struct tls_server_opts {
	const char *cert;        /* PEM certificate (chain) file */
	const char *key;         /* PEM private key file */
	/*
	 * CA file for client certificates; NULL: none asked for. A client that
	 * presents one must present a valid one; without require_client_cert a
	 * client may present none (and authenticate with a bearer token).
	 */
	const char *client_ca;
	int require_client_cert;
};

struct tls_client_opts {
	const char *ca;          /* PEM CA bundle; NULL: the system's default paths */
	const char *cert;        /* client certificate for mTLS; NULL: none */
	const char *key;
	int insecure;            /* skip verification (tests and debugging only) */
};

/* Reference-counted contexts: free with SSL_CTX_free(). */
SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *o, struct llmd_err *e);
SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, struct llmd_err *e);

/* For http_server_config.make_bev (arg: the server SSL_CTX). */
struct bufferevent *tls_server_make_bev(struct event_base *base, void *arg);

/*
 * A connecting client bufferevent (no fd yet) for host: SNI for names, and
 * the certificate must name host (DNS SAN, or IP SAN for an IP literal).
 */
struct bufferevent *tls_client_bev(struct event_base *base, SSL_CTX *ctx, const char *host);

/*
 * The verified client certificate of the connection: its subject CN and O
 * (either buffer may be NULL). 0, or -ENOENT when the connection is not TLS
 * or the client presented no certificate.
 */
int tls_peer_identity(struct bufferevent *bev, char *cn, size_t cnlen, char *org,
    size_t orglen);
int http_req_peer_cert(const struct http_req *req, char *cn, size_t cnlen, char *org,
    size_t orglen);

/*
 * TCP_NODELAY on bev's socket (when it has one): TLS writes headers and body
 * as separate records, which Nagle would hold back for a delayed ACK.
 */
void tls_bev_nodelay(struct bufferevent *bev);

/* Why the handshake on bev failed ("certificate verify failed: ..."), or NULL. */
const char *tls_bev_error(struct bufferevent *bev, char *out, size_t outlen);

#endif
