/*
 * tests/unit/test-tls.c - lib/ca (CA creation, server certificates with
 * SANs, CSR signing, files) and lib/tls (HTTPS between lib/http_server and
 * lib/http_client over loopback: server verification, SAN mismatch, mTLS
 * with the peer's identity, unknown CAs refused on both sides).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/buf.h"
#include "lib/ca.h"
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/tls.h"
#include "lib/util.h"

static char dir[64];

static char *
path(const char *name)
{
	static char p[8][128];
	static int i;

	i = (i + 1) % 8;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void
write_text(const char *name, const char *text)
{
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(ca_write_file(path(name), text, 0600, &e), 0, "%s", e.msg);
}

/* ---- PKI fixture: a cluster CA, an unknown CA, certificates ---- */

static void
issue_server(struct ca *ca, const char *prefix, const char *const *sans)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char *crt, *key, name[64];

	cr_assert_eq(ca_issue_server(ca, "llmd", sans, 30, &crt, &key, &e), 0, "%s", e.msg);
	snprintf(name, sizeof(name), "%s.crt", prefix);
	write_text(name, crt);
	snprintf(name, sizeof(name), "%s.key", prefix);
	write_text(name, key);
	free(crt);
	free(key);
}

static void
issue_client(struct ca *ca, const char *prefix, const char *cn, const char *org)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char *csr, *key, *crt, name[64];

	cr_assert_eq(ca_make_csr("ignored", "admin", &csr, &key, &e), 0, "%s", e.msg);
	cr_assert_eq(ca_sign_csr(ca, csr, cn, org, 30, &crt, &e), 0, "%s", e.msg);
	snprintf(name, sizeof(name), "%s.crt", prefix);
	write_text(name, crt);
	snprintf(name, sizeof(name), "%s.key", prefix);
	write_text(name, key);
	free(csr);
	free(key);
	free(crt);
}

static void
make_pki(void)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct ca *ca, *evil;

	snprintf(dir, sizeof(dir), "/tmp/llmd-test-tls.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	ca = ca_create("test cluster CA", 30, &e);
	cr_assert_not_null(ca, "%s", e.msg);
	evil = ca_create("test cluster CA", 30, &e);   /* same name, other key */
	cr_assert_not_null(evil, "%s", e.msg);
	cr_assert_eq(ca_save(ca, path("ca.crt"), path("ca.key"), &e), 0, "%s", e.msg);
	cr_assert_eq(ca_save(evil, path("evil.crt"), path("evil.key"), &e), 0, "%s", e.msg);
	issue_server(ca, "server", (const char *[]){ "127.0.0.1", "llmd.test", NULL });
	issue_server(ca, "other", (const char *[]){ "10.9.9.9", "other.test", NULL });
	issue_server(evil, "evilserver", (const char *[]){ "127.0.0.1", NULL });
	issue_client(ca, "node1", "node1", "node");
	issue_client(evil, "mallory", "node1", "node");
	ca_free(ca);
	ca_free(evil);
}

static void
rm_pki(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ---- an HTTPS server on its own thread ---- */

static struct event_base *base;
static struct http_server *srv;
static SSL_CTX *srv_ctx;
static pthread_t th;
static int port;

static void *
loop_main(void *arg)
{
	event_base_dispatch(arg);
	return NULL;
}

/* Replies "CN/O" of the client certificate, or "anonymous". */
static void
h_whoami(struct http_req *req, void *arg)
{
	char cn[64], org[64], out[160];

	(void)arg;
	if (http_req_peer_cert(req, cn, sizeof(cn), org, sizeof(org)) == 0)
		snprintf(out, sizeof(out), "%s/%s", cn, org);
	else
		snprintf(out, sizeof(out), "anonymous");
	http_reply_data(req, 200, "text/plain", out, strlen(out));
}

static void
start_https(const char *cert_prefix, int require_client_cert)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char crt[64], key[64];

	snprintf(crt, sizeof(crt), "%s.crt", cert_prefix);
	snprintf(key, sizeof(key), "%s.key", cert_prefix);
	srv_ctx = tls_server_ctx_new(&(struct tls_server_opts){ .cert = path(crt),
	    .key = path(key), .client_ca = path("ca.crt"),
	    .require_client_cert = require_client_cert }, &e);
	cr_assert_not_null(srv_ctx, "%s", e.msg);
	evthread_use_pthreads();
	base = event_base_new();
	srv = http_server_new(base, &(struct http_server_config){
	    .make_bev = tls_server_make_bev, .make_bev_arg = srv_ctx }, &e);
	cr_assert_not_null(srv, "%s", e.msg);
	http_server_route(srv, "GET", "/whoami", h_whoami, NULL);
	port = http_server_listen(srv, "127.0.0.1:0", &e);
	cr_assert_gt(port, 0, "%s", e.msg);
	pthread_create(&th, NULL, loop_main, base);
}

