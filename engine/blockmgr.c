/*
 * engine/blockmgr.c - the paged KV block pool: free queue (LRU evictor),
 * reference counts, the prefix-cache key map and per-sequence block tables.
 * See engine/blockmgr.h for the model.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "engine/blockmgr.h"
#include "lib/log.h"
#include "lib/util.h"

struct block {
	struct blockmgr_key key;   /* valid when cached */
	int32_t refcnt;
	int32_t prev, next;        /* free queue links, -1 at the ends */
	int32_t hnext;             /* key map chain */
	uint8_t cached;            /* key registered in the map */
	uint8_t in_free;           /* in the free queue (refcnt == 0) */
};

struct blockmgr {
	uint32_t n_blocks;
	uint32_t block_size;
	bool caching;
	struct block *blk;         /* (n_blocks) */
	int32_t *tokens;           /* (n_blocks, block_size) ids of cached blocks */
	int32_t *buckets;          /* (n_buckets) key map heads, -1 empty */
	uint32_t bucket_mask;
	int32_t fq_head, fq_tail;  /* free queue: pop at head */
	uint32_t n_free;
	uint32_t n_cached;
	uint32_t n_cached_free;
	uint64_t queries, hits, evictions;
	blockmgr_event_fn event_fn;
	void *event_arg;
	EVP_MD *sha256;            /* fetched once: 3x cheaper than SHA256() per block */
	EVP_MD_CTX *mdctx;
};

/* ---- keys ---- */

void blockmgr_block_key(const struct blockmgr_key *parent, const int32_t *tokens,
    uint32_t block_size, struct blockmgr_key *out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned char le[4 * 64];

	/* The SHA256_Init/Update/Final calls are deprecated in OpenSSL 3; the
	 * one-shot SHA256() is not, so hash one contiguous buffer. */
	size_t len = BLOCKMGR_KEY_BYTES + 4 * (size_t)block_size;
	unsigned char *in = len <= sizeof(le) ? le : xmalloc(len);
	memcpy(in, parent->b, BLOCKMGR_KEY_BYTES);
	unsigned char *p = in + BLOCKMGR_KEY_BYTES;
	for (uint32_t i = 0; i < block_size; i++) {
		uint32_t t = (uint32_t)tokens[i];
		p[4 * i] = (unsigned char)t;
		p[4 * i + 1] = (unsigned char)(t >> 8);
		p[4 * i + 2] = (unsigned char)(t >> 16);
		p[4 * i + 3] = (unsigned char)(t >> 24);
	}
	SHA256(in, len, md);
	memcpy(out->b, md, BLOCKMGR_KEY_BYTES);
	if (in != le)
		free(in);
}

