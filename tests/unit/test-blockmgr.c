/*
 * tests/unit/test-blockmgr.c - the paged KV block manager: prefix-cache
 * accounting, chained keys, shared blocks, LRU eviction, the n-1 cap, -ENOSPC,
 * holds, duplicates and reset.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/blockmgr.h"

/* Fills t[0..n) with base, base+1, ... */
static void seqfill(int32_t *t, uint32_t n, int32_t base)
{
	for (uint32_t i = 0; i < n; i++)
		t[i] = base + (int32_t)i;
}

/* Drops seq's blocks and frees its memory. */
static void done(struct blockmgr *bm, struct blockmgr_seq *q)
{
	blockmgr_free(bm, q);
	blockmgr_seq_release(q);
}

/* match + allocate the rest + commit everything, as a finished prefill does. */
static uint32_t prefill(struct blockmgr *bm, struct blockmgr_seq *q, const int32_t *t, uint32_t n)
{
	uint32_t hit = blockmgr_match_prefix(bm, q, t, n);
	cr_assert_eq(blockmgr_allocate(bm, q, n - hit), 0);
	blockmgr_commit_full_blocks(bm, q, t, n);
	return hit;
}

Test(blockmgr, rejects_bad_geometry)
{
	cr_assert_null(blockmgr_new(0, 16, true));
	cr_assert_null(blockmgr_new(16, 0, true));
}

Test(blockmgr, prefix_hit_miss_accounting_and_sharing)
{
	struct blockmgr *bm = blockmgr_new(8, 4, true);
	struct blockmgr_seq a, b;
	struct blockmgr_stats st;
	int32_t t[10];

	seqfill(t, 10, 100);
	blockmgr_seq_init(&a, NULL, 0);
	blockmgr_seq_init(&b, NULL, 0);

	cr_assert_eq(prefill(bm, &a, t, 10), 0, "cold cache misses");
	cr_assert_eq(a.n_blocks, 3);
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.prefix_queries, 10);
	cr_assert_eq(st.prefix_hits, 0);
	cr_assert_eq(st.n_cached, 2, "only the 2 full blocks are cached");
	cr_assert_eq(st.n_used, 3);

	cr_assert_eq(prefill(bm, &b, t, 10), 8, "two full blocks hit");
	cr_assert_eq(b.n_blocks, 3);
	cr_assert_eq(b.blocks[0], a.blocks[0]);
	cr_assert_eq(b.blocks[1], a.blocks[1]);
	cr_assert_neq(b.blocks[2], a.blocks[2], "the partial block is private");
	cr_assert_eq(blockmgr_refcount(bm, a.blocks[0]), 2);
	cr_assert_eq(blockmgr_refcount(bm, a.blocks[2]), 1);
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.prefix_queries, 20);
	cr_assert_eq(st.prefix_hits, 8);
	cr_assert_eq(st.n_used, 4);
	cr_assert_float_eq(blockmgr_usage(bm), 4.0 / 8.0, 1e-9);

	int32_t shared = a.blocks[0];
	done(bm, &a);
	cr_assert_eq(blockmgr_refcount(bm, shared), 1, "still used by b");
	cr_assert_eq(a.n_blocks, 0);
	done(bm, &b);
	cr_assert_eq(blockmgr_refcount(bm, shared), 0);
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.n_used, 0);
	cr_assert_eq(st.n_free, 8);
	cr_assert_eq(st.n_cached_free, 2, "freed full blocks stay cached");
	cr_assert_float_eq(blockmgr_usage(bm), 0.0, 1e-9);

	/* A third request revives the cached blocks. */
	cr_assert_eq(prefill(bm, &a, t, 10), 8);
	cr_assert_eq(a.blocks[0], shared);
	done(bm, &a);
	blockmgr_destroy(bm);
}

