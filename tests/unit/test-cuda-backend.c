/*
 * tests/unit/test-cuda-backend.c - the CUDA backend against the CPU backend
 * (the oracle): tiny generated models of every architecture run the same
 * batches on both, and every step must give
 *   |cuda logit - cpu logit| <= 0.03 + 0.03 * |cpu logit|
 * (the CUDA GEMMs read bf16 activations, ~3 significant digits; weights are
 * bf16 on both), and the same greedy token unless the CPU's top-2 margin is
 * below 0.05 (then both continue with the CPU's token).
 * The batches mix sequences: chunked prefill (query tiles across KV blocks of
 * 1, 5, 16 and 32 tokens),
 * decode steps of several sequences at once, a context long enough for the
 * split-K attention path (> 256 positions on one sequence), a sliding window
 * (mistral), Qwen2 biases, Qwen3 q/k norms, GQA and MQA. Decode steps of a
 * constant batch size go through CUDA graphs (run, capture, then replays; a
 * block-table bucket change captures again); one case runs without graphs.
 *
 * Every step also runs as forward_batch_greedy, whose ids (argmax on the
 * device) must equal the argmax of that backend's logits exactly, and as
 * forward_batch_sample with varied sampling parameters and uniforms, whose
 * ids (engine/cuda-sample.cu on the device, through the decode graphs too)
 * must equal sample_row_ref (engine/sample-ref.c) of those logits exactly.
 * Op level, sample_rows on random rows (vocabularies of 50, 1000 and 151936;
 * ties, NaN, +-inf, signed zeros; a grid of temperature, top_k, top_p, min_p)
 * against sample_row_ref.
 *
 * Op level, f32 on both sides (no bf16 anywhere): attention over a 4000-token
 * context (split-K), a prefill chunk and out-of-order tokens, for Llama-3
 * GQA, MQA with a sliding window and 20 heads per kv head at head_dim 256,
 * within 1e-4 + 1e-4 |cpu|; RoPE at positions up to 131000 within 1e-5.
 *
 * Plain C, not criterion: it exits 77 (automake's SKIP) with the reason on
 * stdout when the build has no CUDA or the machine no GPU.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/commands.h"
#include "engine/forward.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/sample-ref.h"
#include "tests/unit/engine-fixture.h"

#define SKIP 77
#define TOL_ABS 0.03f
#define TOL_REL 0.03f
#define TIE_MARGIN 0.05f

#ifndef HAVE_CUDA
int
main(void)
{
	printf("SKIP: test-cuda-backend: this build has no CUDA (configure --with-cuda)\n");
	return SKIP;
}
#else

#include <cuda_runtime_api.h>

static int failures;

#define CHECK(cond, ...) do {                                                   \
	if (!(cond)) {                                                          \
		printf("FAIL %s:%d: ", __FILE__, __LINE__);                     \
		printf(__VA_ARGS__);                                            \
		printf("\n");                                                   \
		failures++;                                                     \
	}                                                                       \
} while (0)

/* Writes a tiny tokenizer and a model with make-model into dir/m. */
static int
make_model(const char *dir, const char *args)
{
	if (fx_write_tokenizer(dir) < 0)
		return -1;
	return fx_make_model("--out %s/m --tokenizer %s/tok.json --seed 7 %s", dir, dir, args);
}

static int
argmax(const float *x, int n, float *margin)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	float second = -INFINITY;
	for (int i = 0; i < n; i++)
		if (i != best && x[i] > second)
			second = x[i];
	*margin = x[best] - second;
	return best;
}

/* Sampling parameters and uniform of logits row i of step s: greedy rows,
 * temperatures, top_k (off, small, beyond the vocabulary), top_p, min_p. */
