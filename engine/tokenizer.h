/*
 * engine/tokenizer.h - Hugging Face tokenizer.json tokenizers without Python:
 * byte-level BPE (Llama-3, Qwen2/3) and SentencePiece-style BPE (Llama-2,
 * Mistral), added/special tokens, BOS/EOS from tokenizer_config.json, and an
 * incremental detokenizer that never emits a partial UTF-8 sequence.
 *
 * Owned by engine/tokenizer*.c. Token ids are int32_t. A loaded tokenizer is
 * read-only: encode/decode may run on any number of threads at once.
 *
 * Supported: BPE models (vocab + merges as "a b" or ["a","b"], ignore_merges,
 * byte_fallback, unk/fuse_unk); normalizers NFC/NFD/NFKC/NFKD (utf8proc),
 * Lowercase, Strip, Prepend, Replace (string pattern), Sequence;
 * pre-tokenizers Split (PCRE2 UTF+UCP, JIT; Isolated/Removed/Merged*),
 * ByteLevel, Metaspace, Sequence; decoders ByteLevel, Metaspace and the
 * Replace/ByteFallback/Fuse/Strip sequence; TemplateProcessing (single).
 * Other models, normalizers, pre-tokenizers and decoders are a load error
 * naming the field; other post-processors add nothing.
 */
#ifndef LLMD_ENGINE_TOKENIZER_H
#define LLMD_ENGINE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

struct tokenizer;

/* Loads MODEL_DIR/tokenizer.json (+ tokenizer_config.json when present:
 * bos_token, eos_token, add_bos_token/add_eos_token when tokenizer.json has no
 * TemplateProcessing, additional_special_tokens, chat_template). Errors: -ENOENT
 * and friends for files, -EINVAL for bad JSON ("FILE:LINE:COL" in e->field) or
 * content (e->field "FILE: json.path"), -ENOTSUP for unsupported components. */
int tokenizer_load(const char *model_dir, struct tokenizer **out, struct llmd_err *e);
void tokenizer_free(struct tokenizer *tok);

/* Encodes text (len bytes, need not be NUL-terminated). add_special adds BOS
 * etc. as the tokenizer's post-processor says (never a double BOS). Fills a
 * malloc'd array the caller frees. Invalid UTF-8 is -EILSEQ; -E2BIG when a
 * pre-tokenizer regex hits PCRE2's match limits. Thread-safe: the tokenizer
 * is only read. */
int tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len, int add_special,
    int32_t **ids, size_t *n_ids);
/* Appends the text of ids to out; skip_special drops special tokens. Ids
 * outside the vocabulary: -ERANGE and nothing appended. */
int tokenizer_decode(const struct tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
    struct buf *out);

int32_t tokenizer_vocab_size(const struct tokenizer *tok);
/* -1 when the tokenizer has none. */
int32_t tokenizer_bos_id(const struct tokenizer *tok);
int32_t tokenizer_eos_id(const struct tokenizer *tok);
/* Id of an exact token string (added tokens included) or -1. */
int32_t tokenizer_token_id(const struct tokenizer *tok, const char *s);
/* Token string of id (raw vocab form), NULL when out of range. */
const char *tokenizer_id_token(const struct tokenizer *tok, int32_t id);
int tokenizer_is_special(const struct tokenizer *tok, int32_t id);
/* chat_template string from tokenizer_config.json, or NULL. */
const char *tokenizer_chat_template(const struct tokenizer *tok);

/*
 * Incremental detokenizer: feed ids one at a time; each call appends to out
 * only complete UTF-8 text that can no longer change.
 */
struct detok {
	const struct tokenizer *tok;
	int skip_special;
	struct buf pending;     /* bytes not yet emitted (incomplete UTF-8) */
	int at_start;           /* SentencePiece: leading spaces still to strip */
};
void detok_init(struct detok *d, const struct tokenizer *tok, int skip_special);
void detok_push(struct detok *d, int32_t id, struct buf *out);
/* Emits whatever remains (invalid tails as U+FFFD). */
void detok_flush(struct detok *d, struct buf *out);
void detok_release(struct detok *d);

#endif