static void
stop_https(void)
{
	event_base_loopexit(base, NULL);
	pthread_join(th, NULL);
	http_server_free(srv);
	event_base_free(base);
	SSL_CTX_free(srv_ctx);
}

static void setup_optional(void) { make_pki(); start_https("server", 0); }
static void setup_required(void) { make_pki(); start_https("server", 1); }
static void setup_other_name(void) { make_pki(); start_https("other", 0); }
static void setup_evil_server(void) { make_pki(); start_https("evilserver", 0); }
static void teardown(void) { stop_https(); rm_pki(); }

/* ---- a synchronous client call with a given TLS context ---- */

struct result {
	struct event_base *base;
	int status;
	struct buf body;
	struct llmd_err e;
};

static void
on_resp(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct result *r = arg;

	if (resp != NULL) {
		r->status = resp->status;
		buf_add(&r->body, resp->body, resp->body_len);
	} else {
		r->e = *e;
	}
	event_base_loopexit(r->base, NULL);
}

/* GETs url (path appended to https://host:port) twice on one client. */
static int
get(SSL_CTX *ctx, const char *host, const char *const *hdrs, struct result *r)
{
	struct http_client *c;
	char url[128];

	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
	r->base = event_base_new();
	c = http_client_new(r->base, &(struct http_client_config){ .timeout_ms = 5000,
	    .tls_ctx = ctx });
	snprintf(url, sizeof(url), "https://%s:%d/whoami", host, port);
	cr_assert_not_null(http_client_request(c, "GET", url, hdrs, NULL, 0, on_resp, r,
	    &r->e), "%s", r->e.msg);
	event_base_dispatch(r->base);
	http_client_free(c);
	event_base_free(r->base);
	return r->status > 0 ? 0 : r->e.code;
}

static SSL_CTX *
client_ctx(const char *ca, const char *cert_prefix)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char crt[64], key[64];
	SSL_CTX *ctx;

	snprintf(crt, sizeof(crt), "%s.crt", cert_prefix ? cert_prefix : "");
	snprintf(key, sizeof(key), "%s.key", cert_prefix ? cert_prefix : "");
	ctx = tls_client_ctx_new(&(struct tls_client_opts){ .ca = path(ca),
	    .cert = cert_prefix ? path(crt) : NULL, .key = cert_prefix ? path(key) : NULL }, &e);
	cr_assert_not_null(ctx, "%s", e.msg);
	return ctx;
}

/* ---- tests ---- */

Test(tls, server_verified_by_the_cluster_ca, .init = setup_optional, .fini = teardown)
{
	SSL_CTX *ctx = client_ctx("ca.crt", NULL);
	struct result r;

	cr_assert_eq(get(ctx, "127.0.0.1", NULL, &r), 0, "%s", r.e.msg);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body.buf, "anonymous");
	buf_release(&r.body);
	SSL_CTX_free(ctx);
}

Test(tls, mtls_peer_identity_reaches_the_handler, .init = setup_optional, .fini = teardown)
{
	SSL_CTX *ctx = client_ctx("ca.crt", "node1");
	struct result r;

	cr_assert_eq(get(ctx, "127.0.0.1", NULL, &r), 0, "%s", r.e.msg);
	cr_assert_eq(r.status, 200);
	/* the CA's choice of subject, not the CSR's (CN=ignored, O=admin) */
	cr_assert_str_eq(r.body.buf, "node1/node");
	buf_release(&r.body);
	SSL_CTX_free(ctx);
}