static void
step_params(struct sample_row_params *rp, int s, int i)
{
	static const float temps[] = { 0.0f, 0.6f, 1.0f, 1.3f };
	struct sampler_params sp;
	int k = s * 5 + i;

	sampler_params_default(&sp);
	sp.temperature = temps[k % 4];
	sp.top_k = k % 3 == 0 ? 0 : k % 3 == 1 ? 1 + k % 17 : 1000000;
	sp.top_p = k % 5 == 0 ? 1.0f : 0.3f + 0.1f * (float)(k % 7);
	sp.min_p = k % 4 == 1 ? 0.05f : 0.0f;
	sample_row_params_init(rp, &sp, fmod((double)k * 0.618033988749895, 1.0));
}

struct side {
	struct backend *be;
	struct forward fw;
	struct kv_cache kv;
	struct kv_seq seq[3];
};

/*
 * Runs n_seq sequences (prompt lengths plen[s]) on both backends: prefill in
 * chunks of `chunk` tokens with every sequence's chunk in one batch, then
 * n_gen greedy decode steps of all sequences together. Compares all logits.
 */
static void
compare(const char *name, const struct model *m, const int *plen, int n_seq, int chunk, int n_gen,
    int block_size, int graphs)
{
	struct side sd[2];
	struct llmd_err e = LLMD_ERR_INIT;
	int V = m->cfg.vocab, max_len = 0;
	for (int s = 0; s < n_seq; s++)
		max_len = plen[s] + n_gen > max_len ? plen[s] + n_gen : max_len;
	int max_tok = chunk * n_seq > n_seq ? chunk * n_seq : n_seq;
	int blocks = n_seq * ((max_len + block_size - 1) / block_size) + 4;
	memset(sd, 0, sizeof(sd));
	sd[0].be = backend_cpu_create(2);
	setenv("LLMD_CUDA_GRAPHS", graphs ? "1" : "0", 1);
	if (backend_cuda_create(&sd[1].be, &e) < 0) {
		CHECK(0, "%s: cuda backend: %s", name, e.msg);
		backend_destroy(sd[0].be);
		return;
	}
	for (int k = 0; k < 2; k++) {
		CHECK(forward_init(&sd[k].fw, m, sd[k].be, max_tok, &e) == 0, "%s: forward_init: %s",
		    name, e.msg);
		CHECK(kv_cache_init(&sd[k].kv, sd[k].be, &m->cfg, block_size, blocks, &e) == 0,
		    "%s: kv_cache_init: %s", name, e.msg);
		for (int s = 0; s < n_seq; s++)
			CHECK(kv_seq_reserve(&sd[k].kv, &sd[k].seq[s], max_len) == 0, "%s: reserve", name);
	}
	if (failures)
		goto out;

	int32_t *tok = calloc((size_t)max_tok, sizeof(int32_t));
	int32_t *pos = calloc((size_t)max_tok, sizeof(int32_t));
	int32_t *sq = calloc((size_t)max_tok, sizeof(int32_t));
	uint8_t *want = calloc((size_t)max_tok, 1);
	float *lg[2] = { calloc((size_t)max_tok * V, sizeof(float)),
		calloc((size_t)max_tok * V, sizeof(float)) };
	int done[3] = { 0 }, next[3] = { 0 };
	float worst = 0;
	int steps = 0, mismatches = 0;

	for (int step = 0;; step++) {
		/* each sequence: its next prompt chunk, or one decode token */
		int n = 0;
		for (int s = 0; s < n_seq; s++) {
			if (done[s] >= plen[s] + n_gen)
				continue;
			int take = done[s] < plen[s] ? (plen[s] - done[s] < chunk ? plen[s] - done[s] :
			    chunk) : 1;
			for (int i = 0; i < take; i++) {
				int p = done[s] + i;
				tok[n] = p < plen[s] ? (int32_t)((p * 37 + s * 11 + 5) % V) : next[s];
				pos[n] = p;
				sq[n] = s;
				want[n] = i == take - 1;
				n++;
			}
			done[s] += take;
		}
		if (n == 0)
			break;
		int n_out[2];
		for (int k = 0; k < 2; k++) {
			struct batch_seq bs[3];
			int32_t ids[3 * 300];
			for (int s = 0; s < n_seq; s++) {
				bs[s].block_table = sd[k].seq[s].blocks;
				bs[s].n_blocks = sd[k].seq[s].n_blocks;
			}
			struct batch b = { n, tok, pos, sq, want, n_seq, bs };
			n_out[k] = forward_batch(&sd[k].fw, &sd[k].kv, &b, lg[k], &e);
			/* the same step again (it rewrites the same K/V) for greedy ids:
			 * exactly the argmax of the logits just computed */
			int n_ids = forward_batch_greedy(&sd[k].fw, &sd[k].kv, &b, ids, &e);
			CHECK(n_ids == n_out[k], "%s step %d: %d ids, %d logit rows", name, step, n_ids,
			    n_out[k]);
			for (int i = 0; i < n_ids && i < n_out[k]; i++) {
				float mg;
				int want_id = argmax(lg[k] + (size_t)i * V, V, &mg);
				CHECK(ids[i] == want_id, "%s step %d (%s): greedy id %d of row %d, argmax %d",
				    name, step, k ? "cuda" : "cpu", ids[i], i, want_id);
			}
			/* and sampled (again the same K/V): sample_row_ref's picks from
			 * the logits (the CPU: forward.c's host path) */
			struct sample_row_params rp[3 * 300];
			for (int i = 0; i < n_out[k] && i < 3 * 300; i++)
				step_params(&rp[i], step, i);
			int n_smp = forward_batch_sample(&sd[k].fw, &sd[k].kv, &b, rp, ids, &e);
			CHECK(n_smp == n_out[k], "%s step %d: %d sampled ids, %d logit rows", name, step,
			    n_smp, n_out[k]);
			for (int i = 0; i < n_smp && i < n_out[k]; i++) {
				int32_t want_id = sample_row_ref(lg[k] + (size_t)i * V, V, &rp[i]);
				CHECK(ids[i] == want_id, "%s step %d (%s): sampled id %d of row %d, "
				    "sample_row_ref %d", name, step, k ? "cuda" : "cpu", ids[i], i, want_id);
			}
		}
		CHECK(n_out[0] == n_out[1] && n_out[0] > 0, "%s step %d: %d vs %d logit rows", name,
		    step, n_out[0], n_out[1]);
		if (n_out[0] != n_out[1] || n_out[0] <= 0)
			break;
		/* logit rows are in batch order: one per sequence still running */
		int row = 0;
		for (int i = 0; i < n; i++) {
			if (!want[i])
				continue;
			const float *a = lg[0] + (size_t)row * V, *c = lg[1] + (size_t)row * V;
			for (int j = 0; j < V; j++) {
				float d = fabsf(a[j] - c[j]);
				float lim = TOL_ABS + TOL_REL * fabsf(a[j]);
				if (d / lim > worst)
					worst = d / lim;
				if (d > lim || isnan(c[j])) {
					CHECK(0, "%s step %d seq %d pos %d logit %d: cpu %g cuda %g", name, step,
					    sq[i], pos[i], j, a[j], c[j]);
					break;
				}
			}
			float ma, mc;
			int ta = argmax(a, V, &ma), tc = argmax(c, V, &mc);
			if (ta != tc) {
				mismatches++;
				CHECK(ma < TIE_MARGIN, "%s step %d seq %d: greedy token cpu %d cuda %d "
				    "(cpu margin %g)", name, step, sq[i], ta, tc, ma);
			}
			next[sq[i]] = ta;
			row++;
		}
		steps++;
		if (failures > 20)
			break;
	}
	printf("%s: %d steps, worst |diff| / tolerance %.3f, %d near-tie token differences\n",
	    name, steps, worst, mismatches);
	free(tok);
	free(pos);
	free(sq);
	free(want);
	free(lg[0]);
	free(lg[1]);
out:
	for (int k = 0; k < 2; k++) {
		for (int s = 0; s < n_seq; s++)
			if (sd[k].seq[s].blocks)
				kv_seq_release(&sd[k].kv, &sd[k].seq[s]);
		if (sd[k].kv.data)
			kv_cache_free(&sd[k].kv);
		if (sd[k].fw.be)
			forward_free(&sd[k].fw);
		backend_destroy(sd[k].be);
	}
}

