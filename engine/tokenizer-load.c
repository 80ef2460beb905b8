/*
 * engine/tokenizer-load.c - reading tokenizer.json and tokenizer_config.json
 * into a struct tokenizer (vocabulary, merges, added tokens, normalizers,
 * pre-tokenizers, post-processor, decoder), freeing it, and the accessors of
 * engine/tokenizer.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/tokenizer-internal.h"
#include "lib/util.h"

static uint64_t tokenizer_serial;

#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static int
read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t n;

	if (f == NULL)
		return -errno;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	if (ferror(f)) {
		int rc = -errno;
		fclose(f);
		buf_release(&b);
		return rc ? rc : -EIO;
	}
	fclose(f);
	*out = buf_detach(&b, len);
	return 0;
}

/* Parses a JSON file; on a syntax error names file:line:col. */
static int
parse_json_file(const char *path, cJSON **out, struct llmd_err *e)
{
	char *text;
	size_t len;
	int rc = read_file(path, &text, &len);

	if (rc < 0)
		return err_set(e, rc, path, "cannot read: %s", strerror(-rc));
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (j == NULL) {
		size_t off = end ? (size_t)(end - text) : 0, line = 1, col = 1;
		for (size_t i = 0; i < off && i < len; i++) {
			if (text[i] == '\n') {
				line++;
				col = 1;
			} else
				col++;
		}
		char where[300];
		snprintf(where, sizeof(where), "%s:%zu:%zu", path, line, col);
		free(text);
		return err_set(e, -EINVAL, where, "invalid JSON");
	}
	free(text);
	*out = j;
	return 0;
}

static const char *
json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
json_bool(const cJSON *o, const char *key, int dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	return dflt;
}

/* A JSON number that is a whole id in [0, 2^24). */
#define MAX_TOKEN_ID ((1 << 24) - 1)

static int
json_id(const cJSON *v, int32_t *id)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > MAX_TOKEN_ID ||
	    v->valuedouble != (double)(int64_t)v->valuedouble)
		return -1;
	*id = (int32_t)v->valuedouble;
	return 0;
}

/* "<s>" or {"content": "<s>", ...} */
static const char *
token_text(const cJSON *v)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsObject(v))
		return json_str(v, "content");
	return NULL;
}

static char *
xmemdup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static int
compile_regex(const char *pat, int literal, pcre2_code **out, const char *field, struct llmd_err *e)
{
	int ec;
	PCRE2_SIZE eo;
	uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);

	if (re == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(ec, msg, sizeof(msg));
		return err_set(e, -EINVAL, field, "regex error at offset %zu: %s", (size_t)eo,
		    (char *)msg);
	}
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* interpreter when no JIT */
	*out = re;
	return 0;
}

