/*
 * engine/generate.c - prefill + decode loop for one sequence over the paged
 * KV cache (see generate.h). Stop strings are matched on the text of the
 * incremental detokenizer; streamed text holds back any tail that could still
 * become a stop string.
 */
#include "config.h"
#include "engine/generate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"
#include "lib/util.h"

const char *
finish_reason_name(enum finish_reason r)
{
	static const char *const names[] = { [FINISH_LENGTH] = "length", [FINISH_EOS] = "eos",
		[FINISH_STOP] = "stop" };
	return names[r];
}

size_t
stop_holdback(const char *text, size_t len, const char *const *stops, int n)
{
	size_t best = 0;
	for (int i = 0; i < n; i++) {
		size_t sl = strlen(stops[i]);
		for (size_t k = MIN(sl - (sl > 0), len); k > best; k--)
			if (memcmp(text + len - k, stops[i], k) == 0) {
				best = k;
				break;
			}
	}
	return best;
}

/* Earliest occurrence of a stop string in text starting at or after from; -1 if none. */
static long
find_stop(const struct buf *text, size_t from, const char *const *stops, int n)
{
	long best = -1;
	for (int i = 0; i < n; i++) {
		if (stops[i][0] == '\0')
			continue;
		const char *hit = strstr(text->buf + from, stops[i]);
		if (hit && (best < 0 || hit - text->buf < best))
			best = hit - text->buf;
	}
	return best;
}

static double
seconds_since(uint64_t t0_us)
{
	return (double)(now_us() - t0_us) / 1e6;
}

void
gen_result_release(struct gen_result *r)
{
	free(r->ids);
	buf_release(&r->text);
	memset(r, 0, sizeof(*r));
}

/* Runs tokens [0, n) of one sequence at positions start.. ; logits of the last. */
static int
run_tokens(struct forward *fw, struct kv_cache *kv, struct kv_seq *seq, const int32_t *ids,
    int n, int start, float *logits, struct llmd_err *e)
{
	int rc = kv_seq_reserve(kv, seq, start + n);
	if (rc < 0)
		return err_set(e, rc, "kv-cache", "out of KV blocks for %d tokens", start + n);
	int32_t *pos = xmalloc((size_t)n * sizeof(int32_t));
	int32_t *seqi = xcalloc((size_t)n, sizeof(int32_t));
	for (int i = 0; i < n; i++)
		pos[i] = start + i;
	struct batch_seq bs = { seq->blocks, seq->n_blocks };
	struct batch b = { .n_tok = n, .token = ids, .pos = pos, .seq = seqi, .want_logits = NULL,
		.n_seq = 1, .seqs = &bs };
	rc = forward_batch(fw, kv, &b, logits, e);
	free(pos);
	free(seqi);
	return rc < 0 ? rc : 0;
}

int
generate(struct forward *fw, struct kv_cache *kv, const struct tokenizer *tok,
    const int32_t *prompt, size_t n_prompt, const struct gen_params *p, struct gen_result *r,
    struct llmd_err *e)
{
	const struct model_config *c = &fw->m->cfg;
	const int32_t *stop_ids = p->stop_ids ? p->stop_ids : c->eos_ids;
	int n_stop_ids = p->stop_ids ? p->n_stop_ids : c->n_eos;
	int n_stops = tok ? p->n_stop_strings : 0;
	float *logits = xmalloc((size_t)c->vocab * sizeof(float));
	struct kv_seq seq = { NULL, 0, 0 };
	struct detok dt;
	size_t emitted = 0, scanned = 0;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	buf_init(&r->text, 0);
	if (n_prompt == 0) {
		free(logits);
		return err_set(e, -EINVAL, "prompt", "is empty");
	}
	if (n_prompt + (size_t)MAX(p->max_tokens, 0) > (size_t)c->max_pos) {
		free(logits);
		return err_set(e, -EINVAL, "prompt", "%zu prompt tokens + %d new tokens exceed the "
		    "model's %d positions", n_prompt, p->max_tokens, c->max_pos);
	}
	/* seq (n_prompt + max_tokens): prompt, then generated ids (r->ids points into it) */
	int32_t *all = xmalloc((n_prompt + (size_t)MAX(p->max_tokens, 1)) * sizeof(int32_t));
	memcpy(all, prompt, n_prompt * sizeof(int32_t));
	if (tok)
		detok_init(&dt, tok, 1);

	/* prefill: the prompt in chunks of up to max_tok tokens (matrix-matrix) */
	uint64_t t0 = now_us();
	for (size_t off = 0; off < n_prompt && rc == 0; off += (size_t)fw->max_tok) {
		int n = (int)MIN((size_t)fw->max_tok, n_prompt - off);
		rc = run_tokens(fw, kv, &seq, prompt + off, n, (int)off, logits, e);
	}
	r->prefill_s = seconds_since(t0);

	/* decode: one token per step (matrix-vector) */
	t0 = now_us();
	r->finish = FINISH_LENGTH;
	for (int step = 0; step < p->max_tokens && rc == 0; step++) {
		if (p->on_logits)
			p->on_logits(p->logits_ctx, logits, c->vocab);
		int32_t id = p->sample(p->sample_ctx, logits, c->vocab, all, n_prompt + r->n_ids,
		    n_prompt);
		all[n_prompt + r->n_ids++] = id;
		int is_eos = 0;
		for (int i = 0; i < n_stop_ids; i++)
			is_eos |= stop_ids[i] == id;
		if (tok) {
			detok_push(&dt, id, &r->text);
			long hit = n_stops ? find_stop(&r->text, scanned, p->stop_strings, n_stops) : -1;
			if (hit >= 0) {
				buf_setlen(&r->text, (size_t)hit);
				r->finish = FINISH_STOP;
				break;
			}
			size_t hold = stop_holdback(r->text.buf, r->text.len, p->stop_strings, n_stops);
			/* a stop string may start inside the held-back tail only */
			scanned = r->text.len - hold;
			if (p->on_text && scanned > emitted) {
				p->on_text(p->text_ctx, r->text.buf + emitted, scanned - emitted);
				emitted = scanned;
			}
		}
		if (is_eos) {
			r->finish = FINISH_EOS;
			break;
		}
		if (step + 1 < p->max_tokens)
			rc = run_tokens(fw, kv, &seq, &id, 1, (int)(n_prompt + r->n_ids - 1), logits, e);
	}
	if (tok) {
		if (r->finish != FINISH_STOP) {
			detok_flush(&dt, &r->text);
			long hit = n_stops ? find_stop(&r->text, scanned, p->stop_strings, n_stops) : -1;
			if (hit >= 0) {
				buf_setlen(&r->text, (size_t)hit);
				r->finish = FINISH_STOP;
			}
		}
		if (p->on_text && r->text.len > emitted)
			p->on_text(p->text_ctx, r->text.buf + emitted, r->text.len - emitted);
		detok_release(&dt);
	}
	r->decode_s = seconds_since(t0);
	r->ids = xmalloc((r->n_ids ? r->n_ids : 1) * sizeof(int32_t));
	memcpy(r->ids, all + n_prompt, r->n_ids * sizeof(int32_t));
	free(all);
	kv_seq_release(kv, &seq);
	free(logits);
	return rc;
}