/* ---- op level: attention and RoPE against the CPU ops, f32 throughout ---- */

static uint64_t rng = 88172645463325252ull;

static float
frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / (double)(1ull << 53)) * 2.0f - 1.0f;
}

static float *
to_dev(struct backend *be, const float *h, size_t n)
{
	float *d = be->ops->alloc(be, n * sizeof(float));
	if (d == NULL || cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess ||
	    cudaDeviceSynchronize() != cudaSuccess) {
		printf("FAIL: cannot copy %zu floats to the GPU\n", n);
		exit(1);
	}
	return d;
}

/* max |a - b| / (tol_abs + tol_rel |a|) over n; > 1 fails */
static float
worst_ratio(const float *a, const float *b, size_t n, float tol_abs, float tol_rel, size_t *at)
{
	float w = 0;
	for (size_t i = 0; i < n; i++) {
		float r = fabsf(a[i] - b[i]) / (tol_abs + tol_rel * fabsf(a[i]));
		if (!(r <= w)) {        /* NaN counts as worst */
			w = isnan(r) ? INFINITY : r;
			*at = i;
		}
	}
	return w;
}

/*
 * Three sequences in one KV pool of block size bs: seq 0 holds 4000
 * positions, seq 1 137, seq 2 40. The query batch: a decode token of seq 0
 * at 3999 (split-K), a prefill chunk of seq 1 at 100..136 (query tiles),
 * and seq 2 at 39 and 38 out of order (separate tiles). K/V and q are
 * random; the cache is filled through kv_store on both backends.
 */
