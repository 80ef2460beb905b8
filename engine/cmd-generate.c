/*
 * engine/cmd-generate.c - `llmd-engine generate`: loads a model directory,
 * completes one prompt (text or token ids) and prints the completion; timing
 * on stderr; with --print-ids a JSON line {"prompt_ids","output_ids","text"}.
 */
#include "config.h"

#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commands.h"
#include "engine/forward.h"
#include "engine/kernels.h"
#include "engine/generate.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"
#include "lib/buf.h"
#include "lib/cli.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#define PROG "llmd-engine generate"
#define GEN_MAX_STOPS 16

struct gen_opts {
	const char *model;
	const char *prompt;
	const char *prompt_ids;
	int max_tokens;
	struct sampler_params sp;
	int print_ids;
	int threads;
	const char *device;
	const char *dump_logits;
	int batch;
	const char *stops[GEN_MAX_STOPS];
	int n_stops;
};

static void
usage(void)
{
	printf("usage: " PROG " --model DIR (--prompt TEXT | --prompt-ids JSON) [OPTIONS]\n\n"
	    "Completes one prompt with the model in DIR and prints the completion.\n\n"
	    "  --max-tokens N     tokens to generate (16)\n"
	    "  --temperature T    0 is greedy (default 1.0)\n"
	    "  --top-p P          nucleus sampling (1.0)\n"
	    "  --top-k K          keep the K most likely tokens (0: all)\n"
	    "  --seed S           sampling seed\n"
	    "  --stop STR         stop string (repeatable)\n"
	    "  --print-ids        then print {\"prompt_ids\",\"output_ids\",\"text\"} as the last line\n"
	    "  --threads N        CPU threads (default: all)\n"
	    "  --device D         auto, cpu or cuda (auto)\n"
	    "  --batch N          prompt tokens per forward batch (512)\n"
	    "  --dump-logits FILE write the f32 logits of every step to FILE\n");
}

static int
opt_long(const char *name, const char *s, long lo, long hi)
{
	long v;
	if (parse_long(s, lo, hi, &v) < 0)
		cli_usage_error(PROG, "%s: expected an integer in [%ld, %ld], got '%s'", name, lo, hi, s);
	return (int)v;
}

static float
opt_float(const char *name, const char *s, float lo, float hi)
{
	char *end;
	errno = 0;
	float v = strtof(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		cli_usage_error(PROG, "%s: expected a number in [%g, %g], got '%s'", name, (double)lo,
		    (double)hi, s);
	return v;
}

static void
parse_opts(int argc, char **argv, struct gen_opts *o)
{
	enum { O_MODEL = 256, O_PROMPT, O_IDS, O_MAX, O_TEMP, O_TOPP, O_TOPK, O_SEED, O_PRINT,
		O_THREADS, O_DEVICE, O_DUMP, O_BATCH, O_STOP, O_HELP };
	static const struct option lo[] = {
		{ "model", required_argument, NULL, O_MODEL },
		{ "prompt", required_argument, NULL, O_PROMPT },
		{ "prompt-ids", required_argument, NULL, O_IDS },
		{ "max-tokens", required_argument, NULL, O_MAX },
		{ "temperature", required_argument, NULL, O_TEMP },
		{ "top-p", required_argument, NULL, O_TOPP },
		{ "top-k", required_argument, NULL, O_TOPK },
		{ "seed", required_argument, NULL, O_SEED },
		{ "stop", required_argument, NULL, O_STOP },
		{ "print-ids", no_argument, NULL, O_PRINT },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "device", required_argument, NULL, O_DEVICE },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "dump-logits", required_argument, NULL, O_DUMP },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->max_tokens = 16;
	o->device = "auto";
	o->batch = 512;
	sampler_params_default(&o->sp);
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_MODEL: o->model = optarg; break;
		case O_PROMPT: o->prompt = optarg; break;
		case O_IDS: o->prompt_ids = optarg; break;
		case O_MAX: o->max_tokens = opt_long("--max-tokens", optarg, 0, 1 << 24); break;
		case O_TEMP: o->sp.temperature = opt_float("--temperature", optarg, 0, 100); break;
		case O_TOPP: o->sp.top_p = opt_float("--top-p", optarg, 0, 1); break;
		case O_TOPK: o->sp.top_k = opt_long("--top-k", optarg, 0, 1 << 24); break;
		case O_SEED:
			o->sp.seed = (uint64_t)opt_long("--seed", optarg, 0, 0x7fffffff);
			o->sp.has_seed = true;
			break;
		case O_PRINT: o->print_ids = 1; break;
		case O_THREADS: o->threads = opt_long("--threads", optarg, 1, 1024); break;
		case O_DEVICE: o->device = optarg; break;
		case O_BATCH: o->batch = opt_long("--batch", optarg, 1, 1 << 16); break;
		case O_DUMP: o->dump_logits = optarg; break;
		case O_STOP:
			if (o->n_stops == GEN_MAX_STOPS)
				cli_usage_error(PROG, "at most %d --stop strings", GEN_MAX_STOPS);
			o->stops[o->n_stops++] = optarg;
			break;
		case O_HELP: usage(); exit(0);
		default: cli_usage_error(PROG, "unknown option");
		}
	}
	if (optind < argc)
		cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	if (o->model == NULL)
		cli_usage_error(PROG, "--model is required");
	if ((o->prompt == NULL) == (o->prompt_ids == NULL))
		cli_usage_error(PROG, "give exactly one of --prompt and --prompt-ids");
	if (strcmp(o->device, "auto") && strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
		cli_usage_error(PROG, "--device: expected auto, cpu or cuda, got '%s'", o->device);
}