Test(tls, client_cert_of_an_unknown_ca_is_refused, .init = setup_optional, .fini = teardown)
{
	SSL_CTX *ctx = client_ctx("ca.crt", "mallory");
	struct result r;

	cr_assert_lt(get(ctx, "127.0.0.1", NULL, &r), 0);
	cr_assert_eq(r.status, 0);
	buf_release(&r.body);
	SSL_CTX_free(ctx);
}

Test(tls, required_client_cert_missing_is_refused, .init = setup_required, .fini = teardown)
{
	SSL_CTX *anon = client_ctx("ca.crt", NULL), *node = client_ctx("ca.crt", "node1");
	struct result r;

	cr_assert_lt(get(anon, "127.0.0.1", NULL, &r), 0);
	buf_release(&r.body);
	cr_assert_eq(get(node, "127.0.0.1", NULL, &r), 0, "%s", r.e.msg);
	cr_assert_str_eq(r.body.buf, "node1/node");
	buf_release(&r.body);
	SSL_CTX_free(anon);
	SSL_CTX_free(node);
}

Test(tls, san_mismatch_is_refused, .init = setup_other_name, .fini = teardown)
{
	SSL_CTX *ctx = client_ctx("ca.crt", NULL);
	struct result r;

	cr_assert_eq(get(ctx, "127.0.0.1", NULL, &r), -EPROTO, "%s", r.e.msg);
	cr_assert(strstr(r.e.msg, "TLS") != NULL, "%s", r.e.msg);
	buf_release(&r.body);
	SSL_CTX_free(ctx);
}

Test(tls, server_of_an_unknown_ca_is_refused, .init = setup_evil_server, .fini = teardown)
{
	SSL_CTX *ctx = client_ctx("ca.crt", NULL);
	struct result r;

	cr_assert_eq(get(ctx, "127.0.0.1", NULL, &r), -EPROTO, "%s", r.e.msg);
	cr_assert(strstr(r.e.msg, "certificate verify failed") != NULL, "%s", r.e.msg);
	buf_release(&r.body);
	SSL_CTX_free(ctx);
}

Test(tls, reconnects_after_the_server_closes, .init = setup_optional, .fini = teardown)
{
	SSL_CTX *ctx = client_ctx("ca.crt", "node1");
	struct http_client *c;
	struct result r[3];
	char url[128];

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/whoami", port);
	memset(r, 0, sizeof(r));
	r[0].base = event_base_new();
	c = http_client_new(r[0].base, &(struct http_client_config){ .tls_ctx = ctx });
	for (int i = 0; i < 3; i++) {
		/* the first reply closes the connection: the next request reconnects */
		const char *hdrs[] = { "Connection", i == 0 ? "close" : "keep-alive", NULL };
		buf_init(&r[i].body, 0);
		r[i].base = r[0].base;
		cr_assert_not_null(http_client_request(c, "GET", url, hdrs, NULL, 0, on_resp,
		    &r[i], &r[i].e));
		event_base_dispatch(r[0].base);
		cr_assert_eq(r[i].status, 200, "request %d: %s", i, r[i].e.msg);
		cr_assert_str_eq(r[i].body.buf, "node1/node");
		buf_release(&r[i].body);
	}
	http_client_free(c);
	event_base_free(r[0].base);
	SSL_CTX_free(ctx);
}

Test(tls, default_context_serves_http_fetch, .init = setup_optional, .fini = teardown)
{
	SSL_CTX *ctx = client_ctx("ca.crt", "node1");
	struct llmd_err e = LLMD_ERR_INIT;
	struct http_result res;
	char url[128];

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/whoami", port);
	http_client_set_default_tls(ctx);
	SSL_CTX_free(ctx);
	cr_assert_eq(http_fetch("GET", url, NULL, NULL, 0, 5000, &res, &e), 0, "%s", e.msg);
	cr_assert_str_eq(res.body.buf, "node1/node");
	http_result_release(&res);
	http_client_set_default_tls(NULL);
}

/* ---- the CA on its own ---- */

static X509 *
read_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	cr_assert_not_null(x);
	return x;
}

