/*
 * engine/tokenizer-encode.c - text to ids: added/special tokens are cut out
 * first (longest match, with single_word/lstrip/rstrip), each remaining
 * segment is normalized (utf8proc for NFC & co.), pre-tokenized (PCRE2 Split,
 * ByteLevel, Metaspace) and handed piece by piece to the BPE model through a
 * small per-call word -> ids cache; the post-processor adds BOS/EOS.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "engine/tokenizer-internal.h"
#include "lib/util.h"

#define CACHE_SLOTS 4096
#define CACHE_MAX_WORD 48
#define CACHE_MIN_TEXT 256

struct cache_ent {
	uint64_t hash;
	uint32_t len;           /* 0: empty slot */
	uint32_t woff;          /* word bytes in cache_words */
	uint32_t off, n;        /* ids in cache_ids */
};

struct enc {
	const struct tokenizer *tok;
	struct idvec *out;
	pcre2_match_data **md;  /* one per pre-tokenizer step */
	struct cache_ent *cache;
	struct idvec cache_ids;
	struct buf cache_words;
	int error;              /* a regex gave up (match limits): the encode fails */
};

static void
model_piece(struct enc *c, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (c->cache == NULL || n > CACHE_MAX_WORD) {
		bpe_encode_word(c->tok, p, n, c->out);
		return;
	}
	uint64_t h = tok_hash(p, n);
	struct cache_ent *ce = &c->cache[h & (CACHE_SLOTS - 1)];
	if (ce->len == n && ce->hash == h && memcmp(c->cache_words.buf + ce->woff, p, n) == 0) {
		for (uint32_t i = 0; i < ce->n; i++)
			idvec_push(c->out, c->cache_ids.v[ce->off + i]);
		return;
	}
	size_t start = c->out->n;
	bpe_encode_word(c->tok, p, n, c->out);
	if (c->cache_ids.n > (1u << 20) || c->cache_words.len > (1u << 22))
		return;   /* arena full: stop caching new words */
	ce->hash = h;
	ce->woff = (uint32_t)c->cache_words.len;
	buf_add(&c->cache_words, p, n);
	ce->len = (uint32_t)n;
	ce->off = (uint32_t)c->cache_ids.n;
	ce->n = (uint32_t)(c->out->n - start);
	for (size_t i = start; i < c->out->n; i++)
		idvec_push(&c->cache_ids, c->out->v[i]);
}

static void pretok(struct enc *c, size_t step, const char *p, size_t n, int first);

/* Regex split of p with the behaviour of step st; sub-pieces go on to step+1. */
static void
split_regex(struct enc *c, size_t step, const struct pretok_step *st, const char *p, size_t n,
    int first)
{
	pcre2_match_data *md = c->md[step];
	size_t pos = 0, gap = 0;   /* gap: start of text not yet emitted */

	while (pos < n) {
		int rc = pcre2_match(st->re, (PCRE2_SPTR)p, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
		if (rc == PCRE2_ERROR_JIT_STACKLIMIT)   /* the interpreter keeps its frames on the heap */
			rc = pcre2_match(st->re, (PCRE2_SPTR)p, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
			    md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			c->error = -E2BIG;
			return;
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t ms = ov[0], me = ov[1];
		if (me == ms) {   /* empty match: step one character on */
			pos = ms + 1;
			while (pos < n && ((unsigned char)p[pos] & 0xc0) == 0x80)
				pos++;
			continue;
		}
		switch (st->behavior) {
		case SPLIT_ISOLATED:
			if (ms > gap)
				pretok(c, step + 1, p + gap, ms - gap, first && gap == 0);
			pretok(c, step + 1, p + ms, me - ms, first && ms == 0);
			gap = me;
			break;
		case SPLIT_REMOVED:
			if (ms > gap)
				pretok(c, step + 1, p + gap, ms - gap, first && gap == 0);
			gap = me;
			break;
		case SPLIT_MERGED_PREV:
			pretok(c, step + 1, p + gap, me - gap, first && gap == 0);
			gap = me;
			break;
		case SPLIT_MERGED_NEXT:
			if (ms > gap)
				pretok(c, step + 1, p + gap, ms - gap, first && gap == 0);
			gap = ms;
			break;
		}
		pos = me;
	}
	if (gap < n)
		pretok(c, step + 1, p + gap, n - gap, first && gap == 0);
}

static void
metaspace(struct enc *c, size_t step, const struct pretok_step *st, const char *p, size_t n,
    int first)
{
	struct buf b = BUF_INIT;
	const char *r = st->replacement;
	size_t rl = st->replacement_len;

	if ((st->prepend == PREPEND_ALWAYS || (st->prepend == PREPEND_FIRST && first)) &&
	    !(n >= rl && memcmp(p, r, rl) == 0) && !(n > 0 && p[0] == ' ' && rl > 0))
		buf_add(&b, r, rl);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == ' ')
			buf_add(&b, r, rl);
		else
			buf_addch(&b, p[i]);
	}
	if (!st->split) {
		pretok(c, step + 1, b.buf, b.len, first);
	} else {
		/* MergedWithNext on the replacement: each piece starts with it */
		size_t start = 0;
		for (size_t i = 1; i + rl <= b.len; i++) {
			if (memcmp(b.buf + i, r, rl) == 0) {
				pretok(c, step + 1, b.buf + start, i - start, first && start == 0);
				start = i;
				i += rl - 1;
			}
		}
		if (start < b.len)
			pretok(c, step + 1, b.buf + start, b.len - start, first && start == 0);
	}
	buf_release(&b);
}

