/*
 * tests/unit/test-router-picker.c - each scorer (queue, kv-cache, prefix,
 * LoRA affinity, session affinity), the saturation detector and filter,
 * and the picker: weighted sum, random tie-break, prefix stickiness, load
 * overriding stickiness, shedding of Sheddable requests and no-endpoint.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "router/picker.h"
#include "router/pool.h"
#include "router/prefix.h"

static struct pool *
make_pool(int n, const struct sched_config *s)
{
	struct pool_config pc = { 0 };
	char *eps[8], buf[8][32];
	struct pool *p;

	pc.name = (char *)"p";
	for (int i = 0; i < n; i++) {
		snprintf(buf[i], sizeof(buf[i]), "10.0.0.%d:8000", i + 1);
		eps[i] = buf[i];
	}
	pc.endpoints = eps;
	pc.n_endpoints = (size_t)n;
	if (s != NULL)
		pc.sched = *s;
	else
		sched_config_defaults(&pc.sched);
	pc.sched.staleness_ms = 600000;   /* a slow test machine never makes metrics stale */
	p = pool_new(&pc);
	for (int i = 0; i < n; i++) {
		p->eps[i]->m.valid = 1;
		p->eps[i]->m.at_ms = now_ms();
	}
	return p;
}

static struct sched_config
only(size_t off)
{
	struct sched_config s;
	sched_config_defaults(&s);
	s.w_queue = s.w_kv = s.w_prefix = s.w_lora = s.w_session = 0;
	*(double *)((char *)&s + off) = 1;
	return s;
}

static void
score_all(struct pool *p, const struct pick_request *r, double *out)
{
	unsigned counts[PREFIX_MAX_SLOTS] = { 0 };
	picker_score(p, r, p->eps, p->n_eps, counts, 0, out);
}

Test(router_scorers, queue_is_min_max_normalised)
{
	struct sched_config s = only(offsetof(struct sched_config, w_queue));
	struct pool *p = make_pool(3, &s);
	struct pick_request r = { 0 };
	double sc[3];

	p->eps[0]->m.waiting = 0;
	p->eps[1]->m.waiting = 5;
	p->eps[2]->m.waiting = 10;
	score_all(p, &r, sc);
	cr_assert_float_eq(sc[0], 1.0, 1e-9);
	cr_assert_float_eq(sc[1], 0.5, 1e-9);
	cr_assert_float_eq(sc[2], 0.0, 1e-9);
	p->eps[0]->m.waiting = p->eps[1]->m.waiting = p->eps[2]->m.waiting = 7;
	score_all(p, &r, sc);
	cr_assert_float_eq(sc[1], 1.0, 1e-9, "all equal: 1");
	pool_unref(p);
}

Test(router_scorers, kv_cache_is_one_minus_usage)
{
	struct sched_config s = only(offsetof(struct sched_config, w_kv));
	struct pool *p = make_pool(2, &s);
	struct pick_request r = { 0 };
	double sc[2];

	p->eps[0]->m.kv_usage = 0.25;
	p->eps[1]->m.kv_usage = 0.9;
	score_all(p, &r, sc);
	cr_assert_float_eq(sc[0], 0.75, 1e-9);
	cr_assert_float_eq(sc[1], 0.1, 1e-9);
	pool_unref(p);
}

Test(router_scorers, prefix_is_share_of_matched_blocks)
{
	struct sched_config s = only(offsetof(struct sched_config, w_prefix));
	struct pool *p = make_pool(2, &s);
	struct pick_request r = { 0 };
	unsigned counts[PREFIX_MAX_SLOTS] = { 0 };
	double sc[2];

	counts[p->eps[0]->slot] = 3;
	counts[p->eps[1]->slot] = 1;
	picker_score(p, &r, p->eps, 2, counts, 4, sc);
	cr_assert_float_eq(sc[0], 0.75, 1e-9);
	cr_assert_float_eq(sc[1], 0.25, 1e-9);
	picker_score(p, &r, p->eps, 2, counts, 0, sc);
	cr_assert_float_eq(sc[0], 0.0, 1e-9, "no hashes: 0 for all");
	pool_unref(p);
}

