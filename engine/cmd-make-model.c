/*
 * engine/cmd-make-model.c - `llmd-engine make-model`: writes a complete
 * random-weight Hugging Face model directory (config.json,
 * generation_config.json, model.safetensors, tokenizer files) for tests,
 * benchmarks and demos. Works offline: the default tokenizer is the Qwen3 one
 * shipped in the data dir.
 *
 * Weights are uniform with a standard deviation that keeps activations
 * O(1): linear layers 1/sqrt(fan_in), embeddings and LM head 2/sqrt(D) (so
 * logits have a spread of about 2), norm weights 1 +- 0.1, biases 0.5.
 */
#include "config.h"

#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/commands.h"
#include "engine/model-config.h"
#include "engine/tensor.h"
#include "lib/buf.h"
#include "lib/cli.h"
#include "lib/err.h"
#include "lib/exepath.h"
#include "lib/log.h"
#include "lib/util.h"

#define PROG "llmd-engine make-model"

struct mm_opts {
	enum model_arch arch;
	const char *out;
	int layers, hidden, heads, kv_heads, head_dim, intermediate, vocab, max_pos;
	enum dtype dtype;
	uint64_t seed;
	const char *tokenizer;
	int tie;
	int llama3_rope;
	int sliding_window;
};

/* ---- random numbers: splitmix64, two 24-bit uniforms per draw ---- */

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- tensors to write ---- */

enum init_kind { INIT_LINEAR, INIT_EMBED, INIT_NORM, INIT_BIAS };

struct mm_tensor {
	char name[96];
	int64_t shape[2];
	int ndim;
	enum init_kind init;
	enum dtype dtype;
};

static void
add_tensor(struct mm_tensor **ts, int *n, const char *name, int64_t d0, int64_t d1,
    enum init_kind init, enum dtype dt)
{
	*ts = xreallocarray(*ts, (size_t)*n + 1, sizeof(**ts));
	struct mm_tensor *t = &(*ts)[(*n)++];
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->shape[0] = d0;
	t->shape[1] = d1;
	t->ndim = d1 ? 2 : 1;
	t->init = init;
	t->dtype = dt;
}

static int64_t
tensor_numel(const struct mm_tensor *t)
{
	return t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
}

static int
list_tensors(const struct mm_opts *o, struct mm_tensor **ts)
{
	int n = 0;
	int64_t D = o->hidden, QD = (int64_t)o->heads * o->head_dim;
	int64_t KD = (int64_t)o->kv_heads * o->head_dim, F = o->intermediate;
	char name[96];
	enum dtype dt = o->dtype;

	add_tensor(ts, &n, "model.embed_tokens.weight", o->vocab, D, INIT_EMBED, dt);
	for (int l = 0; l < o->layers; l++) {
#define T(s, d0, d1, k) (snprintf(name, sizeof(name), "model.layers.%d.%s", l, s), \
	add_tensor(ts, &n, name, d0, d1, k, dt))
		T("input_layernorm.weight", D, 0, INIT_NORM);
		T("self_attn.q_proj.weight", QD, D, INIT_LINEAR);
		T("self_attn.k_proj.weight", KD, D, INIT_LINEAR);
		T("self_attn.v_proj.weight", KD, D, INIT_LINEAR);
		T("self_attn.o_proj.weight", D, QD, INIT_LINEAR);
		if (o->arch == ARCH_QWEN2) {
			T("self_attn.q_proj.bias", QD, 0, INIT_BIAS);
			T("self_attn.k_proj.bias", KD, 0, INIT_BIAS);
			T("self_attn.v_proj.bias", KD, 0, INIT_BIAS);
		}
		if (o->arch == ARCH_QWEN3) {
			T("self_attn.q_norm.weight", o->head_dim, 0, INIT_NORM);
			T("self_attn.k_norm.weight", o->head_dim, 0, INIT_NORM);
		}
		T("post_attention_layernorm.weight", D, 0, INIT_NORM);
		T("mlp.gate_proj.weight", F, D, INIT_LINEAR);
		T("mlp.up_proj.weight", F, D, INIT_LINEAR);
		T("mlp.down_proj.weight", D, F, INIT_LINEAR);
#undef T
	}
	add_tensor(ts, &n, "model.norm.weight", D, 0, INIT_NORM, dt);
	if (!o->tie)
		add_tensor(ts, &n, "lm_head.weight", o->vocab, D, INIT_EMBED, dt);
	return n;
}

