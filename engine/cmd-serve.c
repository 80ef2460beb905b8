/*
 * engine/cmd-serve.c - `llmd-engine serve MODEL_DIR [flags]`: vLLM's flag
 * names and meanings where they apply. vLLM flags that do not apply here are
 * accepted with a one-line notice; flags vLLM does not have are errors that
 * name them; features not built yet are a clear startup error (exit 2).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commands.h"
#include "engine/server.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/util.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: llmd-engine serve MODEL_DIR [OPTIONS]\n\n"
	    "Serve a Hugging Face model directory over a vLLM-compatible OpenAI API.\n\n"
	    "Options (vLLM names):\n"
	    "  --model DIR                      model directory (or the positional MODEL_DIR)\n"
	    "  --host HOST                      listen address (default 0.0.0.0)\n"
	    "  --port PORT                      listen port (default 8000; 0 picks one and prints it)\n"
	    "  --served-model-name NAME...      names the API answers to (default: MODEL_DIR)\n"
	    "  --max-model-len N                prompt + output tokens (default: the model's)\n"
	    "  --max-num-seqs N                 running requests at most (default 256)\n"
	    "  --max-num-batched-tokens N       tokens per engine step (default 2048)\n"
	    "  --block-size N                   KV-cache block size in tokens (default 16)\n"
	    "  --kv-cache-memory BYTES          KV pool size (default: 1/4 of free memory, <= 1 GiB)\n"
	    "  --gpu-memory-utilization F       GPU: fraction of device memory for weights + KV (0.9);\n"
	    "                                   the CPU backend ignores it\n"
	    "  --enable-prefix-caching          automatic prefix caching (default)\n"
	    "  --no-enable-prefix-caching       turn it off\n"
	    "  --api-key KEY                    require 'Authorization: Bearer KEY' on /v1\n"
	    "  --chat-template FILE             Jinja chat template (default: tokenizer_config.json's)\n"
	    "  --seed N                         seed of requests without one\n"
	    "  --device auto|cpu|cuda           backend (default auto)\n"
	    "  --tensor-parallel-size N         shard the model over N GPUs of this host (CUDA\n"
	    "                                   with NCCL; auto then means cuda)\n"
	    "  --threads N                      CPU threads (default: all cores)\n"
	    "  --shutdown-grace DURATION        in-flight requests get this long on SIGTERM (10s)\n"
	    "  --kv-transfer-config JSON        P/D: {\"kv_connector\":\"LlmdConnector\",\"kv_role\":\n"
	    "                                   \"kv_producer|kv_consumer|kv_both\"} (side channel from\n"
	    "                                   VLLM_NIXL_SIDE_CHANNEL_HOST/PORT, default 127.0.0.1:5600)\n"
	    "  --max-request-body BYTES         request body limit (default 8MiB)\n"
	    "  --max-stream-backlog BYTES       a streaming client that leaves this much unread\n"
	    "                                   is aborted (default 8MiB)\n"
	    "Simulation (--simulate: latency model instead of the forward pass; the tokenizer,\n"
	    "scheduler, KV/prefix-cache accounting, API and metrics are real):\n"
	    "  --simulate\n"
	    "  --sim-ttft-ms MS                 fixed cost of a prefill step (default 10)\n"
	    "  --sim-prefill-ms-per-token MS    per prompt token (default 0.05)\n"
	    "  --sim-itl-ms MS                  a decode step (default 5)\n"
	    "  --sim-jitter FRACTION            uniform +- jitter (default 0.1)\n"
	    "  --sim-kv-transfer-ms-per-token MS (default 0.01)\n"
	    "Accepted and ignored (vLLM flags that do not apply): --disable-log-requests,\n"
	    "  --disable-log-stats, --trust-remote-code, --enforce-eager, --dtype,\n"
	    "  --swap-space, --load-format, --download-dir, ...\n");
}

/* vLLM flags accepted with a notice: name, whether it takes a value. */
static const struct {
	const char *name;
	int has_arg;
} ignored_flags[] = {
	{ "--disable-log-requests", 0 }, { "--disable-log-stats", 0 },
	{ "--trust-remote-code", 0 }, { "--enforce-eager", 0 },
	{ "--disable-uvicorn-access-log", 0 }, { "--enable-chunked-prefill", 0 },
	{ "--disable-frontend-multiprocessing", 0 }, { "--enable-prompt-tokens-details", 0 },
	{ "--disable-custom-all-reduce", 0 }, { "--disable-fastapi-docs", 0 },
	{ "--dtype", 1 }, { "--swap-space", 1 },
	{ "--load-format", 1 }, { "--download-dir", 1 }, { "--tokenizer-mode", 1 },
	{ "--uvicorn-log-level", 1 }, { "--max-log-len", 1 }, { "--kv-cache-dtype", 1 },
	{ "--generation-config", 1 }, { "--revision", 1 }, { "--tokenizer-revision", 1 },
	{ "--distributed-executor-backend", 1 }, { "--compilation-config", 1 },
	{ "--cpu-offload-gb", 1 }, { "--num-scheduler-steps", 1 }, { "--tokenizer", 1 },
	{ "--max-seq-len-to-capture", 1 }, { "--block-allocator", 1 },
};

