/*
 * agent/daemon-call.c - the agent's authenticated calls to the daemon: the
 * node credential as a bearer token on server+path (agent/control.c,
 * agent/secrets.c, agent/slurm-agent.c).
 */
#include "config.h"

#include <openssl/crypto.h>

#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/http_client.h"

void
agent_auth_header(struct agent *a, struct buf *b)
{
	buf_reset(b);
	buf_addf(b, "Bearer %s", a->credential ? a->credential : "");
}

struct http_client_req *
control_request(struct agent *a, const char *method, const char *path,
    const char *content_type, const char *body, size_t len, http_client_cb cb, void *arg)
{
	struct buf url = BUF_INIT, auth = BUF_INIT;
	const char *hdrs[5] = { "Authorization", NULL, NULL, NULL, NULL };
	struct http_client_req *r;

	buf_addf(&url, "%s%s", a->server, path);
	agent_auth_header(a, &auth);
	hdrs[1] = auth.buf;
	if (content_type != NULL) {
		hdrs[2] = "Content-Type";
		hdrs[3] = content_type;
	}
	r = http_client_request(a->hc, method, url.buf, hdrs, body, len, cb, arg, NULL);
	buf_release(&url);
	OPENSSL_cleanse(auth.buf, auth.len);
	buf_release(&auth);
	return r;
}