static const char *
st_dtype_str(enum dtype d)
{
	return d == DT_BF16 ? "BF16" : d == DT_F16 ? "F16" : "F32";
}

/* Writes numel random values of t to f through buf (1 MiB). */
static int
write_tensor_data(FILE *f, const struct mm_tensor *t, uint64_t *rng, unsigned char *buf,
    size_t buf_size)
{
	double stdev;
	double mean = 0;
	switch (t->init) {
	case INIT_LINEAR: stdev = 1.0 / sqrt((double)t->shape[1]); break;
	case INIT_EMBED: stdev = 2.0 / sqrt((double)t->shape[1]); break;
	case INIT_NORM: stdev = 0.1 / sqrt(3.0); mean = 1.0; break;
	default: stdev = 0.5; break;
	}
	/* uniform in [mean - a, mean + a) has standard deviation a / sqrt(3) */
	float a2 = (float)(2 * stdev * sqrt(3.0)), lo = (float)(mean - stdev * sqrt(3.0));
	const float inv24 = 1.0f / 16777216.0f;
	size_t esz = dtype_size(t->dtype), per_buf = buf_size / esz;
	int64_t left = tensor_numel(t);

	while (left > 0) {
		size_t m = (size_t)MIN((int64_t)per_buf, left) & ~(size_t)1;
		if (m == 0)
			m = 2;
		for (size_t i = 0; i < m; i += 2) {
			uint64_t r = splitmix64(rng);
			float v[2] = { lo + a2 * (float)(r >> 40) * inv24,
				lo + a2 * (float)((r >> 8) & 0xffffff) * inv24 };
			for (int k = 0; k < 2; k++) {
				if (t->dtype == DT_BF16) {
					uint16_t h = f32_to_bf16(v[k]);
					memcpy(buf + (i + (size_t)k) * 2, &h, 2);
				} else if (t->dtype == DT_F16) {
					uint16_t h = f32_to_f16(v[k]);
					memcpy(buf + (i + (size_t)k) * 2, &h, 2);
				} else {
					memcpy(buf + (i + (size_t)k) * 4, &v[k], 4);
				}
			}
		}
		size_t take = (size_t)MIN((int64_t)m, left);
		if (fwrite(buf, esz, take, f) != take)
			return -EIO;
		left -= (int64_t)take;
	}
	return 0;
}

