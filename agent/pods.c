/*
 * agent/pods.c - the pods this node runs: GPU and host-port allocation, the
 * storage initializer (on the workpool), one process group per container
 * with its env, working dir and a log file, readiness/liveness probes on
 * /health, restarts with exponential back-off, SIGTERM then SIGKILL after
 * the grace period, pod status (phase, conditions, containerStatuses, podIP,
 * httpPort) and a state file per pod so a restarted agent re-adopts its
 * running processes (pid + start time) instead of orphaning or duplicating
 * them. A pod referencing Secrets gets their values from the daemon
 * (secrets.c) before its storage initializer and processes start; a
 * missing Secret or key is CreateContainerConfigError, retried with
 * back-off.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/workpool.h"

extern char **environ;

static const char *
jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const cJSON *
jget(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *
label(const cJSON *pod, const char *k)
{
	return jstr(jget(jget(pod, "metadata"), "labels"), k);
}

#define LWS_LABEL(x) "leaderworkerset.sigs.k8s.io/" x

/* s with every occurrence of from replaced by to (new string). */
static char *
replace_all(const char *s, const char *from, const char *to)
{
	struct buf b = BUF_INIT;
	size_t fl = strlen(from);
	const char *hit;

	while (fl && (hit = strstr(s, from)) != NULL) {
		buf_add(&b, s, (size_t)(hit - s));
		buf_adds(&b, to);
		s = hit + fl;
	}
	buf_adds(&b, s);
	return buf_detach(&b, NULL);
}

static void
strv_replace(char **v, const char *from, const char *to)
{
	size_t i;

	for (i = 0; v && v[i]; i++) {
		char *n = replace_all(v[i], from, to);

		free(v[i]);
		v[i] = n;
	}
}

static void
strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

static void
mkdirs(const char *path)
{
	char tmp[4096];
	char *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	mkdir(tmp, 0755);
}

static void
pod_dir(const struct pod_rt *p, const char *sub, char *out, size_t len)
{
	snprintf(out, len, "%s/pods/%s%s%s", p->agent->data_dir, p->uid, sub ? "/" : "",
	    sub ? sub : "");
}

/* Field 22 of /proc/PID/stat (start time in clock ticks); 0 when gone or a zombie. */
static unsigned long long
proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	FILE *f;
	int i;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return 0;
	for (i = 3; i < 22 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		st = strtoull(p, NULL, 10);
	return st;
}

struct pod_rt *
pods_find(struct agent *a, const char *ns, const char *name)
{
	struct pod_rt *p;

	for (p = a->pods; p; p = p->next)
		if (strcmp(p->ns, ns) == 0 && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* ---- state file (adoption after an agent restart) ---- */

static void
state_path(const struct agent *a, const char *uid, char *out, size_t len)
{
	snprintf(out, len, "%s/state/%s.json", a->data_dir, uid);
}

static void
state_write(struct pod_rt *p)
{
	cJSON *o = cJSON_CreateObject(), *procs, *g;
	char path[4096], tmp[4200];
	struct buf b = BUF_INIT;
	FILE *f;
	int i;

	cJSON_AddStringToObject(o, "namespace", p->ns);
	cJSON_AddStringToObject(o, "name", p->name);
	cJSON_AddStringToObject(o, "uid", p->uid);
	cJSON_AddNumberToObject(o, "port", p->port);
	cJSON_AddNumberToObject(o, "extraPort", p->extra_port);
	cJSON_AddNumberToObject(o, "kvPort", p->kv_port);
	if (p->model_path)
		cJSON_AddStringToObject(o, "modelPath", p->model_path);
	{
		cJSON *vols = cJSON_AddObjectToObject(o, "volumes");

		for (i = 0; i < p->nvols; i++)
			cJSON_AddStringToObject(vols, p->vol_names[i], p->vol_paths[i]);
	}
	if (p->leader_ip)
		cJSON_AddStringToObject(o, "leaderIP", p->leader_ip);
	g = cJSON_AddArrayToObject(o, "gpus");
	for (i = 0; i < p->ngpus; i++)
		cJSON_AddItemToArray(g, cJSON_CreateNumber(p->gpus[i]));
	procs = cJSON_AddArrayToObject(o, "procs");
	for (i = 0; i < p->nprocs; i++) {
		cJSON *x = cJSON_CreateObject();

		cJSON_AddStringToObject(x, "container", p->procs[i].container);
		cJSON_AddNumberToObject(x, "pid", p->procs[i].pid);
		cJSON_AddNumberToObject(x, "startTime", (double)p->procs[i].start_time);
		cJSON_AddNumberToObject(x, "restarts", p->procs[i].restarts);
		cJSON_AddNumberToObject(x, "stopSignal", p->procs[i].stop_sig);
		cJSON_AddItemToArray(procs, x);
	}
	json_print_compact(o, &b);
	cJSON_Delete(o);
	snprintf(path, sizeof(path), "%s/state", p->agent->data_dir);
	mkdirs(path);
	state_path(p->agent, p->uid, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) != NULL) {
		fwrite(b.buf, 1, b.len, f);
		if (fflush(f) == 0)
			fsync(fileno(f));
		if (fclose(f) == 0)
			rename(tmp, path);
	}
	buf_release(&b);
}

static void
state_remove(struct pod_rt *p)
{
	char path[4096];

	state_path(p->agent, p->uid, path, sizeof(path));
	unlink(path);
}

/* ---- resources ---- */

static int
gpu_request(const cJSON *pod)
{
	const char *lists[] = { "containers", "initContainers" };
	const cJSON *c;
	int total = 0, i;

	for (i = 0; i < 2; i++)
		cJSON_ArrayForEach(c, jget(jget(pod, "spec"), lists[i])) {
			const cJSON *lim = jget(jget(c, "resources"), "limits");
			const char *v = jstr(lim, "nvidia.com/gpu");
			const cJSON *n = jget(lim, "nvidia.com/gpu");

			if (i == 1)
				continue;   /* init containers run before: no extra GPUs */
			if (v)
				total += atoi(v);
			else if (cJSON_IsNumber(n))
				total += n->valueint;
		}
	return total;
}

static int
gpu_in_use(struct agent *a, int idx)
{
	struct pod_rt *p;
	int i;

	for (p = a->pods; p; p = p->next)
		for (i = 0; i < p->ngpus; i++)
			if (p->gpus[i] == idx)
				return 1;
	return 0;
}

static int
port_in_use(struct agent *a, int port)
{
	struct pod_rt *p;
	struct sockaddr_in sa;
	int fd, rc, one = 1;

	for (p = a->pods; p; p = p->next)
		if (p->port == port || p->extra_port == port || p->kv_port == port)
			return 1;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc < 0;
}

static int
alloc_port(struct agent *a)
{
	int p;

	for (p = a->port_lo; p <= a->port_hi; p++)
		if (!port_in_use(a, p))
			return p;
	return -1;
}

/* ---- status ---- */

static void
pod_fail(struct pod_rt *p, const char *reason, const char *fmt, ...) LLMD_PRINTF(3, 4);

static void
pod_fail(struct pod_rt *p, const char *reason, const char *fmt, ...)
{
	va_list ap;
	struct buf b = BUF_INIT;

	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	free(p->reason);
	free(p->message);
	p->reason = xstrdup(reason);
	p->message = buf_detach(&b, NULL);
	p->state = POD_FAILED;
	log_warnx("pod %s/%s: %s: %s", p->ns, p->name, p->reason, p->message);
}

static void
add_cond(cJSON *arr, const char *type, int ok, const char *reason, const char *msg)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "status", ok ? "True" : "False");
	if (reason)
		cJSON_AddStringToObject(c, "reason", reason);
	if (msg)
		cJSON_AddStringToObject(c, "message", msg);
	cJSON_AddItemToArray(arr, c);
}

