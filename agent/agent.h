/*
 * agent/agent.h - what llmd-agent's files share: the agent's settings and
 * state, a pod it runs (struct pod_rt) and its processes (struct proc), and
 * the functions each file exports.
 *
 * Files: main.c (flags, loop), gpu.c (NVML / fake GPUs), control.c (the
 * daemon: register, heartbeats, pod list + watch, status patches),
 * translate.c (container -> process, pure), pods.c (pod lifecycle:
 * resources, storage, processes, probes, back-off, status, adoption),
 * storage.c (the storage initializer), secrets.c (the Secret values a
 * pod references, from the daemon), logs.c (the agent's HTTP server:
 * log streaming).
 */
#ifndef LLMD_AGENT_AGENT_H
#define LLMD_AGENT_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "lib/err.h"
#include "lib/http_client.h"

struct event_base;
struct event;
struct http_client;
struct http_client_req;
struct http_server;
struct workpool;

#define AGENT_MAX_GPUS 64
#define AGENT_MAX_PROCS 4
#define AGENT_MAX_FETCHES 8

/* ---- GPUs (gpu.c) ---- */

struct gpu {
	int index;
	char uuid[96];
	char model[96];
	uint64_t memory_mib;
	int healthy;
};

/*
 * "8xH100-80GB", "2xA100-40GB,1xL4-24GB" or "0": fake GPUs. 0 / -EINVAL.
 */
int gpu_parse_fake(const char *spec, struct gpu *out, int max, int *n, struct llmd_err *e);
/* NVML through dlopen("libnvidia-ml.so.1"); *n = 0 without a driver. */
int gpu_discover_nvml(struct gpu *out, int max, int *n);
/* [{index, uuid, model, memoryMiB, healthy}] */
cJSON *gpu_to_json(const struct gpu *g, int n);

/* ---- container translation (translate.c) ---- */

enum proc_kind {
	PROC_ENGINE = 0,   /* vLLM / llmd-engine -> llmd-engine serve */
	PROC_SIDECAR,      /* llm-d-routing-sidecar -> llmd-router sidecar */
	PROC_HOST,         /* an executable found on the host, run as is */
	PROC_SKIP,         /* not run (the EPP scheduler: routers pick in-process) */
};

struct mount_map {
	const char *mount_path;   /* "/mnt/models" */
	const char *host_path;    /* where it is on this host */
};

struct translate_ctx {
	const char *engine_path;  /* llmd-engine */
	const char *router_path;  /* llmd-router or NULL when it has no sidecar mode */
	const struct mount_map *mounts;
	size_t nmounts;
	int port;                 /* the host port for --port */
	int vllm_port;            /* the sidecar's --vllm-port (the decode engine) */
	const char *host;         /* --host for engines ("0.0.0.0") */
};

struct translated {
	enum proc_kind kind;
	char **argv;              /* NULL-terminated */
	char **env;               /* "NAME=value", NULL-terminated (container env only) */
	char *cwd;                /* workingDir translated, or NULL */
};

/*
 * Expands $(VAR) references as Kubernetes does: $(NAME) becomes the value of
 * NAME from env (a container's env array) when defined, $$ becomes $, and
 * anything else is left as is. Returns a new string.
 */
char *translate_expand(const char *s, const cJSON *env);
/* Rewrites a path under one of the mounts to the host path (new string). */
char *translate_path(const char *s, const struct mount_map *m, size_t n);
/*
 * Maps container c to a process. -ENOTSUP with e->msg naming the image when
 * it cannot run here. Release with translated_release().
 */
int translate_container(const cJSON *c, const struct translate_ctx *ctx,
    struct translated *out, struct llmd_err *e);
void translated_release(struct translated *t);
/* Is this image/command the EPP scheduler? Is it the routing sidecar? */
int translate_is_scheduler(const cJSON *c);
int translate_is_sidecar(const cJSON *c);

/* ---- storage (storage.c) ---- */

struct storage_opts {
	const char *cache_dir;        /* DATA/models */
	const char *const *pvcs;      /* "NAME=/host/path", NULL-terminated; may be NULL */
	/*
	 * "NAME=value", NULL-terminated, may be NULL: the storage initializer
	 * container's env (HF_TOKEN, AWS_*...), looked up before the agent's own.
	 */
	const char *const *env;
};

