/*
 * engine/tokenizer-internal.h - the tokenizer's inside, shared by the
 * engine/tokenizer-*.c files only: the loaded pipeline (normalizers,
 * pre-tokenizers, BPE model, added tokens, post-processor, decoder), the
 * hash maps behind the vocabulary and merge ranks, and UTF-8 helpers.
 */
#ifndef LLMD_ENGINE_TOKENIZER_INTERNAL_H
#define LLMD_ENGINE_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/tokenizer.h"

/* ---- hash maps (tokenizer-map.c) ---- */

/* Byte string -> int32 id; keys are copied into the map's pool. */
struct strmap {
	uint32_t *slots;       /* entry index + 1, 0 = empty */
	size_t mask;
	struct strmap_ent { uint64_t hash; size_t off; uint32_t len; int32_t id; } *ents;
	size_t n, alloc;
	char *pool;
	size_t pool_len, pool_alloc;
};
void strmap_init(struct strmap *m, size_t expect);
void strmap_release(struct strmap *m);
/* Inserts or overwrites. */
void strmap_put(struct strmap *m, const char *k, size_t len, int32_t id);
/* -1 when absent. */
int32_t strmap_get(const struct strmap *m, const char *k, size_t len);
uint64_t tok_hash(const void *p, size_t n);

/* (left id, right id) -> (rank, merged id). */
struct pairmap {
	struct pair_ent { uint64_t key; int32_t rank; int32_t merged; } *slots; /* key 0 = empty */
	size_t mask, n;
};
void pairmap_init(struct pairmap *m, size_t expect);
void pairmap_release(struct pairmap *m);
/* Keeps the first (lowest) rank when the pair repeats. */
void pairmap_put(struct pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
/* 0 with rank and merged id filled in, or -1. */
int pairmap_get(const struct pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged);

/* ---- UTF-8 (tokenizer-utf8.c) ---- */

/* 1 when s[0..n) is well-formed UTF-8 (no surrogates, no overlongs). */
int utf8_valid(const char *s, size_t n);
/* Length of the well-formed sequence starting at s (1..4), 0 when s starts
 * an ill-formed one, -1 when it is a valid but truncated prefix. */
int utf8_seq_len(const unsigned char *s, size_t n);
/* Decodes one code point of a valid string; returns its byte length. */
int utf8_decode(const unsigned char *s, size_t n, int32_t *cp);
int utf8_encode(int32_t cp, char out[4]);
/* Appends s to out, each ill-formed maximal subsequence as U+FFFD. */
void utf8_add_lossy(struct buf *out, const char *s, size_t n);
/* GPT-2 byte-level alphabet: byte -> code point, and back (-1 if none). */
int32_t bytelevel_char(unsigned char b);
int bytelevel_byte(int32_t cp);

/* ---- pipeline ---- */

enum norm_kind { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE, NORM_PREPEND,
	NORM_REPLACE, NORM_STRIP };
struct norm_step {
	enum norm_kind kind;
	char *a;               /* prepend text / replace pattern */
	size_t a_len;
	char *b;               /* replace content */
	size_t b_len;
	int strip_left, strip_right;
};

enum split_behavior { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT };
enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
enum pretok_kind { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE };
struct pretok_step {
	enum pretok_kind kind;
	pcre2_code *re;        /* Split, ByteLevel with use_regex */
	enum split_behavior behavior;
	int invert;
	int add_prefix_space;  /* ByteLevel */
	char *replacement;     /* Metaspace (UTF-8 of the replacement char) */
	size_t replacement_len;
	enum prepend_scheme prepend;
	int split;
};

struct added_token {
	char *content;
	size_t len;
	int32_t id;
	unsigned special : 1, single_word : 1, lstrip : 1, rstrip : 1, normalized : 1;
};

struct added_set {
	struct added_token *v;         /* sorted by first byte, longest first */
	size_t n;
	int32_t first_byte[256];       /* index of the first token with that byte, -1 */
};

enum decoder_kind { DEC_NONE, DEC_BYTELEVEL, DEC_SENTENCEPIECE };

struct tokenizer {
	uint64_t serial;
	/* vocabulary: id -> token string (raw vocab form) and its decoded bytes */
	int32_t n_ids;                 /* max id + 1 */
	int32_t id_cap;                /* allocated length of id_str and id_flags */
	char **id_str;                 /* NUL-terminated, NULL for holes */
	char **id_bytes;               /* decoded bytes of id (decoder applied per token) */
	uint32_t *id_bytes_len;
	unsigned char *id_flags;       /* TOKF_* */
	struct strmap vocab;           /* model vocabulary */
	struct strmap added_map;       /* added tokens */
	struct pairmap merges;

	/* model */
	int byte_level;                /* initial symbols are bytes through bytelevel_char */
	int32_t byte_ids[256];         /* byte-level: byte -> id; byte_fallback: <0xXX> -> id */
	int32_t byte_cp[256];          /* byte-level: byte -> code point of its stand-in */
	int sp_split;                  /* no merge crosses a "▁" after other text: split there */
	int byte_fallback;
	int ignore_merges;
	int fuse_unk;
	int32_t unk_id;

	/* pipeline */
	struct norm_step *norms;
	size_t n_norms;
	struct pretok_step *pretoks;
	size_t n_pretoks;
	/* added tokens matched on the raw text, and (normalized: true, with a
	 * normalizer) on the normalized text by their normalized content */
	struct added_set raw_added, norm_added;

	enum decoder_kind decoder;
	int dec_strip_start;           /* SentencePiece: leading spaces stripped from the text */

	/* post-processing */
	int32_t *prefix_ids, *suffix_ids;
	size_t n_prefix, n_suffix;
	int32_t bos_id, eos_id;
	char *chat_template;
};

#define TOKF_SPECIAL 1
#define TOKF_ADDED 2
#define TOKF_BYTE 4   /* <0xXX> byte-fallback token */

/* tokenizer-bpe.c: appends the ids of one pre-token (bytes as the model sees
 * them: raw bytes for byte-level models) to *ids. */
struct idvec { int32_t *v; size_t n, alloc; };
void idvec_push(struct idvec *v, int32_t id);
void bpe_encode_word(const struct tokenizer *tok, const char *w, size_t n, struct idvec *out);

/* tokenizer-encode.c: applies the normalizers to s; *out is left empty when
 * there are none or nothing changed. */
void tokenizer_normalize(const struct tokenizer *tok, const char *s, size_t n, struct buf *out);

/* tokenizer-decode.c: fills id_bytes for every id once the vocab is loaded. */
void tokenizer_build_id_bytes(struct tokenizer *tok);

#endif
