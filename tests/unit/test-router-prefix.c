/*
 * tests/unit/test-router-prefix.c - the approximate prefix index: chained
 * block hashes (model, salt, partial tail, block limit), matching that
 * stops at the first unknown block, per-endpoint LRU eviction keeping the
 * hash -> endpoint map consistent, dropping an endpoint.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/prefix.h"

static const char *A64 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *B64 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static size_t
hashes(const char *model, const char *text, uint64_t **h)
{
	return prefix_hashes(model, NULL, text, strlen(text), 64, 256, h);
}

Test(router_prefix, short_input_has_no_hashes)
{
	uint64_t *h;
	cr_assert_eq(hashes("m", "short prompt", &h), 0);
	cr_assert_null(h);
}

Test(router_prefix, blocks_are_chained_and_the_tail_counts)
{
	char s1[300], s2[300];
	uint64_t *h1, *h2, *h3;
	size_t n1, n2;

	snprintf(s1, sizeof(s1), "%s%s%s", A64, A64, "tail");
	snprintf(s2, sizeof(s2), "%s%s%s", A64, B64, "tail");
	n1 = hashes("m", s1, &h1);
	n2 = hashes("m", s2, &h2);
	cr_assert_eq(n1, 3, "two full blocks and the partial tail");
	cr_assert_eq(n2, 3);
	cr_assert_eq(h1[0], h2[0], "same first block, same hash");
	cr_assert_neq(h1[1], h2[1]);
	cr_assert_neq(h1[2], h2[2], "the tail chains on a different parent");
	cr_assert_neq(h1[0], h1[1], "same bytes, different parent");
	cr_assert_eq(hashes("other", s1, &h3), 3);
	cr_assert_neq(h3[0], h1[0], "the model seeds the chain");
	free(h3);
	cr_assert_eq(prefix_hashes("m", "salt", s1, strlen(s1), 64, 256, &h3), 3);
	cr_assert_neq(h3[0], h1[0], "cache_salt seeds the chain");
	free(h3);
	cr_assert_eq(prefix_hashes("m", NULL, s1, strlen(s1), 64, 2, &h3), 2, "block limit");
	cr_assert_eq(h3[1], h1[1]);
	free(h1);
	free(h2);
	free(h3);
}

Test(router_prefix, match_counts_per_endpoint_and_stops_at_a_miss)
{
	struct prefix_index *ix = prefix_index_new();
	char s1[300], s2[300];
	uint64_t *h1, *h2;
	unsigned counts[PREFIX_MAX_SLOTS] = { 0 };
	size_t n1, n2;

	snprintf(s1, sizeof(s1), "%s%s%s", A64, A64, A64);
	snprintf(s2, sizeof(s2), "%s%s%s", A64, B64, A64);
	n1 = hashes("m", s1, &h1);
	n2 = hashes("m", s2, &h2);
	prefix_index_insert(ix, 3, 100, h1, n1);
	prefix_index_insert(ix, 5, 100, h1, 1);
	cr_assert_eq(prefix_index_match(ix, h1, n1, counts), 3);
	cr_assert_eq(counts[3], 3);
	cr_assert_eq(counts[5], 1);
	memset(counts, 0, sizeof(counts));
	cr_assert_eq(prefix_index_match(ix, h2, n2, counts), 1, "second block differs");
	cr_assert_eq(counts[3], 1);
	cr_assert_eq(counts[5], 1);
	prefix_index_drop(ix, 3);
	memset(counts, 0, sizeof(counts));
	cr_assert_eq(prefix_index_match(ix, h1, n1, counts), 1);
	cr_assert_eq(counts[3], 0);
	cr_assert_eq(counts[5], 1);
	cr_assert_eq(prefix_index_size(ix, 3), 0);
	free(h1);
	free(h2);
	prefix_index_free(ix);
}

Test(router_prefix, lru_evicts_the_least_recently_used)
{
	struct prefix_index *ix = prefix_index_new();
	uint64_t h[] = { 11, 22, 33, 44 };
	unsigned counts[PREFIX_MAX_SLOTS] = { 0 };

	prefix_index_insert(ix, 0, 3, h, 3);          /* 11 22 33 */
	prefix_index_insert(ix, 0, 3, &h[0], 1);      /* touch 11: 22 is now oldest */
	prefix_index_insert(ix, 0, 3, &h[3], 1);      /* 44 evicts 22 */
	cr_assert_eq(prefix_index_size(ix, 0), 3);
	cr_assert_eq(prefix_index_match(ix, &h[0], 1, counts), 1);
	cr_assert_eq(prefix_index_match(ix, &h[1], 1, counts), 0, "22 was evicted");
	cr_assert_eq(prefix_index_match(ix, &h[2], 1, counts), 1);
	cr_assert_eq(prefix_index_match(ix, &h[3], 1, counts), 1);
	/* many inserts through a small LRU keep the size bounded */
	for (uint64_t k = 1000; k < 5000; k++)
		prefix_index_insert(ix, 1, 50, &k, 1);
	cr_assert_eq(prefix_index_size(ix, 1), 50);
	{
		uint64_t old = 1000, recent = 4999;
		memset(counts, 0, sizeof(counts));
		cr_assert_eq(prefix_index_match(ix, &old, 1, counts), 0);
		cr_assert_eq(prefix_index_match(ix, &recent, 1, counts), 1);
		cr_assert_eq(counts[1], 1);
	}
	prefix_index_free(ix);
}
