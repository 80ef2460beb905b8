/*
 * daemon/naming.h - names and labels of an LLMInferenceService's children
 * (docs/kserve-llmisvc-api.md sections 5 and 6.1): knative's ChildName and
 * the app.kubernetes.io / kserve.io / llm-d.ai label sets.
 */
#ifndef LLMD_DAEMON_NAMING_H
#define LLMD_DAEMON_NAMING_H

#include <cjson/cJSON.h>

/* Child name suffixes (section 5.1). */
#define SFX_MAIN            "-kserve"
#define SFX_PREFILL         "-kserve-prefill"
#define SFX_MAIN_MN         "-kserve-mn"
#define SFX_PREFILL_MN      "-kserve-mn-prefill"
#define SFX_WORKLOAD_SVC    "-kserve-workload-svc"
#define SFX_ROUTE           "-kserve-route"
#define SFX_SCHEDULER       "-kserve-router-scheduler"
#define SFX_EPP_SVC         "-epp-service"
#define SFX_EPP_SA          "-epp-sa"
#define SFX_POOL            "-inference-pool"
#define SFX_MODEL           "-inference-model"

#define LBL_PART_OF     "app.kubernetes.io/part-of"
#define LBL_NAME        "app.kubernetes.io/name"
#define LBL_COMPONENT   "app.kubernetes.io/component"
#define LBL_KSERVE_COMP "kserve.io/component"
#define LBL_ROLE        "llm-d.ai/role"
#define PART_OF_VALUE   "llminferenceservice"

/* Component values of app.kubernetes.io/component. */
#define COMP_WORKLOAD              "llminferenceservice-workload"
#define COMP_WORKLOAD_PREFILL      "llminferenceservice-workload-prefill"
#define COMP_WORKLOAD_WORKER       "llminferenceservice-workload-worker"
#define COMP_WORKLOAD_LEADER       "llminferenceservice-workload-leader"
#define COMP_WORKLOAD_WORKER_PF    "llminferenceservice-workload-worker-prefill"
#define COMP_WORKLOAD_LEADER_PF    "llminferenceservice-workload-leader-prefill"
#define COMP_ROUTER                "llminferenceservice-router"
#define COMP_SCHEDULER             "llminferenceservice-router-scheduler"

/*
 * knative kmeta.ChildName: parent+suffix when <= 63 chars; otherwise the
 * parent is cut and md5(parent) (suffix < 31 chars) or md5(parent+suffix)
 * inserted so the result is 63 chars. Caller frees.
 */
char *llmd_child_name(const char *parent, const char *suffix);
/* 32 lowercase hex chars of md5(s) into out[33]. */
void naming_md5_hex(const char *s, size_t n, char out[33]);

/*
 * Label set {part-of, name, app component, [kserve.io/component:
 * workload], [llm-d.ai/role: role]}; kserve_workload/role may be 0/NULL.
 */
cJSON *naming_labels(const char *svc, const char *component, int kserve_workload,
    const char *role);
/* The workload selector {part-of, name, kserve.io/component: workload}. */
cJSON *naming_workload_selector(const char *svc);

/* DNS-1123 label (<= 63, [a-z0-9-], alnum ends); 1 if valid. */
int naming_is_dns1123_label(const char *s);
/* DNS-1035 label: DNS-1123 label starting with a letter. */
int naming_is_dns1035_label(const char *s);
/* DNS-1123 subdomain (<= 253, dot-separated labels). */
int naming_is_dns1123_subdomain(const char *s);

#endif
