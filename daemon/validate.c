/*
 * daemon/validate.c - LLMInferenceService / LLMInferenceServiceConfig
 * admission: schema, webhook rules V1-V10 (with llmd's deviations written
 * in docs/upstream-differences.md), model URIs and names.
 *
 * All problems are collected; the first one's field and message go into
 * e->field/e->msg and the others are appended to e->msg as "; field: msg".
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon/naming.h"
#include "daemon/reconcile.h"
#include "daemon/template.h"
#include "daemon/validate.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "lib/json.h"

struct verr {
	struct llmd_err *e;
	int count;
	struct buf rest;
};

static void verr_add(struct verr *v, const char *field, const char *fmt, ...) LLMD_PRINTF(3, 4);

static void
verr_add(struct verr *v, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v->count++ == 0)
		err_set(v->e, -EINVAL, field, "%s", msg);
	else
		buf_addf(&v->rest, "; %s: %s", field, msg);
}

static int
verr_finish(struct verr *v)
{
	int rc = v->count ? -EINVAL : 0;

	if (v->count > 1 && v->e) {
		size_t l = strlen(v->e->msg);

		snprintf(v->e->msg + l, sizeof(v->e->msg) - l, "%s", v->rest.buf);
	}
	buf_release(&v->rest);
	return rc;
}

static int
present(const cJSON *o, const char *k)
{
	const cJSON *v = json_member(o, k);

	return v && !cJSON_IsNull(v);
}

static int
is_int(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
	    fabs(v->valuedouble) < 2147483648.0;
}

/* Checks an optional object-typed field; returns it or NULL. */
static const cJSON *
want_object(struct verr *v, const cJSON *o, const char *k, const char *path)
{
	const cJSON *x = json_member(o, k);

	if (!x || cJSON_IsNull(x))
		return NULL;
	if (!cJSON_IsObject(x)) {
		verr_add(v, path, "must be an object");
		return NULL;
	}
	return x;
}

/* Does path have a ".." segment (escaping a claim, a cache or a bucket prefix)? */
static int
has_dotdot_segment(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return 1;
	return 0;
}

int
validate_model_uri(const char *uri, struct llmd_err *e)
{
	static const char *const schemes[] = { "hf://", "s3://", "gs://", "pvc://", "file://" };
	const char *sep = strstr(uri, "://");
	const char *rest;

	if (!sep)
		return err_set(e, -EINVAL, "", "invalid model URI: %s", uri);
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
		size_t n = strlen(schemes[i]);

		if (strncmp(uri, schemes[i], n) != 0)
			continue;
		rest = uri + n;
		if (has_dotdot_segment(rest))
			return err_set(e, -EINVAL, "", "model URI %s has a \"..\" path segment", uri);
		if (i == 4) {
			if (rest[0] != '/' || rest[1] == '\0')
				return err_set(e, -EINVAL, "",
				    "file:// model URI needs an absolute path (file:///path): %s", uri);
			return 0;
		}
		if (rest[0] == '\0' || rest[0] == '/')
			return err_set(e, -EINVAL, "", "model URI %s has no %s", uri,
			    i == 0 ? "repository" : i == 3 ? "claim name" : "bucket");
		if (i == 0 && !strchr(rest, '/'))
			return err_set(e, -EINVAL, "", "hf:// model URI must be hf://<org>/<repo>: %s", uri);
		return 0;
	}
	return err_set(e, -EINVAL, "", "unsupported schema in model URI: %s", uri);
}

static void
check_model_uri(struct verr *v, const cJSON *m, const char *path, int required)
{
	const cJSON *uri = json_member(m, "uri");
	char f[256];
	struct llmd_err ue = LLMD_ERR_INIT;

	snprintf(f, sizeof(f), "%s.uri", path);
	if (!uri || cJSON_IsNull(uri)) {
		if (required)
			verr_add(v, f, "required value");
		return;
	}
	if (!cJSON_IsString(uri)) {
		verr_add(v, f, "must be a string");
		return;
	}
	if (strstr(uri->valuestring, "{{"))
		return;     /* rendered later */
	if (validate_model_uri(uri->valuestring, &ue) < 0)
		verr_add(v, f, "%s", ue.msg);
}

