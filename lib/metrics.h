/*
 * lib/metrics.h - a small Prometheus registry: counters, gauges and
 * histograms with fixed label sets, rendered in the text exposition format
 * (version 0.0.4). Updates are thread-safe (one mutex per family; updates are
 * rare compared with compute), so compute threads and event loops share it.
 *
 * Families are declared once with their label names; a series is found (and
 * created on first use) by its label values.
 *   struct metric_family *f = metrics_counter(reg, "vllm:prompt_tokens_total",
 *       "Number of prefill tokens processed.", 2, (const char *[]){"model_name","engine"});
 *   metric_add(f, (const char *[]){"m", "0"}, 5);
 */
#ifndef LLMD_METRICS_H
#define LLMD_METRICS_H

#include <stddef.h>

#include "lib/buf.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics;
struct metric_family;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Label names are copied. A counter's name includes its "_total" suffix. */
struct metric_family *metrics_counter(struct metrics *m, const char *name, const char *help,
    int n_labels, const char *const *label_names);
struct metric_family *metrics_gauge(struct metrics *m, const char *name, const char *help,
    int n_labels, const char *const *label_names);
/* buckets: ascending upper bounds without +Inf (added on output). */
struct metric_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
    int n_labels, const char *const *label_names, const double *buckets, int n_buckets);

/* label_values has n_labels entries (NULL when n_labels is 0). */
void metric_add(struct metric_family *f, const char *const *label_values, double v);
void metric_set(struct metric_family *f, const char *const *label_values, double v);
void metric_observe(struct metric_family *f, const char *const *label_values, double v);
/* Current value of a counter or gauge series (0 when absent); histogram: count. */
double metric_get(struct metric_family *f, const char *const *label_values);

/* Appends every family in registration order. */
void metrics_render(struct metrics *m, struct buf *out);

#endif
