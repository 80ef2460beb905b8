/*
 * engine/forward.h - the transformer forward pass over a batch of tokens
 * from several sequences and a paged KV cache, and the backend vtable it
 * runs on.
 *
 * forward.c is one readable, backend-neutral path (embedding, per layer:
 * RMSNorm, q/k/v projections (+ Qwen2 biases, Qwen3 q/k norms), RoPE, KV
 * store, causal GQA attention, output projection, SwiGLU MLP; final norm and
 * LM head). Every op goes through struct backend_ops; the CPU backend is
 * engine/backend-cpu.c, a CUDA backend implements the same ops. Activation
 * pointers passed to ops are backend memory (from ops->alloc).
 */
#ifndef LLMD_ENGINE_FORWARD_H
#define LLMD_ENGINE_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/tensor.h"
#include "lib/err.h"

/*
 * A batch: n_tok tokens, each of one sequence. A sequence's tokens appear in
 * increasing position order, and every earlier position of that sequence is
 * already in the cache or earlier in this batch; its block table covers all
 * positions in the batch. Attention of a token at position p is causal over
 * positions 0..p of its sequence.
 */
struct batch_seq {
	const int32_t *block_table;     /* (n_blocks) block ids in position order */
	int n_blocks;
};

struct batch {
	int n_tok;
	const int32_t *token;           /* (n_tok) token ids */
	const int32_t *pos;             /* (n_tok) position within its sequence */
	const int32_t *seq;             /* (n_tok) index into seqs */
	const uint8_t *want_logits;     /* (n_tok) 1: produce logits; NULL: last token only */
	int n_seq;
	const struct batch_seq *seqs;   /* (n_seq) */
};

struct backend;
struct sample_row_params;

struct backend_ops {
	const char *name;
	void (*destroy)(struct backend *be);
	void *(*alloc)(struct backend *be, size_t bytes);      /* zeroed; NULL on OOM */
	void (*free)(struct backend *be, void *p);
	void (*to_host)(struct backend *be, void *dst, const void *src, size_t bytes);

	/* x (n, D) = rows tokens[i] of emb (V, D) */
	void (*embed)(struct backend *be, float *x, const struct tensor *emb, const int32_t *tokens,
	    int n);
	/* out (n, dim) = x (n, dim) / rms(x row) * w (dim); out may be x */
	void (*rmsnorm)(struct backend *be, float *out, const float *x, const float *w, int n,
	    int dim, float eps);
	/* out (n, d) (+)= x (n, k) @ W (d, k)^T; accumulate adds into out */
	void (*matmul)(struct backend *be, float *out, const float *x, const struct tensor *W,
	    int n, int accumulate);
	/* x (n, d) += b (d) per row */
	void (*add_bias)(struct backend *be, float *x, const float *b, int n, int d);
	/* x (n, n_heads, hd): rotate-half RoPE at pos[i] with inv_freq (hd/2) */
	void (*rope)(struct backend *be, float *x, const int32_t *pos, int n, int n_heads, int hd,
	    const float *inv_freq);
	/* stores k, v (n, KV*HD) of layer l at the batch's (seq, pos) slots */
	void (*kv_store)(struct backend *be, struct kv_cache *kv, int l, const float *k,
	    const float *v, const struct batch *b);
	/* out (n, H*HD) = causal softmax(q K^T / sqrt(HD)) V over each token's sequence
	 * (positions pos - window + 1 .. pos when window > 0, else 0 .. pos),
	 * q head h reading kv head h / (H / KV) */
	void (*attention)(struct backend *be, float *out, const float *q, struct kv_cache *kv,
	    int l, const struct batch *b, int n_heads, int n_kv_heads, int hd, int window);
	/* g (n) = silu(g) * u */
	void (*swiglu)(struct backend *be, float *g, const float *u, size_t n);
	/* out (m, dim) = rows idx[0..m) of x (n, dim) */
	void (*gather_rows)(struct backend *be, float *out, const float *x, const int *idx, int m,
	    int dim);

