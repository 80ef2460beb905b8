/*
 * engine/blockmgr.h - the paged KV-cache block manager with automatic prefix
 * caching (vLLM v1 conventions). Pure bookkeeping: it hands out block ids; the
 * KV memory itself belongs to the forward pass (engine/kvcache.h).
 *
 * The pool has n_blocks blocks of block_size token slots. Each sequence owns a
 * block table (struct blockmgr_seq). With prefix caching on, every FULL block
 * whose KV has been computed gets a key chained with its parent's key:
 *
 *   key(0) = root(cache_salt)                       (all zero without a salt)
 *   key(i) = SHA-256(key(i-1) || token ids of block i as int32 LE)[0..16)
 *
 * so equal token blocks under different prefixes (or salts) never share a key.
 * A key -> block map finds cached blocks; a cached block also keeps its token
 * ids and a match requires them to be equal, so a false hit needs identical
 * tokens AND a 128-bit collision of the chained prefix key.
 *
 * Blocks are reference counted: sequences sharing a prefix share blocks. A block
 * whose count drops to 0 goes to the free queue; cached ones keep their key and
 * can be revived by a later match until the queue hands them out again (LRU:
 * the queue pops its head; freed cached blocks join the tail, a sequence's
 * blocks in reverse order so its tail blocks are evicted first; never-cached
 * blocks join the head since they hold nothing reusable).
 *
 * Not thread-safe: one owner (the engine's compute thread through the
 * scheduler) calls it.
 */
#ifndef LLMD_ENGINE_BLOCKMGR_H
#define LLMD_ENGINE_BLOCKMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOCKMGR_KEY_BYTES 16
#define BLOCKMGR_DEFAULT_BLOCK_SIZE 16

struct blockmgr;

struct blockmgr_key {
	uint8_t b[BLOCKMGR_KEY_BYTES];
};

/*
 * A sequence's view of the pool. Owned by the caller (embedded in its request),
 * set up with blockmgr_seq_init(), emptied with blockmgr_free() and its
 * memory freed with blockmgr_seq_release().
 */
struct blockmgr_seq {
	int32_t *blocks;          /* (n_blocks) block table, block ids in token order */
	uint32_t n_blocks;
	uint32_t n_tokens;        /* token slots reserved: match + allocate */
	/* private below */
	uint32_t cap_blocks;
	uint32_t n_hashed;        /* leading blocks registered (or known duplicate) */
	uint32_t n_pending_hits;  /* matched blocks not yet referenced (see match) */
	uint64_t pending_queries; /* stats of the match, counted on allocate */
	struct blockmgr_key root; /* key(0): from the cache salt */
	struct blockmgr_key *keys; /* (cap_keys) key of full block i, i < n_keys */
	uint32_t n_keys, cap_keys;
};

struct blockmgr_stats {
	uint32_t n_blocks;
	uint32_t block_size;
	uint32_t n_used;            /* refcount > 0 */
	uint32_t n_free;            /* in the free queue, cached or not */
	uint32_t n_cached_free;     /* of n_free, still holding a cached prefix */
	uint32_t n_cached;          /* blocks with a registered key, used or free */
	uint64_t prefix_queries;    /* tokens looked up (vllm:prefix_cache_queries) */
	uint64_t prefix_hits;       /* of those, tokens found (vllm:prefix_cache_hits) */
	uint64_t evictions;         /* cached blocks handed out for new content */
	double usage;               /* n_used / n_blocks (vllm:kv_cache_usage_perc) */
};

/* NULL when n_blocks or block_size is 0 or too large (> INT32_MAX blocks). */
struct blockmgr *blockmgr_new(uint32_t n_blocks, uint32_t block_size, bool enable_prefix_caching);
void blockmgr_destroy(struct blockmgr *bm);

uint32_t blockmgr_block_size(const struct blockmgr *bm);
uint32_t blockmgr_n_blocks(const struct blockmgr *bm);
/* Blocks an allocation can take now (free queue, cached ones included). */
uint32_t blockmgr_n_free(const struct blockmgr *bm);
/* Fraction of blocks referenced by sequences or holds, 0..1. */
double blockmgr_usage(const struct blockmgr *bm);
void blockmgr_get_stats(const struct blockmgr *bm, struct blockmgr_stats *out);

/*
 * An empty sequence; cache_salt (may be NULL/0) isolates its prefix keys (fold
 * a LoRA adapter name or other extra key into it). A sequence's tokens may only
 * grow by appending over its life (the keys of its blocks are kept, also
 * across blockmgr_free(), for a preempted request's recompute).
 */
