/*
 * tests/unit/test-tokenizer.c - engine/tokenizer: the shipped Qwen3
 * tokenizer (byte-level BPE, special tokens, NFC, decoding), a small
 * SentencePiece-style tokenizer written by the test (metaspace, byte
 * fallback, BOS from TemplateProcessing, no double BOS), the incremental
 * detokenizer, and errors on bad input.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/tokenizer.h"
#include "lib/util.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

static const char *
qwen_dir(void)
{
	static char dir[4096];
	const char *top = getenv("top_srcdir");

	snprintf(dir, sizeof(dir), "%s/etc/tokenizers/qwen3", top && *top ? top : TOP_SRCDIR);
	return dir;
}

static struct tokenizer *
load_qwen(void)
{
	struct tokenizer *tok = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(tokenizer_load(qwen_dir(), &tok, &e), 0, "%s: %s", e.field, e.msg);
	return tok;
}

static void
assert_ids(const struct tokenizer *tok, const char *text, int add_special, const int32_t *want,
    size_t n_want)
{
	int32_t *ids;
	size_t n;

	cr_assert_eq(tokenizer_encode(tok, text, strlen(text), add_special, &ids, &n), 0);
	cr_assert_eq(n, n_want, "\"%s\": %zu ids, want %zu", text, n, n_want);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ids[i], want[i], "\"%s\": id[%zu] = %d, want %d", text, i, ids[i], want[i]);
	free(ids);
}

static void
assert_roundtrip(const struct tokenizer *tok, const char *text, const char *want)
{
	int32_t *ids;
	size_t n;
	struct buf out = BUF_INIT;

	cr_assert_eq(tokenizer_encode(tok, text, strlen(text), 0, &ids, &n), 0);
	cr_assert_eq(tokenizer_decode(tok, ids, n, 0, &out), 0);
	cr_assert_str_eq(out.buf, want ? want : text);
	free(ids);
	buf_release(&out);
}

Test(tokenizer_qwen3, encodes_like_hugging_face)
{
	struct tokenizer *tok = load_qwen();
	/* expected ids from @huggingface/tokenizers on the same tokenizer.json */
	static const int32_t hello[] = { 9707, 4337 };
	static const int32_t nl[] = { 198 };
	static const int32_t chat[] = { 151644, 872, 198, 6023, 594 };
	static const int32_t bot[] = { 27, 91, 7265, 3575, 4326, 91, 29, 87 };

	assert_ids(tok, "Hello World", 0, hello, 2);
	assert_ids(tok, "Hello World", 1, hello, 2);  /* Qwen adds nothing */
	assert_ids(tok, "\n", 0, nl, 1);
	assert_ids(tok, "", 0, NULL, 0);
	assert_ids(tok, "<|im_start|>user\nhi's", 0, chat, 5);
	assert_ids(tok, "<|begin_of_text|>x", 0, bot, 8);  /* not Qwen's: plain text */

	cr_assert_eq(tokenizer_token_id(tok, "<|im_start|>"), 151644);
	cr_assert_eq(tokenizer_token_id(tok, "Hello"), 9707);
	cr_assert_eq(tokenizer_token_id(tok, "no such token at all"), -1);
	cr_assert_str_eq(tokenizer_id_token(tok, 4337), "\xc4\xa0World");  /* "ĠWorld" */
	cr_assert_null(tokenizer_id_token(tok, -1));
	cr_assert_null(tokenizer_id_token(tok, tokenizer_vocab_size(tok)));
	cr_assert_eq(tokenizer_eos_id(tok), 151645);   /* <|im_end|> */
	cr_assert_eq(tokenizer_bos_id(tok), -1);
	cr_assert(tokenizer_is_special(tok, 151644));
	cr_assert_not(tokenizer_is_special(tok, 9707));
	cr_assert_eq(tokenizer_vocab_size(tok), 151669);   /* last added token + 1 */
	cr_assert_not_null(tokenizer_chat_template(tok));
	cr_assert_not_null(strstr(tokenizer_chat_template(tok), "<|im_start|>"));
	tokenizer_free(tok);
}

