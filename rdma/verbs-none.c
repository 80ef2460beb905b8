/*
 * rdma/verbs-none.c - the device part of the verbs transport when llmd is
 * built without libibverbs: the probe finds nothing and every device call
 * reports why (see rdma/verbs.h).
 */
#include "config.h"
#include "rdma/verbs.h"

#include <errno.h>
#include <string.h>

#define WHY "llmd was built without libibverbs"

void
kvx_verbs_probe(const char *name, struct kvx_verbs_probe *out)
{
	(void)name;
	memset(out, 0, sizeof(*out));
}

int
kvx_verbs_open(const struct kvx_verbs_probe *probe, void *base, uint64_t len, uint64_t stride,
    int dmabuf_fd, uint64_t dmabuf_offset, struct kvx_verbs **out, struct llmd_err *e)
{
	(void)probe, (void)base, (void)len, (void)stride, (void)dmabuf_fd, (void)dmabuf_offset;
	*out = NULL;
	return err_set(e, -ENOTSUP, "transport", WHY);
}

void kvx_verbs_close(struct kvx_verbs *v) { (void)v; }
const char *kvx_verbs_device(const struct kvx_verbs *v) { (void)v; return ""; }

int
kvx_verbs_qp_new(struct kvx_verbs *v, struct kvx_verbs_qp **out, struct kvx_verbs_peer *mine,
    struct llmd_err *e)
{
	(void)v, (void)mine;
	*out = NULL;
	return err_set(e, -ENOTSUP, "transport", WHY);
}

int
kvx_verbs_qp_connect(struct kvx_verbs_qp *q, const struct kvx_verbs_peer *peer, struct llmd_err *e)
{
	(void)q, (void)peer;
	return err_set(e, -ENOTSUP, "transport", WHY);
}

int
kvx_verbs_qp_read(struct kvx_verbs_qp *q, const struct kvx_read_wr *wrs, size_t n, uint32_t window,
    int64_t timeout_ms, struct llmd_err *e)
{
	(void)q, (void)wrs, (void)n, (void)window, (void)timeout_ms;
	return err_set(e, -ENOTSUP, "transport", WHY);
}

void kvx_verbs_qp_free(struct kvx_verbs_qp *q) { (void)q; }
