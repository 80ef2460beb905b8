/*
 * tests/unit/test-cuda-tp.c - the CUDA tensor-parallel backend (engine/
 * cuda-tp.cu + engine/backend-tp.c over NCCL) against the one-GPU CUDA
 * backend: tiny generated models (qwen2 with q/k/v biases, qwen3 with q/k
 * norms; GQA with the kv heads split, and replicated on 4 GPUs) run a mixed
 * prefill of two sequences and decode steps on both, fed the same tokens
 * (the one-GPU backend's greedy choice), and every logit must agree within
 *   |tp - one| <= 0.03 + 0.03 |one|
 * (both read bf16 activations; TP only changes the f32 summation order of
 * o_proj and down_proj), greedy ids equal unless the one-GPU top-2 margin is
 * below 0.05. The KV pool holds each rank's kv heads only.
 *
 * Plain C, not criterion: exits 77 (SKIP) with the reason when the build has
 * no CUDA or NCCL, or the machine fewer than 2 GPUs.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backend-tp.h"
#include "engine/commands.h"
#include "engine/forward.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/tp-plan.h"
#include "tests/unit/engine-fixture.h"

#define SKIP 77

#if !defined(HAVE_CUDA) || !defined(HAVE_NCCL)
int
main(void)
{
	printf("SKIP: test-cuda-tp: this build has no CUDA with NCCL\n");
	return SKIP;
}
#else

#define VOCAB 512
#define STEPS 8

static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Counts a failure; prints the first 20. */
static void
fail(const char *fmt, ...)
{
	va_list ap;
	if (failures++ >= 20)
		return;
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int
make_model(const char *dir, const char *name, const char *arch, int heads, int kv)
{
	if (fx_write_tokenizer(dir) < 0)
		return -1;
	return fx_make_model("--arch %s --out %s/%s --tokenizer %s/tok.json --vocab %d "
	    "--layers 2 --hidden 64 --heads %d --kv-heads %d --head-dim 16 --intermediate 128 "
	    "--seed 3", arch, dir, name, dir, VOCAB, heads, kv);
}

/* One backend's forward state over model m. */
struct side {
	struct backend *be;
	struct forward fw;
	struct kv_cache kv;
	struct kv_seq seq[2];
};

static int
side_init(struct side *s, const struct model *m, struct backend *be)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct model_config kc = m->cfg;
	memset(s, 0, sizeof(*s));
	s->be = be;
	kc.n_kv_heads = tp_kv_heads_per_rank(m->cfg.n_kv_heads, backend_tp_size(be));
	if (forward_init(&s->fw, m, be, 64, &e) < 0 ||
	    kv_cache_init(&s->kv, be, &kc, 16, 16, &e) < 0 ||
	    kv_seq_reserve(&s->kv, &s->seq[0], 64) < 0 || kv_seq_reserve(&s->kv, &s->seq[1], 64) < 0) {
		printf("FAIL: %s set-up: %s: %s\n", be->ops->name, e.field, e.msg);
		failures++;
		return -1;
	}
	return 0;
}

static void
side_free(struct side *s)
{
	kv_seq_release(&s->kv, &s->seq[0]);
	kv_seq_release(&s->kv, &s->seq[1]);
	kv_cache_free(&s->kv);
	forward_free(&s->fw);
	backend_destroy(s->be);
}

/* Runs batch b (sequences in s's tables) on s: n_out logit rows and ids. */
static int
side_step(struct side *s, struct batch *b, float *logits, int32_t *ids)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct batch_seq bs[2] = { { s->seq[0].blocks, s->seq[0].n_blocks },
		{ s->seq[1].blocks, s->seq[1].n_blocks } };
	b->seqs = bs;
	int n = forward_batch(&s->fw, &s->kv, b, logits, &e);
	if (n >= 0 && ids && forward_batch_greedy(&s->fw, &s->kv, b, ids, &e) != n)
		n = -EIO;
	if (n < 0) {
		printf("FAIL: %s step: %s\n", s->be->ops->name, e.msg);
		failures++;
	}
	return n;
}

static void
top2(const float *l, int V, int *best, float *margin)
{
	float a = -INFINITY, b = -INFINITY;
	*best = 0;
	for (int i = 0; i < V; i++) {
		if (l[i] > a) {
			b = a;
			a = l[i];
			*best = i;
		} else if (l[i] > b) {
			b = l[i];
		}
	}
	*margin = a - b;
}

/* Steps of one backend: the logits and greedy ids of each. */
struct trace {
	int n_rows[STEPS + 1];
	float logits[STEPS + 1][24 * VOCAB];
	int32_t ids[STEPS + 1][24];
	int32_t fed[STEPS + 1][2];      /* decode tokens fed to step s (s >= 1) */
};

/* Runs the prefill and STEPS decode steps on be; the decode tokens are
 * ref's (the one-GPU run) when given, else be's own greedy ids. */
