/*
 * lib/util.h - allocation wrappers that die on OOM, time, and the parsers for
 * durations and sizes that every flag and config value uses.
 */
#ifndef LLMD_UTIL_H
#define LLMD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* realloc(p, nmemb * size) that dies on overflow. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Monotonic and wall-clock time. */
uint64_t now_ms(void);
uint64_t now_us(void);
int64_t wall_ms(void);

/*
 * Durations: "250ms", "10s", "5m", "1h", "1h30m", "2d"; a bare number is
 * seconds. Returns 0 and *out_ms, or -EINVAL.
 */
int parse_duration_ms(const char *s, int64_t *out_ms);
/*
 * Sizes: "123", "4k", "16KiB", "512M", "1GiB", "2G" (K/M/G/T powers of 1024;
 * "KB"/"MB"/"GB" powers of 1000 as Kubernetes quantities "k/M/G" are).
 */
int parse_size(const char *s, uint64_t *out);
/* Whole decimal integer in [min,max]; -EINVAL or -ERANGE. */
int parse_long(const char *s, long min, long max, long *out);

#endif
