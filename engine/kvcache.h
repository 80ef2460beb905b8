/*
 * engine/kvcache.h - the paged KV cache: a pool of fixed-size blocks, each
 * holding the keys and values of block_size consecutive token positions of
 * one sequence, for every layer. A sequence owns a block table (block ids
 * in position order): position p lives in block table[p / block_size] at
 * slot p % block_size.
 *
 * Storage (backend memory, f32), one block contiguous for all layers so a
 * block can be moved or transferred in one piece:
 *   data (n_blocks, n_layers, 2 [K, V], block_size, KV * HD)
 *
 * The block allocator (free list) is host bookkeeping and backend-neutral.
 */
#ifndef LLMD_ENGINE_KVCACHE_H
#define LLMD_ENGINE_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model-config.h"
#include "lib/err.h"

struct backend;

#define KV_DEFAULT_BLOCK_SIZE 16

struct kv_cache {
	struct backend *be;
	int n_layers;
	int kv_dim;             /* KV * HD floats per token per layer, K or V */
	int block_size;         /* tokens per block */
	int n_blocks;
	size_t half_stride;     /* floats of one (block, layer, K|V): block_size * kv_dim */
	size_t block_stride;    /* floats of one block: n_layers * 2 * half_stride */
	float *data;            /* (n_blocks, n_layers, 2, block_size, kv_dim) in backend memory */
	int32_t *free_ids;      /* (n_blocks) stack of free block ids */
	int n_free;
};

/* Pool of n_blocks blocks of block_size tokens for model config c. */
int kv_cache_init(struct kv_cache *kv, struct backend *be, const struct model_config *c,
    int block_size, int n_blocks, struct llmd_err *e);
void kv_cache_free(struct kv_cache *kv);
/* Number of blocks that hold n tokens. */
int kv_blocks_for(const struct kv_cache *kv, int n_tokens);
/* Bytes of cache one token needs (all layers, K and V). */
size_t kv_bytes_per_token(const struct kv_cache *kv);

/* K (block_size, kv_dim) of block b, layer l; V follows at + half_stride. */
static inline float *
kv_block_k(const struct kv_cache *kv, int32_t b, int l)
{
	return kv->data + (size_t)b * kv->block_stride + (size_t)l * 2 * kv->half_stride;
}

static inline float *
kv_block_v(const struct kv_cache *kv, int32_t b, int l)
{
	return kv_block_k(kv, b, l) + kv->half_stride;
}

/* A sequence's block table. */
struct kv_seq {
	int32_t *blocks;        /* (n_blocks) */
	int n_blocks;
	int cap;
};

/* Grows seq's table to hold n_tokens positions; -ENOSPC when the pool is empty
 * (the table is left as it was). */
int kv_seq_reserve(struct kv_cache *kv, struct kv_seq *seq, int n_tokens);
/* Returns all blocks of seq to the pool. */
void kv_seq_release(struct kv_cache *kv, struct kv_seq *seq);

#endif