/* {"String": "x"} or {"Regex": "x"} */
static int
parse_pattern(const cJSON *o, pcre2_code **re, const char *field, struct llmd_err *e)
{
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
	const char *s;

	if ((s = json_str(pat, "Regex")) != NULL)
		return compile_regex(s, 0, re, field, e);
	if ((s = json_str(pat, "String")) != NULL)
		return compile_regex(s, 1, re, field, e);
	return err_set(e, -EINVAL, field, "pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

static int
parse_normalizer(struct tokenizer *tok, const cJSON *n, const char *field, struct llmd_err *e)
{
	const char *type;
	struct norm_step st;

	if (n == NULL || cJSON_IsNull(n))
		return 0;
	if ((type = json_str(n, "type")) == NULL)
		return err_set(e, -EINVAL, field, "missing \"type\"");
	memset(&st, 0, sizeof(st));
	if (strcmp(type, "Sequence") == 0) {
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *it;
		cJSON_ArrayForEach(it, arr) {
			int rc = parse_normalizer(tok, it, field, e);
			if (rc < 0)
				return rc;
		}
		return 0;
	} else if (strcmp(type, "NFC") == 0) {
		st.kind = NORM_NFC;
	} else if (strcmp(type, "NFD") == 0) {
		st.kind = NORM_NFD;
	} else if (strcmp(type, "NFKC") == 0) {
		st.kind = NORM_NFKC;
	} else if (strcmp(type, "NFKD") == 0) {
		st.kind = NORM_NFKD;
	} else if (strcmp(type, "Lowercase") == 0) {
		st.kind = NORM_LOWERCASE;
	} else if (strcmp(type, "Strip") == 0) {
		st.kind = NORM_STRIP;
		st.strip_left = json_bool(n, "strip_left", 1);
		st.strip_right = json_bool(n, "strip_right", 1);
	} else if (strcmp(type, "Prepend") == 0) {
		const char *p = json_str(n, "prepend");
		if (p == NULL)
			return err_set(e, -EINVAL, field, "Prepend needs \"prepend\"");
		st.kind = NORM_PREPEND;
		st.a_len = strlen(p);
		st.a = xmemdup(p, st.a_len);
	} else if (strcmp(type, "Replace") == 0) {
		const char *p = json_str(cJSON_GetObjectItemCaseSensitive(n, "pattern"), "String");
		const char *c = json_str(n, "content");
		if (p == NULL || c == NULL || *p == '\0')
			return err_set(e, -ENOTSUP, field,
			    "Replace normalizer: only a non-empty {\"String\": ...} pattern is supported");
		st.kind = NORM_REPLACE;
		st.a_len = strlen(p);
		st.a = xmemdup(p, st.a_len);
		st.b_len = strlen(c);
		st.b = xmemdup(c, st.b_len);
	} else {
		return err_set(e, -ENOTSUP, field, "unsupported normalizer type \"%s\"", type);
	}
	tok->norms = xreallocarray(tok->norms, tok->n_norms + 1, sizeof(*tok->norms));
	tok->norms[tok->n_norms++] = st;
	return 0;
}

static int
parse_prepend_scheme(const cJSON *o, enum prepend_scheme *ps)
{
	const char *s = json_str(o, "prepend_scheme");

	if (s == NULL) {
		*ps = json_bool(o, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
		return 0;
	}
	if (strcmp(s, "always") == 0)
		*ps = PREPEND_ALWAYS;
	else if (strcmp(s, "first") == 0)
		*ps = PREPEND_FIRST;
	else if (strcmp(s, "never") == 0)
		*ps = PREPEND_NEVER;
	else
		return -1;
	return 0;
}

static int
parse_pretokenizer(struct tokenizer *tok, const cJSON *p, const char *field, struct llmd_err *e)
{
	const char *type;
	struct pretok_step st;
	int rc;

	if (p == NULL || cJSON_IsNull(p))
		return 0;
	if ((type = json_str(p, "type")) == NULL)
		return err_set(e, -EINVAL, field, "missing \"type\"");
	memset(&st, 0, sizeof(st));
	if (strcmp(type, "Sequence") == 0) {
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *it;
		cJSON_ArrayForEach(it, arr) {
			if ((rc = parse_pretokenizer(tok, it, field, e)) < 0)
				return rc;
		}
		return 0;
	} else if (strcmp(type, "Split") == 0) {
		const char *b = json_str(p, "behavior");
		st.kind = PRE_SPLIT;
		if (b == NULL || strcmp(b, "Isolated") == 0)
			st.behavior = SPLIT_ISOLATED;
		else if (strcmp(b, "Removed") == 0)
			st.behavior = SPLIT_REMOVED;
		else if (strcmp(b, "MergedWithPrevious") == 0)
			st.behavior = SPLIT_MERGED_PREV;
		else if (strcmp(b, "MergedWithNext") == 0)
			st.behavior = SPLIT_MERGED_NEXT;
		else
			return err_set(e, -ENOTSUP, field, "unsupported Split behavior \"%s\"", b);
		st.invert = json_bool(p, "invert", 0);
		if (st.invert)
			return err_set(e, -ENOTSUP, field, "Split with invert is not supported");
		if ((rc = parse_pattern(p, &st.re, field, e)) < 0)
			return rc;
	} else if (strcmp(type, "ByteLevel") == 0) {
		st.kind = PRE_BYTELEVEL;
		st.add_prefix_space = json_bool(p, "add_prefix_space", 0);
		if (json_bool(p, "use_regex", 1) &&
		    (rc = compile_regex(GPT2_REGEX, 0, &st.re, field, e)) < 0)
			return rc;
		tok->byte_level = 1;
	} else if (strcmp(type, "Metaspace") == 0) {
		const char *r = json_str(p, "replacement");
		st.kind = PRE_METASPACE;
		if (r == NULL || *r == '\0')
			r = "\xe2\x96\x81";
		if (parse_prepend_scheme(p, &st.prepend) < 0)
			return err_set(e, -EINVAL, field, "bad prepend_scheme");
		st.replacement_len = strlen(r);
		st.replacement = xmemdup(r, st.replacement_len);
		st.split = json_bool(p, "split", 1);
	} else {
		return err_set(e, -ENOTSUP, field, "unsupported pre_tokenizer type \"%s\"", type);
	}
	tok->pretoks = xreallocarray(tok->pretoks, tok->n_pretoks + 1, sizeof(*tok->pretoks));
	tok->pretoks[tok->n_pretoks++] = st;
	return 0;
}

static int
parse_decoder(struct tokenizer *tok, const cJSON *d, struct llmd_err *e)
{
	const char *type;

	if (d == NULL || cJSON_IsNull(d))
		return 0;
	if ((type = json_str(d, "type")) == NULL)
		return err_set(e, -EINVAL, "decoder", "missing \"type\"");
	if (strcmp(type, "ByteLevel") == 0) {
		tok->decoder = DEC_BYTELEVEL;
	} else if (strcmp(type, "Metaspace") == 0) {
		enum prepend_scheme ps;
		if (parse_prepend_scheme(d, &ps) < 0)
			return err_set(e, -EINVAL, "decoder", "bad prepend_scheme");
		tok->decoder = DEC_SENTENCEPIECE;
		tok->dec_strip_start = ps != PREPEND_NEVER;
	} else if (strcmp(type, "Sequence") == 0) {
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(d, "decoders"), *it;
		cJSON_ArrayForEach(it, arr) {
			const char *t = json_str(it, "type");
			if (t == NULL)
				return err_set(e, -EINVAL, "decoder.decoders", "missing \"type\"");
			if (strcmp(t, "Replace") == 0 || strcmp(t, "ByteFallback") == 0 ||
			    strcmp(t, "Fuse") == 0) {
				tok->decoder = DEC_SENTENCEPIECE;
			} else if (strcmp(t, "Strip") == 0) {
				const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "start");
				tok->dec_strip_start = cJSON_IsNumber(st) ? st->valueint : 0;
			} else if (strcmp(t, "ByteLevel") == 0) {
				tok->decoder = DEC_BYTELEVEL;
			} else if (strcmp(t, "Metaspace") == 0) {
				int rc = parse_decoder(tok, it, e);
				if (rc < 0)
					return rc;
			} else {
				return err_set(e, -ENOTSUP, "decoder", "unsupported decoder \"%s\"", t);
			}
		}
	} else {
		return err_set(e, -ENOTSUP, "decoder", "unsupported decoder type \"%s\"", type);
	}
	return 0;
}

/* TemplateProcessing.single: ids before and after "$A". */
static int
parse_template(struct tokenizer *tok, const cJSON *pp, struct llmd_err *e)
{
	const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single"), *it;
	const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
	int seen_a = 0;

	cJSON_ArrayForEach(it, single) {
		const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
		if (cJSON_GetObjectItemCaseSensitive(it, "Sequence")) {
			seen_a = 1;
			continue;
		}
		const char *name = json_str(sp, "id");
		if (name == NULL)
			return err_set(e, -EINVAL, "post_processor.single", "bad template piece");
		const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(specials, name), "ids"), *idv;
		if (!cJSON_IsArray(ids))
			return err_set(e, -EINVAL, "post_processor.special_tokens",
			    "no ids for \"%s\"", name);
		cJSON_ArrayForEach(idv, ids) {
			int32_t id;
			if (json_id(idv, &id) < 0)
				return err_set(e, -EINVAL, "post_processor.special_tokens", "bad id");
			int32_t **v = seen_a ? &tok->suffix_ids : &tok->prefix_ids;
			size_t *n = seen_a ? &tok->n_suffix : &tok->n_prefix;
			*v = xreallocarray(*v, *n + 1, sizeof(**v));
			(*v)[(*n)++] = id;
		}
	}
	return 0;
}

static int
parse_post_processor(struct tokenizer *tok, const cJSON *pp, struct llmd_err *e)
{
	const char *type;

	if (pp == NULL || cJSON_IsNull(pp) || (type = json_str(pp, "type")) == NULL)
		return 0;
	if (strcmp(type, "TemplateProcessing") == 0)
		return parse_template(tok, pp, e);
	if (strcmp(type, "Sequence") == 0) {
		const cJSON *it;
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pp, "processors")) {
			int rc = parse_post_processor(tok, it, e);
			if (rc < 0)
				return rc;
		}
	}
	/* ByteLevel, RobertaProcessing, ...: nothing added for our models */
	return 0;
}