static cJSON *
pod_status(struct pod_rt *p)
{
	cJSON *st = cJSON_CreateObject(), *conds, *cs;
	int i, all_ready = p->nprocs > 0 || p->state == POD_RUNNING, any_running = 0;
	const char *why = NULL;
	char wbuf[600];
	uint64_t now = now_ms();

	for (i = 0; i < p->nprocs; i++) {
		if (p->procs[i].pid > 0)
			any_running = 1;
		if (!p->procs[i].ready)
			all_ready = 0;
	}
	if (p->state == POD_FAILED)
		all_ready = 0;
	cJSON_AddStringToObject(st, "phase", p->state == POD_RUNNING &&
	    (any_running || p->nprocs == 0) ? "Running" : "Pending");
	if (p->agent->address) {
		cJSON_AddStringToObject(st, "hostIP", p->agent->address);
		cJSON_AddStringToObject(st, "podIP", p->agent->address);
	}
	if (p->port > 0)
		cJSON_AddNumberToObject(st, "httpPort", p->port);
	conds = cJSON_AddArrayToObject(st, "conditions");
	add_cond(conds, "PodScheduled", 1, NULL, NULL);
	if (p->state == POD_FAILED) {
		add_cond(conds, "Initialized", 0, p->reason, p->message);
		why = p->reason;
		snprintf(wbuf, sizeof(wbuf), "%s", p->message);
	} else if (p->state == POD_STARTING) {
		add_cond(conds, "Initialized", 0, "StorageInitializing",
		    p->progress ? p->progress : "fetching the model");
		why = "StorageInitializing";
		snprintf(wbuf, sizeof(wbuf), "%s", p->progress ? p->progress : "fetching the model");
	} else {
		add_cond(conds, "Initialized", 1, NULL, NULL);
	}
	if (!why && !all_ready) {
		why = "ContainersNotReady";
		snprintf(wbuf, sizeof(wbuf), "containers with unready status:");
		for (i = 0; i < p->nprocs; i++)
			if (!p->procs[i].ready)
				snprintf(wbuf + strlen(wbuf), sizeof(wbuf) - strlen(wbuf), " [%s]",
				    p->procs[i].container);
	}
	add_cond(conds, "ContainersReady", all_ready, all_ready ? NULL : why,
	    all_ready ? NULL : wbuf);
	add_cond(conds, "Ready", all_ready, all_ready ? NULL : why, all_ready ? NULL : wbuf);
	cs = cJSON_AddArrayToObject(st, "containerStatuses");
	for (i = 0; i < p->nprocs; i++) {
		struct proc *x = &p->procs[i];
		cJSON *o = cJSON_CreateObject(), *state = cJSON_AddObjectToObject(o, "state");

		cJSON_AddStringToObject(o, "name", x->container);
		cJSON_AddBoolToObject(o, "ready", x->ready);
		cJSON_AddBoolToObject(o, "started", x->pid > 0);
		cJSON_AddNumberToObject(o, "restartCount", x->restarts);
		if (x->pid > 0) {
			cJSON *r = cJSON_AddObjectToObject(state, "running");

			cJSON_AddNumberToObject(r, "pid", x->pid);
		} else {
			cJSON *w = cJSON_AddObjectToObject(state, "waiting");
			char m[200];

			cJSON_AddStringToObject(w, "reason", x->restarts > 0 ?
			    "CrashLoopBackOff" : "ContainerCreating");
			if (x->restarts > 0) {
				snprintf(m, sizeof(m), "back-off %llds restarting failed "
				    "container %s (last exit status %d)",
				    (long long)((x->next_start_ms > now ? x->next_start_ms - now : 0)
				    / 1000), x->container, x->last_exit);
				cJSON_AddStringToObject(w, "message", m);
			}
		}
		cJSON_AddItemToArray(cs, o);
	}
	return st;
}

static void
report(struct pod_rt *p)
{
	cJSON *st;
	struct buf b = BUF_INIT;

	if (p->reporting || p->gone || p->pod == NULL)
		return;
	st = pod_status(p);
	json_print_compact(st, &b);
	if (p->reported == NULL || strcmp(p->reported, b.buf) != 0) {
		free(p->reported);
		p->reported = buf_detach(&b, NULL);
		p->reporting = 1;
		control_patch_status(p->agent, p, st);
	}
	buf_release(&b);
	cJSON_Delete(st);
}

/* ---- processes ---- */

static void
proc_release(struct proc *x)
{
	if (x->probe)
		http_client_cancel(x->probe);
	free(x->container);
	strv_free(x->argv);
	secrets_strv_free(x->env);   /* may hold Secret values */
	free(x->cwd);
	free(x->log_path);
	memset(x, 0, sizeof(*x));
}

