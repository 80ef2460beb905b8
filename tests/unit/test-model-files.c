/*
 * tests/unit/test-model-files.c - safetensors parsing and config.json /
 * generation_config.json parsing: valid files, and errors that name the file
 * and tensor.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/model-config.h"
#include "engine/model.h"
#include "engine/safetensors.h"

static char dir[64];

static void
mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-model-files.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(safetensors, .init = mkdir_tmp, .fini = rm_tmp);

/* Writes DIR/name: 8-byte length of header, header, then data_len bytes of
 * data (byte i = i). hdr_len_override != 0 lies about the header length. */
static void
write_st(const char *name, const char *header, size_t data_len, uint64_t hdr_len_override,
    char *path, size_t path_len)
{
	snprintf(path, path_len, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	uint64_t n = hdr_len_override ? hdr_len_override : strlen(header);
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)(n >> (8 * i));
	fwrite(len8, 1, 8, f);
	fwrite(header, 1, strlen(header), f);
	for (size_t i = 0; i < data_len; i++)
		fputc((int)(i & 0xff), f);
	fclose(f);
}

Test(safetensors, parses_tensors)
{
	char path[256];
	struct st_set s = { 0 };
	struct llmd_err e = LLMD_ERR_INIT;
	write_st("model.safetensors",
	    "{\"__metadata__\":{\"format\":\"pt\"},"
	    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
	    "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}",
	    20, 0, path, sizeof(path));
	cr_assert_eq(st_open_dir(&s, dir, &e), 0, "%s %s", e.field, e.msg);
	cr_assert_eq(s.n_entries, 2);
	const struct st_entry *a = st_find(&s, "a"), *b = st_find(&s, "b");
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_null(st_find(&s, "c"));
	cr_assert_eq(a->t.dtype, DT_BF16);
	cr_assert_eq(a->t.ndim, 2);
	cr_assert_eq(a->t.shape[0], 2);
	cr_assert_eq(a->t.shape[1], 3);
	cr_assert_eq(b->t.dtype, DT_F32);
	/* data starts right after the header: byte 12 of the data for b */
	cr_assert_eq(((const unsigned char *)b->t.data)[0], 12);
	cr_assert_eq(((const unsigned char *)a->t.data)[5], 5);
	st_close(&s);
}

struct bad_case {
	const char *header;
	size_t data_len;
	uint64_t hdr_len;
	const char *want;       /* substring of "field: msg" */
};

static const struct bad_case bad_cases[] = {
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0,
	  "tensor w: truncated file" },
	{ "{\"w\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, 0,
	  "tensor w: unsupported dtype I8" },
	{ "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, 0,
	  "tensor w: data_offsets span 4 bytes" },
	{ "{\"w\":{\"dtype\":\"F16\",\"shape\":[4]}}", 8, 0, "tensor w: needs dtype" },
	{ "not json at all", 8, 0, "header is not a JSON object" },
	{ "{}", 0, 1000000, "header of 1000000 bytes is larger than the file" },
};

Test(safetensors, bad_files_name_file_and_tensor)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char path[256], msg[1024];
		struct st_set s = { 0 };
		struct llmd_err e = LLMD_ERR_INIT;
		write_st("bad.safetensors", bad_cases[i].header, bad_cases[i].data_len,
		    bad_cases[i].hdr_len, path, sizeof(path));
		cr_assert_lt(st_open_file(&s, path, &e), 0, "case %zu", i);
		err_str(&e, msg, sizeof(msg));
		cr_expect_not_null(strstr(msg, path), "case %zu: %s", i, msg);
		cr_expect_not_null(strstr(msg, bad_cases[i].want), "case %zu: %s", i, msg);
		st_close(&s);
	}
}

Test(safetensors, tiny_file)
{
	char path[256];
	struct st_set s = { 0 };
	struct llmd_err e = LLMD_ERR_INIT;
	snprintf(path, sizeof(path), "%s/short.safetensors", dir);
	FILE *f = fopen(path, "wb");
	fputs("abc", f);
	fclose(f);
	cr_assert_eq(st_open_file(&s, path, &e), -EINVAL);
	cr_assert_not_null(strstr(e.msg, "truncated"));
	st_close(&s);
}

