/*
 * engine/model.c - binds the tensors of a Hugging Face checkpoint to struct
 * model: checks every tensor's presence, shape and dtype against the config,
 * converts norm weights and biases to f32, and computes the RoPE
 * frequencies.
 */
#include "config.h"
#include "engine/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* Error location for tensor `name`: the file that holds it, or the model dir. */
static const char *
tensor_file(const struct model *m, const struct st_entry *en, const char *dir)
{
	return en ? m->st.files[en->file].path : dir;
}

/* Finds name with shape (d0) or (d0, d1) (d1 = 0 for a vector). */
static int
bind(struct model *m, const char *dir, const char *name, int64_t d0, int64_t d1,
    const struct st_entry **out, struct llmd_err *e)
{
	const struct st_entry *en = st_find(&m->st, name);
	char field[512];

	if (en == NULL) {
		snprintf(field, sizeof(field), "%s/model.safetensors.index.json", dir);
		if (m->st.n_files == 1)
			snprintf(field, sizeof(field), "%s", m->st.files[0].path);
		return err_set(e, -ENOENT, field, "tensor %s: missing", name);
	}
	int want_nd = d1 ? 2 : 1;
	if (en->t.ndim != want_nd || en->t.shape[0] != d0 || (d1 && en->t.shape[1] != d1)) {
		char got[96] = "";
		for (int i = 0; i < en->t.ndim; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld",
			    i ? ", " : "", (long long)en->t.shape[i]);
		snprintf(field, sizeof(field), "%s", tensor_file(m, en, dir));
		if (d1)
			return err_set(e, -EINVAL, field, "tensor %s: shape [%s], expected [%lld, %lld]",
			    name, got, (long long)d0, (long long)d1);
		return err_set(e, -EINVAL, field, "tensor %s: shape [%s], expected [%lld]", name,
		    got, (long long)d0);
	}
	*out = en;
	return 0;
}

static int
bind_matrix(struct model *m, const char *dir, const char *name, int64_t d0, int64_t d1,
    struct tensor *t, struct llmd_err *e)
{
	const struct st_entry *en;
	int rc = bind(m, dir, name, d0, d1, &en, e);
	if (rc == 0)
		*t = en->t;
	return rc;
}

/* Vector of n converted to a malloc'd f32 array. */
static int
bind_vector(struct model *m, const char *dir, const char *name, int64_t n, float **out,
    struct llmd_err *e)
{
	const struct st_entry *en;
	int rc = bind(m, dir, name, n, 0, &en, e);
	if (rc < 0)
		return rc;
	float *v = xmalloc((size_t)n * sizeof(float));
	const unsigned char *p = en->t.data;
	for (int64_t i = 0; i < n; i++) {
		uint16_t h;
		switch (en->t.dtype) {
		case DT_F32:
			memcpy(&v[i], p + 4 * i, 4);
			break;
		case DT_BF16:
			memcpy(&h, p + 2 * i, 2);
			v[i] = bf16_to_f32(h);
			break;
		case DT_F16:
			memcpy(&h, p + 2 * i, 2);
			v[i] = f16_to_f32(h);
			break;
		}
	}
	*out = v;
	return 0;
}

void
model_rope_inv_freq(const struct model_config *c, float *inv_freq)
{
	int half = c->head_dim / 2;
	for (int i = 0; i < half; i++) {
		double f = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / c->head_dim);
		if (c->rope == ROPE_LLAMA3) {
			double old = c->rope_orig_max_pos;
			double low_wl = old / c->rope_low_freq_factor;
			double high_wl = old / c->rope_high_freq_factor;
			double wl = 2 * M_PI / f;
			if (wl > low_wl) {
				f = f / c->rope_factor;
			} else if (wl >= high_wl) {
				double s = (old / wl - c->rope_low_freq_factor) /
				    (c->rope_high_freq_factor - c->rope_low_freq_factor);
				f = (1 - s) * f / c->rope_factor + s * f;
			}
		}
		inv_freq[i] = (float)f;
	}
}