/* vLLM features not built yet: startup error with exit status 2. */
static const struct {
	const char *name;
	int has_arg;
	const char *why;
} unsupported_flags[] = {
	{ "--pipeline-parallel-size", 1, "pipeline parallelism is not supported yet" },
	{ "--data-parallel-size", 1, "data parallelism is not supported yet" },
	{ "--data-parallel-size-local", 1, "data parallelism is not supported yet" },
	{ "--data-parallel-address", 1, "multi-host data parallelism is not supported yet" },
	{ "--data-parallel-rpc-port", 1, "multi-host data parallelism is not supported yet" },
	{ "--data-parallel-start-rank", 1, "multi-host data parallelism is not supported yet" },
	{ "--headless", 0, "multi-host (headless worker) execution is not supported yet" },
	{ "--enable-lora", 0, "LoRA adapters are not supported yet" },
	{ "--lora-modules", 1, "LoRA adapters are not supported yet" },
	{ "--speculative-config", 1, "speculative decoding is not supported" },
	{ "--quantization", 1, "quantized weights are not supported" },
};

struct argp {
	int argc, i;
	char **argv;
	const char *flag;
	const char *inline_val;
};

/* The value of the current flag ("--x=v" or "--x v"). */
static const char *
take_value(struct argp *a)
{
	if (a->inline_val)
		return a->inline_val;
	if (a->i + 1 >= a->argc)
		cli_usage_error("llmd-engine serve", "%s needs a value", a->flag);
	return a->argv[++a->i];
}

static long
num(struct argp *a, long lo, long hi)
{
	const char *v = take_value(a);
	long out;

	if (parse_long(v, lo, hi, &out) < 0)
		cli_usage_error("llmd-engine serve", "%s: '%s' is not an integer in [%ld, %ld]",
		    a->flag, v, lo, hi);
	return out;
}

static double
dbl(struct argp *a, double lo, double hi)
{
	const char *v = take_value(a);
	char *end;
	double d = strtod(v, &end);

	if (*v == '\0' || *end != '\0' || d < lo || d > hi)
		cli_usage_error("llmd-engine serve", "%s: '%s' is not a number in [%g, %g]", a->flag, v, lo, hi);
	return d;
}

