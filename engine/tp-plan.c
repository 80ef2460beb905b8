/*
 * engine/tp-plan.c - the tensor-parallel shard plan (see tp-plan.h): the
 * divisibility checks and each rank's row and column ranges, and the host
 * helpers that cut a weight into a rank's shard.
 */
#include "config.h"
#include "engine/tp-plan.h"

#include <errno.h>
#include <string.h>

int
tp_kv_heads_per_rank(int n_kv_heads, int n_ranks)
{
	if (n_ranks <= 1)
		return n_kv_heads;
	return n_kv_heads >= n_ranks ? n_kv_heads / n_ranks : 1;
}

int
tp_plan_init(struct tp_plan *p, const struct model_config *c, int n_ranks, struct llmd_err *e)
{
	const char *tps = "--tensor-parallel-size";

	memset(p, 0, sizeof(*p));
	if (n_ranks < 1 || n_ranks > TP_MAX_RANKS)
		return err_set(e, -EINVAL, tps, "%d is not in [1, %d]", n_ranks, TP_MAX_RANKS);
	if (c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 || c->intermediate <= 0 ||
	    c->hidden <= 0)
		return err_set(e, -EINVAL, "config.json", "the model has no heads, head_dim, "
		    "hidden_size or intermediate_size to split");
	if (c->n_heads % c->n_kv_heads != 0)
		return err_set(e, -EINVAL, "num_key_value_heads", "%d does not divide "
		    "num_attention_heads %d", c->n_kv_heads, c->n_heads);
	if (c->n_heads % n_ranks != 0)
		return err_set(e, -EINVAL, "num_attention_heads", "%d attention heads do not split "
		    "over %s %d (not a multiple)", c->n_heads, tps, n_ranks);
	if (c->n_kv_heads >= n_ranks && c->n_kv_heads % n_ranks != 0)
		return err_set(e, -EINVAL, "num_key_value_heads", "%d kv heads do not split over "
		    "%s %d (not a multiple)", c->n_kv_heads, tps, n_ranks);
	if (c->n_kv_heads < n_ranks && n_ranks % c->n_kv_heads != 0)
		return err_set(e, -EINVAL, "num_key_value_heads", "%d kv heads cannot be replicated "
		    "over %s %d (%d is not a multiple of %d)", c->n_kv_heads, tps, n_ranks, n_ranks,
		    c->n_kv_heads);
	if (c->intermediate % n_ranks != 0)
		return err_set(e, -EINVAL, "intermediate_size", "%d does not split over %s %d "
		    "(not a multiple)", c->intermediate, tps, n_ranks);
	p->n_ranks = n_ranks;
	p->hidden = c->hidden;
	p->n_heads = c->n_heads;
	p->n_kv_heads = c->n_kv_heads;
	p->head_dim = c->head_dim;
	p->intermediate = c->intermediate;
	p->heads_per_rank = c->n_heads / n_ranks;
	p->kv_heads_per_rank = tp_kv_heads_per_rank(c->n_kv_heads, n_ranks);
	p->kv_replicas = c->n_kv_heads < n_ranks ? n_ranks / c->n_kv_heads : 1;
	p->ff_per_rank = c->intermediate / n_ranks;
	return 0;
}

static struct tp_range
range(int begin, int count)
{
	struct tp_range r = { begin, begin + count };
	return r;
}

void
tp_plan_rank(const struct tp_plan *p, int r, struct tp_rank_plan *out)
{
	int HD = p->head_dim;

	memset(out, 0, sizeof(*out));
	out->rank = r;
	out->q_heads = range(r * p->heads_per_rank, p->heads_per_rank);
	/* kv heads: a contiguous block of KV/N; replicated, the head of group
	 * r / replicas (its q heads r*H/N .. all lie in that group: the group
	 * size H/KV is replicas * H/N) */
	out->kv_heads = range(r / p->kv_replicas * p->kv_heads_per_rank, p->kv_heads_per_rank);
	out->q_rows = range(out->q_heads.begin * HD, p->heads_per_rank * HD);
	out->kv_rows = range(out->kv_heads.begin * HD, p->kv_heads_per_rank * HD);
	out->o_cols = out->q_rows;
	out->ff_rows = range(r * p->ff_per_rank, p->ff_per_rank);
	out->down_cols = out->ff_rows;
	out->adds_residual = r == 0;
}

struct tensor
tp_rows_view(const struct tensor *W, struct tp_range rows)
{
	struct tensor t = *W;
	size_t row_bytes = (size_t)W->shape[1] * dtype_size(W->dtype);
	t.shape[0] = rows.end - rows.begin;
	t.data = (const char *)W->data + (size_t)rows.begin * row_bytes;
	return t;
}

size_t
tp_cols_bytes(const struct tensor *W, struct tp_range cols)
{
	return (size_t)W->shape[0] * (size_t)(cols.end - cols.begin) * dtype_size(W->dtype);
}

struct tensor
tp_cols_copy(void *dst, const struct tensor *W, struct tp_range cols)
{
	struct tensor t = *W;
	size_t es = dtype_size(W->dtype), k = (size_t)W->shape[1];
	size_t w = (size_t)(cols.end - cols.begin);
	/* dst (d, w) = W[:, cols] */
	for (int64_t i = 0; i < W->shape[0]; i++)
		memcpy((char *)dst + (size_t)i * w * es,
		    (const char *)W->data + ((size_t)i * k + (size_t)cols.begin) * es, w * es);
	t.shape[1] = (int64_t)w;
	t.data = dst;
	return t;
}