static void
spawn(struct pod_rt *p, struct proc *x)
{
	pid_t pid;
	int fd;

	if (x->argv == NULL)
		return;
	fd = open(x->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_warn("pod %s/%s: %s", p->ns, p->name, x->log_path);
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("fork");
		close(fd);
		return;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		sigset_t all;

		setpgid(0, 0);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (x->cwd && chdir(x->cwd) < 0)
			dprintf(2, "llmd-agent: chdir %s: %s\n", x->cwd, strerror(errno));
		execve(x->argv[0], x->argv, x->env);
		dprintf(2, "llmd-agent: exec %s: %s\n", x->argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(fd);
	x->pid = pid;
	x->adopted = 0;
	x->started_ms = now_ms();
	x->start_time = 0;
	x->ready = 0;
	x->been_ready = 0;
	x->live_failures = 0;
	{
		/* /proc/PID/stat of the new child: retry briefly until exec is visible. */
		int i;

		for (i = 0; i < 50 && x->start_time == 0; i++)
			x->start_time = proc_start_time(pid);
	}
	{
		struct buf cmd = BUF_INIT;
		size_t i;

		for (i = 0; x->argv[i]; i++)
			buf_addf(&cmd, "%s%s", i ? " " : "", x->argv[i]);
		log_info("pod %s/%s: started %s (pid %d): %s", p->ns, p->name, x->container,
		    (int)pid, cmd.buf);
		buf_release(&cmd);
	}
	state_write(p);
}

static void
exited(struct pod_rt *p, struct proc *x, int status)
{
	struct agent *a = p->agent;
	uint64_t now = now_ms();
	int64_t ran = (int64_t)(now - x->started_ms);
	pid_t pid = x->pid;

	x->pid = 0;
	x->ready = 0;
	x->last_exit = WIFEXITED(status) ? WEXITSTATUS(status) :
	    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
	if (p->state == POD_STOPPING || p->gone)
		return;
	if (ran >= a->t.backoff_reset_ms)
		x->backoff_ms = 0;
	x->backoff_ms = x->backoff_ms == 0 ? a->t.backoff_initial_ms :
	    MIN(x->backoff_ms * 2, a->t.backoff_max_ms);
	x->next_start_ms = now + (uint64_t)x->backoff_ms;
	x->restarts++;
	/* RecreateGroupOnPodRestart: the whole group is recreated instead. */
	if (label(p->pod, LWS_LABEL("group-key")) && p->group_restart_ms == 0)
		p->group_restart_ms = x->next_start_ms;
	log_warnx("pod %s/%s: %s (pid %d) exited with status %d after %lld ms; restart in "
	    "%lld ms", p->ns, p->name, x->container, (int)pid, x->last_exit, (long long)ran,
	    (long long)x->backoff_ms);
	state_write(p);
}

void
pods_reap(struct agent *a)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct pod_rt *p;
		int i;

		for (p = a->pods; p; p = p->next)
			for (i = 0; i < p->nprocs; i++)
				if (p->procs[i].pid == pid && !p->procs[i].adopted)
					exited(p, &p->procs[i], status);
	}
}

static void
signal_proc(struct proc *x, int sig)
{
	if (x->pid > 0 && (x->adopted ? proc_start_time(x->pid) == x->start_time : 1))
		if (kill(-x->pid, sig) < 0)
			kill(x->pid, sig);
}

/* ---- building the processes from the pod spec ---- */

struct mounts {
	struct mount_map m[32];
	char *owned[32];
	size_t n;
};

static const cJSON *
find_named(const cJSON *arr, const char *name)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, arr)
		if (jstr(v, "name") && strcmp(jstr(v, "name"), name) == 0)
			return v;
	return NULL;
}

/* Host path of volume `name`, or NULL with a failure set. */
static char *
volume_host_path(struct pod_rt *p, const char *name)
{
	const cJSON *v = find_named(jget(jget(p->pod, "spec"), "volumes"), name);
	char path[4096];

	if (v == NULL)
		return NULL;
	if (jget(v, "hostPath"))
		return jstr(jget(v, "hostPath"), "path") ?
		    xstrdup(jstr(jget(v, "hostPath"), "path")) : NULL;
	{
		int i;

		for (i = 0; i < p->nvols; i++)
			if (strcmp(p->vol_names[i], name) == 0)
				return xstrdup(p->vol_paths[i]);
	}
	if (jget(v, "persistentVolumeClaim")) {
		const char *claim = jstr(jget(v, "persistentVolumeClaim"), "claimName");
		size_t i;

		for (i = 0; claim && i < p->agent->npvcs; i++) {
			const char *eq = strchr(p->agent->pvcs[i], '=');

			if (eq && (size_t)(eq - p->agent->pvcs[i]) == strlen(claim) &&
			    strncmp(p->agent->pvcs[i], claim, strlen(claim)) == 0)
				return xstrdup(eq + 1);
		}
		return NULL;
	}
	/* emptyDir and anything else: a per-pod directory. */
	snprintf(path, sizeof(path), "%s/pods/%s/volumes/%s", p->agent->data_dir, p->uid, name);
	mkdirs(path);
	return xstrdup(path);
}

static void
container_mounts(struct pod_rt *p, const cJSON *c, struct mounts *m)
{
	const cJSON *vm;

	m->n = 0;
	cJSON_ArrayForEach(vm, jget(c, "volumeMounts")) {
		const char *mp = jstr(vm, "mountPath"), *name = jstr(vm, "name");
		const char *sub = jstr(vm, "subPath");
		char *hp;

		if (!mp || !name || m->n == ARRAY_SIZE(m->m))
			continue;
		if ((hp = volume_host_path(p, name)) == NULL)
			continue;
		if (sub && *sub) {
			struct buf b = BUF_INIT;

			buf_addf(&b, "%s/%s", hp, sub);
			free(hp);
			hp = buf_detach(&b, NULL);
		}
		m->owned[m->n] = hp;
		m->m[m->n].mount_path = mp;
		m->m[m->n].host_path = hp;
		m->n++;
	}
}

static void
mounts_release(struct mounts *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->owned[i]);
	m->n = 0;
}

/* Is NAME (of "NAME=value") already in v[0..n)? */
static int
env_has(char **v, size_t n, const char *entry)
{
	size_t len = strcspn(entry, "="), i;

	for (i = 0; i < n; i++)
		if (strncmp(v[i], entry, len) == 0 && v[i][len] == '=')
			return 1;
	return 0;
}

static void
env_add(char ***v, size_t *n, char *entry)
{
	if (env_has(*v, *n, entry)) {
		free(entry);
		return;
	}
	*v = xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = entry;
	(*v)[*n] = NULL;
}

/*
 * A process's environment, first entry of a name wins: what the agent
 * decides (GPUs, pod identity), the container's env, its Secret values,
 * per-pod defaults (an engine's NIXL side channel on its own port), then
 * the agent's own.
 */