static void
check_model(struct verr *v, const cJSON *spec, int is_config)
{
	const cJSON *m = want_object(v, spec, "model", "spec.model");
	const cJSON *x, *lora, *ad;
	int i = 0;

	if (!m)
		return;
	check_model_uri(v, m, "spec.model", !is_config);
	x = json_member(m, "name");
	if (x && !cJSON_IsNull(x) && (!cJSON_IsString(x) || x->valuestring[0] == '\0'))
		verr_add(v, "spec.model.name", "must be a non-empty string");
	x = json_member(m, "criticality");
	if (x && !cJSON_IsNull(x) && (!cJSON_IsString(x) ||
	    (strcmp(x->valuestring, "Critical") != 0 && strcmp(x->valuestring, "Standard") != 0 &&
	    strcmp(x->valuestring, "Sheddable") != 0)))
		verr_add(v, "spec.model.criticality",
		    "Unsupported value: must be one of \"Critical\", \"Standard\", \"Sheddable\"");
	lora = want_object(v, m, "lora", "spec.model.lora");
	ad = json_member(lora, "adapters");
	if (ad && !cJSON_IsArray(ad)) {
		verr_add(v, "spec.model.lora.adapters", "must be a list");
		return;
	}
	cJSON_ArrayForEach(x, ad) {
		char p[96];
		const cJSON *an = json_member(x, "name"), *y;

		snprintf(p, sizeof(p), "spec.model.lora.adapters[%d]", i++);
		if (!cJSON_IsObject(x)) {
			verr_add(v, p, "must be an object");
			continue;
		}
		check_model_uri(v, x, p, 1);
		if (!an || cJSON_IsNull(an))
			continue;
		strncat(p, ".name", sizeof(p) - strlen(p) - 1);
		if (!cJSON_IsString(an) || !naming_is_dns1123_subdomain(an->valuestring)) {
			verr_add(v, p, "must be a lowercase RFC 1123 name (it becomes /mnt/lora/<name>)");
			continue;
		}
		for (y = ad->child; y != x; y = y->next) {
			const cJSON *yn = json_member(y, "name");

			if (cJSON_IsString(yn) && strcmp(yn->valuestring, an->valuestring) == 0) {
				verr_add(v, p, "Duplicate value: \"%s\"", an->valuestring);
				break;
			}
		}
	}
}

static int
pval(const cJSON *par, const char *k)
{
	const cJSON *x = json_member(par, k);

	return is_int(x) ? x->valueint : 0;
}

int
validate_group_size(const cJSON *w)
{
	const cJSON *par = json_member(w, "parallelism");
	int data = pval(par, "data"), local = pval(par, "dataLocal"), pp = pval(par, "pipeline");

	if (!par || cJSON_IsNull(par))
		return 1;
	if (data > 0 || local > 0) {
		int s = MAX(data, 1) / MAX(local, 1);

		return MAX(s, 1);
	}
	if (pp > 0)
		return pp;
	return 1;
}

static void
check_podspec(struct verr *v, const cJSON *w, const char *k, const char *base)
{
	char p[128];
	const cJSON *ps, *cs, *c;
	static const char *const lists[] = { "containers", "initContainers" };

	snprintf(p, sizeof(p), "%s.%s", base, k);
	ps = want_object(v, w, k, p);
	if (!ps)
		return;
	for (size_t li = 0; li < ARRAY_SIZE(lists); li++) {
		int i = 0;
		char lp[160];

		snprintf(lp, sizeof(lp), "%s.%s", p, lists[li]);
		cs = json_member(ps, lists[li]);
		if (cs && !cJSON_IsNull(cs) && !cJSON_IsArray(cs)) {
			verr_add(v, lp, "must be a list");
			continue;
		}
		cJSON_ArrayForEach(c, cs) {
			char cp[200];
			const cJSON *nm = json_member(c, "name");

			snprintf(cp, sizeof(cp), "%s[%d].name", lp, i++);
			if (!cJSON_IsString(nm) || nm->valuestring[0] == '\0')
				verr_add(v, cp, "required value");
		}
	}
}

/*
 * The WorkloadSpec fields of spec or spec.prefill. The cross-field webhook
 * rules (V5-V8) apply to services only: a config is a partial spec.
 */
