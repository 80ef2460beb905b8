/*
 * agent/slurm.c - the Slurm job an agent runs in: environment, node name
 * and labels, the job's end time through scontrol (a child process on a
 * worker thread) and the drain-before-the-end watch (see slurm.h).
 */
#include "config.h"
#include "agent/slurm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/workpool.h"

extern char **environ;

/* s lowercased with anything outside [a-z0-9-] as '-', into out. */
static void
dns_label(const char *s, char *out, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '-';
	}
	out[i] = '\0';
}

static int
count_list(const char *s)
{
	int n = 0;

	if (s == NULL || !*s)
		return 0;
	for (n = 1; *s; s++)
		if (*s == ',')
			n++;
	return n;
}

int
slurm_job_from_env(struct slurm_job *j, struct llmd_err *e)
{
	const char *id = getenv("SLURM_JOB_ID"), *node = getenv("SLURMD_NODENAME");
	const char *part = getenv("SLURM_JOB_PARTITION"), *g;
	char nl[64], pl[64];

	memset(j, 0, sizeof(*j));
	if (id == NULL || !*id)
		return err_set(e, -ENOENT, "SLURM_JOB_ID", "not set: --slurm runs as a task of "
		    "a Slurm job step (srun)");
	if (node == NULL || !*node)
		return err_set(e, -ENOENT, "SLURMD_NODENAME", "not set: --slurm runs as a task "
		    "of a Slurm job step (srun)");
	for (const char *p = id; *p; p++)
		if (*p < '0' || *p > '9')
			return err_set(e, -EINVAL, "SLURM_JOB_ID", "\"%s\" is not a job id", id);
	snprintf(j->job_id, sizeof(j->job_id), "%s", id);
	snprintf(j->slurm_node, sizeof(j->slurm_node), "%s", node);
	snprintf(j->partition, sizeof(j->partition), "%s", part ? part : "");
	dns_label(node, nl, sizeof(nl));
	snprintf(j->node_name, sizeof(j->node_name), "slurm-%s-%s", j->job_id, nl);
	if ((g = getenv("SLURM_STEP_GPUS")) == NULL || !*g)
		if ((g = getenv("SLURM_JOB_GPUS")) == NULL || !*g)
			g = getenv("CUDA_VISIBLE_DEVICES");
	snprintf(j->gpus, sizeof(j->gpus), "%s", g ? g : "");
	j->ngpus = count_list(j->gpus);
	dns_label(j->partition, pl, sizeof(pl));
	snprintf(j->labels, sizeof(j->labels), SLURM_LABEL_JOB "=%s," SLURM_LABEL_NODE "=%s,"
	    SLURM_LABEL_POOL "=slurm-%s%s%s", j->job_id, nl, j->job_id,
	    *pl ? "," SLURM_LABEL_PARTITION "=" : "", pl);
	return 0;
}

int
slurm_parse_end_time(const char *line, int64_t *end_ms)
{
	const char *p = line;
	char val[64];
	struct tm tm;
	size_t n;
	time_t t;

	*end_ms = 0;
	for (;;) {
		p = strstr(p, "EndTime=");
		if (p == NULL)
			return -EINVAL;
		if (p == line || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '\t')
			break;
		p++;
	}
	p += strlen("EndTime=");
	n = strcspn(p, " \t\n");
	if (n >= sizeof(val))
		return -EINVAL;
	memcpy(val, p, n);
	val[n] = '\0';
	if (strcmp(val, "Unknown") == 0 || strcmp(val, "None") == 0 || n == 0)
		return 0;
	memset(&tm, 0, sizeof(tm));
	p = strptime(val, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL || *p != '\0')
		return -EINVAL;
	tm.tm_isdst = -1;
	if ((t = mktime(&tm)) == (time_t)-1)
		return -EINVAL;
	*end_ms = (int64_t)t * 1000;
	return 0;
}

