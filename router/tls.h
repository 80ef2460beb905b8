/*
 * router/tls.h - the optional TLS listener: an OpenSSL server context from a
 * PEM certificate chain and key, and the bufferevent factory that
 * http_server_config.make_bev calls for each accepted connection.
 */
#ifndef LLMD_ROUTER_TLS_H
#define LLMD_ROUTER_TLS_H

#include "lib/err.h"

struct event_base;
struct bufferevent;
struct router_tls;

struct router_tls *router_tls_new(const char *cert_file, const char *key_file,
    struct llmd_err *e);
/* make_bev callback; arg is the struct router_tls. */
struct bufferevent *router_tls_bev(struct event_base *base, void *arg);
void router_tls_free(struct router_tls *t);

#endif
