/*
 * daemon/reconcile.c - llmisvc_combine(): presets by mode, baseRefs and the
 * service spec merged in order, post-merge defaults, template rendering on
 * the merged object and the default backendRef fix-up (docs section 3.2).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/merge.h"
#include "daemon/naming.h"
#include "daemon/reconcile.h"
#include "daemon/template.h"
#include "daemon/validate.h"
#include "lib/util.h"
#include "lib/json.h"

#define MAX_LAYERS 64

static const char *
sysns(const struct reconcile_env *env)
{
	return env && env->system_namespace ? env->system_namespace : LLMD_SYSTEM_NAMESPACE;
}

/* Config lookup: the service namespace first, then the system namespace. */
static int
find_config(const struct reconcile_env *env, const char *ns, const char *name, const char *field,
    const cJSON **spec, struct llmd_err *e)
{
	const cJSON *cfg = NULL;

	if (env && env->get_config) {
		cfg = env->get_config(env->ctx, ns, name);
		if (!cfg)
			cfg = env->get_config(env->ctx, sysns(env), name);
	}
	if (!cfg)
		return err_set(e, -ENOENT, field, "failed to get LLMInferenceServiceConfig \"%s\" from "
		    "namespaces [\"%s\", \"%s\"]: not found", name, ns, sysns(env));
	*spec = json_member(cfg, "spec");
	return 0;
}

static cJSON *
llmisvc_global_config(const struct reconcile_env *env)
{
	cJSON *g = cJSON_CreateObject();

	cJSON_AddStringToObject(g, "SystemNamespace", sysns(env));
	cJSON_AddStringToObject(g, "IngressGatewayName",
	    env && env->gateway_name ? env->gateway_name : "kserve-ingress-gateway");
	cJSON_AddStringToObject(g, "IngressGatewayNamespace",
	    env && env->gateway_namespace ? env->gateway_namespace : sysns(env));
	return g;
}

static void
post_merge_defaults(cJSON *spec, const char *name)
{
	cJSON *sched = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec,
	    "router"), "scheduler");
	cJSON *pspec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sched,
	    "pool"), "spec");
	cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(sched, "template");
	cJSON *sel = cJSON_GetObjectItemCaseSensitive(pspec, "selector");
	const char *sa = json_member_str(tmpl, "serviceAccountName");

	if (cJSON_IsObject(pspec) && (!cJSON_IsObject(sel) || !sel->child)) {
		cJSON_DeleteItemFromObjectCaseSensitive(pspec, "selector");
		cJSON_AddItemToObject(pspec, "selector", naming_workload_selector(name));
	}
	if (cJSON_IsObject(tmpl) && (!sa || !sa[0])) {
		char *n = llmd_child_name(name, SFX_EPP_SA);

		cJSON_DeleteItemFromObjectCaseSensitive(tmpl, "serviceAccountName");
		cJSON_AddStringToObject(tmpl, "serviceAccountName", n);
		free(n);
	}
}

/*
 * llmd: a managed-route rule without backendRefs (a user rules list replaces
 * the preset's whole) gets the default backend instead of routing nowhere.
 */
static void
default_backend_refs(cJSON *spec, const char *name)
{
	cJSON *rules = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(spec, "router"), "route"), "http"), "spec"), "rules");
	cJSON *rule;

	cJSON_ArrayForEach(rule, rules) {
		cJSON *brs = cJSON_GetObjectItemCaseSensitive(rule, "backendRefs"), *br;
		char *pool;

		if (!cJSON_IsObject(rule) || (cJSON_IsArray(brs) && brs->child))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(rule, "backendRefs");
		brs = cJSON_AddArrayToObject(rule, "backendRefs");
		br = cJSON_CreateObject();
		pool = llmd_child_name(name, SFX_POOL);
		cJSON_AddStringToObject(br, "group", "inference.networking.x-k8s.io");
		cJSON_AddStringToObject(br, "kind", "InferencePool");
		cJSON_AddStringToObject(br, "name", pool);
		cJSON_AddNumberToObject(br, "port", 8000);
		cJSON_AddNumberToObject(br, "weight", 1);
		cJSON_AddItemToArray(brs, br);
		free(pool);
	}
}

/* Section 3.2 F: the default InferencePool backendRef without a scheduler. */
static void
fix_backend_refs(cJSON *spec, const char *name)
{
	cJSON *router = cJSON_GetObjectItemCaseSensitive(spec, "router");
	cJSON *sched = cJSON_GetObjectItemCaseSensitive(router, "scheduler");
	const char *ref = json_member_str(json_member(json_member(sched, "pool"), "ref"), "name");
	cJSON *rules = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(router, "route"),
	    "http"), "spec"), "rules");
	char *pool = llmd_child_name(name, SFX_POOL);
	char *svc = llmd_child_name(name, SFX_WORKLOAD_SVC);
	cJSON *rule, *br;

	cJSON_ArrayForEach(rule, rules) {
		cJSON_ArrayForEach(br, cJSON_GetObjectItemCaseSensitive(rule, "backendRefs")) {
			const char *g = json_member_str(br, "group"), *k = json_member_str(br, "kind"), *n = json_member_str(br, "name");

			if (!g || !k || !n || strcmp(g, "inference.networking.x-k8s.io") != 0 ||
			    strcmp(k, "InferencePool") != 0 || strcmp(n, pool) != 0)
				continue;
			if (!sched || cJSON_IsNull(sched)) {
				cJSON_ReplaceItemInObjectCaseSensitive(br, "group", cJSON_CreateString(""));
				cJSON_ReplaceItemInObjectCaseSensitive(br, "kind", cJSON_CreateString("Service"));
				cJSON_ReplaceItemInObjectCaseSensitive(br, "name", cJSON_CreateString(svc));
			} else if (ref) {
				cJSON_ReplaceItemInObjectCaseSensitive(br, "name", cJSON_CreateString(ref));
			}
		}
	}
	free(pool);
	free(svc);
}

