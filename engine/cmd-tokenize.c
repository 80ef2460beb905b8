/*
 * engine/cmd-tokenize.c - `llmd-engine tokenize` (stdin text -> JSON array of
 * ids) and `llmd-engine detokenize` (JSON array of ids -> text), with a
 * --jsonl batch mode (one JSON string / array per line) for conformance tests
 * and a --bench mode that reports encoding throughput.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "engine/commands.h"
#include "engine/tokenizer.h"
#include "lib/buf.h"
#include "lib/cli.h"
#include "lib/util.h"

static int
read_stdin(struct buf *b)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		buf_add(b, chunk, n);
	return ferror(stdin) ? -EIO : 0;
}

static int
load(const char *prog, const char *dir, struct tokenizer **tok)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char msg[800];

	if (tokenizer_load(dir, tok, &e) < 0) {
		fprintf(stderr, "llmd-engine %s: %s\n", prog, err_str(&e, msg, sizeof(msg)));
		return -1;
	}
	return 0;
}

static void
add_ids_json(struct buf *out, const int32_t *ids, size_t n)
{
	buf_addch(out, '[');
	for (size_t i = 0; i < n; i++)
		buf_addf(out, i ? ",%d" : "%d", ids[i]);
	buf_addch(out, ']');
}

static int
write_out(const struct buf *b)
{
	if (fwrite(b->buf, 1, b->len, stdout) != b->len || fflush(stdout) != 0) {
		fprintf(stderr, "llmd-engine: write error: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static double
cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Encodes in for at least a second; MB/s per CPU second of this thread (the
 * figure on a shared machine) and per wall-clock second. */
static int
bench(const struct tokenizer *tok, const struct buf *in, int add_special)
{
	uint64_t t0 = now_us(), t;
	double c0 = cpu_seconds();
	size_t rounds = 0, n = 0;
	int32_t *ids;

	do {
		if (tokenizer_encode(tok, in->buf, in->len, add_special, &ids, &n) < 0)
			return -1;
		free(ids);
		rounds++;
		t = now_us();
	} while (t - t0 < 1000000 || rounds < 2);
	double mb = (double)in->len * (double)rounds / 1e6, s = (double)(t - t0) / 1e6;
	double cpu = cpu_seconds() - c0;
	fprintf(stderr, "tokenize: %.2f MB/s per CPU second, %.2f MB/s wall (%zu bytes -> %zu ids, "
	    "%zu rounds, one thread)\n", mb / cpu, mb / s, in->len, n, rounds);
	return 0;
}

static const char *
encode_error(int rc)
{
	return rc == -EILSEQ ? "not valid UTF-8" : rc == -E2BIG ? "text too hard for the pre-tokenizer regex"
								 : strerror(-rc);
}

/* --jsonl: each input line a JSON string; each output line its ids. */
static int
tokenize_jsonl(const struct tokenizer *tok, const struct buf *in, int add_special, struct buf *out)
{
	size_t line = 0;

	for (size_t p = 0; p < in->len;) {
		const char *nl = memchr(in->buf + p, '\n', in->len - p);
		size_t e = nl ? (size_t)(nl - in->buf) : in->len;
		line++;
		if (e > p) {
			const char *end = NULL;
			cJSON *j = cJSON_ParseWithLengthOpts(in->buf + p, e - p, &end, 0);
			int32_t *ids;
			size_t n;
			for (const char *q = end; j && q < in->buf + e; q++)
				if (!strchr(" \t\r", *q)) {
					cJSON_Delete(j);
					j = NULL;
				}
			if (!cJSON_IsString(j)) {
				fprintf(stderr, "llmd-engine tokenize: stdin:%zu: not a JSON string\n", line);
				cJSON_Delete(j);
				return 1;
			}
			int rc = tokenizer_encode(tok, j->valuestring, strlen(j->valuestring),
			    add_special, &ids, &n);
			if (rc < 0) {
				fprintf(stderr, "llmd-engine tokenize: stdin:%zu: %s\n", line,
				    encode_error(rc));
				cJSON_Delete(j);
				return 1;
			}
			add_ids_json(out, ids, n);
			buf_addch(out, '\n');
			free(ids);
			cJSON_Delete(j);
		}
		p = e + 1;
	}
	return 0;
}

static void
tokenize_usage(FILE *f)
{
	fprintf(f, "usage: llmd-engine tokenize --model DIR [--add-special-tokens] [--jsonl] [--bench]\n\n"
	    "Reads UTF-8 text from stdin (byte-exact) and prints its token ids as one JSON array.\n"
	    "DIR holds tokenizer.json (and tokenizer_config.json).\n\n"
	    "  --add-special-tokens  add BOS/EOS as the tokenizer's post-processor says\n"
	    "  --jsonl               each stdin line is a JSON string; print one array per line\n"
	    "  --bench               also report encoding throughput (MB/s) on stderr\n");
}

