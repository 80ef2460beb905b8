/*
 * rdma/verbs.h - the RDMA verbs transport of librdmakv: what the side
 * channel's hello carries for it (the "verbs" object), planning RDMA READ
 * work requests from block runs, choosing the transport, and the device part
 * (device, protection domain, memory region over the KV pool, one RC queue
 * pair per side-channel connection, the windowed READ pull).
 *
 * The planning, hello and selection functions are pure (rdma/verbs-plan.c,
 * always built). The device functions live in rdma/verbs.c when libibverbs
 * is found, else in rdma/verbs-none.c, whose functions report that the
 * library was built without it. No libibverbs type appears here.
 */
#ifndef LLMD_RDMA_VERBS_H
#define LLMD_RDMA_VERBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/err.h"
#include "rdma/kvxfer.h"

#define KVX_VERBS_MAX_WR_BYTES (1u << 20)  /* one READ work request at most */
#define KVX_VERBS_WINDOW 64                /* READs outstanding at most */
#define KVX_VERBS_SIGNAL_EVERY 16          /* one signaled WR in this many */

/* One side's queue pair and memory region, exchanged in the hello. */
struct kvx_verbs_peer {
	uint32_t qpn;           /* 24 bits */
	uint32_t psn;           /* 24 bits: first packet sequence number */
	uint16_t lid;           /* 0 on RoCE */
	uint8_t gid[16];
	uint32_t mtu;           /* path MTU in bytes: 256, 512, 1024, 2048, 4096 */
	uint32_t rkey;
	uint64_t addr;          /* the KV pool's address in that process */
	uint64_t len;           /* bytes registered from addr */
	uint64_t stride;        /* bytes from block b to block b+1 */
};

/* Adds {"verbs": {...}} to a hello object (addresses and the GID as hex). */
void kvx_verbs_peer_to_json(const struct kvx_verbs_peer *p, cJSON *hello);
/*
 * Reads hello's "verbs" object. 0 and *present = false when there is none;
 * -EPROTO with e naming the field ("verbs.gid") when it is malformed.
 */
int kvx_verbs_peer_from_json(const cJSON *hello, struct kvx_verbs_peer *p, bool *present,
    struct llmd_err *e);

/* One RDMA READ: len bytes at remote_addr (rkey) into local_addr. */
struct kvx_read_wr {
	uint64_t remote_addr, local_addr;
	uint32_t len, rkey;
	bool signaled;
};

struct kvx_read_plan {
	uint64_t remote_base, remote_len, remote_stride;
	uint32_t rkey;
	uint64_t local_base, local_len, local_stride;
	uint64_t block_bytes;
	uint64_t max_wr_bytes;  /* cap per WR (0: KVX_VERBS_MAX_WR_BYTES) */
	uint32_t signal_every;  /* every k-th WR and the last are signaled (0: 1) */
};

/*
 * Plans the READs for runs: a run whose blocks are packed on both sides is
 * one extent, else each block is one; extents are cut into WRs of at most
 * max_wr_bytes, at block boundaries when a block fits. Writes at most cap WRs
 * to out (out may be NULL with cap 0 to count) and returns how many the plan
 * needs, or -ERANGE when a block falls outside either registered region.
 */
int64_t kvx_verbs_plan_reads(const struct kvx_run *runs, size_t n_runs,
    const struct kvx_read_plan *p, struct kvx_read_wr *out, size_t cap);

/* What a device probe found. */
struct kvx_verbs_probe {
	bool built;             /* librdmakv was built with libibverbs */
	int n_devices;
	bool active;            /* the chosen device has an active port */
	char device[64];        /* the chosen device ("" when none) */
	uint8_t port;
};

enum kvx_transport { KVX_TRANSPORT_TCP, KVX_TRANSPORT_VERBS };

/*
 * Chooses the engine's transport for want ("auto", "tcp", "verbs"; NULL:
 * auto) given a probe. "verbs" without a usable device is -ENOTSUP with e
 * saying why (built without libibverbs, no device, no active port); "auto"
 * is verbs when a device has an active port, else tcp. Pulls from a peer that
 * offers no verbs in its hello go over TCP under "auto".
 */
int kvx_transport_select(const char *want, const struct kvx_verbs_probe *probe,
    enum kvx_transport *out, struct llmd_err *e);

/* ---- device (rdma/verbs.c, or rdma/verbs-none.c) ---- */

struct kvx_verbs;       /* device context, protection domain, memory region */
struct kvx_verbs_qp;    /* one RC queue pair and its completion queue */

/* Finds device name (NULL or "": the first with an active port). */
void kvx_verbs_probe(const char *name, struct kvx_verbs_probe *out);
/*
 * Opens the probed device and registers [base, base+len) for local write and
 * remote read. dmabuf_fd >= 0: the region is GPU memory exported as that
 * dma-buf (at dmabuf_offset) and is registered with ibv_reg_dmabuf_mr; else
 * base must be host memory (pinned staging for a GPU pool).
 */
int kvx_verbs_open(const struct kvx_verbs_probe *probe, void *base, uint64_t len, uint64_t stride,
    int dmabuf_fd, uint64_t dmabuf_offset, struct kvx_verbs **out, struct llmd_err *e);
void kvx_verbs_close(struct kvx_verbs *v);
const char *kvx_verbs_device(const struct kvx_verbs *v);

/* Creates a QP in INIT; *mine gets what the peer needs to connect to it. */
int kvx_verbs_qp_new(struct kvx_verbs *v, struct kvx_verbs_qp **out, struct kvx_verbs_peer *mine,
    struct llmd_err *e);
/* INIT -> RTR -> RTS toward the peer. */
int kvx_verbs_qp_connect(struct kvx_verbs_qp *q, const struct kvx_verbs_peer *peer,
    struct llmd_err *e);
/*
 * Posts wrs with at most window outstanding, polling the completion queue;
 * each signaled completion retires the WRs before it. A failed completion is
 * -EIO with e naming its status (ibv_wc_status_str). timeout_ms bounds the
 * whole pull.
 */
int kvx_verbs_qp_read(struct kvx_verbs_qp *q, const struct kvx_read_wr *wrs, size_t n,
    uint32_t window, int64_t timeout_ms, struct llmd_err *e);
void kvx_verbs_qp_free(struct kvx_verbs_qp *q);

#endif