static int
run_trace(const struct model *m, struct backend *be, const struct trace *ref, struct trace *out)
{
	struct side sd;
	int32_t tok[24], pos[24], sq[24];
	uint8_t want[24];
	int next[2] = { 17, 7 };

	if (side_init(&sd, m, be) < 0)
		return -1;
	/* prefill: 17 tokens of sequence 0, 7 of sequence 1 */
	for (int i = 0; i < 24; i++) {
		sq[i] = i < 17 ? 0 : 1;
		pos[i] = i < 17 ? i : i - 17;
		tok[i] = (i * 71 + 3) % VOCAB;
		want[i] = (uint8_t)(i == 16 || i == 23 || i % 5 == 0);
	}
	struct batch b = { 24, tok, pos, sq, want, 2, NULL };
	for (int s = 0; s <= STEPS; s++) {
		int n = side_step(&sd, &b, out->logits[s], out->ids[s]);
		out->n_rows[s] = n;
		if (n < 2 || s == STEPS)
			break;
		/* the next decode step: one token of each sequence, the greedy ids
		 * of their last rows */
		const int32_t *src = ref ? ref->fed[s + 1] : out->ids[s] + n - 2;
		b.n_tok = 2;
		for (int q = 0; q < 2; q++) {
			tok[q] = src[q] < 0 ? 1 : src[q];
			pos[q] = next[q]++;
			sq[q] = q;
			want[q] = 1;
			out->fed[s + 1][q] = tok[q];
		}
	}
	side_free(&sd);
	return 0;
}

static void
run_case(const char *dir, const char *arch, int heads, int kv, int n_ranks)
{
	char name[64], path[256];
	struct model m;
	struct llmd_err e = LLMD_ERR_INIT;
	struct backend *be;
	struct trace *one = calloc(1, sizeof(*one)), *tp = calloc(1, sizeof(*tp));

	snprintf(name, sizeof(name), "%s-%d-%d", arch, heads, kv);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (one == NULL || tp == NULL ||
	    (access(path, F_OK) != 0 && make_model(dir, name, arch, heads, kv) != 0) ||
	    model_load(&m, path, &e) < 0) {
		printf("FAIL: %s: set-up: %s\n", name, e.msg);
		failures++;
		free(one);
		free(tp);
		return;
	}
	/* the one-GPU backend first and alone: its ops assume its device is the
	 * current one, which the TP ranks change */
	if (backend_cuda_create(&be, &e) < 0 || run_trace(&m, be, NULL, one) < 0 ||
	    backend_cuda_tp_create(n_ranks, &be, &e) < 0 || run_trace(&m, be, one, tp) < 0) {
		printf("FAIL: %s, %d GPUs: %s: %s\n", name, n_ranks, e.field, e.msg);
		failures++;
		model_free(&m);
		free(one);
		free(tp);
		return;
	}
	for (int s = 0; s <= STEPS; s++) {
		int no = one->n_rows[s];
		if (no != tp->n_rows[s] || no < 2) {
			fail("%s, %d GPUs, step %d: %d rows vs %d", name, n_ranks, s, no, tp->n_rows[s]);
			break;
		}
		for (int i = 0; i < no * VOCAB; i++) {
			float lo = one->logits[s][i], lt = tp->logits[s][i];
			if (!(fabsf(lt - lo) <= 0.03f + 0.03f * fabsf(lo)))
				fail("%s, %d GPUs, step %d, logit %d: one GPU %g, tp %g", name, n_ranks, s,
				    i, (double)lo, (double)lt);
		}
		for (int r = 0; r < no; r++) {
			int best;
			float margin;
			top2(one->logits[s] + (size_t)r * VOCAB, VOCAB, &best, &margin);
			if (one->ids[s][r] != best)
				fail("%s, %d GPUs, step %d, row %d: one GPU's greedy id %d is not its "
				    "argmax %d", name, n_ranks, s, r, (int)one->ids[s][r], best);
			if (tp->ids[s][r] != one->ids[s][r] && margin >= 0.05f)
				fail("%s, %d GPUs, step %d, row %d: greedy tp %d, one GPU %d", name,
				    n_ranks, s, r, (int)tp->ids[s][r], (int)one->ids[s][r]);
		}
	}
	printf("test-cuda-tp: %s on %d GPUs: prefill and %d decode steps compared\n", name,
	    n_ranks, STEPS);
	model_free(&m);
	free(one);
	free(tp);
}

int
main(void)
{
	struct backend *probe;
	struct llmd_err e = LLMD_ERR_INIT;
	char dir[64], cmd[128];

	if (!backend_cuda_available()) {
		printf("SKIP: test-cuda-tp: no CUDA GPU on this machine\n");
		return SKIP;
	}
	if (backend_cuda_tp_create(2, &probe, &e) < 0) {
		printf("SKIP: test-cuda-tp: %s: %s\n", e.field, e.msg);
		return SKIP;
	}
	backend_destroy(probe);
	if (fx_tmpdir(dir, sizeof(dir), "test-cuda-tp") < 0)
		return 1;
	run_case(dir, "qwen2", 8, 2, 2);
	run_case(dir, "qwen3", 8, 4, 2);
	e.code = 0;
	if (backend_cuda_tp_create(4, &probe, &e) == 0) {
		backend_destroy(probe);
		run_case(dir, "qwen2", 8, 2, 4);       /* kv heads replicated on 2 GPUs each */
	} else {
		printf("test-cuda-tp: note: 4-GPU case skipped: %s\n", e.msg);
	}
	if (fx_remove_tree(dir) < 0)
		failures++;
	printf("test-cuda-tp: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
#endif
