/*
 * engine/backend-tp.c - the tensor-parallel backend (see backend-tp.h): the
 * rank shards of a model (engine/tp-plan.h), the activation twins of each
 * allocation, each op fanned out over the ranks with per-rank shapes, the
 * all-reduce after the row-parallel GEMMs, and the host-memory communicator
 * that lets CPU ranks stand in for GPUs in tests. Also --device with
 * --tensor-parallel-size (backend_create_tp).
 */
#include "config.h"
#include "engine/backend-tp.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/tp-plan.h"
#include "lib/log.h"
#include "lib/util.h"

/* What a model pointer is, for the ops that shard it. */
enum tp_role {
	R_WQ, R_WK, R_WV, R_WO, R_GATE, R_UP, R_DOWN, R_BQ, R_BK, R_BV, R_QNORM, R_KNORM,
	R_LM_HEAD,
};

struct tp_role_entry {
	const void *p;
	int layer;
	enum tp_role role;
};

/* An allocation: rank 0's pointer and its twins. */
struct tp_twin {
	char *p0;
	size_t bytes;
	void **p;               /* (n) p[0] == p0 */
};

/* A host copy of a row-parallel shard (mmapped so it can be released while
 * its address stays reserved: the ranks' weight maps key on it). */
struct tp_copy {
	void *p;
	size_t bytes;
};

struct backend_tp {
	struct backend base;
	struct backend_ops ops;         /* tp_ops, less what rank 0 lacks */
	int n;
	struct backend **rank;          /* (n) */
	struct tp_comm comm;

	struct tp_plan plan;
	const struct model *m;          /* the prepared model, NULL before */
	struct model *shard;            /* (n) each rank's shard of m */
	struct tp_copy *copies;         /* (n * n_layers * 2) wo, w_down columns */
	int n_copies;
	struct tp_role_entry *roles;    /* sorted by p */
	int n_roles;

	struct tp_twin *twins;
	int n_twins, cap_twins;

	struct kv_cache *kvr;           /* (n) the rank views of the last kv */
	float **red;                    /* (n) all-reduce buffers */
};

static struct backend_tp *
tpb(struct backend *be)
{
	return (struct backend_tp *)be;
}

static void
enter(struct backend_tp *t, int r)
{
	if (t->comm.enter)
		t->comm.enter(t->comm.ctx, r);
}

/* Rank r's twin of activation pointer p (or of a pointer inside one). */
static void *
twin(struct backend_tp *t, const void *p, int r)
{
	const char *q = p;
	if (r == 0 || p == NULL)
		return (void *)(uintptr_t)p;
	for (int i = 0; i < t->n_twins; i++) {
		const struct tp_twin *w = &t->twins[i];
		if (q >= w->p0 && q < w->p0 + (w->bytes ? w->bytes : 1))
			return (char *)w->p[r] + (q - w->p0);
	}
	fatalx("tp: %p is not memory of this backend (alloc it through the tp backend)", p);
}

static int
role_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct tp_role_entry *)a)->p;
	uintptr_t y = (uintptr_t)((const struct tp_role_entry *)b)->p;
	return x < y ? -1 : x > y;
}

/* The role of model pointer p, or NULL for one that is replicated as it is. */
static const struct tp_role_entry *
role_of(const struct backend_tp *t, const void *p)
{
	struct tp_role_entry key = { p, 0, R_WQ };
	if (t->roles == NULL)
		return NULL;
	return bsearch(&key, t->roles, (size_t)t->n_roles, sizeof(key), role_cmp);
}

/* ---- memory ---- */

static void *
tp_alloc(struct backend *be, size_t bytes)
{
	struct backend_tp *t = tpb(be);
	void **p = xcalloc((size_t)t->n, sizeof(*p));
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		p[r] = t->rank[r]->ops->alloc(t->rank[r], bytes);
		if (p[r] == NULL) {
			while (r-- > 0) {
				enter(t, r);
				t->rank[r]->ops->free(t->rank[r], p[r]);
			}
			free(p);
			return NULL;
		}
	}
	if (t->n_twins == t->cap_twins) {
		t->cap_twins = t->cap_twins ? 2 * t->cap_twins : 16;
		t->twins = xreallocarray(t->twins, (size_t)t->cap_twins, sizeof(*t->twins));
	}
	t->twins[t->n_twins].p0 = p[0];
	t->twins[t->n_twins].bytes = bytes;
	t->twins[t->n_twins].p = p;
	t->n_twins++;
	return p[0];
}