static void
check_workload(struct verr *v, const cJSON *w, const char *b, int is_config)
{
	const cJSON *par, *x;
	char f[160];
	static const char *const ints[] = { "tensor", "pipeline", "data", "dataLocal", "dataRPCPort" };
	int dp, pp;

	snprintf(f, sizeof(f), "%s.replicas", b);
	x = json_member(w, "replicas");
	if (x && !cJSON_IsNull(x) && (!is_int(x) || x->valueint < 0))
		verr_add(v, f, "must be an integer >= 0");
	check_podspec(v, w, "template", b);
	check_podspec(v, w, "worker", b);
	snprintf(f, sizeof(f), "%s.parallelism", b);
	par = want_object(v, w, "parallelism", f);
	for (size_t i = 0; par && i < ARRAY_SIZE(ints); i++) {
		x = json_member(par, ints[i]);
		snprintf(f, sizeof(f), "%s.parallelism.%s", b, ints[i]);
		if (!x || cJSON_IsNull(x))
			continue;
		if (!is_int(x)) {
			verr_add(v, f, "must be an integer");
		} else if (i == 4 && (x->valueint < 1 || x->valueint > 65535)) {
			verr_add(v, f, "must be between 1 and 65535");
		} else if (x->valueint < 1) {
			if (i == 0)
				verr_add(v, f, "tensor parallelism must be greater than 0");
			else
				verr_add(v, f, "%s parallelism must be greater than 0", ints[i]);
		}
	}
	x = json_member(par, "expert");
	snprintf(f, sizeof(f), "%s.parallelism.expert", b);
	if (x && !cJSON_IsNull(x) && !cJSON_IsBool(x))
		verr_add(v, f, "must be a boolean");
	if (is_config)
		return;
	dp = present(par, "data") || present(par, "dataLocal");
	pp = present(par, "pipeline");
	if (present(w, "worker") && (!par || (!dp && !pp))) {
		snprintf(f, sizeof(f), "%s.worker", b);
		verr_add(v, f, "when worker is specified, parallelism must be configured for either "
		    "data parallelism or pipeline parallelism");
	}
	if (dp && pp) {
		snprintf(f, sizeof(f), "%s.parallelism", b);
		verr_add(v, f, "cannot set both pipeline parallelism and data parallelism (data or "
		    "dataLocal) simultaneously");
	}
	if (present(par, "data") && !present(par, "dataLocal")) {
		snprintf(f, sizeof(f), "%s.parallelism.dataLocal", b);
		verr_add(v, f, "dataLocal must be set when data is set");
	}
	if (present(par, "dataLocal") && !present(par, "data")) {
		snprintf(f, sizeof(f), "%s.parallelism.data", b);
		verr_add(v, f, "data must be set when dataLocal is set");
	}
}

static void
check_refs(struct verr *v, const cJSON *refs, const char *path)
{
	const cJSON *r;
	int i = 0;

	if (!refs || cJSON_IsNull(refs))
		return;
	if (!cJSON_IsArray(refs)) {
		verr_add(v, path, "must be a list");
		return;
	}
	cJSON_ArrayForEach(r, refs) {
		char f[160];
		const cJSON *nm = json_member(r, "name"), *ns = json_member(r, "namespace");

		snprintf(f, sizeof(f), "%s[%d].name", path, i);
		if (!cJSON_IsString(nm) || !naming_is_dns1123_subdomain(nm->valuestring))
			verr_add(v, f, "must be a valid object name");
		snprintf(f, sizeof(f), "%s[%d].namespace", path, i++);
		if (ns && !cJSON_IsNull(ns) && (!cJSON_IsString(ns) ||
		    (ns->valuestring[0] && !naming_is_dns1123_label(ns->valuestring))))
			verr_add(v, f, "must be a valid namespace name");
	}
}

