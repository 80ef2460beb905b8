/*
 * engine/model-config.c - parses Hugging Face config.json and
 * generation_config.json into struct model_config (see model-config.h).
 */
#include "config.h"
#include "engine/model-config.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"

static const struct {
	enum model_arch arch;
	const char *short_name;
	const char *hf_name;
} archs[] = {
	{ ARCH_LLAMA, "llama", "LlamaForCausalLM" },
	{ ARCH_MISTRAL, "mistral", "MistralForCausalLM" },
	{ ARCH_QWEN2, "qwen2", "Qwen2ForCausalLM" },
	{ ARCH_QWEN3, "qwen3", "Qwen3ForCausalLM" },
};

const char *
model_arch_name(enum model_arch a)
{
	for (size_t i = 0; i < ARRAY_SIZE(archs); i++)
		if (archs[i].arch == a)
			return archs[i].short_name;
	return "?";
}

int
model_arch_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(archs); i++)
		if (strcmp(s, archs[i].short_name) == 0 || strcmp(s, archs[i].hf_name) == 0)
			return (int)archs[i].arch;
	return -1;
}

int
config_read_file(const char *path, size_t max, char **out, size_t *len, struct llmd_err *e)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return err_set(e, -errno, path, "cannot open: %s", strerror(errno));
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (cap - n < 2) {
			cap = cap ? cap * 2 : 65536;
			if (cap > max + 2) {
				fclose(f);
				free(buf);
				return err_set(e, -EFBIG, path, "larger than %zu bytes", max);
			}
			buf = xrealloc(buf, cap);
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return err_set(e, -EIO, path, "read error");
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Integer member `key`; def when absent (def < 0 with required: error). */
static int
get_int(const cJSON *o, const char *key, int def, int required, int *out, const char *file,
    struct llmd_err *e)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
	if (x == NULL || cJSON_IsNull(x)) {
		if (required)
			return err_set(e, -EINVAL, file, "%s: missing", key);
		*out = def;
		return 0;
	}
	if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) ||
	    x->valuedouble < 0 || x->valuedouble > 1e9)
		return err_set(e, -EINVAL, file, "%s: not a non-negative integer", key);
	*out = (int)x->valuedouble;
	return 0;
}

static int
get_float(const cJSON *o, const char *key, float def, float *out, const char *file,
    struct llmd_err *e)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
	if (x == NULL || cJSON_IsNull(x)) {
		*out = def;
		return 0;
	}
	if (!cJSON_IsNumber(x) || !(x->valuedouble > 0))
		return err_set(e, -EINVAL, file, "%s: not a positive number", key);
	*out = (float)x->valuedouble;
	return 0;
}

static int
get_bool(const cJSON *o, const char *key, int def)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsBool(x) ? cJSON_IsTrue(x) : def;
}

/* eos_token_id: a number or a list of numbers. */
static int
parse_eos(struct model_config *c, const cJSON *x, const char *file, struct llmd_err *e)
{
	if (x == NULL || cJSON_IsNull(x))
		return 0;
	c->n_eos = 0;
	if (cJSON_IsNumber(x)) {
		c->eos_ids[c->n_eos++] = (int32_t)x->valuedouble;
		return 0;
	}
	if (!cJSON_IsArray(x))
		return err_set(e, -EINVAL, file, "eos_token_id: not a number or list");
	const cJSON *it;
	cJSON_ArrayForEach(it, x) {
		if (!cJSON_IsNumber(it))
			return err_set(e, -EINVAL, file, "eos_token_id: not a list of numbers");
		if (c->n_eos < MODEL_MAX_EOS)
			c->eos_ids[c->n_eos++] = (int32_t)it->valuedouble;
	}
	return 0;
}

static int
parse_rope_scaling(struct model_config *c, const cJSON *rs, const char *file, struct llmd_err *e)
{
	if (rs == NULL || cJSON_IsNull(rs))
		return 0;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
	if (t == NULL)
		t = cJSON_GetObjectItemCaseSensitive(rs, "type");
	if (!cJSON_IsString(t))
		return err_set(e, -EINVAL, file, "rope_scaling.rope_type: missing");
	if (strcmp(t->valuestring, "default") == 0)
		return 0;
	if (strcmp(t->valuestring, "llama3") != 0)
		return err_set(e, -ENOTSUP, file, "rope_scaling.rope_type: %s is not supported (llama3 only)",
		    t->valuestring);
	c->rope = ROPE_LLAMA3;
	int rc;
	if ((rc = get_float(rs, "factor", 8.0f, &c->rope_factor, file, e)) < 0 ||
	    (rc = get_float(rs, "low_freq_factor", 1.0f, &c->rope_low_freq_factor, file, e)) < 0 ||
	    (rc = get_float(rs, "high_freq_factor", 4.0f, &c->rope_high_freq_factor, file, e)) < 0 ||
	    (rc = get_int(rs, "original_max_position_embeddings", 8192, 0, &c->rope_orig_max_pos,
		file, e)) < 0) {
		err_prefix_field(e, "rope_scaling");
		return rc;
	}
	if (c->rope_high_freq_factor <= c->rope_low_freq_factor || c->rope_orig_max_pos == 0)
		return err_set(e, -EINVAL, file, "rope_scaling: needs high_freq_factor > low_freq_factor");
	return 0;
}

