/*
 * lib/buf.h - growable byte buffers and strings (after git's strbuf).
 *
 * Invariants: b->buf is never NULL and is always NUL-terminated at b->len, so
 * a buf is usable as a C string at any time. Life cycle: BUF_INIT or
 * buf_init(), buf_add*(), then buf_release() (frees) or buf_detach() (the
 * caller owns the returned memory, the buf is empty again).
 */
#ifndef LLMD_BUF_H
#define LLMD_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "lib/log.h"

struct buf {
	size_t alloc;
	size_t len;
	char *buf;
};

extern char buf_empty[];
#define BUF_INIT { 0, 0, buf_empty }

void buf_init(struct buf *b, size_t hint);
void buf_release(struct buf *b);
char *buf_detach(struct buf *b, size_t *len);
void buf_grow(struct buf *b, size_t extra);
void buf_reset(struct buf *b);
void buf_setlen(struct buf *b, size_t len);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) LLMD_PRINTF(2, 3);
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. */
void buf_add_json_str(struct buf *b, const char *s, size_t n);
/* Removes n bytes from the front. */
void buf_consume(struct buf *b, size_t n);

#endif