static void
attention_case(const char *name, int H, int KV, int HD, int bs, int window)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct backend *be[2];
	struct kv_cache kv[2];
	struct kv_seq sq[2][3];
	const int len[3] = { 4000, 137, 40 };
	int kvd = KV * HD;
	struct model_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_layers = 2;
	cfg.n_kv_heads = KV;
	cfg.head_dim = HD;
	be[0] = backend_cpu_create(2);
	if (backend_cuda_create(&be[1], &e) < 0) {
		CHECK(0, "%s: %s", name, e.msg);
		backend_destroy(be[0]);
		return;
	}
	memset(sq, 0, sizeof(sq));
	int blocks = 4000 / bs + 137 / bs + 40 / bs + 8;
	for (int k = 0; k < 2; k++) {
		CHECK(kv_cache_init(&kv[k], be[k], &cfg, bs, blocks, &e) == 0, "%s: kv", name);
		for (int s = 0; s < 3; s++)
			CHECK(kv_seq_reserve(&kv[k], &sq[k][s], len[s]) == 0, "%s: reserve", name);
	}
	/* fill layer 1 of every sequence: one kv_store batch per sequence */
	for (int s = 0; s < 3 && !failures; s++) {
		int n = len[s];
		float *kh = malloc((size_t)n * kvd * sizeof(float)), *vh = malloc((size_t)n * kvd * sizeof(float));
		int32_t *pos = malloc((size_t)n * sizeof(int32_t)), *sid = calloc((size_t)n, sizeof(int32_t));
		int32_t *tok = calloc((size_t)n, sizeof(int32_t));
		for (size_t i = 0; i < (size_t)n * kvd; i++) {
			kh[i] = frand();
			vh[i] = frand();
		}
		for (int i = 0; i < n; i++)
			pos[i] = i;
		float *kd = to_dev(be[1], kh, (size_t)n * kvd), *vd = to_dev(be[1], vh, (size_t)n * kvd);
		for (int k = 0; k < 2; k++) {
			struct batch_seq bsq = { sq[k][s].blocks, sq[k][s].n_blocks };
			struct batch b = { n, tok, pos, sid, NULL, 1, &bsq };
			be[k]->ops->kv_store(be[k], &kv[k], 1, k ? kd : kh, k ? vd : vh, &b);
		}
		be[1]->ops->free(be[1], kd);
		be[1]->ops->free(be[1], vd);
		free(kh);
		free(vh);
		free(pos);
		free(sid);
		free(tok);
	}
	/* the query batch */
	int n = 1 + 37 + 2;
	int32_t pos[40], sid[40], tok[40] = { 0 };
	pos[0] = 3999;
	sid[0] = 0;
	for (int i = 0; i < 37; i++) {
		pos[1 + i] = 100 + i;
		sid[1 + i] = 1;
	}
	pos[38] = 39;
	sid[38] = 2;
	pos[39] = 38;
	sid[39] = 2;
	size_t qn = (size_t)n * H * HD;
	float *qh = malloc(qn * sizeof(float)), *out[2];
	for (size_t i = 0; i < qn; i++)
		qh[i] = frand() * 2.0f;
	out[0] = calloc(qn, sizeof(float));
	out[1] = calloc(qn, sizeof(float));
	float *qd = to_dev(be[1], qh, qn), *od = be[1]->ops->alloc(be[1], qn * sizeof(float));
	for (int k = 0; k < 2 && !failures; k++) {
		struct batch_seq bsq[3];
		for (int s = 0; s < 3; s++) {
			bsq[s].block_table = sq[k][s].blocks;
			bsq[s].n_blocks = sq[k][s].n_blocks;
		}
		struct batch b = { n, tok, pos, sid, NULL, 3, bsq };
		be[k]->ops->attention(be[k], k ? od : out[0], k ? qd : qh, &kv[k], 1, &b, H, KV, HD,
		    window);
	}
	be[1]->ops->to_host(be[1], out[1], od, qn * sizeof(float));
	size_t at = 0;
	float w = worst_ratio(out[0], out[1], qn, 1e-4f, 1e-4f, &at);
	printf("%s: attention worst |diff| / tolerance %.3f\n", name, w);
	CHECK(w <= 1.0f, "%s: attention out[%zu] (token %zu head %zu): cpu %g cuda %g", name, at,
	    at / ((size_t)H * HD), at / HD % H, out[0][at], out[1][at]);

	/* RoPE of the same q at large positions (llama3-like frequencies) */
	float *inv = malloc((size_t)HD / 2 * sizeof(float));
	for (int j = 0; j < HD / 2; j++)
		inv[j] = powf(500000.0f, -2.0f * j / HD);
	int32_t rpos[40];
	for (int i = 0; i < n; i++)
		rpos[i] = 131000 - 977 * i;
	be[0]->ops->rope(be[0], qh, rpos, n, H, HD, inv);
	be[1]->ops->rope(be[1], qd, rpos, n, H, HD, inv);
	be[1]->ops->to_host(be[1], out[1], qd, qn * sizeof(float));
	w = worst_ratio(qh, out[1], qn, 1e-5f, 1e-5f, &at);
	printf("%s: rope worst |diff| / tolerance %.3f\n", name, w);
	CHECK(w <= 1.0f, "%s: rope x[%zu]: cpu %g cuda %g", name, at, qh[at], out[1][at]);

	free(inv);
	be[1]->ops->free(be[1], qd);
	be[1]->ops->free(be[1], od);
	free(qh);
	free(out[0]);
	free(out[1]);
	for (int k = 0; k < 2; k++) {
		for (int s = 0; s < 3; s++)
			if (sq[k][s].blocks)
				kv_seq_release(&kv[k], &sq[k][s]);
		if (kv[k].data)
			kv_cache_free(&kv[k]);
		backend_destroy(be[k]);
	}
}