Test(router_scorers, lora_affinity_levels)
{
	struct sched_config s = only(offsetof(struct sched_config, w_lora));
	struct pool *p = make_pool(4, &s);
	struct pick_request r = { .model = "ad1" };
	double sc[4];

	strcpy(p->eps[0]->m.running_loras, "ad0,ad1");
	p->eps[0]->m.max_lora = 2;
	strcpy(p->eps[1]->m.running_loras, "ad0");
	p->eps[1]->m.max_lora = 4;                  /* a free slot */
	strcpy(p->eps[2]->m.running_loras, "ad0,ad2");
	strcpy(p->eps[2]->m.waiting_loras, "ad1");
	p->eps[2]->m.max_lora = 2;                  /* full, ad1 waiting */
	strcpy(p->eps[3]->m.running_loras, "ad0,ad2");
	p->eps[3]->m.max_lora = 2;                  /* full */
	score_all(p, &r, sc);
	cr_assert_float_eq(sc[0], 1.0, 1e-9);
	cr_assert_float_eq(sc[1], 0.8, 1e-9);
	cr_assert_float_eq(sc[2], 0.6, 1e-9);
	cr_assert_float_eq(sc[3], 0.0, 1e-9);
	pool_unref(p);
}

Test(router_scorers, session_affinity_follows_the_token)
{
	struct sched_config s = only(offsetof(struct sched_config, w_session));
	struct pool *p = make_pool(3, &s);
	char *tok = session_token("p", p->eps[2]->addr);
	struct pick_request r = { .session = tok };
	double sc[3];

	cr_assert_str_eq(tok, "cC8xMC4wLjAuMzo4MDAw", "base64 of p/10.0.0.3:8000");
	score_all(p, &r, sc);
	cr_assert_float_eq(sc[0], 0.0, 1e-9);
	cr_assert_float_eq(sc[2], 1.0, 1e-9);
	free(tok);
	pool_unref(p);
}

Test(router_scorers, weights_sum_unnormalised)
{
	struct pool *p = make_pool(2, NULL);   /* queue 2, kv 2, prefix 3 */
	struct pick_request r = { 0 };
	unsigned counts[PREFIX_MAX_SLOTS] = { 0 };
	double sc[2];

	p->eps[0]->m.waiting = 0;
	p->eps[0]->m.kv_usage = 0.5;
	p->eps[1]->m.waiting = 4;
	p->eps[1]->m.kv_usage = 0;
	counts[p->eps[1]->slot] = 2;
	picker_score(p, &r, p->eps, 2, counts, 2, sc);
	cr_assert_float_eq(sc[0], 2 * 1.0 + 2 * 0.5 + 0, 1e-9);
	cr_assert_float_eq(sc[1], 2 * 0.0 + 2 * 1.0 + 3 * 1.0, 1e-9);
	pool_unref(p);
}

Test(router_saturation, detector_and_filter)
{
	struct sched_config s;
	struct pool *p;
	struct endpoint *c[3];
	uint64_t now = now_ms();

	sched_config_defaults(&s);
	p = make_pool(3, &s);
	for (int i = 0; i < 3; i++)
		p->eps[i]->m.at_ms = now;
	p->eps[0]->m.waiting = 10;          /* 2.0 */
	p->eps[1]->m.kv_usage = 0.4;        /* 0.5 */
	p->eps[2]->m.at_ms = now - 5000;    /* stale: 1.0 */
	cr_assert_float_eq(saturation_endpoint(p->eps[0], &s, now), 2.0, 1e-9);
	cr_assert_float_eq(saturation_endpoint(p->eps[1], &s, now), 0.5, 1e-9);
	cr_assert_float_eq(saturation_endpoint(p->eps[2], &s, now), 1.0, 1e-9);
	cr_assert_float_eq(saturation_pool(p->eps, 3, &s, now), 3.5 / 3, 1e-9);
	cr_assert_float_eq(saturation_pool(p->eps, 0, &s, now), 1.0, 1e-9);
	memcpy(c, p->eps, sizeof(c));
	cr_assert_eq(saturation_filter(c, 3, &s, now), 1);
	cr_assert_eq(c[0], p->eps[1]);
	p->eps[1]->m.kv_usage = 0.85;
	memcpy(c, p->eps, sizeof(c));
	cr_assert_eq(saturation_filter(c, 3, &s, now), 3, "none kept: all stay");
	pool_unref(p);
}