Test(blockmgr, full_prompt_hit_is_capped_at_n_minus_1)
{
	struct blockmgr *bm = blockmgr_new(16, 4, true);
	struct blockmgr_seq a, b;
	int32_t t[9];

	seqfill(t, 9, 7);
	blockmgr_seq_init(&a, NULL, 0);
	blockmgr_seq_init(&b, NULL, 0);
	prefill(bm, &a, t, 9);   /* caches blocks [0,4) and [4,8) */

	/* 8-token prompt, fully cached: only 4 tokens may hit (last block
	 * recomputed so the last token gets logits). */
	cr_assert_eq(blockmgr_match_prefix(bm, &b, t, 8), 4);
	cr_assert_eq(blockmgr_allocate(bm, &b, 4), 0);
	cr_assert_eq(b.n_blocks, 2);
	done(bm, &b);
	/* 9 tokens: both blocks hit, token 8 computed. */
	cr_assert_eq(blockmgr_match_prefix(bm, &b, t, 9), 8);
	cr_assert_eq(blockmgr_allocate(bm, &b, 1), 0);
	done(bm, &b);
	/* 1-token prompt: nothing to hit. */
	cr_assert_eq(blockmgr_match_prefix(bm, &b, t, 1), 0);
	done(bm, &b);
	done(bm, &a);
	blockmgr_destroy(bm);
}

Test(blockmgr, hash_chain_depends_on_parent_and_salt)
{
	struct blockmgr *bm = blockmgr_new(16, 4, true);
	struct blockmgr_seq a, b, c, d;
	int32_t ta[9], tb[9];

	/* Same second block (tokens 4..8), different first block. */
	seqfill(ta, 9, 0);
	seqfill(tb, 9, 0);
	tb[0] = 999;
	blockmgr_seq_init(&a, NULL, 0);
	blockmgr_seq_init(&b, NULL, 0);
	prefill(bm, &a, ta, 9);
	cr_assert_eq(prefill(bm, &b, tb, 9), 0, "first block differs: no hit at all");
	cr_assert_neq(b.blocks[1], a.blocks[1]);
	cr_assert(blockmgr_is_cached(bm, a.blocks[1]));
	cr_assert(blockmgr_is_cached(bm, b.blocks[1]), "equal tokens, other parent: own entry");

	struct blockmgr_key k1, k2, root;
	memset(&root, 0, sizeof(root));
	blockmgr_block_key(&root, ta, 4, &k1);
	blockmgr_block_key(&root, tb, 4, &k2);
	cr_assert_neq(memcmp(k1.b, k2.b, sizeof(k1.b)), 0);
	struct blockmgr_key c1, c2;
	blockmgr_block_key(&k1, ta + 4, 4, &c1);
	blockmgr_block_key(&k2, tb + 4, 4, &c2);
	cr_assert_neq(memcmp(c1.b, c2.b, sizeof(c1.b)), 0);

	/* A third sequence with b's prefix reuses b's chain, not a's. */
	blockmgr_seq_init(&c, NULL, 0);
	cr_assert_eq(prefill(bm, &c, tb, 9), 8);
	cr_assert_eq(c.blocks[1], b.blocks[1]);

	/* A cache salt isolates otherwise equal prompts. */
	blockmgr_seq_init(&d, "tenant-1", 8);
	cr_assert_eq(prefill(bm, &d, ta, 9), 0);
	done(bm, &d);
	blockmgr_seq_init(&d, "tenant-1", 8);
	cr_assert_eq(prefill(bm, &d, ta, 9), 8, "same salt hits");

	done(bm, &a);
	done(bm, &b);
	done(bm, &c);
	done(bm, &d);
	blockmgr_destroy(bm);
}