static char **
full_env(struct pod_rt *p, char **cenv, char **senv, enum proc_kind kind)
{
	struct buf b = BUF_INIT;
	char **out = NULL;
	size_t n = 0, i;
	int g;

	buf_adds(&b, "CUDA_VISIBLE_DEVICES=");
	for (g = 0; g < p->ngpus; g++)
		buf_addf(&b, "%s%d", g ? "," : "", p->gpus[g]);
	env_add(&out, &n, buf_detach(&b, NULL));
	buf_addf(&b, "LLMD_POD_NAME=%s", p->name);
	env_add(&out, &n, buf_detach(&b, NULL));
	buf_addf(&b, "LLMD_POD_NAMESPACE=%s", p->ns);
	env_add(&out, &n, buf_detach(&b, NULL));
	buf_addf(&b, "LLMD_NODE_NAME=%s", p->agent->node);
	env_add(&out, &n, buf_detach(&b, NULL));
	for (i = 0; cenv && cenv[i]; i++)
		env_add(&out, &n, xstrdup(cenv[i]));
	for (i = 0; senv && senv[i]; i++)
		env_add(&out, &n, xstrdup(senv[i]));
	if (p->agent->slurm && (kind == PROC_ENGINE || kind == PROC_SIDECAR))
		env_add(&out, &n, xstrdup("LLMD_STOP_SIGNAL=USR2"));
	if (kind == PROC_ENGINE && p->kv_port > 0) {
		buf_addf(&b, "VLLM_NIXL_SIDE_CHANNEL_PORT=%d", p->kv_port);
		env_add(&out, &n, buf_detach(&b, NULL));
		buf_addf(&b, "VLLM_NIXL_SIDE_CHANNEL_HOST=%s", p->agent->address);
		env_add(&out, &n, buf_detach(&b, NULL));
	}
	for (i = 0; environ[i]; i++) {
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) == 0 ||
		    strncmp(environ[i], "LISTEN_", 7) == 0)
			continue;
		env_add(&out, &n, xstrdup(environ[i]));
	}
	return out;
}

/* Builds p->procs from the spec (keeping pids of adopted processes by name). */
static int
prepare_procs(struct pod_rt *p)
{
	struct agent *a = p->agent;
	const cJSON *c, *run[AGENT_MAX_PROCS * 2];
	struct proc old[AGENT_MAX_PROCS];
	int nold = p->nprocs, i, has_sidecar = 0, nrun = 0, r;
	char logdir[4096];

	/* Native sidecars (init containers with restartPolicy Always) first. */
	cJSON_ArrayForEach(c, jget(jget(p->pod, "spec"), "initContainers")) {
		const char *rp = jstr(c, "restartPolicy");

		if (rp && strcmp(rp, "Always") == 0 && nrun < (int)ARRAY_SIZE(run))
			run[nrun++] = c;
	}
	cJSON_ArrayForEach(c, jget(jget(p->pod, "spec"), "containers"))
		if (nrun < (int)ARRAY_SIZE(run))
			run[nrun++] = c;

	memcpy(old, p->procs, sizeof(old));
	memset(p->procs, 0, sizeof(p->procs));
	p->nprocs = 0;
	pod_dir(p, "logs", logdir, sizeof(logdir));
	mkdirs(logdir);
	for (r = 0; r < nrun; r++)
		if (translate_is_sidecar(run[r]))
			has_sidecar = 1;
	if (has_sidecar && p->extra_port == 0)
		p->extra_port = alloc_port(a);
	for (r = 0; r < nrun; r++) {
		struct translate_ctx ctx;
		struct translated t;
		struct mounts m;
		struct llmd_err e = LLMD_ERR_INIT;
		struct proc *x;
		struct buf b = BUF_INIT;
		char **senv;
		int rc, k;

		c = run[r];
		if (p->nprocs == AGENT_MAX_PROCS)
			break;
		container_mounts(p, c, &m);
		memset(&ctx, 0, sizeof(ctx));
		ctx.engine_path = a->engine_path;
		ctx.router_path = a->router_has_sidecar ? a->router_path : NULL;
		ctx.mounts = m.m;
		ctx.nmounts = m.n;
		ctx.host = "0.0.0.0";
		ctx.port = has_sidecar && !translate_is_sidecar(c) ? p->extra_port : p->port;
		ctx.vllm_port = p->extra_port;
		rc = translate_container(c, &ctx, &t, &e);
		mounts_release(&m);
		if (rc < 0) {
			pod_fail(p, rc == -ENOTSUP ? "UnsupportedContainer" : "InvalidContainer",
			    "%s", e.msg);
			goto fail;
		}
		if (t.kind == PROC_SKIP) {
			translated_release(&t);
			continue;
		}
		if (t.kind == PROC_ENGINE) {
			/* Extra engine flags of this node (--engine-arg), e.g. --simulate. */
			size_t n = 0, j;

			while (t.argv[n])
				n++;
			for (j = 0; j < a->nengine_args; j++) {
				t.argv = xreallocarray(t.argv, n + 2, sizeof(char *));
				t.argv[n++] = xstrdup(a->engine_args[j]);
				t.argv[n] = NULL;
			}
			/* The model must be there before the engine starts. */
			if (access(t.argv[2], R_OK) < 0) {
				pod_fail(p, "ModelNotFound", "container %s: model %s: %s",
				    jstr(c, "name") ? jstr(c, "name") : "?", t.argv[2],
				    strerror(errno));
				translated_release(&t);
				goto fail;
			}
		}
		{
			/* LWS_LEADER_ADDRESS names a DNS record nobody serves: use the IP. */
			const cJSON *ev;

			cJSON_ArrayForEach(ev, jget(c, "env"))
				if (jstr(ev, "name") && strcmp(jstr(ev, "name"),
				    "LWS_LEADER_ADDRESS") == 0 && jstr(ev, "value") &&
				    *jstr(ev, "value") && p->leader_ip) {
					strv_replace(t.argv, jstr(ev, "value"), p->leader_ip);
					strv_replace(t.env, jstr(ev, "value"), p->leader_ip);
				}
		}
		x = &p->procs[p->nprocs++];
		x->container = xstrdup(jstr(c, "name") ? jstr(c, "name") : "main");
		x->kind = t.kind;
		x->argv = t.argv;
		t.argv = NULL;
		if (t.kind == PROC_ENGINE && p->kv_port == 0)
			p->kv_port = alloc_port(a);   /* the NIXL side channel: one per pod */
		senv = secrets_env(p->secrets, x->container);
		x->env = full_env(p, t.env, senv, t.kind);
		x->stop_sig = p->agent->slurm && (t.kind == PROC_ENGINE || t.kind == PROC_SIDECAR) ?
		    SIGUSR2 : SIGTERM;
		secrets_strv_free(senv);
		x->cwd = t.cwd;
		t.cwd = NULL;
		translated_release(&t);
		buf_addf(&b, "%s/%s.log", logdir, x->container);
		x->log_path = buf_detach(&b, NULL);
		x->port = t.kind == PROC_ENGINE ? ctx.port : t.kind == PROC_SIDECAR ? p->port : 0;
		x->last_exit = -1;
		for (k = 0; k < nold; k++)
			if (old[k].container && strcmp(old[k].container, x->container) == 0) {
				x->pid = old[k].pid;
				x->start_time = old[k].start_time;
				x->adopted = old[k].adopted;
				x->restarts = old[k].restarts;
				x->started_ms = now_ms();
			}
	}
	for (i = 0; i < nold; i++)
		proc_release(&old[i]);
	/* The values now live in the processes' environments only. */
	secrets_free(p->secrets);
	p->secrets = NULL;
	return 0;
fail:
	for (i = 0; i < nold; i++) {
		signal_proc(&old[i], SIGKILL);
		proc_release(&old[i]);
	}
	secrets_free(p->secrets);
	p->secrets = NULL;
	return -1;
}

