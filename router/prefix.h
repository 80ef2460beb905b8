/*
 * router/prefix.h - the approximate prefix-cache index of a pool (upstream
 * approx-prefix-cache-producer): the prompt is hashed in chained blocks of
 * block_size_tokens * 4 characters (the partial tail block too), each
 * endpoint remembers the hashes of the requests sent to it in an LRU of
 * fixed capacity, and a hash -> endpoint-set map answers "how many of this
 * request's blocks does each endpoint probably hold".
 *
 * Endpoints are slots 0..PREFIX_MAX_SLOTS-1 of the pool (endpoints beyond
 * that get no prefix score). Not thread-safe: one event loop owns it.
 */
#ifndef LLMD_ROUTER_PREFIX_H
#define LLMD_ROUTER_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#define PREFIX_MAX_SLOTS 64

struct prefix_index;

/*
 * The chained block hashes of input (prompt text, or the JSON of chat
 * messages, or token ids as 4 bytes each): h0 = H(model || salt),
 * h[i] = H(block_i || le64(h[i-1])), block = block_chars bytes, at most
 * max_blocks blocks (the tail included); input shorter than one block has
 * no hashes. Returns the count; *out (caller frees) holds them.
 */
size_t prefix_hashes(const char *model, const char *salt, const void *input, size_t len,
    size_t block_chars, size_t max_blocks, uint64_t **out);

struct prefix_index *prefix_index_new(void);
void prefix_index_free(struct prefix_index *ix);

/*
 * For each hash in order: stop at the first one no endpoint holds, else
 * counts[slot]++ for every slot holding it. counts has PREFIX_MAX_SLOTS
 * entries (zeroed by the caller). Returns the number of hashes matched by
 * at least one endpoint.
 */
size_t prefix_index_match(const struct prefix_index *ix, const uint64_t *h, size_t n,
    unsigned *counts);
/*
 * Records that slot now holds the hashes (most recent last), evicting its
 * least recently used ones beyond capacity (fixed by the first insert).
 */
void prefix_index_insert(struct prefix_index *ix, int slot, size_t capacity,
    const uint64_t *h, size_t n);
/* Forgets everything slot holds (endpoint removed). */
void prefix_index_drop(struct prefix_index *ix, int slot);
/* Hashes slot holds. */
size_t prefix_index_size(const struct prefix_index *ix, int slot);

#endif
