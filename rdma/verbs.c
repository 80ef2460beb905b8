/*
 * rdma/verbs.c - the device part of the verbs transport over libibverbs:
 * device discovery, protection domain and memory region over the KV pool,
 * RC queue pairs connected from the peer's hello, and the windowed RDMA
 * READ pull (see rdma/verbs.h). Built only when libibverbs is found.
 */
#include "config.h"
#include "rdma/verbs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <openssl/rand.h>

#include "lib/log.h"
#include "lib/util.h"

#define QP_DEPTH (KVX_VERBS_WINDOW + 1)

struct kvx_verbs {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	uint8_t port;
	int gid_index;
	bool ethernet;
	enum ibv_mtu mtu;
	uint16_t lid;
	union ibv_gid gid;
	uint8_t rd_atom;        /* READs in flight per QP the device allows */
	uint64_t addr, len, stride;
	char name[64];
};

struct kvx_verbs_qp {
	struct kvx_verbs *v;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	uint32_t psn;
};

/* ---- discovery ---- */

static bool
port_active(struct ibv_context *ctx, uint8_t *port)
{
	struct ibv_device_attr da;

	if (ibv_query_device(ctx, &da) != 0)
		return false;
	for (uint8_t p = 1; p <= da.phys_port_cnt; p++) {
		struct ibv_port_attr pa;
		if (ibv_query_port(ctx, p, &pa) == 0 && pa.state == IBV_PORT_ACTIVE) {
			*port = p;
			return true;
		}
	}
	return false;
}

void
kvx_verbs_probe(const char *name, struct kvx_verbs_probe *out)
{
	struct ibv_device **list;
	int n = 0;

	memset(out, 0, sizeof(*out));
	out->built = true;
	if (name && *name)
		snprintf(out->device, sizeof(out->device), "%s", name);
	list = ibv_get_device_list(&n);
	if (list == NULL)
		return;
	for (int i = 0; i < n; i++) {
		const char *dn = ibv_get_device_name(list[i]);
		struct ibv_context *ctx;
		uint8_t port = 0;
		bool act;
		if (name && *name && strcmp(name, dn) != 0)
			continue;
		out->n_devices++;
		if ((ctx = ibv_open_device(list[i])) == NULL)
			continue;
		act = port_active(ctx, &port);
		ibv_close_device(ctx);
		if (!out->active && (act || out->device[0] == '\0'))
			snprintf(out->device, sizeof(out->device), "%s", dn);
		if (act && !out->active) {
			out->active = true;
			out->port = port;
		}
	}
	ibv_free_device_list(list);
}

/* RoCE needs a RoCE v2 GID; IB is fine with index 0. */
static int
pick_gid(struct kvx_verbs *v, int gid_tbl_len)
{
	int best = 0;

	if (!v->ethernet)
		return 0;
	for (int i = 0; i < gid_tbl_len; i++) {
		struct ibv_gid_entry ge;
		if (ibv_query_gid_ex(v->ctx, v->port, (uint32_t)i, &ge, 0) != 0)
			continue;
		if (ge.gid_type == IBV_GID_TYPE_ROCE_V2) {
			best = i;
			break;
		}
	}
	return best;
}

