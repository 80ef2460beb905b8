/*
 * lib/ca.h - the cluster certificate authority (OpenSSL): an EC P-256 key
 * and a self-signed CA certificate (10 years), server certificates with
 * subjectAltNames (IP addresses and DNS names), and client certificates
 * signed from a CSR whose subject the CA decides (CN = node name, O = role),
 * never the requester. Everything is PEM text; files with keys are written
 * 0600.
 *
 * Typical use (the daemon's data dir):
 *	struct ca *ca;
 *	ca_ensure_dir(dir, (const char *[]){ "127.0.0.1", "ctl1", NULL }, &ca, &e);
 *	// dir/ca.crt ca.key server.crt server.key now exist
 *	ca_sign_csr(ca, csr_pem, "node1", "node", 365, &crt_pem, &e);
 */
#ifndef LLMD_CA_H
#define LLMD_CA_H

#include "lib/err.h"

struct ca;

/* A new CA key and self-signed certificate with CN cn, valid `days` days. */
struct ca *ca_create(const char *cn, int days, struct llmd_err *e);
/* A CA from PEM files (the key must match the certificate). */
struct ca *ca_load(const char *cert_path, const char *key_path, struct llmd_err *e);
/* Writes the certificate (0644) and the key (0600), replacing atomically. */
int ca_save(const struct ca *ca, const char *cert_path, const char *key_path,
    struct llmd_err *e);
void ca_free(struct ca *ca);
/* The CA certificate in PEM; caller frees. */
char *ca_cert_pem(const struct ca *ca);

/*
 * A server certificate (serverAuth, and clientAuth for daemons that call
 * each other) for cn with subjectAltNames: each entry of sans (NULL
 * terminated) is an IP literal (v4/v6) or a DNS name. A new P-256 key.
 * *cert_pem and *key_pem are malloc'd.
 */
int ca_issue_server(const struct ca *ca, const char *cn, const char *const *sans, int days,
    char **cert_pem, char **key_pem, struct llmd_err *e);

/*
 * Signs a PEM CSR (its self-signature is checked) as a client certificate
 * (clientAuth) with subject CN=cn, O=org (org may be NULL); the CSR's own
 * subject and extensions are ignored. *cert_pem is malloc'd.
 */
int ca_sign_csr(const struct ca *ca, const char *csr_pem, const char *cn, const char *org,
    int days, char **cert_pem, struct llmd_err *e);

/* A new P-256 key and a CSR for CN=cn, O=org (NULL: none); both malloc'd PEM. */
int ca_make_csr(const char *cn, const char *org, char **csr_pem, char **key_pem,
    struct llmd_err *e);

/*
 * The daemon's TLS material in dir: loads ca.crt/ca.key, or creates them
 * ("llmd cluster CA", 10 years); then, unless server.crt/server.key exist,
 * issues a server certificate (CN llmd, 825 days) for sans (NULL
 * terminated; delete the two files to renew). *out (may be NULL) gets the CA.
 */
int ca_ensure_dir(const char *dir, const char *const *sans, struct ca **out,
    struct llmd_err *e);

/* Writes text to path with mode, atomically (path.tmp + rename). */
int ca_write_file(const char *path, const char *text, int mode, struct llmd_err *e);

#endif
