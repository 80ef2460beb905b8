/*
 * agent/slurm.h - llmd-agent inside a Slurm job (`llmd-agent --slurm`, one
 * task per node of a job step, see etc/slurm/llmd-agents.sbatch): the job,
 * node and GPUs from the step's environment, the node's llmd name and
 * labels, the job's end time from `scontrol show job -o` (a child process,
 * run on a workpool thread: never on the event loop), and a watch that
 * calls back a configurable margin before the end so the agent drains its
 * node and pods move before Slurm kills the step. (SIGTERM from scancel is
 * the agent's own signal handling: it should drain the same way.)
 *
 * Use from agent/main.c:
 *	struct slurm_job j;
 *	if (slurm_job_from_env(&j, &e) < 0) fatalx(...);   // --slurm outside a job
 *	node_name = j.node_name; labels = j.labels (append the user's);
 *	gpus = j.gpus (indices, "0,1");
 *	w = slurm_watch_start(base, wp, &j, margin_ms, 60000, drain_node, agent);
 */
#ifndef LLMD_AGENT_SLURM_H
#define LLMD_AGENT_SLURM_H

#include <stdint.h>

#include "lib/err.h"

struct event_base;
struct workpool;

#define SLURM_LABEL_JOB "slurm.schedmd.com/job-id"
#define SLURM_LABEL_NODE "slurm.schedmd.com/node"
#define SLURM_LABEL_PARTITION "slurm.schedmd.com/partition"
#define SLURM_LABEL_POOL "llmd.io/nodepool"

struct slurm_job {
	char job_id[32];
	char slurm_node[64];     /* SLURMD_NODENAME */
	char node_name[128];     /* llmd Node name: "slurm-JOBID-NODE" (DNS label) */
	char partition[64];
	char gpus[256];          /* SLURM_STEP_GPUS, SLURM_JOB_GPUS or CUDA_VISIBLE_DEVICES */
	int ngpus;
	char labels[512];        /* for --labels: job id, node, partition, pool */
};

/* Reads the environment; -ENOENT (e says which variable) outside a job. */
int slurm_job_from_env(struct slurm_job *j, struct llmd_err *e);

/*
 * EndTime of one `scontrol show job -o` line as wall-clock ms (local time,
 * as scontrol prints it); 0 for Unknown/None (no time limit); -EINVAL when
 * the line has no EndTime.
 */
int slurm_parse_end_time(const char *line, int64_t *end_ms);

/*
 * Runs `scontrol show job -o JOBID` (PATH, SLURM_CONF inherited) and
 * parses its EndTime. Blocking (up to timeout_ms): call it on a worker.
 */
int slurm_query_end_time(const char *job_id, int timeout_ms, int64_t *end_ms,
    struct llmd_err *e);

struct slurm_watch;
typedef void (*slurm_drain_fn)(const char *why, void *arg);

/*
 * Polls the job's end time every poll_ms (0: 60 s; a time limit may be
 * extended) on wp's workers and calls fn once, on base's loop, when
 * end - margin_ms has come.
 */
struct slurm_watch *slurm_watch_start(struct event_base *base, struct workpool *wp,
    const struct slurm_job *j, int64_t margin_ms, int64_t poll_ms, slurm_drain_fn fn,
    void *arg);
/* The last end time seen (wall ms; 0 unknown or unlimited). */
int64_t slurm_watch_end_ms(const struct slurm_watch *w);
/* Stops it; safe while a query runs (then freed when it ends). NULL ok. */
void slurm_watch_free(struct slurm_watch *w);

#endif
