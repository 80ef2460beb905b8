/*
 * rdma/verbs-plan.c - the device-free part of the verbs transport: the
 * hello's "verbs" object, READ work-request planning over block runs, and
 * transport selection (see rdma/verbs.h).
 */
#include "config.h"
#include "rdma/verbs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/util.h"

/* ---- hello ---- */

static void
add_hex64(cJSON *o, const char *k, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIx64, v);
	cJSON_AddStringToObject(o, k, s);
}

void
kvx_verbs_peer_to_json(const struct kvx_verbs_peer *p, cJSON *hello)
{
	cJSON *o = cJSON_AddObjectToObject(hello, "verbs");
	char gid[33];

	cJSON_AddNumberToObject(o, "qpn", p->qpn);
	cJSON_AddNumberToObject(o, "psn", p->psn);
	cJSON_AddNumberToObject(o, "lid", p->lid);
	for (int i = 0; i < 16; i++)
		snprintf(gid + 2 * i, 3, "%02x", p->gid[i]);
	cJSON_AddStringToObject(o, "gid", gid);
	cJSON_AddNumberToObject(o, "mtu", p->mtu);
	cJSON_AddNumberToObject(o, "rkey", p->rkey);
	add_hex64(o, "addr", p->addr);
	add_hex64(o, "len", p->len);
	add_hex64(o, "stride", p->stride);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
get_hex64(const cJSON *o, const char *k, uint64_t *v, struct llmd_err *e)
{
	const char *s;
	size_t n;
	int rc;

	if ((rc = json_get_str(o, k, &s, 1, e)) < 0)
		return rc;
	n = strlen(s);
	if (n == 0 || n > 16)
		return err_set(e, -EPROTO, k, "must be 1 to 16 hex digits");
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		int h = hexval(s[i]);
		if (h < 0)
			return err_set(e, -EPROTO, k, "must be hex digits");
		*v = *v << 4 | (uint64_t)h;
	}
	return 0;
}

static int
get_u32(const cJSON *o, const char *k, int64_t max, uint32_t *v, struct llmd_err *e)
{
	int64_t x;
	int rc = json_get_int64_range(o, k, 0, max, &x, 1, e);

	if (rc == 0)
		*v = (uint32_t)x;
	return rc;
}