static void
pretok(struct enc *c, size_t step, const char *p, size_t n, int first)
{
	if (n == 0)
		return;
	if (step == c->tok->n_pretoks) {
		if (!c->tok->sp_split) {
			model_piece(c, p, n);
			return;
		}
		size_t start = 0;
		for (size_t i = 1; i + 3 <= n; i++) {
			if (memcmp(p + i, "\xe2\x96\x81", 3) == 0 &&
			    !(i >= 3 && memcmp(p + i - 3, "\xe2\x96\x81", 3) == 0)) {
				model_piece(c, p + start, i - start);
				start = i;
				i += 2;
			}
		}
		model_piece(c, p + start, n - start);
		return;
	}
	const struct pretok_step *st = &c->tok->pretoks[step];
	switch (st->kind) {
	case PRE_SPLIT:
		split_regex(c, step, st, p, n, first);
		break;
	case PRE_BYTELEVEL:
		if (st->add_prefix_space && p[0] != ' ') {
			struct buf b = BUF_INIT;
			buf_addch(&b, ' ');
			buf_add(&b, p, n);
			if (st->re)
				split_regex(c, step, st, b.buf, b.len, first);
			else
				pretok(c, step + 1, b.buf, b.len, first);
			buf_release(&b);
		} else if (st->re) {
			split_regex(c, step, st, p, n, first);
		} else {
			pretok(c, step + 1, p, n, first);
		}
		break;
	case PRE_METASPACE:
		metaspace(c, step, st, p, n, first);
		break;
	}
}

static int
is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

