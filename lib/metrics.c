/*
 * lib/metrics.c - Prometheus counters, gauges and histograms (see metrics.h).
 */
#include "config.h"
#include "lib/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define METRIC_MAX_LABELS 16
#define METRIC_MAX_SERIES 4096 /* per family: a client must not grow this without bound */

struct metric_series {
	char **values;          /* n_labels label values */
	double value;           /* counter/gauge; histogram sum */
	unsigned long long count;
	unsigned long long *bucket_counts; /* histogram, cumulative on output */
	struct metric_series *next;
};

struct metric_family {
	enum metric_type type;
	char *name;
	char *help;
	int n_labels;
	char **label_names;
	double *buckets;
	int n_buckets;
	pthread_mutex_t lock;
	struct metric_series *series, **tail;
	size_t n_series;
	struct metric_family *next;
};

struct metrics {
	pthread_mutex_t lock;
	struct metric_family *families, **tail;
};

struct metrics *
metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	m->tail = &m->families;
	return m;
}

static void
series_free(struct metric_series *s, int n_labels)
{
	for (int i = 0; i < n_labels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->bucket_counts);
	free(s);
}

void
metrics_free(struct metrics *m)
{
	struct metric_family *f, *fn;

	if (m == NULL)
		return;
	for (f = m->families; f; f = fn) {
		struct metric_series *s, *sn;

		fn = f->next;
		for (s = f->series; s; s = sn) {
			sn = s->next;
			series_free(s, f->n_labels);
		}
		for (int i = 0; i < f->n_labels; i++)
			free(f->label_names[i]);
		free(f->label_names);
		free(f->buckets);
		free(f->name);
		free(f->help);
		pthread_mutex_destroy(&f->lock);
		free(f);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct metric_family *
family_new(struct metrics *m, enum metric_type type, const char *name, const char *help,
    int n_labels, const char *const *label_names)
{
	struct metric_family *f = xcalloc(1, sizeof(*f));

	if (n_labels < 0 || n_labels > METRIC_MAX_LABELS)
		fatalx("metrics: %s: bad label count %d", name, n_labels);
	f->type = type;
	f->name = xstrdup(name);
	f->help = xstrdup(help ? help : "");
	f->n_labels = n_labels;
	f->label_names = xcalloc((size_t)(n_labels ? n_labels : 1), sizeof(char *));
	for (int i = 0; i < n_labels; i++)
		f->label_names[i] = xstrdup(label_names[i]);
	pthread_mutex_init(&f->lock, NULL);
	f->tail = &f->series;
	pthread_mutex_lock(&m->lock);
	*m->tail = f;
	m->tail = &f->next;
	pthread_mutex_unlock(&m->lock);
	return f;
}

struct metric_family *
metrics_counter(struct metrics *m, const char *name, const char *help, int n_labels,
    const char *const *label_names)
{
	return family_new(m, METRIC_COUNTER, name, help, n_labels, label_names);
}

struct metric_family *
metrics_gauge(struct metrics *m, const char *name, const char *help, int n_labels,
    const char *const *label_names)
{
	return family_new(m, METRIC_GAUGE, name, help, n_labels, label_names);
}

struct metric_family *
metrics_histogram(struct metrics *m, const char *name, const char *help, int n_labels,
    const char *const *label_names, const double *buckets, int n_buckets)
{
	struct metric_family *f = family_new(m, METRIC_HISTOGRAM, name, help, n_labels, label_names);

	f->n_buckets = n_buckets;
	f->buckets = xcalloc((size_t)(n_buckets ? n_buckets : 1), sizeof(double));
	memcpy(f->buckets, buckets, (size_t)n_buckets * sizeof(double));
	return f;
}

/* Caller holds f->lock. Returns NULL when the series limit is reached. */
static struct metric_series *
series_get(struct metric_family *f, const char *const *vals, int create)
{
	struct metric_series *s;

	for (s = f->series; s; s = s->next) {
		int i;
		for (i = 0; i < f->n_labels; i++)
			if (strcmp(s->values[i], vals[i] ? vals[i] : "") != 0)
				break;
		if (i == f->n_labels)
			return s;
	}
	if (!create || f->n_series >= METRIC_MAX_SERIES)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->values = xcalloc((size_t)(f->n_labels ? f->n_labels : 1), sizeof(char *));
	for (int i = 0; i < f->n_labels; i++)
		s->values[i] = xstrdup(vals[i] ? vals[i] : "");
	if (f->type == METRIC_HISTOGRAM)
		s->bucket_counts = xcalloc((size_t)f->n_buckets + 1, sizeof(unsigned long long));
	*f->tail = s;
	f->tail = &s->next;
	f->n_series++;
	return s;
}

void
metric_add(struct metric_family *f, const char *const *vals, double v)
{
	struct metric_series *s;

	pthread_mutex_lock(&f->lock);
	if ((s = series_get(f, vals, 1)) != NULL)
		s->value += v;
	pthread_mutex_unlock(&f->lock);
}

void
metric_set(struct metric_family *f, const char *const *vals, double v)
{
	struct metric_series *s;

	pthread_mutex_lock(&f->lock);
	if ((s = series_get(f, vals, 1)) != NULL)
		s->value = v;
	pthread_mutex_unlock(&f->lock);
}

void
metric_observe(struct metric_family *f, const char *const *vals, double v)
{
	struct metric_series *s;

	pthread_mutex_lock(&f->lock);
	if ((s = series_get(f, vals, 1)) != NULL) {
		int i;
		for (i = 0; i < f->n_buckets; i++)
			if (v <= f->buckets[i])
				break;
		s->bucket_counts[i]++;
		s->count++;
		s->value += v;
	}
	pthread_mutex_unlock(&f->lock);
}

double
metric_get(struct metric_family *f, const char *const *vals)
{
	struct metric_series *s;
	double v = 0;

	pthread_mutex_lock(&f->lock);
	if ((s = series_get(f, vals, 0)) != NULL)
		v = f->type == METRIC_HISTOGRAM ? (double)s->count : s->value;
	pthread_mutex_unlock(&f->lock);
	return v;
}

static void
add_escaped(struct buf *out, const char *s, int in_label)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_adds(out, "\\\\");
		else if (*s == '\n')
			buf_adds(out, "\\n");
		else if (*s == '"' && in_label)
			buf_adds(out, "\\\"");
		else
			buf_addch(out, *s);
	}
}