/* ---- op level: sample_rows against sample_row_ref ---- */

enum { SAMPLE_ROWS = 8 };

/* Row r of a call: uniform, peaked, tied (multiples of 0.5), flat, non-finite
 * sprinkles with signed zeros, huge values, nothing finite, one finite. */
static void
sample_fill(float *l, int V, int r)
{
	for (int i = 0; i < V; i++) {
		float x = frand();
		switch (r) {
		case 0: l[i] = x * 4.0f; break;
		case 1: l[i] = frand() > 0.96f ? 8.0f + x * 3.0f : x - 5.0f; break;
		case 2: l[i] = floorf(x * 6.0f) * 0.5f; break;
		case 3: l[i] = 0.75f; break;
		case 4: {
			float k = frand();
			l[i] = k < -0.9f ? NAN : k < -0.8f ? -INFINITY : k < -0.7f ? -0.0f :
			    k < -0.6f ? 0.0f : x * 3.0f;
			break;
		}
		case 5: l[i] = x * 3e38f; break;
		case 6: l[i] = -INFINITY; break;
		default: l[i] = i == V / 2 ? 1.0f : NAN; break;
		}
	}
	if (r == 4)
		l[V / 3] = INFINITY;
}

static void
sample_case(int V)
{
	static const float temps[] = { 0.0f, 0.5f, 1.0f, 2.0f };
	static const float top_ps[] = { 1.0f, 0.95f, 0.6f, 0.05f };
	static const float min_ps[] = { 0.0f, 0.05f, 0.5f };
	const int32_t top_ks[] = { 0, 1, 3, 40, V + 1 };
	struct llmd_err e = LLMD_ERR_INIT;
	struct backend *be;
	float *h = malloc((size_t)SAMPLE_ROWS * V * sizeof(float));
	int calls = 0, rows = 0, bad = 0;

	if (backend_cuda_create(&be, &e) < 0) {
		CHECK(0, "sample vocab %d: %s", V, e.msg);
		free(h);
		return;
	}
	int combo = 0;
	for (size_t t = 0; t < 4; t++)
		for (size_t tk = 0; tk < 5; tk++)
			for (size_t tp = 0; tp < 4; tp++)
				for (size_t mp = 0; mp < 3; mp++, combo++) {
					/* a call of 8 rows every 8 combos (ids per combo: row combo % 8) */
					static struct sample_row_params rp[SAMPLE_ROWS];
					struct sampler_params sp;
					sampler_params_default(&sp);
					sp.temperature = temps[t];
					sp.top_k = top_ks[tk];
					sp.top_p = top_ps[tp];
					sp.min_p = min_ps[mp];
					int r = combo % SAMPLE_ROWS;
					sample_row_params_init(&rp[r], &sp, (frand() + 1.0f) * 0.5f);
					if (r != SAMPLE_ROWS - 1)
						continue;
					for (int k = 0; k < SAMPLE_ROWS; k++)
						sample_fill(h + (size_t)k * V, V, (k + calls) % SAMPLE_ROWS);
					float *d = to_dev(be, h, (size_t)SAMPLE_ROWS * V);
					int32_t ids[SAMPLE_ROWS];
					be->ops->sample_rows(be, ids, d, rp, SAMPLE_ROWS, V);
					for (int k = 0; k < SAMPLE_ROWS; k++) {
						int32_t want = sample_row_ref(h + (size_t)k * V, V, &rp[k]);
						rows++;
						if (ids[k] != want && bad++ < 10)
							CHECK(0, "sample vocab %d call %d row %d (kind %d, greedy %d "
							    "inv_temp %g top_k %d top_p %g log_min_p %g u %.17g): cuda %d, "
							    "sample_row_ref %d", V, calls, k, (k + calls) % SAMPLE_ROWS,
							    rp[k].greedy, (double)rp[k].inv_temp, rp[k].top_k,
							    (double)rp[k].top_p, (double)rp[k].log_min_p, rp[k].u, ids[k],
							    want);
					}
					be->ops->free(be, d);
					calls++;
				}
	printf("sample vocab %d: %d rows in %d calls, %d differ from sample_row_ref\n", V, rows,
	    calls, bad);
	CHECK(bad == 0, "sample vocab %d: %d rows differ", V, bad);
	backend_destroy(be);
	free(h);
}

