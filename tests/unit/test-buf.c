/*
 * tests/unit/test-buf.c - growable buffers, formatting, JSON escaping, and
 * the duration/size parsers of lib/util.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"

Test(buf, init_is_empty_cstring)
{
	struct buf b = BUF_INIT;

	cr_assert_str_eq(b.buf, "");
	cr_assert_eq(b.len, 0);
	buf_release(&b);
}

Test(buf, grows_and_formats)
{
	struct buf b = BUF_INIT;

	for (int i = 0; i < 1000; i++)
		buf_addf(&b, "%d,", i);
	cr_assert(b.len > 3000);
	cr_assert_eq(strncmp(b.buf, "0,1,2,", 6), 0);
	cr_assert_eq(b.buf[b.len], '\0');
	buf_consume(&b, 2);
	cr_assert_eq(strncmp(b.buf, "1,2,", 4), 0);
	size_t n;
	char *p = buf_detach(&b, &n);
	cr_assert_eq(strlen(p), n);
	cr_assert_eq(b.len, 0);
	free(p);
	buf_addch(&b, 'x');
	buf_adds(&b, "yz");
	cr_assert_str_eq(b.buf, "xyz");
	buf_reset(&b);
	cr_assert_str_eq(b.buf, "");
	buf_release(&b);
}

Test(buf, json_escape)
{
	struct buf b = BUF_INIT;
	const char in[] = "a\"b\\c\n\x01\xc3\xa9";

	buf_add_json_str(&b, in, sizeof(in) - 1);
	cr_assert_str_eq(b.buf, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
	buf_release(&b);
}

Test(util, durations)
{
	int64_t ms;

	cr_assert_eq(parse_duration_ms("250ms", &ms), 0); cr_assert_eq(ms, 250);
	cr_assert_eq(parse_duration_ms("10s", &ms), 0); cr_assert_eq(ms, 10000);
	cr_assert_eq(parse_duration_ms("1h30m", &ms), 0); cr_assert_eq(ms, 5400000);
	cr_assert_eq(parse_duration_ms("2", &ms), 0); cr_assert_eq(ms, 2000);
	cr_assert_eq(parse_duration_ms("1.5s", &ms), 0); cr_assert_eq(ms, 1500);
	cr_assert_eq(parse_duration_ms("24h", &ms), 0); cr_assert_eq(ms, 86400000);
	cr_assert_eq(parse_duration_ms("", &ms), -EINVAL);
	cr_assert_eq(parse_duration_ms("5x", &ms), -EINVAL);
	cr_assert_eq(parse_duration_ms("-5s", &ms), -EINVAL);
	cr_assert_eq(parse_duration_ms("1s2", &ms), -EINVAL);
}

Test(util, sizes)
{
	uint64_t v;

	cr_assert_eq(parse_size("123", &v), 0); cr_assert_eq(v, 123);
	cr_assert_eq(parse_size("4k", &v), 0); cr_assert_eq(v, 4096);
	cr_assert_eq(parse_size("16KiB", &v), 0); cr_assert_eq(v, 16384);
	cr_assert_eq(parse_size("1GiB", &v), 0); cr_assert_eq(v, 1073741824ull);
	cr_assert_eq(parse_size("2GB", &v), 0); cr_assert_eq(v, 2000000000ull);
	cr_assert_eq(parse_size("x", &v), -EINVAL);
	cr_assert_eq(parse_size("5Q", &v), -EINVAL);
}

Test(util, longs)
{
	long v;

	cr_assert_eq(parse_long("42", 0, 100, &v), 0); cr_assert_eq(v, 42);
	cr_assert_eq(parse_long("101", 0, 100, &v), -ERANGE);
	cr_assert_eq(parse_long("4x", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_long("", 0, 100, &v), -EINVAL);
}
