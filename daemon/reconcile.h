/*
 * daemon/reconcile.h - the interface between the daemon (store, REST API,
 * reconciler loop) and the pure control-plane logic: what KServe's
 * LLMInferenceService controller computes, as functions over cJSON documents.
 *
 * Nothing here does I/O. Objects are Kubernetes-shaped cJSON documents
 * ({apiVersion, kind, metadata{name,namespace,labels,...}, spec, status}).
 * Every function returns 0 or a negative errno and fills a struct llmd_err
 * (lib/err.h) with a field path ("spec.parallelism.data") on bad input.
 *
 * A reconcile pass, as the daemon is expected to run it:
 *
 *   llmisvc_validate(svc, old, &e)            on create/update (API layer)
 *   llmisvc_combine(svc, env, &merged, &e)    presets + baseRefs + templates
 *        failure -> PresetsCombined=False, reason CombineBaseError, e.msg
 *   llmisvc_derive(merged, env, &children, &e) desired children + pods
 *   placement_schedule(pods, nodes, bound, &res) assigns spec.nodeName
 *   ... agents run pods, report pod status into the store ...
 *   llmisvc_status(svc, merged, observed, env, now, &status) conditions/url
 *
 * Ownership: functions taking `const cJSON *` never keep or modify it;
 * every `cJSON **out` is a new tree the caller frees with cJSON_Delete().
 * An object without metadata.namespace is treated as namespace "default".
 * What differs from upstream KServe and why: docs/upstream-differences.md.
 * Module headers: validate.h, merge.h, template.h, naming.h, derive.h
 * (the engine flags and GPU rules), placement.h (filters, scoring,
 * messages), conditions.h (condition helpers).
 */
#ifndef LLMD_DAEMON_RECONCILE_H
#define LLMD_DAEMON_RECONCILE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/err.h"

#define LLMISVC_API_VERSION "serving.kserve.io/v1alpha1"
#define LLMISVC_KIND "LLMInferenceService"
#define LLMISVC_CONFIG_KIND "LLMInferenceServiceConfig"
/* Where the well-known presets live (upstream: the KServe namespace "kserve"). */
#define LLMD_SYSTEM_NAMESPACE "llmd-system"

/*
 * Environment of a reconcile: the daemon's global settings and a way to
 * find LLMInferenceServiceConfig objects.
 */
struct reconcile_env {
	/* Namespace of the well-known presets; NULL = LLMD_SYSTEM_NAMESPACE. */
	const char *system_namespace;
	/* Default gateway (upstream ingress.kserveIngressGateway); NULL = "kserve-ingress-gateway". */
	const char *gateway_name;
	const char *gateway_namespace;    /* NULL = system namespace */
	/* host[:port] the router listens on, for status.url; NULL = "localhost". */
	const char *gateway_address;
	/*
	 * Returns the LLMInferenceServiceConfig `name` in namespace `ns`, or NULL
	 * when there is none. The object stays owned by the callee and must live
	 * until the calling function returns. Lookup order (service namespace,
	 * then system namespace) is done by the logic, not by the callback.
	 */
	const cJSON *(*get_config)(void *ctx, const char *ns, const char *name);
	void *ctx;
};

/* ---- validation (webhook + schema rules, docs section 2) ---- */

/*
 * Validates an LLMInferenceService as submitted (baseRefs unresolved).
 * old is the stored object on update, NULL on create (enables the
 * immutable-size rule). All problems are checked; e gets the first one's
 * field and message, followed by "; " and the others ("field: msg").
 * Returns 0 or -EINVAL.
 */
int llmisvc_validate(const cJSON *obj, const cJSON *old, struct llmd_err *e);
/* Same for an LLMInferenceServiceConfig (no baseRefs; templates must render
 * against the upstream sample service). */
int llmisvcconfig_validate(const cJSON *obj, struct llmd_err *e);

/* ---- presets, merge, templates (docs sections 3, 4) ---- */