static void
tp_free(struct backend *be, void *p)
{
	struct backend_tp *t = tpb(be);
	for (int i = 0; i < t->n_twins; i++) {
		if (t->twins[i].p0 != p)
			continue;
		for (int r = 0; r < t->n; r++) {
			enter(t, r);
			t->rank[r]->ops->free(t->rank[r], t->twins[i].p[r]);
		}
		free(t->twins[i].p);
		t->twins[i] = t->twins[--t->n_twins];
		return;
	}
	fatalx("tp: free of %p, which this backend did not allocate", p);
}

static void
tp_to_host(struct backend *be, void *dst, const void *src, size_t bytes)
{
	struct backend_tp *t = tpb(be);
	enter(t, 0);
	t->rank[0]->ops->to_host(t->rank[0], dst, src, bytes);
}

static int
tp_device_memory(struct backend *be, size_t *free_bytes, size_t *total_bytes)
{
	struct backend_tp *t = tpb(be);
	/* the rank with the least free memory: every rank holds a pool as large */
	for (int r = 0; r < t->n; r++) {
		size_t f = 0, tot = 0;
		if (t->rank[r]->ops->device_memory == NULL)
			return -ENOTSUP;
		enter(t, r);
		int rc = t->rank[r]->ops->device_memory(t->rank[r], &f, &tot);
		if (rc < 0)
			return rc;
		if (r == 0 || f < *free_bytes) {
			*free_bytes = f;
			*total_bytes = tot;
		}
	}
	return 0;
}

/* ---- the model's shards ---- */

/* A host buffer for a shard copy, recorded for release. */
static void *
copy_alloc(struct backend_tp *t, size_t bytes, struct llmd_err *e)
{
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		err_set(e, -ENOMEM, "tp", "cannot map %zu bytes for a weight shard", bytes);
		return NULL;
	}
	t->copies[t->n_copies].p = p;
	t->copies[t->n_copies].bytes = bytes ? bytes : 1;
	t->n_copies++;
	return p;
}

/* Gives a copy's memory back, keeping its addresses reserved (PROT_NONE). */
static void
copy_release(struct tp_copy *c)
{
	if (mmap(c->p, c->bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
	    MAP_NORESERVE, -1, 0) == MAP_FAILED)
		log_warnx("tp: cannot release a %zu-byte weight shard copy", c->bytes);
}

/* Fills rank r's shard of m into s. */
static int
shard_model(struct backend_tp *t, const struct model *m, int r, struct model *s,
    struct llmd_err *e)
{
	struct tp_rank_plan rp;
	tp_plan_rank(&t->plan, r, &rp);
	memset(s, 0, sizeof(*s));
	s->cfg = m->cfg;
	s->cfg.n_heads = t->plan.heads_per_rank;
	s->cfg.n_kv_heads = t->plan.kv_heads_per_rank;
	s->cfg.intermediate = t->plan.ff_per_rank;
	s->embed = m->embed;
	/* the LM head runs on rank 0 only (tp_matmul); the other ranks skip an
	 * untied one's upload (a tied one is the embedding, which they need) */
	if (r == 0 || m->lm_head.data == m->embed.data)
		s->lm_head = m->lm_head;
	s->final_norm = m->final_norm;
	s->rope_inv_freq = m->rope_inv_freq;
	s->layers = xcalloc((size_t)m->cfg.n_layers, sizeof(*s->layers));
	for (int l = 0; l < m->cfg.n_layers; l++) {
		const struct layer_weights *w = &m->layers[l];
		struct layer_weights *o = &s->layers[l];
		o->attn_norm = w->attn_norm;
		o->ffn_norm = w->ffn_norm;
		o->q_norm = w->q_norm;
		o->k_norm = w->k_norm;
		o->wq = tp_rows_view(&w->wq, rp.q_rows);
		o->wk = tp_rows_view(&w->wk, rp.kv_rows);
		o->wv = tp_rows_view(&w->wv, rp.kv_rows);
		o->w_gate = tp_rows_view(&w->w_gate, rp.ff_rows);
		o->w_up = tp_rows_view(&w->w_up, rp.ff_rows);
		if (w->bq) {
			o->bq = w->bq + rp.q_rows.begin;
			o->bk = w->bk + rp.kv_rows.begin;
			o->bv = w->bv + rp.kv_rows.begin;
		}
		void *c1 = copy_alloc(t, tp_cols_bytes(&w->wo, rp.o_cols), e);
		if (c1 == NULL)
			return -ENOMEM;
		o->wo = tp_cols_copy(c1, &w->wo, rp.o_cols);
		void *c2 = copy_alloc(t, tp_cols_bytes(&w->w_down, rp.down_cols), e);
		if (c2 == NULL)
			return -ENOMEM;
		o->w_down = tp_cols_copy(c2, &w->w_down, rp.down_cols);
	}
	return 0;
}

