/*
 * engine/tokenizer-utf8.c - UTF-8 validation, decoding and lossy output for
 * the tokenizer, and the GPT-2 byte-level alphabet (bytes <-> code points).
 */
#include "config.h"

#include <string.h>

#include "engine/tokenizer-internal.h"

int
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	int len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0)
		len = 2;
	else if (c < 0xf0) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c < 0xf5) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xbf;
		if (s[i] < lo_i || s[i] > hi_i)
			return 0;
	}
	return len;
}

int
utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		int l = utf8_seq_len(s + i, n - i);
		if (l <= 0)
			return 0;
		i += (size_t)l;
	}
	return 1;
}

int
utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
	unsigned char c = s[0];

	if (c < 0x80 || n < 2) {
		*cp = c;
		return 1;
	}
	if (c < 0xe0) {
		*cp = (int32_t)(c & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if (c < 0xf0 || n < 4) {
		*cp = (int32_t)(c & 0x0f) << 12 | (int32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	*cp = (int32_t)(c & 0x07) << 18 | (int32_t)(s[1] & 0x3f) << 12 |
	    (int32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	return 4;
}

int
utf8_encode(int32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

void
utf8_add_lossy(struct buf *out, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	while (i < n) {
		int l = s[i] < 0x80 ? 1 : utf8_seq_len(s + i, n - i);
		if (l > 0) {
			i += (size_t)l;
			continue;
		}
		buf_add(out, s + run, i - run);
		buf_add(out, "\xef\xbf\xbd", 3);
		/* skip the maximal ill-formed subsequence: the lead byte and
		 * the continuation bytes it validly announced */
		size_t j = i + 1;
		while (j < n && j - i < 4 && (s[j] & 0xc0) == 0x80 && utf8_seq_len(s + i, j - i + 1) == -1)
			j++;
		if (l == -1)
			j = n;
		i = j;
		run = i;
	}
	buf_add(out, s + run, n - run);
}

/* bytes_to_unicode() of GPT-2: printable Latin-1 bytes stand for themselves,
 * the other 68 map to U+0100.. in byte order. */
static int bytelevel_ready;
static int32_t byte_to_cp[256];
static int16_t cp_to_byte[256 + 68];

static void
bytelevel_init(void)
{
	int next = 256;

	for (int b = 0; b < 256; b++) {
		if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
			byte_to_cp[b] = b;
		else
			byte_to_cp[b] = next++;
	}
	for (int i = 0; i < 256 + 68; i++)
		cp_to_byte[i] = -1;
	for (int b = 0; b < 256; b++)
		cp_to_byte[byte_to_cp[b]] = (int16_t)b;
	__atomic_store_n(&bytelevel_ready, 1, __ATOMIC_RELEASE);
}

int32_t
bytelevel_char(unsigned char b)
{
	if (!__atomic_load_n(&bytelevel_ready, __ATOMIC_ACQUIRE))
		bytelevel_init();
	return byte_to_cp[b];
}

int
bytelevel_byte(int32_t cp)
{
	if (!__atomic_load_n(&bytelevel_ready, __ATOMIC_ACQUIRE))
		bytelevel_init();
	return cp >= 0 && cp < 256 + 68 ? cp_to_byte[cp] : -1;
}