int
model_config_parse(struct model_config *c, const char *json, size_t len, const char *file,
    struct llmd_err *e)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	int rc = 0;

	memset(c, 0, sizeof(*c));
	c->bos_id = -1;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(e, -EINVAL, file, "not a JSON object");
	}
	const cJSON *archs_j = cJSON_GetObjectItemCaseSensitive(root, "architectures");
	const cJSON *a0 = cJSON_GetArrayItem(archs_j, 0);
	if (!cJSON_IsString(a0)) {
		rc = err_set(e, -EINVAL, file, "architectures: missing");
		goto out;
	}
	int arch = model_arch_parse(a0->valuestring);
	if (arch < 0 || strstr(a0->valuestring, "ForCausalLM") == NULL) {
		rc = err_set(e, -ENOTSUP, file, "architectures: %s is not supported "
		    "(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)",
		    a0->valuestring);
		goto out;
	}
	c->arch = (enum model_arch)arch;
	if ((rc = get_int(root, "hidden_size", 0, 1, &c->hidden, file, e)) < 0 ||
	    (rc = get_int(root, "num_hidden_layers", 0, 1, &c->n_layers, file, e)) < 0 ||
	    (rc = get_int(root, "num_attention_heads", 0, 1, &c->n_heads, file, e)) < 0 ||
	    (rc = get_int(root, "intermediate_size", 0, 1, &c->intermediate, file, e)) < 0 ||
	    (rc = get_int(root, "vocab_size", 0, 1, &c->vocab, file, e)) < 0 ||
	    (rc = get_int(root, "num_key_value_heads", c->n_heads, 0, &c->n_kv_heads, file, e)) < 0 ||
	    (rc = get_int(root, "max_position_embeddings", 2048, 0, &c->max_pos, file, e)) < 0 ||
	    (rc = get_float(root, "rms_norm_eps", 1e-6f, &c->rms_eps, file, e)) < 0 ||
	    (rc = get_float(root, "rope_theta", 10000.0f, &c->rope_theta, file, e)) < 0)
		goto out;
	if (c->hidden == 0 || c->n_layers == 0 || c->n_heads == 0 || c->n_kv_heads == 0 ||
	    c->intermediate == 0 || c->vocab == 0) {
		rc = err_set(e, -EINVAL, file, "hidden_size, num_hidden_layers, num_attention_heads, "
		    "num_key_value_heads, intermediate_size and vocab_size must be > 0");
		goto out;
	}
	if ((rc = get_int(root, "head_dim", c->hidden / c->n_heads, 0, &c->head_dim, file, e)) < 0)
		goto out;
	if (c->head_dim == 0 || c->head_dim % 2 != 0 || c->head_dim > 512 ||
	    c->n_heads % c->n_kv_heads != 0) {
		rc = err_set(e, -EINVAL, file, "head_dim must be even and <= 512, and "
		    "num_attention_heads a multiple of num_key_value_heads");
		goto out;
	}
	if ((rc = parse_rope_scaling(c, cJSON_GetObjectItemCaseSensitive(root, "rope_scaling"),
	    file, e)) < 0)
		goto out;
	c->tie_embeddings = get_bool(root, "tie_word_embeddings", 0);
	c->qkv_bias = c->arch == ARCH_QWEN2 ? 1 : get_bool(root, "attention_bias", 0);
	c->qk_norm = c->arch == ARCH_QWEN3;
	/* Mistral applies sliding_window when set; Qwen only with use_sliding_window,
	 * which no released Qwen2/3 checkpoint enables (and which also needs
	 * max_window_layers): refuse it rather than compute something else */
	if (c->arch == ARCH_MISTRAL &&
	    (rc = get_int(root, "sliding_window", 0, 0, &c->sliding_window, file, e)) < 0)
		goto out;
	if ((c->arch == ARCH_QWEN2 || c->arch == ARCH_QWEN3) &&
	    get_bool(root, "use_sliding_window", 0)) {
		rc = err_set(e, -ENOTSUP, file, "use_sliding_window: true is not supported");
		goto out;
	}
	int bos;
	if ((rc = get_int(root, "bos_token_id", -1, 0, &bos, file, e)) < 0)
		goto out;
	c->bos_id = bos;
	rc = parse_eos(c, cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), file, e);
out:
	cJSON_Delete(root);
	return rc;
}

int
model_config_parse_generation(struct model_config *c, const char *json, size_t len,
    const char *file, struct llmd_err *e)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	int rc;

	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(e, -EINVAL, file, "not a JSON object");
	}
	const cJSON *bos = cJSON_GetObjectItemCaseSensitive(root, "bos_token_id");
	if (cJSON_IsNumber(bos))
		c->bos_id = (int32_t)bos->valuedouble;
	rc = parse_eos(c, cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), file, e);
	cJSON_Delete(root);
	return rc;
}

int
model_config_load(struct model_config *c, const char *dir, struct llmd_err *e)
{
	char path[4096];
	char *txt;
	size_t len;
	struct stat st;
	int rc;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if ((rc = config_read_file(path, 1u << 20, &txt, &len, e)) < 0)
		return rc;
	rc = model_config_parse(c, txt, len, path, e);
	free(txt);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/generation_config.json", dir);
	if (stat(path, &st) != 0)
		return 0;
	if ((rc = config_read_file(path, 1u << 20, &txt, &len, e)) < 0)
		return rc;
	rc = model_config_parse_generation(c, txt, len, path, e);
	free(txt);
	return rc;
}

int
model_config_is_eos(const struct model_config *c, int32_t id)
{
	for (int i = 0; i < c->n_eos; i++)
		if (c->eos_ids[i] == id)
			return 1;
	return 0;
}