static void
add_role(struct backend_tp *t, const void *p, int layer, enum tp_role role)
{
	if (p == NULL)
		return;
	t->roles[t->n_roles].p = p;
	t->roles[t->n_roles].layer = layer;
	t->roles[t->n_roles].role = role;
	t->n_roles++;
}

static int
tp_prepare_model(struct backend *be, const struct model *m, struct llmd_err *e)
{
	struct backend_tp *t = tpb(be);
	int rc, L = m->cfg.n_layers;

	if (t->m == m)
		return 0;
	if (t->m != NULL)
		return err_set(e, -EBUSY, "tp", "another model is already on these ranks");
	if (t->shard != NULL)
		return err_set(e, -EBUSY, "tp", "an earlier prepare_model of these ranks failed");
	if ((rc = tp_plan_init(&t->plan, &m->cfg, t->n, e)) < 0)
		return rc;
	t->roles = xcalloc((size_t)L * 12 + 1, sizeof(*t->roles));
	for (int l = 0; l < L; l++) {
		const struct layer_weights *w = &m->layers[l];
		add_role(t, w->wq.data, l, R_WQ);
		add_role(t, w->wk.data, l, R_WK);
		add_role(t, w->wv.data, l, R_WV);
		add_role(t, w->wo.data, l, R_WO);
		add_role(t, w->w_gate.data, l, R_GATE);
		add_role(t, w->w_up.data, l, R_UP);
		add_role(t, w->w_down.data, l, R_DOWN);
		add_role(t, w->bq, l, R_BQ);
		add_role(t, w->bk, l, R_BK);
		add_role(t, w->bv, l, R_BV);
		add_role(t, w->q_norm, l, R_QNORM);
		add_role(t, w->k_norm, l, R_KNORM);
	}
	add_role(t, m->lm_head.data, -1, R_LM_HEAD);
	qsort(t->roles, (size_t)t->n_roles, sizeof(*t->roles), role_cmp);
	for (int i = 1; i < t->n_roles; i++)
		if (t->roles[i - 1].p == t->roles[i].p) {
			rc = err_set(e, -EINVAL, "tp", "layer %d: two weights share one tensor",
			    t->roles[i].layer);
			goto fail;
		}

	/* rank by rank: cut the shard, hand it over, release the host copies */
	t->shard = xcalloc((size_t)t->n, sizeof(*t->shard));
	t->copies = xcalloc((size_t)t->n * (size_t)L * 2, sizeof(*t->copies));
	for (int r = 0; r < t->n; r++) {
		int first = t->n_copies;
		if ((rc = shard_model(t, m, r, &t->shard[r], e)) < 0)
			goto fail;
		if (t->rank[r]->ops->prepare_model) {
			enter(t, r);
			if ((rc = t->rank[r]->ops->prepare_model(t->rank[r], &t->shard[r], e)) < 0) {
				err_prefix_field(e, "tp rank");
				goto fail;
			}
		}
		if (t->comm.weights_copied)
			for (int i = first; i < t->n_copies; i++)
				copy_release(&t->copies[i]);
	}
	t->m = m;
	log_info("tp: %d ranks, %d of %d heads, %d of %d kv heads%s, %d of %d MLP columns each",
	    t->n, t->plan.heads_per_rank, m->cfg.n_heads, t->plan.kv_heads_per_rank,
	    m->cfg.n_kv_heads, t->plan.kv_replicas > 1 ? " (replicated)" : "",
	    t->plan.ff_per_rank, m->cfg.intermediate);
	return 0;
fail:
	/* the ranks keep what they uploaded until they are destroyed */
	free(t->roles);
	t->roles = NULL;
	t->n_roles = 0;
	return rc;
}

/* ---- ops ---- */

/* Rank r's view of kv: its twin of the pool, its own kv heads per token. */
static struct kv_cache *
kv_of(struct backend_tp *t, const struct kv_cache *kv, int r)
{
	struct kv_cache *k = &t->kvr[r];
	if (t->m && kv->kv_dim != t->plan.kv_heads_per_rank * t->plan.head_dim)
		fatalx("tp: the KV cache has %d floats per token and layer; rank caches hold %d "
		    "(kv_cache_init with tp_kv_heads_per_rank heads)", kv->kv_dim,
		    t->plan.kv_heads_per_rank * t->plan.head_dim);
	*k = *kv;
	k->be = t->rank[r];
	k->data = twin(t, kv->data, r);
	return k;
}

