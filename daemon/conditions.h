/*
 * daemon/conditions.h - knative-style status conditions
 * ({type, status, severity, lastTransitionTime, reason, message}) and the
 * LLMInferenceService condition set (docs/kserve-llmisvc-api.md section 7).
 * llmisvc_status(), declared in daemon/reconcile.h, is implemented here.
 */
#ifndef LLMD_DAEMON_CONDITIONS_H
#define LLMD_DAEMON_CONDITIONS_H

#include <cjson/cJSON.h>

#define COND_PRESETS_COMBINED         "PresetsCombined"
#define COND_MAIN_WORKLOAD            "MainWorkloadReady"
#define COND_WORKER_WORKLOAD          "WorkerWorkloadReady"
#define COND_PREFILL_WORKLOAD         "PrefillWorkloadReady"
#define COND_PREFILL_WORKER_WORKLOAD  "PrefillWorkerWorkloadReady"
#define COND_WORKLOADS                "WorkloadsReady"
#define COND_GATEWAYS                 "GatewaysReady"
#define COND_HTTPROUTES               "HTTPRoutesReady"
#define COND_INFERENCE_POOL           "InferencePoolReady"
#define COND_SCHEDULER_WORKLOAD       "SchedulerWorkloadReady"
#define COND_ROUTER                   "RouterReady"
#define COND_READY                    "Ready"

/* The condition of that type in an array of conditions, or NULL. */
const cJSON *cond_find(const cJSON *conds, const char *type);
/* 1 if the condition exists with status "True"/"False" respectively. */
int cond_is_true(const cJSON *conds, const char *type);
int cond_is_false(const cJSON *conds, const char *type);

/*
 * Sets (adds or replaces) a condition in conds. lastTransitionTime is taken
 * from the same type in prev when its status is unchanged, else now.
 * status is "True", "False" or "Unknown"; reason/message may be NULL.
 * Severity is "" for Ready/WorkloadsReady/RouterReady, "Info" otherwise.
 */
void cond_set(cJSON *conds, const cJSON *prev, const char *type, const char *status,
    const char *reason, const char *message, const char *now);

/*
 * Readiness of a workload (Deployment or LeaderWorkerSet) named name among
 * the observed children: uses its status.conditions Available when present,
 * else counts its Ready pods (ownerReferences name) against the expected
 * number. Returns 1 ready, 0 not; fills reason/message (static or buffers).
 */
int cond_workload_ready(const cJSON *observed, const cJSON *workload, char *reason, size_t rl,
    char *message, size_t ml);

#endif