/*
 * Resolves uri to a local directory: file:// and pvc:// in place, hf://
 * (HF_ENDPOINT, HF_TOKEN) downloaded into the cache (temp dir, then
 * rename). Blocking: run it on a worker thread. *out is a new string.
 * progress (may be NULL) is told bytes done/total as they arrive.
 */
int storage_fetch(const char *uri, const struct storage_opts *o, char **out,
    void (*progress)(uint64_t done, uint64_t total, void *arg), void *parg,
    struct llmd_err *e);

/* ---- the agent ---- */

struct proc {
	char *container;
	enum proc_kind kind;
	char **argv;
	char **env;               /* full environment */
	char *cwd;
	char *log_path;
	pid_t pid;                /* 0: not running */
	unsigned long long start_time;  /* /proc/PID/stat field 22 */
	int adopted;              /* not our child (agent restarted): polled */
	int stop_sig;             /* what stops it gracefully (0: SIGTERM) */
	int restarts;
	int last_exit;            /* status from waitpid, or -1 */
	uint64_t started_ms;
	uint64_t next_start_ms;   /* back-off: earliest restart */
	int64_t backoff_ms;
	int port;                 /* HTTP port for probes; 0 none */
	int ready;
	int live_failures;
	int been_ready;            /* answered a probe once: liveness applies */
	int probing;
	struct http_client_req *probe;
};

enum pod_state {
	POD_STARTING = 0,  /* storage being fetched */
	POD_RUNNING,       /* processes started (some may be backing off) */
	POD_FAILED,        /* cannot run: a condition says why; retried on spec change */
	POD_STOPPING,      /* SIGTERM sent, waiting */
};

struct agent;

struct pod_rt {
	struct pod_rt *next;
	struct agent *agent;
	char *ns, *name, *uid;
	cJSON *pod;               /* the latest object from the daemon */
	enum pod_state state;
	int gpus[AGENT_MAX_GPUS];
	int ngpus;
	int port;                 /* the pod's http port */
	int extra_port;           /* decode engine port behind a sidecar */
	int kv_port;              /* the engine's NIXL side channel */
	char *model_path;         /* local model dir once storage is done */
	/* volumes filled by storage initializers: name -> local dir */
	char *vol_names[AGENT_MAX_FETCHES], *vol_paths[AGENT_MAX_FETCHES];
	int nvols;
	char *reason, *message;   /* a failure for the pod's conditions */
	char *progress;           /* storage progress text */
	int fetching;
	void *fetch_job;          /* the storage fetch in flight (pods.c) */
	int fetch_pct_logged;
	struct proc procs[AGENT_MAX_PROCS];
	int nprocs;
	uint64_t stop_deadline;
	int gone;                 /* deleted from the daemon: stop and forget */
	char *reported;           /* the last status we sent (compact JSON) */
	int reporting;
	/* LeaderWorkerSet groups */
	char *leader_ip;          /* what LWS_LEADER_ADDRESS resolves to */
	int leader_wait;          /* a worker waiting for its leader's address */
	uint64_t leader_retry_ms;
	struct http_client_req *leader_req;
	uint64_t group_restart_ms; /* a member failed: recreate the group then */
	/* Secret values (secrets.c), fetched before the pod's processes start */
	cJSON *secrets;           /* {"<container>": {"ENV": "value"}} until used */
	struct http_client_req *secrets_req;
	uint64_t secrets_retry_ms; /* fetch again then (0: no retry pending) */
	int64_t secrets_backoff_ms;
	int secrets_wait;         /* adopted: no (re)start until the values are here */
};

struct agent_timing {
	int64_t backoff_initial_ms;   /* 10 s */
	int64_t backoff_max_ms;       /* 5 min */
	int64_t backoff_reset_ms;     /* 10 min */
	int64_t probe_period_ms;      /* 1 s */
	int64_t heartbeat_ms;         /* 5 s */
	int64_t sync_ms;              /* 2 s: full LIST besides the watch */
	int64_t grace_ms;             /* < 0: the pod's terminationGracePeriodSeconds */
};