static void
tp_begin_batch(struct backend *be, const struct kv_cache *kv, const struct batch *b, int greedy)
{
	struct backend_tp *t = tpb(be);
	for (int r = 0; r < t->n; r++) {
		if (t->rank[r]->ops->begin_batch == NULL)
			continue;
		enter(t, r);
		t->rank[r]->ops->begin_batch(t->rank[r], kv ? kv_of(t, kv, r) : NULL, b, greedy);
	}
}

static void
tp_embed(struct backend *be, float *x, const struct tensor *emb, const int32_t *tokens, int n)
{
	struct backend_tp *t = tpb(be);
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		t->rank[r]->ops->embed(t->rank[r], twin(t, x, r), emb, tokens, n);
	}
}

static void
tp_rmsnorm(struct backend *be, float *out, const float *x, const float *w, int n, int dim,
    float eps)
{
	struct backend_tp *t = tpb(be);
	const struct tp_role_entry *re = role_of(t, w);
	/* q (n_tok*H, HD), k (n_tok*KV, HD) rows: a rank has n_tok*H/N, n_tok*KV_r */
	if (re && re->role == R_QNORM)
		n = n / t->plan.n_heads * t->plan.heads_per_rank;
	else if (re && re->role == R_KNORM)
		n = n / t->plan.n_kv_heads * t->plan.kv_heads_per_rank;
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		t->rank[r]->ops->rmsnorm(t->rank[r], twin(t, out, r), twin(t, x, r), w, n, dim, eps);
	}
}

/* Rank r's shard of the weight matrix of role re. */
static const struct tensor *
shard_weight(struct backend_tp *t, const struct tp_role_entry *re, int r)
{
	struct layer_weights *w = &t->shard[r].layers[re->layer];
	switch (re->role) {
	case R_WQ: return &w->wq;
	case R_WK: return &w->wk;
	case R_WV: return &w->wv;
	case R_WO: return &w->wo;
	case R_GATE: return &w->w_gate;
	case R_UP: return &w->w_up;
	case R_DOWN: return &w->w_down;
	default: fatalx("tp: matmul with a vector weight (role %d)", (int)re->role);
	}
}

static void
tp_matmul(struct backend *be, float *out, const float *x, const struct tensor *W, int n,
    int accumulate)
{
	struct backend_tp *t = tpb(be);
	const struct tp_role_entry *re = role_of(t, W->data);

	if (re == NULL || re->role == R_LM_HEAD) {
		/* replicated: the LM head (logits leave from rank 0) or a weight
		 * the plan does not know, run everywhere */
		int ranks = re ? 1 : t->n;
		for (int r = 0; r < ranks; r++) {
			enter(t, r);
			t->rank[r]->ops->matmul(t->rank[r], twin(t, out, r), twin(t, x, r), W, n,
			    accumulate);
		}
		return;
	}
	int row_parallel = re->role == R_WO || re->role == R_DOWN;
	for (int r = 0; r < t->n; r++) {
		/* row-parallel: x (n, cols_r) @ W_r^T is a partial of out (n, D);
		 * rank 0 adds it to out (the residual), the others hold it alone */
		int acc = row_parallel && r > 0 ? 0 : accumulate;
		enter(t, r);
		t->rank[r]->ops->matmul(t->rank[r], twin(t, out, r), twin(t, x, r),
		    shard_weight(t, re, r), n, acc);
	}
	if (row_parallel) {
		/* out (n, D) = sum over ranks */
		for (int r = 0; r < t->n; r++)
			t->red[r] = twin(t, out, r);
		t->comm.all_reduce(t->comm.ctx, t->red, (size_t)n * (size_t)W->shape[0]);
	}
}

static void
tp_add_bias(struct backend *be, float *x, const float *b, int n, int d)
{
	struct backend_tp *t = tpb(be);
	const struct tp_role_entry *re = role_of(t, b);
	int sharded = re && (re->role == R_BQ || re->role == R_BK || re->role == R_BV);
	for (int r = 0; r < t->n; r++) {
		const float *br = b;
		int dr = d;
		if (sharded) {
			struct layer_weights *w = &t->shard[r].layers[re->layer];
			int q = re->role == R_BQ;
			br = q ? w->bq : re->role == R_BK ? w->bk : w->bv;
			dr = (q ? t->plan.heads_per_rank : t->plan.kv_heads_per_rank) * t->plan.head_dim;
		}
		enter(t, r);
		t->rank[r]->ops->add_bias(t->rank[r], twin(t, x, r), br, n, dr);
	}
}

