/*
 * router/router-config.c - the router's configuration data: defaults, release, and
 * the scheduler config reader (llmd's short form and upstream's
 * EndpointPickerConfig plugin names and weights).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/json.h"
#include "lib/util.h"
#include "router/router-config.h"

void
sched_config_defaults(struct sched_config *s)
{
	memset(s, 0, sizeof(*s));
	s->w_queue = 2;
	s->w_kv = 2;
	s->w_prefix = 3;
	s->picker = PICKER_MAX_SCORE;
	s->saturation_filter = 1;
	s->block_size_tokens = 16;
	s->auto_tune = 1;
	s->max_prefix_blocks = 256;
	s->lru_capacity = 31250;
	s->queue_threshold = 5;
	s->kv_threshold = 0.8;
	s->staleness_ms = 200;
	s->pd_threshold_tokens = 100;
}

int
criticality_parse(const char *s, enum criticality *out)
{
	if (strcasecmp(s, "Critical") == 0)
		*out = CRIT_CRITICAL;
	else if (strcasecmp(s, "Standard") == 0)
		*out = CRIT_STANDARD;
	else if (strcasecmp(s, "Sheddable") == 0)
		*out = CRIT_SHEDDABLE;
	else
		return -EINVAL;
	return 0;
}

const char *
criticality_name(enum criticality c)
{
	switch (c) {
	case CRIT_CRITICAL: return "Critical";
	case CRIT_STANDARD: return "Standard";
	default: return "Sheddable";
	}
}

static int
picker_parse(const char *s, enum picker_kind *out)
{
	if (strcmp(s, "max-score") == 0 || strcmp(s, "max-score-picker") == 0)
		*out = PICKER_MAX_SCORE;
	else if (strcmp(s, "random") == 0 || strcmp(s, "random-picker") == 0)
		*out = PICKER_RANDOM;
	else if (strcmp(s, "round-robin") == 0 || strcmp(s, "round-robin-picker") == 0)
		*out = PICKER_ROUND_ROBIN;
	else
		return -EINVAL;
	return 0;
}

/* Upstream plugin type -> the weight slot it sets; NULL when not a scorer. */
static double *
scorer_slot(struct sched_config *s, const char *type)
{
	if (strcmp(type, "queue-scorer") == 0)
		return &s->w_queue;
	if (strcmp(type, "kv-cache-utilization-scorer") == 0 || strcmp(type, "kv-cache-scorer") == 0)
		return &s->w_kv;
	if (strcmp(type, "prefix-cache-scorer") == 0)
		return &s->w_prefix;
	if (strcmp(type, "lora-affinity-scorer") == 0)
		return &s->w_lora;
	if (strcmp(type, "session-affinity-scorer") == 0)
		return &s->w_session;
	return NULL;
}

static int
prefix_params(const cJSON *p, struct sched_config *s, struct llmd_err *e)
{
	int64_t v;
	int rc;

	if (!cJSON_IsObject(p))
		return 0;
	v = s->block_size_tokens;
	if ((rc = json_get_int64_range(p, "blockSizeTokens", 1, 4096, &v, 0, e)) < 0)
		return rc;
	s->block_size_tokens = (int)v;
	v = s->max_prefix_blocks;
	if ((rc = json_get_int64_range(p, "maxPrefixBlocksToMatch", 1, 1 << 20, &v, 0, e)) < 0)
		return rc;
	s->max_prefix_blocks = (int)v;
	v = (int64_t)s->lru_capacity;
	if ((rc = json_get_int64_range(p, "lruCapacityPerServer", 1, 1 << 26, &v, 0, e)) < 0)
		return rc;
	s->lru_capacity = (size_t)v;
	if ((rc = json_get_bool(p, "autoTune", &s->auto_tune, 0, e)) < 0)
		return rc;
	return 0;
}

/* upstream EndpointPickerConfig: plugins [{type, name?, parameters?}], schedulingProfiles */
static int
parse_epp_config(const cJSON *v, struct sched_config *s, struct llmd_err *e)
{
	const cJSON *plugins = NULL, *profiles = NULL, *it;
	int rc, has_profile_weights = 0;

	if ((rc = json_get_array(v, "plugins", &plugins, 1, e)) < 0)
		return rc;
	if ((rc = json_get_array(v, "schedulingProfiles", &profiles, 0, e)) < 0)
		return rc;
	/* Only what is listed runs. */
	s->w_queue = s->w_kv = s->w_prefix = s->w_lora = s->w_session = 0;
	s->picker = PICKER_MAX_SCORE;
	cJSON_ArrayForEach(it, plugins) {
		const char *type = NULL;
		const cJSON *params = NULL;
		double *slot;

		if (!cJSON_IsObject(it))
			return err_set(e, -EINVAL, "plugins", "entries must be objects");
		if ((rc = json_get_str(it, "type", &type, 1, e)) < 0 ||
		    (rc = json_get_object(it, "parameters", &params, 0, e)) < 0)
			return json_path_prefix(e, "plugins");
		if ((slot = scorer_slot(s, type)) != NULL)
			*slot = 1;   /* a profile weight may follow; default 1 */
		else
			(void)picker_parse(type, &s->picker);
		if ((strcmp(type, "prefix-cache-scorer") == 0 ||
		    strcmp(type, "approx-prefix-cache-producer") == 0) &&
		    (rc = prefix_params(params, s, e)) < 0)
			return json_path_prefix(e, "plugins");
	}
	if (profiles == NULL)
		return 0;
	cJSON_ArrayForEach(it, profiles) {
		const cJSON *refs = NULL, *r;

		if (!cJSON_IsObject(it) || json_get_array(it, "plugins", &refs, 0, e) < 0 || refs == NULL)
			continue;
		cJSON_ArrayForEach(r, refs) {
			const char *ref = NULL, *type = NULL;
			double w = 1;
			const cJSON *p;
			double *slot;

			if (!cJSON_IsObject(r) || json_get_str(r, "pluginRef", &ref, 0, e) < 0 || !ref)
				continue;
			if ((rc = json_get_double(r, "weight", &w, 0, e)) < 0)
				return json_path_prefix(e, "schedulingProfiles");
			/* a pluginRef names a plugin (name defaults to type) */
			cJSON_ArrayForEach(p, plugins) {
				const char *n = NULL, *t = NULL;
				json_get_str(p, "name", &n, 0, NULL);
				json_get_str(p, "type", &t, 0, NULL);
				if ((n != NULL && strcmp(n, ref) == 0) || (n == NULL && t && !strcmp(t, ref)))
					type = t;
			}
			if (type != NULL && (slot = scorer_slot(s, type)) != NULL) {
				*slot = w;
				has_profile_weights = 1;
			}
		}
		break;   /* the first (default/decode) profile decides */
	}
	(void)has_profile_weights;
	return 0;
}