void
tokenizer_normalize(const struct tokenizer *tok, const char *s, size_t n, struct buf *out)
{
	struct buf cur = BUF_INIT;
	int have = 0;

	for (size_t k = 0; k < tok->n_norms; k++) {
		const struct norm_step *st = &tok->norms[k];
		const char *in = have ? cur.buf : s;
		size_t in_len = have ? cur.len : n;
		struct buf nx = BUF_INIT;
		utf8proc_option_t opt = UTF8PROC_STABLE;

		switch (st->kind) {
		case NORM_NFC:
		case NORM_NFKC:
		case NORM_NFD:
		case NORM_NFKD:
			if (is_ascii(in, in_len))
				continue;
			opt |= (st->kind == NORM_NFC || st->kind == NORM_NFKC) ? UTF8PROC_COMPOSE
									       : UTF8PROC_DECOMPOSE;
			if (st->kind == NORM_NFKC || st->kind == NORM_NFKD)
				opt |= UTF8PROC_COMPAT;
			{
				utf8proc_uint8_t *dst = NULL;
				utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in,
				    (utf8proc_ssize_t)in_len, &dst, opt);
				if (r < 0) {
					free(dst);
					continue;   /* cannot happen on valid UTF-8 */
				}
				buf_add(&nx, dst, (size_t)r);
				free(dst);
			}
			break;
		case NORM_LOWERCASE:
			for (size_t i = 0; i < in_len;) {
				int32_t cp;
				char enc[4];
				int l = utf8_decode((const unsigned char *)in + i, in_len - i, &cp);
				buf_add(&nx, enc, (size_t)utf8_encode(utf8proc_tolower(cp), enc));
				i += (size_t)l;
			}
			break;
		case NORM_STRIP: {
			size_t a = 0, b = in_len;
			if (st->strip_left)
				while (a < b && strchr(" \t\n\r\v\f", in[a]))
					a++;
			if (st->strip_right)
				while (b > a && strchr(" \t\n\r\v\f", in[b - 1]))
					b--;
			buf_add(&nx, in + a, b - a);
			break;
		}
		case NORM_PREPEND:
			if (in_len == 0)
				continue;
			buf_add(&nx, st->a, st->a_len);
			buf_add(&nx, in, in_len);
			break;
		case NORM_REPLACE:
			for (size_t i = 0; i < in_len;) {
				if (i + st->a_len <= in_len && memcmp(in + i, st->a, st->a_len) == 0) {
					buf_add(&nx, st->b, st->b_len);
					i += st->a_len;
				} else {
					buf_addch(&nx, in[i++]);
				}
			}
			break;
		}
		buf_release(&cur);
		cur = nx;
		have = 1;
	}
	if (have)
		*out = cur;
}

static int
is_space_cp(int32_t cp)
{
	if (cp == ' ' || (cp >= '\t' && cp <= '\r'))
		return 1;
	if (cp < 0x80)
		return 0;
	utf8proc_category_t cat = utf8proc_category(cp);
	return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
	    cat == UTF8PROC_CATEGORY_ZP || cp == 0x85;
}

static int
is_word_cp(int32_t cp)
{
	if (cp < 0x80)
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
		    (cp >= 'A' && cp <= 'Z') || cp == '_';
	utf8proc_category_t cat = utf8proc_category(cp);
	return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
	    (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) ||
	    (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME);
}

/* Code point ending just before s+i (i > 0). */
static int32_t
cp_before(const char *s, size_t i)
{
	size_t j = i - 1;
	int32_t cp;

	while (j > 0 && ((unsigned char)s[j] & 0xc0) == 0x80)
		j--;
	utf8_decode((const unsigned char *)s + j, i - j, &cp);
	return cp;
}

/* Longest added token of set at s+i, or NULL. */
static const struct added_token *
match_added(const struct added_set *set, const char *s, size_t n, size_t i)
{
	int32_t k = set->first_byte[(unsigned char)s[i]];

	if (k < 0)
		return NULL;
	for (; (size_t)k < set->n && set->v[k].content[0] == s[i]; k++) {
		const struct added_token *a = &set->v[k];
		if (a->len > n - i || memcmp(s + i, a->content, a->len) != 0)
			continue;
		if (a->single_word) {
			int32_t cp;
			if (i > 0 && is_word_cp(cp_before(s, i)))
				continue;
			if (i + a->len < n) {
				utf8_decode((const unsigned char *)s + i + a->len, n - i - a->len, &cp);
				if (is_word_cp(cp))
					continue;
			}
		}
		return a;
	}
	return NULL;
}

static void split_added(struct enc *c, const struct added_set *set, const char *text, size_t len,
    int first, int normalized);

/* A run of text between added tokens: normalized, then cut by the
 * normalized added tokens, then pre-tokenized. */
static void
encode_segment(struct enc *c, const char *s, size_t n, int first)
{
	struct buf norm = BUF_INIT;

	tokenizer_normalize(c->tok, s, n, &norm);
	if (norm.alloc) {
		s = norm.buf;
		n = norm.len;
	}
	if (c->tok->norm_added.n)
		split_added(c, &c->tok->norm_added, s, n, first, 1);
	else
		pretok(c, 0, s, n, first);
	buf_release(&norm);
}

