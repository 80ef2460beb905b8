/*
 * engine/model.h - a loaded model: its config and its weights. Weight
 * matrices are struct tensor views into the mmapped safetensors files, in
 * their file dtype (BF16/F16/F32); only the small vectors (norm weights,
 * biases) are converted to f32 at load.
 *
 * Shapes use the config's names: D = hidden, H = n_heads, KV = n_kv_heads,
 * HD = head_dim, F = intermediate, V = vocab. Weight matrices are (out, in)
 * as in PyTorch's nn.Linear.
 */
#ifndef LLMD_ENGINE_MODEL_H
#define LLMD_ENGINE_MODEL_H

#include "engine/model-config.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"
#include "lib/err.h"

struct layer_weights {
	float *attn_norm;       /* (D) input_layernorm */
	struct tensor wq;       /* (H*HD, D) */
	struct tensor wk;       /* (KV*HD, D) */
	struct tensor wv;       /* (KV*HD, D) */
	struct tensor wo;       /* (D, H*HD) */
	float *bq;              /* (H*HD) or NULL: Qwen2 / attention_bias */
	float *bk;              /* (KV*HD) or NULL */
	float *bv;              /* (KV*HD) or NULL */
	float *q_norm;          /* (HD) or NULL: Qwen3 per-head RMSNorm */
	float *k_norm;          /* (HD) or NULL */
	float *ffn_norm;        /* (D) post_attention_layernorm */
	struct tensor w_gate;   /* (F, D) */
	struct tensor w_up;     /* (F, D) */
	struct tensor w_down;   /* (D, F) */
};

struct model {
	struct model_config cfg;
	struct st_set st;
	struct tensor embed;        /* (V, D) embed_tokens */
	struct layer_weights *layers;   /* (n_layers) */
	float *final_norm;          /* (D) */
	struct tensor lm_head;      /* (V, D); == embed when tied */
	float *rope_inv_freq;       /* (HD/2) with llama3 scaling applied */
};

/* Loads config.json, generation_config.json and the safetensors of dir. */
int model_load(struct model *m, const char *dir, struct llmd_err *e);
void model_free(struct model *m);

/* Fills inv_freq (head_dim/2) for the config's RoPE (default or llama3). */
void model_rope_inv_freq(const struct model_config *c, float *inv_freq);

#endif