static void
start_processes(struct pod_rt *p)
{
	int i;

	if (prepare_procs(p) < 0)
		return;
	p->state = POD_RUNNING;
	for (i = 0; i < p->nprocs; i++)
		if (p->procs[i].pid == 0)
			spawn(p, &p->procs[i]);
	state_write(p);
}

/* ---- storage initializer on the workpool ---- */

struct fetch_job {
	struct pod_rt *p;
	/* one per storage-initializer init container: URI into volume */
	char *uris[AGENT_MAX_FETCHES], *vols[AGENT_MAX_FETCHES], *outs[AGENT_MAX_FETCHES];
	int n;
	volatile int cur;           /* the one being fetched */
	char *cache;
	char **pvcs;
	char **env;                 /* the initializer's env, Secret values included */
	struct llmd_err e;
	int rc;
	/* progress, written by the worker, read on the loop */
	volatile uint64_t done, total;
};

static void
fetch_progress(uint64_t done, uint64_t total, void *arg)
{
	struct fetch_job *j = arg;

	j->done = done;
	j->total = total;
}

static void
fetch_work(void *arg)
{
	struct fetch_job *j = arg;
	struct storage_opts o = { j->cache, (const char *const *)j->pvcs,
	    (const char *const *)j->env };
	int i;

	for (i = 0; i < j->n; i++) {
		j->cur = i;
		j->done = j->total = 0;
		if ((j->rc = storage_fetch(j->uris[i], &o, &j->outs[i], fetch_progress, j,
		    &j->e)) < 0)
			return;
	}
}

static void
fetch_job_free(struct fetch_job *j)
{
	int i;

	for (i = 0; i < j->n; i++) {
		free(j->uris[i]);
		free(j->vols[i]);
		free(j->outs[i]);
	}
	free(j->cache);
	secrets_strv_free(j->env);
	free(j);
}

static void
fetch_done(void *arg)
{
	struct fetch_job *j = arg;
	struct pod_rt *p = j->p;
	int i;

	p->fetching = 0;
	p->fetch_job = NULL;
	if (p->gone) {
		/* Freed by the tick once fetching is 0. */
	} else if (j->rc < 0) {
		pod_fail(p, j->rc == -ENOSPC ? "StorageFull" : j->rc == -ENOTSUP ? "InvalidURI" :
		    "StorageInitializerFailed", "storage-initializer: %s", j->e.msg);
	} else {
		for (i = 0; i < j->n && p->nvols < AGENT_MAX_FETCHES; i++) {
			p->vol_names[p->nvols] = j->vols[i];
			p->vol_paths[p->nvols++] = j->outs[i];
			log_info("pod %s/%s: %s at %s (volume %s)", p->ns, p->name, j->uris[i],
			    j->outs[i], j->vols[i]);
			j->vols[i] = j->outs[i] = NULL;
		}
		free(p->model_path);
		p->model_path = p->nvols ? xstrdup(p->vol_paths[0]) : NULL;
		start_processes(p);
	}
	fetch_job_free(j);
}

/*
 * The storage-initializer init containers (the model's, and one per LoRA
 * adapter): their URI (args[0]) and the volume they fill; returns the count.
 */
static int
storage_inits(const cJSON *pod, const char **uris, const char **vols, int max)
{
	const cJSON *c;
	int n = 0;

	cJSON_ArrayForEach(c, jget(jget(pod, "spec"), "initContainers")) {
		const char *name = jstr(c, "name");
		const cJSON *args = jget(c, "args");
		const cJSON *vm = jget(c, "volumeMounts");

		if (!name || strncmp(name, "storage-initializer", 19) != 0 || !cJSON_IsArray(args) ||
		    !cJSON_IsString(args->child) || n == max)
			continue;
		uris[n] = args->child->valuestring;
		vols[n] = cJSON_IsArray(vm) && vm->child && jstr(vm->child, "name") ?
		    jstr(vm->child, "name") : "kserve-provision-location";
		n++;
	}
	return n;
}

/* Adds container c's plain env values and Secret values to *v. */
static void
container_env_add(struct pod_rt *p, const cJSON *c, char ***v, size_t *n)
{
	const cJSON *ev;
	char **senv;
	size_t i;

	if (c == NULL)
		return;
	cJSON_ArrayForEach(ev, jget(c, "env"))
		if (jstr(ev, "name") && jstr(ev, "value")) {
			struct buf b = BUF_INIT;

			buf_addf(&b, "%s=%s", jstr(ev, "name"), jstr(ev, "value"));
			env_add(v, n, buf_detach(&b, NULL));
		}
	senv = secrets_env(p->secrets, jstr(c, "name") ? jstr(c, "name") : "");
	for (i = 0; senv[i]; i++)
		env_add(v, n, xstrdup(senv[i]));
	secrets_strv_free(senv);
}

/*
 * The storage initializer's environment: its own containers' env, then the
 * main container's (where an LLMInferenceService puts HF_TOKEN / AWS keys).
 */
static char **
storage_env(struct pod_rt *p)
{
	const cJSON *spec = jget(p->pod, "spec"), *c, *main_c;
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0;

	cJSON_ArrayForEach(c, jget(spec, "initContainers"))
		if (jstr(c, "name") && strncmp(jstr(c, "name"), "storage-initializer", 19) == 0)
			container_env_add(p, c, &v, &n);
	main_c = find_named(jget(spec, "containers"), "main");
	if (main_c == NULL)
		main_c = cJSON_GetArrayItem(jget(spec, "containers"), 0);
	container_env_add(p, main_c, &v, &n);
	return v;
}

static void pod_begin(struct pod_rt *p);
static void secrets_start(struct pod_rt *p);

static void
secrets_done(int status, cJSON *cs, const char *msg, void *arg)
{
	struct pod_rt *p = arg;

	p->secrets_req = NULL;
	if (p->gone || p->state == POD_STOPPING) {
		secrets_free(cs);
		return;
	}
	if (status == 200) {
		secrets_free(p->secrets);
		p->secrets = cs;
		p->secrets_backoff_ms = 0;
		p->secrets_retry_ms = 0;
		if (p->secrets_wait) {
			/* Adopted: the running processes' restarts get the values. */
			p->secrets_wait = 0;
			if (p->state == POD_RUNNING && prepare_procs(p) == 0)
				state_write(p);
			secrets_free(p->secrets);
			p->secrets = NULL;
			return;
		}
		pod_begin(p);
		return;
	}
	p->secrets_backoff_ms = p->secrets_backoff_ms == 0 ? 1000 :
	    MIN(p->secrets_backoff_ms * 2, 60000);
	p->secrets_retry_ms = now_ms() + (uint64_t)p->secrets_backoff_ms;
	if (status == 422 && !p->secrets_wait) {
		/* Like the kubelet: the container cannot be configured; retried. */
		if (p->state != POD_FAILED || p->message == NULL || strcmp(p->message, msg) != 0)
			pod_fail(p, "CreateContainerConfigError", "%s", msg);
		return;
	}
	log_warnx("pod %s/%s: fetching the values of its Secret references (status %d): %s; "
	    "retry in %lld ms", p->ns, p->name, status, msg, (long long)p->secrets_backoff_ms);
	if (!p->secrets_wait && p->state == POD_STARTING) {
		struct buf b = BUF_INIT;

		buf_addf(&b, "waiting for the values of the pod's Secret references: %s", msg);
		free(p->progress);
		p->progress = buf_detach(&b, NULL);
	}
}

