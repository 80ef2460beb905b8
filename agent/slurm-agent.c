/*
 * agent/slurm-agent.c - `llmd-agent --slurm`: the agent's node name,
 * labels and GPU count from the Slurm job step (agent/slurm.c), and the
 * drain of its own node (POST /agent/v1/drain with the node credential) a
 * margin before the job's end time.
 */
#include "config.h"
#include "agent/slurm-agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/slurm.h"
#include "lib/buf.h"
#include "lib/http_client.h"
#include "lib/log.h"
#include "lib/util.h"

static struct slurm_job job;
static struct slurm_watch *watch;
static int drained;

int
slurm_agent_setup(struct agent *a, const char **fake_gpus, struct llmd_err *e)
{
	static char fake[64];
	int rc;

	if ((rc = slurm_job_from_env(&job, e)) < 0)
		return rc;
	if (a->node == NULL)
		a->node = xstrdup(job.node_name);
	if (a->labels != NULL && *a->labels) {
		struct buf l = BUF_INIT;

		buf_addf(&l, "%s,%s", job.labels, a->labels);
		free(a->labels);
		a->labels = xstrdup(l.buf);
		buf_release(&l);
	} else {
		free(a->labels);
		a->labels = xstrdup(job.labels);
	}
	/* with --slurm-fake-gpus-model, the job's GPU count as fake GPUs */
	if (fake_gpus != NULL && *fake_gpus != NULL && strchr(*fake_gpus, 'x') == NULL &&
	    job.ngpus > 0) {
		snprintf(fake, sizeof(fake), "%dx%s", job.ngpus, *fake_gpus);
		*fake_gpus = fake;
	}
	log_info("Slurm job %s on %s: node %s, GPUs %s", job.job_id, job.slurm_node, a->node,
	    *job.gpus ? job.gpus : "none");
	return 0;
}

static void
drain_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	(void)arg;
	if (resp == NULL)
		log_warnx("draining the node failed: %s", e ? e->msg : "?");
	else if (resp->status != 200)
		log_warnx("draining the node failed: HTTP %d %.200s", resp->status, resp->body);
	else
		log_info("node drained: %.200s", resp->body);
}

void
slurm_agent_drain(struct agent *a, const char *why)
{
	struct buf body = BUF_INIT;
	cJSON *o;
	char *s;

	if (drained)
		return;
	drained = 1;
	log_info("draining node %s: %s", a->node, why);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "reason", why);
	s = cJSON_PrintUnformatted(o);
	buf_adds(&body, s);
	free(s);
	cJSON_Delete(o);
	if (control_request(a, "POST", "/agent/v1/drain", "application/json", body.buf, body.len,
	    drain_done, NULL) == NULL)
		log_warnx("draining the node failed: cannot send the request");
	buf_release(&body);
}

static void
on_deadline(const char *why, void *arg)
{
	slurm_agent_drain(arg, why);
}

void
slurm_agent_start(struct agent *a, int64_t margin_ms)
{
	watch = slurm_watch_start(a->base, a->wp, &job, margin_ms, 60000, on_deadline, a);
}

void
slurm_agent_stop(void)
{
	slurm_watch_free(watch);
	watch = NULL;
}