static int
bind_layer(struct model *m, const char *dir, int l, struct llmd_err *e)
{
	const struct model_config *c = &m->cfg;
	struct layer_weights *w = &m->layers[l];
	int64_t D = c->hidden, QD = (int64_t)c->n_heads * c->head_dim;
	int64_t KD = (int64_t)c->n_kv_heads * c->head_dim, F = c->intermediate;
	char n[128];
	int rc;

#define NAME(s) (snprintf(n, sizeof(n), "model.layers.%d.%s", l, s), n)
	if ((rc = bind_vector(m, dir, NAME("input_layernorm.weight"), D, &w->attn_norm, e)) < 0 ||
	    (rc = bind_matrix(m, dir, NAME("self_attn.q_proj.weight"), QD, D, &w->wq, e)) < 0 ||
	    (rc = bind_matrix(m, dir, NAME("self_attn.k_proj.weight"), KD, D, &w->wk, e)) < 0 ||
	    (rc = bind_matrix(m, dir, NAME("self_attn.v_proj.weight"), KD, D, &w->wv, e)) < 0 ||
	    (rc = bind_matrix(m, dir, NAME("self_attn.o_proj.weight"), D, QD, &w->wo, e)) < 0 ||
	    (rc = bind_vector(m, dir, NAME("post_attention_layernorm.weight"), D, &w->ffn_norm,
		e)) < 0 ||
	    (rc = bind_matrix(m, dir, NAME("mlp.gate_proj.weight"), F, D, &w->w_gate, e)) < 0 ||
	    (rc = bind_matrix(m, dir, NAME("mlp.up_proj.weight"), F, D, &w->w_up, e)) < 0 ||
	    (rc = bind_matrix(m, dir, NAME("mlp.down_proj.weight"), D, F, &w->w_down, e)) < 0)
		return rc;
	if (c->qkv_bias &&
	    ((rc = bind_vector(m, dir, NAME("self_attn.q_proj.bias"), QD, &w->bq, e)) < 0 ||
	    (rc = bind_vector(m, dir, NAME("self_attn.k_proj.bias"), KD, &w->bk, e)) < 0 ||
	    (rc = bind_vector(m, dir, NAME("self_attn.v_proj.bias"), KD, &w->bv, e)) < 0))
		return rc;
	if (c->qk_norm &&
	    ((rc = bind_vector(m, dir, NAME("self_attn.q_norm.weight"), c->head_dim, &w->q_norm,
		e)) < 0 ||
	    (rc = bind_vector(m, dir, NAME("self_attn.k_norm.weight"), c->head_dim, &w->k_norm,
		e)) < 0))
		return rc;
#undef NAME
	return 0;
}

int
model_load(struct model *m, const char *dir, struct llmd_err *e)
{
	struct model_config *c = &m->cfg;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = model_config_load(c, dir, e)) < 0)
		return rc;
	if ((rc = st_open_dir(&m->st, dir, e)) < 0)
		goto fail;
	m->layers = xcalloc((size_t)c->n_layers, sizeof(*m->layers));
	if ((rc = bind_matrix(m, dir, "model.embed_tokens.weight", c->vocab, c->hidden, &m->embed,
	    e)) < 0)
		goto fail;
	for (int l = 0; l < c->n_layers; l++)
		if ((rc = bind_layer(m, dir, l, e)) < 0)
			goto fail;
	if ((rc = bind_vector(m, dir, "model.norm.weight", c->hidden, &m->final_norm, e)) < 0)
		goto fail;
	if (c->tie_embeddings && st_find(&m->st, "lm_head.weight") == NULL)
		m->lm_head = m->embed;
	else if ((rc = bind_matrix(m, dir, "lm_head.weight", c->vocab, c->hidden, &m->lm_head,
	    e)) < 0)
		goto fail;
	m->rope_inv_freq = xmalloc((size_t)c->head_dim / 2 * sizeof(float));
	model_rope_inv_freq(c, m->rope_inv_freq);
	return 0;
fail:
	model_free(m);
	return rc;
}

void
model_free(struct model *m)
{
	if (m->layers) {
		for (int l = 0; l < m->cfg.n_layers; l++) {
			struct layer_weights *w = &m->layers[l];
			free(w->attn_norm);
			free(w->ffn_norm);
			free(w->bq);
			free(w->bk);
			free(w->bv);
			free(w->q_norm);
			free(w->k_norm);
		}
	}
	free(m->layers);
	free(m->final_norm);
	free(m->rope_inv_freq);
	st_close(&m->st);
	memset(m, 0, sizeof(*m));
}