static void
add_number(struct buf *out, double v)
{
	if (isinf(v))
		buf_adds(out, v > 0 ? "+Inf" : "-Inf");
	else if (isnan(v))
		buf_adds(out, "NaN");
	else if (v == (double)(long long)v && fabs(v) < 1e15)
		buf_addf(out, "%lld", (long long)v);
	else {
		/* shortest text that reads back as the same double */
		char t[40];
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(t, sizeof(t), "%.*g", prec, v);
			if (strtod(t, NULL) == v)
				break;
		}
		buf_adds(out, t);
	}
}

/* {a="x",b="y"[,le="..."]} */
static void
add_labels(struct buf *out, const struct metric_family *f, const struct metric_series *s,
    const char *le)
{
	int any = 0;

	if (f->n_labels == 0 && le == NULL)
		return;
	buf_addch(out, '{');
	for (int i = 0; i < f->n_labels; i++) {
		buf_addf(out, "%s%s=\"", any++ ? "," : "", f->label_names[i]);
		add_escaped(out, s->values[i], 1);
		buf_addch(out, '"');
	}
	if (le != NULL)
		buf_addf(out, "%sle=\"%s\"", any ? "," : "", le);
	buf_addch(out, '}');
}

void
metrics_render(struct metrics *m, struct buf *out)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	struct metric_family *f;

	pthread_mutex_lock(&m->lock);
	for (f = m->families; f; f = f->next) {
		/* Counters are declared by their base name in HELP/TYPE. */
		size_t nl = strlen(f->name);
		int strip = f->type == METRIC_COUNTER && nl > 6 &&
		    strcmp(f->name + nl - 6, "_total") == 0;
		int base_len = (int)(strip ? nl - 6 : nl);

		buf_addf(out, "# HELP %.*s ", base_len, f->name);
		add_escaped(out, f->help, 0);
		buf_addf(out, "\n# TYPE %.*s %s\n", base_len, f->name, type_names[f->type]);
		pthread_mutex_lock(&f->lock);
		for (struct metric_series *s = f->series; s; s = s->next) {
			if (f->type != METRIC_HISTOGRAM) {
				buf_adds(out, f->name);
				add_labels(out, f, s, NULL);
				buf_addch(out, ' ');
				add_number(out, s->value);
				buf_addch(out, '\n');
				continue;
			}
			unsigned long long cum = 0;
			for (int i = 0; i <= f->n_buckets; i++) {
				char le[64];
				struct buf tmp = BUF_INIT;

				cum += s->bucket_counts[i];
				if (i < f->n_buckets) {
					add_number(&tmp, f->buckets[i]);
					snprintf(le, sizeof(le), "%s", tmp.buf);
					/* Prometheus client libraries print 1.0, not 1 */
					if (strchr(le, '.') == NULL && strchr(le, 'e') == NULL)
						strncat(le, ".0", sizeof(le) - strlen(le) - 1);
				} else {
					snprintf(le, sizeof(le), "+Inf");
				}
				buf_release(&tmp);
				buf_addf(out, "%s_bucket", f->name);
				add_labels(out, f, s, le);
				buf_addf(out, " %llu\n", cum);
			}
			buf_addf(out, "%s_sum", f->name);
			add_labels(out, f, s, NULL);
			buf_addch(out, ' ');
			add_number(out, s->value);
			buf_addf(out, "\n%s_count", f->name);
			add_labels(out, f, s, NULL);
			buf_addf(out, " %llu\n", s->count);
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&m->lock);
}
