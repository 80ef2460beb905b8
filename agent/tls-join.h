/*
 * agent/tls-join.h - llmd-agent's TLS towards the daemon: the cluster CA
 * (--ca, $LLMD_CA) and a client certificate signed by the daemon on first
 * start (agent/tls-join.c).
 */
#ifndef LLMD_AGENT_TLS_JOIN_H
#define LLMD_AGENT_TLS_JOIN_H

#include "lib/err.h"

struct agent;

/*
 * Before any call to the daemon (it sets lib/http_client's default TLS
 * context). ca_file NULL: $LLMD_CA, else nothing to do (system CAs).
 */
int agent_tls_setup(struct agent *a, const char *ca_file, struct llmd_err *e);

#endif