Test(safetensors, sharded_index)
{
	char path[256];
	struct st_set s = { 0 };
	struct llmd_err e = LLMD_ERR_INIT;
	write_st("m-1.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	    4, 0, path, sizeof(path));
	write_st("m-2.safetensors", "{\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	    4, 0, path, sizeof(path));
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	FILE *f = fopen(path, "w");
	fputs("{\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-2.safetensors\"}}", f);
	fclose(f);
	cr_assert_eq(st_open_dir(&s, dir, &e), 0, "%s %s", e.field, e.msg);
	cr_assert_eq(s.n_files, 2);
	cr_assert_not_null(st_find(&s, "x"));
	cr_assert_not_null(st_find(&s, "y"));
	cr_assert_eq(st_find(&s, "y")->file, 1);
	st_close(&s);

	/* an index naming a tensor that is not in its shard */
	f = fopen(path, "w");
	fputs("{\"weight_map\":{\"x\":\"m-1.safetensors\",\"z\":\"m-2.safetensors\"}}", f);
	fclose(f);
	cr_assert_eq(st_open_dir(&s, dir, &e), -ENOENT);
	cr_assert_not_null(strstr(e.msg, "tensor z"));
	st_close(&s);
}

/* ---- config.json ---- */

static int
parse(struct model_config *c, const char *json, struct llmd_err *e)
{
	return model_config_parse(c, json, strlen(json), "/m/config.json", e);
}

#define LLAMA_CFG(extra) "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64," \
	"\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128," \
	"\"vocab_size\":1000" extra "}"

Test(config, llama_defaults)
{
	struct model_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	cr_assert_eq(parse(&c, LLAMA_CFG(",\"bos_token_id\":1,\"eos_token_id\":2"), &e), 0, "%s",
	    e.msg);
	cr_assert_eq(c.arch, ARCH_LLAMA);
	cr_assert_eq(c.hidden, 64);
	cr_assert_eq(c.n_kv_heads, 4);          /* defaults to num_attention_heads */
	cr_assert_eq(c.head_dim, 16);           /* hidden / heads */
	cr_assert_float_eq(c.rope_theta, 10000.0f, 1e-3);
	cr_assert_eq(c.rope, ROPE_DEFAULT);
	cr_assert_eq(c.qkv_bias, 0);
	cr_assert_eq(c.qk_norm, 0);
	cr_assert_eq(c.tie_embeddings, 0);
	cr_assert_eq(c.bos_id, 1);
	cr_assert_eq(c.n_eos, 1);
	cr_assert_eq(c.eos_ids[0], 2);
}

Test(config, qwen_flags_and_generation_eos_list)
{
	struct model_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	const char *q2 = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
	    "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
	    "\"intermediate_size\":96,\"vocab_size\":500,\"tie_word_embeddings\":true,"
	    "\"eos_token_id\":7}";
	cr_assert_eq(parse(&c, q2, &e), 0, "%s", e.msg);
	cr_assert_eq(c.arch, ARCH_QWEN2);
	cr_assert_eq(c.qkv_bias, 1);
	cr_assert_eq(c.tie_embeddings, 1);
	cr_assert_eq(c.n_kv_heads, 2);
	const char *gen = "{\"bos_token_id\":3,\"eos_token_id\":[151645,151643]}";
	cr_assert_eq(model_config_parse_generation(&c, gen, strlen(gen), "g.json", &e), 0);
	cr_assert_eq(c.n_eos, 2);
	cr_assert_eq(c.eos_ids[0], 151645);
	cr_assert(model_config_is_eos(&c, 151643));
	cr_assert_not(model_config_is_eos(&c, 7));
	cr_assert_eq(c.bos_id, 3);

	const char *q3 = "{\"architectures\":[\"Qwen3ForCausalLM\"],\"hidden_size\":64,"
	    "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"head_dim\":32,"
	    "\"intermediate_size\":96,\"vocab_size\":500}";
	cr_assert_eq(parse(&c, q3, &e), 0, "%s", e.msg);
	cr_assert_eq(c.qk_norm, 1);
	cr_assert_eq(c.qkv_bias, 0);
	cr_assert_eq(c.head_dim, 32);
}

Test(config, llama3_rope_frequencies)
{
	struct model_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	cr_assert_eq(parse(&c, LLAMA_CFG(",\"rope_theta\":500000.0,\"rope_scaling\":{\"rope_type\":"
	    "\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
	    "\"original_max_position_embeddings\":8192}"), &e), 0, "%s", e.msg);
	cr_assert_eq(c.rope, ROPE_LLAMA3);
	/* head_dim 16; values from the Hugging Face formula (numpy, float64) */
	static const double want[8] = { 1, 0.193922743, 0.0376060307, 0.00729266461,
		0.000524846138, 3.42810235e-05, 6.64786967e-06, 1.28917316e-06 };
	float got[8];
	model_rope_inv_freq(&c, got);
	for (int i = 0; i < 8; i++)
		cr_expect(fabs(got[i] - want[i]) <= 1e-6 * want[i], "inv_freq[%d] = %.9g, want %.9g",
		    i, (double)got[i], want[i]);
	/* without scaling the medium band is unchanged: 500000^(-8/16) */
	c.rope = ROPE_DEFAULT;
	model_rope_inv_freq(&c, got);
	cr_expect(fabs(got[4] - 0.00141421356) < 1e-9);
}

struct cfg_err_case {
	const char *json;
	const char *want;
};

static const struct cfg_err_case cfg_errs[] = {
	{ "{\"architectures\":[\"GPT2LMHeadModel\"]}", "GPT2LMHeadModel is not supported" },
	{ "[1,2", "not a JSON object" },
	{ "{\"hidden_size\":64}", "architectures: missing" },
	{ "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64}",
	  "num_hidden_layers: missing" },
	{ LLAMA_CFG(",\"max_position_embeddings\":\"big\""),
	  "max_position_embeddings: not a non-negative integer" },
	{ LLAMA_CFG(",\"num_key_value_heads\":3"), "multiple of num_key_value_heads" },
	{ LLAMA_CFG(",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}"),
	  "yarn is not supported" },
};

Test(config, errors_name_the_file_and_field)
{
	for (size_t i = 0; i < sizeof(cfg_errs) / sizeof(cfg_errs[0]); i++) {
		struct model_config c;
		struct llmd_err e = LLMD_ERR_INIT;
		char msg[1024];
		cr_assert_lt(parse(&c, cfg_errs[i].json, &e), 0, "case %zu", i);
		err_str(&e, msg, sizeof(msg));
		cr_expect_not_null(strstr(msg, "/m/config.json"), "case %zu: %s", i, msg);
		cr_expect_not_null(strstr(msg, cfg_errs[i].want), "case %zu: %s", i, msg);
	}
}

Test(config, sliding_window)
{
	struct model_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	const char *m = "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":64,"
	    "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"intermediate_size\":96,"
	    "\"vocab_size\":500,\"sliding_window\":4096}";
	cr_assert_eq(parse(&c, m, &e), 0, "%s", e.msg);
	cr_assert_eq(c.sliding_window, 4096);
	/* null: no window; llama ignores the key */
	cr_assert_eq(parse(&c, LLAMA_CFG(",\"sliding_window\":4096"), &e), 0);
	cr_assert_eq(c.sliding_window, 0);
	const char *q = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
	    "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"intermediate_size\":96,"
	    "\"vocab_size\":500,\"use_sliding_window\":true,\"sliding_window\":128}";
	cr_assert_eq(parse(&c, q, &e), -ENOTSUP);
	cr_assert_not_null(strstr(e.msg, "use_sliding_window"));
}

Test(config, arch_names)
{
	cr_assert_eq(model_arch_parse("mistral"), ARCH_MISTRAL);
	cr_assert_eq(model_arch_parse("Qwen3ForCausalLM"), ARCH_QWEN3);
	cr_assert_eq(model_arch_parse("gpt2"), -1);
	cr_assert_str_eq(model_arch_name(ARCH_QWEN2), "qwen2");
}
