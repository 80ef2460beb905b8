/*
 * agent/slurm-agent.h - llmd-agent --slurm (agent/slurm-agent.c): job
 * environment into the agent's settings, and draining its node before the
 * job ends.
 */
#ifndef LLMD_AGENT_SLURM_AGENT_H
#define LLMD_AGENT_SLURM_AGENT_H

#include <stdint.h>

#include "lib/err.h"

struct agent;

/*
 * Before registration: node name (unless --node-name), labels (the job's,
 * then --labels), and when *fake_gpus is a bare model ("H100-80GB") the
 * job's GPU count of it. -ENOENT outside a job.
 */
int slurm_agent_setup(struct agent *a, const char **fake_gpus, struct llmd_err *e);
/* After registration: drain margin_ms before the job's end time. */
void slurm_agent_start(struct agent *a, int64_t margin_ms);
/* Cordons the node and evicts its pods through the daemon (once). */
void slurm_agent_drain(struct agent *a, const char *why);
void slurm_agent_stop(void);

#endif
