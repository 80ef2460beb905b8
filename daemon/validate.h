/*
 * daemon/validate.h - admission checks of LLMInferenceService and
 * LLMInferenceServiceConfig objects: the upstream schema and webhook rules
 * (docs/kserve-llmisvc-api.md section 2) plus llmd's own (model URI schemes,
 * object names). Declared in daemon/reconcile.h:
 *
 *   int llmisvc_validate(const cJSON *obj, const cJSON *old, struct llmd_err *e);
 *   int llmisvcconfig_validate(const cJSON *obj, struct llmd_err *e);
 *
 * plus the helpers below that other modules reuse.
 */
#ifndef LLMD_DAEMON_VALIDATE_H
#define LLMD_DAEMON_VALIDATE_H

#include <cjson/cJSON.h>

#include "lib/err.h"

/* Model URI check (hf://, s3://, gs://, pvc://, file://); 0 or -EINVAL with e->msg. */
int validate_model_uri(const char *uri, struct llmd_err *e);

/* LWS group size of a workload ({replicas, parallelism, template, worker}), upstream GetSize() or 1. */
int validate_group_size(const cJSON *workload);

#endif