static int
write_safetensors(const struct mm_opts *o, const char *path, struct llmd_err *e)
{
	struct mm_tensor *ts = NULL;
	int n = list_tensors(o, &ts);
	struct buf hdr = BUF_INIT;
	uint64_t off = 0;
	int rc = 0;

	buf_adds(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (int i = 0; i < n; i++) {
		uint64_t bytes = (uint64_t)tensor_numel(&ts[i]) * dtype_size(ts[i].dtype);
		buf_addf(&hdr, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", ts[i].name,
		    st_dtype_str(ts[i].dtype), (long long)ts[i].shape[0]);
		if (ts[i].ndim == 2)
			buf_addf(&hdr, ",%lld", (long long)ts[i].shape[1]);
		buf_addf(&hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
		    (unsigned long long)(off + bytes));
		off += bytes;
	}
	buf_addch(&hdr, '}');
	while (hdr.len % 8)     /* keep the data 8-byte aligned */
		buf_addch(&hdr, ' ');

	FILE *f = fopen(path, "wb");
	if (f == NULL) {
		rc = err_set(e, -errno, path, "cannot create: %s", strerror(errno));
		goto out;
	}
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
	size_t buf_size = 1u << 20;
	unsigned char *buf = xmalloc(buf_size);
	uint64_t rng = o->seed;
	if (fwrite(len8, 1, 8, f) != 8 || fwrite(hdr.buf, 1, hdr.len, f) != hdr.len)
		rc = -EIO;
	for (int i = 0; i < n && rc == 0; i++)
		rc = write_tensor_data(f, &ts[i], &rng, buf, buf_size);
	free(buf);
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	if (rc < 0)
		rc = err_set(e, rc, path, "write failed: %s", strerror(-rc));
out:
	buf_release(&hdr);
	free(ts);
	return rc;
}

/* ---- tokenizer ---- */

static int
copy_file(const char *src, const char *dst, struct llmd_err *e)
{
	char *txt;
	size_t len;
	int rc = config_read_file(src, 256u << 20, &txt, &len, e);
	if (rc < 0)
		return rc;
	FILE *f = fopen(dst, "wb");
	if (f == NULL) {
		free(txt);
		return err_set(e, -errno, dst, "cannot create: %s", strerror(errno));
	}
	size_t w = fwrite(txt, 1, len, f);
	free(txt);
	if (fclose(f) != 0 || w != len)
		return err_set(e, -EIO, dst, "write failed");
	return 0;
}

/* Well-known stop and start tokens, looked up among the added tokens. */
static const char *const eos_names[] = { "<|endoftext|>", "<|im_end|>", "<|end_of_text|>",
	"<|eot_id|>", "</s>" };
static const char *const bos_names[] = { "<|begin_of_text|>", "<s>" };

struct tok_info {
	int vocab;      /* max id + 1 */
	int32_t eos[MODEL_MAX_EOS];
	int n_eos;
	int32_t bos;
};

static int
scan_tokenizer(const char *path, struct tok_info *ti, struct llmd_err *e)
{
	char *txt;
	size_t len;
	int rc = config_read_file(path, 256u << 20, &txt, &len, e);
	if (rc < 0)
		return rc;
	cJSON *root = cJSON_ParseWithLength(txt, len);
	free(txt);
	const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(root, "model"), "vocab");
	if (!cJSON_IsObject(vocab)) {
		cJSON_Delete(root);
		return err_set(e, -EINVAL, path, "model.vocab: missing (not a tokenizer.json?)");
	}
	memset(ti, 0, sizeof(*ti));
	ti->bos = -1;
	const cJSON *it;
	cJSON_ArrayForEach(it, vocab)
		if (cJSON_IsNumber(it) && it->valuedouble + 1 > ti->vocab)
			ti->vocab = (int)it->valuedouble + 1;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
		if (!cJSON_IsNumber(id) || !cJSON_IsString(content))
			continue;
		if (id->valuedouble + 1 > ti->vocab)
			ti->vocab = (int)id->valuedouble + 1;
		for (size_t i = 0; i < ARRAY_SIZE(eos_names); i++)
			if (strcmp(content->valuestring, eos_names[i]) == 0 && ti->n_eos < MODEL_MAX_EOS)
				ti->eos[ti->n_eos++] = (int32_t)id->valuedouble;
		for (size_t i = 0; i < ARRAY_SIZE(bos_names); i++)
			if (strcmp(content->valuestring, bos_names[i]) == 0)
				ti->bos = (int32_t)id->valuedouble;
	}
	cJSON_Delete(root);
	return 0;
}

/* ---- config files ---- */

static int
write_json(const char *path, cJSON *root, struct llmd_err *e)
{
	char *s = cJSON_Print(root);
	FILE *f = fopen(path, "w");
	int rc = 0;
	if (f == NULL)
		rc = err_set(e, -errno, path, "cannot create: %s", strerror(errno));
	else if (fprintf(f, "%s\n", s) < 0 || fclose(f) != 0)
		rc = err_set(e, -EIO, path, "write failed");
	free(s);
	cJSON_Delete(root);
	return rc;
}

static void
add_ids(cJSON *o, const char *key, const struct tok_info *ti)
{
	if (ti->n_eos == 0)
		cJSON_AddNullToObject(o, key);
	else if (ti->n_eos == 1)
		cJSON_AddNumberToObject(o, key, ti->eos[0]);
	else
		cJSON_AddItemToObject(o, key, cJSON_CreateIntArray(ti->eos, ti->n_eos));
}

