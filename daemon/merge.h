/*
 * daemon/merge.h - strategic merge of LLMInferenceService specs
 * (docs/kserve-llmisvc-api.md section 3.3), preset selection by deployment
 * mode (section 3.1/3.2) and the whole combine step (presets, baseRefs,
 * post-merge defaults, templates).
 *
 * Merge rules: objects merge per key; lists of containers, initContainers,
 * ephemeralContainers, env, volumes, imagePullSecrets merge by "name",
 * volumeMounts by "mountPath", ports by "containerPort"; every other list
 * (args, command, tolerations, rules, parentRefs, ...) is replaced whole.
 * Unlike upstream, any value present in a later layer wins, including 0,
 * false and ""; null deletes the key; {"$patch": "delete"} deletes a list
 * item or key and {"$patch": "replace"} replaces an object instead of merging.
 */
#ifndef LLMD_DAEMON_MERGE_H
#define LLMD_DAEMON_MERGE_H

#include <cjson/cJSON.h>

#include "lib/err.h"

/* Merges patch over base in place (base must be an object). */
void merge_strategic(cJSON *base, const cJSON *patch);

/* Well-known preset names (section 3.1) plus the pipeline-parallel ones llmd ships. */
#define PRESET_TEMPLATE            "kserve-config-llm-template"
#define PRESET_DECODE_TEMPLATE     "kserve-config-llm-decode-template"
#define PRESET_PREFILL_TEMPLATE    "kserve-config-llm-prefill-template"
#define PRESET_WORKER_DP           "kserve-config-llm-worker-data-parallel"
#define PRESET_DECODE_WORKER_DP    "kserve-config-llm-decode-worker-data-parallel"
#define PRESET_PREFILL_WORKER_DP   "kserve-config-llm-prefill-worker-data-parallel"
#define PRESET_WORKER_PP           "kserve-config-llm-worker-pipeline-parallel"
#define PRESET_DECODE_WORKER_PP    "kserve-config-llm-decode-worker-pipeline-parallel"
#define PRESET_PREFILL_WORKER_PP   "kserve-config-llm-prefill-worker-pipeline-parallel"
#define PRESET_SCHEDULER           "kserve-config-llm-scheduler"
#define PRESET_ROUTER_ROUTE        "kserve-config-llm-router-route"

/*
 * The ordered list of preset names for a resolved spec (user spec with its
 * baseRefs merged), section 3.2 B steps 1-3 (baseRefs not included).
 * Writes up to max names into names[] and returns the count.
 */
int merge_select_presets(const cJSON *resolved_spec, const char **names, int max);

#endif