int
cmd_serve(int argc, char **argv)
{
	struct serve_config cfg;
	struct engine_server *es;
	struct llmd_err e = LLMD_ERR_INIT;
	struct argp a = { argc, 1, argv, NULL, NULL };
	char flagbuf[128];
	int tp = 1, rc;

	serve_config_default(&cfg);
	for (; a.i < argc; a.i++) {
		const char *arg = argv[a.i];
		const char *eq;
		size_t k;

		if (arg[0] != '-' || arg[1] != '-') {
			if (strcmp(arg, "-h") == 0) {
				usage(stdout);
				return 0;
			}
			if (arg[0] == '-')
				cli_usage_error("llmd-engine serve", "unknown option '%s'", arg);
			if (cfg.model_dir != NULL)
				cli_usage_error("llmd-engine serve", "unexpected argument '%s'", arg);
			cfg.model_dir = arg;
			continue;
		}
		a.inline_val = NULL;
		a.flag = arg;
		if ((eq = strchr(arg, '=')) != NULL) {
			snprintf(flagbuf, sizeof(flagbuf), "%.*s", (int)(eq - arg), arg);
			a.flag = flagbuf;
			a.inline_val = eq + 1;
		}
		const char *f = a.flag;
		if (strcmp(f, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(f, "--model") == 0) {
			cfg.model_dir = take_value(&a);
		} else if (strcmp(f, "--host") == 0) {
			cfg.host = take_value(&a);
		} else if (strcmp(f, "--port") == 0) {
			cfg.port = (int)num(&a, 0, 65535);
		} else if (strcmp(f, "--served-model-name") == 0) {
			cfg.n_served_names = 0;
			cfg.served_names[cfg.n_served_names++] = take_value(&a);
			while (!a.inline_val && a.i + 1 < argc && argv[a.i + 1][0] != '-') {
				if (cfg.n_served_names == SERVE_MAX_NAMES)
					cli_usage_error("llmd-engine serve", "at most %d served model names", SERVE_MAX_NAMES);
				cfg.served_names[cfg.n_served_names++] = argv[++a.i];
			}
		} else if (strcmp(f, "--max-model-len") == 0) {
			cfg.max_model_len = num(&a, 1, 1L << 30);
		} else if (strcmp(f, "--max-num-seqs") == 0) {
			cfg.max_num_seqs = (int)num(&a, 1, 65536);
		} else if (strcmp(f, "--max-num-batched-tokens") == 0) {
			cfg.max_num_batched_tokens = (int)num(&a, 1, 1L << 20);
		} else if (strcmp(f, "--block-size") == 0) {
			cfg.block_size = (int)num(&a, 1, 1024);
		} else if (strcmp(f, "--kv-cache-memory") == 0) {
			const char *v = take_value(&a);
			if (parse_size(v, &cfg.kv_cache_memory) < 0 || cfg.kv_cache_memory == 0)
				cli_usage_error("llmd-engine serve", "--kv-cache-memory: '%s' is not a size", v);
		} else if (strcmp(f, "--gpu-memory-utilization") == 0) {
			cfg.gpu_memory_utilization = dbl(&a, 0.01, 1.0);
		} else if (strcmp(f, "--enable-prefix-caching") == 0) {
			cfg.prefix_caching = true;
		} else if (strcmp(f, "--no-enable-prefix-caching") == 0) {
			cfg.prefix_caching = false;
		} else if (strcmp(f, "--api-key") == 0) {
			cfg.api_key = take_value(&a);
		} else if (strcmp(f, "--chat-template") == 0) {
			cfg.chat_template_file = take_value(&a);
		} else if (strcmp(f, "--threads") == 0) {
			cfg.threads = (int)num(&a, 0, 1024);
		} else if (strcmp(f, "--seed") == 0) {
			cfg.seed = num(&a, 0, __LONG_MAX__);
			cfg.has_seed = true;
		} else if (strcmp(f, "--device") == 0) {
			cfg.device = take_value(&a);
			if (strcmp(cfg.device, "auto") && strcmp(cfg.device, "cpu") && strcmp(cfg.device, "cuda"))
				cli_usage_error("llmd-engine serve", "--device: '%s' is not auto, cpu or cuda", cfg.device);
		} else if (strcmp(f, "--tensor-parallel-size") == 0) {
			tp = (int)num(&a, 1, 64);
		} else if (strcmp(f, "--shutdown-grace") == 0) {
			const char *v = take_value(&a);
			if (parse_duration_ms(v, &cfg.shutdown_grace_ms) < 0)
				cli_usage_error("llmd-engine serve", "--shutdown-grace: '%s' is not a duration", v);
		} else if (strcmp(f, "--max-request-body") == 0) {
			uint64_t v;
			const char *s = take_value(&a);
			if (parse_size(s, &v) < 0 || v == 0)
				cli_usage_error("llmd-engine serve", "--max-request-body: '%s' is not a size", s);
			cfg.max_body = (size_t)v;
		} else if (strcmp(f, "--max-stream-backlog") == 0) {
			uint64_t v;
			const char *s = take_value(&a);
			if (parse_size(s, &v) < 0 || v == 0)
				cli_usage_error("llmd-engine serve", "--max-stream-backlog: '%s' is not a size", s);
			cfg.max_stream_backlog = (size_t)v;
		} else if (strcmp(f, "--kv-transfer-config") == 0) {
			struct kv_transfer_config kc;
			struct llmd_err ke = LLMD_ERR_INIT;
			char msg[800];
			cfg.kv_transfer_config = take_value(&a);
			if (kv_transfer_config_parse(cfg.kv_transfer_config, &kc, &ke) < 0) {
				fprintf(stderr, "llmd-engine serve: %s\n", err_str(&ke, msg, sizeof(msg)));
				return EXIT_USAGE;
			}
		} else if (strcmp(f, "--simulate") == 0) {
			cfg.simulate = true;
		} else if (strcmp(f, "--sim-ttft-ms") == 0) {
			cfg.sim.ttft_ms = dbl(&a, 0, 1e7);
		} else if (strcmp(f, "--sim-prefill-ms-per-token") == 0) {
			cfg.sim.prefill_ms_per_token = dbl(&a, 0, 1e6);
		} else if (strcmp(f, "--sim-itl-ms") == 0) {
			cfg.sim.itl_ms = dbl(&a, 0, 1e7);
		} else if (strcmp(f, "--sim-jitter") == 0) {
			cfg.sim.jitter = dbl(&a, 0, 1);
		} else if (strcmp(f, "--sim-kv-transfer-ms-per-token") == 0) {
			cfg.sim.kv_transfer_ms_per_token = dbl(&a, 0, 1e6);
		} else {
			int found = 0;
			for (k = 0; k < ARRAY_SIZE(ignored_flags) && !found; k++) {
				if (strcmp(f, ignored_flags[k].name) != 0)
					continue;
				found = 1;
				const char *v = ignored_flags[k].has_arg ? take_value(&a) : NULL;
				fprintf(stderr, "llmd-engine serve: note: %s%s%s does not apply to llmd-engine; ignored\n",
				    f, v ? " " : "", v ? v : "");
			}
			for (k = 0; k < ARRAY_SIZE(unsupported_flags) && !found; k++) {
				if (strcmp(f, unsupported_flags[k].name) != 0)
					continue;
				found = 1;
				const char *v = unsupported_flags[k].has_arg ? take_value(&a) : NULL;
				/* a size of 1 (or 0 for rank/port style values) asks for nothing */
				if (v && (strcmp(v, "1") == 0 || (strcmp(v, "0") == 0 &&
				    strstr(f, "size") == NULL)))
					continue;
				fprintf(stderr, "llmd-engine serve: %s: %s\n", f, unsupported_flags[k].why);
				return EXIT_USAGE;
			}
			if (!found)
				cli_usage_error("llmd-engine serve", "unknown option '%s' (not a vLLM flag "
				    "llmd-engine knows)", f);
		}
	}
	if (cfg.model_dir == NULL)
		cli_usage_error("llmd-engine serve", "a model directory is required");
	if (tp > 1 && !cfg.simulate) {
		/* CUDA with NCCL, one process driving tp GPUs (docs/cuda.md) */
		const char *why = NULL;
		if (strcmp(cfg.device, "cpu") == 0)
			why = "tensor parallelism needs --device cuda (the CPU backend runs on one device)";
		else if (cfg.kv_transfer_config != NULL)
			why = "P/D KV transfer (--kv-transfer-config) with tensor parallelism is not "
			    "supported yet";
#if !defined(HAVE_CUDA)
		else
			why = "tensor parallelism needs the CUDA backend with NCCL; this build has no "
			    "CUDA (configure --with-cuda)";
#elif !defined(HAVE_NCCL)
		else
			why = "tensor parallelism needs NCCL; this build has none (nccl.h was not found "
			    "at configure time)";
#endif
		if (why != NULL) {
			fprintf(stderr, "llmd-engine serve: --tensor-parallel-size %d: %s\n", tp, why);
			return EXIT_USAGE;
		}
	} else if (tp > 1) {
		fprintf(stderr, "llmd-engine serve: note: --tensor-parallel-size %d does not apply "
		    "to --simulate; ignored\n", tp);
	}
	cfg.tensor_parallel_size = tp;
	if (cfg.n_served_names == 0)
		cfg.served_names[cfg.n_served_names++] = cfg.model_dir;
	if (cfg.max_num_batched_tokens < cfg.max_num_seqs && cfg.max_num_batched_tokens < 16)
		cli_usage_error("llmd-engine serve", "--max-num-batched-tokens is too small");

	/* a client gone while its stream is written must not kill the server
	 * (libevent writes with writev, without MSG_NOSIGNAL) */
	signal(SIGPIPE, SIG_IGN);
	es = xcalloc(1, sizeof(*es));
	rc = engine_server_run(es, &cfg, &e);
	free(es);
	if (rc < 0) {
		char msg[800];
		log_error("%s", err_str(&e, msg, sizeof(msg)));
		/* a combination this build or backend does not support: as a usage error */
		return rc == -ENOTSUP ? EXIT_USAGE : 1;
	}
	return 0;
}