static int
write_configs(const struct mm_opts *o, const struct tok_info *ti, struct llmd_err *e)
{
	static const char *const hf[] = { [ARCH_LLAMA] = "LlamaForCausalLM",
		[ARCH_MISTRAL] = "MistralForCausalLM", [ARCH_QWEN2] = "Qwen2ForCausalLM",
		[ARCH_QWEN3] = "Qwen3ForCausalLM" };
	char path[4096];
	cJSON *c = cJSON_CreateObject();
	const char *arch = hf[o->arch];
	int is_qwen = o->arch == ARCH_QWEN2 || o->arch == ARCH_QWEN3;

	cJSON_AddItemToObject(c, "architectures", cJSON_CreateStringArray(&arch, 1));
	cJSON_AddStringToObject(c, "model_type", model_arch_name(o->arch));
	cJSON_AddNumberToObject(c, "hidden_size", o->hidden);
	cJSON_AddNumberToObject(c, "intermediate_size", o->intermediate);
	cJSON_AddNumberToObject(c, "num_hidden_layers", o->layers);
	cJSON_AddNumberToObject(c, "num_attention_heads", o->heads);
	cJSON_AddNumberToObject(c, "num_key_value_heads", o->kv_heads);
	cJSON_AddNumberToObject(c, "head_dim", o->head_dim);
	cJSON_AddNumberToObject(c, "vocab_size", o->vocab);
	cJSON_AddNumberToObject(c, "max_position_embeddings", o->max_pos);
	cJSON_AddNumberToObject(c, "rms_norm_eps", is_qwen ? 1e-6 : 1e-5);
	cJSON_AddNumberToObject(c, "rope_theta",
	    o->llama3_rope ? 500000.0 : is_qwen ? 1000000.0 : 10000.0);
	if (o->llama3_rope) {
		cJSON *rs = cJSON_AddObjectToObject(c, "rope_scaling");
		cJSON_AddStringToObject(rs, "rope_type", "llama3");
		cJSON_AddNumberToObject(rs, "factor", 8.0);
		cJSON_AddNumberToObject(rs, "low_freq_factor", 1.0);
		cJSON_AddNumberToObject(rs, "high_freq_factor", 4.0);
		cJSON_AddNumberToObject(rs, "original_max_position_embeddings", 8192);
	} else {
		cJSON_AddNullToObject(c, "rope_scaling");
	}
	cJSON_AddBoolToObject(c, "tie_word_embeddings", o->tie);
	cJSON_AddBoolToObject(c, "attention_bias", o->arch == ARCH_QWEN2);
	cJSON_AddStringToObject(c, "hidden_act", "silu");
	cJSON_AddStringToObject(c, "torch_dtype",
	    o->dtype == DT_BF16 ? "bfloat16" : o->dtype == DT_F16 ? "float16" : "float32");
	if (ti->bos >= 0)
		cJSON_AddNumberToObject(c, "bos_token_id", ti->bos);
	else
		cJSON_AddNullToObject(c, "bos_token_id");
	add_ids(c, "eos_token_id", ti);
	if (o->arch == ARCH_MISTRAL && o->sliding_window)
		cJSON_AddNumberToObject(c, "sliding_window", o->sliding_window);
	else if (o->arch == ARCH_MISTRAL)
		cJSON_AddNullToObject(c, "sliding_window");
	snprintf(path, sizeof(path), "%s/config.json", o->out);
	int rc = write_json(path, c, e);
	if (rc < 0)
		return rc;

	cJSON *g = cJSON_CreateObject();
	if (ti->bos >= 0)
		cJSON_AddNumberToObject(g, "bos_token_id", ti->bos);
	add_ids(g, "eos_token_id", ti);
	cJSON_AddBoolToObject(g, "do_sample", 0);
	snprintf(path, sizeof(path), "%s/generation_config.json", o->out);
	return write_json(path, g, e);
}

/* ---- command line ---- */