static void
set_id(struct tokenizer *tok, int32_t id, const char *s, size_t len)
{
	if (id >= tok->id_cap) {
		int32_t n = MAX(id + 1, tok->id_cap * 2);
		tok->id_str = xreallocarray(tok->id_str, (size_t)n, sizeof(*tok->id_str));
		tok->id_flags = xreallocarray(tok->id_flags, (size_t)n, 1);
		memset(tok->id_str + tok->id_cap, 0, (size_t)(n - tok->id_cap) * sizeof(*tok->id_str));
		memset(tok->id_flags + tok->id_cap, 0, (size_t)(n - tok->id_cap));
		tok->id_cap = n;
	}
	tok->n_ids = MAX(tok->n_ids, id + 1);
	free(tok->id_str[id]);
	tok->id_str[id] = xmemdup(s, len);
}

/* 1 when s has a "▁" after some other character. */
static int
space_inside(const char *s, size_t n)
{
	int other = 0;

	for (size_t i = 0; i < n;) {
		if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
			if (other)
				return 1;
			i += 3;
		} else {
			other = 1;
			i++;
		}
	}
	return 0;
}

/* *crosses: some merge makes a token with "▁" after other text. */
static int
parse_model(struct tokenizer *tok, const cJSON *model, int *crosses, struct llmd_err *e)
{
	const char *type = json_str(model, "type");
	const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
	const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges"), *it;
	const char *s;
	char field[64];
	int32_t max_id = -1;

	if (!cJSON_IsObject(model))
		return err_set(e, -EINVAL, "model", "missing");
	if (type != NULL && strcmp(type, "BPE") != 0)
		return err_set(e, -ENOTSUP, "model.type", "unsupported model \"%s\" (only BPE)", type);
	if (!cJSON_IsObject(vocab))
		return err_set(e, -EINVAL, "model.vocab", "must be an object");
	if (!cJSON_IsArray(merges))
		return err_set(e, -EINVAL, "model.merges", "must be an array");
	s = json_str(model, "continuing_subword_prefix");
	if (s && *s)
		return err_set(e, -ENOTSUP, "model.continuing_subword_prefix", "not supported");
	s = json_str(model, "end_of_word_suffix");
	if (s && *s)
		return err_set(e, -ENOTSUP, "model.end_of_word_suffix", "not supported");
	tok->byte_fallback = json_bool(model, "byte_fallback", 0);
	tok->ignore_merges = json_bool(model, "ignore_merges", 0);
	tok->fuse_unk = json_bool(model, "fuse_unk", 0);

	int nv = cJSON_GetArraySize(vocab);
	strmap_init(&tok->vocab, (size_t)nv);
	cJSON_ArrayForEach(it, vocab) {
		int32_t id;
		if (json_id(it, &id) < 0)
			return err_set(e, -EINVAL, "model.vocab", "bad id for \"%.40s\"", it->string);
		strmap_put(&tok->vocab, it->string, strlen(it->string), id);
		set_id(tok, id, it->string, strlen(it->string));
		max_id = MAX(max_id, id);
	}
	if ((s = json_str(model, "unk_token")) != NULL)
		tok->unk_id = strmap_get(&tok->vocab, s, strlen(s));

	pairmap_init(&tok->merges, (size_t)cJSON_GetArraySize(merges));
	int32_t rank = 0;
	struct buf cat = BUF_INIT;
	cJSON_ArrayForEach(it, merges) {
		const char *a, *b;
		size_t la, lb;
		if (cJSON_IsString(it)) {
			const char *sp = strchr(it->valuestring, ' ');
			if (sp == NULL || strchr(sp + 1, ' ')) {
				snprintf(field, sizeof(field), "model.merges[%d]", rank);
				buf_release(&cat);
				return err_set(e, -EINVAL, field, "a merge is \"a b\"");
			}
			a = it->valuestring;
			la = (size_t)(sp - a);
			b = sp + 1;
			lb = strlen(b);
		} else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
		    cJSON_IsString(cJSON_GetArrayItem(it, 0)) && cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
			a = cJSON_GetArrayItem(it, 0)->valuestring;
			b = cJSON_GetArrayItem(it, 1)->valuestring;
			la = strlen(a);
			lb = strlen(b);
		} else {
			snprintf(field, sizeof(field), "model.merges[%d]", rank);
			buf_release(&cat);
			return err_set(e, -EINVAL, field, "a merge is \"a b\" or [\"a\", \"b\"]");
		}
		int32_t ia = strmap_get(&tok->vocab, a, la), ib = strmap_get(&tok->vocab, b, lb);
		buf_reset(&cat);
		buf_add(&cat, a, la);
		buf_add(&cat, b, lb);
		int32_t im = strmap_get(&tok->vocab, cat.buf, cat.len);
		if (ia < 0 || ib < 0 || im < 0) {
			snprintf(field, sizeof(field), "model.merges[%d]", rank);
			buf_release(&cat);
			return err_set(e, -EINVAL, field, "merge of tokens not in the vocabulary");
		}
		pairmap_put(&tok->merges, ia, ib, rank, im);
		if (!*crosses && space_inside(cat.buf, cat.len))
			*crosses = 1;
		rank++;
	}
	buf_release(&cat);
	(void)max_id;
	return 0;
}

