/*
 * router/pool.c - endpoint pools at run time: creation and in-place update
 * from config, reference counting, readiness, the engine /metrics parser and
 * the 50 ms scraper.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lib/http_client.h"
#include "lib/log.h"
#include "lib/util.h"
#include "router/pool.h"
#include "router/prefix.h"

#define READY_STALENESS_MS 2000

/* ---- config copies ---- */

static void
pool_config_copy(struct pool_config *dst, const struct pool_config *src)
{
	dst->name = xstrdup(src->name);
	dst->n_endpoints = src->n_endpoints;
	dst->endpoints = xcalloc(src->n_endpoints + 1, sizeof(char *));
	for (size_t i = 0; i < src->n_endpoints; i++)
		dst->endpoints[i] = xstrdup(src->endpoints[i]);
	dst->n_models = src->n_models;
	dst->models = xcalloc(src->n_models + 1, sizeof(*dst->models));
	for (size_t i = 0; i < src->n_models; i++) {
		dst->models[i].name = xstrdup(src->models[i].name);
		dst->models[i].crit = src->models[i].crit;
	}
	dst->sched = src->sched;
}

static void
pool_config_free(struct pool_config *c)
{
	struct router_config rc = { .pools = c, .n_pools = 1 };

	/* router_config_release frees the array too: hand it a heap copy */
	rc.pools = xmalloc(sizeof(*c));
	*rc.pools = *c;
	router_config_release(&rc);
	memset(c, 0, sizeof(*c));
}

/* ---- endpoints ---- */

static struct endpoint *
endpoint_new(const char *addr)
{
	struct endpoint *ep = xcalloc(1, sizeof(*ep));
	size_t n = strlen(addr) + 8;

	ep->refs = 1;
	ep->addr = xstrdup(addr);
	ep->base_url = xmalloc(n);
	snprintf(ep->base_url, n, "http://%s", addr);
	ep->slot = -1;
	return ep;
}

void
endpoint_ref(struct endpoint *ep)
{
	ep->refs++;
}

void
endpoint_unref(struct endpoint *ep)
{
	if (ep == NULL || --ep->refs > 0)
		return;
	free(ep->addr);
	free(ep->base_url);
	free(ep);
}

int
endpoint_ready(const struct endpoint *ep, uint64_t now)
{
	if (ep->removed || now < ep->down_until_ms)
		return 0;
	if (ep->m.valid)
		return now - ep->m.at_ms <= READY_STALENESS_MS;
	return ep->scrape_failures == 0;
}

void
endpoint_mark_down(struct endpoint *ep, uint64_t ms)
{
	ep->down_until_ms = now_ms() + ms;
	ep->m.valid = 0;
	if (ep->scrape_failures == 0)
		ep->scrape_failures = 1;
}

static void
endpoint_detach(struct pool *p, struct endpoint *ep)
{
	int scraping = ep->scrape != NULL;

	if (ep->slot >= 0 && p->prefix != NULL)
		prefix_index_drop(p->prefix, ep->slot);
	ep->removed = 1;
	ep->pool = NULL;
	if (scraping) {
		http_client_cancel(ep->scrape);
		ep->scrape = NULL;
		ep->refs--;   /* the scrape's reference; the pool's is dropped below */
	}
	endpoint_unref(ep);
}

/* ---- pools ---- */

static int
free_slot(const struct pool *p)
{
	uint64_t used = 0;

	for (size_t i = 0; i < p->n_eps; i++)
		if (p->eps[i]->slot >= 0)
			used |= 1ULL << p->eps[i]->slot;
	for (int s = 0; s < PREFIX_MAX_SLOTS; s++)
		if (!(used & (1ULL << s)))
			return s;
	return -1;
}

struct pool *
pool_new(const struct pool_config *cfg)
{
	struct pool *p = xcalloc(1, sizeof(*p));

	p->refs = 1;
	p->name = xstrdup(cfg->name);
	p->prefix = prefix_index_new();
	p->cfg.name = xstrdup(cfg->name);
	pool_update(p, cfg);
	return p;
}

void
pool_update(struct pool *p, const struct pool_config *cfg)
{
	struct endpoint **keep = xcalloc(cfg->n_endpoints + 1, sizeof(*keep));
	size_t nkeep = 0;

	for (size_t i = 0; i < cfg->n_endpoints; i++) {
		struct endpoint *ep = NULL;
		int dup = 0;

		for (size_t k = 0; k < nkeep; k++)
			if (strcmp(keep[k]->addr, cfg->endpoints[i]) == 0)
				dup = 1;
		if (dup)
			continue;
		for (size_t j = 0; j < p->n_eps; j++)
			if (p->eps[j] != NULL && strcmp(p->eps[j]->addr, cfg->endpoints[i]) == 0) {
				ep = p->eps[j];
				p->eps[j] = NULL;
				break;
			}
		if (ep == NULL) {
			ep = endpoint_new(cfg->endpoints[i]);
			ep->pool = p;
			log_info("pool %s: endpoint %s added", p->name, ep->addr);
		}
		keep[nkeep++] = ep;
	}
	for (size_t j = 0; j < p->n_eps; j++)
		if (p->eps[j] != NULL) {
			log_info("pool %s: endpoint %s removed", p->name, p->eps[j]->addr);
			endpoint_detach(p, p->eps[j]);
		}
	free(p->eps);
	p->eps = keep;
	p->n_eps = nkeep;
	for (size_t i = 0; i < nkeep; i++)
		if (keep[i]->slot < 0)
			keep[i]->slot = free_slot(p);
	pool_config_free(&p->cfg);
	pool_config_copy(&p->cfg, cfg);
}