static void
check_router(struct verr *v, const cJSON *spec)
{
	const cJSON *router = want_object(v, spec, "router", "spec.router");
	const cJSON *route, *gw, *http, *ing, *sched, *pool;

	if (!router)
		return;
	route = want_object(v, router, "route", "spec.router.route");
	gw = want_object(v, router, "gateway", "spec.router.gateway");
	ing = want_object(v, router, "ingress", "spec.router.ingress");
	sched = want_object(v, router, "scheduler", "spec.router.scheduler");
	http = want_object(v, route, "http", "spec.router.route.http");
	check_refs(v, json_member(gw, "refs"), "spec.router.gateway.refs");
	check_refs(v, json_member(http, "refs"), "spec.router.route.http.refs");
	check_refs(v, json_member(ing, "refs"), "spec.router.ingress.refs");
	want_object(v, http, "spec", "spec.router.route.http.spec");
	pool = want_object(v, sched, "pool", "spec.router.scheduler.pool");
	want_object(v, pool, "spec", "spec.router.scheduler.pool.spec");
	want_object(v, pool, "ref", "spec.router.scheduler.pool.ref");
	check_podspec(v, sched, "template", "spec.router.scheduler");
	/* V2 */
	if (present(http, "refs") && present(http, "spec"))
		verr_add(v, "spec.router.route.http", "unsupported configuration: cannot use both "
		    "custom HTTPRoute refs ('spec.router.route.http.refs') and an inline route spec "
		    "('spec.router.route.http.spec'); choose one");
	/* V3 */
	if (present(http, "refs") && gw && !present(gw, "refs"))
		verr_add(v, "spec.router.route.http.refs", "unsupported configuration: custom HTTP "
		    "routes ('spec.router.route.http.refs') cannot be used with a managed gateway "
		    "('spec.router.gateway'); either remove 'spec.router.route.http.refs' or set "
		    "'spec.router.gateway.refs'");
	/* llmd: Ingress is not served; it may not be combined with the Gateway API fields. */
	if (ing && (route || gw))
		verr_add(v, "spec.router.ingress", "unsupported configuration: "
		    "'spec.router.ingress' cannot be combined with 'spec.router.route' or "
		    "'spec.router.gateway'");
	if (present(pool, "ref") && present(pool, "spec"))
		verr_add(v, "spec.router.scheduler.pool", "unsupported configuration: cannot use "
		    "both an existing pool ('ref') and a pool spec ('spec'); choose one");
}

static void
check_spec(struct verr *v, const cJSON *obj, int is_config)
{
	static const char *const known[] = { "model", "replicas", "parallelism", "template",
		"worker", "router", "prefill", "baseRefs" };
	const cJSON *spec = json_member(obj, "spec"), *x, *prefill;

	if (!spec || cJSON_IsNull(spec)) {
		if (!is_config)
			verr_add(v, "spec", "required value");
		return;
	}
	if (!cJSON_IsObject(spec)) {
		verr_add(v, "spec", "must be an object");
		return;
	}
	cJSON_ArrayForEach(x, spec) {
		size_t i;
		char f[160];

		for (i = 0; i < ARRAY_SIZE(known); i++)
			if (strcmp(x->string, known[i]) == 0)
				break;
		snprintf(f, sizeof(f), "spec.%s", x->string);
		if (i == ARRAY_SIZE(known))
			verr_add(v, f, "unknown field");
	}
	check_model(v, spec, is_config);
	check_workload(v, spec, "spec", is_config);
	prefill = want_object(v, spec, "prefill", "spec.prefill");
	if (prefill)
		check_workload(v, prefill, "spec.prefill", is_config);
	check_router(v, spec);
	x = json_member(spec, "baseRefs");
	if (x && !cJSON_IsNull(x)) {
		if (is_config && (!cJSON_IsArray(x) || cJSON_GetArraySize(x) > 0))
			verr_add(v, "spec.baseRefs", "spec.baseRefs is not a permitted field in "
			    "LLMInferenceServiceConfig, support for recursive refs has been disabled");
		else
			check_refs(v, x, "spec.baseRefs");
	}
}

static void
check_meta(struct verr *v, const cJSON *obj, const char *kind)
{
	const cJSON *av = json_member(obj, "apiVersion"), *k = json_member(obj, "kind");
	const cJSON *md = json_member(obj, "metadata"), *nm = json_member(md, "name"), *ns = json_member(md, "namespace");

	if (av && (!cJSON_IsString(av) || strcmp(av->valuestring, LLMISVC_API_VERSION) != 0))
		verr_add(v, "apiVersion", "must be %s", LLMISVC_API_VERSION);
	if (k && (!cJSON_IsString(k) || strcmp(k->valuestring, kind) != 0))
		verr_add(v, "kind", "must be %s", kind);
	if (!cJSON_IsString(nm) || nm->valuestring[0] == '\0')
		verr_add(v, "metadata.name", "required value");
	else if (!naming_is_dns1123_subdomain(nm->valuestring) || strchr(nm->valuestring, '.'))
		verr_add(v, "metadata.name", "a lowercase RFC 1123 name must consist of lower case "
		    "alphanumeric characters or '-', and must start and end with an alphanumeric "
		    "character (e.g. 'my-name')");
	if (ns && !cJSON_IsNull(ns) && (!cJSON_IsString(ns) ||
	    !naming_is_dns1123_label(ns->valuestring)))
		verr_add(v, "metadata.namespace", "must be a lowercase RFC 1123 label of at most "
		    "63 characters");
}

