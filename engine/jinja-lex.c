/*
 * engine/jinja-lex.c - the Jinja lexer: splits a template into text and tag
 * tokens, applying whitespace control as transformers configures Jinja
 * (trim_blocks, lstrip_blocks, "-" and "+" modifiers), drops comments and
 * decodes string literals (Python escapes).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/jinja-impl.h"
#include "lib/util.h"

struct lexer {
	struct jarena *a;
	const char *s;
	size_t len;
	size_t pos;
	struct jtoken *v;
	size_t n, cap;
	struct llmd_err *e;
};

static int lex_err(struct lexer *L, size_t off, const char *msg)
{
	char lc[64];

	jinja_linecol(L->s, L->len, off, lc, sizeof(lc));
	return err_set(L->e, -EINVAL, lc, "template syntax error: %s", msg);
}

static struct jtoken *push(struct lexer *L, enum jtok t, size_t off)
{
	struct jtoken *k;

	if (L->n == L->cap) {
		L->cap = L->cap ? L->cap * 2 : 256;
		L->v = xreallocarray(L->v, L->cap, sizeof(*L->v));
	}
	k = &L->v[L->n++];
	memset(k, 0, sizeof(*k));
	k->t = t;
	k->off = off;
	return k;
}

static int is_hspace(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Emits the text s[ts..te), applying lstrip_blocks / "-" for a tag of kind
 * c ('{', '%', '#') starting at te whose modifier is mod ('-', '+', 0). */
static void emit_text(struct lexer *L, size_t ts, size_t te, char c, char mod)
{
	struct jtoken *k;

	if (mod == '-') {
		while (te > ts && isspace((unsigned char)L->s[te - 1]))
			te--;
	} else if (mod != '+' && (c == '%' || c == '#')) {
		size_t l = te, i;
		int at_line_start;

		while (l > ts && L->s[l - 1] != '\n')
			l--;
		at_line_start = l > ts || ts == 0 || L->s[ts - 1] == '\n';
		if (at_line_start) {
			for (i = l; i < te && is_hspace(L->s[i]); i++)
				;
			if (i == te)
				te = l;
		}
	}
	if (te > ts) {
		k = push(L, JT_TEXT, ts);
		k->p = L->s + ts;
		k->n = te - ts;
	}
}

/* After a tag's end at pos: "-" eats all whitespace, a block or comment
 * (trim_blocks) eats one newline unless the end was "+%}". */
static void after_end(struct lexer *L, char c, char mod)
{
	if (mod == '-') {
		while (L->pos < L->len && isspace((unsigned char)L->s[L->pos]))
			L->pos++;
	} else if (mod != '+' && (c == '%' || c == '#')) {
		if (L->pos < L->len && L->s[L->pos] == '\n')
			L->pos++;
		else if (L->pos + 1 < L->len && L->s[L->pos] == '\r' && L->s[L->pos + 1] == '\n')
			L->pos += 2;
	}
}