Test(router_picker, sheddable_shed_when_saturated_critical_served)
{
	struct pool *p = make_pool(2, NULL);
	struct pick_request shed = { .crit = CRIT_SHEDDABLE }, crit = { .crit = CRIT_CRITICAL };
	struct pick_result res;

	p->eps[0]->m.waiting = 6;
	p->eps[1]->m.kv_usage = 0.95;
	cr_assert_eq(picker_pick(p, &shed, NULL, 0, &res), -EBUSY);
	cr_assert_eq(picker_pick(p, &crit, NULL, 0, &res), 0);
	cr_assert_not_null(res.ep);
	pick_result_release(&res);
	p->eps[1]->m.kv_usage = 0.1;
	cr_assert_eq(picker_pick(p, &shed, NULL, 0, &res), 0, "not saturated on average");
	cr_assert_eq(res.ep, p->eps[1], "the saturation filter removes the queued one");
	pick_result_release(&res);
	pool_unref(p);
}

Test(router_picker, no_ready_endpoint_and_exclusion)
{
	struct pool *p = make_pool(2, NULL);
	struct pick_request r = { 0 };
	struct pick_result res;

	endpoint_mark_down(p->eps[0], 10000);
	cr_assert_eq(picker_pick(p, &r, NULL, 0, &res), 0);
	cr_assert_eq(res.ep, p->eps[1]);
	pick_result_release(&res);
	cr_assert_eq(picker_pick(p, &r, &p->eps[1], 1, &res), -ENODEV);
	pool_unref(p);
}

Test(router_picker, ties_break_randomly)
{
	struct pool *p = make_pool(4, NULL);
	struct pick_request r = { 0 };
	int hits[4] = { 0 };

	for (int i = 0; i < 400; i++) {
		struct pick_result res;
		cr_assert_eq(picker_pick(p, &r, NULL, 0, &res), 0);
		for (int k = 0; k < 4; k++)
			hits[k] += res.ep == p->eps[k];
		pick_result_release(&res);
	}
	for (int k = 0; k < 4; k++)
		cr_assert_gt(hits[k], 40, "endpoint %d picked %d times of 400", k, hits[k]);
	pool_unref(p);
}

Test(router_picker, same_prefix_sticks_until_load_differs)
{
	struct pool *p = make_pool(4, NULL);
	char prompt[2048];
	struct pick_request r = { .model = "m", .prompt = prompt };
	struct pick_result res;
	struct endpoint *first;

	memset(prompt, 'x', sizeof(prompt) - 1);
	prompt[sizeof(prompt) - 1] = '\0';
	r.prompt_len = strlen(prompt);
	cr_assert_eq(picker_pick(p, &r, NULL, 0, &res), 0);
	cr_assert_gt(res.n_hashes, 0);
	first = res.ep;
	picker_commit(p, &res);
	pick_result_release(&res);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(picker_pick(p, &r, NULL, 0, &res), 0);
		cr_assert_eq(res.ep, first, "prefix affinity");
		cr_assert_float_eq(res.score, 2 + 2 + 3, 1e-9);
		picker_commit(p, &res);
		pick_result_release(&res);
	}
	/* the sticky endpoint gets a long queue: others win (queue + filter) */
	first->m.waiting = 8;
	cr_assert_eq(picker_pick(p, &r, NULL, 0, &res), 0);
	cr_assert_neq(res.ep, first);
	pick_result_release(&res);
	pool_unref(p);
}

Test(router_picker, round_robin_and_random_pickers)
{
	struct sched_config s;
	struct pool *p;
	struct pick_request r = { 0 };
	struct pick_result res;

	sched_config_defaults(&s);
	s.picker = PICKER_ROUND_ROBIN;
	p = make_pool(3, &s);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(picker_pick(p, &r, NULL, 0, &res), 0);
		cr_assert_eq(res.ep, p->eps[i % 3]);
		pick_result_release(&res);
	}
	pool_unref(p);
}