int
kvx_verbs_open(const struct kvx_verbs_probe *probe, void *base, uint64_t len, uint64_t stride,
    int dmabuf_fd, uint64_t dmabuf_offset, struct kvx_verbs **out, struct llmd_err *e)
{
	struct ibv_device **list;
	struct kvx_verbs *v;
	struct ibv_port_attr pa;
	struct ibv_device_attr da;
	int n = 0, access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ;

	if (!probe->active)
		return err_set(e, -ENODEV, "transport", "no RDMA device with an active port");
	v = xcalloc(1, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", probe->device);
	v->port = probe->port;
	if ((list = ibv_get_device_list(&n)) != NULL) {
		for (int i = 0; i < n && v->ctx == NULL; i++)
			if (strcmp(ibv_get_device_name(list[i]), v->name) == 0)
				v->ctx = ibv_open_device(list[i]);
		ibv_free_device_list(list);
	}
	if (v->ctx == NULL) {
		free(v);
		return err_set(e, -ENODEV, "transport", "cannot open RDMA device %s", probe->device);
	}
	if (ibv_query_port(v->ctx, v->port, &pa) != 0 || ibv_query_device(v->ctx, &da) != 0) {
		kvx_verbs_close(v);
		return err_set(e, -EIO, "transport", "cannot query RDMA device %s", v->name);
	}
	v->ethernet = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
	v->mtu = pa.active_mtu;
	v->lid = pa.lid;
	v->rd_atom = (uint8_t)MIN(MAX(da.max_qp_rd_atom, 1), 16);
	v->gid_index = pick_gid(v, pa.gid_tbl_len);
	if (ibv_query_gid(v->ctx, v->port, v->gid_index, &v->gid) != 0)
		memset(&v->gid, 0, sizeof(v->gid));
	if ((v->pd = ibv_alloc_pd(v->ctx)) == NULL) {
		kvx_verbs_close(v);
		return err_set(e, -ENOMEM, "transport", "ibv_alloc_pd on %s failed", v->name);
	}
	if (dmabuf_fd >= 0)
		v->mr = ibv_reg_dmabuf_mr(v->pd, dmabuf_offset, len, (uint64_t)(uintptr_t)base, dmabuf_fd,
		    access);
	else
		v->mr = ibv_reg_mr(v->pd, base, len, access);
	if (v->mr == NULL) {
		int err = errno ? errno : EIO;
		kvx_verbs_close(v);
		return err_set(e, -err, "transport", "registering %llu bytes of KV pool%s on %s: %s",
		    (unsigned long long)len, dmabuf_fd >= 0 ? " (dma-buf)" : "", probe->device,
		    strerror(err));
	}
	v->addr = (uint64_t)(uintptr_t)base;
	v->len = len;
	v->stride = stride;
	*out = v;
	return 0;
}

void
kvx_verbs_close(struct kvx_verbs *v)
{
	if (v == NULL)
		return;
	if (v->mr)
		ibv_dereg_mr(v->mr);
	if (v->pd)
		ibv_dealloc_pd(v->pd);
	if (v->ctx)
		ibv_close_device(v->ctx);
	free(v);
}

const char *kvx_verbs_device(const struct kvx_verbs *v) { return v->name; }

/* ---- queue pairs ---- */

static uint32_t
mtu_bytes(enum ibv_mtu m)
{
	return 128u << (int)m;  /* IBV_MTU_256 is 1 */
}

static enum ibv_mtu
mtu_enum(uint32_t bytes)
{
	enum ibv_mtu m = IBV_MTU_256;

	while (m < IBV_MTU_4096 && mtu_bytes(m) < bytes)
		m = (enum ibv_mtu)(m + 1);
	return m;
}

int
kvx_verbs_qp_new(struct kvx_verbs *v, struct kvx_verbs_qp **out, struct kvx_verbs_peer *mine,
    struct llmd_err *e)
{
	struct kvx_verbs_qp *q = xcalloc(1, sizeof(*q));
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = QP_DEPTH, .max_recv_wr = 1, .max_send_sge = 1, .max_recv_sge = 1 },
		.sq_sig_all = 0,
	};
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = v->port,
		.qp_access_flags = IBV_ACCESS_REMOTE_READ,
	};
	uint8_t rnd[4];

	q->v = v;
	if ((q->cq = ibv_create_cq(v->ctx, QP_DEPTH, NULL, NULL, 0)) == NULL) {
		free(q);
		return err_set(e, -ENOMEM, "transport", "ibv_create_cq on %s failed", v->name);
	}
	ia.send_cq = ia.recv_cq = q->cq;
	if ((q->qp = ibv_create_qp(v->pd, &ia)) == NULL) {
		kvx_verbs_qp_free(q);
		return err_set(e, -ENOMEM, "transport", "ibv_create_qp on %s failed", v->name);
	}
	if (ibv_modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
	    IBV_QP_ACCESS_FLAGS) != 0) {
		kvx_verbs_qp_free(q);
		return err_set(e, -EIO, "transport", "queue pair to INIT on %s failed", v->name);
	}
	RAND_bytes(rnd, sizeof(rnd));
	q->psn = ((uint32_t)rnd[0] | (uint32_t)rnd[1] << 8 | (uint32_t)rnd[2] << 16) & 0xffffff;
	memset(mine, 0, sizeof(*mine));
	mine->qpn = q->qp->qp_num;
	mine->psn = q->psn;
	mine->lid = v->lid;
	memcpy(mine->gid, v->gid.raw, 16);
	mine->mtu = mtu_bytes(v->mtu);
	mine->rkey = v->mr->rkey;
	mine->addr = v->addr;
	mine->len = v->len;
	mine->stride = v->stride;
	*out = q;
	return 0;
}