static int
parse_added_tokens(struct tokenizer *tok, const cJSON *arr, struct llmd_err *e)
{
	const cJSON *it;
	char field[64];
	int i = 0;

	strmap_init(&tok->added_map, 64);
	cJSON_ArrayForEach(it, arr) {
		const char *c = json_str(it, "content");
		int32_t id;
		snprintf(field, sizeof(field), "added_tokens[%d]", i++);
		if (c == NULL || *c == '\0' || json_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &id) < 0)
			return err_set(e, -EINVAL, field, "needs \"id\" and a non-empty \"content\"");
		struct added_token at = { 0 };
		at.len = strlen(c);
		at.content = xmemdup(c, at.len);
		at.id = id;
		at.special = json_bool(it, "special", 0);
		at.single_word = json_bool(it, "single_word", 0);
		at.lstrip = json_bool(it, "lstrip", 0);
		at.rstrip = json_bool(it, "rstrip", 0);
		at.normalized = json_bool(it, "normalized", !at.special);
		strmap_put(&tok->added_map, c, strlen(c), id);
		struct added_set *set = &tok->raw_added;
		if (at.normalized && tok->n_norms > 0) {
			struct buf nb = BUF_INIT;
			tokenizer_normalize(tok, at.content, at.len, &nb);
			if (nb.alloc && nb.len > 0) {
				free(at.content);
				at.content = buf_detach(&nb, &at.len);
			}
			buf_release(&nb);
			set = &tok->norm_added;
		}
		set->v = xreallocarray(set->v, set->n + 1, sizeof(*set->v));
		set->v[set->n++] = at;
		if (id >= tok->n_ids || tok->id_str[id] == NULL)
			set_id(tok, id, c, strlen(c));
		tok->id_flags[id] |= TOKF_ADDED | (at.special ? TOKF_SPECIAL : 0);
	}
	return 0;
}