/* Asks the daemon for the pod's Secret values; secrets_done goes on. */
static void
secrets_start(struct pod_rt *p)
{
	if (p->secrets_req != NULL)
		return;
	if (!p->secrets_wait && !(p->state == POD_FAILED && p->reason)) {
		/* A failure stays visible while it is retried. */
		p->state = POD_STARTING;
		free(p->progress);
		p->progress = xstrdup("fetching the values of the pod's Secret references");
	}
	p->secrets_req = secrets_fetch(p->agent, p->ns, p->name, secrets_done, p);
	if (p->secrets_req == NULL)
		p->secrets_retry_ms = now_ms() + 1000;
}

static void
pod_begin(struct pod_rt *p)
{
	struct agent *a = p->agent;
	int need = gpu_request(p->pod), i, nfetch;
	const char *uris[AGENT_MAX_FETCHES], *vols[AGENT_MAX_FETCHES];

	free(p->reason);
	free(p->message);
	p->reason = p->message = NULL;
	if (p->ngpus == 0 && need > 0) {
		for (i = 0; i < a->ngpus && p->ngpus < need; i++)
			if (a->gpus[i].healthy && !gpu_in_use(a, a->gpus[i].index))
				p->gpus[p->ngpus++] = a->gpus[i].index;
		if (p->ngpus < need) {
			int have = p->ngpus;

			p->ngpus = 0;
			pod_fail(p, "InsufficientGPU", "needs %d GPU(s); this node has %d free", need,
			    have);
			return;
		}
	}
	if (p->port == 0 && (p->port = alloc_port(a)) < 0) {
		p->port = 0;
		pod_fail(p, "NoFreePort", "no free host port in %d-%d", a->port_lo, a->port_hi);
		return;
	}
	{
		const char *wi = label(p->pod, LWS_LABEL("worker-index"));

		if (wi && p->leader_ip == NULL) {
			if (strcmp(wi, "0") == 0) {
				p->leader_ip = xstrdup(a->address);
			} else {
				/* LeaderCreated: a worker starts once its leader has an address. */
				p->leader_wait = 1;
				p->state = POD_STARTING;
				free(p->progress);
				p->progress = xstrdup("waiting for the address of the group leader");
				p->leader_retry_ms = 0;
				return;
			}
		}
	}
	if (p->secrets == NULL && secrets_referenced(p->pod)) {
		secrets_start(p);
		return;
	}
	nfetch = storage_inits(p->pod, uris, vols, AGENT_MAX_FETCHES);
	if (nfetch > 0 && p->nvols == 0) {
		struct fetch_job *j = xcalloc(1, sizeof(*j));
		char cache[4096];

		snprintf(cache, sizeof(cache), "%s/models", a->data_dir);
		j->p = p;
		for (i = 0; i < nfetch; i++) {
			j->uris[i] = xstrdup(uris[i]);
			j->vols[i] = xstrdup(vols[i]);
		}
		j->n = nfetch;
		j->cache = xstrdup(cache);
		j->pvcs = a->pvcs;
		j->env = storage_env(p);
		p->state = POD_STARTING;
		p->fetching = 1;
		p->fetch_job = j;
		p->fetch_pct_logged = -1;
		free(p->progress);
		p->progress = NULL;
		if (workpool_submit(a->wp, fetch_work, fetch_done, j) < 0) {
			p->fetching = 0;
			p->fetch_job = NULL;
			fetch_job_free(j);
			pod_fail(p, "StorageInitializerFailed", "cannot queue the download");
		}
		return;
	}
	start_processes(p);
}

/* ---- the pod list from the daemon ---- */

static struct pod_rt *
pod_new(struct agent *a, const char *ns, const char *name, const char *uid)
{
	struct pod_rt *p = xcalloc(1, sizeof(*p));

	p->agent = a;
	p->ns = xstrdup(ns);
	p->name = xstrdup(name);
	p->uid = xstrdup(uid);
	p->next = a->pods;
	a->pods = p;
	return p;
}

static void
pod_stop(struct pod_rt *p)
{
	int64_t grace = p->agent->t.grace_ms;
	const cJSON *tg = jget(jget(p->pod, "spec"), "terminationGracePeriodSeconds");
	int i;

	if (p->state == POD_STOPPING)
		return;
	if (grace < 0)
		grace = cJSON_IsNumber(tg) ? (int64_t)(tg->valuedouble * 1000) : 30000;
	p->state = POD_STOPPING;
	p->stop_deadline = now_ms() + (uint64_t)grace;
	for (i = 0; i < p->nprocs; i++)
		signal_proc(&p->procs[i], p->procs[i].stop_sig > 0 ? p->procs[i].stop_sig : SIGTERM);
	log_info("pod %s/%s: stopping (grace %lld ms)", p->ns, p->name, (long long)grace);
}

static int64_t
generation(const cJSON *pod)
{
	const cJSON *g = jget(jget(pod, "metadata"), "generation");

	return cJSON_IsNumber(g) ? (int64_t)g->valuedouble : 0;
}

