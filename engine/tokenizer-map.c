/*
 * engine/tokenizer-map.c - the tokenizer's open-addressing hash maps: token
 * string -> id (vocabulary, added tokens) and id pair -> merge rank.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer-internal.h"
#include "lib/util.h"

uint64_t
tok_hash(const void *p, size_t n)
{
	/* FNV-1a over 8-byte words, then a final mix. */
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ n;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static size_t
pow2_for(size_t expect)
{
	size_t cap = 16;

	while (cap < expect * 2)
		cap <<= 1;
	return cap;
}

void
strmap_init(struct strmap *m, size_t expect)
{
	memset(m, 0, sizeof(*m));
	m->mask = pow2_for(expect) - 1;
	m->slots = xcalloc(m->mask + 1, sizeof(*m->slots));
}

void
strmap_release(struct strmap *m)
{
	free(m->slots);
	free(m->ents);
	free(m->pool);
	memset(m, 0, sizeof(*m));
}

static void
strmap_rehash(struct strmap *m)
{
	size_t cap = (m->mask + 1) * 2;

	free(m->slots);
	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->mask = cap - 1;
	for (size_t i = 0; i < m->n; i++) {
		size_t s = m->ents[i].hash & m->mask;
		while (m->slots[s])
			s = (s + 1) & m->mask;
		m->slots[s] = (uint32_t)(i + 1);
	}
}

static uint32_t *
strmap_find(const struct strmap *m, const char *k, size_t len, uint64_t h)
{
	size_t s = h & m->mask;

	for (;;) {
		uint32_t e = m->slots[s];
		if (e == 0)
			return &m->slots[s];
		const struct strmap_ent *ent = &m->ents[e - 1];
		if (ent->hash == h && ent->len == len && memcmp(m->pool + ent->off, k, len) == 0)
			return &m->slots[s];
		s = (s + 1) & m->mask;
	}
}

void
strmap_put(struct strmap *m, const char *k, size_t len, int32_t id)
{
	uint64_t h = tok_hash(k, len);
	uint32_t *slot = strmap_find(m, k, len, h);

	if (*slot) {
		m->ents[*slot - 1].id = id;
		return;
	}
	if (m->n == m->alloc) {
		m->alloc = m->alloc ? m->alloc * 2 : 64;
		m->ents = xreallocarray(m->ents, m->alloc, sizeof(*m->ents));
	}
	if (m->pool_len + len + 1 > m->pool_alloc) {
		m->pool_alloc = MAX(m->pool_alloc * 2, m->pool_len + len + 1 + 4096);
		m->pool = xrealloc(m->pool, m->pool_alloc);
	}
	memcpy(m->pool + m->pool_len, k, len);
	m->pool[m->pool_len + len] = '\0';
	m->ents[m->n] = (struct strmap_ent){ h, m->pool_len, (uint32_t)len, id };
	m->pool_len += len + 1;
	*slot = (uint32_t)++m->n;
	if (m->n * 2 > m->mask + 1)
		strmap_rehash(m);
}

int32_t
strmap_get(const struct strmap *m, const char *k, size_t len)
{
	if (m->slots == NULL)
		return -1;
	uint32_t *slot = strmap_find(m, k, len, tok_hash(k, len));
	return *slot ? m->ents[*slot - 1].id : -1;
}

static uint64_t
pair_key(int32_t a, int32_t b)
{
	/* +1 so that no key is 0 (the empty mark) */
	return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
}

static size_t
pair_slot(uint64_t key, size_t mask)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ULL;
	return (h ^ (h >> 31)) & mask;
}

void
pairmap_init(struct pairmap *m, size_t expect)
{
	m->mask = pow2_for(expect) - 1;
	m->n = 0;
	m->slots = xcalloc(m->mask + 1, sizeof(*m->slots));
}

void
pairmap_release(struct pairmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static void
pairmap_rehash(struct pairmap *m)
{
	struct pair_ent *old = m->slots;
	size_t oldcap = m->mask + 1;

	m->mask = oldcap * 2 - 1;
	m->slots = xcalloc(m->mask + 1, sizeof(*m->slots));
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key == 0)
			continue;
		size_t s = pair_slot(old[i].key, m->mask);
		while (m->slots[s].key)
			s = (s + 1) & m->mask;
		m->slots[s] = old[i];
	}
	free(old);
}

void
pairmap_put(struct pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
	uint64_t key = pair_key(a, b);
	size_t s = pair_slot(key, m->mask);

	while (m->slots[s].key) {
		if (m->slots[s].key == key)
			return;
		s = (s + 1) & m->mask;
	}
	m->slots[s] = (struct pair_ent){ key, rank, merged };
	if (++m->n * 2 > m->mask + 1)
		pairmap_rehash(m);
}

int
pairmap_get(const struct pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged)
{
	uint64_t key = pair_key(a, b);
	size_t s = pair_slot(key, m->mask);

	while (m->slots[s].key) {
		if (m->slots[s].key == key) {
			*rank = m->slots[s].rank;
			*merged = m->slots[s].merged;
			return 0;
		}
		s = (s + 1) & m->mask;
	}
	return -1;
}