static void
usage(void)
{
	printf("usage: " PROG " --arch llama|qwen2|qwen3|mistral --out DIR [OPTIONS]\n\n"
	    "Writes a random-weight model directory (config.json, generation_config.json,\n"
	    "model.safetensors, tokenizer.json, tokenizer_config.json).\n\n"
	    "  --layers N         decoder layers (2)\n"
	    "  --hidden N         hidden size (64)\n"
	    "  --heads N          attention heads (4)\n"
	    "  --kv-heads N       key/value heads (2)\n"
	    "  --head-dim N       head dimension (hidden / heads)\n"
	    "  --intermediate N   MLP size (3 * hidden)\n"
	    "  --dtype bf16|f16|f32  weight dtype (bf16)\n"
	    "  --seed S           random seed (1)\n"
	    "  --tokenizer FILE   tokenizer.json to ship (default: the Qwen3 one)\n"
	    "  --vocab N          vocab size (default: the tokenizer's)\n"
	    "  --max-pos N        max_position_embeddings (8192)\n"
	    "  --tie              tie the LM head to the embeddings\n"
	    "  --rope-scaling llama3  llama3 RoPE scaling (theta 500000, factor 8)\n"
	    "  --sliding-window N mistral: attend to the last N positions only\n");
}

static int
opt_int(const char *name, const char *s, long lo, long hi)
{
	long v;
	if (parse_long(s, lo, hi, &v) < 0)
		cli_usage_error(PROG, "%s: expected an integer in [%ld, %ld], got '%s'", name, lo, hi, s);
	return (int)v;
}

static void
parse_opts(int argc, char **argv, struct mm_opts *o)
{
	enum { O_ARCH = 256, O_OUT, O_LAYERS, O_HIDDEN, O_HEADS, O_KV, O_HD, O_INTER, O_DTYPE,
		O_SEED, O_TOK, O_VOCAB, O_MAXPOS, O_TIE, O_ROPE, O_SWA, O_HELP };
	static const struct option lo[] = {
		{ "arch", required_argument, NULL, O_ARCH }, { "out", required_argument, NULL, O_OUT },
		{ "layers", required_argument, NULL, O_LAYERS },
		{ "hidden", required_argument, NULL, O_HIDDEN },
		{ "heads", required_argument, NULL, O_HEADS },
		{ "kv-heads", required_argument, NULL, O_KV },
		{ "head-dim", required_argument, NULL, O_HD },
		{ "intermediate", required_argument, NULL, O_INTER },
		{ "dtype", required_argument, NULL, O_DTYPE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "tokenizer", required_argument, NULL, O_TOK },
		{ "vocab", required_argument, NULL, O_VOCAB },
		{ "max-pos", required_argument, NULL, O_MAXPOS },
		{ "tie", no_argument, NULL, O_TIE },
		{ "rope-scaling", required_argument, NULL, O_ROPE },
		{ "sliding-window", required_argument, NULL, O_SWA },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c, arch = -1;

	memset(o, 0, sizeof(*o));
	o->layers = 2;
	o->hidden = 64;
	o->heads = 4;
	o->kv_heads = 2;
	o->dtype = DT_BF16;
	o->seed = 1;
	o->max_pos = 8192;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_ARCH:
			arch = model_arch_parse(optarg);
			if (arch < 0)
				cli_usage_error(PROG, "--arch: unknown '%s' (llama, qwen2, qwen3, mistral)",
				    optarg);
			break;
		case O_OUT: o->out = optarg; break;
		case O_LAYERS: o->layers = opt_int("--layers", optarg, 1, 1024); break;
		case O_HIDDEN: o->hidden = opt_int("--hidden", optarg, 2, 65536); break;
		case O_HEADS: o->heads = opt_int("--heads", optarg, 1, 1024); break;
		case O_KV: o->kv_heads = opt_int("--kv-heads", optarg, 1, 1024); break;
		case O_HD: o->head_dim = opt_int("--head-dim", optarg, 2, 512); break;
		case O_INTER: o->intermediate = opt_int("--intermediate", optarg, 1, 1 << 20); break;
		case O_VOCAB: o->vocab = opt_int("--vocab", optarg, 1, 1 << 24); break;
		case O_MAXPOS: o->max_pos = opt_int("--max-pos", optarg, 1, 1 << 24); break;
		case O_SEED: o->seed = (uint64_t)opt_int("--seed", optarg, 0, 0x7fffffff); break;
		case O_TOK: o->tokenizer = optarg; break;
		case O_TIE: o->tie = 1; break;
		case O_SWA: o->sliding_window = opt_int("--sliding-window", optarg, 1, 1 << 24); break;
		case O_ROPE:
			if (strcmp(optarg, "llama3") != 0)
				cli_usage_error(PROG, "--rope-scaling: only 'llama3' is supported");
			o->llama3_rope = 1;
			break;
		case O_DTYPE:
			if (strcmp(optarg, "bf16") == 0)
				o->dtype = DT_BF16;
			else if (strcmp(optarg, "f16") == 0)
				o->dtype = DT_F16;
			else if (strcmp(optarg, "f32") == 0)
				o->dtype = DT_F32;
			else
				cli_usage_error(PROG, "--dtype: expected bf16, f16 or f32, got '%s'", optarg);
			break;
		case O_HELP: usage(); exit(0);
		default: cli_usage_error(PROG, "unknown option");
		}
	}
	if (optind < argc)
		cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	if (arch < 0 || o->out == NULL)
		cli_usage_error(PROG, "--arch and --out are required");
	o->arch = (enum model_arch)arch;
	if (o->head_dim == 0) {
		if (o->hidden % o->heads)
			cli_usage_error(PROG, "--hidden must be a multiple of --heads (or give --head-dim)");
		o->head_dim = o->hidden / o->heads;
	}
	if (o->head_dim % 2)
		cli_usage_error(PROG, "head dimension %d must be even", o->head_dim);
	if (o->heads % o->kv_heads)
		cli_usage_error(PROG, "--heads must be a multiple of --kv-heads");
	if (o->sliding_window && o->arch != ARCH_MISTRAL)
		cli_usage_error(PROG, "--sliding-window is for --arch mistral");
	if (o->intermediate == 0)
		o->intermediate = 3 * o->hidden;
}