void
pods_sync(struct agent *a, const cJSON *items)
{
	struct pod_rt *p;
	const cJSON *it;

	for (p = a->pods; p; p = p->next) {
		const cJSON *found = NULL;

		cJSON_ArrayForEach(it, items) {
			const cJSON *md = jget(it, "metadata");

			if (jstr(md, "uid") && strcmp(jstr(md, "uid"), p->uid) == 0 &&
			    !jget(md, "deletionTimestamp"))
				found = it;
		}
		if (found == NULL) {
			p->gone = 1;
			pod_stop(p);
			continue;
		}
		if (p->pod == NULL) {
			/* Adopted from the state file: now we know its spec. */
			p->pod = cJSON_Duplicate(found, 1);
			if (prepare_procs(p) == 0)
				p->state = POD_RUNNING;
			state_write(p);
			if (secrets_referenced(p->pod)) {
				/* Restarts wait for the values of its Secret references. */
				p->secrets_wait = 1;
				secrets_start(p);
			}
			continue;
		}
		if (generation(found) != generation(p->pod) && p->state != POD_STOPPING) {
			/* The spec changed: run it afresh (a new process set). */
			cJSON_Delete(p->pod);
			p->pod = cJSON_Duplicate(found, 1);
			if (p->state == POD_FAILED || p->state == POD_RUNNING) {
				int i;

				/* Values for the new spec are fetched afresh. */
				if (p->secrets_req)
					http_client_cancel(p->secrets_req);
				p->secrets_req = NULL;
				secrets_free(p->secrets);
				p->secrets = NULL;
				p->secrets_retry_ms = 0;
				p->secrets_backoff_ms = 0;
				p->secrets_wait = 0;
				for (i = 0; i < p->nprocs; i++) {
					signal_proc(&p->procs[i], SIGKILL);
					proc_release(&p->procs[i]);
				}
				p->nprocs = 0;
				pod_begin(p);
			}
			continue;
		}
		cJSON_Delete(p->pod);
		p->pod = cJSON_Duplicate(found, 1);
	}
	cJSON_ArrayForEach(it, items) {
		const cJSON *md = jget(it, "metadata");
		const char *ns = jstr(md, "namespace"), *name = jstr(md, "name");
		const char *uid = jstr(md, "uid");

		if (!ns || !name || !uid || jget(md, "deletionTimestamp"))
			continue;
		for (p = a->pods; p; p = p->next)
			if (strcmp(p->uid, uid) == 0)
				break;
		if (p)
			continue;
		p = pod_new(a, ns, name, uid);
		p->pod = cJSON_Duplicate(it, 1);
		log_info("pod %s/%s: assigned to this node", ns, name);
		pod_begin(p);
	}
}

static void
pod_free(struct pod_rt *p)
{
	int i;

	for (i = 0; i < p->nprocs; i++)
		proc_release(&p->procs[i]);
	if (p->leader_req)
		http_client_cancel(p->leader_req);
	if (p->secrets_req)
		http_client_cancel(p->secrets_req);
	secrets_free(p->secrets);
	free(p->leader_ip);
	cJSON_Delete(p->pod);
	free(p->ns);
	free(p->name);
	free(p->uid);
	free(p->model_path);
	for (i = 0; i < p->nvols; i++) {
		free(p->vol_names[i]);
		free(p->vol_paths[i]);
	}
	free(p->reason);
	free(p->message);
	free(p->progress);
	free(p->reported);
	free(p);
}

/* ---- probes ---- */

static void
probe_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct proc *x = arg;

	(void)e;
	x->probe = NULL;
	x->probing = 0;
	if (resp && resp->status == 200) {
		if (!x->ready)
			log_info("container %s (pid %d) is ready", x->container, (int)x->pid);
		x->ready = 1;
		x->been_ready = 1;
		x->live_failures = 0;
	} else {
		x->ready = 0;
		x->live_failures++;
	}
}

static void
probe(struct agent *a, struct proc *x)
{
	char url[128];

	if (x->probing || x->port <= 0 || x->pid <= 0)
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", x->port);
	x->probing = 1;
	x->probe = http_client_request(a->hc, "GET", url, NULL, NULL, 0, probe_done, x, NULL);
	if (x->probe == NULL)
		x->probing = 0;
}

static void leader_lookup(struct pod_rt *p);

static void
leader_set(struct pod_rt *p, const char *ip)
{
	p->leader_wait = 0;
	p->leader_ip = xstrdup(ip);
	log_info("pod %s/%s: group leader at %s", p->ns, p->name, ip);
	pod_begin(p);
}

/* The leader's node (pods use their node's address). */
static void
leader_node_found(const cJSON *node, void *arg)
{
	struct pod_rt *p = arg;
	const cJSON *ad;

	p->leader_req = NULL;
	if (!p->gone && p->leader_wait)
		cJSON_ArrayForEach(ad, jget(jget(node, "status"), "addresses"))
			if (jstr(ad, "type") && strcmp(jstr(ad, "type"), "InternalIP") == 0 &&
			    jstr(ad, "address")) {
				leader_set(p, jstr(ad, "address"));
				return;
			}
	p->leader_retry_ms = now_ms() + 500;
}

static void
leader_found(const cJSON *leader, void *arg)
{
	struct pod_rt *p = arg;
	const char *ip = jstr(jget(leader, "status"), "podIP");
	const char *node = jstr(jget(leader, "spec"), "nodeName");

	p->leader_req = NULL;
	if (p->gone || !p->leader_wait)
		return;
	if (ip) {
		leader_set(p, ip);
	} else if (node) {
		struct buf path = BUF_INIT;

		buf_addf(&path, "/api/v1/nodes/%s", node);
		p->leader_req = control_get_json(p->agent, path.buf, leader_node_found, p);
		buf_release(&path);
	} else {
		p->leader_retry_ms = now_ms() + 500;
	}
}

static void
leader_lookup(struct pod_rt *p)
{
	const char *lws = label(p->pod, LWS_LABEL("name"));
	const char *gi = label(p->pod, LWS_LABEL("group-index"));
	struct buf path = BUF_INIT;

	if (lws == NULL || gi == NULL)
		return;
	buf_addf(&path, "/api/v1/namespaces/%s/pods/%s-%s", p->ns, lws, gi);
	p->leader_req = control_get_json(p->agent, path.buf, leader_found, p);
	buf_release(&path);
}

