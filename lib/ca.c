/*
 * lib/ca.c - the cluster certificate authority: key generation, the
 * self-signed CA, server certificates with SANs and CSR signing (see ca.h).
 */
#include "config.h"
#include "lib/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/buf.h"
#include "lib/util.h"

struct ca {
	EVP_PKEY *key;
	X509 *cert;
};

/* The last OpenSSL error as text, for messages. */
static const char *
ssl_reason(void)
{
	static _Thread_local char msg[256];
	unsigned long code = ERR_peek_last_error();

	if (code == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(code, msg, sizeof(msg));
	ERR_clear_error();
	return msg;
}

static EVP_PKEY *
new_key(void)
{
	return EVP_EC_gen("P-256");
}

/* A BIO's contents as a malloc'd string. */
static char *
bio_text(BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);

	return xstrndup(p, n > 0 ? (size_t)n : 0);
}

static char *
cert_to_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b != NULL && PEM_write_bio_X509(b, x) == 1)
		s = bio_text(b);
	BIO_free(b);
	return s;
}

static char *
key_to_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b != NULL && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1)
		s = bio_text(b);
	BIO_free(b);
	return s;
}

/* A random positive 127-bit serial number. */
static int
set_serial(X509 *x)
{
	unsigned char raw[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	raw[0] &= 0x7f;
	raw[0] |= 0x40;
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static X509_NAME *
make_name(const char *cn, const char *org)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL)
		return NULL;
	if (org != NULL && *org &&
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org,
	    -1, -1, 0) != 1)
		goto fail;
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
	    -1, -1, 0) != 1)
		goto fail;
	return n;
fail:
	X509_NAME_free(n);
	return NULL;
}

/*
 * A certificate for pub with subject cn/org, signed by (issuer, ikey), or
 * self-signed when issuer is NULL.
 */
static X509 *
new_cert(EVP_PKEY *pub, const char *cn, const char *org, int days, X509 *issuer,
    EVP_PKEY *ikey)
{
	X509 *x = X509_new();
	X509_NAME *name = make_name(cn, org);

	if (x == NULL || name == NULL)
		goto fail;
	if (X509_set_version(x, 2) != 1 || set_serial(x) < 0 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L) == NULL ||
	    X509_set_pubkey(x, pub) != 1)
		goto fail;
	X509_NAME_free(name);
	return x;
fail:
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

struct ca *
ca_create(const char *cn, int days, struct llmd_err *e)
{
	struct ca *ca = xcalloc(1, sizeof(*ca));

	ca->key = new_key();
	if (ca->key == NULL)
		goto fail;
	ca->cert = new_cert(ca->key, cn, NULL, days, NULL, NULL);
	if (ca->cert == NULL ||
	    add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash") < 0 ||
	    X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0)
		goto fail;
	return ca;
fail:
	err_set(e, -EIO, "", "cannot create the CA: %s", ssl_reason());
	ca_free(ca);
	return NULL;
}

void
ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca);
}

char *
ca_cert_pem(const struct ca *ca)
{
	return cert_to_pem(ca->cert);
}

struct ca *
ca_load(const char *cert_path, const char *key_path, struct llmd_err *e)
{
	struct ca *ca = xcalloc(1, sizeof(*ca));
	FILE *f;

	if ((f = fopen(cert_path, "r")) == NULL) {
		err_set(e, -errno, cert_path, "%s", strerror(errno));
		goto out;
	}
	ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (ca->cert == NULL) {
		err_set(e, -EINVAL, cert_path, "not a PEM certificate: %s", ssl_reason());
		goto out;
	}
	if ((f = fopen(key_path, "r")) == NULL) {
		err_set(e, -errno, key_path, "%s", strerror(errno));
		goto out;
	}
	ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (ca->key == NULL) {
		err_set(e, -EINVAL, key_path, "not a PEM private key: %s", ssl_reason());
		goto out;
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		err_set(e, -EINVAL, key_path, "the key does not match %s", cert_path);
		goto out;
	}
	return ca;
out:
	ERR_clear_error();
	ca_free(ca);
	return NULL;
}