int
kvx_verbs_qp_connect(struct kvx_verbs_qp *q, const struct kvx_verbs_peer *peer, struct llmd_err *e)
{
	struct kvx_verbs *v = q->v;
	enum ibv_mtu m = mtu_enum(peer->mtu);
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTR,
		.path_mtu = m < v->mtu ? m : v->mtu,
		.dest_qp_num = peer->qpn,
		.rq_psn = peer->psn,
		.max_dest_rd_atomic = v->rd_atom,
		.min_rnr_timer = 12,
		.ah_attr = { .dlid = peer->lid, .sl = 0, .port_num = v->port },
	};

	if (v->ethernet || peer->lid == 0) {
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, peer->gid, 16);
		a.ah_attr.grh.sgid_index = (uint8_t)v->gid_index;
		a.ah_attr.grh.hop_limit = 64;
	}
	if (ibv_modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
	    IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER) != 0)
		return err_set(e, -EIO, "transport", "queue pair to RTR (peer qpn %u) on %s failed: %s",
		    peer->qpn, v->name, strerror(errno));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = q->psn;
	a.max_rd_atomic = v->rd_atom;
	if (ibv_modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
	    IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC) != 0)
		return err_set(e, -EIO, "transport", "queue pair to RTS on %s failed: %s", v->name,
		    strerror(errno));
	return 0;
}

int
kvx_verbs_qp_read(struct kvx_verbs_qp *q, const struct kvx_read_wr *wrs, size_t n, uint32_t window,
    int64_t timeout_ms, struct llmd_err *e)
{
	size_t posted = 0, retired = 0;
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 30000);

	if (window == 0 || window > KVX_VERBS_WINDOW)
		window = KVX_VERBS_WINDOW;
	while (retired < n) {
		while (posted < n && posted - retired < window) {
			struct ibv_sge sge = {
				.addr = wrs[posted].local_addr,
				.length = wrs[posted].len,
				.lkey = q->v->mr->lkey,
			};
			struct ibv_send_wr wr = {
				.wr_id = posted,
				.sg_list = &sge,
				.num_sge = 1,
				.opcode = IBV_WR_RDMA_READ,
				.send_flags = wrs[posted].signaled ? IBV_SEND_SIGNALED : 0,
				.wr.rdma = { .remote_addr = wrs[posted].remote_addr, .rkey = wrs[posted].rkey },
			}, *bad = NULL;
			/* the window must not fill with unsignaled WRs: force one */
			if (posted + 1 - retired == window)
				wr.send_flags = IBV_SEND_SIGNALED;
			int rc = ibv_post_send(q->qp, &wr, &bad);
			if (rc != 0)
				return err_set(e, -rc, "transport", "ibv_post_send (READ %zu of %zu): %s",
				    posted, n, strerror(rc));
			posted++;
		}
		struct ibv_wc wc[16];
		int got = ibv_poll_cq(q->cq, 16, wc);
		if (got < 0)
			return err_set(e, -EIO, "transport", "ibv_poll_cq failed");
		for (int i = 0; i < got; i++) {
			if (wc[i].status != IBV_WC_SUCCESS)
				return err_set(e, -EIO, "transport", "RDMA READ %llu of %zu failed: %s "
				    "(vendor error 0x%x)", (unsigned long long)wc[i].wr_id, n,
				    ibv_wc_status_str(wc[i].status), wc[i].vendor_err);
			if (wc[i].wr_id + 1 > retired)
				retired = (size_t)wc[i].wr_id + 1;
		}
		if (got == 0 && now_ms() > deadline)
			return err_set(e, -ETIMEDOUT, "transport", "RDMA READs: %zu of %zu complete after "
			    "%lld ms", retired, n, (long long)timeout_ms);
	}
	return 0;
}

void
kvx_verbs_qp_free(struct kvx_verbs_qp *q)
{
	if (q == NULL)
		return;
	if (q->qp)
		ibv_destroy_qp(q->qp);
	if (q->cq)
		ibv_destroy_cq(q->cq);
	free(q);
}