/*
 * Resolves the preset list for svc (by mode), merges presets, baseRefs and
 * the service spec (strategic merge; explicit 0/false/""/null in a later
 * layer override), applies post-merge defaults and renders template
 * variables on the merged object. *out is a full LLMInferenceService
 * (metadata copied from svc, merged spec, no status). On error the message
 * is what PresetsCombined=False carries (reason CombineBaseError).
 */
int llmisvc_combine(const cJSON *svc, const struct reconcile_env *env, cJSON **out,
    struct llmd_err *e);

/* ---- desired children (docs sections 5, 6, 8, 9) ---- */

/*
 * From a combined service, the full list of desired children: a JSON array of
 * Deployment, LeaderWorkerSet, Service, HTTPRoute, InferencePool,
 * InferenceModel and Pod objects (apiVersion/kind/metadata/spec; every one
 * labelled app.kubernetes.io/part-of=llminferenceservice and
 * app.kubernetes.io/name=<svc>; pods also carry
 * metadata.ownerReferences[0] = {kind, name} of their workload).
 * Pod names: Deployment pods "<deploy>-<10 hex of the pod-template hash>-<5
 * chars stable per replica index>" and StatefulSet-like LWS pods
 * "<lws>-<g>" (leader) / "<lws>-<g>-<i>" (worker). Each pod's containers have
 * resources.limits["nvidia.com/gpu"] set and $(VAR) references in
 * command/args expanded from the container env.
 */
int llmisvc_derive(const cJSON *merged, const struct reconcile_env *env, cJSON **children,
    struct llmd_err *e);

/* knative kmeta.ChildName: parent+suffix, shortened with an md5 to <= 63. */
char *llmd_child_name(const char *parent, const char *suffix);

/* ---- placement ---- */

struct placement_result {
	int scheduled;      /* pods that got spec.nodeName in this call */
	int unschedulable;  /* pods left without a node */
	/* {"<pod name>": "0/3 nodes are available: ..."} for each unscheduled pod */
	cJSON *failures;
};

/*
 * Assigns spec.nodeName to each pod of the array `pods` that has none.
 * nodes: array of Node objects (status.allocatable|capacity["nvidia.com/gpu"],
 * metadata.labels, spec.taints, spec.unschedulable, status.conditions Ready).
 * bound: array of pods already running (their spec.nodeName and GPU requests
 * use capacity); may be NULL. Pods of one LWS group (same
 * leaderworkerset.sigs.k8s.io/group-key label) are placed all or nothing.
 * res->failures is owned by the caller (cJSON_Delete). Returns 0 or -EINVAL.
 * Tip: store each failure as the pod's status.conditions PodScheduled=False
 * (message = the failure text); llmisvc_status() then reports the workload
 * as reason Unschedulable with that message.
 */
int placement_schedule(cJSON *pods, const cJSON *nodes, const cJSON *bound,
    struct placement_result *res);
void placement_result_release(struct placement_result *res);

/* ---- status (docs section 7) ---- */

/*
 * Computes status for svc. merged: the combined service or NULL when
 * llmisvc_combine failed (then combine_err explains it). observed: array of
 * the current children with their status (Pods with status.phase and
 * conditions Ready; workloads, routes, pools as stored; may be NULL).
 * Keeps lastTransitionTime of svc's existing conditions whose status did not
 * change; now is the RFC3339 time to stamp changes with. *status is a new
 * {observedGeneration, conditions, url, addresses} object.
 * Readiness rules: a workload is ready when its stored status.conditions
 * Available is True, or else when all its pods (ownerReferences[0].name)
 * are Ready=True (or phase Running without conditions). A managed HTTPRoute /
 * InferencePool is ready when present in observed and no parent says
 * Accepted=False. gateway.refs / route.http.refs must be present in observed
 * as Gateway / HTTPRoute objects. Conditions are never removed.
 */
int llmisvc_status(const cJSON *svc, const cJSON *merged, const struct llmd_err *combine_err,
    const cJSON *observed, const struct reconcile_env *env, const char *now,
    cJSON **status);

#endif
