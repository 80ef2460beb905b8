/*
 * cli/ssh.h - a blocking SSH client for llmd-admin over libssh2: connect
 * with a timeout, host key checking against an OpenSSH known_hosts file
 * (an unknown key is refused unless its SHA256 fingerprint is given, then
 * recorded; a changed key is always refused), public key authentication
 * (ed25519 or ECDSA keys in OpenSSH format), remote commands with their
 * output and exit status, and SFTP uploads.
 */
#ifndef LLMD_CLI_SSH_H
#define LLMD_CLI_SSH_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

struct ssh_conn;

struct ssh_opts {
	const char *host;            /* name or IP */
	int port;                    /* 0: 22 */
	const char *user;            /* NULL: $USER or root */
	const char *identity;        /* NULL: ~/.ssh/id_ed25519 */
	const char *known_hosts;     /* NULL: ~/.ssh/known_hosts */
	const char *accept_fingerprint;  /* "SHA256:..." for an unknown host key */
	int timeout_s;               /* connect and each operation; 0: 30 */
};

/* e->field names the step: "connect", "handshake", "host key", "auth". */
struct ssh_conn *ssh_connect(const struct ssh_opts *o, struct llmd_err *e);
void ssh_close(struct ssh_conn *c);
/* The server's host key fingerprint, "SHA256:base64". */
const char *ssh_fingerprint(const struct ssh_conn *c);

/*
 * Runs cmd (through the remote user's shell; stderr merged into out when
 * the command says 2>&1). out may be NULL. 0 with *status the exit status.
 */
int ssh_exec(struct ssh_conn *c, const char *cmd, struct buf *out, int *status,
    struct llmd_err *e);
/* Writes data to remote path (mode) over SFTP. */
int ssh_upload_data(struct ssh_conn *c, const void *data, size_t len, const char *remote,
    int mode, struct llmd_err *e);
int ssh_upload_file(struct ssh_conn *c, const char *local, const char *remote, int mode,
    struct llmd_err *e);

/* s quoted for a POSIX shell ('...'), appended to out. */
void ssh_quote(struct buf *out, const char *s);

#endif
