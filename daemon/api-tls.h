/*
 * daemon/api-tls.h - how llmd serves its API: HTTPS with a given
 * certificate (--tls-cert/--tls-key, client certificates checked against
 * --client-ca), or with the cluster CA it creates in DATA_DIR/pki on first
 * start (ca.crt, ca.key, server.crt, server.key), or plain HTTP, which is
 * only allowed on a loopback address or with --insecure-http.
 *
 *	automatic HTTPS: a non-loopback --listen, or --tls
 *	plain HTTP:      a loopback --listen (development, tests), --insecure-http
 *
 * The auto certificate names the listen address, localhost, 127.0.0.1, ::1,
 * the host name, every local interface address (for a wildcard listen) and
 * each --tls-san.
 */
#ifndef LLMD_DAEMON_API_TLS_H
#define LLMD_DAEMON_API_TLS_H

#include <getopt.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "lib/err.h"

struct ca;

struct api_tls_opts {
	char *cert, *key, *client_ca;
	char **sans;
	size_t nsans;
	int force;              /* --tls */
	int insecure_http;      /* --insecure-http */
};

/* getopt_long entries (values API_TLS_OPT_FIRST..) and help text for llmd. */
#define API_TLS_OPT_FIRST 0x300
#define API_TLS_LONGOPTS \
	{ "tls-cert", required_argument, NULL, API_TLS_OPT_FIRST }, \
	{ "tls-key", required_argument, NULL, API_TLS_OPT_FIRST + 1 }, \
	{ "client-ca", required_argument, NULL, API_TLS_OPT_FIRST + 2 }, \
	{ "tls", no_argument, NULL, API_TLS_OPT_FIRST + 3 }, \
	{ "insecure-http", no_argument, NULL, API_TLS_OPT_FIRST + 4 }, \
	{ "tls-san", required_argument, NULL, API_TLS_OPT_FIRST + 5 }
#define API_TLS_USAGE \
	"      --tls                   HTTPS even on loopback (cluster CA in DATA_DIR/pki)\n" \
	"      --tls-cert FILE         serve HTTPS with this certificate (and --tls-key)\n" \
	"      --tls-key FILE          its private key\n" \
	"      --client-ca FILE        verify client certificates against this CA\n" \
	"      --tls-san NAME|IP       extra name in the automatic server certificate\n" \
	"      --insecure-http         plain HTTP on a non-loopback address\n"

/* Takes the option c of getopt_long; 1 when it was one of ours. */
int api_tls_option(struct api_tls_opts *o, int c, const char *arg);

/*
 * Decides and prepares HTTPS for listen ("HOST:PORT"). *ctx: the server
 * context, or NULL for plain HTTP. *ca (may be NULL): the cluster CA when
 * llmd holds its key (automatic mode), for signing node CSRs.
 */
int api_tls_setup(const struct api_tls_opts *o, const char *listen, const char *data_dir,
    SSL_CTX **ctx, struct ca **ca, struct llmd_err *e);
void api_tls_opts_release(struct api_tls_opts *o);

#endif
