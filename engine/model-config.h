/*
 * engine/model-config.h - the hyper-parameters of a decoder-only model, read
 * from a Hugging Face config.json (+ generation_config.json for stop ids).
 * Supported architectures: LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM, Qwen3ForCausalLM.
 */
#ifndef LLMD_ENGINE_MODEL_CONFIG_H
#define LLMD_ENGINE_MODEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

enum model_arch { ARCH_LLAMA = 0, ARCH_MISTRAL, ARCH_QWEN2, ARCH_QWEN3 };

enum rope_kind { ROPE_DEFAULT = 0, ROPE_LLAMA3 };

#define MODEL_MAX_EOS 8

struct model_config {
	enum model_arch arch;
	int hidden;             /* hidden_size */
	int n_layers;           /* num_hidden_layers */
	int n_heads;            /* num_attention_heads */
	int n_kv_heads;         /* num_key_value_heads (defaults to n_heads) */
	int head_dim;           /* head_dim (defaults to hidden / n_heads) */
	int intermediate;       /* intermediate_size */
	int vocab;              /* vocab_size */
	int max_pos;            /* max_position_embeddings */
	float rms_eps;          /* rms_norm_eps */
	float rope_theta;
	enum rope_kind rope;
	float rope_factor;              /* llama3: factor */
	float rope_low_freq_factor;     /* llama3: low_freq_factor */
	float rope_high_freq_factor;    /* llama3: high_freq_factor */
	int rope_orig_max_pos;          /* llama3: original_max_position_embeddings */
	int tie_embeddings;     /* tie_word_embeddings */
	int qkv_bias;           /* q/k/v projections have biases (Qwen2, attention_bias) */
	int qk_norm;            /* per-head q/k RMSNorm (Qwen3) */
	int sliding_window;     /* Mistral: attend to the last N positions; 0 = all */
	int32_t bos_id;         /* -1 when none */
	int32_t eos_ids[MODEL_MAX_EOS];
	int n_eos;
};

const char *model_arch_name(enum model_arch a);
/* "llama" / "LlamaForCausalLM" ... -> arch; -1 when unknown. */
int model_arch_parse(const char *s);

/* Parses config.json text; `file` names it in errors. */
int model_config_parse(struct model_config *c, const char *json, size_t len, const char *file,
    struct llmd_err *e);
/* Merges generation_config.json text (eos_token_id number or list, bos_token_id). */
int model_config_parse_generation(struct model_config *c, const char *json, size_t len,
    const char *file, struct llmd_err *e);
/* Reads DIR/config.json and, when present, DIR/generation_config.json. */
int model_config_load(struct model_config *c, const char *dir, struct llmd_err *e);

/* Reads a whole small text file (JSON) into a malloc'd NUL-terminated buffer. */
int config_read_file(const char *path, size_t max, char **out, size_t *len, struct llmd_err *e);

int model_config_is_eos(const struct model_config *c, int32_t id);

#endif