Test(tokenizer_qwen3, nfc_and_round_trip)
{
	struct tokenizer *tok = load_qwen();
	int32_t *a, *b;
	size_t na, nb;

	/* "e" + combining acute encodes as the precomposed "é" */
	cr_assert_eq(tokenizer_encode(tok, "caf\x65\xcc\x81", 6, 0, &a, &na), 0);
	cr_assert_eq(tokenizer_encode(tok, "caf\xc3\xa9", 5, 0, &b, &nb), 0);
	cr_assert_eq(na, nb);
	cr_assert_eq(memcmp(a, b, na * sizeof(*a)), 0);
	free(a);
	free(b);

	assert_roundtrip(tok, "Hello, world! 123456 don't", NULL);
	assert_roundtrip(tok, "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c", NULL);
	assert_roundtrip(tok, "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7", NULL);
	assert_roundtrip(tok, "  \t\r\n\n  x  ", NULL);
	assert_roundtrip(tok, "<|im_start|>system\nYou are<|im_end|>", NULL);
	tokenizer_free(tok);
}

Test(tokenizer_qwen3, decode_skips_special_and_rejects_bad_ids)
{
	struct tokenizer *tok = load_qwen();
	const int32_t ids[] = { 151644, 9707, 4337, 151645 };
	const int32_t bad[] = { 9707, 1 << 30 };
	struct buf out = BUF_INIT;

	cr_assert_eq(tokenizer_decode(tok, ids, 4, 1, &out), 0);
	cr_assert_str_eq(out.buf, "Hello World");
	buf_reset(&out);
	cr_assert_eq(tokenizer_decode(tok, ids, 4, 0, &out), 0);
	cr_assert_str_eq(out.buf, "<|im_start|>Hello World<|im_end|>");
	buf_reset(&out);
	cr_assert_eq(tokenizer_decode(tok, bad, 2, 0, &out), -ERANGE);
	buf_release(&out);
	tokenizer_free(tok);
}

static int
valid_utf8(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (i + l > n)
			return 0;
		for (size_t k = 1; k < l; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return 0;
		i += l;
	}
	return 1;
}

Test(tokenizer_qwen3, detok_never_emits_partial_utf8)
{
	struct tokenizer *tok = load_qwen();
	/* rare CJK and emoji split into several byte-level tokens */
	const char *text = "\xf0\x9f\xa6\x99\xf0\xa0\x80\x80 \xe9\xbe\x98\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x92\xbb!";
	int32_t *ids;
	size_t n;
	struct detok d;
	struct buf out = BUF_INIT;
	int held = 0;

	cr_assert_eq(tokenizer_encode(tok, text, strlen(text), 0, &ids, &n), 0);
	detok_init(&d, tok, 1);
	for (size_t i = 0; i < n; i++) {
		size_t before = out.len;
		detok_push(&d, ids[i], &out);
		cr_assert(valid_utf8(out.buf, out.len), "partial UTF-8 after id %zu", i);
		if (out.len == before)
			held = 1;
	}
	detok_flush(&d, &out);
	detok_release(&d);
	cr_assert(held, "expected some token to be held back");
	cr_assert_str_eq(out.buf, text);
	free(ids);
	buf_release(&out);
	tokenizer_free(tok);
}

struct enc_job {
	const struct tokenizer *tok;
	const char *text;
	int32_t *ids;
	size_t n;
	int rc;
};

static void *
enc_thread(void *arg)
{
	struct enc_job *j = arg;

	for (int r = 0; r < 20; r++) {
		free(j->ids);
		j->rc = tokenizer_encode(j->tok, j->text, strlen(j->text), 0, &j->ids, &j->n);
	}
	return NULL;
}

