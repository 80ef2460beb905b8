/*
 * tests/unit/test-metrics.c - Prometheus text rendering of counters, gauges
 * and histograms, label escaping and the per-family series limit.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "lib/metrics.h"

static const char *const ML[] = { "model_name", "engine" };

Test(metrics, counter_and_gauge_text)
{
	struct metrics *m = metrics_new();
	struct metric_family *c = metrics_counter(m, "vllm:prompt_tokens_total", "Prefill tokens.", 2, ML);
	struct metric_family *g = metrics_gauge(m, "vllm:num_requests_running", "Running.", 2, ML);
	struct buf b = BUF_INIT;

	metric_add(c, (const char *[]){ "tiny", "0" }, 5);
	metric_add(c, (const char *[]){ "tiny", "0" }, 7);
	metric_set(g, (const char *[]){ "tiny", "0" }, 3);
	metric_set(g, (const char *[]){ "tiny", "0" }, 2);
	cr_assert_float_eq(metric_get(c, (const char *[]){ "tiny", "0" }), 12.0, 1e-9);
	metrics_render(m, &b);
	cr_assert(strstr(b.buf, "# HELP vllm:prompt_tokens Prefill tokens.\n"
	    "# TYPE vllm:prompt_tokens counter\n"
	    "vllm:prompt_tokens_total{model_name=\"tiny\",engine=\"0\"} 12\n") != NULL, "%s", b.buf);
	cr_assert(strstr(b.buf, "# TYPE vllm:num_requests_running gauge\n"
	    "vllm:num_requests_running{model_name=\"tiny\",engine=\"0\"} 2\n") != NULL, "%s", b.buf);
	buf_release(&b);
	metrics_free(m);
}

Test(metrics, histogram_cumulative_buckets)
{
	struct metrics *m = metrics_new();
	static const double bk[] = { 0.1, 1, 10 };
	struct metric_family *h = metrics_histogram(m, "lat_seconds", "Latency.", 0, NULL, bk, 3);
	struct buf b = BUF_INIT;

	metric_observe(h, NULL, 0.05);
	metric_observe(h, NULL, 0.5);
	metric_observe(h, NULL, 0.5);
	metric_observe(h, NULL, 100);
	metrics_render(m, &b);
	cr_assert(strstr(b.buf, "lat_seconds_bucket{le=\"0.1\"} 1\n"
	    "lat_seconds_bucket{le=\"1.0\"} 3\n"
	    "lat_seconds_bucket{le=\"10.0\"} 3\n"
	    "lat_seconds_bucket{le=\"+Inf\"} 4\n"
	    "lat_seconds_sum 101.05\n") != NULL, "%s", b.buf);
	cr_assert(strstr(b.buf, "lat_seconds_count 4\n") != NULL, "%s", b.buf);
	cr_assert_float_eq(metric_get(h, NULL), 4.0, 1e-9);
	buf_release(&b);
	metrics_free(m);
}

Test(metrics, label_escaping_and_series_limit)
{
	struct metrics *m = metrics_new();
	static const char *const L[] = { "name" };
	struct metric_family *c = metrics_counter(m, "x_total", "Help with \\ and\nnewline.", 1, L);
	struct buf b = BUF_INIT;
	char name[32];

	metric_add(c, (const char *[]){ "a\"b\\c\nd" }, 1);
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		metric_add(c, (const char *[]){ name }, 1);
	}
	metrics_render(m, &b);
	cr_assert(strstr(b.buf, "# HELP x Help with \\\\ and\\nnewline.\n") != NULL);
	cr_assert(strstr(b.buf, "x_total{name=\"a\\\"b\\\\c\\nd\"} 1\n") != NULL);
	cr_assert(strstr(b.buf, "name=\"s4094\"") != NULL);
	cr_assert(strstr(b.buf, "name=\"s4095\"") == NULL, "series limit not enforced");
	buf_release(&b);
	metrics_free(m);
}
