/*
 * engine/kvcache.c - the paged KV cache's storage and block allocator (see
 * kvcache.h for the layout).
 */
#include "config.h"
#include "engine/kvcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward.h"
#include "lib/util.h"

int
kv_cache_init(struct kv_cache *kv, struct backend *be, const struct model_config *c,
    int block_size, int n_blocks, struct llmd_err *e)
{
	memset(kv, 0, sizeof(*kv));
	if (block_size <= 0 || n_blocks <= 0)
		return err_set(e, -EINVAL, "kv-cache", "block size and block count must be > 0");
	kv->be = be;
	kv->n_layers = c->n_layers;
	kv->kv_dim = c->n_kv_heads * c->head_dim;
	kv->block_size = block_size;
	kv->n_blocks = n_blocks;
	kv->half_stride = (size_t)block_size * (size_t)kv->kv_dim;
	kv->block_stride = (size_t)kv->n_layers * 2 * kv->half_stride;
	kv->data = be->ops->alloc(be, (size_t)n_blocks * kv->block_stride * sizeof(float));
	if (kv->data == NULL)
		return err_set(e, -ENOMEM, "kv-cache", "cannot allocate %d blocks of %zu bytes",
		    n_blocks, kv->block_stride * sizeof(float));
	kv->free_ids = xmalloc((size_t)n_blocks * sizeof(int32_t));
	/* hand out low ids first */
	for (int i = 0; i < n_blocks; i++)
		kv->free_ids[i] = n_blocks - 1 - i;
	kv->n_free = n_blocks;
	return 0;
}

void
kv_cache_free(struct kv_cache *kv)
{
	if (kv->data)
		kv->be->ops->free(kv->be, kv->data);
	free(kv->free_ids);
	memset(kv, 0, sizeof(*kv));
}

int
kv_blocks_for(const struct kv_cache *kv, int n_tokens)
{
	return (n_tokens + kv->block_size - 1) / kv->block_size;
}

size_t
kv_bytes_per_token(const struct kv_cache *kv)
{
	return (size_t)kv->n_layers * 2 * (size_t)kv->kv_dim * sizeof(float);
}

int
kv_seq_reserve(struct kv_cache *kv, struct kv_seq *seq, int n_tokens)
{
	int need = kv_blocks_for(kv, n_tokens) - seq->n_blocks;
	if (need <= 0)
		return 0;
	if (need > kv->n_free)
		return -ENOSPC;
	if (seq->n_blocks + need > seq->cap) {
		seq->cap = MAX(seq->n_blocks + need, 2 * seq->cap);
		seq->blocks = xreallocarray(seq->blocks, (size_t)seq->cap, sizeof(int32_t));
	}
	while (need-- > 0)
		seq->blocks[seq->n_blocks++] = kv->free_ids[--kv->n_free];
	return 0;
}

void
kv_seq_release(struct kv_cache *kv, struct kv_seq *seq)
{
	for (int i = seq->n_blocks - 1; i >= 0; i--)
		kv->free_ids[kv->n_free++] = seq->blocks[i];
	free(seq->blocks);
	memset(seq, 0, sizeof(*seq));
}