static int
added_cmp(const void *pa, const void *pb)
{
	const struct added_token *a = pa, *b = pb;
	unsigned char ca = (unsigned char)a->content[0], cb = (unsigned char)b->content[0];

	if (ca != cb)
		return ca < cb ? -1 : 1;
	if (a->len != b->len)
		return a->len > b->len ? -1 : 1;   /* longest first */
	return a->id < b->id ? -1 : a->id > b->id;
}

static void
index_added(struct added_set *set)
{
	for (int b = 0; b < 256; b++)
		set->first_byte[b] = -1;
	if (set->n)
		qsort(set->v, set->n, sizeof(*set->v), added_cmp);
	for (size_t i = set->n; i-- > 0;)
		set->first_byte[(unsigned char)set->v[i].content[0]] = (int32_t)i;
}

static void
init_byte_ids(struct tokenizer *tok)
{
	for (int b = 0; b < 256; b++) {
		char s[8];
		size_t n;
		tok->byte_cp[b] = bytelevel_char((unsigned char)b);
		if (tok->byte_level) {
			n = (size_t)utf8_encode(bytelevel_char((unsigned char)b), s);
		} else {
			snprintf(s, sizeof(s), "<0x%02X>", b);
			n = 6;
		}
		tok->byte_ids[b] = strmap_get(&tok->vocab, s, n);
		if (!tok->byte_level && tok->byte_ids[b] >= 0)
			tok->id_flags[tok->byte_ids[b]] |= TOKF_BYTE;
	}
}