int
ca_write_file(const char *path, const char *text, int mode, struct llmd_err *e)
{
	struct buf tmp = BUF_INIT;
	size_t len = strlen(text);
	int fd, rc = 0;

	buf_addf(&tmp, "%s.tmp", path);
	fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		rc = err_set(e, -errno, tmp.buf, "%s", strerror(errno));
		goto out;
	}
	if (fchmod(fd, (mode_t)mode) < 0 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) < 0) {
		rc = err_set(e, errno ? -errno : -EIO, tmp.buf, "write: %s", strerror(errno));
		close(fd);
		unlink(tmp.buf);
		goto out;
	}
	close(fd);
	if (rename(tmp.buf, path) < 0) {
		rc = err_set(e, -errno, path, "rename: %s", strerror(errno));
		unlink(tmp.buf);
	}
out:
	buf_release(&tmp);
	return rc;
}

int
ca_save(const struct ca *ca, const char *cert_path, const char *key_path, struct llmd_err *e)
{
	char *c = cert_to_pem(ca->cert), *k = key_to_pem(ca->key);
	int rc;

	if (c == NULL || k == NULL)
		rc = err_set(e, -EIO, "", "cannot encode the CA: %s", ssl_reason());
	else if ((rc = ca_write_file(key_path, k, 0600, e)) == 0)
		rc = ca_write_file(cert_path, c, 0644, e);
	if (k != NULL)
		OPENSSL_cleanse(k, strlen(k));
	free(c);
	free(k);
	return rc;
}

/* "IP:1.2.3.4,DNS:name,..." from a list of IP literals and names. */
static int
san_value(const char *const *sans, struct buf *out, struct llmd_err *e)
{
	for (size_t i = 0; sans != NULL && sans[i] != NULL; i++) {
		const char *s = sans[i];
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);

		if (ip == NULL) {
			for (const char *p = s; *p; p++)
				if (!(*p == '.' || *p == '-' || *p == '*' ||
				    (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				    (*p >= '0' && *p <= '9')))
					return err_set(e, -EINVAL, "sans",
					    "\"%s\" is neither an IP address nor a DNS name", s);
			ERR_clear_error();
		}
		buf_addf(out, "%s%s:%s", out->len ? "," : "", ip ? "IP" : "DNS", s);
		ASN1_OCTET_STRING_free(ip);
	}
	return 0;
}

static int
sign_leaf(const struct ca *ca, X509 *x, const char *eku, const char *sans)
{
	if (add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature,keyAgreement") < 0 ||
	    add_ext(x, ca->cert, NID_ext_key_usage, eku) < 0 ||
	    add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always") < 0 ||
	    (sans != NULL && *sans && add_ext(x, ca->cert, NID_subject_alt_name, sans) < 0))
		return -1;
	return X509_sign(x, ca->key, EVP_sha256()) > 0 ? 0 : -1;
}

int
ca_issue_server(const struct ca *ca, const char *cn, const char *const *sans, int days,
    char **cert_pem, char **key_pem, struct llmd_err *e)
{
	struct buf sv = BUF_INIT;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	int rc;

	*cert_pem = *key_pem = NULL;
	if ((rc = san_value(sans, &sv, e)) < 0)
		goto out;
	if ((k = new_key()) == NULL ||
	    (x = new_cert(k, cn, NULL, days, ca->cert, ca->key)) == NULL ||
	    sign_leaf(ca, x, "serverAuth,clientAuth", sv.buf) < 0 ||
	    (*cert_pem = cert_to_pem(x)) == NULL || (*key_pem = key_to_pem(k)) == NULL) {
		rc = err_set(e, -EIO, "", "cannot issue a certificate for %s: %s", cn,
		    ssl_reason());
		free(*cert_pem);
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
	}
out:
	buf_release(&sv);
	EVP_PKEY_free(k);
	X509_free(x);
	return rc;
}