Test(blockmgr, lru_evicts_oldest_freed_and_tail_blocks_first)
{
	struct blockmgr *bm = blockmgr_new(6, 4, true);
	struct blockmgr_seq a, b, c;
	int32_t ta[8], tb[8], tc[12];
	struct blockmgr_stats st;

	seqfill(ta, 8, 0);
	seqfill(tb, 8, 100);
	seqfill(tc, 12, 200);
	blockmgr_seq_init(&a, NULL, 0);
	blockmgr_seq_init(&b, NULL, 0);
	blockmgr_seq_init(&c, NULL, 0);
	prefill(bm, &a, ta, 8);
	prefill(bm, &b, tb, 8);
	int32_t a0 = a.blocks[0], a1 = a.blocks[1], b0 = b.blocks[0], b1 = b.blocks[1];
	done(bm, &a);   /* a freed first: older */
	done(bm, &b);

	/* 3 blocks: the 2 never-used blocks, then a's TAIL block. */
	cr_assert_eq(blockmgr_allocate(bm, &c, 12), 0);
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.evictions, 1);
	cr_assert_eq(c.blocks[2], a1, "a's tail block was taken");
	cr_assert_not(blockmgr_is_cached(bm, a1));
	cr_assert(blockmgr_is_cached(bm, a0));
	cr_assert(blockmgr_is_cached(bm, b0));
	cr_assert(blockmgr_is_cached(bm, b1));
	done(bm, &c);   /* c's blocks were never cached (not committed) */

	/* Reviving b makes it most recent; a0 is evicted before b's blocks. */
	struct blockmgr_seq b2;
	blockmgr_seq_init(&b2, NULL, 0);
	int32_t tb9[9];
	seqfill(tb9, 9, 100);
	cr_assert_eq(blockmgr_match_prefix(bm, &b2, tb9, 9), 8);
	cr_assert_eq(blockmgr_allocate(bm, &b2, 1), 0);
	done(bm, &b2);
	/* Free queue now: c's 3 uncached blocks (head), a0, then b's blocks. */
	blockmgr_seq_init(&c, NULL, 0);
	cr_assert_eq(blockmgr_allocate(bm, &c, 16), 0);   /* 4 blocks */
	cr_assert_not(blockmgr_is_cached(bm, a0), "a0 evicted");
	cr_assert(blockmgr_is_cached(bm, b0) && blockmgr_is_cached(bm, b1), "b kept");
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.evictions, 2);
	done(bm, &c);
	blockmgr_destroy(bm);
}

Test(blockmgr, enospc_is_all_or_nothing)
{
	struct blockmgr *bm = blockmgr_new(4, 4, true);
	struct blockmgr_seq a, b;
	int32_t t[16];

	seqfill(t, 16, 1);
	blockmgr_seq_init(&a, NULL, 0);
	blockmgr_seq_init(&b, NULL, 0);
	cr_assert_eq(blockmgr_allocate(bm, &a, 17), -ENOSPC);
	cr_assert_eq(a.n_blocks, 0);
	cr_assert_eq(blockmgr_n_free(bm), 4);
	cr_assert_eq(blockmgr_allocate(bm, &a, 10), 0);
	cr_assert_eq(a.n_blocks, 3);
	cr_assert_eq(blockmgr_allocate(bm, &a, 2), 0, "fits the partial block");
	cr_assert_eq(a.n_blocks, 3);
	cr_assert_eq(blockmgr_allocate(bm, &b, 5), -ENOSPC);
	cr_assert_eq(b.n_blocks, 0);
	cr_assert_eq(blockmgr_n_free(bm), 1);
	cr_assert_eq(blockmgr_allocate(bm, &b, 4), 0);
	cr_assert_eq(blockmgr_n_free(bm), 0);
	cr_assert_float_eq(blockmgr_usage(bm), 1.0, 1e-9);
	cr_assert_eq(blockmgr_allocate(bm, &a, 1), -ENOSPC);
	done(bm, &b);
	done(bm, &a);

	/* Cached free blocks count as available: a full cache still allocates. */
	prefill(bm, &a, t, 16);
	done(bm, &a);
	cr_assert_eq(blockmgr_n_free(bm), 4);
	cr_assert_eq(blockmgr_allocate(bm, &b, 16), 0);
	done(bm, &b);

	/* Matched blocks that are free do not count twice. */
	struct blockmgr_seq c;
	blockmgr_seq_init(&c, NULL, 0);
	prefill(bm, &a, t, 9);    /* 3 blocks, 2 full ones cached */
	done(bm, &a);
	cr_assert_eq(blockmgr_allocate(bm, &c, 4), 0);   /* takes the uncached one */
	cr_assert_eq(blockmgr_n_free(bm), 3);
	cr_assert_eq(blockmgr_match_prefix(bm, &b, t, 9), 8);
	cr_assert_eq(blockmgr_blocks_needed(bm, &b, 5), 2);
	cr_assert_eq(blockmgr_allocate(bm, &b, 5), -ENOSPC, "2 revived + 2 new > 3 free");
	cr_assert_eq(blockmgr_n_free(bm), 3, "a failed allocate leaves the pool as it was");
	cr_assert_eq(blockmgr_allocate(bm, &b, 1), 0, "2 revived + 1 new fit");
	cr_assert_eq(blockmgr_n_free(bm), 0);
	done(bm, &b);
	done(bm, &c);
	blockmgr_destroy(bm);
}