	/* Optional (NULL on the CPU). prepare_model: called once by forward_init
	 * before any op sees m's weights (the CUDA backend uploads them and maps
	 * each host pointer of m to its device copy). begin_batch: called by
	 * forward_batch with b before the ops of that batch and with NULL after,
	 * so a backend may upload b's host arrays (tokens, positions, block
	 * tables) once per step; greedy: the step ends in argmax_rows (1,
	 * forward_batch_greedy) or sample_rows (2, forward_batch_sample) rather than
	 * copies of the logits (0). device_memory: free and total bytes of backend
	 * memory, for KV cache sizing; -ENOTSUP where it does not apply. */
	int (*prepare_model)(struct backend *be, const struct model *m, struct llmd_err *e);
	void (*begin_batch)(struct backend *be, const struct kv_cache *kv, const struct batch *b,
	    int greedy);
	int (*device_memory)(struct backend *be, size_t *free_bytes, size_t *total_bytes);
	/* Optional: host ids (n) = argmax of each row of logits (n, V) in backend
	 * memory, the lowest id among ties, -1 for a row of NaN/-inf (as the
	 * sampler's greedy choice); NULL: forward.c copies the logits and scans. */
	void (*argmax_rows)(struct backend *be, int32_t *ids, const float *logits, int n, int V);
	/* Optional: host ids (n) = the token of each row of logits (n, V) in
	 * backend memory sampled with host params p (n), as sample_row_ref
	 * (engine/sample-ref.h) picks it; NULL: forward.c copies the logits and
	 * runs sample_row_ref. */
	void (*sample_rows)(struct backend *be, int32_t *ids, const float *logits,
	    const struct sample_row_params *p, int n, int V);
};

struct backend {
	const struct backend_ops *ops;
	int n_threads;
};

/* device: "auto", "cpu" or "cuda". "cuda" where this build or machine has no
 * CUDA is an error, not a fallback. */
int backend_create(const char *device, int n_threads, struct backend **out, struct llmd_err *e);
struct backend *backend_cpu_create(int n_threads);
/* The CUDA backend on device 0 of CUDA_VISIBLE_DEVICES (engine/backend-cuda.cu;
 * only in builds with HAVE_CUDA). -ENODEV when no device is usable. */
int backend_cuda_create(struct backend **out, struct llmd_err *e);
/* 1 when this build has CUDA and a device is present (no error report). */
int backend_cuda_available(void);
void backend_destroy(struct backend *be);

/* Scratch for batches of up to max_tok tokens on one model and backend. */
struct forward {
	const struct model *m;
	struct backend *be;
	int max_tok;
	float *x;       /* (max_tok, D) residual stream */
	float *xn;      /* (max_tok, D) normed */
	float *q;       /* (max_tok, H*HD) */
	float *k;       /* (max_tok, KV*HD) */
	float *v;       /* (max_tok, KV*HD) */
	float *att;     /* (max_tok, H*HD) */
	float *gate;    /* (max_tok, F) */
	float *up;      /* (max_tok, F) */
	float *logits;  /* (FORWARD_LOGIT_ROWS, V) */
};

#define FORWARD_LOGIT_ROWS 8

int forward_init(struct forward *fw, const struct model *m, struct backend *be, int max_tok,
    struct llmd_err *e);
void forward_free(struct forward *fw);

/*
 * Runs batch b (n_tok <= max_tok), writing its K/V into kv, and fills
 * logits_out (n_out, V) with the logits of the tokens that want them, in
 * batch order. Returns the number of logit rows, or -EINVAL (with e) for a
 * batch that breaks the rules above.
 */
int forward_batch(struct forward *fw, struct kv_cache *kv, const struct batch *b,
    float *logits_out, struct llmd_err *e);

/*
 * forward_batch for greedy decoding: ids_out (n_out) gets the argmax of each
 * logits row (ties to the lowest id, -1 for a row of NaN/-inf) instead of the
 * logits, so on a GPU only the ids leave the device. Same return value.
 */
int forward_batch_greedy(struct forward *fw, struct kv_cache *kv, const struct batch *b,
    int32_t *ids_out, struct llmd_err *e);

/*
 * forward_batch that samples: ids_out (n_out) gets the token of each logits
 * row drawn with params (n_out, one per row in the same order; see
 * engine/sample-ref.h) instead of the logits: on the backend's sample_rows
 * where it has one, else on the host. Same return value.
 */
int forward_batch_sample(struct forward *fw, struct kv_cache *kv, const struct batch *b,
    const struct sample_row_params *params, int32_t *ids_out, struct llmd_err *e);

#endif
