/*
 * agent/tls-join.c - the agent's TLS towards the daemon (`--ca FILE` or
 * $LLMD_CA): the cluster CA verifies an https:// server; on first start the
 * agent makes a P-256 key and a CSR, has the daemon sign it
 * (POST /agent/v1/certificatesigningrequests, with its saved credential or
 * else its join token) and keeps DATA/node.crt and DATA/node.key (0600);
 * from then on every call to the daemon is mutual TLS. A daemon that does
 * not run the CA (--tls-cert) leaves the agent with server verification
 * only.
 */
#include "config.h"
#include "agent/tls-join.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/ca.h"
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/util.h"

/* First line of path, malloc'd, or NULL. */
static char *
first_line(const char *path)
{
	char line[4096];
	FILE *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return NULL;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	return *line ? xstrdup(line) : NULL;
}

/* Has the daemon sign a new key's CSR; writes crt and key. */
static int
request_cert(struct agent *a, const char *crt, const char *key, struct llmd_err *e)
{
	struct buf url = BUF_INIT, auth = BUF_INIT, cred_path = BUF_INIT;
	struct http_result res;
	char *csr = NULL, *pkey = NULL, *tok, *body;
	const char *hdrs[5];
	cJSON *o, *resp = NULL;
	const char *pem;
	int rc;

	buf_addf(&cred_path, "%s/credential", a->data_dir);
	if ((tok = first_line(cred_path.buf)) == NULL)
		tok = first_line(a->token_file);
	buf_release(&cred_path);
	if (tok == NULL)
		return err_set(e, -ENOENT, "--token-file", "no credential or join token for the CSR");
	if ((rc = ca_make_csr(a->node, "node", &csr, &pkey, e)) < 0)
		goto out;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "csr", csr);
	cJSON_AddStringToObject(o, "nodeName", a->node);
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	buf_addf(&url, "%s/agent/v1/certificatesigningrequests", a->server);
	buf_addf(&auth, "Bearer %s", tok);
	hdrs[0] = "Authorization";
	hdrs[1] = auth.buf;
	hdrs[2] = "Content-Type";
	hdrs[3] = "application/json";
	hdrs[4] = NULL;
	/* the daemon may be starting: a few tries */
	for (int i = 0; i < 25; i++) {
		rc = http_fetch("POST", url.buf, hdrs, body, strlen(body), 10000, &res, e);
		if (rc == 0 || rc == -EPROTO || i == 24)
			break;
		http_result_release(&res);
		usleep(200 * 1000);
	}
	free(body);
	if (rc < 0)
		goto out_res;
	if (res.status != 201) {
		rc = err_set(e, res.status == 404 ? -ENOTSUP : -EACCES, "csr",
		    "the daemon did not sign (HTTP %d): %.200s", res.status, res.body.buf);
		goto out_res;
	}
	if (json_parse(res.body.buf, res.body.len, &resp, NULL) < 0 ||
	    (pem = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(resp, "certificate"))) ==
	    NULL) {
		rc = err_set(e, -EPROTO, "csr", "unexpected answer to the CSR");
		goto out_res;
	}
	if ((rc = ca_write_file(key, pkey, 0600, e)) == 0)
		rc = ca_write_file(crt, pem, 0644, e);
	if (rc == 0)
		log_info("client certificate for node %s in %s", a->node, crt);
out_res:
	http_result_release(&res);
out:
	cJSON_Delete(resp);
	if (pkey != NULL)
		OPENSSL_cleanse(pkey, strlen(pkey));
	free(pkey);
	free(csr);
	OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
	buf_release(&url);
	buf_release(&auth);
	return rc;
}

int
agent_tls_setup(struct agent *a, const char *ca_file, struct llmd_err *e)
{
	struct buf crt = BUF_INIT, key = BUF_INIT;
	SSL_CTX *ctx;
	int rc = 0;

	if (ca_file == NULL && (ca_file = getenv("LLMD_CA")) != NULL && !*ca_file)
		ca_file = NULL;
	if (ca_file == NULL)
		return 0;
	if ((ctx = tls_client_ctx_new(&(struct tls_client_opts){ .ca = ca_file }, e)) == NULL)
		return e && e->code ? e->code : -EINVAL;
	http_client_set_default_tls(ctx);
	SSL_CTX_free(ctx);
	if (strncmp(a->server, "https://", 8) != 0)
		return 0;
	buf_addf(&crt, "%s/node.crt", a->data_dir);
	buf_addf(&key, "%s/node.key", a->data_dir);
	if (access(crt.buf, R_OK) != 0 || access(key.buf, R_OK) != 0) {
		struct llmd_err ce = LLMD_ERR_INIT;

		if ((rc = request_cert(a, crt.buf, key.buf, &ce)) == -ENOTSUP) {
			log_warnx("no client certificate (%s): server verification only", ce.msg);
			rc = 0;
			goto out;
		}
		if (rc < 0) {
			*e = ce;
			goto out;
		}
	}
	ctx = tls_client_ctx_new(&(struct tls_client_opts){ .ca = ca_file, .cert = crt.buf,
	    .key = key.buf }, e);
	if (ctx == NULL) {
		rc = e && e->code ? e->code : -EINVAL;
		goto out;
	}
	http_client_set_default_tls(ctx);
	SSL_CTX_free(ctx);
out:
	buf_release(&crt);
	buf_release(&key);
	return rc;
}
