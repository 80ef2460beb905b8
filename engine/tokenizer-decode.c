/*
 * engine/tokenizer-decode.c - ids to text: each id's bytes are computed once
 * at load (ByteLevel alphabet undone, SentencePiece "▁" to space and <0xXX>
 * byte tokens to bytes), then the incremental detokenizer concatenates them
 * and emits only complete UTF-8; tokenizer_decode is that detokenizer run to
 * the end.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer-internal.h"
#include "lib/util.h"

static void
id_bytes_of(const struct tokenizer *tok, int32_t id, struct buf *b)
{
	const char *s = tok->id_str[id];
	size_t n = strlen(s);

	if (tok->decoder == DEC_BYTELEVEL && (tok->id_flags[id] & TOKF_ADDED)) {
		buf_add(b, s, n);   /* added tokens are text, not byte-level symbols */
	} else if (tok->decoder == DEC_BYTELEVEL) {
		for (size_t i = 0; i < n;) {
			int32_t cp;
			int l = utf8_decode((const unsigned char *)s + i, n - i, &cp);
			int byte = bytelevel_byte(cp);
			if (byte < 0) {   /* not byte-level text: the token as it is */
				buf_reset(b);
				buf_add(b, s, n);
				return;
			}
			buf_addch(b, (char)byte);
			i += (size_t)l;
		}
	} else if (tok->decoder == DEC_SENTENCEPIECE) {
		if (tok->id_flags[id] & TOKF_BYTE) {
			buf_addch(b, (char)strtol(s + 3, NULL, 16));
			return;
		}
		for (size_t i = 0; i < n;) {
			if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
				buf_addch(b, ' ');
				i += 3;
			} else {
				buf_addch(b, s[i++]);
			}
		}
	} else {
		buf_add(b, s, n);
	}
}

void
tokenizer_build_id_bytes(struct tokenizer *tok)
{
	struct buf b = BUF_INIT;

	tok->id_bytes = xcalloc((size_t)tok->n_ids, sizeof(*tok->id_bytes));
	tok->id_bytes_len = xcalloc((size_t)tok->n_ids, sizeof(*tok->id_bytes_len));
	for (int32_t id = 0; id < tok->n_ids; id++) {
		if (tok->id_str[id] == NULL)
			continue;
		buf_reset(&b);
		id_bytes_of(tok, id, &b);
		tok->id_bytes[id] = xmalloc(b.len + 1);
		memcpy(tok->id_bytes[id], b.buf, b.len + 1);
		tok->id_bytes_len[id] = (uint32_t)b.len;
	}
	buf_release(&b);
}

void
detok_init(struct detok *d, const struct tokenizer *tok, int skip_special)
{
	d->tok = tok;
	d->skip_special = skip_special;
	buf_init(&d->pending, 0);
	d->at_start = tok->decoder == DEC_SENTENCEPIECE ? tok->dec_strip_start : 0;
}

void
detok_push(struct detok *d, int32_t id, struct buf *out)
{
	const struct tokenizer *tok = d->tok;

	if (id < 0 || id >= tok->n_ids || tok->id_bytes[id] == NULL)
		return;
	if (d->skip_special && (tok->id_flags[id] & TOKF_SPECIAL))
		return;
	const char *s = tok->id_bytes[id];
	size_t n = tok->id_bytes_len[id];
	while (d->at_start > 0 && n > 0) {
		if (*s == ' ') {
			s++;
			n--;
			d->at_start--;
		} else {
			d->at_start = 0;
		}
	}
	buf_add(&d->pending, s, n);

	/* hold back a trailing sequence that is a valid but incomplete prefix */
	size_t len = d->pending.len, keep = 0;
	const unsigned char *p = (const unsigned char *)d->pending.buf;
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = p[len - back];
		if ((c & 0xc0) == 0x80)
			continue;
		if (c >= 0xc0 && utf8_seq_len(p + len - back, back) == -1)
			keep = back;
		break;
	}
	utf8_add_lossy(out, d->pending.buf, len - keep);
	buf_consume(&d->pending, len - keep);
}

void
detok_flush(struct detok *d, struct buf *out)
{
	utf8_add_lossy(out, d->pending.buf, d->pending.len);
	buf_reset(&d->pending);
}

void
detok_release(struct detok *d)
{
	buf_release(&d->pending);
}

int
tokenizer_decode(const struct tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
    struct buf *out)
{
	struct detok d;

	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= tok->n_ids || tok->id_str[ids[i]] == NULL)
			return -ERANGE;
	detok_init(&d, tok, skip_special);
	for (size_t i = 0; i < n; i++)
		detok_push(&d, ids[i], out);
	detok_flush(&d, out);
	detok_release(&d);
	return 0;
}
