/*
 * cli/ssh.c - libssh2 sessions for llmd-admin: connect, known_hosts,
 * public key auth, exec and SFTP upload (see ssh.h).
 */
#include "config.h"
#include "cli/ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/evp.h>

#include "lib/util.h"

struct ssh_conn {
	int fd;
	LIBSSH2_SESSION *s;
	LIBSSH2_SFTP *sftp;
	char host[256];
	char fp[64];
};

static const char *
sess_err(LIBSSH2_SESSION *s)
{
	char *msg = NULL;

	libssh2_session_last_error(s, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown libssh2 error";
}

void
ssh_quote(struct buf *out, const char *s)
{
	buf_adds(out, "'");
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(out, "'\\''");
		else
			buf_add(out, s, 1);
	}
	buf_adds(out, "'");
}

static int
tcp_connect(const char *host, int port, int timeout_s, struct llmd_err *e)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char ps[16];
	int fd = -1, rc, err = ECONNREFUSED;

	snprintf(ps, sizeof(ps), "%d", port);
	if ((rc = getaddrinfo(host, ps, &hints, &res)) != 0)
		return err_set(e, -EHOSTUNREACH, "connect", "%s: %s", host, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t sl = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			fd = -1;
			continue;
		}
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, timeout_s * 1000) != 1) {
			err = ETIMEDOUT;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 && err == 0) {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set(e, -err, "connect", "%s port %d: %s", host, port, strerror(err));
	return fd;
}