/* "[1, 2, 3]" -> ids; -EINVAL when not a JSON array of non-negative integers. */
static int
parse_ids(const char *s, int32_t **ids, size_t *n)
{
	cJSON *a = cJSON_Parse(s);
	int rc = 0;
	if (!cJSON_IsArray(a)) {
		cJSON_Delete(a);
		return -EINVAL;
	}
	*n = (size_t)cJSON_GetArraySize(a);
	*ids = xmalloc((*n ? *n : 1) * sizeof(int32_t));
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, a) {
		if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > INT32_MAX ||
		    it->valuedouble != floor(it->valuedouble)) {
			rc = -EINVAL;
			break;
		}
		(*ids)[i++] = (int32_t)it->valuedouble;
	}
	cJSON_Delete(a);
	return rc;
}

static int32_t
sample_cb(void *ctx, float *logits, int vocab, const int32_t *seq_ids, size_t n_ids,
    size_t n_prompt)
{
	return sampler_sample(ctx, logits, vocab, seq_ids, n_ids, n_prompt, NULL);
}

static void
text_cb(void *ctx, const char *text, size_t len)
{
	(void)ctx;
	fwrite(text, 1, len, stdout);
	fflush(stdout);
}

static void
logits_cb(void *ctx, const float *logits, int vocab)
{
	FILE *f = ctx;
	if (fwrite(logits, sizeof(float), (size_t)vocab, f) != (size_t)vocab)
		log_warnx("--dump-logits: write failed");
}

static void
add_ids_json(struct buf *b, const char *key, const int32_t *ids, size_t n)
{
	buf_addf(b, "\"%s\":[", key);
	for (size_t i = 0; i < n; i++)
		buf_addf(b, "%s%d", i ? "," : "", ids[i]);
	buf_addch(b, ']');
}