void
pool_remove(struct pool *p)
{
	for (size_t j = 0; j < p->n_eps; j++)
		endpoint_detach(p, p->eps[j]);
	p->n_eps = 0;
	p->removed = 1;
}

void
pool_ref(struct pool *p)
{
	p->refs++;
}

void
pool_unref(struct pool *p)
{
	if (p == NULL || --p->refs > 0)
		return;
	for (size_t j = 0; j < p->n_eps; j++)
		endpoint_detach(p, p->eps[j]);
	free(p->eps);
	prefix_index_free(p->prefix);
	pool_config_free(&p->cfg);
	free(p->name);
	free(p);
}

enum criticality
pool_model_criticality(const struct pool *p, const char *model)
{
	for (size_t i = 0; model != NULL && i < p->cfg.n_models; i++)
		if (strcmp(p->cfg.models[i].name, model) == 0)
			return p->cfg.models[i].crit;
	return CRIT_CRITICAL;
}

int
pool_serves_model(const struct pool *p, const char *model)
{
	if (p->cfg.n_models == 0)
		return 1;
	for (size_t i = 0; model != NULL && i < p->cfg.n_models; i++)
		if (strcmp(p->cfg.models[i].name, model) == 0)
			return 1;
	return 0;
}

/* ---- /metrics parsing ---- */

/* The value of label name in "{a="x",b="y"}" into out; 0 or -ENOENT. */
static int
label_value(const char *labels, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	const char *p = labels, *end = labels + len;

	while (p < end) {
		const char *eq = memchr(p, '=', (size_t)(end - p)), *q;
		size_t o = 0;

		if (eq == NULL || eq + 1 >= end || eq[1] != '"')
			return -ENOENT;
		while (p < eq && (*p == ',' || *p == ' ' || *p == '{'))
			p++;
		q = eq + 2;
		if ((size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
			while (q < end && *q != '"') {
				if (*q == '\\' && q + 1 < end)
					q++;
				if (o + 1 < outlen)
					out[o++] = *q;
				q++;
			}
			out[o] = '\0';
			return 0;
		}
		while (q < end && *q != '"') {
			if (*q == '\\' && q + 1 < end)
				q++;
			q++;
		}
		p = q + 1;
	}
	return -ENOENT;
}

int
endpoint_parse_metrics(const char *text, size_t len, struct endpoint_metrics *m)
{
	const char *p = text, *end = text + len;
	int seen_w = 0, seen_r = 0, seen_kv = 0, seen_cc = 0;
	double best_lora = -1;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *name_end = p, *labels = NULL, *val;
		size_t labels_len = 0;
		double v;
		char num[64], *ep;
		size_t nlen;

		if (*p == '#' || le == p)
			goto next;
		while (name_end < le && *name_end != '{' && *name_end != ' ')
			name_end++;
		nlen = (size_t)(name_end - p);
		val = name_end;
		if (val < le && *val == '{') {
			const char *close = val;
			int inq = 0;
			for (; close < le; close++) {
				if (*close == '\\' && inq) {
					close++;
					continue;
				}
				if (*close == '"')
					inq = !inq;
				else if (*close == '}' && !inq)
					break;
			}
			if (close >= le)
				goto next;
			labels = val;
			labels_len = (size_t)(close - val + 1);
			val = close + 1;
		}
		while (val < le && *val == ' ')
			val++;
		{
			size_t vl = 0;
			while (val + vl < le && val[vl] != ' ' && vl + 1 < sizeof(num))
				vl++;
			memcpy(num, val, vl);
			num[vl] = '\0';
		}
		v = strtod(num, &ep);
		if (ep == num)
			goto next;
#define IS(s) (nlen == sizeof(s) - 1 && memcmp(p, s, nlen) == 0)
		if (IS("vllm:num_requests_waiting") && !seen_w) {
			m->waiting = v;
			seen_w = 1;
		} else if (IS("vllm:num_requests_running") && !seen_r) {
			m->running = v;
			seen_r = 1;
		} else if ((IS("vllm:kv_cache_usage_perc") || IS("vllm:gpu_cache_usage_perc")) && !seen_kv) {
			m->kv_usage = v;
			seen_kv = IS("vllm:kv_cache_usage_perc");
		} else if (IS("vllm:cache_config_info") && !seen_cc && labels != NULL) {
			char b[32];
			if (label_value(labels, labels_len, "block_size", b, sizeof(b)) == 0)
				m->block_size = atoi(b);
			if (label_value(labels, labels_len, "num_gpu_blocks", b, sizeof(b)) == 0)
				m->num_gpu_blocks = atol(b);
			seen_cc = 1;
		} else if (IS("vllm:lora_requests_info") && labels != NULL && v > best_lora) {
			char b[32];
			best_lora = v;
			if (label_value(labels, labels_len, "max_lora", b, sizeof(b)) == 0)
				m->max_lora = atoi(b);
			if (label_value(labels, labels_len, "running_lora_adapters", m->running_loras,
			    sizeof(m->running_loras)) < 0)
				m->running_loras[0] = '\0';
			if (label_value(labels, labels_len, "waiting_lora_adapters", m->waiting_loras,
			    sizeof(m->waiting_loras)) < 0)
				m->waiting_loras[0] = '\0';
		}
#undef IS
next:
		p = nl != NULL ? nl + 1 : end;
	}
	return seen_w || seen_r || seen_kv ? 0 : -EINVAL;
}

