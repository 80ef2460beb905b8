/*
 * daemon/api-resources.c - the table of resources the API serves: plural,
 * group/version, kind, scope and whether users may write them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daemon/api.h"

#define NS  RES_NAMESPACED
#define W   RES_WRITABLE
#define ST  RES_STATUS

static const struct api_resource res_llmisvc = {
	"llminferenceservices", "serving.kserve.io", "v1alpha1", "LLMInferenceService", NS | W | ST };
static const struct api_resource res_llmisvcconfig = {
	"llminferenceserviceconfigs", "serving.kserve.io", "v1alpha1",
	"LLMInferenceServiceConfig", NS | W };
static const struct api_resource res_node = { "nodes", "", "v1", "Node", W | ST };
static const struct api_resource res_secret = { "secrets", "", "v1", "Secret", NS | W };
static const struct api_resource res_event = { "events", "", "v1", "Event", NS | W };
static const struct api_resource res_pod = { "pods", "", "v1", "Pod", NS | ST | RES_DELETABLE };
static const struct api_resource res_service = { "services", "", "v1", "Service", NS | ST };
static const struct api_resource res_deploy = {
	"deployments", "apps", "v1", "Deployment", NS | ST };
static const struct api_resource res_lws = {
	"leaderworkersets", "leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", NS | ST };
static const struct api_resource res_gateway = {
	"gateways", "gateway.networking.k8s.io", "v1", "Gateway", NS | W | ST };
static const struct api_resource res_httproute = {
	"httproutes", "gateway.networking.k8s.io", "v1", "HTTPRoute", NS | W | ST };
static const struct api_resource res_ingress = {
	"ingresses", "networking.k8s.io", "v1", "Ingress", NS | W | ST };
static const struct api_resource res_pool = {
	"inferencepools", "inference.networking.x-k8s.io", "v1alpha2", "InferencePool", NS | ST };
static const struct api_resource res_model = {
	"inferencemodels", "inference.networking.x-k8s.io", "v1alpha2", "InferenceModel", NS | ST };
/* Groups of nodes that come and go together (a Slurm allocation). */
static const struct api_resource res_nodepool = { "nodepools", "llmd.ai", "v1alpha1", "NodePool", W | ST };

const struct api_resource *const api_resources[] = {
	&res_llmisvc, &res_llmisvcconfig, &res_node, &res_secret, &res_event, &res_pod,
	&res_service, &res_deploy, &res_lws, &res_gateway, &res_httproute, &res_ingress,
	&res_pool, &res_model, &res_nodepool, NULL,
};

static const struct {
	const char *alias;
	const struct api_resource *r;
} short_names[] = {
	{ "llmisvc", &res_llmisvc }, { "llmisvcs", &res_llmisvc },
	{ "llmisvcconfig", &res_llmisvcconfig }, { "llmisvcconfigs", &res_llmisvcconfig },
	{ "no", &res_node }, { "node", &res_node }, { "po", &res_pod }, { "pod", &res_pod },
	{ "svc", &res_service }, { "service", &res_service }, { "deploy", &res_deploy },
	{ "deployment", &res_deploy }, { "lws", &res_lws }, { "leaderworkerset", &res_lws },
	{ "gw", &res_gateway }, { "gateway", &res_gateway }, { "httproute", &res_httproute },
	{ "ing", &res_ingress }, { "ingress", &res_ingress }, { "secret", &res_secret },
	{ "ev", &res_event }, { "event", &res_event }, { "inferencepool", &res_pool },
	{ "inferencemodel", &res_model }, { "nodepool", &res_nodepool }, { "np", &res_nodepool },
};

const struct api_resource *
api_resource_find(const char *group, const char *plural)
{
	size_t i;

	for (i = 0; api_resources[i]; i++)
		if (strcmp(api_resources[i]->group, group) == 0 &&
		    strcmp(api_resources[i]->plural, plural) == 0)
			return api_resources[i];
	return NULL;
}

const struct api_resource *
api_resource_by_name(const char *name)
{
	size_t i;

	for (i = 0; api_resources[i]; i++)
		if (strcasecmp(api_resources[i]->plural, name) == 0 ||
		    strcasecmp(api_resources[i]->kind, name) == 0)
			return api_resources[i];
	for (i = 0; i < sizeof(short_names) / sizeof(short_names[0]); i++)
		if (strcasecmp(short_names[i].alias, name) == 0)
			return short_names[i].r;
	return NULL;
}

const char *
api_resource_api_version(const struct api_resource *r, char *buf, size_t len)
{
	if (*r->group)
		snprintf(buf, len, "%s/%s", r->group, r->version);
	else
		snprintf(buf, len, "%s", r->version);
	return buf;
}