int
cmd_generate(int argc, char **argv)
{
	struct gen_opts o;
	struct llmd_err e = LLMD_ERR_INIT;
	struct model m;
	struct tokenizer *tok = NULL;
	struct backend *be = NULL;
	struct forward fw;
	struct kv_cache kv;
	struct sampler *smp = NULL;
	struct gen_result r;
	int32_t *prompt = NULL;
	size_t n_prompt = 0;
	FILE *dump = NULL;
	char msg[1024];
	int status = 1, rc;

	parse_opts(argc, argv, &o);
	memset(&fw, 0, sizeof(fw));
	memset(&kv, 0, sizeof(kv));
	memset(&r, 0, sizeof(r));
	if (o.prompt_ids && parse_ids(o.prompt_ids, &prompt, &n_prompt) < 0)
		cli_usage_error(PROG, "--prompt-ids: expected a JSON array of token ids");
	if ((rc = backend_create(o.device, o.threads, &be, &e)) < 0) {
		log_error("%s", err_str(&e, msg, sizeof(msg)));
		free(prompt);
		return 1;
	}
	if ((rc = model_load(&m, o.model, &e)) < 0) {
		log_error("%s", err_str(&e, msg, sizeof(msg)));
		backend_destroy(be);
		free(prompt);
		return 1;
	}
	if (tokenizer_load(o.model, &tok, &e) < 0) {
		if (o.prompt) {
			log_error("%s", err_str(&e, msg, sizeof(msg)));
			goto out;
		}
		log_warnx("no tokenizer (%s): printing ids only", err_str(&e, msg, sizeof(msg)));
		tok = NULL;
	}
	if (o.prompt && tokenizer_encode(tok, o.prompt, strlen(o.prompt), 1, &prompt,
	    &n_prompt) < 0) {
		log_error("--prompt: cannot tokenize (invalid UTF-8?)");
		goto out;
	}
	if (n_prompt == 0) {
		log_error("the prompt has no tokens");
		goto out;
	}
	int max_ctx = (int)MIN((size_t)m.cfg.max_pos, n_prompt + (size_t)o.max_tokens);
	int max_tok = MIN(o.batch, (int)n_prompt);
	if ((rc = forward_init(&fw, &m, be, max_tok, &e)) < 0 ||
	    (rc = kv_cache_init(&kv, be, &m.cfg, KV_DEFAULT_BLOCK_SIZE,
		(max_ctx + KV_DEFAULT_BLOCK_SIZE - 1) / KV_DEFAULT_BLOCK_SIZE, &e)) < 0) {
		log_error("%s", err_str(&e, msg, sizeof(msg)));
		goto out;
	}
	if (o.dump_logits && (dump = fopen(o.dump_logits, "wb")) == NULL) {
		log_error("%s: cannot create: %s", o.dump_logits, strerror(errno));
		goto out;
	}
	const char *why = NULL;
	if (sampler_params_check(&o.sp, &why) < 0) {
		log_error("sampling parameters: %s", why ? why : "out of range");
		goto out;
	}
	smp = sampler_create(&o.sp);
	struct gen_params gp = {
		.max_tokens = o.max_tokens,
		.stop_strings = o.stops, .n_stop_strings = o.n_stops,
		.sample = sample_cb, .sample_ctx = smp,
		.on_text = text_cb,
		.on_logits = dump ? logits_cb : NULL, .logits_ctx = dump,
	};
	log_debug("%s model, %d layers, %s backend, %d threads, kernels %s",
	    model_arch_name(m.cfg.arch), m.cfg.n_layers, be->ops->name, be->n_threads, kernels_isa());
	rc = generate(&fw, &kv, tok, prompt, n_prompt, &gp, &r, &e);
	if (rc < 0) {
		log_error("%s", err_str(&e, msg, sizeof(msg)));
		goto out;
	}
	putchar('\n');
	if (o.print_ids) {
		struct buf line = BUF_INIT, text = BUF_INIT;
		if (tok)
			tokenizer_decode(tok, r.ids, r.n_ids, 1, &text);
		buf_addch(&line, '{');
		add_ids_json(&line, "prompt_ids", prompt, n_prompt);
		buf_addch(&line, ',');
		add_ids_json(&line, "output_ids", r.ids, r.n_ids);
		buf_adds(&line, ",\"text\":");
		buf_add_json_str(&line, text.buf, text.len);
		buf_adds(&line, "}\n");
		fwrite(line.buf, 1, line.len, stdout);
		buf_release(&line);
		buf_release(&text);
	}
	fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f tok/s); decode: %zu tokens in %.3f s "
	    "(%.1f tok/s); finish: %s\n", n_prompt, r.prefill_s,
	    r.prefill_s > 0 ? (double)n_prompt / r.prefill_s : 0.0, r.n_ids, r.decode_s,
	    r.decode_s > 0 && r.n_ids > 1 ? (double)(r.n_ids - 1) / r.decode_s : 0.0,
	    finish_reason_name(r.finish));
	status = 0;
out:
	if (dump && fclose(dump) != 0)
		status = 1;
	gen_result_release(&r);
	if (smp)
		sampler_destroy(smp);
	kv_cache_free(&kv);
	forward_free(&fw);
	tokenizer_free(tok);
	model_free(&m);
	backend_destroy(be);
	free(prompt);
	return status;
}
