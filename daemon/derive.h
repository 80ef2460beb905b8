/*
 * daemon/derive.h - the desired children of a combined LLMInferenceService
 * (docs/kserve-llmisvc-api.md sections 5, 6, 8, 9): workloads (Deployment or
 * LeaderWorkerSet, main and prefill), their pods, the workload Service, the
 * scheduler (EPP Deployment + Service, InferencePool, InferenceModel) and the
 * managed HTTPRoute. Entry point llmisvc_derive() is declared in
 * daemon/reconcile.h; the helpers below are exposed for tests and the agent.
 *
 * Engine flags are appended to the engine container ("main", else the first
 * container) of every workload pod unless already present in its command or
 * args (as "--flag" or "--flag=..."):
 *   --served-model-name=<model name>         always
 *   --tensor-parallel-size=T                 parallelism.tensor set
 *   --pipeline-parallel-size=P               parallelism.pipeline set
 *   --enable-expert-parallel                 parallelism.expert true
 *   --data-parallel-size=D --data-parallel-size-local=L
 *   --data-parallel-rpc-port=R (5555)        data parallel
 *   --data-parallel-address=$(LWS_LEADER_ADDRESS)
 *   --data-parallel-start-rank=<index*L>     multi-node data parallel
 *   --nnodes=<size> --node-rank=<index> --master-addr=$(LWS_LEADER_ADDRESS)
 *                                            multi-node pipeline parallel
 *   --headless                               LWS workers (index > 0)
 *   --kv-transfer-config=KV_TRANSFER_CONFIG  prefill/decode split
 *   --enable-lora --lora-modules NAME=/mnt/lora/NAME ...
 *                                            spec.model.lora.adapters
 * GPUs per pod: the engine container's nvidia.com/gpu request/limit when
 * given, else tensor x dataLocal (data parallel) x pipeline (single node).
 */
#ifndef LLMD_DAEMON_DERIVE_H
#define LLMD_DAEMON_DERIVE_H

#include <cjson/cJSON.h>

#define GPU_RESOURCE "nvidia.com/gpu"
/* --kv-transfer-config of prefill and decode engines (upstream #5987 / PR #6027). */
#define KV_TRANSFER_CONFIG "{\"kv_connector\":\"NixlConnector\",\"kv_role\":\"kv_both\"}"
#define MODEL_MOUNT "/mnt/models"

/* GPUs a pod requests (sum over containers of limits, else requests). */
int derive_pod_gpus(const cJSON *pod);

/*
 * Expands kubelet-style $(VAR) references in s from env (array of
 * {name, value}); $$( escapes; unknown references stay. Caller frees.
 */
char *derive_expand_vars(const char *s, const cJSON *env);

#endif