struct model_case {
	const char *name;
	const char *args;
	int plen[3];
	int n_seq, chunk, n_gen;
	int block_size;
	int graphs;             /* decode steps through CUDA graphs */
};

static const struct model_case cases[] = {
	{ "llama-gqa-hd16", "--arch llama --layers 2 --hidden 64 --heads 4 --kv-heads 2 "
	    "--vocab 300 --intermediate 96", { 20, 7, 33 }, 3, 16, 12, 5, 1 },
	{ "llama3-hd128-long", "--arch llama --layers 2 --hidden 256 --heads 4 --kv-heads 1 "
	    "--head-dim 128 --vocab 512 --intermediate 384 --max-pos 4096 --rope-scaling llama3",
	    { 700, 40, 0 }, 2, 128, 8, 16, 1 },
	{ "qwen2-bias-bf16", "--arch qwen2 --layers 2 --hidden 64 --heads 8 --kv-heads 2 "
	    "--vocab 300 --dtype bf16", { 18, 5, 0 }, 2, 8, 10, 1, 1 },
	{ "qwen3-qknorm-tied", "--arch qwen3 --layers 2 --hidden 128 --heads 4 --kv-heads 4 "
	    "--head-dim 64 --vocab 300 --tie", { 24, 0, 0 }, 1, 16, 10, 16, 1 },
	{ "mistral-swa", "--arch mistral --layers 2 --hidden 64 --heads 4 --kv-heads 2 "
	    "--vocab 300 --sliding-window 8 --dtype f16", { 30, 12, 0 }, 2, 16, 12, 16, 1 },
	{ "llama-gqa-hd16-nographs", "--arch llama --layers 2 --hidden 64 --heads 4 --kv-heads 2 "
	    "--vocab 300 --intermediate 96", { 20, 7, 33 }, 3, 16, 12, 5, 0 },
	{ "llama-mqa-f32", "--arch llama --layers 1 --hidden 96 --heads 6 --kv-heads 1 "
	    "--vocab 300 --dtype f32", { 300, 0, 0 }, 1, 300, 6, 32, 1 },
};

