/*
 * router/saturation.c - the utilization saturation detector (upstream
 * utilization-detector): per-endpoint score max(waiting/queue threshold,
 * kv/kv threshold), stale metrics counting as fully saturated; the pool's
 * saturation is the mean; the filter keeps unsaturated endpoints.
 */
#include "config.h"

#include "lib/util.h"
#include "router/picker.h"

static int
fresh(const struct endpoint *ep, const struct sched_config *s, uint64_t now)
{
	return ep->m.valid && now - ep->m.at_ms <= (uint64_t)s->staleness_ms;
}

double
saturation_endpoint(const struct endpoint *ep, const struct sched_config *s, uint64_t now)
{
	if (!fresh(ep, s, now))
		return 1.0;
	return MAX(ep->m.waiting / (double)s->queue_threshold, ep->m.kv_usage / s->kv_threshold);
}

double
saturation_pool(struct endpoint *const *c, size_t n, const struct sched_config *s, uint64_t now)
{
	double sum = 0;

	if (n == 0)
		return 1.0;
	for (size_t i = 0; i < n; i++)
		sum += saturation_endpoint(c[i], s, now);
	return sum / (double)n;
}

size_t
saturation_filter(struct endpoint **c, size_t n, const struct sched_config *s, uint64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (fresh(c[i], s, now) && c[i]->m.waiting < s->queue_threshold &&
		    c[i]->m.kv_usage < s->kv_threshold)
			k++;
	if (k == 0)
		return n;
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (fresh(c[i], s, now) && c[i]->m.waiting < s->queue_threshold &&
		    c[i]->m.kv_usage < s->kv_threshold)
			c[k++] = c[i];
	return k;
}