int
slurm_query_end_time(const char *job_id, int timeout_ms, int64_t *end_ms, struct llmd_err *e)
{
	char *argv[] = { (char *)"scontrol", (char *)"show", (char *)"job", (char *)"-o",
	    (char *)job_id, NULL };
	posix_spawn_file_actions_t fa;
	struct buf out = BUF_INIT;
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 10000);
	int fds[2], status = 0, rc;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return err_set(e, -errno, "scontrol", "pipe: %s", strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, "scontrol", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		return err_set(e, -rc, "scontrol", "cannot run scontrol: %s", strerror(rc));
	}
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		uint64_t now = now_ms();
		char b[4096];
		ssize_t n;

		if (now >= deadline) {
			kill(pid, SIGKILL);
			rc = err_set(e, -ETIMEDOUT, "scontrol", "scontrol show job %s timed out",
			    job_id);
			break;
		}
		if (poll(&p, 1, (int)(deadline - now)) <= 0)
			continue;
		n = read(fds[0], b, sizeof(b));
		if (n > 0) {
			if (out.len < 65536)
				buf_add(&out, b, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		rc = err_set(e, -ENOENT, "scontrol", "scontrol show job %s failed (status %d)",
		    job_id, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	if (rc == 0 && slurm_parse_end_time(out.buf ? out.buf : "", end_ms) < 0)
		rc = err_set(e, -EINVAL, "scontrol", "no EndTime in: %.200s",
		    out.buf ? out.buf : "");
	buf_release(&out);
	return rc;
}

/* ---- the watch ---- */

struct slurm_watch {
	struct event_base *base;
	struct workpool *wp;
	struct event *timer;
	char job_id[32];
	int64_t margin_ms, poll_ms;
	slurm_drain_fn fn;
	void *arg;
	int querying;       /* a query is on a worker */
	int dead;           /* freed while querying */
	int fired;
	/* written by the worker, read in done */
	int64_t q_end;
	int q_rc;
	struct llmd_err q_err;
	int64_t end_ms;
};

static void
query_work(void *arg)
{
	struct slurm_watch *w = arg;

	err_clear(&w->q_err);
	w->q_rc = slurm_query_end_time(w->job_id, 10000, &w->q_end, &w->q_err);
}

static void
arm(struct slurm_watch *w, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(w->timer, &tv);
}

static void
query_done(void *arg)
{
	struct slurm_watch *w = arg;
	int64_t next = w->poll_ms;

	w->querying = 0;
	if (w->dead) {
		event_free(w->timer);
		free(w);
		return;
	}
	if (w->q_rc < 0) {
		char eb[800];

		log_warnx("slurm job %s: %s", w->job_id, err_str(&w->q_err, eb, sizeof(eb)));
	} else {
		if (w->q_end != w->end_ms && w->q_end > 0)
			log_info("slurm job %s ends at %lld (drain %lld s before)", w->job_id,
			    (long long)(w->q_end / 1000), (long long)(w->margin_ms / 1000));
		w->end_ms = w->q_end;
		if (w->end_ms > 0 && !w->fired) {
			int64_t left = w->end_ms - w->margin_ms - wall_ms();

			if (left <= 0) {
				char why[128];

				w->fired = 1;
				snprintf(why, sizeof(why), "Slurm job %s ends in %lld s", w->job_id,
				    (long long)((w->end_ms - wall_ms()) / 1000));
				w->fn(why, w->arg);
			} else if (left < next) {
				next = left;
			}
		}
	}
	if (!w->fired)
		arm(w, next);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct slurm_watch *w = arg;

	(void)fd;
	(void)what;
	if (w->querying || w->fired)
		return;
	if (workpool_submit(w->wp, query_work, query_done, w) == 0)
		w->querying = 1;
	else
		arm(w, w->poll_ms);
}

struct slurm_watch *
slurm_watch_start(struct event_base *base, struct workpool *wp, const struct slurm_job *j,
    int64_t margin_ms, int64_t poll_ms, slurm_drain_fn fn, void *arg)
{
	struct slurm_watch *w = xcalloc(1, sizeof(*w));

	w->base = base;
	w->wp = wp;
	snprintf(w->job_id, sizeof(w->job_id), "%s", j->job_id);
	w->margin_ms = margin_ms > 0 ? margin_ms : 0;
	w->poll_ms = poll_ms > 0 ? poll_ms : 60000;
	w->fn = fn;
	w->arg = arg;
	w->timer = evtimer_new(base, on_timer, w);
	arm(w, 0);
	return w;
}

int64_t
slurm_watch_end_ms(const struct slurm_watch *w)
{
	return w->end_ms;
}

void
slurm_watch_free(struct slurm_watch *w)
{
	if (w == NULL)
		return;
	evtimer_del(w->timer);
	if (w->querying) {
		w->dead = 1;
		return;
	}
	event_free(w->timer);
	free(w);
}
