/*
 * engine/kv-connector.h - prefill/decode disaggregation for the serving
 * engine, with vLLM's interface: `--kv-transfer-config '{"kv_connector":
 * "LlmdConnector","kv_role":"kv_producer|kv_consumer|kv_both"}'` and
 * kv_transfer_params on requests and responses (NixlConnector's shape, so
 * the llm-d routing sidecar protocol carries over).
 *
 * Producer (prefill): a request with do_remote_decode keeps its prompt's KV
 * blocks when it finishes; the response carries remote_block_ids,
 * remote_engine_id, remote_request_id, remote_host, remote_port and tp_size.
 * remote_request_id is the hold's token (128 random bits as hex, not the
 * client's request id): the side channel serves a READ only of that hold's
 * blocks under it, and only a DONE naming it frees them; else the blocks
 * are freed after a timeout (counted in llmd:kv_transfer_timeouts_total).
 * Consumer (decode): a request with do_remote_prefill and those fields gets
 * its prompt blocks pulled from the producer (rdma/kvxfer.h) on a worker
 * thread, then decodes; it always tells the producer DONE, also on a full
 * local prefix hit, a failed pull (then it recomputes) or an abort.
 */
#ifndef LLMD_ENGINE_KV_CONNECTOR_H
#define LLMD_ENGINE_KV_CONNECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "engine/scheduler.h"
#include "lib/err.h"
#include "lib/metrics.h"
#include "rdma/kvxfer.h"

enum kv_role { KV_ROLE_NONE = 0, KV_ROLE_PRODUCER, KV_ROLE_CONSUMER, KV_ROLE_BOTH };

struct kv_transfer_config {
	enum kv_role role;
	char connector[64];
	char listen[300];          /* side channel HOST:PORT */
	char advertise[256];       /* host peers use (pod IP) */
	char transport[16];        /* auto | tcp | verbs */
	int n_streams;
	int64_t abort_timeout_ms;  /* held prefill blocks are freed after this */
};

/* Parses the --kv-transfer-config JSON; the side channel defaults come from
 * VLLM_NIXL_SIDE_CHANNEL_HOST/PORT (localhost:5600) as vLLM's do, and
 * kv_connector_extra_config may set side_channel, advertise, transport,
 * streams and abort_timeout_s. */
int kv_transfer_config_parse(const char *json, struct kv_transfer_config *c, struct llmd_err *e);

/* What a decode request carries (copied from its kv_transfer_params). */
struct kv_remote {
	bool valid;
	char engine_id[64];
	char request_id[160];
	char host[256];
	int port;
	int32_t *block_ids;
	uint32_t n_blocks;
};
/* 1 when kv_transfer_params asks for a remote prefill with every field
 * present (r filled), 0 when it does not ask, -EINVAL (e naming the field)
 * when it asks but something is missing or malformed. */
int kv_remote_parse(const cJSON *kvp, struct kv_remote *r, struct llmd_err *e);
void kv_remote_release(struct kv_remote *r);
/* 1 when kv_transfer_params asks this engine to prefill for a remote decoder. */
int kv_params_want_remote_decode(const cJSON *kvp);

struct kv_connector;

/* simulate: no KV memory (base NULL); pulls only wait sim_ms_per_token. */
int kv_connector_new(const struct kv_transfer_config *c, const struct kvx_layout *layout,
    void *base, uint32_t n_blocks, size_t block_stride, struct scheduler *sched,
    struct metrics *m, const char *const *label_vals, double sim_ms_per_token,
    struct kv_connector **out, struct llmd_err *e);
void kv_connector_free(struct kv_connector *kc);
enum kv_role kv_connector_role(const struct kv_connector *kc);

/* Hex digits of a hold token (kv_transfer_params' remote_request_id). */
#define KV_HOLD_TOKEN_LEN 32

/* Producer: takes ownership of blocks (from a finish output), holds them
 * under a fresh random token and returns the response's kv_transfer_params
 * (remote_request_id = the token; request_id only names it in logs). NULL
 * when no random bytes could be had (the blocks are freed). */
cJSON *kv_connector_hold(struct kv_connector *kc, const char *request_id, int32_t *blocks,
    uint32_t n);
/* Frees the hold named by token (the params' remote_request_id) now: its
 * response could not reach a decoder (a streamed prefill, or the client
 * went away). NULL or an unknown token: nothing. Any thread. */
void kv_connector_release(struct kv_connector *kc, const char *token);
/* Frees holds past their deadline (call now and then). */
void kv_connector_expire(struct kv_connector *kc);
size_t kv_connector_n_held(struct kv_connector *kc);

/* Consumer: starts pulling a step's load for a request with remote info
 * (worker thread); reports scheduler_remote_kv_done() and sends DONE. */
void kv_connector_start_load(struct kv_connector *kc, const struct sched_kv_load *ld,
    const struct kv_remote *rem, uint32_t block_size);
/* Sends DONE for a remote request that never loaded (full hit, abort). */
void kv_connector_notify(struct kv_connector *kc, const struct kv_remote *rem);

#endif