static int
parse_config(struct tokenizer *tok, const cJSON *cfg)
{
	const char *s;
	const cJSON *ct, *it;

	if ((s = token_text(cJSON_GetObjectItemCaseSensitive(cfg, "bos_token"))) != NULL)
		tok->bos_id = tokenizer_token_id(tok, s);
	if ((s = token_text(cJSON_GetObjectItemCaseSensitive(cfg, "eos_token"))) != NULL)
		tok->eos_id = tokenizer_token_id(tok, s);
	ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
	if (cJSON_IsString(ct)) {
		tok->chat_template = xstrdup(ct->valuestring);
	} else if (cJSON_IsArray(ct)) {
		/* [{"name": "default", "template": "..."}, ...] */
		cJSON_ArrayForEach(it, ct) {
			const char *name = json_str(it, "name"), *t = json_str(it, "template");
			if (t && (tok->chat_template == NULL || (name && strcmp(name, "default") == 0))) {
				free(tok->chat_template);
				tok->chat_template = xstrdup(t);
			}
		}
	}
	/* additional_special_tokens are skipped by decode(skip_special) too */
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens")) {
		const char *t = token_text(it);
		int32_t id = t ? strmap_get(&tok->added_map, t, strlen(t)) : -1;
		if (id >= 0)
			tok->id_flags[id] |= TOKF_SPECIAL;
	}
	/* Without a TemplateProcessing, add_bos_token/add_eos_token decide. */
	if (tok->n_prefix == 0 && tok->n_suffix == 0) {
		if (json_bool(cfg, "add_bos_token", 0) && tok->bos_id >= 0) {
			tok->prefix_ids = xmalloc(sizeof(int32_t));
			tok->prefix_ids[tok->n_prefix++] = tok->bos_id;
		}
		if (json_bool(cfg, "add_eos_token", 0) && tok->eos_id >= 0) {
			tok->suffix_ids = xmalloc(sizeof(int32_t));
			tok->suffix_ids[tok->n_suffix++] = tok->eos_id;
		}
	}
	return 0;
}

