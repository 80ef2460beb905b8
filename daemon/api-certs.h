/*
 * daemon/api-certs.h - the API's certificate endpoints: the cluster CA
 * certificate and signing of agents' (and routers') CSRs (api-certs.c).
 */
#ifndef LLMD_DAEMON_API_CERTS_H
#define LLMD_DAEMON_API_CERTS_H

struct ca;
struct http_req;
struct store;

#define API_CERTS_CA_PATH "/agent/v1/ca"
#define API_CERTS_CSR_PATH "/agent/v1/certificatesigningrequests"

/* The CA that signs (not owned); NULL: the endpoints answer 404. */
void api_certs_set_ca(struct ca *ca);
/* Handles the two paths above; 1 when it replied. */
int api_certs_request(struct store *s, const char *admin_token, struct http_req *req,
    const char *path);

#endif