int
main(void)
{
	char dir[64], path[128], cmd[160];
	struct llmd_err e = LLMD_ERR_INIT;

	log_init("test-cuda-backend", LOG_LVL_WARN);
	if (!backend_cuda_available()) {
		struct backend *be = NULL;
		backend_cuda_create(&be, &e);
		printf("SKIP: test-cuda-backend: no CUDA GPU on this machine: %s\n", e.msg);
		return SKIP;
	}
	/* GQA 4 (Llama-3 8B's heads), MQA with HD 64 and a window, 20 query heads per
	 * kv head (head groups) at HD 256 (the shared memory opt-in), odd block size */
	attention_case("attn-h32-kv8-hd128-bs16", 32, 8, 128, 16, 0);
	attention_case("attn-h8-kv1-hd64-bs32-window100", 8, 1, 64, 32, 100);
	attention_case("attn-h40-kv2-hd256-bs7", 40, 2, 256, 7, 0);
	sample_case(50);
	sample_case(1000);
	sample_case(151936);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct model_case *mc = &cases[i];
		struct model m;
		if (fx_tmpdir(dir, sizeof(dir), "test-cuda-backend") < 0 ||
		    make_model(dir, mc->args) != 0) {
			CHECK(0, "%s: make-model %s", mc->name, mc->args);
			continue;
		}
		snprintf(path, sizeof(path), "%s/m", dir);
		if (model_load(&m, path, &e) < 0) {
			CHECK(0, "%s: model_load: %s", mc->name, e.msg);
		} else {
			compare(mc->name, &m, mc->plen, mc->n_seq, mc->chunk, mc->n_gen, mc->block_size,
			    mc->graphs);
			model_free(&m);
		}
		if (fx_remove_tree(dir) < 0)
			CHECK(0, "cleanup %s", dir);
	}
	printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
	return failures ? 1 : 0;
}
#endif