Test(blockmgr, decode_commits_blocks_as_they_fill)
{
	struct blockmgr *bm = blockmgr_new(8, 4, true);
	struct blockmgr_seq a, b;
	int32_t t[13];

	seqfill(t, 13, 50);
	blockmgr_seq_init(&a, NULL, 0);
	cr_assert_eq(blockmgr_match_prefix(bm, &a, t, 3), 0);
	cr_assert_eq(blockmgr_allocate(bm, &a, 3), 0);
	blockmgr_commit_full_blocks(bm, &a, t, 3);
	cr_assert_not(blockmgr_is_cached(bm, a.blocks[0]));
	for (uint32_t n = 4; n <= 12; n++) {   /* one decode token a step */
		cr_assert_eq(blockmgr_allocate(bm, &a, 1), 0);
		blockmgr_commit_full_blocks(bm, &a, t, n);
		cr_assert_eq(blockmgr_is_cached(bm, a.blocks[(n - 1) / 4]), n % 4 == 0);
	}
	blockmgr_seq_init(&b, NULL, 0);
	cr_assert_eq(blockmgr_match_prefix(bm, &b, t, 13), 12);
	cr_assert_eq(blockmgr_allocate(bm, &b, 1), 0);
	done(bm, &b);
	done(bm, &a);
	blockmgr_destroy(bm);
}

Test(blockmgr, concurrent_duplicates_are_registered_once)
{
	struct blockmgr *bm = blockmgr_new(8, 4, true);
	struct blockmgr_seq a, b;
	struct blockmgr_stats st;
	int32_t t[9];

	seqfill(t, 9, 3);
	blockmgr_seq_init(&a, NULL, 0);
	blockmgr_seq_init(&b, NULL, 0);
	cr_assert_eq(blockmgr_match_prefix(bm, &a, t, 9), 0);
	cr_assert_eq(blockmgr_allocate(bm, &a, 9), 0);
	cr_assert_eq(blockmgr_match_prefix(bm, &b, t, 9), 0);
	cr_assert_eq(blockmgr_allocate(bm, &b, 9), 0);
	blockmgr_commit_full_blocks(bm, &a, t, 9);
	blockmgr_commit_full_blocks(bm, &b, t, 9);
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.n_cached, 2);
	cr_assert_not(blockmgr_is_cached(bm, b.blocks[0]));
	done(bm, &a);
	done(bm, &b);
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.n_cached_free, 2);
	blockmgr_destroy(bm);
}

