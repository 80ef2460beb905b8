/*
 * lib/util.c - allocation, time and value parsers (see util.h).
 */
#include "config.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu bytes", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu x %zu bytes", nmemb, size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		fatalx("out of memory reallocating %zu bytes", n);
	return q;
}

void *
xreallocarray(void *p, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		fatalx("allocation size overflow (%zu x %zu)", nmemb, size);
	return xrealloc(p, nmemb * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	size_t len = strnlen(s, n);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
now_ms(void)
{
	return now_us() / 1000u;
}

int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
parse_duration_ms(const char *s, int64_t *out_ms)
{
	int64_t total = 0;
	int any = 0;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	while (*s != '\0') {
		char *end;
		double v;
		int64_t mult;

		if (!isdigit((unsigned char)*s) && *s != '.')
			return -EINVAL;
		errno = 0;
		v = strtod(s, &end);
		if (errno != 0 || end == s || v < 0)
			return -EINVAL;
		s = end;
		if (strncmp(s, "ms", 2) == 0) {
			mult = 1;
			s += 2;
		} else if (*s == 's') {
			mult = 1000;
			s++;
		} else if (*s == 'm') {
			mult = 60000;
			s++;
		} else if (*s == 'h') {
			mult = 3600000;
			s++;
		} else if (*s == 'd') {
			mult = 86400000;
			s++;
		} else if (*s == '\0' && !any) {
			mult = 1000;
		} else {
			return -EINVAL;
		}
		if (v * (double)mult > 9.0e15)
			return -ERANGE;
		total += (int64_t)(v * (double)mult + 0.5);
		any = 1;
	}
	*out_ms = total;
	return 0;
}

int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	uint64_t mult = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s)
		return -EINVAL;
	if (*end != '\0') {
		char u = (char)toupper((unsigned char)*end);
		const char *rest = end + 1;
		int pow;

		switch (u) {
		case 'K': pow = 1; break;
		case 'M': pow = 2; break;
		case 'G': pow = 3; break;
		case 'T': pow = 4; break;
		default: return -EINVAL;
		}
		if (strcmp(rest, "") == 0 || strcmp(rest, "i") == 0 ||
		    strcmp(rest, "iB") == 0 || strcmp(rest, "ib") == 0) {
			while (pow-- > 0)
				mult *= 1024;
		} else if (strcmp(rest, "B") == 0 || strcmp(rest, "b") == 0) {
			while (pow-- > 0)
				mult *= 1000;
		} else {
			return -EINVAL;
		}
	}
	if (v * (double)mult > 1.8e19)
		return -ERANGE;
	*out = (uint64_t)(v * (double)mult);
	return 0;
}

int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0' || end == s)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}