void blockmgr_seq_init(struct blockmgr_seq *seq, const void *cache_salt, size_t salt_len);
/* Frees seq's memory; call after blockmgr_free(). seq is empty again. */
void blockmgr_seq_release(struct blockmgr_seq *seq);

/*
 * Finds the longest cached prefix of tokens[0..n) in whole blocks, capped at
 * n-1 tokens so the last token is always computed (its logits are needed).
 * seq must hold no blocks. Returns the cached token count (a multiple of the
 * block size, 0 when caching is off) and puts those blocks in seq's table; they
 * are referenced, and queries/hits counted, by the blockmgr_allocate() that
 * follows, which must come before any other allocation in this manager.
 */
uint32_t blockmgr_match_prefix(struct blockmgr *bm, struct blockmgr_seq *seq,
    const int32_t *tokens, uint32_t n);

/*
 * Reserves slots for n_new more tokens (seq->n_tokens += n_new), taking blocks
 * from the free queue (evicting cached ones, oldest first). All or nothing:
 * -ENOSPC when the free queue is too short, -ESTALE when matched blocks were
 * evicted since blockmgr_match_prefix() (free the seq and match again).
 */
int blockmgr_allocate(struct blockmgr *bm, struct blockmgr_seq *seq, uint32_t n_new);

/* Blocks blockmgr_allocate(seq, n_new) would need to take from the free queue. */
uint32_t blockmgr_blocks_needed(const struct blockmgr *bm, const struct blockmgr_seq *seq,
    uint32_t n_new);

/*
 * Registers the full blocks among the first n_computed tokens (whose KV is
 * now written) in the prefix cache; tokens are the sequence's ids from 0. Call
 * after each forward step, prefill and decode alike. A block whose key is
 * already cached in another block stays private (no duplicate entries).
 */
void blockmgr_commit_full_blocks(struct blockmgr *bm, struct blockmgr_seq *seq,
    const int32_t *tokens, uint32_t n_computed);

/* Drops seq's references (cached blocks stay cached) and empties its table. */
void blockmgr_free(struct blockmgr *bm, struct blockmgr_seq *seq);

/*
 * Holds: extra references on blocks, e.g. a finished prefill's blocks kept
 * until a remote decoder has read them. blockmgr_hold() references every block
 * of seq and returns a copy of their ids (caller frees *ids after release);
 * blockmgr_release() drops one reference per id.
 */
int blockmgr_hold(struct blockmgr *bm, const struct blockmgr_seq *seq, int32_t **ids, uint32_t *n);
void blockmgr_release(struct blockmgr *bm, const int32_t *ids, uint32_t n);
/* References of one block (tests, debugging); -1 when out of range. */
int blockmgr_refcount(const struct blockmgr *bm, int32_t block);
/* Whether block holds a registered prefix key. */
bool blockmgr_is_cached(const struct blockmgr *bm, int32_t block);

/*
 * Prefix-cache events, for publishing to a cache-aware router (vLLM's KV
 * events: BlockStored, BlockRemoved, AllBlocksCleared). Called synchronously
 * from the manager's calls; the callback must not call back into it.
 */
enum blockmgr_event_kind {
	BLOCKMGR_EV_STORED,     /* a full block was registered */
	BLOCKMGR_EV_REMOVED,    /* a cached block was evicted for new content */
	BLOCKMGR_EV_CLEARED,    /* blockmgr_reset_prefix_cache() */
};

struct blockmgr_event {
	enum blockmgr_event_kind kind;
	int32_t block;                      /* STORED, REMOVED */
	const struct blockmgr_key *key;     /* STORED, REMOVED */
	const struct blockmgr_key *parent;  /* STORED; NULL for a sequence's first block */
	const int32_t *tokens;              /* STORED: (n_tokens) the block's ids */
	uint32_t n_tokens;
};

typedef void (*blockmgr_event_fn)(void *arg, const struct blockmgr_event *ev);
/* fn NULL turns events off. */
void blockmgr_set_event_cb(struct blockmgr *bm, blockmgr_event_fn fn, void *arg);

/* Forgets every cached prefix; -EBUSY while any block is in use (as vLLM). */
int blockmgr_reset_prefix_cache(struct blockmgr *bm);

/*
 * Verifies the pool's internal invariants (free queue links and counts, every
 * block either referenced or queued, key map and counters); 0 or -EFAULT with
 * a warning naming the first broken one. O(n_blocks): tests and debugging.
 */
int blockmgr_check(const struct blockmgr *bm);

/* key of the block of tokens[0..block_size) under parent (exposed for tests/events). */
void blockmgr_block_key(const struct blockmgr_key *parent, const int32_t *tokens,
    uint32_t block_size, struct blockmgr_key *out);

#endif
