/*
 * daemon/api-drain.h - the endpoint an agent drains its own node with
 * (api-drain.c).
 */
#ifndef LLMD_DAEMON_API_DRAIN_H
#define LLMD_DAEMON_API_DRAIN_H

struct http_req;
struct store;
struct watch_hub;
struct workpool;

#define API_DRAIN_PATH "/agent/v1/drain"

/*
 * Handles API_DRAIN_PATH; 1 when it took the request (answered now, or
 * once its writes ran on wp; wp NULL: inline). hub may be NULL.
 */
int api_drain_request(struct store *s, struct watch_hub *hub, struct workpool *wp,
    struct http_req *req, const char *path);

#endif