static int
peer_fields(const cJSON *o, struct kvx_verbs_peer *p, struct llmd_err *e)
{
	const char *gid;
	uint32_t lid = 0;
	int rc;

	if ((rc = get_u32(o, "qpn", 0xffffff, &p->qpn, e)) < 0 ||
	    (rc = get_u32(o, "psn", 0xffffff, &p->psn, e)) < 0 ||
	    (rc = get_u32(o, "lid", 0xffff, &lid, e)) < 0 ||
	    (rc = get_u32(o, "mtu", 4096, &p->mtu, e)) < 0 ||
	    (rc = get_u32(o, "rkey", UINT32_MAX, &p->rkey, e)) < 0)
		return rc;
	p->lid = (uint16_t)lid;
	if (p->mtu != 256 && p->mtu != 512 && p->mtu != 1024 && p->mtu != 2048 && p->mtu != 4096)
		return err_set(e, -EPROTO, "mtu", "must be 256, 512, 1024, 2048 or 4096");
	if ((rc = json_get_str(o, "gid", &gid, 1, e)) < 0)
		return rc;
	if (strlen(gid) != 32)
		return err_set(e, -EPROTO, "gid", "must be 32 hex digits");
	for (int i = 0; i < 16; i++) {
		int hi = hexval(gid[2 * i]), lo = hexval(gid[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return err_set(e, -EPROTO, "gid", "must be 32 hex digits");
		p->gid[i] = (uint8_t)(hi << 4 | lo);
	}
	if ((rc = get_hex64(o, "addr", &p->addr, e)) < 0 || (rc = get_hex64(o, "len", &p->len, e)) < 0 ||
	    (rc = get_hex64(o, "stride", &p->stride, e)) < 0)
		return rc;
	if (p->len == 0 || p->stride == 0 || p->addr + p->len < p->addr)
		return err_set(e, -EPROTO, "len", "the region must be non-empty and not wrap");
	return 0;
}

int
kvx_verbs_peer_from_json(const cJSON *hello, struct kvx_verbs_peer *p, bool *present,
    struct llmd_err *e)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(hello, "verbs");
	int rc;

	memset(p, 0, sizeof(*p));
	*present = false;
	if (o == NULL || cJSON_IsNull(o))
		return 0;
	if (!cJSON_IsObject(o))
		return err_set(e, -EPROTO, "verbs", "must be an object");
	if ((rc = peer_fields(o, p, e)) < 0) {
		if (e)
			err_prefix_field(e, "verbs");
		return -EPROTO;
	}
	*present = true;
	return 0;
}

/* ---- planning ---- */

/* Is [off, off+len) inside a region of region_len bytes? */
static bool
inside(uint64_t off, uint64_t len, uint64_t region_len)
{
	return off <= region_len && len <= region_len - off;
}

int64_t
kvx_verbs_plan_reads(const struct kvx_run *runs, size_t n_runs, const struct kvx_read_plan *p,
    struct kvx_read_wr *out, size_t cap)
{
	uint64_t maxwr = p->max_wr_bytes ? p->max_wr_bytes : KVX_VERBS_MAX_WR_BYTES, chunk;
	uint32_t every = p->signal_every ? p->signal_every : 1;
	bool packed = p->remote_stride == p->block_bytes && p->local_stride == p->block_bytes;
	size_t k = 0;

	if (p->block_bytes == 0 || p->remote_stride < p->block_bytes || p->local_stride < p->block_bytes)
		return -EINVAL;
	if (maxwr > UINT32_MAX)
		maxwr = UINT32_MAX;
	/* whole blocks per WR when a block fits, else max_wr_bytes pieces */
	chunk = p->block_bytes <= maxwr ? maxwr / p->block_bytes * p->block_bytes : maxwr;
	for (size_t i = 0; i < n_runs; i++) {
		const struct kvx_run *r = &runs[i];
		uint32_t n_ext = packed ? 1 : r->n;
		if (r->rfirst < 0 || r->lfirst < 0 || r->n == 0)
			return -ERANGE;
		for (uint32_t x = 0; x < n_ext; x++) {
			uint64_t blocks = packed ? r->n : 1;
			uint64_t roff = ((uint64_t)r->rfirst + x) * p->remote_stride;
			uint64_t loff = ((uint64_t)r->lfirst + x) * p->local_stride;
			uint64_t len = (blocks - 1) * p->remote_stride + p->block_bytes;
			if (!inside(roff, len, p->remote_len) || !inside(loff, len, p->local_len))
				return -ERANGE;
			for (uint64_t done = 0; done < len; done += chunk) {
				if (k < cap)
					out[k] = (struct kvx_read_wr){
						.remote_addr = p->remote_base + roff + done,
						.local_addr = p->local_base + loff + done,
						.len = (uint32_t)MIN(chunk, len - done),
						.rkey = p->rkey,
						.signaled = (k + 1) % every == 0,
					};
				k++;
			}
		}
	}
	if (k > 0 && k <= cap)
		out[k - 1].signaled = true;
	return (int64_t)k;
}

/* ---- transport ---- */

int
kvx_transport_select(const char *want, const struct kvx_verbs_probe *probe,
    enum kvx_transport *out, struct llmd_err *e)
{
	bool usable = probe->built && probe->n_devices > 0 && probe->active;

	if (want == NULL || strcmp(want, "auto") == 0) {
		*out = usable ? KVX_TRANSPORT_VERBS : KVX_TRANSPORT_TCP;
		return 0;
	}
	if (strcmp(want, "tcp") == 0) {
		*out = KVX_TRANSPORT_TCP;
		return 0;
	}
	if (strcmp(want, "verbs") != 0)
		return err_set(e, -EINVAL, "transport", "unknown transport \"%s\" (auto, tcp, verbs)", want);
	if (!probe->built)
		return err_set(e, -ENOTSUP, "transport", "the verbs transport is unavailable: llmd was "
		    "built without libibverbs (use \"tcp\" or \"auto\")");
	if (probe->n_devices == 0)
		return err_set(e, -ENOTSUP, "transport", "the verbs transport needs an RDMA device and "
		    "none was found%s%s (use \"tcp\" or \"auto\")", probe->device[0] ? " named " : "",
		    probe->device);
	if (!probe->active)
		return err_set(e, -ENOTSUP, "transport", "the verbs transport needs an active port and "
		    "RDMA device %s has none (use \"tcp\" or \"auto\")", probe->device);
	*out = KVX_TRANSPORT_VERBS;
	return 0;
}
