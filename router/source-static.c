/*
 * router/source-static.c - the static configuration source: a YAML or JSON
 * file (--config) listing pools of engine endpoints and the routes to them.
 * Reloaded on SIGHUP by main.c; the format is documented in router-config.h and
 * docs/router.md.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/util.h"
#include "lib/yaml.h"
#include "router/router-config.h"

static int
parse_models(const cJSON *arr, struct pool_config *p, struct llmd_err *e)
{
	const cJSON *it;
	size_t i = 0;

	p->n_models = (size_t)cJSON_GetArraySize(arr);
	p->models = xcalloc(p->n_models + 1, sizeof(*p->models));
	cJSON_ArrayForEach(it, arr) {
		const char *name = NULL, *crit = NULL;
		struct pool_model *m = &p->models[i];

		m->crit = CRIT_CRITICAL;   /* the InferenceModel default */
		if (cJSON_IsString(it)) {
			name = it->valuestring;
		} else if (cJSON_IsObject(it)) {
			if (json_get_str(it, "name", &name, 1, e) < 0 ||
			    json_get_str(it, "criticality", &crit, 0, e) < 0)
				return json_path_prefix_index(e, "models", i);
			if (crit != NULL && criticality_parse(crit, &m->crit) < 0) {
				err_set(e, -EINVAL, "criticality",
				    "must be Critical, Standard or Sheddable");
				return json_path_prefix_index(e, "models", i);
			}
		} else {
			return err_set(e, -EINVAL, "models", "entries must be names or objects");
		}
		if (*name == '\0') {
			err_set(e, -EINVAL, "name", "must not be empty");
			return json_path_prefix_index(e, "models", i);
		}
		m->name = xstrdup(name);
		i++;
	}
	return 0;
}

static int
parse_pool(const cJSON *v, struct pool_config *p, struct llmd_err *e)
{
	const char *name = NULL;
	const cJSON *eps = NULL, *models = NULL, *sched = NULL, *it;
	int rc;

	sched_config_defaults(&p->sched);
	if (!cJSON_IsObject(v))
		return err_set(e, -EINVAL, "", "must be an object");
	if ((rc = json_get_str(v, "name", &name, 1, e)) < 0 ||
	    (rc = json_get_array(v, "endpoints", &eps, 0, e)) < 0 ||
	    (rc = json_get_array(v, "models", &models, 0, e)) < 0)
		return rc;
	p->name = xstrdup(name);
	if (eps != NULL) {
		p->endpoints = xcalloc((size_t)cJSON_GetArraySize(eps) + 1, sizeof(char *));
		cJSON_ArrayForEach(it, eps) {
			char host[256];
			int port;

			if (!cJSON_IsString(it) ||
			    http_parse_hostport(it->valuestring, host, sizeof(host), &port) < 0 ||
			    host[0] == '\0' || port <= 0) {
				err_set(e, -EINVAL, "", "must be HOST:PORT");
				return json_path_prefix_index(e, "endpoints", p->n_endpoints);
			}
			p->endpoints[p->n_endpoints++] = xstrdup(it->valuestring);
		}
	}
	if (models != NULL && (rc = parse_models(models, p, e)) < 0)
		return rc;
	sched = cJSON_GetObjectItemCaseSensitive(v, "scheduler");
	if ((rc = sched_config_parse(sched, &p->sched, e)) < 0)
		return json_path_prefix(e, "scheduler");
	return 0;
}

