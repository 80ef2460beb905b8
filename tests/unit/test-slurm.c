/*
 * tests/unit/test-slurm.c - agent/slurm: the job from a step's environment
 * (node name, GPUs, labels), EndTime parsing, scontrol as a child process
 * (a fake scontrol on PATH) and the drain watch firing on the loop.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/slurm.h"
#include "lib/workpool.h"

static void
clear_env(void)
{
	unsetenv("SLURM_JOB_ID");
	unsetenv("SLURMD_NODENAME");
	unsetenv("SLURM_STEP_GPUS");
	unsetenv("SLURM_JOB_GPUS");
	unsetenv("CUDA_VISIBLE_DEVICES");
	unsetenv("SLURM_JOB_PARTITION");
}

Test(slurm, job_from_a_step_environment)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct slurm_job j;

	clear_env();
	setenv("SLURM_JOB_ID", "4242", 1);
	setenv("SLURMD_NODENAME", "GPU_Node1", 1);
	setenv("SLURM_JOB_GPUS", "0,1,2,3", 1);
	setenv("SLURM_STEP_GPUS", "2,3", 1);
	setenv("SLURM_JOB_PARTITION", "debug", 1);
	cr_assert_eq(slurm_job_from_env(&j, &e), 0, "%s", e.msg);
	cr_assert_str_eq(j.job_id, "4242");
	cr_assert_str_eq(j.slurm_node, "GPU_Node1");
	cr_assert_str_eq(j.node_name, "slurm-4242-gpu-node1");
	cr_assert_str_eq(j.gpus, "2,3");   /* the step's, not the job's */
	cr_assert_eq(j.ngpus, 2);
	cr_assert_str_eq(j.labels, "slurm.schedmd.com/job-id=4242,slurm.schedmd.com/node="
	    "gpu-node1,llmd.io/nodepool=slurm-4242,slurm.schedmd.com/partition=debug");

	unsetenv("SLURM_STEP_GPUS");
	unsetenv("SLURM_JOB_GPUS");
	setenv("CUDA_VISIBLE_DEVICES", "5", 1);
	unsetenv("SLURM_JOB_PARTITION");
	cr_assert_eq(slurm_job_from_env(&j, &e), 0, "%s", e.msg);
	cr_assert_str_eq(j.gpus, "5");
	cr_assert_eq(j.ngpus, 1);
	cr_assert(strstr(j.labels, "partition") == NULL);
	clear_env();
}

Test(slurm, outside_a_job_names_the_variable)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct slurm_job j;

	clear_env();
	cr_assert_eq(slurm_job_from_env(&j, &e), -ENOENT);
	cr_assert_str_eq(e.field, "SLURM_JOB_ID");
	setenv("SLURM_JOB_ID", "12", 1);
	cr_assert_eq(slurm_job_from_env(&j, &e), -ENOENT);
	cr_assert_str_eq(e.field, "SLURMD_NODENAME");
	setenv("SLURMD_NODENAME", "n1", 1);
	setenv("SLURM_JOB_ID", "12;rm", 1);
	cr_assert_eq(slurm_job_from_env(&j, &e), -EINVAL);
	clear_env();
}

static int64_t
local_ms(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
	    .tm_min = mi, .tm_sec = s, .tm_isdst = -1 };

	return (int64_t)mktime(&tm) * 1000;
}

Test(slurm, end_time_parsing)
{
	int64_t ms;

	cr_assert_eq(slurm_parse_end_time("JobId=7 JobName=llmd-agents TimeLimit=00:10:00 "
	    "StartTime=2030-01-02T02:54:05 PreemptEndTime=1999-01-01T00:00:00 "
	    "EndTime=2030-01-02T03:04:05 Deadline=N/A", &ms), 0);
	cr_assert_eq(ms, local_ms(2030, 1, 2, 3, 4, 5));
	cr_assert_eq(slurm_parse_end_time("EndTime=Unknown", &ms), 0);
	cr_assert_eq(ms, 0);
	cr_assert_eq(slurm_parse_end_time("JobId=7 EndTime=None Foo=1", &ms), 0);
	cr_assert_eq(ms, 0);
	cr_assert_eq(slurm_parse_end_time("JobId=7 StartTime=2030-01-02T02:54:05", &ms), -EINVAL);
	cr_assert_eq(slurm_parse_end_time("EndTime=tomorrow", &ms), -EINVAL);
}

/* A fake scontrol first on PATH: prints a line for job 7, fails otherwise. */
static char bindir[64];

static void
fake_scontrol(const char *end)
{
	char path[128], newpath[4096];
	FILE *f;

	snprintf(bindir, sizeof(bindir), "/tmp/llmd-test-slurm.XXXXXX");
	cr_assert_not_null(mkdtemp(bindir));
	snprintf(path, sizeof(path), "%s/scontrol", bindir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\n[ \"$1 $2 $3 $4\" = \"show job -o 7\" ] || exit 1\n"
	    "echo \"JobId=7 JobState=RUNNING TimeLimit=00:10:00 EndTime=%s Deadline=N/A\"\n", end);
	fclose(f);
	chmod(path, 0755);
	snprintf(newpath, sizeof(newpath), "%s:%s", bindir, getenv("PATH"));
	setenv("PATH", newpath, 1);
}

static void
rm_fake(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", bindir);
	cr_assert_eq(system(cmd), 0);
}

Test(slurm, scontrol_child_process)
{
	struct llmd_err e = LLMD_ERR_INIT;
	int64_t ms;

	fake_scontrol("2031-05-06T07:08:09");
	cr_assert_eq(slurm_query_end_time("7", 5000, &ms, &e), 0, "%s", e.msg);
	cr_assert_eq(ms, local_ms(2031, 5, 6, 7, 8, 9));
	cr_assert_eq(slurm_query_end_time("8", 5000, &ms, &e), -ENOENT);
	cr_assert_str_eq(e.field, "scontrol");
	rm_fake();
}

struct drained {
	struct event_base *base;
	int calls;
	char why[128];
};

static void
on_drain(const char *why, void *arg)
{
	struct drained *d = arg;

	d->calls++;
	snprintf(d->why, sizeof(d->why), "%s", why);
	event_base_loopexit(d->base, &(struct timeval){ 0, 200000 });
}

Test(slurm, watch_drains_before_the_end)
{
	struct drained d = { 0 };
	struct slurm_job j = { .job_id = "7" };
	struct workpool *wp;
	struct slurm_watch *w;

	/* the job ends in 60 s; with a 10 min margin that is now */
	{
		time_t t = time(NULL) + 60;
		struct tm tm;
		char end[32];

		localtime_r(&t, &tm);
		strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%S", &tm);
		fake_scontrol(end);
	}
	d.base = event_base_new();
	wp = workpool_new(d.base, 1, 0);
	w = slurm_watch_start(d.base, wp, &j, 600000, 100, on_drain, &d);
	event_base_loopexit(d.base, &(struct timeval){ 20, 0 });   /* a safety net */
	event_base_dispatch(d.base);
	cr_assert_eq(d.calls, 1);
	cr_assert(strstr(d.why, "Slurm job 7 ends in") != NULL, "%s", d.why);
	cr_assert_gt(slurm_watch_end_ms(w), 0);
	slurm_watch_free(w);
	workpool_free(wp);
	event_base_free(d.base);
	rm_fake();
}