/* blockmgr_block_key() with the manager's digest context. */
static void bm_block_key(struct blockmgr *bm, const struct blockmgr_key *parent,
    const int32_t *tokens, struct blockmgr_key *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned char le[4 * 64];
	unsigned int mdlen = 0;
	uint32_t i = 0;

	if (!bm->mdctx || EVP_DigestInit_ex2(bm->mdctx, bm->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(bm->mdctx, parent->b, BLOCKMGR_KEY_BYTES) != 1) {
		blockmgr_block_key(parent, tokens, bm->block_size, out);
		return;
	}
	while (i < bm->block_size) {
		uint32_t n = MIN(bm->block_size - i, 64u);
		for (uint32_t j = 0; j < n; j++) {
			uint32_t t = (uint32_t)tokens[i + j];
			le[4 * j] = (unsigned char)t;
			le[4 * j + 1] = (unsigned char)(t >> 8);
			le[4 * j + 2] = (unsigned char)(t >> 16);
			le[4 * j + 3] = (unsigned char)(t >> 24);
		}
		EVP_DigestUpdate(bm->mdctx, le, 4 * (size_t)n);
		i += n;
	}
	if (EVP_DigestFinal_ex(bm->mdctx, md, &mdlen) != 1 || mdlen < BLOCKMGR_KEY_BYTES) {
		blockmgr_block_key(parent, tokens, bm->block_size, out);
		return;
	}
	memcpy(out->b, md, BLOCKMGR_KEY_BYTES);
}

static uint64_t key_bucket(const struct blockmgr_key *k)
{
	uint64_t v;

	memcpy(&v, k->b, sizeof(v));
	return v;
}

static bool key_eq(const struct blockmgr_key *a, const struct blockmgr_key *b)
{
	return memcmp(a->b, b->b, BLOCKMGR_KEY_BYTES) == 0;
}

/* ---- free queue ---- */

static void fq_remove(struct blockmgr *bm, int32_t id)
{
	struct block *b = &bm->blk[id];

	if (b->prev >= 0)
		bm->blk[b->prev].next = b->next;
	else
		bm->fq_head = b->next;
	if (b->next >= 0)
		bm->blk[b->next].prev = b->prev;
	else
		bm->fq_tail = b->prev;
	b->prev = b->next = -1;
	b->in_free = 0;
	bm->n_free--;
	if (b->cached)
		bm->n_cached_free--;
}

static void fq_push_tail(struct blockmgr *bm, int32_t id)
{
	struct block *b = &bm->blk[id];

	b->next = -1;
	b->prev = bm->fq_tail;
	if (bm->fq_tail >= 0)
		bm->blk[bm->fq_tail].next = id;
	else
		bm->fq_head = id;
	bm->fq_tail = id;
	b->in_free = 1;
	bm->n_free++;
	if (b->cached)
		bm->n_cached_free++;
}

static void fq_push_head(struct blockmgr *bm, int32_t id)
{
	struct block *b = &bm->blk[id];

	b->prev = -1;
	b->next = bm->fq_head;
	if (bm->fq_head >= 0)
		bm->blk[bm->fq_head].prev = id;
	else
		bm->fq_tail = id;
	bm->fq_head = id;
	b->in_free = 1;
	bm->n_free++;
	if (b->cached)
		bm->n_cached_free++;
}

/* ---- key map ---- */

static int32_t map_lookup(const struct blockmgr *bm, const struct blockmgr_key *k,
    const int32_t *tokens)
{
	int32_t id = bm->buckets[key_bucket(k) & bm->bucket_mask];

	for (; id >= 0; id = bm->blk[id].hnext) {
		if (!key_eq(&bm->blk[id].key, k))
			continue;
		/* Same key: trust it only with the same token ids. */
		if (tokens && memcmp(&bm->tokens[(size_t)id * bm->block_size], tokens,
		    sizeof(int32_t) * bm->block_size) != 0)
			continue;
		return id;
	}
	return -1;
}

static void map_insert(struct blockmgr *bm, int32_t id, const struct blockmgr_key *k,
    const int32_t *tokens)
{
	struct block *b = &bm->blk[id];
	uint64_t h = key_bucket(k) & bm->bucket_mask;

	b->key = *k;
	memcpy(&bm->tokens[(size_t)id * bm->block_size], tokens, sizeof(int32_t) * bm->block_size);
	b->hnext = bm->buckets[h];
	bm->buckets[h] = id;
	b->cached = 1;
	bm->n_cached++;
	if (b->in_free)
		bm->n_cached_free++;
}

static void map_remove(struct blockmgr *bm, int32_t id)
{
	struct block *b = &bm->blk[id];
	int32_t *pp = &bm->buckets[key_bucket(&b->key) & bm->bucket_mask];

	while (*pp >= 0 && *pp != id)
		pp = &bm->blk[*pp].hnext;
	if (*pp == id)
		*pp = b->hnext;
	b->hnext = -1;
	b->cached = 0;
	bm->n_cached--;
	if (b->in_free)
		bm->n_cached_free--;
}

/* ---- events ---- */

void blockmgr_set_event_cb(struct blockmgr *bm, blockmgr_event_fn fn, void *arg)
{
	bm->event_fn = fn;
	bm->event_arg = arg;
}

static void emit(struct blockmgr *bm, enum blockmgr_event_kind kind, int32_t id,
    const struct blockmgr_key *parent)
{
	struct blockmgr_event ev = { .kind = kind, .block = id };

	if (!bm->event_fn)
		return;
	if (kind != BLOCKMGR_EV_CLEARED)
		ev.key = &bm->blk[id].key;
	if (kind == BLOCKMGR_EV_STORED) {
		ev.parent = parent;
		ev.tokens = &bm->tokens[(size_t)id * bm->block_size];
		ev.n_tokens = bm->block_size;
	}
	bm->event_fn(bm->event_arg, &ev);
}

/* ---- pool ---- */

struct blockmgr *blockmgr_new(uint32_t n_blocks, uint32_t block_size, bool enable_prefix_caching)
{
	if (n_blocks == 0 || block_size == 0 || n_blocks > INT32_MAX / 2 || block_size > 1u << 20)
		return NULL;

	struct blockmgr *bm = xcalloc(1, sizeof(*bm));
	bm->n_blocks = n_blocks;
	bm->block_size = block_size;
	bm->caching = enable_prefix_caching;
	bm->blk = xcalloc(n_blocks, sizeof(*bm->blk));
	if (bm->caching)
		bm->tokens = xreallocarray(NULL, (size_t)n_blocks * block_size, sizeof(int32_t));
	uint32_t nb = 1;
	while (nb < 2 * n_blocks)
		nb <<= 1;
	bm->buckets = xreallocarray(NULL, nb, sizeof(int32_t));
	for (uint32_t i = 0; i < nb; i++)
		bm->buckets[i] = -1;
	bm->bucket_mask = nb - 1;
	bm->fq_head = bm->fq_tail = -1;
	bm->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	bm->mdctx = bm->sha256 ? EVP_MD_CTX_new() : NULL;
	for (uint32_t i = 0; i < n_blocks; i++) {
		bm->blk[i].hnext = -1;
		fq_push_tail(bm, (int32_t)i);
	}
	return bm;
}

void blockmgr_destroy(struct blockmgr *bm)
{
	if (!bm)
		return;
	free(bm->blk);
	free(bm->tokens);
	free(bm->buckets);
	EVP_MD_CTX_free(bm->mdctx);
	EVP_MD_free(bm->sha256);
	free(bm);
}

uint32_t blockmgr_block_size(const struct blockmgr *bm)
{
	return bm->block_size;
}

uint32_t blockmgr_n_blocks(const struct blockmgr *bm)
{
	return bm->n_blocks;
}

uint32_t blockmgr_n_free(const struct blockmgr *bm)
{
	return bm->n_free;
}

double blockmgr_usage(const struct blockmgr *bm)
{
	return (double)(bm->n_blocks - bm->n_free) / (double)bm->n_blocks;
}

void blockmgr_get_stats(const struct blockmgr *bm, struct blockmgr_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->n_blocks = bm->n_blocks;
	out->block_size = bm->block_size;
	out->n_used = bm->n_blocks - bm->n_free;
	out->n_free = bm->n_free;
	out->n_cached_free = bm->n_cached_free;
	out->n_cached = bm->n_cached;
	out->prefix_queries = bm->queries;
	out->prefix_hits = bm->hits;
	out->evictions = bm->evictions;
	out->usage = blockmgr_usage(bm);
}

int blockmgr_refcount(const struct blockmgr *bm, int32_t block)
{
	if (block < 0 || (uint32_t)block >= bm->n_blocks)
		return -1;
	return bm->blk[block].refcnt;
}

bool blockmgr_is_cached(const struct blockmgr *bm, int32_t block)
{
	return block >= 0 && (uint32_t)block < bm->n_blocks && bm->blk[block].cached;
}

static void block_ref(struct blockmgr *bm, int32_t id)
{
	struct block *b = &bm->blk[id];

	if (b->refcnt++ == 0 && b->in_free)
		fq_remove(bm, id);
}

static void block_unref(struct blockmgr *bm, int32_t id)
{
	struct block *b = &bm->blk[id];

	if (b->refcnt <= 0) {
		log_warnx("blockmgr: block %d released more often than referenced", (int)id);
		return;
	}
	if (--b->refcnt > 0)
		return;
	/* Nothing reusable in a never-cached block: hand it out first. */
	if (b->cached)
		fq_push_tail(bm, id);
	else
		fq_push_head(bm, id);
}

/* ---- sequences ---- */

void blockmgr_seq_init(struct blockmgr_seq *seq, const void *cache_salt, size_t salt_len)
{
	memset(seq, 0, sizeof(*seq));
	if (cache_salt && salt_len > 0) {
		static const char tag[] = "llmd-prefix-cache-salt:";
		unsigned char md[SHA256_DIGEST_LENGTH];
		unsigned char *in = xmalloc(sizeof(tag) - 1 + salt_len);

		memcpy(in, tag, sizeof(tag) - 1);
		memcpy(in + sizeof(tag) - 1, cache_salt, salt_len);
		SHA256(in, sizeof(tag) - 1 + salt_len, md);
		memcpy(seq->root.b, md, BLOCKMGR_KEY_BYTES);
		free(in);
	}
}

/* Makes seq->keys hold the keys of the first n_full blocks of tokens. */
static void seq_compute_keys(struct blockmgr *bm, struct blockmgr_seq *seq,
    const int32_t *tokens, uint32_t n_full)
{
	if (n_full > seq->cap_keys) {
		uint32_t cap = MAX(n_full, 2 * seq->cap_keys);
		seq->keys = xreallocarray(seq->keys, cap, sizeof(*seq->keys));
		seq->cap_keys = cap;
	}
	for (uint32_t i = seq->n_keys; i < n_full; i++) {
		const struct blockmgr_key *parent = i == 0 ? &seq->root : &seq->keys[i - 1];
		bm_block_key(bm, parent, tokens + (size_t)i * bm->block_size, &seq->keys[i]);
	}
	if (n_full > seq->n_keys)
		seq->n_keys = n_full;
}

static void seq_push_block(struct blockmgr_seq *seq, int32_t id)
{
	if (seq->n_blocks == seq->cap_blocks) {
		uint32_t cap = seq->cap_blocks ? 2 * seq->cap_blocks : 8;
		seq->blocks = xreallocarray(seq->blocks, cap, sizeof(*seq->blocks));
		seq->cap_blocks = cap;
	}
	seq->blocks[seq->n_blocks++] = id;
}

uint32_t blockmgr_match_prefix(struct blockmgr *bm, struct blockmgr_seq *seq,
    const int32_t *tokens, uint32_t n)
{
	if (seq->n_blocks != 0 || seq->n_tokens != 0) {
		log_warnx("blockmgr: prefix match on a sequence that already holds blocks");
		return 0;
	}
	if (!bm->caching || n == 0)
		return 0;

	uint32_t max_blocks = (n - 1) / bm->block_size;
	seq_compute_keys(bm, seq, tokens, max_blocks);
	uint32_t hit = 0;
	while (hit < max_blocks) {
		int32_t id = map_lookup(bm, &seq->keys[hit], tokens + (size_t)hit * bm->block_size);
		if (id < 0)
			break;
		seq_push_block(seq, id);
		hit++;
	}
	seq->n_pending_hits = hit;
	seq->n_hashed = hit;
	seq->n_tokens = hit * bm->block_size;
	seq->pending_queries = n;
	return seq->n_tokens;
}

uint32_t blockmgr_blocks_needed(const struct blockmgr *bm, const struct blockmgr_seq *seq,
    uint32_t n_new)
{
	uint64_t total = (uint64_t)seq->n_tokens + n_new;
	uint64_t want = (total + bm->block_size - 1) / bm->block_size;

	return want > seq->n_blocks ? (uint32_t)(want - seq->n_blocks) : 0;
}

int blockmgr_allocate(struct blockmgr *bm, struct blockmgr_seq *seq, uint32_t n_new)
{
	uint32_t need = blockmgr_blocks_needed(bm, seq, n_new);
	uint32_t avail = bm->n_free;

	if ((uint64_t)seq->n_tokens + n_new > (uint64_t)bm->n_blocks * bm->block_size)
		return -ENOSPC;
	for (uint32_t i = 0; i < seq->n_pending_hits; i++) {
		const struct block *b = &bm->blk[seq->blocks[i]];
		if (!b->cached || !key_eq(&b->key, &seq->keys[i]))
			return -ESTALE;
		if (b->in_free)
			avail--;   /* reviving it takes it off the free queue */
	}
	if (need > avail)
		return -ENOSPC;

	if (seq->n_pending_hits || seq->pending_queries) {
		for (uint32_t i = 0; i < seq->n_pending_hits; i++)
			block_ref(bm, seq->blocks[i]);
		bm->queries += seq->pending_queries;
		bm->hits += (uint64_t)seq->n_pending_hits * bm->block_size;
		seq->n_pending_hits = 0;
		seq->pending_queries = 0;
	}
	for (uint32_t i = 0; i < need; i++) {
		int32_t id = bm->fq_head;
		fq_remove(bm, id);
		if (bm->blk[id].cached) {
			emit(bm, BLOCKMGR_EV_REMOVED, id, NULL);
			map_remove(bm, id);
			bm->evictions++;
		}
		bm->blk[id].refcnt = 1;
		seq_push_block(seq, id);
	}
	seq->n_tokens += n_new;
	return 0;
}

void blockmgr_commit_full_blocks(struct blockmgr *bm, struct blockmgr_seq *seq,
    const int32_t *tokens, uint32_t n_computed)
{
	if (!bm->caching || seq->n_pending_hits)
		return;
	uint32_t full = MIN(n_computed, seq->n_tokens) / bm->block_size;
	full = MIN(full, seq->n_blocks);
	if (full <= seq->n_hashed)
		return;
	seq_compute_keys(bm, seq, tokens, full);
	for (uint32_t i = seq->n_hashed; i < full; i++) {
		int32_t id = seq->blocks[i];
		const int32_t *bt = tokens + (size_t)i * bm->block_size;

		if (bm->blk[id].cached)
			continue;
		if (map_lookup(bm, &seq->keys[i], bt) >= 0)
			continue;   /* computed twice concurrently: keep one entry */
		map_insert(bm, id, &seq->keys[i], bt);
		emit(bm, BLOCKMGR_EV_STORED, id, i == 0 ? NULL : &seq->keys[i - 1]);
	}
	seq->n_hashed = full;
}

void blockmgr_free(struct blockmgr *bm, struct blockmgr_seq *seq)
{
	/* Reverse order: a sequence's tail blocks are evicted before its head. */
	for (uint32_t i = seq->n_blocks; i > seq->n_pending_hits; i--)
		block_unref(bm, seq->blocks[i - 1]);
	/* Keys stay: they depend on the tokens only, which only grow. */
	seq->n_blocks = 0;
	seq->n_tokens = 0;
	seq->n_hashed = 0;
	seq->n_pending_hits = 0;
	seq->pending_queries = 0;
}

void blockmgr_seq_release(struct blockmgr_seq *seq)
{
	free(seq->blocks);
	free(seq->keys);
	struct blockmgr_key root = seq->root;
	memset(seq, 0, sizeof(*seq));
	seq->root = root;
}

int blockmgr_hold(struct blockmgr *bm, const struct blockmgr_seq *seq, int32_t **ids, uint32_t *n)
{
	*ids = NULL;
	*n = 0;
	if (seq->n_pending_hits)
		return -EINVAL;
	if (seq->n_blocks == 0)
		return 0;
	*ids = xreallocarray(NULL, seq->n_blocks, sizeof(int32_t));
	for (uint32_t i = 0; i < seq->n_blocks; i++) {
		block_ref(bm, seq->blocks[i]);
		(*ids)[i] = seq->blocks[i];
	}
	*n = seq->n_blocks;
	return 0;
}

void blockmgr_release(struct blockmgr *bm, const int32_t *ids, uint32_t n)
{
	for (uint32_t i = n; i > 0; i--) {
		int32_t id = ids[i - 1];
		if (id < 0 || (uint32_t)id >= bm->n_blocks) {
			log_warnx("blockmgr: release of unknown block %d", (int)id);
			continue;
		}
		block_unref(bm, id);
	}
}

int blockmgr_reset_prefix_cache(struct blockmgr *bm)
{
	if (bm->n_free != bm->n_blocks)
		return -EBUSY;
	for (uint32_t i = 0; i < bm->n_blocks; i++)
		if (bm->blk[i].cached)
			map_remove(bm, (int32_t)i);
	emit(bm, BLOCKMGR_EV_CLEARED, -1, NULL);
	return 0;
}

#define CHECK(cond, ...) do { \
		if (!(cond)) { \
			log_warnx("blockmgr check: " __VA_ARGS__); \
			return -EFAULT; \
		} \
	} while (0)

