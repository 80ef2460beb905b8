/*
 * router/prefix.c - the approximate prefix-cache index: chained block hashes
 * of prompts, per-endpoint LRUs and the hash -> endpoint-set map kept
 * consistent with them on eviction.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "router/prefix.h"

/* ---- hashing: FNV-1a 64 with a splitmix64 finalizer ---- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t
fnv_add(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

static uint64_t
finalize(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t
hash_chained(const void *block, size_t len, uint64_t prev)
{
	unsigned char le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(prev >> (8 * i));
	return finalize(fnv_add(fnv_add(FNV_OFFSET, block, len), le, sizeof(le)));
}

size_t
prefix_hashes(const char *model, const char *salt, const void *input, size_t len,
    size_t block_chars, size_t max_blocks, uint64_t **out)
{
	const char *p = input;
	uint64_t prev, *h;
	size_t n, i;

	*out = NULL;
	if (block_chars == 0 || len < block_chars || max_blocks == 0)
		return 0;
	if (len > block_chars * max_blocks)
		len = block_chars * max_blocks;
	n = (len + block_chars - 1) / block_chars;
	h = xmalloc(n * sizeof(*h));
	prev = fnv_add(FNV_OFFSET, model != NULL ? model : "", model != NULL ? strlen(model) : 0);
	if (salt != NULL)
		prev = fnv_add(prev, salt, strlen(salt));
	prev = finalize(prev);
	for (i = 0; i < n; i++) {
		size_t off = i * block_chars, blen = MIN(block_chars, len - off);
		h[i] = prev = hash_chained(p + off, blen, prev);
	}
	*out = h;
	return n;
}

/* ---- a chained u64 -> u64 map; entry index 0 is "none" ---- */

struct ment {
	uint64_t key;
	uint64_t val;
	uint32_t next;
};

struct u64map {
	uint32_t *buckets;
	size_t nb;          /* power of two */
	struct ment *ents;
	size_t nents, cap;
	uint32_t free;
	size_t count;
};

static size_t
bucket_of(const struct u64map *m, uint64_t key)
{
	return (size_t)(key ^ (key >> 29)) & (m->nb - 1);
}

static struct ment *
map_find(const struct u64map *m, uint64_t key)
{
	if (m->nb == 0)
		return NULL;
	for (uint32_t i = m->buckets[bucket_of(m, key)]; i != 0; i = m->ents[i].next)
		if (m->ents[i].key == key)
			return &m->ents[i];
	return NULL;
}

static void
map_rehash(struct u64map *m, size_t nb)
{
	free(m->buckets);
	m->buckets = xcalloc(nb, sizeof(*m->buckets));
	m->nb = nb;
	/* relink every live entry (free ones are marked by val == UINT64_MAX key trick: walk free list) */
	{
		unsigned char *dead = xcalloc(m->nents + 1, 1);
		for (uint32_t f = m->free; f != 0; f = m->ents[f].next)
			dead[f] = 1;
		for (size_t i = 1; i <= m->nents; i++) {
			size_t b;
			if (dead[i])
				continue;
			b = bucket_of(m, m->ents[i].key);
			m->ents[i].next = m->buckets[b];
			m->buckets[b] = (uint32_t)i;
		}
		free(dead);
	}
}

/* Returns the entry for key, created with val 0 when absent. */
static struct ment *
map_get_or_add(struct u64map *m, uint64_t key)
{
	struct ment *e = map_find(m, key);
	uint32_t i;
	size_t b;

	if (e != NULL)
		return e;
	if (m->free != 0) {
		i = m->free;
		m->free = m->ents[i].next;
	} else {
		if (m->nents + 1 >= m->cap) {
			m->cap = m->cap ? m->cap * 2 : 64;
			m->ents = xreallocarray(m->ents, m->cap, sizeof(*m->ents));
		}
		i = (uint32_t)++m->nents;
	}
	if (m->count + 1 > m->nb) {
		/* the new slot is not linked yet: mark it free-looking for rehash */
		m->ents[i].next = m->free;
		m->free = i;
		map_rehash(m, m->nb ? m->nb * 2 : 64);
		m->free = m->ents[i].next;
	}
	b = bucket_of(m, key);
	m->ents[i].key = key;
	m->ents[i].val = 0;
	m->ents[i].next = m->buckets[b];
	m->buckets[b] = i;
	m->count++;
	return &m->ents[i];
}

static void
map_del(struct u64map *m, uint64_t key)
{
	uint32_t *pp;

	if (m->nb == 0)
		return;
	for (pp = &m->buckets[bucket_of(m, key)]; *pp != 0; pp = &m->ents[*pp].next) {
		uint32_t i = *pp;
		if (m->ents[i].key == key) {
			*pp = m->ents[i].next;
			m->ents[i].next = m->free;
			m->free = i;
			m->count--;
			return;
		}
	}
}

static void
map_release(struct u64map *m)
{
	free(m->buckets);
	free(m->ents);
	memset(m, 0, sizeof(*m));
}

