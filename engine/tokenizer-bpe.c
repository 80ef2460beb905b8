/*
 * engine/tokenizer-bpe.c - the BPE model: one pre-token to ids. Initial
 * symbols are bytes (byte-level models) or characters (SentencePiece-style,
 * with byte_fallback or unk); the lowest-ranked adjacent pair is merged first
 * (leftmost on ties), found with a binary heap over a linked list of symbols.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer-internal.h"
#include "lib/util.h"

void
idvec_push(struct idvec *v, int32_t id)
{
	if (v->n == v->alloc) {
		v->alloc = v->alloc ? v->alloc * 2 : 64;
		v->v = xreallocarray(v->v, v->alloc, sizeof(*v->v));
	}
	v->v[v->n++] = id;
}

struct sym {
	int32_t id;
	int32_t prev, next;     /* -1 at the ends */
};

struct cand {
	int32_t rank;
	int32_t pos;            /* left symbol */
	int32_t left, right;    /* ids when queued, to detect stale entries */
	int32_t merged;
};

static int
cand_less(const struct cand *a, const struct cand *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

struct heap {
	struct cand *v;
	size_t n, alloc;
};

static void
heap_push(struct heap *h, struct cand c)
{
	if (h->n == h->alloc) {
		h->alloc = h->alloc ? h->alloc * 2 : 64;
		h->v = xreallocarray(h->v, h->alloc, sizeof(*h->v));
	}
	size_t i = h->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!cand_less(&c, &h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = c;
}

static struct cand
heap_pop(struct heap *h)
{
	struct cand top = h->v[0], last = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct cand *mc = &last;
		if (l < h->n && cand_less(&h->v[l], mc)) {
			m = l;
			mc = &h->v[l];
		}
		if (r < h->n && cand_less(&h->v[r], mc))
			m = r;
		if (m == i)
			break;
		h->v[i] = h->v[m];
		i = m;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

static void
queue_pair(const struct tokenizer *tok, struct heap *h, const struct sym *s, int32_t pos)
{
	int32_t rank, merged;

	if (pos < 0 || s[pos].next < 0)
		return;
	int32_t a = s[pos].id, b = s[s[pos].next].id;
	if (a < 0 || b < 0)
		return;
	if (pairmap_get(&tok->merges, a, b, &rank, &merged) == 0)
		heap_push(h, (struct cand){ rank, pos, a, b, merged });
}

/* Initial symbols of w; -1 ids stand for unknown characters. */
static size_t
initial_symbols(const struct tokenizer *tok, const char *w, size_t n, struct sym **symp,
    size_t *alloc)
{
	size_t ns = 0;

	if (*alloc < n) {
		*alloc = n;
		*symp = xreallocarray(*symp, n, sizeof(**symp));
	}
	struct sym *s = *symp;
	if (tok->byte_level) {
		for (size_t i = 0; i < n; i++)
			s[ns++].id = tok->byte_ids[(unsigned char)w[i]];
		return ns;
	}
	for (size_t i = 0; i < n;) {
		int32_t cp;
		int l = utf8_decode((const unsigned char *)w + i, n - i, &cp);
		int32_t id = strmap_get(&tok->vocab, w + i, (size_t)l);
		if (id >= 0) {
			s[ns++].id = id;
		} else if (tok->byte_fallback && tok->byte_ids[(unsigned char)w[i]] >= 0) {
			for (int k = 0; k < l; k++)
				s[ns++].id = tok->byte_ids[(unsigned char)w[i + (size_t)k]];
		} else {
			s[ns++].id = -1;
		}
		i += (size_t)l;
	}
	return ns;
}

void
bpe_encode_word(const struct tokenizer *tok, const char *w, size_t n, struct idvec *out)
{
	struct sym stack_syms[64];
	struct cand stack_cands[64];
	struct sym *s = stack_syms;
	size_t alloc = ARRAY_SIZE(stack_syms);
	struct heap h = { stack_cands, 0, ARRAY_SIZE(stack_cands) };
	int heap_on_stack = 1;

	if (n == 0)
		return;
	if (tok->ignore_merges) {
		int32_t id = -1;
		if (tok->byte_level) {
			char tmp[256];
			size_t tl = 0;
			if (n * 2 <= sizeof(tmp)) {
				for (size_t i = 0; i < n; i++)
					tl += (size_t)utf8_encode(tok->byte_cp[(unsigned char)w[i]], tmp + tl);
				id = strmap_get(&tok->vocab, tmp, tl);
			}
		} else {
			id = strmap_get(&tok->vocab, w, n);
		}
		if (id >= 0) {
			idvec_push(out, id);
			return;
		}
	}

	struct sym *heap_syms = NULL;
	size_t ns;
	if (n > alloc) {
		alloc = 0;
		ns = initial_symbols(tok, w, n, &heap_syms, &alloc);
		s = heap_syms;
	} else {
		ns = initial_symbols(tok, w, n, &s, &alloc);
	}
	for (size_t i = 0; i < ns; i++) {
		s[i].prev = (int32_t)i - 1;
		s[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
	}
	for (size_t i = 0; i + 1 < ns; i++) {
		if (h.n == h.alloc && heap_on_stack) {
			struct cand *v = xreallocarray(NULL, h.alloc * 2, sizeof(*v));
			memcpy(v, h.v, h.n * sizeof(*v));
			h.v = v;
			h.alloc *= 2;
			heap_on_stack = 0;
		}
		queue_pair(tok, &h, s, (int32_t)i);
	}
	while (h.n) {
		struct cand c = heap_pop(&h);
		struct sym *l = &s[c.pos];
		if (l->id != c.left || l->next < 0 || s[l->next].id != c.right)
			continue;
		int32_t r = l->next;
		l->id = c.merged;
		l->next = s[r].next;
		if (l->next >= 0)
			s[l->next].prev = c.pos;
		s[r].id = -2;   /* dead */
		if (h.n + 2 > h.alloc && heap_on_stack) {
			struct cand *v = xreallocarray(NULL, h.alloc * 2, sizeof(*v));
			memcpy(v, h.v, h.n * sizeof(*v));
			h.v = v;
			h.alloc *= 2;
			heap_on_stack = 0;
		}
		queue_pair(tok, &h, s, l->prev);
		queue_pair(tok, &h, s, c.pos);
	}
	int prev_unk = 0;
	for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next) {
		if (s[i].id >= 0) {
			idvec_push(out, s[i].id);
			prev_unk = 0;
		} else if (tok->unk_id >= 0 && !(tok->fuse_unk && prev_unk)) {
			idvec_push(out, tok->unk_id);
			prev_unk = 1;
		}
	}
	if (!heap_on_stack)
		free(h.v);
	free(heap_syms);
}