int
llmisvc_validate(const cJSON *obj, const cJSON *old, struct llmd_err *e)
{
	struct verr v = { e, 0, BUF_INIT };
	const cJSON *spec = json_member(obj, "spec"), *nm = json_member(json_member(obj, "metadata"), "name");

	if (!cJSON_IsObject(obj))
		return err_set(e, -EINVAL, "", "must be an object");
	check_meta(&v, obj, LLMISVC_KIND);
	check_spec(&v, obj, 0);
	/* LWS names are DNS-1035 labels: a multi-node service must start with a letter. */
	if (cJSON_IsString(nm) && nm->valuestring[0] >= '0' && nm->valuestring[0] <= '9' &&
	    (present(spec, "worker") || present(json_member(spec, "prefill"), "worker")))
		verr_add(&v, "metadata.name", "a multi-node service name must start with a letter "
		    "(LeaderWorkerSet names are DNS-1035 labels)");
	if (old && v.count == 0) {
		const cJSON *os = json_member(old, "spec");
		int a = validate_group_size(os), b = validate_group_size(spec);

		if (a != b)
			verr_add(&v, "spec.parallelism", "Unsupported value: total parallelism size "
			    "is immutable, previous size %d, curr size %d", a, b);
		if (present(os, "prefill") && present(spec, "prefill")) {
			a = validate_group_size(json_member(os, "prefill"));
			b = validate_group_size(json_member(spec, "prefill"));
			if (a != b)
				verr_add(&v, "spec.prefill.parallelism", "Unsupported value: total "
				    "parallelism size is immutable, previous size %d, curr size %d", a, b);
		}
	}
	return verr_finish(&v);
}

/* The upstream sample (LLMInferenceServiceSample) configs are dry-run against. */
static cJSON *
sample_service(void)
{
	return cJSON_Parse("{\"apiVersion\":\"serving.kserve.io/v1alpha1\",\"kind\":"
	    "\"LLMInferenceService\",\"metadata\":{\"name\":\"test-llm-preset\",\"namespace\":"
	    "\"test-llm-preset-test\"},\"spec\":{\"model\":{\"uri\":\"hf://meta-llama/llama\","
	    "\"name\":\"llama\"},\"parallelism\":{\"data\":4,\"dataLocal\":2,\"tensor\":1,"
	    "\"expert\":true,\"dataRPCPort\":5555},\"replicas\":1,\"prefill\":{\"replicas\":1,"
	    "\"parallelism\":{\"pipeline\":1,\"tensor\":1,\"data\":1,\"dataLocal\":1,"
	    "\"dataRPCPort\":5555}},\"router\":{\"scheduler\":{\"pool\":{\"ref\":{\"name\":"
	    "\"test-pool\"}}}}}}");
}

int
llmisvcconfig_validate(const cJSON *obj, struct llmd_err *e)
{
	struct verr v = { e, 0, BUF_INIT };
	const cJSON *spec = json_member(obj, "spec");

	if (!cJSON_IsObject(obj))
		return err_set(e, -EINVAL, "", "must be an object");
	check_meta(&v, obj, LLMISVC_CONFIG_KIND);
	check_spec(&v, obj, 1);
	if (v.count == 0 && spec) {
		cJSON *sample = sample_service(), *copy = cJSON_Duplicate(spec, 1);
		cJSON *global = cJSON_Parse("{\"SystemNamespace\":\"" LLMD_SYSTEM_NAMESPACE "\","
		    "\"IngressGatewayName\":\"kserve-ingress-gateway\",\"IngressGatewayNamespace\":\""
		    LLMD_SYSTEM_NAMESPACE "\"}");
		struct llmd_err te = LLMD_ERR_INIT;

		if (template_render_tree(copy, "spec", sample, global, &te) < 0)
			verr_add(&v, te.field, "failed to parse template config: %s", te.msg);
		cJSON_Delete(copy);
		cJSON_Delete(sample);
		cJSON_Delete(global);
	}
	return verr_finish(&v);
}