/* Cuts text at the added tokens of set (leftmost, longest, honouring
 * single_word/lstrip/rstrip); the runs between go on to normalization (raw
 * text) or pre-tokenization (normalized text). */
static void
split_added(struct enc *c, const struct added_set *set, const char *text, size_t len, int first,
    int normalized)
{
	size_t seg = 0, i = 0;

	while (i < len) {
		const struct added_token *a = NULL;
		if (set->first_byte[(unsigned char)text[i]] >= 0)
			a = match_added(set, text, len, i);
		if (a == NULL) {
			i++;
			continue;
		}
		size_t ms = i, me = i + a->len;
		if (a->lstrip)
			while (ms > seg) {
				size_t j = ms - 1;
				while (j > seg && ((unsigned char)text[j] & 0xc0) == 0x80)
					j--;
				int32_t cp;
				utf8_decode((const unsigned char *)text + j, ms - j, &cp);
				if (!is_space_cp(cp))
					break;
				ms = j;
			}
		if (a->rstrip)
			while (me < len) {
				int32_t cp;
				int l = utf8_decode((const unsigned char *)text + me, len - me, &cp);
				if (!is_space_cp(cp))
					break;
				me += (size_t)l;
			}
		if (ms > seg) {
			if (normalized)
				pretok(c, 0, text + seg, ms - seg, first && seg == 0);
			else
				encode_segment(c, text + seg, ms - seg, first && seg == 0);
		}
		idvec_push(c->out, a->id);
		seg = i = me;
	}
	if (seg < len) {
		if (normalized)
			pretok(c, 0, text + seg, len - seg, first && seg == 0);
		else
			encode_segment(c, text + seg, len - seg, first && seg == 0);
	}
}

int
tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len, int add_special,
    int32_t **ids, size_t *n_ids)
{
	struct idvec out = { 0 };
	struct enc c = { 0 };
	c.cache_words = (struct buf)BUF_INIT;
	pcre2_match_data *md_stack[8];

	*ids = NULL;
	*n_ids = 0;
	if (!utf8_valid(text, len))
		return -EILSEQ;
	c.tok = tok;
	c.out = &out;
	c.md = tok->n_pretoks <= ARRAY_SIZE(md_stack) ? md_stack
						       : xcalloc(tok->n_pretoks, sizeof(*c.md));
	for (size_t k = 0; k < tok->n_pretoks; k++)
		c.md[k] = tok->pretoks[k].re ? pcre2_match_data_create_from_pattern(tok->pretoks[k].re, NULL)
					     : NULL;
	if (len >= CACHE_MIN_TEXT)
		c.cache = xcalloc(CACHE_SLOTS, sizeof(*c.cache));

	if (add_special)
		for (size_t k = 0; k < tok->n_prefix; k++)
			idvec_push(&out, tok->prefix_ids[k]);
	size_t body = out.n;

	split_added(&c, &tok->raw_added, text, len, 1, 0);

	/* never a double BOS: text that already starts with the prefix keeps one */
	if (add_special && tok->n_prefix && out.n >= body + tok->n_prefix &&
	    memcmp(out.v + body, tok->prefix_ids, tok->n_prefix * sizeof(int32_t)) == 0) {
		memmove(out.v, out.v + body, (out.n - body) * sizeof(int32_t));
		out.n -= body;
	}
	if (add_special)
		for (size_t k = 0; k < tok->n_suffix; k++)
			idvec_push(&out, tok->suffix_ids[k]);

	int rc = c.error;
	for (size_t k = 0; k < tok->n_pretoks; k++)
		pcre2_match_data_free(c.md[k]);
	if (c.md != md_stack)
		free(c.md);
	free(c.cache);
	free(c.cache_ids.v);
	buf_release(&c.cache_words);
	if (rc < 0) {
		free(out.v);
		return rc;
	}
	if (out.v == NULL)
		out.v = xmalloc(sizeof(int32_t));
	*ids = out.v;
	*n_ids = out.n;
	return 0;
}
