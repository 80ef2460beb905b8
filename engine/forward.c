/*
 * engine/forward.c - the decoder forward pass for a batch of tokens (see
 * forward.h), written once over the backend ops. Shapes: n = tokens in the
 * batch, D = hidden, H/KV = query/kv heads, HD = head_dim, F = intermediate,
 * V = vocab.
 */
#include "config.h"
#include "engine/forward.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sample-ref.h"
#include "lib/util.h"

int
forward_init(struct forward *fw, const struct model *m, struct backend *be, int max_tok,
    struct llmd_err *e)
{
	const struct model_config *c = &m->cfg;
	size_t n = (size_t)max_tok, D = (size_t)c->hidden;
	size_t QD = (size_t)c->n_heads * (size_t)c->head_dim;
	size_t KD = (size_t)c->n_kv_heads * (size_t)c->head_dim, F = (size_t)c->intermediate;

	memset(fw, 0, sizeof(*fw));
	fw->m = m;
	fw->be = be;
	fw->max_tok = max_tok;
	if (max_tok <= 0)
		return err_set(e, -EINVAL, "forward", "max batch tokens must be > 0");
	struct { float **p; size_t floats; } bufs[] = {
		{ &fw->x, n * D }, { &fw->xn, n * D }, { &fw->q, n * QD }, { &fw->k, n * KD },
		{ &fw->v, n * KD }, { &fw->att, n * QD }, { &fw->gate, n * F }, { &fw->up, n * F },
		{ &fw->logits, (size_t)FORWARD_LOGIT_ROWS * (size_t)c->vocab },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bufs); i++) {
		*bufs[i].p = be->ops->alloc(be, bufs[i].floats * sizeof(float));
		if (*bufs[i].p == NULL) {
			forward_free(fw);
			return err_set(e, -ENOMEM, "forward", "cannot allocate activations for %d tokens",
			    max_tok);
		}
	}
	if (be->ops->prepare_model) {
		int rc = be->ops->prepare_model(be, m, e);
		if (rc < 0) {
			forward_free(fw);
			return rc;
		}
	}
	return 0;
}

void
forward_free(struct forward *fw)
{
	float *bufs[] = { fw->x, fw->xn, fw->q, fw->k, fw->v, fw->att, fw->gate, fw->up,
		fw->logits };
	if (fw->be)
		for (size_t i = 0; i < ARRAY_SIZE(bufs); i++)
			if (bufs[i])
				fw->be->ops->free(fw->be, bufs[i]);
	memset(fw, 0, sizeof(*fw));
}

/* Checks the batch rules of forward.h. */
static int
check_batch(const struct forward *fw, const struct kv_cache *kv, const struct batch *b,
    struct llmd_err *e)
{
	if (b->n_tok <= 0 || b->n_tok > fw->max_tok)
		return err_set(e, -EINVAL, "batch", "%d tokens (1..%d)", b->n_tok, fw->max_tok);
	for (int i = 0; i < b->n_tok; i++) {
		if (b->token[i] < 0 || b->token[i] >= fw->m->cfg.vocab)
			return err_set(e, -EINVAL, "batch", "token %d: id %d out of vocabulary (%d)", i,
			    b->token[i], fw->m->cfg.vocab);
		if (b->seq[i] < 0 || b->seq[i] >= b->n_seq)
			return err_set(e, -EINVAL, "batch", "token %d: sequence %d out of range", i,
			    b->seq[i]);
		const struct batch_seq *s = &b->seqs[b->seq[i]];
		if (b->pos[i] < 0 || b->pos[i] / kv->block_size >= s->n_blocks)
			return err_set(e, -EINVAL, "batch",
			    "token %d: position %d outside its block table (%d blocks)", i, b->pos[i],
			    s->n_blocks);
		if (b->pos[i] >= fw->m->cfg.max_pos)
			return err_set(e, -EINVAL, "batch", "token %d: position %d beyond the model's "
			    "%d positions", i, b->pos[i], fw->m->cfg.max_pos);
		for (int j = 0; j < s->n_blocks; j++)
			if (s->block_table[j] < 0 || s->block_table[j] >= kv->n_blocks)
				return err_set(e, -EINVAL, "batch", "sequence %d: block id %d out of "
				    "range", b->seq[i], s->block_table[j]);
	}
	return 0;
}

/* Index of the largest of l (n), the lowest among ties; -1 if all are NaN/-inf. */
static int32_t
argmax_row(const float *l, int n)
{
	int32_t best = -1;
	float bv = -INFINITY;
	for (int i = 0; i < n; i++)
		if (l[i] > bv) {
			bv = l[i];
			best = i;
		}
	return best;
}

/* The forward pass; exactly one of logits_out (n_out, V) and ids_out (n_out)
 * receives the result: argmax ids, or sampled with params (n_out) when given. */