static void
tp_rope(struct backend *be, float *x, const int32_t *pos, int n, int n_heads, int hd,
    const float *inv_freq)
{
	struct backend_tp *t = tpb(be);
	/* q has H heads, k KV (equal counts split equally) */
	int h = n_heads == t->plan.n_heads ? t->plan.heads_per_rank :
	    n_heads == t->plan.n_kv_heads ? t->plan.kv_heads_per_rank : n_heads;
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		t->rank[r]->ops->rope(t->rank[r], twin(t, x, r), pos, n, h, hd, inv_freq);
	}
}

static void
tp_kv_store(struct backend *be, struct kv_cache *kv, int l, const float *k, const float *v,
    const struct batch *b)
{
	struct backend_tp *t = tpb(be);
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		t->rank[r]->ops->kv_store(t->rank[r], kv_of(t, kv, r), l, twin(t, k, r),
		    twin(t, v, r), b);
	}
}

static void
tp_attention(struct backend *be, float *out, const float *q, struct kv_cache *kv, int l,
    const struct batch *b, int n_heads, int n_kv_heads, int hd, int window)
{
	struct backend_tp *t = tpb(be);
	if (n_heads != t->plan.n_heads || n_kv_heads != t->plan.n_kv_heads)
		fatalx("tp: attention over %d/%d heads, the plan has %d/%d", n_heads, n_kv_heads,
		    t->plan.n_heads, t->plan.n_kv_heads);
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		t->rank[r]->ops->attention(t->rank[r], twin(t, out, r), twin(t, q, r),
		    kv_of(t, kv, r), l, b, t->plan.heads_per_rank, t->plan.kv_heads_per_rank, hd,
		    window);
	}
}

static void
tp_swiglu(struct backend *be, float *g, const float *u, size_t n)
{
	struct backend_tp *t = tpb(be);
	/* g, u (n_tok, F) -> a rank's (n_tok, F/N) */
	size_t nr = n / (size_t)t->plan.intermediate * (size_t)t->plan.ff_per_rank;
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		t->rank[r]->ops->swiglu(t->rank[r], twin(t, g, r), twin(t, u, r), nr);
	}
}

static void
tp_gather_rows(struct backend *be, float *out, const float *x, const int *idx, int m, int dim)
{
	struct backend_tp *t = tpb(be);
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		t->rank[r]->ops->gather_rows(t->rank[r], twin(t, out, r), twin(t, x, r), idx, m, dim);
	}
}

static void
tp_argmax_rows(struct backend *be, int32_t *ids, const float *logits, int n, int V)
{
	struct backend_tp *t = tpb(be);
	enter(t, 0);
	t->rank[0]->ops->argmax_rows(t->rank[0], ids, logits, n, V);
}

static void
tp_sample_rows(struct backend *be, int32_t *ids, const float *logits,
    const struct sample_row_params *p, int n, int V)
{
	struct backend_tp *t = tpb(be);
	enter(t, 0);
	t->rank[0]->ops->sample_rows(t->rank[0], ids, logits, p, n, V);
}

static void
tp_destroy(struct backend *be)
{
	struct backend_tp *t = tpb(be);
	while (t->n_twins > 0)
		tp_free(be, t->twins[0].p0);
	for (int r = 0; r < t->n; r++) {
		enter(t, r);
		backend_destroy(t->rank[r]);   /* waits for its queue */
	}
	if (t->comm.destroy)
		t->comm.destroy(t->comm.ctx);
	for (int i = 0; i < t->n_copies; i++)
		munmap(t->copies[i].p, t->copies[i].bytes);
	if (t->shard)
		for (int r = 0; r < t->n; r++)
			free(t->shard[r].layers);
	free(t->shard);
	free(t->copies);
	free(t->roles);
	free(t->twins);
	free(t->kvr);
	free(t->red);
	free(t->rank);
	free(t);
}