static int
knownhost_keytype(int hostkey_type)
{
	switch (hostkey_type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

static void
default_path(char *out, size_t len, const char *rel)
{
	const char *home = getenv("HOME");

	snprintf(out, len, "%s/%s", home && *home ? home : "/root", rel);
}

static int
check_host_key(struct ssh_conn *c, const struct ssh_opts *o, int port, struct llmd_err *e)
{
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(c->s);
	const unsigned char *hash;
	const char *key;
	char path[4096], hostfield[300];
	size_t len;
	int type, mask, rc = 0, check;

	key = libssh2_session_hostkey(c->s, &len, &type);
	hash = (const unsigned char *)libssh2_hostkey_hash(c->s, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (kh == NULL || key == NULL || hash == NULL) {
		rc = err_set(e, -EIO, "host key", "%s: no host key", c->host);
		goto out;
	}
	{
		unsigned char b64[64];
		int n = EVP_EncodeBlock(b64, hash, 32);

		while (n > 0 && b64[n - 1] == '=')
			n--;
		snprintf(c->fp, sizeof(c->fp), "SHA256:%.*s", n, b64);
	}
	if (o->known_hosts)
		snprintf(path, sizeof(path), "%s", o->known_hosts);
	else
		default_path(path, sizeof(path), ".ssh/known_hosts");
	if (access(path, F_OK) == 0 &&
	    libssh2_knownhost_readfile(kh, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		rc = err_set(e, -EINVAL, "host key", "%s: cannot read %s: %s", c->host, path,
		    sess_err(c->s));
		goto out;
	}
	mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
	    knownhost_keytype(type);
	check = libssh2_knownhost_checkp(kh, c->host, port, key, len, mask, NULL);
	if (check == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		goto out;
	if (check == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		rc = err_set(e, -EACCES, "host key", "%s: the host key (%s) does not match %s: "
		    "refusing (remove the old entry if the host was reinstalled)", c->host,
		    c->fp, path);
		goto out;
	}
	if (o->accept_fingerprint == NULL || strcmp(o->accept_fingerprint, c->fp) != 0) {
		rc = err_set(e, -EACCES, "host key", "%s: unknown host key %s (not in %s)%s; "
		    "check it and pass --accept-host-key %s", c->host, c->fp, path,
		    o->accept_fingerprint ? ", and not the fingerprint given" : "", c->fp);
		goto out;
	}
	if (port == 22)
		snprintf(hostfield, sizeof(hostfield), "%s", c->host);
	else
		snprintf(hostfield, sizeof(hostfield), "[%s]:%d", c->host, port);
	if (libssh2_knownhost_addc(kh, hostfield, NULL, key, len, NULL, 0, mask, NULL) < 0 ||
	    libssh2_knownhost_writefile(kh, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0)
		rc = err_set(e, -EIO, "host key", "%s: cannot record the host key in %s: %s",
		    c->host, path, sess_err(c->s));
out:
	if (kh != NULL)
		libssh2_knownhost_free(kh);
	return rc;
}

struct ssh_conn *
ssh_connect(const struct ssh_opts *o, struct llmd_err *e)
{
	static int inited;
	struct ssh_conn *c;
	int port = o->port > 0 ? o->port : 22, tmo = o->timeout_s > 0 ? o->timeout_s : 30;
	const char *user = o->user;
	char idpath[4096];

	if (!inited) {
		if (libssh2_init(0) != 0) {
			err_set(e, -EIO, "connect", "libssh2_init failed");
			return NULL;
		}
		inited = 1;
	}
	if (user == NULL)
		user = getenv("USER") && *getenv("USER") ? getenv("USER") : "root";
	c = xcalloc(1, sizeof(*c));
	snprintf(c->host, sizeof(c->host), "%s", o->host);
	if ((c->fd = tcp_connect(o->host, port, tmo, e)) < 0) {
		free(c);
		return NULL;
	}
	c->s = libssh2_session_init();
	if (c->s == NULL) {
		err_set(e, -ENOMEM, "handshake", "%s: libssh2_session_init failed", o->host);
		goto fail;
	}
	libssh2_session_set_blocking(c->s, 1);
	libssh2_session_set_timeout(c->s, (long)tmo * 1000);
	if (libssh2_session_handshake(c->s, c->fd) != 0) {
		err_set(e, -EPROTO, "handshake", "%s: %s", o->host, sess_err(c->s));
		goto fail;
	}
	if (check_host_key(c, o, port, e) < 0)
		goto fail;
	if (o->identity)
		snprintf(idpath, sizeof(idpath), "%s", o->identity);
	else
		default_path(idpath, sizeof(idpath), ".ssh/id_ed25519");
	if (libssh2_userauth_publickey_fromfile(c->s, user, NULL, idpath, NULL) != 0) {
		err_set(e, -EACCES, "auth", "%s: public key authentication as %s with %s "
		    "failed: %s", o->host, user, idpath, sess_err(c->s));
		goto fail;
	}
	return c;
fail:
	ssh_close(c);
	return NULL;
}

void
ssh_close(struct ssh_conn *c)
{
	if (c == NULL)
		return;
	if (c->sftp != NULL)
		libssh2_sftp_shutdown(c->sftp);
	if (c->s != NULL) {
		libssh2_session_disconnect(c->s, "bye");
		libssh2_session_free(c->s);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

const char *
ssh_fingerprint(const struct ssh_conn *c)
{
	return c->fp;
}

int
ssh_exec(struct ssh_conn *c, const char *cmd, struct buf *out, int *status,
    struct llmd_err *e)
{
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->s);
	char b[8192];
	ssize_t n;
	int rc = 0;

	*status = -1;
	if (ch == NULL)
		return err_set(e, -EIO, "exec", "%s: cannot open a channel: %s", c->host,
		    sess_err(c->s));
	if (libssh2_channel_exec(ch, cmd) != 0) {
		rc = err_set(e, -EIO, "exec", "%s: cannot run a command: %s", c->host,
		    sess_err(c->s));
		goto out;
	}
	for (;;) {
		n = libssh2_channel_read(ch, b, sizeof(b));
		if (n > 0) {
			if (out != NULL)
				buf_add(out, b, (size_t)n);
			continue;
		}
		if (n == 0)
			break;
		rc = err_set(e, -EIO, "exec", "%s: reading the output: %s", c->host,
		    sess_err(c->s));
		goto out;
	}
	/* drain stderr the command did not redirect */
	while (libssh2_channel_read_stderr(ch, b, sizeof(b)) > 0)
		;
	libssh2_channel_close(ch);
	libssh2_channel_wait_closed(ch);
	*status = libssh2_channel_get_exit_status(ch);
out:
	libssh2_channel_free(ch);
	return rc;
}

int
ssh_upload_data(struct ssh_conn *c, const void *data, size_t len, const char *remote,
    int mode, struct llmd_err *e)
{
	LIBSSH2_SFTP_HANDLE *h;
	const char *p = data;
	size_t done = 0;

	if (c->sftp == NULL && (c->sftp = libssh2_sftp_init(c->s)) == NULL)
		return err_set(e, -EIO, "upload", "%s: cannot start SFTP: %s", c->host,
		    sess_err(c->s));
	h = libssh2_sftp_open(c->sftp, remote, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT |
	    LIBSSH2_FXF_TRUNC, mode);
	if (h == NULL)
		return err_set(e, -EIO, "upload", "%s: cannot create %s (SFTP error %lu)",
		    c->host, remote, libssh2_sftp_last_error(c->sftp));
	while (done < len) {
		ssize_t n = libssh2_sftp_write(h, p + done, MIN(len - done, (size_t)32768));

		if (n <= 0) {
			libssh2_sftp_close(h);
			return err_set(e, -EIO, "upload", "%s: writing %s failed (SFTP error %lu)",
			    c->host, remote, libssh2_sftp_last_error(c->sftp));
		}
		done += (size_t)n;
	}
	if (libssh2_sftp_close(h) != 0)
		return err_set(e, -EIO, "upload", "%s: closing %s failed", c->host, remote);
	return 0;
}

int
ssh_upload_file(struct ssh_conn *c, const char *local, const char *remote, int mode,
    struct llmd_err *e)
{
	struct buf b = BUF_INIT;
	FILE *f = fopen(local, "rb");
	char chunk[65536];
	size_t n;
	int rc;

	if (f == NULL)
		return err_set(e, -errno, "upload", "%s: %s", local, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	if (ferror(f)) {
		fclose(f);
		buf_release(&b);
		return err_set(e, -EIO, "upload", "%s: read error", local);
	}
	fclose(f);
	rc = ssh_upload_data(c, b.buf ? b.buf : "", b.len, remote, mode, e);
	buf_release(&b);
	return rc;
}