int
cmd_make_model(int argc, char **argv)
{
	struct mm_opts o;
	struct llmd_err e = LLMD_ERR_INIT;
	struct tok_info ti;
	char src[4096], dst[4096], msg[1024];
	int rc;

	parse_opts(argc, argv, &o);
	if (o.tokenizer) {
		snprintf(src, sizeof(src), "%s", o.tokenizer);
	} else if (exepath_find_data("tokenizers/qwen3/tokenizer.json", src, sizeof(src)) != 0) {
		log_error("cannot find the default tokenizer (tokenizers/qwen3/tokenizer.json in "
		    "the data dir); give --tokenizer FILE");
		return 1;
	}
	if (mkdir(o.out, 0777) < 0 && errno != EEXIST) {
		log_error("%s: cannot create: %s", o.out, strerror(errno));
		return 1;
	}
	if ((rc = scan_tokenizer(src, &ti, &e)) < 0)
		goto fail;
	if (o.vocab == 0)
		o.vocab = ti.vocab;
	snprintf(dst, sizeof(dst), "%s/tokenizer.json", o.out);
	if ((rc = copy_file(src, dst, &e)) < 0)
		goto fail;
	/* tokenizer_config.json beside the tokenizer, when there is one */
	char *slash = strrchr(src, '/');
	if (slash) {
		struct stat st;
		snprintf(slash + 1, sizeof(src) - (size_t)(slash + 1 - src), "tokenizer_config.json");
		snprintf(dst, sizeof(dst), "%s/tokenizer_config.json", o.out);
		if (stat(src, &st) == 0 && (rc = copy_file(src, dst, &e)) < 0)
			goto fail;
	}
	if ((rc = write_configs(&o, &ti, &e)) < 0)
		goto fail;
	snprintf(dst, sizeof(dst), "%s/model.safetensors", o.out);
	if ((rc = write_safetensors(&o, dst, &e)) < 0)
		goto fail;
	log_info("wrote %s: %s, %d layers, hidden %d, %d/%d heads, vocab %d, %s", o.out,
	    model_arch_name(o.arch), o.layers, o.hidden, o.heads, o.kv_heads, o.vocab,
	    dtype_name(o.dtype));
	return 0;
fail:
	log_error("%s", err_str(&e, msg, sizeof(msg)));
	return 1;
}
