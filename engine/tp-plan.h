/*
 * engine/tp-plan.h - the tensor-parallel shard plan: which rows and columns
 * of each weight of a decoder layer each of N ranks holds (Megatron-style).
 * Pure C, no device code: the plan is the one place that decides the
 * sharding; engine/backend-tp.c applies it to a model, tests/unit/
 * test-tp-plan.c checks it against an unsharded layer.
 *
 * Shapes (model.h names): D = hidden, H = n_heads, KV = n_kv_heads,
 * HD = head_dim, F = intermediate, N = ranks. Weights are (out, in).
 *
 *   weight          split            rank r holds
 *   wq (H*HD, D)    column-parallel  rows of its q heads (H/N heads)
 *   wk, wv          column-parallel  rows of its kv heads (KV/N heads, or the
 *   (KV*HD, D)                       one kv head its q heads read when KV < N:
 *                                    replicated on N/KV ranks)
 *   bq, bk, bv      with their heads the same element ranges as the rows
 *   q_norm, k_norm  replicated       per-head (HD) weights, applied per head
 *   wo (D, H*HD)    row-parallel     columns of its q heads; partial sums
 *                                    are all-reduced (no bias in the models
 *                                    served; one would be added by rank 0)
 *   w_gate, w_up    column-parallel  rows [r*F/N, (r+1)*F/N)
 *   (F, D)
 *   w_down (D, F)   row-parallel     the same columns; all-reduced
 *   embed, lm_head, replicated       every rank (logits are taken from rank 0)
 *   norms, RoPE
 *
 * The residual stream x (n, D) is replicated: after a row-parallel GEMM,
 * rank 0 holds x + its partial, the other ranks their partial alone, and the
 * all-reduce (sum) leaves x + the full product on every rank.
 */
#ifndef LLMD_ENGINE_TP_PLAN_H
#define LLMD_ENGINE_TP_PLAN_H

#include <stddef.h>

#include "engine/model-config.h"
#include "engine/tensor.h"
#include "lib/err.h"

#define TP_MAX_RANKS 64

/* [begin, end) */
struct tp_range {
	int begin, end;
};

struct tp_plan {
	int n_ranks;
	int hidden, n_heads, n_kv_heads, head_dim, intermediate;
	int heads_per_rank;     /* H / N */
	int kv_heads_per_rank;  /* KV / N, or 1 when KV < N */
	int kv_replicas;        /* ranks holding each kv head: 1, or N / KV when KV < N */
	int ff_per_rank;        /* F / N */
};

/* What rank r holds. Row ranges index the (out) dimension of a weight and
 * the elements of its bias; column ranges the (in) dimension. */
struct tp_rank_plan {
	int rank;
	struct tp_range q_heads;        /* query heads */
	struct tp_range kv_heads;       /* kv heads */
	struct tp_range q_rows;         /* of wq, bq: q_heads * HD */
	struct tp_range kv_rows;        /* of wk, wv, bk, bv: kv_heads * HD */
	struct tp_range o_cols;         /* of wo: == q_rows */
	struct tp_range ff_rows;        /* of w_gate, w_up */
	struct tp_range down_cols;      /* of w_down: == ff_rows */
	int adds_residual;              /* 1 on rank 0: its row-parallel partial carries x */
};

/* Checks that config c splits over n_ranks ranks and fills p. -EINVAL with
 * the config field at fault (num_attention_heads, num_key_value_heads,
 * intermediate_size) or --tensor-parallel-size. */
int tp_plan_init(struct tp_plan *p, const struct model_config *c, int n_ranks,
    struct llmd_err *e);
/* Rank r's share (0 <= r < p->n_ranks). */
void tp_plan_rank(const struct tp_plan *p, int r, struct tp_rank_plan *out);
/* KV heads each rank holds for a model with n_kv_heads and n_ranks ranks
 * (n_kv_heads when n_ranks <= 1); for KV cache sizing before a plan exists. */
int tp_kv_heads_per_rank(int n_kv_heads, int n_ranks);

/* The rows [rows.begin, rows.end) of W (d, k): a view into W's data. */
struct tensor tp_rows_view(const struct tensor *W, struct tp_range rows);
/* Bytes of the columns [cols.begin, cols.end) of W (d, k), all rows. */
size_t tp_cols_bytes(const struct tensor *W, struct tp_range cols);
/* Copies the columns cols of W (d, k) into dst (tp_cols_bytes) and returns
 * the (d, cols) tensor over dst, in W's dtype. */
struct tensor tp_cols_copy(void *dst, const struct tensor *W, struct tp_range cols);

#endif