int
cmd_tokenize(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "add-special-tokens", no_argument, NULL, 's' },
		{ "jsonl", no_argument, NULL, 'j' },
		{ "bench", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *model = NULL;
	int add_special = 0, jsonl = 0, do_bench = 0, c, rc = 0;
	struct tokenizer *tok;
	struct buf in = BUF_INIT, out = BUF_INIT;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 's': add_special = 1; break;
		case 'j': jsonl = 1; break;
		case 'b': do_bench = 1; break;
		case 'h': tokenize_usage(stdout); return 0;
		default: cli_usage_error("llmd-engine tokenize", "unknown option");
		}
	}
	if (optind < argc)
		cli_usage_error("llmd-engine tokenize", "unexpected argument '%s'", argv[optind]);
	if (model == NULL)
		cli_usage_error("llmd-engine tokenize", "--model DIR is required");
	if (load("tokenize", model, &tok) < 0)
		return 1;
	if (read_stdin(&in) < 0) {
		fprintf(stderr, "llmd-engine tokenize: cannot read stdin\n");
		rc = 1;
	} else if (jsonl) {
		rc = tokenize_jsonl(tok, &in, add_special, &out);
	} else {
		int32_t *ids;
		size_t n;
		int erc = tokenizer_encode(tok, in.buf, in.len, add_special, &ids, &n);
		if (erc < 0) {
			fprintf(stderr, "llmd-engine tokenize: stdin: %s\n", encode_error(erc));
			rc = 1;
		} else {
			add_ids_json(&out, ids, n);
			buf_addch(&out, '\n');
			free(ids);
			if (do_bench)
				bench(tok, &in, add_special);
		}
	}
	if (rc == 0)
		rc = write_out(&out);
	buf_release(&in);
	buf_release(&out);
	tokenizer_free(tok);
	return rc;
}

/* A JSON array of ids into *ids; -1 when it is not one or an id is bad. */
static int
parse_ids(const struct tokenizer *tok, const char *s, size_t len, int32_t **ids, size_t *n)
{
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, 0), *it;
	size_t k = 0;

	/* nothing but white space after the array */
	for (const char *p = end; j && p < s + len; p++)
		if (!strchr(" \t\r\n", *p)) {
			cJSON_Delete(j);
			j = NULL;
		}
	if (!cJSON_IsArray(j)) {
		cJSON_Delete(j);
		return -1;
	}
	*ids = xcalloc((size_t)cJSON_GetArraySize(j) + 1, sizeof(int32_t));
	cJSON_ArrayForEach(it, j) {
		if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
		    it->valuedouble >= tokenizer_vocab_size(tok) ||
		    it->valuedouble != (double)(int32_t)it->valuedouble ||
		    tokenizer_id_token(tok, (int32_t)it->valuedouble) == NULL) {
			cJSON_Delete(j);
			free(*ids);
			return -1;
		}
		(*ids)[k++] = (int32_t)it->valuedouble;
	}
	*n = k;
	cJSON_Delete(j);
	return 0;
}

static void
detokenize_usage(FILE *f)
{
	fprintf(f, "usage: llmd-engine detokenize --model DIR [--skip-special-tokens] [--jsonl]\n\n"
	    "Reads a JSON array of token ids from stdin and prints their text.\n\n"
	    "  --skip-special-tokens  leave special tokens out\n"
	    "  --jsonl                each stdin line is an array; print one JSON string per line\n");
}

int
cmd_detokenize(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "skip-special-tokens", no_argument, NULL, 's' },
		{ "jsonl", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *model = NULL;
	int skip = 0, jsonl = 0, c, rc = 0;
	struct tokenizer *tok;
	struct buf in = BUF_INIT, out = BUF_INIT, text = BUF_INIT;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 's': skip = 1; break;
		case 'j': jsonl = 1; break;
		case 'h': detokenize_usage(stdout); return 0;
		default: cli_usage_error("llmd-engine detokenize", "unknown option");
		}
	}
	if (optind < argc)
		cli_usage_error("llmd-engine detokenize", "unexpected argument '%s'", argv[optind]);
	if (model == NULL)
		cli_usage_error("llmd-engine detokenize", "--model DIR is required");
	if (load("detokenize", model, &tok) < 0)
		return 1;
	if (read_stdin(&in) < 0) {
		fprintf(stderr, "llmd-engine detokenize: cannot read stdin\n");
		rc = 1;
	}
	size_t line = 0;
	for (size_t p = 0; rc == 0 && p < in.len;) {
		const char *nl = jsonl ? memchr(in.buf + p, '\n', in.len - p) : NULL;
		size_t e = nl ? (size_t)(nl - in.buf) : in.len;
		int32_t *ids;
		size_t n;
		line++;
		if (jsonl && e == p) {
			p = e + 1;
			continue;
		}
		if (parse_ids(tok, in.buf + p, e - p, &ids, &n) < 0) {
			fprintf(stderr, "llmd-engine detokenize: stdin:%zu: expected a JSON array of "
			    "token ids below %d\n", line, tokenizer_vocab_size(tok));
			rc = 1;
			break;
		}
		buf_reset(&text);
		tokenizer_decode(tok, ids, n, skip, &text);
		free(ids);
		if (jsonl) {
			buf_add_json_str(&out, text.buf, text.len);
			buf_addch(&out, '\n');
		} else {
			buf_add(&out, text.buf, text.len);
		}
		p = e + 1;
	}
	if (rc == 0 && !jsonl && in.len == 0) {
		fprintf(stderr, "llmd-engine detokenize: expected a JSON array of token ids on stdin\n");
		rc = 1;
	}
	if (rc == 0)
		rc = write_out(&out);
	buf_release(&in);
	buf_release(&out);
	buf_release(&text);
	tokenizer_free(tok);
	return rc;
}