int
llmisvc_combine(const cJSON *svc, const struct reconcile_env *env, cJSON **out,
    struct llmd_err *e)
{
	const cJSON *md = json_member(svc, "metadata"), *uspec = json_member(svc, "spec"), *refs, *r;
	const char *name = json_member_str(md, "name");
	const char *ns = json_member_str(md, "namespace") ? json_member_str(md, "namespace") : "default";
	const cJSON *layers[MAX_LAYERS], *bases[MAX_LAYERS];
	const char *presets[8];
	int nb = 0, np, i, rc;
	cJSON *resolved, *merged, *obj, *global, *mn;

	*out = NULL;
	if (!name)
		return err_set(e, -EINVAL, "metadata.name", "required value");
	if (!cJSON_IsObject(uspec))
		return err_set(e, -EINVAL, "spec", "required value");
	refs = json_member(uspec, "baseRefs");
	cJSON_ArrayForEach(r, refs) {
		char f[64];

		snprintf(f, sizeof(f), "spec.baseRefs[%d]", nb);
		if (!json_member_str(r, "name"))
			return err_set(e, -EINVAL, f, "name required");
		if (nb == MAX_LAYERS - 16)
			return err_set(e, -E2BIG, f, "too many baseRefs");
		if ((rc = find_config(env, ns, json_member_str(r, "name"), f, &bases[nb], e)) < 0)
			return rc;
		nb++;
	}
	/* A: what is enabled is decided on the spec with its baseRefs */
	resolved = cJSON_CreateObject();
	for (i = 0; i < nb; i++)
		merge_strategic(resolved, bases[i]);
	merge_strategic(resolved, uspec);
	np = merge_select_presets(resolved, presets, (int)ARRAY_SIZE(presets));
	cJSON_Delete(resolved);
	/* B, C: presets, then baseRefs, then the service */
	for (i = 0; i < np; i++) {
		if ((rc = find_config(env, ns, presets[i], "spec", &layers[i], e)) < 0)
			return rc;
	}
	merged = cJSON_CreateObject();
	for (i = 0; i < np; i++)
		merge_strategic(merged, layers[i]);
	for (i = 0; i < nb; i++)
		merge_strategic(merged, bases[i]);
	merge_strategic(merged, uspec);
	cJSON_DeleteItemFromObjectCaseSensitive(merged, "baseRefs");
	/* D */
	post_merge_defaults(merged, name);

	obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "apiVersion", LLMISVC_API_VERSION);
	cJSON_AddStringToObject(obj, "kind", LLMISVC_KIND);
	cJSON_AddItemToObject(obj, "metadata", md ? cJSON_Duplicate(md, 1) : cJSON_CreateObject());
	if (!json_member_str(md, "namespace"))
		cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "namespace", ns);
	cJSON_AddItemToObject(obj, "spec", merged);
	/* E: model name first (other strings refer to it), then everything */
	global = llmisvc_global_config(env);
	mn = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(merged, "model"), "name");
	if (cJSON_IsString(mn) && strstr(mn->valuestring, "{{")) {
		char *s;

		if ((rc = template_render_string(mn->valuestring, obj, global, &s, e)) < 0) {
			err_set(e, rc, "spec.model.name", "%s", e ? e->msg : "template error");
			goto fail;
		}
		cJSON_SetValuestring(mn, s);
		free(s);
	}
	if (!cJSON_IsObject(json_member(merged, "model")))
		cJSON_AddObjectToObject(merged, "model");
	if (!json_member_str(json_member(merged, "model"), "name"))
		cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(merged, "model"), "name", name);
	if ((rc = template_render_tree(merged, "spec", obj, global, e)) < 0)
		goto fail;
	/* F */
	default_backend_refs(merged, name);
	fix_backend_refs(merged, name);
	{
		const char *uri = json_member_str(json_member(merged, "model"), "uri");
		struct llmd_err ue = LLMD_ERR_INIT;

		if (!uri) {
			rc = err_set(e, -EINVAL, "spec.model.uri",
			    "required value (neither the service nor a preset or baseRef sets it)");
			goto fail;
		}
		if ((rc = validate_model_uri(uri, &ue)) < 0) {
			err_set(e, rc, "spec.model.uri", "%s", ue.msg);
			goto fail;
		}
	}
	cJSON_Delete(global);
	*out = obj;
	return 0;
fail:
	cJSON_Delete(global);
	cJSON_Delete(obj);
	return rc;
}
