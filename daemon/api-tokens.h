/*
 * daemon/api-tokens.h - the HTTP endpoints that create, list and revoke
 * role tokens (api-tokens.c over daemon/auth.c).
 */
#ifndef LLMD_DAEMON_API_TOKENS_H
#define LLMD_DAEMON_API_TOKENS_H

struct http_req;
struct store;
struct watch_hub;
struct workpool;

#define API_TOKENS_PATH "/auth/v1/tokens"

/*
 * Handles API_TOKENS_PATH[/ID]; 1 when it took the request (creates and
 * revokes are written on wp and answered then; wp NULL: inline). hub may
 * be NULL.
 */
int api_tokens_request(struct store *s, struct watch_hub *hub, struct workpool *wp,
    const char *admin_token, struct http_req *req, const char *path);

#endif