struct agent {
	struct event_base *base;
	struct http_client *hc;
	struct workpool *wp;
	struct http_server *srv;
	char *server;             /* "http://HOST:PORT" */
	char *token_file;
	char *node;
	char *data_dir;
	char *labels;             /* "k=v,k2=v2" */
	char *address;            /* this host's address for pods */
	char *listen;             /* the agent's own HTTP server */
	char *agent_url;
	char *credential;
	char **pvcs;
	size_t npvcs;
	char **engine_args;       /* --engine-arg: appended to every engine */
	size_t nengine_args;
	char engine_path[4096];
	char router_path[4096];
	int router_has_sidecar;
	struct gpu gpus[AGENT_MAX_GPUS];
	int ngpus;
	int port_lo, port_hi;
	struct agent_timing t;
	struct pod_rt *pods;
	struct event *tick, *sync, *hb, *sigchld, *sigterm, *sigint;
	struct http_client_req *watch, *list;
	int registered;
	int stopping;
	/*
	 * Under Slurm (--slurm): Slurm sends SIGTERM to every process of the
	 * step when the job ends, so engines and sidecars are told to stop on
	 * SIGUSR2 instead (LLMD_STOP_SIGNAL) and keep serving until their pods
	 * have moved.
	 */
	int slurm;
	uint64_t watch_retry_ms;
};

/* daemon-call.c */
struct buf;
/* b = "Bearer <the node credential>" */
void agent_auth_header(struct agent *a, struct buf *b);
/*
 * METHOD server+path with the node credential (Authorization) and, when
 * content_type is not NULL, body; cb as http_client_request's. NULL when
 * it could not be sent.
 */
struct http_client_req *control_request(struct agent *a, const char *method, const char *path,
    const char *content_type, const char *body, size_t len, http_client_cb cb, void *arg);

/* control.c */
int control_register(struct agent *a, struct llmd_err *e);
void control_start(struct agent *a);
void control_stop(struct agent *a);
/* PATCHes pod status (async); done clears p->reporting. */
void control_patch_status(struct agent *a, struct pod_rt *p, const cJSON *status);
/* Asks the daemon for the pod list now. */
void control_sync_now(struct agent *a);
/* GETs an API path ("/api/v1/..."); cb gets the object or NULL. */
struct http_client_req *control_get_json(struct agent *a, const char *path,
    void (*cb)(const cJSON *obj, void *arg), void *arg);
/* Deletes every pod of an LWS group (RecreateGroupOnPodRestart). */
void control_delete_group(struct agent *a, const char *ns, const char *group_key);

/* hostaddr.c */
/*
 * The local address the route to server_url's host leaves from (numeric,
 * into out): the default --address. 0 or a negative errno.
 */
int agent_route_address(const char *server_url, char *out, size_t outlen);

/* pods.c */
/* The pods the daemon assigns to us (array of Pod objects). */
void pods_sync(struct agent *a, const cJSON *items);
/* Periodic work: restarts, probes, stop deadlines, status reports. */
void pods_tick(struct agent *a);
/* SIGCHLD: reap children. */
void pods_reap(struct agent *a);
/* Reads DATA/state and re-adopts processes still running. */
void pods_adopt(struct agent *a);
/* Stops everything (agent shutdown); blocking up to the grace period. */
void pods_stop_all(struct agent *a);
struct pod_rt *pods_find(struct agent *a, const char *ns, const char *name);

/* secrets.c */
/* Does a container of the pod reference a Secret (valueFrom / envFrom)? */
int secrets_referenced(const cJSON *pod);
/*
 * status: 200 with containers ({"<container>": {"ENV": "value"}}, the
 * callee's: release it with secrets_free), else the HTTP status (422: a
 * missing Secret or key), 0 for a transport failure or a negative errno,
 * with msg saying why (names, never values).
 */
typedef void (*secrets_cb)(int status, cJSON *containers, const char *msg, void *arg);
/* GET /agent/v1/podsecrets for pod ns/name; NULL when it cannot be sent. */
struct http_client_req *secrets_fetch(struct agent *a, const char *ns, const char *name,
    secrets_cb cb, void *arg);
/* "NAME=value" entries of one container, NULL-terminated (maybe empty). */
char **secrets_env(const cJSON *containers, const char *container);
/* Wipe the values, then free. NULL ok. */
void secrets_free(cJSON *containers);
void secrets_strv_free(char **v);

/* logs.c */
int logs_start(struct agent *a, struct llmd_err *e);
void logs_stop(struct agent *a);

#endif