static const struct backend_ops tp_ops = {
	.name = "tp",
	.destroy = tp_destroy,
	.alloc = tp_alloc,
	.free = tp_free,
	.to_host = tp_to_host,
	.embed = tp_embed,
	.rmsnorm = tp_rmsnorm,
	.matmul = tp_matmul,
	.add_bias = tp_add_bias,
	.rope = tp_rope,
	.kv_store = tp_kv_store,
	.attention = tp_attention,
	.swiglu = tp_swiglu,
	.gather_rows = tp_gather_rows,
	.prepare_model = tp_prepare_model,
	.begin_batch = tp_begin_batch,
	.device_memory = tp_device_memory,
	.argmax_rows = tp_argmax_rows,
	.sample_rows = tp_sample_rows,
};

int
backend_tp_create(struct backend **ranks, int n, const struct tp_comm *comm,
    struct backend **out, struct llmd_err *e)
{
	if (n < 2 || n > TP_MAX_RANKS || comm->all_reduce == NULL) {
		for (int r = 0; r < n; r++)
			backend_destroy(ranks[r]);
		if (comm->destroy)
			comm->destroy(comm->ctx);
		return err_set(e, -EINVAL, "--tensor-parallel-size", "%d ranks: 2..%d with an "
		    "all-reduce", n, TP_MAX_RANKS);
	}
	struct backend_tp *t = xcalloc(1, sizeof(*t));
	t->n = n;
	t->rank = xcalloc((size_t)n, sizeof(*t->rank));
	memcpy(t->rank, ranks, (size_t)n * sizeof(*ranks));
	t->comm = *comm;
	t->kvr = xcalloc((size_t)n, sizeof(*t->kvr));
	t->red = xcalloc((size_t)n, sizeof(*t->red));
	t->ops = tp_ops;
	/* optional ops exist only where every rank that runs them has them */
	if (ranks[0]->ops->argmax_rows == NULL)
		t->ops.argmax_rows = NULL;
	if (ranks[0]->ops->sample_rows == NULL)
		t->ops.sample_rows = NULL;
	if (ranks[0]->ops->device_memory == NULL)
		t->ops.device_memory = NULL;
	t->base.ops = &t->ops;
	t->base.n_threads = ranks[0]->n_threads;
	*out = &t->base;
	return 0;
}

int
backend_tp_size(const struct backend *be)
{
	if (be == NULL || be->ops->destroy != tp_destroy)
		return 1;
	return ((const struct backend_tp *)be)->n;
}

/* ---- the host communicator (CPU ranks) ---- */

static void
host_all_reduce(void *ctx, float *const *bufs, size_t count)
{
	int n = *(int *)ctx;
	/* bufs[0] = sum in rank order, then copied to the others */
	for (int r = 1; r < n; r++)
		for (size_t i = 0; i < count; i++)
			bufs[0][i] += bufs[r][i];
	for (int r = 1; r < n; r++)
		memcpy(bufs[r], bufs[0], count * sizeof(float));
}

int
backend_tp_create_host(int n, int n_threads, struct backend **out, struct llmd_err *e)
{
	if (n < 2 || n > TP_MAX_RANKS)
		return err_set(e, -EINVAL, "--tensor-parallel-size", "%d ranks: 2..%d", n,
		    TP_MAX_RANKS);
	struct backend *ranks[TP_MAX_RANKS];
	int *ctx = xmalloc(sizeof(*ctx));
	*ctx = n;
	for (int r = 0; r < n; r++)
		ranks[r] = backend_cpu_create(n_threads);
	struct tp_comm comm = { ctx, NULL, host_all_reduce, free, 0 };
	return backend_tp_create(ranks, n, &comm, out, e);
}

/* ---- --device with --tensor-parallel-size ---- */

int
backend_create_tp(const char *device, int n_threads, int tp, struct backend **out,
    struct llmd_err *e)
{
	if (tp <= 1)
		return backend_create(device, n_threads, out, e);
	if (device != NULL && strcmp(device, "auto") != 0 && strcmp(device, "cuda") != 0)
		return err_set(e, -ENOTSUP, "--tensor-parallel-size", "%d: tensor parallelism needs "
		    "--device cuda (the %s backend runs on one device)", tp, device);
#if defined(HAVE_CUDA) && defined(HAVE_NCCL)
	return backend_cuda_tp_create(tp, out, e);
#elif defined(HAVE_CUDA)
	return err_set(e, -ENOTSUP, "--tensor-parallel-size", "%d: this llmd-engine was built "
	    "without NCCL (nccl.h not found at configure time)", tp);
#else
	return err_set(e, -ENOTSUP, "--tensor-parallel-size", "%d: this llmd-engine was built "
	    "without CUDA (configure --with-cuda, with NCCL)", tp);
#endif
}