/* One tokenizer shared by threads gives each the same ids as one thread. */
Test(tokenizer_qwen3, concurrent_encode)
{
	struct tokenizer *tok = load_qwen();
	struct buf text = BUF_INIT;
	struct enc_job jobs[4] = { 0 };
	pthread_t th[4];
	int32_t *want;
	size_t n_want;

	for (int i = 0; i < 40; i++)
		buf_addf(&text, "Line %d: the caf\xc3\xa9's \xe4\xbd\xa0\xe5\xa5\xbd  \xf0\x9f\x98\x80 it's\n", i);
	cr_assert_eq(tokenizer_encode(tok, text.buf, text.len, 0, &want, &n_want), 0);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct enc_job){ tok, text.buf, NULL, 0, -1 };
		cr_assert_eq(pthread_create(&th[i], NULL, enc_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(jobs[i].rc, 0);
		cr_assert_eq(jobs[i].n, n_want);
		cr_assert_eq(memcmp(jobs[i].ids, want, n_want * sizeof(*want)), 0);
		free(jobs[i].ids);
	}
	free(want);
	buf_release(&text);
	tokenizer_free(tok);
}

Test(tokenizer_qwen3, invalid_utf8_is_eilseq)
{
	struct tokenizer *tok = load_qwen();
	int32_t *ids;
	size_t n;

	cr_assert_eq(tokenizer_encode(tok, "ab\xff", 3, 0, &ids, &n), -EILSEQ);
	cr_assert_eq(tokenizer_encode(tok, "\xc3", 1, 0, &ids, &n), -EILSEQ);
	cr_assert_eq(tokenizer_encode(tok, "\xed\xa0\x80", 3, 0, &ids, &n), -EILSEQ); /* surrogate */
	cr_assert_eq(tokenizer_encode(tok, "\xc0\xaf", 2, 0, &ids, &n), -EILSEQ);     /* overlong */
	/* an embedded NUL is text like any other */
	cr_assert_eq(tokenizer_encode(tok, "a\0b", 3, 0, &ids, &n), 0);
	cr_assert_geq(n, 2);
	struct buf out = BUF_INIT;
	cr_assert_eq(tokenizer_decode(tok, ids, n, 0, &out), 0);
	cr_assert_eq(out.len, 3);
	cr_assert_eq(memcmp(out.buf, "a\0b", 3), 0);
	buf_release(&out);
	free(ids);
	tokenizer_free(tok);
}

/* ---- a small Llama-2 style (SentencePiece BPE) tokenizer ---- */

static char spdir[] = "/tmp/llmd-tok-test-XXXXXX";

static void
write_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

#define SP "\xe2\x96\x81"   /* ▁ */

static void
make_sp_tokenizer(void)
{
	static const char *pieces[] = { SP, "h", "e", "l", "o", "w", "r", "d", SP "h", "el",
		SP "hel", "lo", SP "hello", SP "w", "or", SP "wor", "ld", SP "world" };
	static const char *merges[][2] = { { SP, "h" }, { "e", "l" }, { SP "h", "el" }, { "l", "o" },
		{ SP "hel", "lo" }, { SP, "w" }, { "o", "r" }, { SP "w", "or" }, { "l", "d" },
		{ SP "wor", "ld" } };
	char json[32768];
	size_t n = 0;

	cr_assert_not_null(mkdtemp(spdir));
	n += (size_t)snprintf(json + n, sizeof(json) - n,
	    "{\"version\":\"1.0\",\"added_tokens\":["
	    "{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
	    "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
	    "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false},"
	    "{\"id\":400,\"content\":\"wor\",\"single_word\":true,\"special\":false,\"normalized\":false},"
	    "{\"id\":401,\"content\":\"o w\",\"special\":false,\"normalized\":true}],"
	    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
	    "{\"type\":\"Prepend\",\"prepend\":\"" SP "\"},"
	    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" SP "\"}]},"
	    "\"pre_tokenizer\":null,"
	    "\"post_processor\":{\"type\":\"TemplateProcessing\","
	    "\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
	    "\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
	    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
	    "{\"type\":\"Replace\",\"pattern\":{\"String\":\"" SP "\"},\"content\":\" \"},"
	    "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
	    "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
	    "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,"
	    "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
	for (int b = 0; b < 256; b++)
		n += (size_t)snprintf(json + n, sizeof(json) - n, ",\"<0x%02X>\":%d", b, 3 + b);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n, ",\"%s\":%zu", pieces[i], 259 + i);
	n += (size_t)snprintf(json + n, sizeof(json) - n, "},\"merges\":[");
	for (size_t i = 0; i < sizeof(merges) / sizeof(merges[0]); i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n, "%s[\"%s\",\"%s\"]", i ? "," : "",
		    merges[i][0], merges[i][1]);
	snprintf(json + n, sizeof(json) - n, "]}}");
	write_file(spdir, "tokenizer.json", json);
	write_file(spdir, "tokenizer_config.json",
	    "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"add_bos_token\":true}");
}