static int
forward_run(struct forward *fw, struct kv_cache *kv, const struct batch *b, float *logits_out,
    int32_t *ids_out, const struct sample_row_params *params, struct llmd_err *e)
{
	const struct model *m = fw->m;
	const struct model_config *c = &m->cfg;
	const struct backend_ops *ops = fw->be->ops;
	struct backend *be = fw->be;
	int n = b->n_tok, D = c->hidden, H = c->n_heads, KV = c->n_kv_heads, HD = c->head_dim;
	int F = c->intermediate;
	int rc;

	if ((rc = check_batch(fw, kv, b, e)) < 0)
		return rc;

	if (ops->begin_batch)
		ops->begin_batch(be, kv, b, ids_out == NULL ? 0 : params ? 2 : 1);
	/* x (n, D) = embed_tokens[token] */
	ops->embed(be, fw->x, &m->embed, b->token, n);
	for (int l = 0; l < c->n_layers; l++) {
		const struct layer_weights *w = &m->layers[l];

		/* attention block: xn (n, D) = rmsnorm(x) */
		ops->rmsnorm(be, fw->xn, fw->x, w->attn_norm, n, D, c->rms_eps);
		/* q (n, H*HD), k (n, KV*HD), v (n, KV*HD) = xn @ W^T (+ b) */
		ops->matmul(be, fw->q, fw->xn, &w->wq, n, 0);
		ops->matmul(be, fw->k, fw->xn, &w->wk, n, 0);
		ops->matmul(be, fw->v, fw->xn, &w->wv, n, 0);
		if (w->bq) {
			ops->add_bias(be, fw->q, w->bq, n, H * HD);
			ops->add_bias(be, fw->k, w->bk, n, KV * HD);
			ops->add_bias(be, fw->v, w->bv, n, KV * HD);
		}
		if (w->q_norm) {
			/* q (n*H, HD), k (n*KV, HD): per-head RMSNorm (Qwen3) */
			ops->rmsnorm(be, fw->q, fw->q, w->q_norm, n * H, HD, c->rms_eps);
			ops->rmsnorm(be, fw->k, fw->k, w->k_norm, n * KV, HD, c->rms_eps);
		}
		/* q (n, H, HD), k (n, KV, HD) rotated at their positions */
		ops->rope(be, fw->q, b->pos, n, H, HD, m->rope_inv_freq);
		ops->rope(be, fw->k, b->pos, n, KV, HD, m->rope_inv_freq);
		/* cache (block, l, K|V, slot, KV*HD) <- k, v */
		ops->kv_store(be, kv, l, fw->k, fw->v, b);
		/* att (n, H*HD) = causal attention over each sequence's positions 0..pos
		 * (the last sliding_window of them for Mistral's sliding window) */
		ops->attention(be, fw->att, fw->q, kv, l, b, H, KV, HD, c->sliding_window);
		/* x (n, D) += att @ wo^T */
		ops->matmul(be, fw->x, fw->att, &w->wo, n, 1);

		/* MLP block: xn (n, D) = rmsnorm(x) */
		ops->rmsnorm(be, fw->xn, fw->x, w->ffn_norm, n, D, c->rms_eps);
		/* gate, up (n, F) = xn @ W^T; gate = silu(gate) * up */
		ops->matmul(be, fw->gate, fw->xn, &w->w_gate, n, 0);
		ops->matmul(be, fw->up, fw->xn, &w->w_up, n, 0);
		ops->swiglu(be, fw->gate, fw->up, (size_t)n * (size_t)F);
		/* x (n, D) += gate @ w_down^T */
		ops->matmul(be, fw->x, fw->gate, &w->w_down, n, 1);
	}

	/* rows that want logits, in batch order */
	int *rows = xmalloc((size_t)n * sizeof(int));
	int n_out = 0;
	for (int i = 0; i < n; i++)
		if (b->want_logits ? b->want_logits[i] != 0 : i == n - 1)
			rows[n_out++] = i;
	/* xn (n_out, D) = rmsnorm(x[rows]); logits (n_out, V) = xn @ lm_head^T,
	 * FORWARD_LOGIT_ROWS rows at a time */
	ops->gather_rows(be, fw->xn, fw->x, rows, n_out, D);
	ops->rmsnorm(be, fw->xn, fw->xn, m->final_norm, n_out, D, c->rms_eps);
	int on_be = params ? ops->sample_rows != NULL : ops->argmax_rows != NULL;
	float *scan = ids_out && !on_be ?
	    xmalloc((size_t)FORWARD_LOGIT_ROWS * (size_t)c->vocab * sizeof(float)) : NULL;
	for (int r = 0; r < n_out; r += FORWARD_LOGIT_ROWS) {
		int rn = MIN(FORWARD_LOGIT_ROWS, n_out - r);
		ops->matmul(be, fw->logits, fw->xn + (size_t)r * D, &m->lm_head, rn, 0);
		if (logits_out) {
			ops->to_host(be, logits_out + (size_t)r * c->vocab, fw->logits,
			    (size_t)rn * (size_t)c->vocab * sizeof(float));
		} else if (on_be && params) {
			ops->sample_rows(be, ids_out + r, fw->logits, params + r, rn, c->vocab);
		} else if (on_be) {
			ops->argmax_rows(be, ids_out + r, fw->logits, rn, c->vocab);
		} else {
			/* ids (rn) = argmax or sample of each logits row, on the host */
			ops->to_host(be, scan, fw->logits, (size_t)rn * (size_t)c->vocab * sizeof(float));
			for (int i = 0; i < rn; i++)
				ids_out[r + i] = params ?
				    sample_row_ref(scan + (size_t)i * c->vocab, c->vocab, &params[r + i]) :
				    argmax_row(scan + (size_t)i * c->vocab, c->vocab);
		}
	}
	free(scan);
	free(rows);
	if (ops->begin_batch)
		ops->begin_batch(be, kv, NULL, 0);
	return n_out;
}

int
forward_batch(struct forward *fw, struct kv_cache *kv, const struct batch *b,
    float *logits_out, struct llmd_err *e)
{
	return forward_run(fw, kv, b, logits_out, NULL, NULL, e);
}

int
forward_batch_greedy(struct forward *fw, struct kv_cache *kv, const struct batch *b,
    int32_t *ids_out, struct llmd_err *e)
{
	return forward_run(fw, kv, b, NULL, ids_out, NULL, e);
}

int
forward_batch_sample(struct forward *fw, struct kv_cache *kv, const struct batch *b,
    const struct sample_row_params *params, int32_t *ids_out, struct llmd_err *e)
{
	return forward_run(fw, kv, b, NULL, ids_out, params, e);
}