int
ca_sign_csr(const struct ca *ca, const char *csr_pem, const char *cn, const char *org,
    int days, char **cert_pem, struct llmd_err *e)
{
	BIO *b = BIO_new_mem_buf(csr_pem, -1);
	X509_REQ *req = NULL;
	EVP_PKEY *pub = NULL;
	X509 *x = NULL;
	int rc = 0;

	*cert_pem = NULL;
	if (b == NULL || (req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL)) == NULL) {
		rc = err_set(e, -EINVAL, "csr", "not a PEM certificate request");
		goto out;
	}
	if ((pub = X509_REQ_get_pubkey(req)) == NULL || X509_REQ_verify(req, pub) != 1) {
		rc = err_set(e, -EINVAL, "csr", "the request's signature does not verify");
		goto out;
	}
	if ((x = new_cert(pub, cn, org, days, ca->cert, ca->key)) == NULL ||
	    sign_leaf(ca, x, "clientAuth", NULL) < 0 || (*cert_pem = cert_to_pem(x)) == NULL)
		rc = err_set(e, -EIO, "", "cannot sign the request: %s", ssl_reason());
out:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	BIO_free(b);
	return rc;
}

int
ca_make_csr(const char *cn, const char *org, char **csr_pem, char **key_pem,
    struct llmd_err *e)
{
	EVP_PKEY *k = new_key();
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = make_name(cn, org);
	BIO *b = BIO_new(BIO_s_mem());
	int rc = 0;

	*csr_pem = *key_pem = NULL;
	if (k == NULL || req == NULL || name == NULL || b == NULL ||
	    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, k) != 1 ||
	    X509_REQ_sign(req, k, EVP_sha256()) <= 0 || PEM_write_bio_X509_REQ(b, req) != 1 ||
	    (*key_pem = key_to_pem(k)) == NULL)
		rc = err_set(e, -EIO, "", "cannot make a CSR: %s", ssl_reason());
	else
		*csr_pem = bio_text(b);
	BIO_free(b);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return rc;
}

int
ca_ensure_dir(const char *dir, const char *const *sans, struct ca **out, struct llmd_err *e)
{
	struct buf cp = BUF_INIT, kp = BUF_INIT, sc = BUF_INIT, sk = BUF_INIT;
	char *cert = NULL, *key = NULL;
	struct ca *ca = NULL;
	int rc = 0;

	buf_addf(&cp, "%s/ca.crt", dir);
	buf_addf(&kp, "%s/ca.key", dir);
	buf_addf(&sc, "%s/server.crt", dir);
	buf_addf(&sk, "%s/server.key", dir);
	if (access(cp.buf, F_OK) == 0 || access(kp.buf, F_OK) == 0) {
		if ((ca = ca_load(cp.buf, kp.buf, e)) == NULL) {
			rc = e && e->code ? e->code : -EINVAL;
			goto out;
		}
	} else {
		if ((ca = ca_create("llmd cluster CA", 3650, e)) == NULL ||
		    (rc = ca_save(ca, cp.buf, kp.buf, e)) < 0) {
			rc = rc ? rc : -EIO;
			goto out;
		}
		log_info("created the cluster CA %s", cp.buf);
	}
	if (access(sc.buf, F_OK) != 0 || access(sk.buf, F_OK) != 0) {
		if ((rc = ca_issue_server(ca, "llmd", sans, 825, &cert, &key, e)) < 0 ||
		    (rc = ca_write_file(sk.buf, key, 0600, e)) < 0 ||
		    (rc = ca_write_file(sc.buf, cert, 0644, e)) < 0)
			goto out;
		log_info("issued the API server certificate %s", sc.buf);
	}
out:
	if (key != NULL)
		OPENSSL_cleanse(key, strlen(key));
	free(cert);
	free(key);
	buf_release(&cp);
	buf_release(&kp);
	buf_release(&sc);
	buf_release(&sk);
	if (rc == 0 && out != NULL)
		*out = ca;
	else
		ca_free(ca);
	return rc;
}