/* ---- the scraper ---- */

struct scraper {
	struct event_base *base;
	struct http_client *client;
	struct event *tick;
	struct pool **pools;
	size_t n_pools;
};

static void
scrape_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct endpoint *ep = arg;
	struct endpoint_metrics m;

	ep->scrape = NULL;
	if (ep->removed) {
		endpoint_unref(ep);
		return;
	}
	m = ep->m;
	if (e == NULL && resp->status == 200 &&
	    endpoint_parse_metrics(resp->body, resp->body_len, &m) == 0) {
		m.valid = 1;
		m.at_ms = now_ms();
		ep->m = m;
		if (ep->scrape_failures > 0)
			log_info("endpoint %s: metrics back", ep->addr);
		ep->scrape_failures = 0;
	} else {
		if (ep->scrape_failures++ == 0)
			log_warnx("endpoint %s: metrics scrape failed (%s)", ep->addr,
			    e != NULL ? e->msg : "bad response");
		ep->m.valid = 0;
	}
	endpoint_unref(ep);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct scraper *s = arg;
	char url[512];

	(void)fd;
	(void)what;
	for (size_t i = 0; i < s->n_pools; i++) {
		struct pool *p = s->pools[i];
		for (size_t j = 0; j < p->n_eps; j++) {
			struct endpoint *ep = p->eps[j];
			struct llmd_err e = LLMD_ERR_INIT;

			if (ep->scrape != NULL)
				continue;
			snprintf(url, sizeof(url), "%s/metrics", ep->base_url);
			endpoint_ref(ep);
			ep->scrape = http_client_request(s->client, "GET", url, NULL, NULL, 0,
			    scrape_done, ep, &e);
			if (ep->scrape == NULL)
				endpoint_unref(ep);
		}
	}
}

struct scraper *
scraper_new(struct event_base *base, int64_t interval_ms)
{
	struct scraper *s = xcalloc(1, sizeof(*s));
	struct timeval tv = { interval_ms / 1000, (interval_ms % 1000) * 1000 };

	s->base = base;
	s->client = http_client_new(base, &(struct http_client_config){
	    .timeout_ms = 1000, .max_conns_per_host = 1 });
	s->tick = event_new(base, -1, EV_PERSIST, on_tick, s);
	event_add(s->tick, &tv);
	event_active(s->tick, EV_TIMEOUT, 0);
	return s;
}

void
scraper_add(struct scraper *s, struct pool *p)
{
	s->pools = xreallocarray(s->pools, s->n_pools + 1, sizeof(*s->pools));
	s->pools[s->n_pools++] = p;
	pool_ref(p);
	event_active(s->tick, EV_TIMEOUT, 0);
}

void
scraper_del(struct scraper *s, struct pool *p)
{
	for (size_t i = 0; i < s->n_pools; i++)
		if (s->pools[i] == p) {
			for (size_t j = 0; j < p->n_eps; j++)
				if (p->eps[j]->scrape != NULL) {
					http_client_cancel(p->eps[j]->scrape);
					p->eps[j]->scrape = NULL;
					endpoint_unref(p->eps[j]);
				}
			s->pools[i] = s->pools[--s->n_pools];
			pool_unref(p);
			return;
		}
}

void
scraper_free(struct scraper *s)
{
	if (s == NULL)
		return;
	while (s->n_pools > 0)
		scraper_del(s, s->pools[0]);
	event_free(s->tick);
	http_client_free(s->client);
	free(s->pools);
	free(s);
}