Test(blockmgr, hold_keeps_blocks_until_release)
{
	struct blockmgr *bm = blockmgr_new(8, 4, true);
	struct blockmgr_seq a;
	int32_t t[6], *ids;
	uint32_t n;

	seqfill(t, 6, 1);
	blockmgr_seq_init(&a, NULL, 0);
	prefill(bm, &a, t, 6);
	cr_assert_eq(blockmgr_hold(bm, &a, &ids, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(ids[0], a.blocks[0]);
	done(bm, &a);
	cr_assert_eq(blockmgr_refcount(bm, ids[0]), 1);
	cr_assert_eq(blockmgr_refcount(bm, ids[1]), 1);
	cr_assert_float_eq(blockmgr_usage(bm), 2.0 / 8.0, 1e-9);
	cr_assert_eq(blockmgr_reset_prefix_cache(bm), -EBUSY);
	blockmgr_release(bm, ids, n);
	cr_assert_float_eq(blockmgr_usage(bm), 0.0, 1e-9);
	cr_assert(blockmgr_is_cached(bm, ids[0]), "released full blocks stay cached");
	free(ids);
	cr_assert_eq(blockmgr_reset_prefix_cache(bm), 0);
	struct blockmgr_stats st;
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.n_cached, 0);
	blockmgr_destroy(bm);
}

Test(blockmgr, caching_disabled_never_hits)
{
	struct blockmgr *bm = blockmgr_new(8, 4, false);
	struct blockmgr_seq a;
	struct blockmgr_stats st;
	int32_t t[9];

	seqfill(t, 9, 1);
	blockmgr_seq_init(&a, NULL, 0);
	prefill(bm, &a, t, 9);
	done(bm, &a);
	cr_assert_eq(prefill(bm, &a, t, 9), 0);
	done(bm, &a);
	blockmgr_get_stats(bm, &st);
	cr_assert_eq(st.n_cached, 0);
	cr_assert_eq(st.prefix_queries, 0);
	blockmgr_destroy(bm);
}

struct evlog {
	int stored, removed, cleared;
	int32_t last_stored, last_removed;
	bool first_had_no_parent;
	bool parent_chained;
	struct blockmgr_key prev_key;
	int32_t first_token;
};

static void on_event(void *arg, const struct blockmgr_event *ev)
{
	struct evlog *l = arg;

	switch (ev->kind) {
	case BLOCKMGR_EV_STORED:
		if (l->stored == 0) {
			struct blockmgr_key root, k;
			memset(&root, 0, sizeof(root));
			blockmgr_block_key(&root, ev->tokens, ev->n_tokens, &k);
			cr_assert_eq(memcmp(k.b, ev->key->b, sizeof(k.b)), 0,
			    "the manager's keys are blockmgr_block_key()'s");
			l->first_had_no_parent = ev->parent == NULL;
			l->first_token = ev->tokens[0];
		} else {
			l->parent_chained = ev->parent &&
			    memcmp(ev->parent->b, l->prev_key.b, sizeof(l->prev_key.b)) == 0;
		}
		l->prev_key = *ev->key;
		l->stored++;
		l->last_stored = ev->block;
		cr_assert_eq(ev->n_tokens, 4);
		break;
	case BLOCKMGR_EV_REMOVED:
		l->removed++;
		l->last_removed = ev->block;
		break;
	case BLOCKMGR_EV_CLEARED:
		l->cleared++;
		break;
	}
}

Test(blockmgr, events_report_stored_removed_cleared)
{
	struct blockmgr *bm = blockmgr_new(2, 4, true);
	struct blockmgr_seq a;
	struct evlog l = { 0 };
	int32_t t[9];

	seqfill(t, 9, 40);
	blockmgr_set_event_cb(bm, on_event, &l);
	blockmgr_seq_init(&a, NULL, 0);
	prefill(bm, &a, t, 8);
	cr_assert_eq(l.stored, 2);
	cr_assert(l.first_had_no_parent);
	cr_assert(l.parent_chained, "the second block names the first as parent");
	cr_assert_eq(l.first_token, 40);
	int32_t tail = a.blocks[1];
	done(bm, &a);
	cr_assert_eq(blockmgr_allocate(bm, &a, 3), 0);
	cr_assert_eq(l.removed, 1);
	cr_assert_eq(l.last_removed, tail, "tail block evicted first");
	done(bm, &a);
	cr_assert_eq(blockmgr_reset_prefix_cache(bm), 0);
	cr_assert_eq(l.cleared, 1);
	blockmgr_destroy(bm);
}