void
pods_tick(struct agent *a)
{
	struct pod_rt **pp = &a->pods, *p;
	uint64_t now = now_ms();
	static uint64_t last_probe;
	int do_probe = now - last_probe >= (uint64_t)a->t.probe_period_ms;

	if (do_probe)
		last_probe = now;
	while ((p = *pp) != NULL) {
		int i, alive = 0;

		for (i = 0; i < p->nprocs; i++) {
			struct proc *x = &p->procs[i];

			if (x->pid > 0 && x->adopted && proc_start_time(x->pid) != x->start_time)
				exited(p, x, 0xff00);   /* gone while we were not its parent */
			if (x->pid > 0)
				alive = 1;
		}
		if (p->secrets_retry_ms && now >= p->secrets_retry_ms && p->secrets_req == NULL &&
		    p->state != POD_STOPPING && !p->gone) {
			p->secrets_retry_ms = 0;
			secrets_start(p);
		}
		if (p->state == POD_STOPPING) {
			if (alive && now >= p->stop_deadline) {
				for (i = 0; i < p->nprocs; i++)
					signal_proc(&p->procs[i], SIGKILL);
				p->stop_deadline = now + 1000;
			}
			if (!alive && !p->fetching && !p->reporting) {
				log_info("pod %s/%s: stopped", p->ns, p->name);
				state_remove(p);
				*pp = p->next;
				pod_free(p);
				continue;
			}
			if (!alive && !p->gone) {
				/* A group restart or spec change: start over. */
				p->state = POD_RUNNING;
			}
		} else if (p->state == POD_FAILED && p->reason &&
		    (strcmp(p->reason, "InsufficientGPU") == 0 ||
		    strcmp(p->reason, "NoFreePort") == 0) && now >= p->leader_retry_ms) {
			/* Transient: resources held by pods still stopping. */
			p->leader_retry_ms = now + 1000;
			pod_begin(p);
		} else if (p->state == POD_STARTING && p->leader_wait) {
			if (p->leader_req == NULL && now >= p->leader_retry_ms)
				leader_lookup(p);
		} else if (p->state == POD_RUNNING) {
			if (p->group_restart_ms && now >= p->group_restart_ms) {
				log_warnx("pod %s/%s: a member of its LWS group failed: recreating the "
				    "group", p->ns, p->name);
				control_delete_group(a, p->ns, label(p->pod, LWS_LABEL("group-key")));
				p->group_restart_ms = now + 5000;   /* again if still here then */
			}
			for (i = 0; i < p->nprocs; i++) {
				struct proc *x = &p->procs[i];

				if (x->pid == 0 && (p->group_restart_ms || p->secrets_wait))
					continue;
				if (x->pid == 0 && now >= x->next_start_ms)
					spawn(p, x);
				else if (x->pid > 0 && do_probe)
					probe(a, x);
				/* Liveness: a process that was ready and stops answering. */
				if (x->pid > 0 && x->been_ready && x->live_failures >= 3) {
					log_warnx("pod %s/%s: %s fails its liveness probe; killing it",
					    p->ns, p->name, x->container);
					x->live_failures = 0;
					signal_proc(x, SIGKILL);
				}
			}
		}
		if (p->fetching && p->fetch_job) {
			const struct fetch_job *j = p->fetch_job;
			uint64_t done = j->done, total = j->total;
			int pct = total ? (int)(done * 100 / total) : 0;
			struct buf t = BUF_INIT;

			buf_addf(&t, "storage-initializer: fetching %s: %llu of %llu MiB (%d%%)",
			    j->uris[j->cur],
			    (unsigned long long)(done >> 20), (unsigned long long)(total >> 20), pct);
			if (p->progress == NULL || strcmp(p->progress, t.buf) != 0) {
				free(p->progress);
				p->progress = buf_detach(&t, NULL);
			}
			buf_release(&t);
			if (pct / 25 != p->fetch_pct_logged / 25 || p->fetch_pct_logged < 0) {
				p->fetch_pct_logged = pct;
				log_info("pod %s/%s: %s", p->ns, p->name, p->progress);
			}
		}
		report(p);
		pp = &p->next;
	}
}

void
pods_stop_all(struct agent *a)
{
	struct pod_rt *p;
	uint64_t deadline = 0;

	for (p = a->pods; p; p = p->next) {
		pod_stop(p);
		if (p->stop_deadline > deadline)
			deadline = p->stop_deadline;
	}
	for (;;) {
		int alive = 0, i;

		pods_reap(a);
		for (p = a->pods; p; p = p->next)
			for (i = 0; i < p->nprocs; i++) {
				if (p->procs[i].pid > 0 && p->procs[i].adopted &&
				    proc_start_time(p->procs[i].pid) != p->procs[i].start_time)
					p->procs[i].pid = 0;
				if (p->procs[i].pid > 0)
					alive = 1;
			}
		if (!alive)
			break;
		if (now_ms() >= deadline)
			for (p = a->pods; p; p = p->next)
				for (i = 0; i < p->nprocs; i++)
					signal_proc(&p->procs[i], SIGKILL);
		usleep(50 * 1000);
	}
	while ((p = a->pods) != NULL) {
		state_remove(p);
		a->pods = p->next;
		pod_free(p);
	}
}

void
pods_adopt(struct agent *a)
{
	char dir[4096];
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/state", a->data_dir);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[4400];
		struct buf b = BUF_INIT;
		cJSON *o = NULL;
		const cJSON *x;
		FILE *f;
		struct pod_rt *p;
		char chunk[4096];
		size_t n;
		int kept = 0;

		if (strlen(de->d_name) < 6 || strcmp(de->d_name + strlen(de->d_name) - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_add(&b, chunk, n);
		fclose(f);
		if (json_parse(b.buf, b.len, &o, NULL) < 0 || !jstr(o, "uid") ||
		    !jstr(o, "namespace") || !jstr(o, "name")) {
			buf_release(&b);
			cJSON_Delete(o);
			unlink(path);
			continue;
		}
		buf_release(&b);
		p = pod_new(a, jstr(o, "namespace"), jstr(o, "name"), jstr(o, "uid"));
		p->state = POD_RUNNING;
		p->port = jget(o, "port") ? jget(o, "port")->valueint : 0;
		p->extra_port = jget(o, "extraPort") ? jget(o, "extraPort")->valueint : 0;
		p->kv_port = jget(o, "kvPort") ? jget(o, "kvPort")->valueint : 0;
		if (jstr(o, "modelPath"))
			p->model_path = xstrdup(jstr(o, "modelPath"));
		cJSON_ArrayForEach(x, jget(o, "volumes"))
			if (cJSON_IsString(x) && x->string && p->nvols < AGENT_MAX_FETCHES) {
				p->vol_names[p->nvols] = xstrdup(x->string);
				p->vol_paths[p->nvols++] = xstrdup(x->valuestring);
			}
		if (jstr(o, "leaderIP"))
			p->leader_ip = xstrdup(jstr(o, "leaderIP"));
		cJSON_ArrayForEach(x, jget(o, "gpus"))
			if (p->ngpus < AGENT_MAX_GPUS)
				p->gpus[p->ngpus++] = x->valueint;
		cJSON_ArrayForEach(x, jget(o, "procs")) {
			struct proc *pr;
			pid_t pid = jget(x, "pid") ? (pid_t)jget(x, "pid")->valueint : 0;
			unsigned long long st = jget(x, "startTime") ?
			    (unsigned long long)jget(x, "startTime")->valuedouble : 0;

			if (p->nprocs == AGENT_MAX_PROCS || !jstr(x, "container"))
				continue;
			pr = &p->procs[p->nprocs++];
			pr->container = xstrdup(jstr(x, "container"));
			pr->restarts = jget(x, "restarts") ? jget(x, "restarts")->valueint : 0;
			pr->stop_sig = jget(x, "stopSignal") ? jget(x, "stopSignal")->valueint : 0;
			pr->last_exit = -1;
			if (pid > 0 && st != 0 && proc_start_time(pid) == st) {
				pr->pid = pid;
				pr->start_time = st;
				pr->adopted = 1;
				kept++;
			}
		}
		log_info("pod %s/%s: re-adopted %d running process(es) after a restart",
		    p->ns, p->name, kept);
		cJSON_Delete(o);
	}
	closedir(d);
}