int blockmgr_check(const struct blockmgr *bm)
{
	uint32_t n_queued = 0, n_cached = 0, n_cached_free = 0, n_mapped = 0;
	int32_t prev = -1;

	for (int32_t id = bm->fq_head; id >= 0; id = bm->blk[id].next) {
		const struct block *b = &bm->blk[id];
		CHECK(n_queued < bm->n_blocks, "free queue has a cycle");
		CHECK(b->in_free && b->refcnt == 0, "block %d queued with refcount %d", (int)id,
		    (int)b->refcnt);
		CHECK(b->prev == prev, "block %d has a broken prev link", (int)id);
		prev = id;
		n_queued++;
	}
	CHECK(prev == bm->fq_tail, "free queue tail is %d, walk ends at %d", (int)bm->fq_tail,
	    (int)prev);
	CHECK(n_queued == bm->n_free, "%u blocks queued, n_free %u", n_queued, bm->n_free);
	for (uint32_t i = 0; i < bm->n_blocks; i++) {
		const struct block *b = &bm->blk[i];
		CHECK(b->refcnt >= 0, "block %u refcount %d", i, (int)b->refcnt);
		CHECK((b->refcnt == 0) == (b->in_free != 0), "block %u refcount %d, queued %d", i,
		    (int)b->refcnt, (int)b->in_free);
		if (!b->cached)
			continue;
		n_cached++;
		if (b->in_free)
			n_cached_free++;
		CHECK(map_lookup(bm, &b->key, NULL) >= 0, "cached block %u not in the key map", i);
	}
	for (uint32_t h = 0; h <= bm->bucket_mask; h++) {
		for (int32_t id = bm->buckets[h]; id >= 0; id = bm->blk[id].hnext) {
			CHECK(bm->blk[id].cached, "uncached block %d in the key map", (int)id);
			CHECK((key_bucket(&bm->blk[id].key) & bm->bucket_mask) == h,
			    "block %d in the wrong bucket", (int)id);
			CHECK(n_mapped < bm->n_blocks, "key map has a cycle");
			n_mapped++;
		}
	}
	CHECK(n_cached == bm->n_cached && n_mapped == n_cached, "%u cached, %u mapped, counter %u",
	    n_cached, n_mapped, bm->n_cached);
	CHECK(n_cached_free == bm->n_cached_free, "%u cached free, counter %u", n_cached_free,
	    bm->n_cached_free);
	return 0;
}