static void put_utf8(char *o, size_t *on, uint32_t cp)
{
	if (cp < 0x80) {
		o[(*on)++] = (char)cp;
	} else if (cp < 0x800) {
		o[(*on)++] = (char)(0xc0 | (cp >> 6));
		o[(*on)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		o[(*on)++] = (char)(0xe0 | (cp >> 12));
		o[(*on)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*on)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*on)++] = (char)(0xf0 | (cp >> 18));
		o[(*on)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[(*on)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*on)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static int hexval(const char *p, int n, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < n; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A string literal at pos (quote q); decodes Python escapes. */
static int lex_string(struct lexer *L)
{
	size_t start = L->pos, i, end;
	char q = L->s[L->pos];
	char *o;
	size_t on = 0;
	struct jtoken *k;

	for (i = start + 1; i < L->len && L->s[i] != q; i++)
		if (L->s[i] == '\\')
			i++;
	if (i >= L->len)
		return lex_err(L, start, "unterminated string");
	end = i;
	o = ja_alloc(L->a, end - start + 1);
	if (!o)
		return err_set(L->e, -E2BIG, NULL, "template too large");
	for (i = start + 1; i < end; i++) {
		char c = L->s[i];
		uint32_t cp;

		if (c != '\\') {
			o[on++] = c;
			continue;
		}
		c = L->s[++i];
		switch (c) {
		case 'n': o[on++] = '\n'; break;
		case 't': o[on++] = '\t'; break;
		case 'r': o[on++] = '\r'; break;
		case 'b': o[on++] = '\b'; break;
		case 'f': o[on++] = '\f'; break;
		case 'v': o[on++] = '\v'; break;
		case 'a': o[on++] = '\a'; break;
		case '0': o[on++] = '\0'; break;
		case '\\': case '\'': case '"': o[on++] = c; break;
		case '\n': break;
		case 'x': case 'u': case 'U': {
			int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;

			if (i + (size_t)nd >= end || hexval(L->s + i + 1, nd, &cp) < 0 || cp > 0x10ffff)
				return lex_err(L, i - 1, "bad \\x/\\u escape in string");
			/* the decoded form is never longer than the escape */
			put_utf8(o, &on, cp);
			i += (size_t)nd;
			break;
		}
		default:
			o[on++] = '\\';
			o[on++] = c;
		}
	}
	o[on] = '\0';
	k = push(L, JT_STR, start);
	k->p = o;
	k->n = on;
	L->pos = end + 1;
	return 0;
}

static int lex_number(struct lexer *L)
{
	size_t start = L->pos, i = start;
	int is_float = 0;
	struct jtoken *k;
	char buf[64];

	while (i < L->len && isdigit((unsigned char)L->s[i]))
		i++;
	if (i + 1 < L->len && L->s[i] == '.' && isdigit((unsigned char)L->s[i + 1])) {
		is_float = 1;
		i++;
		while (i < L->len && isdigit((unsigned char)L->s[i]))
			i++;
	}
	if (i < L->len && (L->s[i] == 'e' || L->s[i] == 'E')) {
		size_t j = i + 1;

		if (j < L->len && (L->s[j] == '+' || L->s[j] == '-'))
			j++;
		if (j < L->len && isdigit((unsigned char)L->s[j])) {
			is_float = 1;
			i = j;
			while (i < L->len && isdigit((unsigned char)L->s[i]))
				i++;
		}
	}
	if (i - start >= sizeof(buf))
		return lex_err(L, start, "number too long");
	memcpy(buf, L->s + start, i - start);
	buf[i - start] = '\0';
	k = push(L, is_float ? JT_FLOAT : JT_INT, start);
	if (is_float) {
		k->f = strtod(buf, NULL);
	} else {
		errno = 0;
		k->i = strtoll(buf, NULL, 10);
		if (errno)
			return lex_err(L, start, "integer out of range");
	}
	L->pos = i;
	return 0;
}

static const char *const ops2[] = { "//", "**", "==", "!=", "<=", ">=" };

/* Tokens inside a tag until its end; c is '{' (variable) or '%' (block). */
static int lex_tag(struct lexer *L, char c, size_t open_off)
{
	char close = c == '{' ? '}' : '%';
	int depth = 0;

	for (;;) {
		const char *p;
		char ch;
		size_t i;

		while (L->pos < L->len && isspace((unsigned char)L->s[L->pos]))
			L->pos++;
		if (L->pos >= L->len)
			return lex_err(L, open_off, c == '{' ? "unclosed '{{'" : "unclosed '{%'");
		p = L->s + L->pos;
		ch = *p;
		/* the end of the tag, with its modifier */
		if (depth == 0 || close == '%') {
			char mod = 0;
			size_t k = L->pos;

			if ((ch == '-' || ch == '+') && k + 2 < L->len + 0 && L->s[k + 1] == close &&
			    L->s[k + 2] == '}') {
				mod = ch;
				k++;
			}
			if (k + 1 < L->len && L->s[k] == close && L->s[k + 1] == '}' &&
			    (mod || L->s[k] != '}' || depth == 0)) {
				push(L, c == '{' ? JT_VEND : JT_BEND, L->pos);
				L->pos = k + 2;
				after_end(L, c == '{' ? '{' : '%', mod);
				return 0;
			}
		}
		if (ch == '"' || ch == '\'') {
			int rc = lex_string(L);

			if (rc < 0)
				return rc;
			continue;
		}
		if (isdigit((unsigned char)ch)) {
			int rc = lex_number(L);

			if (rc < 0)
				return rc;
			continue;
		}
		if (isalpha((unsigned char)ch) || ch == '_') {
			struct jtoken *k;

			for (i = L->pos; i < L->len && (isalnum((unsigned char)L->s[i]) || L->s[i] == '_'); i++)
				;
			k = push(L, JT_NAME, L->pos);
			k->p = p;
			k->n = i - L->pos;
			L->pos = i;
			continue;
		}
		for (i = 0; i < ARRAY_SIZE(ops2); i++) {
			if (L->pos + 1 < L->len && !strncmp(p, ops2[i], 2))
				break;
		}
		if (i < ARRAY_SIZE(ops2)) {
			struct jtoken *k = push(L, JT_OP, L->pos);

			k->p = p;
			k->n = 2;
			L->pos += 2;
			continue;
		}
		if (strchr("+-*/%~<>=()[]{},.:|", ch)) {
			struct jtoken *k = push(L, JT_OP, L->pos);

			if (ch == '(' || ch == '[' || ch == '{')
				depth++;
			else if ((ch == ')' || ch == ']' || ch == '}') && depth > 0)
				depth--;
			k->p = p;
			k->n = 1;
			L->pos++;
			continue;
		}
		return lex_err(L, L->pos, "unexpected character in tag");
	}
}

int jinja_lex(struct jarena *a, const char *src, size_t len, struct jtoken **toks,
    size_t *ntoks, struct llmd_err *e)
{
	struct lexer L = { .a = a, .s = src, .len = len, .e = e };
	int rc = 0;

	while (L.pos < len) {
		size_t i = L.pos, open;
		char c = 0, mod = 0;

		while (i + 1 < len) {
			if (src[i] == '{' && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#')) {
				c = src[i + 1];
				break;
			}
			i++;
		}
		if (!c) {
			emit_text(&L, L.pos, len, 0, 0);
			break;
		}
		open = i;
		if (i + 2 < len && (src[i + 2] == '-' || src[i + 2] == '+'))
			mod = src[i + 2];
		emit_text(&L, L.pos, open, c == '{' ? '{' : c, mod);
		L.pos = open + 2 + (mod ? 1 : 0);
		if (c == '#') {
			const char *end = NULL;
			size_t j;
			char emod = 0;

			for (j = L.pos; j + 1 < len; j++)
				if (src[j] == '#' && src[j + 1] == '}') {
					end = src + j;
					break;
				}
			if (!end) {
				rc = lex_err(&L, open, "unclosed comment");
				break;
			}
			if (j > L.pos && (src[j - 1] == '-' || src[j - 1] == '+'))
				emod = src[j - 1];
			L.pos = j + 2;
			after_end(&L, '#', emod);
			continue;
		}
		if (c == '%') {
			/* {% raw %} ... {% endraw %}: the body is text */
			size_t j = L.pos;

			while (j < len && isspace((unsigned char)src[j]))
				j++;
			if (len - j >= 3 && !strncmp(src + j, "raw", 3) &&
			    (j + 3 >= len || !(isalnum((unsigned char)src[j + 3]) || src[j + 3] == '_'))) {
				const char *endraw = NULL;
				size_t k = j + 3, body, bend;
				char emod = 0;

				while (k < len && isspace((unsigned char)src[k]))
					k++;
				if (k < len && (src[k] == '-' || src[k] == '+'))
					emod = src[k++];
				if (k + 1 >= len || src[k] != '%' || src[k + 1] != '}') {
					rc = lex_err(&L, open, "malformed raw tag");
					break;
				}
				L.pos = k + 2;
				after_end(&L, '%', emod);
				body = L.pos;
				for (k = body; k + 1 < len; k++) {
					if (src[k] == '{' && src[k + 1] == '%') {
						size_t m = k + 2;

						if (m < len && (src[m] == '-' || src[m] == '+'))
							m++;
						while (m < len && isspace((unsigned char)src[m]))
							m++;
						if (len - m >= 6 && !strncmp(src + m, "endraw", 6)) {
							endraw = src + k;
							break;
						}
					}
				}
				if (!endraw) {
					rc = lex_err(&L, open, "missing endraw");
					break;
				}
				bend = (size_t)(endraw - src);
				mod = (bend + 2 < len && (src[bend + 2] == '-' || src[bend + 2] == '+')) ?
				    src[bend + 2] : 0;
				emit_text(&L, body, bend, '%', mod);
				for (k = bend; k + 1 < len && !(src[k] == '%' && src[k + 1] == '}'); k++)
					;
				if (k + 1 >= len) {
					rc = lex_err(&L, bend, "unclosed endraw tag");
					break;
				}
				emod = (src[k - 1] == '-' || src[k - 1] == '+') ? src[k - 1] : 0;
				L.pos = k + 2;
				after_end(&L, '%', emod);
				continue;
			}
		}
		push(&L, c == '{' ? JT_VBEGIN : JT_BBEGIN, open);
		rc = lex_tag(&L, c == '{' ? '{' : '%', open);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		free(L.v);
		return rc;
	}
	push(&L, JT_EOF, len);
	*toks = L.v;
	*ntoks = L.n;
	return 0;
}
