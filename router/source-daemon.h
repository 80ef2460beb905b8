/*
 * router/source-daemon.h - the llmd daemon as the configuration source:
 * the router registers its Gateway object (listener at --listen, status
 * addresses), lists and watches HTTPRoutes, Ingresses, InferencePools,
 * InferenceModels, Services and Pods, translates them into a
 * struct router_config (gateway_apply keeps in-flight requests), and writes
 * status.parents (Accepted / ResolvedRefs) on the routes and pools it serves.
 */
#ifndef LLMD_ROUTER_SOURCE_DAEMON_H
#define LLMD_ROUTER_SOURCE_DAEMON_H

#include <cjson/cJSON.h>

#include "lib/err.h"
#include "router/router-config.h"

struct event_base;
struct gateway;
struct daemon_source;

/* The "items" arrays of the LISTs (any may be NULL: none). */
struct daemon_objects {
	const cJSON *routes, *ingresses, *pools, *models, *services, *pods;
};

/*
 * Translates the objects into the routes and pools gateway gw_ns/gw_name
 * serves. HTTPRoutes: those whose parentRefs name the gateway; one route per
 * (hostname, match), PathPrefix/Exact paths, X-Gateway-Model-Name header
 * matches, URLRewrite ReplacePrefixMatch, weighted InferencePool and
 * Service backendRefs, timeouts.request. Ingresses: those of ingressClassName
 * gw_name (or none), host and path rules to Service backends.
 * InferencePools: ready pods (podIP, not terminated) matching the selector,
 * at targetPortNumber; models and criticality from InferenceModels;
 * scheduler config from the --configText of the pool's scheduler pod.
 * *status (may be NULL) receives [{path, body}] merge patches for the status
 * of what is served, only where it differs from the objects' current status.
 */
int daemon_translate(const struct daemon_objects *o, const char *gw_ns, const char *gw_name,
    struct router_config *out, cJSON **status, struct llmd_err *e);

/*
 * Starts the source: registers the gateway (listener port, HTTPS when tls,
 * address host), then keeps gw configured. token may be NULL.
 */
struct daemon_source *daemon_source_new(struct event_base *base, struct gateway *gw,
    const char *server, const char *token, const char *gw_ns, const char *gw_name,
    const char *address, int port, int tls, struct llmd_err *e);
void daemon_source_free(struct daemon_source *s);

#endif
