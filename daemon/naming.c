/*
 * daemon/naming.c - knative ChildName, child label sets and the DNS name
 * rules of Kubernetes object names.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include <openssl/evp.h>

#include "daemon/naming.h"
#include "lib/buf.h"
#include "lib/util.h"

#define NAME_LONGEST 63
#define NAME_MD5_LEN 32
#define NAME_HEAD (NAME_LONGEST - NAME_MD5_LEN)

void
naming_md5_hex(const char *s, size_t n, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	static const char hex[] = "0123456789abcdef";

	EVP_Digest(s, n, d, &dl, EVP_md5(), NULL);
	for (unsigned int i = 0; i < 16; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[32] = '\0';
}

char *
llmd_child_name(const char *parent, const char *suffix)
{
	size_t pl = strlen(parent), sl = strlen(suffix);
	struct buf b = BUF_INIT;
	char h[33];

	if (pl + sl <= NAME_LONGEST) {
		buf_adds(&b, parent);
		buf_adds(&b, suffix);
		return buf_detach(&b, NULL);
	}
	if (sl < NAME_HEAD) {
		naming_md5_hex(parent, pl, h);
		buf_add(&b, parent, NAME_HEAD - sl);
		buf_adds(&b, h);
		buf_adds(&b, suffix);
		return buf_detach(&b, NULL);
	}
	/* Long suffix: hash the whole name, keep what fits. */
	buf_adds(&b, parent);
	buf_adds(&b, suffix);
	naming_md5_hex(b.buf, b.len, h);
	buf_reset(&b);
	buf_add(&b, parent, MIN(pl, (size_t)NAME_HEAD));
	buf_adds(&b, h);
	if (b.len < NAME_LONGEST)
		buf_add(&b, suffix, MIN(sl, NAME_LONGEST - b.len));
	while (b.len > 0 && !isalnum((unsigned char)b.buf[b.len - 1]))
		buf_setlen(&b, b.len - 1);
	return buf_detach(&b, NULL);
}

cJSON *
naming_labels(const char *svc, const char *component, int kserve_workload, const char *role)
{
	cJSON *l = cJSON_CreateObject();

	cJSON_AddStringToObject(l, LBL_PART_OF, PART_OF_VALUE);
	cJSON_AddStringToObject(l, LBL_NAME, svc);
	if (component)
		cJSON_AddStringToObject(l, LBL_COMPONENT, component);
	if (kserve_workload)
		cJSON_AddStringToObject(l, LBL_KSERVE_COMP, "workload");
	if (role)
		cJSON_AddStringToObject(l, LBL_ROLE, role);
	return l;
}

cJSON *
naming_workload_selector(const char *svc)
{
	return naming_labels(svc, NULL, 1, NULL);
}

static int
label_ok(const char *s, size_t n, int first_alpha)
{
	if (n == 0 || n > 63)
		return 0;
	if (first_alpha ? !islower((unsigned char)s[0]) : !(islower((unsigned char)s[0]) ||
	    isdigit((unsigned char)s[0])))
		return 0;
	if (!(islower((unsigned char)s[n - 1]) || isdigit((unsigned char)s[n - 1])))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

int
naming_is_dns1123_label(const char *s)
{
	return s && label_ok(s, strlen(s), 0);
}

int
naming_is_dns1035_label(const char *s)
{
	return s && label_ok(s, strlen(s), 1);
}

int
naming_is_dns1123_subdomain(const char *s)
{
	const char *p, *dot;

	if (!s || strlen(s) == 0 || strlen(s) > 253)
		return 0;
	for (p = s;; p = dot + 1) {
		dot = strchr(p, '.');
		if (!label_ok(p, dot ? (size_t)(dot - p) : strlen(p), 0))
			return 0;
		if (!dot)
			return 1;
	}
}