/* ---- per-slot LRU ---- */

struct lnode {
	uint64_t h;
	uint32_t prev, next;   /* 0: none; nodes[0] unused */
};

struct lru {
	struct u64map where;   /* hash -> node index */
	struct lnode *nodes;
	size_t cap;            /* 0: not sized yet */
	size_t used;           /* nodes handed out (1..used) */
	size_t nalloc;         /* nodes allocated (index 0 included) */
	uint32_t head, tail;   /* head: most recent */
	uint32_t free;
	size_t count;
};

struct prefix_index {
	struct u64map owners;  /* hash -> bitmask of slots */
	struct lru slots[PREFIX_MAX_SLOTS];
};

struct prefix_index *
prefix_index_new(void)
{
	return xcalloc(1, sizeof(struct prefix_index));
}

void
prefix_index_free(struct prefix_index *ix)
{
	if (ix == NULL)
		return;
	for (int s = 0; s < PREFIX_MAX_SLOTS; s++) {
		map_release(&ix->slots[s].where);
		free(ix->slots[s].nodes);
	}
	map_release(&ix->owners);
	free(ix);
}

size_t
prefix_index_match(const struct prefix_index *ix, const uint64_t *h, size_t n, unsigned *counts)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct ment *e = map_find(&ix->owners, h[i]);
		uint64_t mask;

		if (e == NULL || e->val == 0)
			break;
		for (mask = e->val; mask != 0; mask &= mask - 1)
			counts[__builtin_ctzll(mask)]++;
	}
	return i;
}

static void
lru_unlink(struct lru *l, uint32_t i)
{
	struct lnode *nd = &l->nodes[i];

	if (nd->prev != 0)
		l->nodes[nd->prev].next = nd->next;
	else
		l->head = nd->next;
	if (nd->next != 0)
		l->nodes[nd->next].prev = nd->prev;
	else
		l->tail = nd->prev;
	nd->prev = nd->next = 0;
}

static void
lru_push_front(struct lru *l, uint32_t i)
{
	l->nodes[i].prev = 0;
	l->nodes[i].next = l->head;
	if (l->head != 0)
		l->nodes[l->head].prev = i;
	l->head = i;
	if (l->tail == 0)
		l->tail = i;
}

static void
owner_clear(struct prefix_index *ix, uint64_t h, int slot)
{
	struct ment *e = map_find(&ix->owners, h);

	if (e == NULL)
		return;
	e->val &= ~(1ULL << slot);
	if (e->val == 0)
		map_del(&ix->owners, h);
}

void
prefix_index_insert(struct prefix_index *ix, int slot, size_t capacity, const uint64_t *h,
    size_t n)
{
	struct lru *l;

	if (slot < 0 || slot >= PREFIX_MAX_SLOTS)
		return;
	l = &ix->slots[slot];
	if (l->cap == 0) {
		l->cap = capacity > 0 ? capacity : 1;
		l->nalloc = MIN(l->cap + 1, (size_t)1024);
		l->nodes = xcalloc(l->nalloc, sizeof(*l->nodes));
	}
	for (size_t k = 0; k < n; k++) {
		struct ment *w = map_find(&l->where, h[k]);
		uint32_t i;

		if (w != NULL) {
			i = (uint32_t)w->val;
			lru_unlink(l, i);
			lru_push_front(l, i);
			continue;
		}
		if (l->count >= l->cap) {
			/* evict the least recently used */
			i = l->tail;
			lru_unlink(l, i);
			map_del(&l->where, l->nodes[i].h);
			owner_clear(ix, l->nodes[i].h, slot);
			l->count--;
		} else if (l->free != 0) {
			i = l->free;
			l->free = l->nodes[i].next;
		} else {
			i = (uint32_t)++l->used;
			if (l->used >= l->nalloc) {
				l->nalloc = MIN(l->cap + 1, MAX(l->nalloc * 2, l->used + 1));
				l->nodes = xreallocarray(l->nodes, l->nalloc, sizeof(*l->nodes));
			}
		}
		l->nodes[i].h = h[k];
		lru_push_front(l, i);
		map_get_or_add(&l->where, h[k])->val = i;
		map_get_or_add(&ix->owners, h[k])->val |= 1ULL << slot;
		l->count++;
	}
}

void
prefix_index_drop(struct prefix_index *ix, int slot)
{
	struct lru *l;

	if (slot < 0 || slot >= PREFIX_MAX_SLOTS)
		return;
	l = &ix->slots[slot];
	for (uint32_t i = l->head; i != 0; i = l->nodes[i].next)
		owner_clear(ix, l->nodes[i].h, slot);
	map_release(&l->where);
	free(l->nodes);
	memset(l, 0, sizeof(*l));
}

size_t
prefix_index_size(const struct prefix_index *ix, int slot)
{
	if (slot < 0 || slot >= PREFIX_MAX_SLOTS)
		return 0;
	return ix->slots[slot].count;
}