Test(ca, csr_subject_is_the_cas_choice)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct ca *ca = ca_create("t", 1, &e);
	char *csr, *key, *crt, *capem, cn[64], org[64];
	X509 *x, *cax;

	cr_assert_not_null(ca, "%s", e.msg);
	cr_assert_eq(ca_make_csr("admin", "admin", &csr, &key, &e), 0, "%s", e.msg);
	cr_assert(strstr(csr, "BEGIN CERTIFICATE REQUEST") != NULL);
	cr_assert_eq(ca_sign_csr(ca, csr, "gpu-7", "node", 10, &crt, &e), 0, "%s", e.msg);
	x = read_cert(crt);
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, org,
	    sizeof(org));
	cr_assert_str_eq(cn, "gpu-7");
	cr_assert_str_eq(org, "node");
	capem = ca_cert_pem(ca);
	cax = read_cert(capem);
	cr_assert_eq(X509_verify(x, X509_get0_pubkey(cax)), 1);
	cr_assert_eq(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);
	cr_assert_neq(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
	cr_assert_eq(X509_check_ca(cax), 1);
	cr_assert_eq(X509_check_ca(x), 0);
	X509_free(x);
	X509_free(cax);
	free(crt);
	free(capem);

	/* garbage and truncated requests are refused */
	cr_assert_eq(ca_sign_csr(ca, "hello", "n", "node", 1, &crt, &e), -EINVAL);
	cr_assert_null(crt);
	csr[strlen(csr) / 2] = '\0';
	cr_assert_eq(ca_sign_csr(ca, csr, "n", "node", 1, &crt, &e), -EINVAL);
	free(csr);
	OPENSSL_cleanse(key, strlen(key));
	free(key);
	ca_free(ca);
}

Test(ca, server_cert_sans_and_bad_names)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct ca *ca = ca_create("t", 1, &e);
	char *crt, *key;
	X509 *x;

	cr_assert_eq(ca_issue_server(ca, "llmd", (const char *[]){ "10.0.0.5", "::1",
	    "ctl.example", NULL }, 10, &crt, &key, &e), 0, "%s", e.msg);
	x = read_cert(crt);
	cr_assert_eq(X509_check_ip_asc(x, "10.0.0.5", 0), 1);
	cr_assert_eq(X509_check_ip_asc(x, "::1", 0), 1);
	cr_assert_eq(X509_check_ip_asc(x, "10.0.0.6", 0), 0);
	cr_assert_eq(X509_check_host(x, "ctl.example", 0, 0, NULL), 1);
	cr_assert_eq(X509_check_host(x, "evil.example", 0, 0, NULL), 0);
	X509_free(x);
	free(crt);
	free(key);
	cr_assert_eq(ca_issue_server(ca, "llmd", (const char *[]){ "a,DNS:evil", NULL }, 10,
	    &crt, &key, &e), -EINVAL);
	cr_assert_str_eq(e.field, "sans");
	ca_free(ca);
}

Test(ca, ensure_dir_creates_once_and_keeps_keys_private)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct ca *ca = NULL, *again = NULL;
	char *pem1, *pem2;
	struct stat st, st2;

	snprintf(dir, sizeof(dir), "/tmp/llmd-test-ca.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(ca_ensure_dir(dir, (const char *[]){ "127.0.0.1", NULL }, &ca, &e), 0,
	    "%s", e.msg);
	cr_assert_eq(stat(path("ca.key"), &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(stat(path("server.key"), &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(stat(path("server.crt"), &st), 0);
	cr_assert_eq(ca_ensure_dir(dir, NULL, &again, &e), 0, "%s", e.msg);
	cr_assert_eq(stat(path("server.crt"), &st2), 0);
	cr_assert_eq(st.st_ino, st2.st_ino, "the server certificate was reissued");
	pem1 = ca_cert_pem(ca);
	pem2 = ca_cert_pem(again);
	cr_assert_str_eq(pem1, pem2);
	free(pem1);
	free(pem2);
	ca_free(ca);
	ca_free(again);

	/* a key that is not the certificate's is refused */
	cr_assert_eq(rename(path("server.key"), path("ca.key")), 0);
	cr_assert_null(ca_load(path("ca.crt"), path("ca.key"), &e));
	cr_assert(strstr(e.msg, "does not match") != NULL, "%s", e.msg);
	rm_pki();
}
