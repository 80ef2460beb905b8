/*
 * rdma/kvxfer.h - moves paged KV-cache blocks between engines (librdmakv).
 *
 * Model (after NIXL / vLLM's NIXL connector): each engine registers its KV
 * pool (a region of n_blocks blocks of block_bytes each, block b at
 * base + b * block_stride) and exports a small metadata blob: transport,
 * side-channel address, engine id, layout and a compatibility hash. A decode
 * engine PULLS the blocks of a finished prefill from the prefill engine into
 * its own blocks, then sends DONE so the prefill engine frees them.
 *
 * Transports behind one API, chosen at run time:
 *  - "tcp": always available. The puller opens n_streams connections to the
 *    side channel, splits the block list across them, and the server writes
 *    runs of adjacent blocks with one writev each (no per-block round trip).
 *  - "verbs": RDMA READ over RC queue pairs set up over the same side channel
 *    (built only with libibverbs; chosen when both sides have a device).
 *
 * Threads: each engine runs one side-channel thread (accept) and a thread per
 * served connection (at most 256; each request message must arrive whole
 * within io_timeout_ms, an idle connection is closed after it); a pull
 * runs on the caller's thread (the engine calls it from a worker). Callbacks
 * (authorize, on_done) run on the serving threads, several at once.
 *
 * Authorization: every READ and DONE carries a hold token (the producer's
 * remote_request_id, unguessable), and the server serves a READ only when
 * cfg.authorize says every requested block belongs to that token's hold. A
 * verbs peer can READ the whole registered pool once connected, so it must
 * name a live hold's token in its hello (see docs/rdma.md).
 */
#ifndef LLMD_RDMA_KVXFER_H
#define LLMD_RDMA_KVXFER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

struct kvx_run;

/* What both ends must agree on before any transfer. */
struct kvx_layout {
	char model[128];        /* served model name or path */
	char dtype[16];         /* "float32", "bfloat16" ... */
	uint32_t block_size;    /* tokens per block */
	uint32_t n_layers;
	uint32_t n_kv_heads;
	uint32_t head_dim;
	uint32_t tp_rank, tp_size;
	uint64_t block_bytes;   /* bytes of one block, all layers, K and V */
};

/* FNV-1a over the layout's fields in a fixed order (not the struct bytes). */
uint64_t kvx_layout_hash(const struct kvx_layout *l);
/* -EPROTO with e naming the first field that differs ("block_size: 16 vs 32"). */
int kvx_layout_check(const struct kvx_layout *mine, const struct kvx_layout *theirs,
    struct llmd_err *e);

struct kvx_config {
	const char *transport;  /* "auto" (verbs if available, else tcp), "tcp", "verbs" */
	const char *listen;     /* side channel "HOST:PORT" (port 0: pick) */
	const char *advertise;  /* host others use to reach us (default: listen host) */
	int n_streams;          /* parallel TCP streams per pull (default 4) */
	int64_t io_timeout_ms;  /* per-socket I/O timeout (default 30 s) */
	/* Called on a serving thread when a peer reports it has pulled the
	 * blocks of the hold named by token (DONE); token is the peer's word,
	 * unchecked: ignore one that names no hold. */
	void (*on_done)(void *arg, const char *token);
	void *on_done_arg;
	/*
	 * Called on a serving thread before any block leaves this engine: 0 when
	 * every block of runs[0..n_runs) (remote side: rfirst, n; lfirst is
	 * unused) belongs to the hold named by token, else a negative errno
	 * (-EACCES is sent to the peer, which is disconnected). n_runs 0 asks
	 * only whether token names a live hold (a verbs peer in its hello). NULL:
	 * every READ and verbs hello is refused.
	 */
	int (*authorize)(void *arg, const char *token, const struct kvx_run *runs, uint32_t n_runs);
	void *authorize_arg;
	/* RDMA device for the verbs transport (NULL: the first with an active port) */
	const char *rdma_device;
};

struct kvx_engine;

/* Registers the pool and starts the side channel. */
int kvx_engine_new(const struct kvx_config *cfg, const struct kvx_layout *layout, void *base,
    uint32_t n_blocks, size_t block_stride, struct kvx_engine **out, struct llmd_err *e);
/*
 * Stops the side channel and shuts down every socket of the engine (served
 * connections and pulls in progress, which then fail with an error); new
 * pulls and DONEs fail with -ESHUTDOWN. For owners that must wait for their
 * own pull threads before kvx_engine_free(). Idempotent.
 */
void kvx_engine_shutdown(struct kvx_engine *x);
/* Shuts down, then waits for every serving thread and open socket. */
void kvx_engine_free(struct kvx_engine *x);

const char *kvx_engine_id(const struct kvx_engine *x);
const char *kvx_engine_transport(const struct kvx_engine *x);
const char *kvx_engine_host(const struct kvx_engine *x);
int kvx_engine_port(const struct kvx_engine *x);
/* The metadata blob (JSON) others need to pull from us. */
void kvx_engine_metadata(const struct kvx_engine *x, struct buf *out);

/* Longest hold token the side channel carries (bytes, without the NUL). */
#define KVX_MAX_TOKEN 255

/*
 * Pulls remote blocks remote_ids[i] of the engine at host:port into our
 * blocks local_ids[i] (n of each), under the hold token the peer issued.
 * Verifies the peer's layout first. Adjacent runs are merged; the list is
 * split over the streams. Blocking: call it from a worker thread. 0, or a
 * negative errno with e set (-EACCES: the peer refused the token or blocks).
 */
int kvx_pull(struct kvx_engine *x, const char *host, int port, const char *token,
    const int32_t *remote_ids, const int32_t *local_ids, size_t n, struct llmd_err *e);
/* Tells the engine at host:port that the blocks of token's hold may be freed. */
int kvx_send_done(struct kvx_engine *x, const char *host, int port, const char *token,
    struct llmd_err *e);

/* ---- helpers exposed for tests and the verbs transport ---- */

/* A run of n adjacent blocks: remote [rfirst, rfirst+n) -> local [lfirst, lfirst+n). */
struct kvx_run {
	int32_t rfirst, lfirst;
	uint32_t n;
};
/* Merges (remote, local) pairs into runs where both sides are consecutive;
 * returns the number of runs written to runs (capacity n). */
size_t kvx_merge_runs(const int32_t *remote_ids, const int32_t *local_ids, size_t n,
    struct kvx_run *runs);
/* Splits runs (total blocks) into at most parts slices of about equal bytes,
 * cutting runs where needed, and also so no slice exceeds max_blocks (0: no
 * cap); returns the number of slices; slice i is out[starts[i] .. starts[i+1]). */
size_t kvx_split_runs(const struct kvx_run *runs, size_t n_runs, size_t parts, uint32_t max_blocks,
    struct kvx_run *out, size_t out_cap, size_t *starts);

#endif