static int
parse_route(const cJSON *v, struct route_config *r, struct llmd_err *e)
{
	const char *name = NULL, *host = NULL, *prefix = NULL, *rewrite = NULL, *model = NULL;
	const char *pool = NULL, *timeout = NULL, *auth = NULL, *method = NULL;
	const cJSON *backends = NULL, *headers = NULL, *it;
	int rc;

	if (!cJSON_IsObject(v))
		return err_set(e, -EINVAL, "", "must be an object");
	if ((rc = json_get_str(v, "name", &name, 0, e)) < 0 ||
	    (rc = json_get_str(v, "host", &host, 0, e)) < 0 ||
	    (rc = json_get_str(v, "pathPrefix", &prefix, 0, e)) < 0 ||
	    (rc = json_get_str(v, "rewrite", &rewrite, 0, e)) < 0 ||
	    (rc = json_get_str(v, "model", &model, 0, e)) < 0 ||
	    (rc = json_get_str(v, "pool", &pool, 0, e)) < 0 ||
	    (rc = json_get_str(v, "timeout", &timeout, 0, e)) < 0 ||
	    (rc = json_get_str(v, "authorization", &auth, 0, e)) < 0 ||
	    (rc = json_get_str(v, "method", &method, 0, e)) < 0 ||
	    (rc = json_get_object(v, "headers", &headers, 0, e)) < 0 ||
	    (rc = json_get_array(v, "backends", &backends, 0, e)) < 0)
		return rc;
	r->name = xstrdup(name != NULL ? name : pool != NULL ? pool : "route");
	r->host = host != NULL && *host != '\0' && strcmp(host, "*") != 0 ? xstrdup(host) : NULL;
	if (prefix != NULL) {
		size_t n = strlen(prefix);
		if (prefix[0] != '/')
			return err_set(e, -EINVAL, "pathPrefix", "must start with '/'");
		while (n > 1 && prefix[n - 1] == '/')
			n--;
		r->path_prefix = xstrndup(prefix, n);
	} else if (name != NULL && strchr(name, '/') != NULL) {
		r->path_prefix = xmalloc(strlen(name) + 2);
		r->path_prefix[0] = '/';
		strcpy(r->path_prefix + 1, name);
	} else {
		r->path_prefix = xstrdup("/");
	}
	if (rewrite == NULL)
		r->rewrite = xstrdup("/");
	else if (strcmp(rewrite, "keep") != 0)
		r->rewrite = xstrdup(rewrite);
	r->model = model != NULL ? xstrdup(model) : NULL;
	r->auth = auth != NULL ? xstrdup(auth) : NULL;
	r->method = method != NULL ? xstrdup(method) : NULL;
	if (headers != NULL) {
		r->headers = xcalloc((size_t)cJSON_GetArraySize(headers) + 1, sizeof(*r->headers));
		cJSON_ArrayForEach(it, headers) {
			if (!cJSON_IsString(it)) {
				err_set(e, -EINVAL, it->string, "must be a string");
				return json_path_prefix(e, "headers");
			}
			r->headers[r->n_headers].name = xstrdup(it->string);
			r->headers[r->n_headers].value = xstrdup(it->valuestring);
			r->n_headers++;
		}
	}
	if (timeout != NULL && parse_duration_ms(timeout, &r->timeout_ms) < 0)
		return err_set(e, -EINVAL, "timeout", "must be a duration (30s, 500ms)");
	if (backends != NULL) {
		size_t i = 0;
		r->backends = xcalloc((size_t)cJSON_GetArraySize(backends) + 1, sizeof(*r->backends));
		cJSON_ArrayForEach(it, backends) {
			const char *bp = NULL;
			int64_t w = 1;
			if (!cJSON_IsObject(it) || json_get_str(it, "pool", &bp, 1, e) < 0 ||
			    json_get_int64_range(it, "weight", 0, 1000000, &w, 0, e) < 0) {
				if (e != NULL && e->code == 0)
					err_set(e, -EINVAL, "", "must be {pool, weight}");
				return json_path_prefix_index(e, "backends", i);
			}
			r->backends[i].pool = xstrdup(bp);
			r->backends[i].weight = (int)w;
			i++;
		}
		r->n_backends = i;
	} else if (pool != NULL) {
		r->backends = xcalloc(1, sizeof(*r->backends));
		r->backends[0].pool = xstrdup(pool);
		r->backends[0].weight = 1;
		r->n_backends = 1;
	}
	if (r->n_backends == 0)
		return err_set(e, -EINVAL, "pool", "a route needs pool or backends");
	return 0;
}

int
router_config_parse(const cJSON *doc, struct router_config *out, struct llmd_err *e)
{
	const cJSON *pools = NULL, *routes = NULL, *it;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(doc))
		return err_set(e, -EINVAL, "", "the config must be a mapping");
	if ((rc = json_get_array(doc, "pools", &pools, 1, e)) < 0 ||
	    (rc = json_get_array(doc, "routes", &routes, 0, e)) < 0)
		return rc;
	out->pools = xcalloc((size_t)cJSON_GetArraySize(pools) + 1, sizeof(*out->pools));
	cJSON_ArrayForEach(it, pools) {
		size_t i = out->n_pools++;
		if ((rc = parse_pool(it, &out->pools[i], e)) < 0)
			goto fail_pool;
		for (size_t j = 0; j < i; j++)
			if (strcmp(out->pools[j].name, out->pools[i].name) == 0) {
				rc = err_set(e, -EINVAL, "name", "duplicate pool name %s",
				    out->pools[i].name);
				goto fail_pool;
			}
		continue;
fail_pool:
		json_path_prefix_index(e, "pools", i);
		router_config_release(out);
		return rc;
	}
	if (routes == NULL)
		return 0;
	out->routes = xcalloc((size_t)cJSON_GetArraySize(routes) + 1, sizeof(*out->routes));
	cJSON_ArrayForEach(it, routes) {
		size_t i = out->n_routes++;
		if ((rc = parse_route(it, &out->routes[i], e)) < 0)
			goto fail_route;
		for (size_t b = 0; b < out->routes[i].n_backends; b++)
			if (router_config_pool(out, out->routes[i].backends[b].pool) == NULL) {
				rc = err_set(e, -EINVAL, "backends", "unknown pool %s",
				    out->routes[i].backends[b].pool);
				goto fail_route;
			}
		continue;
fail_route:
		json_path_prefix_index(e, "routes", i);
		router_config_release(out);
		return rc;
	}
	return 0;
}

int
router_config_load(const char *path, struct router_config *out, struct llmd_err *e)
{
	cJSON **docs = NULL;
	size_t n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = yaml_parse_file(path, &docs, &n, e)) < 0)
		return rc;
	if (n != 1) {
		yaml_docs_free(docs, n);
		return err_set(e, -EINVAL, path, "expected one document, found %zu", n);
	}
	rc = router_config_parse(docs[0], out, e);
	if (rc < 0)
		err_prefix_field(e, path);
	yaml_docs_free(docs, n);
	return rc;
}