static void
rm_sp_tokenizer(void)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/tokenizer.json", spdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/tokenizer_config.json", spdir);
	unlink(p);
	rmdir(spdir);
}

enum { SP_ = 259, HELLO = 259 + 12, WORLD = 259 + 17, BYTE0 = 3 };

Test(tokenizer_sentencepiece, metaspace_byte_fallback_bos, .init = make_sp_tokenizer,
    .fini = rm_sp_tokenizer)
{
	struct tokenizer *tok = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(tokenizer_load(spdir, &tok, &e), 0, "%s: %s", e.field, e.msg);
	cr_assert_eq(tokenizer_bos_id(tok), 1);
	cr_assert_eq(tokenizer_eos_id(tok), 2);

	const int32_t hw[] = { 1, HELLO, WORLD };
	assert_ids(tok, "hello world", 1, hw, 3);
	assert_ids(tok, "hello world", 0, hw + 1, 2);
	/* text that starts with BOS gets no second one */
	assert_ids(tok, "<s>hello world", 1, hw, 3);
	/* é is not in the vocabulary: its UTF-8 bytes */
	/* single_word: "wor" only where it is not part of a word */
	const int32_t sw[] = { HELLO, SP_, 400 };
	assert_ids(tok, "hello world", 0, hw + 1, 2);
	assert_ids(tok, "hello wor", 0, sw, 3);
	cr_assert_eq(tokenizer_token_id(tok, "wor"), 400);
	/* normalized: true: matched by its normalized form "▁o▁w" in "▁hello▁o▁w" */
	const int32_t nt[] = { HELLO, 401 };
	assert_ids(tok, "hello o w", 0, nt, 2);
	cr_assert_str_eq(tokenizer_id_token(tok, 401), "o w");
	cr_assert_not(tokenizer_is_special(tok, 400));
	const int32_t fb[] = { HELLO, SP_, BYTE0 + 0xc3, BYTE0 + 0xa9 };
	assert_ids(tok, "hello \xc3\xa9", 0, fb, 4);

	struct buf out = BUF_INIT;
	cr_assert_eq(tokenizer_decode(tok, hw, 3, 1, &out), 0);
	cr_assert_str_eq(out.buf, "hello world");
	buf_reset(&out);
	cr_assert_eq(tokenizer_decode(tok, hw, 3, 0, &out), 0);
	cr_assert_str_eq(out.buf, "<s> hello world");
	buf_reset(&out);
	cr_assert_eq(tokenizer_decode(tok, fb, 4, 0, &out), 0);
	cr_assert_str_eq(out.buf, "hello \xc3\xa9");
	buf_reset(&out);

	/* a lone byte token held back until its sequence completes */
	struct detok d;
	detok_init(&d, tok, 1);
	detok_push(&d, HELLO, &out);
	cr_assert_str_eq(out.buf, "hello");
	detok_push(&d, BYTE0 + 0xc3, &out);
	cr_assert_str_eq(out.buf, "hello");
	detok_push(&d, BYTE0 + 0xa9, &out);
	cr_assert_str_eq(out.buf, "hello\xc3\xa9");
	/* an invalid tail becomes U+FFFD at flush */
	detok_push(&d, BYTE0 + 0xe4, &out);
	detok_flush(&d, &out);
	cr_assert_str_eq(out.buf, "hello\xc3\xa9\xef\xbf\xbd");
	detok_release(&d);
	buf_release(&out);
	tokenizer_free(tok);
}