int
sched_config_parse(const cJSON *v, struct sched_config *s, struct llmd_err *e)
{
	const char *picker = NULL;
	int64_t iv;
	int rc;

	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsObject(v))
		return err_set(e, -EINVAL, "", "must be an object");
	if (cJSON_GetObjectItemCaseSensitive(v, "plugins") != NULL)
		return parse_epp_config(v, s, e);
	if ((rc = json_get_double(v, "queue", &s->w_queue, 0, e)) < 0 ||
	    (rc = json_get_double(v, "kvCache", &s->w_kv, 0, e)) < 0 ||
	    (rc = json_get_double(v, "prefixCache", &s->w_prefix, 0, e)) < 0 ||
	    (rc = json_get_double(v, "lora", &s->w_lora, 0, e)) < 0 ||
	    (rc = json_get_double(v, "session", &s->w_session, 0, e)) < 0 ||
	    (rc = json_get_bool(v, "saturationFilter", &s->saturation_filter, 0, e)) < 0 ||
	    (rc = json_get_double(v, "kvCacheUtilThreshold", &s->kv_threshold, 0, e)) < 0 ||
	    (rc = json_get_str(v, "picker", &picker, 0, e)) < 0)
		return rc;
	if (picker != NULL && picker_parse(picker, &s->picker) < 0)
		return err_set(e, -EINVAL, "picker", "must be max-score, random or round-robin");
	{
		const char *pp = NULL;
		int64_t th = s->pd_threshold_tokens;
		if ((rc = json_get_str(v, "prefillPool", &pp, 0, e)) < 0 ||
		    (rc = json_get_int64_range(v, "pdThresholdTokens", 0, 1 << 24, &th, 0, e)) < 0)
			return rc;
		if (pp != NULL)
			snprintf(s->prefill_pool, sizeof(s->prefill_pool), "%s", pp);
		s->pd_threshold_tokens = (int)th;
	}
	iv = s->queue_threshold;
	if ((rc = json_get_int64_range(v, "queueDepthThreshold", 1, 1 << 20, &iv, 0, e)) < 0)
		return rc;
	s->queue_threshold = (int)iv;
	{
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(v, "metricsStalenessThreshold");
		if (cJSON_IsString(st)) {
			if (parse_duration_ms(st->valuestring, &s->staleness_ms) < 0)
				return err_set(e, -EINVAL, "metricsStalenessThreshold", "bad duration");
		} else if (st != NULL && !cJSON_IsNull(st)) {
			return err_set(e, -EINVAL, "metricsStalenessThreshold", "must be a duration");
		}
	}
	if (s->w_queue < 0 || s->w_kv < 0 || s->w_prefix < 0 || s->w_lora < 0 || s->w_session < 0)
		return err_set(e, -EINVAL, "", "weights must be >= 0");
	return prefix_params(v, s, e);
}

static void
pool_release(struct pool_config *p)
{
	free(p->name);
	for (size_t i = 0; i < p->n_endpoints; i++)
		free(p->endpoints[i]);
	free(p->endpoints);
	for (size_t i = 0; i < p->n_models; i++)
		free(p->models[i].name);
	free(p->models);
}

static void
route_release(struct route_config *r)
{
	free(r->name);
	free(r->host);
	free(r->path_prefix);
	free(r->rewrite);
	free(r->model);
	free(r->auth);
	free(r->method);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	for (size_t i = 0; i < r->n_backends; i++)
		free(r->backends[i].pool);
	free(r->backends);
}

void
router_config_release(struct router_config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_pools; i++)
		pool_release(&c->pools[i]);
	free(c->pools);
	for (size_t i = 0; i < c->n_routes; i++)
		route_release(&c->routes[i]);
	free(c->routes);
	memset(c, 0, sizeof(*c));
}

const struct pool_config *
router_config_pool(const struct router_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_pools; i++)
		if (strcmp(c->pools[i].name, name) == 0)
			return &c->pools[i];
	return NULL;
}