static int
load_json(struct tokenizer *tok, const cJSON *j, struct llmd_err *e)
{
	int rc;
	int crosses = 0;

	if (!cJSON_IsObject(j))
		return err_set(e, -EINVAL, "", "top level must be an object");
	if ((rc = parse_model(tok, cJSON_GetObjectItemCaseSensitive(j, "model"), &crosses, e)) < 0 ||
	    (rc = parse_normalizer(tok, cJSON_GetObjectItemCaseSensitive(j, "normalizer"), "normalizer", e)) < 0 ||
	    (rc = parse_added_tokens(tok, cJSON_GetObjectItemCaseSensitive(j, "added_tokens"), e)) < 0 ||
	    (rc = parse_pretokenizer(tok, cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer"), "pre_tokenizer", e)) < 0 ||
	    (rc = parse_decoder(tok, cJSON_GetObjectItemCaseSensitive(j, "decoder"), e)) < 0 ||
	    (rc = parse_post_processor(tok, cJSON_GetObjectItemCaseSensitive(j, "post_processor"), e)) < 0)
		return rc;
	for (size_t i = 0; i < tok->n_prefix; i++)
		if (tok->prefix_ids[i] >= tok->n_ids)
			return err_set(e, -EINVAL, "post_processor", "id %d out of range", tok->prefix_ids[i]);
	for (size_t i = 0; i < tok->n_suffix; i++)
		if (tok->suffix_ids[i] >= tok->n_ids)
			return err_set(e, -EINVAL, "post_processor", "id %d out of range", tok->suffix_ids[i]);
	if (tok->n_ids == 0)
		return err_set(e, -EINVAL, "model.vocab", "empty vocabulary");
	index_added(&tok->raw_added);
	index_added(&tok->norm_added);
	init_byte_ids(tok);
	/* SentencePiece-style BPE over a whole segment: when no merge can make
	 * "x▁", cutting before each "▁" that follows other text changes nothing
	 * and lets the word cache work. */
	tok->sp_split = !tok->byte_level && !crosses &&
	    strmap_get(&tok->vocab, "\xe2\x96\x81", 3) >= 0;
	if (tok->byte_level) {
		for (int b = 0; b < 256; b++)
			if (tok->byte_ids[b] < 0)
				return err_set(e, -EINVAL, "model.vocab",
				    "byte-level vocabulary lacks byte 0x%02x", b);
	}
	return 0;
}

int
tokenizer_load(const char *model_dir, struct tokenizer **out, struct llmd_err *e)
{
	char path[4096];
	cJSON *j = NULL, *cfg = NULL;
	struct tokenizer *tok = xcalloc(1, sizeof(*tok));
	int rc;

	tok->serial = __atomic_add_fetch(&tokenizer_serial, 1, __ATOMIC_RELAXED);
	tok->unk_id = tok->bos_id = tok->eos_id = -1;
	snprintf(path, sizeof(path), "%s/tokenizer.json", model_dir);
	if ((rc = parse_json_file(path, &j, e)) < 0)
		goto fail;
	if ((rc = load_json(tok, j, e)) < 0) {
		if (e) {
			char field[sizeof(e->field)];
			snprintf(field, sizeof(field), "%s: %s", path, e->field);
			snprintf(e->field, sizeof(e->field), "%s", field);
		}
		goto fail;
	}
	cJSON_Delete(j);
	j = NULL;
	/* bos/eos fallbacks from the template when the config says nothing */
	if (tok->n_prefix == 1)
		tok->bos_id = tok->prefix_ids[0];
	snprintf(path, sizeof(path), "%s/tokenizer_config.json", model_dir);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		fclose(f);
		if ((rc = parse_json_file(path, &cfg, e)) < 0)
			goto fail;
		parse_config(tok, cfg);
		cJSON_Delete(cfg);
	}
	tokenizer_build_id_bytes(tok);
	*out = tok;
	return 0;
fail:
	cJSON_Delete(j);
	tokenizer_free(tok);
	return rc;
}

void
tokenizer_free(struct tokenizer *tok)
{
	if (tok == NULL)
		return;
	for (int32_t i = 0; i < tok->n_ids; i++) {
		free(tok->id_str[i]);
		if (tok->id_bytes)
			free(tok->id_bytes[i]);
	}
	free(tok->id_str);
	free(tok->id_bytes);
	free(tok->id_bytes_len);
	free(tok->id_flags);
	strmap_release(&tok->vocab);
	strmap_release(&tok->added_map);
	pairmap_release(&tok->merges);
	for (size_t i = 0; i < tok->n_norms; i++) {
		free(tok->norms[i].a);
		free(tok->norms[i].b);
	}
	free(tok->norms);
	for (size_t i = 0; i < tok->n_pretoks; i++) {
		pcre2_code_free(tok->pretoks[i].re);
		free(tok->pretoks[i].replacement);
	}
	free(tok->pretoks);
	for (size_t i = 0; i < tok->raw_added.n; i++)
		free(tok->raw_added.v[i].content);
	free(tok->raw_added.v);
	for (size_t i = 0; i < tok->norm_added.n; i++)
		free(tok->norm_added.v[i].content);
	free(tok->norm_added.v);
	free(tok->prefix_ids);
	free(tok->suffix_ids);
	free(tok->chat_template);
	free(tok);
}

int32_t
tokenizer_vocab_size(const struct tokenizer *tok)
{
	return tok->n_ids;
}

int32_t
tokenizer_bos_id(const struct tokenizer *tok)
{
	return tok->bos_id;
}

int32_t
tokenizer_eos_id(const struct tokenizer *tok)
{
	return tok->eos_id;
}

int32_t
tokenizer_token_id(const struct tokenizer *tok, const char *s)
{
	int32_t id = strmap_get(&tok->added_map, s, strlen(s));

	return id >= 0 ? id : strmap_get(&tok->vocab, s, strlen(s));
}

const char *
tokenizer_id_token(const struct tokenizer *tok, int32_t id)
{
	if (id < 0 || id >= tok->n_ids)
		return NULL;
	return tok->id_str[id];
}

int
tokenizer_is_special(const struct tokenizer *tok, int32_t id)
{
	return id >= 0 && id < tok->n_ids && (tok->id_flags[id] & TOKF_SPECIAL) != 0;
}

const char *
tokenizer_chat_template(const struct tokenizer *tok)
{
	return tok->chat_template;
}