Test(tokenizer_errors, garbage_and_missing_files)
{
	char tmpl[] = "/tmp/llmd-tok-bad-XXXXXX";
	char *d = mkdtemp(tmpl);
	struct tokenizer *tok = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	static const char *bad[] = {
		"{not json",
		"[]",
		"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a\"]}}",
		"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}}",
		"{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}",
		"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}",
		"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
		"\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"}}}",
	};

	cr_assert_not_null(d);
	cr_assert_eq(tokenizer_load(d, &tok, &e), -ENOENT);
	cr_assert_not_null(strstr(e.field, "tokenizer.json"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		write_file(d, "tokenizer.json", bad[i]);
		cr_assert_lt(tokenizer_load(d, &tok, &e), 0, "case %zu loaded", i);
		cr_assert_neq(e.msg[0], '\0', "case %zu without a message", i);
	}
	char p[512];
	snprintf(p, sizeof(p), "%s/tokenizer.json", d);
	unlink(p);
	rmdir(d);
}

/* Damaged tokenizer.json files load with an error message or, when still
 * meaningful, encode and decode: never a crash (run under ASan too). */
Test(tokenizer_errors, mutated_json, .init = make_sp_tokenizer, .fini = rm_sp_tokenizer)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/tokenizer.json", spdir);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	static char orig[32768], mut[32768];
	size_t n = fread(orig, 1, sizeof(orig), f);
	fclose(f);
	uint32_t rnd = 12345;
	static const char junk[] = "{}[]\",:0123456789-aZ\\ \xff";
	int loaded = 0;

	for (int k = 0; k < 300; k++) {
		size_t m = n;
		memcpy(mut, orig, n);
		rnd = rnd * 1103515245 + 12345;
		switch ((rnd >> 16) % 3) {
		case 0:
			m = (rnd >> 8) % n;
			break;
		case 1:
			for (int t = 0; t < 8; t++) {
				rnd = rnd * 1103515245 + 12345;
				mut[(rnd >> 8) % n] = junk[(rnd >> 3) % (sizeof(junk) - 1)];
			}
			break;
		default: {
			size_t at = (rnd >> 8) % n, len = MIN((size_t)(rnd % 200) + 1, n - at);
			memmove(mut + at, mut + at + len, n - at - len);
			m = n - len;
		}
		}
		f = fopen(path, "wb");
		fwrite(mut, 1, m, f);
		fclose(f);
		struct tokenizer *tok = NULL;
		struct llmd_err e = LLMD_ERR_INIT;
		int rc = tokenizer_load(spdir, &tok, &e);
		if (rc < 0) {
			cr_assert_neq(e.msg[0], '\0', "mutation %d: error without a message", k);
			continue;
		}
		loaded++;
		int32_t *ids;
		size_t nid;
		const char *text = "hello world \xc3\xa9 <s> x \xf0\x9f\x98\x80 \t\n";
		if (tokenizer_encode(tok, text, strlen(text), 1, &ids, &nid) == 0) {
			struct buf out = BUF_INIT;
			tokenizer_decode(tok, ids, nid, 0, &out);
			buf_release(&out);
			free(ids);
		}
		tokenizer_free(tok);
	}
	cr_assert_gt(loaded, 0, "some mutations should still load");
}
