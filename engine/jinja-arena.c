/*
 * engine/jinja-arena.c - the bump allocator behind templates and renders
 * (with a byte cap, so a hostile template cannot take all memory), and the
 * line:column of a source offset for error messages.
 */
#include "config.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/jinja-impl.h"
#include "lib/util.h"

struct jblock {
	struct jblock *next;
	max_align_t data[];
};

#define JA_BLOCK (64u << 10)

void *ja_alloc(struct jarena *a, size_t n)
{
	size_t al = alignof(max_align_t);
	void *p;

	n = (n + al - 1) & ~(al - 1);
	if (n == 0)
		n = al;
	if (n > a->left) {
		int big = n > JA_BLOCK / 4;
		size_t sz = big ? n : JA_BLOCK;
		struct jblock *b;

		if (a->cap && (sz > a->cap || a->total > a->cap - sz))
			return NULL;
		b = xmalloc(sizeof(*b) + sz);
		a->total += sz;
		b->next = a->blocks;
		a->blocks = b;
		if (big && a->cur)
			return (void *)b->data;  /* one-off: keep the current block */
		a->cur = (char *)b->data;
		a->left = sz;
	}
	p = a->cur;
	a->cur += n;
	a->left -= n;
	return p;
}

void ja_free(struct jarena *a)
{
	struct jblock *b = a->blocks, *nx;

	while (b) {
		nx = b->next;
		free(b);
		b = nx;
	}
	a->blocks = NULL;
	a->cur = NULL;
	a->left = 0;
	a->total = 0;
}

void jinja_linecol(const char *src, size_t len, size_t off, char *out, size_t outlen)
{
	size_t i, line = 1, col = 1;

	for (i = 0; i < off && i < len; i++) {
		if (src[i] == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)src[i] & 0xc0) != 0x80) {
			col++;
		}
	}
	snprintf(out, outlen, "%zu:%zu", line, col);
}
