/*
 * engine/server.h - the HTTP side of `llmd-engine serve` (engine/server.c).
 */
#ifndef LLMD_ENGINE_SERVER_H
#define LLMD_ENGINE_SERVER_H

#include <stdint.h>

#include "engine/serve.h"

struct event_base;
struct event;
struct http_server;
struct workpool;
struct srv_req;

struct engine_server {
	struct serve_config cfg;
	struct engine_core core;
	struct event_base *base;
	struct http_server *http;
	struct event *outbox_ev;
	struct workpool *prep;          /* chat rendering and tokenization off the loop */
	int64_t started;
	struct srv_req *live;           /* generate requests not yet finished */
	size_t n_live;
	int stopping;                   /* the loop ended: finish, don't queue */
};

/* Starts the engine core and serves until SIGTERM/SIGINT; 0 on a clean exit. */
int engine_server_run(struct engine_server *es, const struct serve_config *cfg, struct llmd_err *e);

#endif
