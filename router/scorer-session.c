/*
 * router/scorer-session.c - session-affinity-scorer: the x-session-token
 * header is base64("pool/host:port") of the endpoint that served the
 * session before (the router sets it on responses); that endpoint scores 1,
 * the others 0.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/util.h"
#include "router/picker.h"

char *
session_token(const char *pool, const char *addr)
{
	size_t n = strlen(pool) + strlen(addr) + 2;
	char *raw = xmalloc(n), *out = xmalloc(4 * ((n + 2) / 3) + 1);

	snprintf(raw, n, "%s/%s", pool, addr);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, (int)strlen(raw));
	free(raw);
	return out;
}

static void
score_session(const struct pick_ctx *ctx, double *out)
{
	const char *tok = ctx->req->session;
	char *mine;

	for (size_t i = 0; i < ctx->n; i++) {
		out[i] = 0;
		if (tok == NULL)
			continue;
		mine = session_token(ctx->pool->name, ctx->c[i]->addr);
		if (strcmp(mine, tok) == 0)
			out[i] = 1.0;
		free(mine);
	}
}

const struct scorer scorer_session_affinity = {
	"session-affinity-scorer", offsetof(struct sched_config, w_session), score_session,
};
