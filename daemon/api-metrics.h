/*
 * daemon/api-metrics.h - the daemon's /metrics (api-metrics.c) and the
 * registry other parts of llmd add their own families to:
 *	static struct metric_family *lat;
 *	lat = metrics_histogram(api_metrics_registry(), "llmd_reconcile_seconds",
 *	    "Reconcile latency.", 1, (const char *[]){ "kind" }, buckets, n);
 *	metric_observe(lat, (const char *[]){ "LLMInferenceService" }, secs);
 */
#ifndef LLMD_DAEMON_API_METRICS_H
#define LLMD_DAEMON_API_METRICS_H

struct http_req;
struct metrics;
struct store;

/* The process-wide registry rendered after the store-derived metrics. */
struct metrics *api_metrics_registry(void);
/* Replies to GET /metrics (the caller checked authorization). */
void api_metrics_reply(struct store *s, struct http_req *req);

#endif
