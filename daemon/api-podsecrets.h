/*
 * daemon/api-podsecrets.h - Secret values referenced by a pod, for the
 * agent of the pod's node only (api-podsecrets.c).
 */
#ifndef LLMD_DAEMON_API_PODSECRETS_H
#define LLMD_DAEMON_API_PODSECRETS_H

struct http_req;
struct store;

#define API_PODSECRETS_PATH "/agent/v1/podsecrets"

/* Handles API_PODSECRETS_PATH; 1 when it replied. */
int api_podsecrets_request(struct store *s, struct http_req *req, const char *path);

#endif
