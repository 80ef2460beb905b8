/*
 * cli/cmd-slurm.c - llmd nodes from Slurm jobs (a node pool per job):
 *   slurm submit --nodes N [--gpus-per-node G] [--partition P] [--time T]
 *       [--account A] [--job-name NAME] [--work-dir DIR] [--agent-server URL]
 *       [--drain-margin D] [--token-ttl D (24h)] [--agent-arg ARG]... [--template FILE]
 *     creates a join token (API), renders etc/slurm/llmd-agents.sbatch into
 *     DIR (a directory every node sees, default ~/.llmd/slurm) and runs
 *     `sbatch --parsable`; the job id is printed alone on the last line.
 *   slurm list       the pools: squeue's jobs of that name with their Ready nodes
 *   slurm cancel ID [--drain-timeout D (2m)]
 *                    drains the job's nodes (surge-then-stop: each service
 *                    pod's replacement elsewhere is Ready before the pod
 *                    goes, daemon/surge.h), waits until they hold no pods
 *                    (or D passed: then says what is left and goes on),
 *                    scancels the job, waits for it to leave the queue and
 *                    deletes its Node objects.
 * sbatch/squeue/scancel run as child processes (SLURM_CONF inherited).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/http.h>

#include "cli/admin.h"
#include "cli/ssh.h"
#include "lib/cli.h"
#include "lib/exepath.h"
#include "lib/json.h"
#include "lib/util.h"

#define JOB_LABEL "slurm.schedmd.com/job-id"

struct submit;
struct admin;
static void record_nodepool(struct admin *a, const char *job, const struct submit *s);
static void forget_nodepool(struct admin *a, const char *job);

extern char **environ;

/* Runs argv with stdout into out (may be NULL), stderr through; the exit status. */
static int
run_child(char *const argv[], struct buf *out)
{
	posix_spawn_file_actions_t fa;
	int fds[2], status = 0, rc;
	pid_t pid;
	char b[4096];
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		fprintf(stderr, "error: cannot run %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	while ((n = read(fds[0], b, sizeof(b))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (out != NULL)
			buf_add(out, b, (size_t)n);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static const char *
flag_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strcmp(argv[*i], name) == 0 && *i + 1 < argc)
		return argv[++*i];
	if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	return NULL;
}

/* Safe in an #SBATCH directive without quoting. */
static int
directive_safe(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("._/:=,+@%-", *s)))
			return 0;
	return 1;
}

struct submit {
	const char *nodes, *gpus, *partition, *time, *account, *job_name, *work_dir;
	const char *agent_server, *drain_margin, *template_path, *token_ttl;
	const char **agent_args;
	size_t nagent_args;
	char agent[4096];
	char token_file[4200];
};

/* The value of placeholder name: raw in #SBATCH lines, shell-quoted elsewhere. */
static void
put_value(struct buf *out, const struct submit *s, const char *name, int directive)
{
	const char *v = NULL;

	if (strcmp(name, "JOB_NAME") == 0) v = s->job_name;
	else if (strcmp(name, "NODES") == 0) v = s->nodes;
	else if (strcmp(name, "WORK_DIR") == 0) v = s->work_dir;
	else if (strcmp(name, "AGENT") == 0) v = s->agent;
	else if (strcmp(name, "SERVER") == 0) v = s->agent_server;
	else if (strcmp(name, "TOKEN_FILE") == 0) v = s->token_file;
	else if (strcmp(name, "DRAIN_MARGIN") == 0) v = s->drain_margin;
	if (strcmp(name, "AGENT_ARGS") == 0) {
		for (size_t i = 0; i < s->nagent_args; i++) {
			if (i)
				buf_adds(out, " ");
			ssh_quote(out, s->agent_args[i]);
		}
		return;
	}
	if (v == NULL) {
		buf_addf(out, "@%s@", name);
		return;
	}
	if (directive)
		buf_adds(out, v);
	else
		ssh_quote(out, v);
}

static int
render(const struct submit *s, const char *tmpl, struct buf *out)
{
	const char *line = tmpl;

	while (*line) {
		size_t len = strcspn(line, "\n");
		int directive = strncmp(line, "#SBATCH", 7) == 0;

		if (len == strlen("@SBATCH_EXTRA@") && strncmp(line, "@SBATCH_EXTRA@", len) == 0) {
			if (s->gpus && strcmp(s->gpus, "0") != 0)
				buf_addf(out, "#SBATCH --gres=gpu:%s\n", s->gpus);
			if (s->partition)
				buf_addf(out, "#SBATCH --partition=%s\n", s->partition);
			if (s->time)
				buf_addf(out, "#SBATCH --time=%s\n", s->time);
			if (s->account)
				buf_addf(out, "#SBATCH --account=%s\n", s->account);
		} else {
			for (size_t i = 0; i < len; i++) {
				const char *end;

				if (line[i] == '@' && (end = memchr(line + i + 1, '@', len - i - 1)) &&
				    end > line + i + 1) {
					char name[32];
					size_t n = (size_t)(end - line - i - 1);

					if (n < sizeof(name) && strspn(line + i + 1,
					    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == n) {
						memcpy(name, line + i + 1, n);
						name[n] = '\0';
						put_value(out, s, name, directive);
						i += n + 1;
						continue;
					}
				}
				buf_add(out, line + i, 1);
			}
			buf_adds(out, "\n");
		}
		line += len;
		if (*line == '\n')
			line++;
	}
	return 0;
}

static int
read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "r");
	char b[4096];
	size_t n;

	if (f == NULL)
		return -errno;
	while ((n = fread(b, 1, sizeof(b), f)) > 0)
		buf_add(out, b, n);
	fclose(f);
	return 0;
}

static int
join_token(struct admin *a, const char *ttl, char **out)
{
	struct admin_resp resp;
	struct buf body = BUF_INIT;
	cJSON *o;
	const char *t;

	buf_addf(&body, "{\"ttl\":\"%s\"}", ttl);
	if (admin_call(a, "POST", "/agent/v1/tokens", "application/json", body.buf, body.len,
	    &resp) < 0) {
		buf_release(&body);
		return 1;
	}
	buf_release(&body);
	if (resp.code != 200 && resp.code != 201) {
		int rc = admin_server_error(&resp);
		admin_resp_release(&resp);
		return rc;
	}
	o = admin_resp_json(&resp);
	admin_resp_release(&resp);
	if ((t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "token"))) == NULL) {
		cJSON_Delete(o);
		fprintf(stderr, "error: unexpected answer from the server\n");
		return 1;
	}
	*out = xstrdup(t);
	cJSON_Delete(o);
	return 0;
}

static int
write_private(const char *path, const char *text, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(text);

	if (fd < 0 || fchmod(fd, (mode_t)mode) < 0 || write(fd, text, len) != (ssize_t)len) {
		fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

static int
do_submit(struct admin *a, int argc, char **argv)
{
	struct submit s = { .job_name = "llmd-agents", .drain_margin = "5m", .token_ttl = "24h",
	    .agent_server = a->server };
	struct buf tmpl = BUF_INIT, script = BUF_INIT, path = BUF_INIT, out = BUF_INIT;
	char home_dir[4096], tpath[4096], *token = NULL, stamp[32];
	const char *v;
	int64_t ms;
	long l;
	int rc = EXIT_USAGE;

	for (int i = 2; i < argc; i++) {
		if ((v = flag_value(argc, argv, &i, "--nodes")) != NULL) s.nodes = v;
		else if ((v = flag_value(argc, argv, &i, "--gpus-per-node")) != NULL) s.gpus = v;
		else if ((v = flag_value(argc, argv, &i, "--partition")) != NULL) s.partition = v;
		else if ((v = flag_value(argc, argv, &i, "--time")) != NULL) s.time = v;
		else if ((v = flag_value(argc, argv, &i, "--account")) != NULL) s.account = v;
		else if ((v = flag_value(argc, argv, &i, "--job-name")) != NULL) s.job_name = v;
		else if ((v = flag_value(argc, argv, &i, "--work-dir")) != NULL) s.work_dir = v;
		else if ((v = flag_value(argc, argv, &i, "--agent-server")) != NULL)
			s.agent_server = v;
		else if ((v = flag_value(argc, argv, &i, "--drain-margin")) != NULL)
			s.drain_margin = v;
		else if ((v = flag_value(argc, argv, &i, "--token-ttl")) != NULL) s.token_ttl = v;
		else if ((v = flag_value(argc, argv, &i, "--template")) != NULL) s.template_path = v;
		else if ((v = flag_value(argc, argv, &i, "--agent-arg")) != NULL) {
			s.agent_args = xreallocarray(s.agent_args, s.nagent_args + 1,
			    sizeof(*s.agent_args));
			s.agent_args[s.nagent_args++] = v;
		} else {
			fprintf(stderr, "error: unexpected argument \"%s\"\n", argv[i]);
			goto out;
		}
	}
	if (s.nodes == NULL || parse_long(s.nodes, 1, 100000, &l) < 0 ||
	    (s.gpus && parse_long(s.gpus, 0, 1024, &l) < 0)) {
		fprintf(stderr, "error: --nodes N (>= 1) is required; --gpus-per-node G >= 0\n");
		goto out;
	}
	if (parse_duration_ms(s.drain_margin, &ms) < 0 || parse_duration_ms(s.token_ttl, &ms) < 0 ||
	    ms <= 0) {
		fprintf(stderr, "error: --drain-margin / --token-ttl: invalid duration\n");
		goto out;
	}
	if (!directive_safe(s.job_name) || (s.partition && !directive_safe(s.partition)) ||
	    (s.time && !directive_safe(s.time)) || (s.account && !directive_safe(s.account))) {
		fprintf(stderr, "error: --job-name, --partition, --time and --account take plain "
		    "words\n");
		goto out;
	}
	if (s.work_dir == NULL) {
		snprintf(home_dir, sizeof(home_dir), "%s/.llmd/slurm",
		    getenv("HOME") ? getenv("HOME") : "/root");
		s.work_dir = home_dir;
	}
	if (s.work_dir[0] != '/' || !directive_safe(s.work_dir)) {
		fprintf(stderr, "error: --work-dir: an absolute path of plain characters\n");
		goto out;
	}
	if (a->ca_file && *a->ca_file) {   /* the agents verify the daemon with it too */
		s.agent_args = xreallocarray(s.agent_args, s.nagent_args + 2, sizeof(*s.agent_args));
		s.agent_args[s.nagent_args++] = "--ca";
		s.agent_args[s.nagent_args++] = a->ca_file;
	}
	rc = 1;
	if (exepath_find_sibling("llmd-agent", s.agent, sizeof(s.agent)) < 0) {
		fprintf(stderr, "error: no llmd-agent next to llmd-admin or on PATH\n");
		goto out;
	}
	if (s.template_path)
		snprintf(tpath, sizeof(tpath), "%s", s.template_path);
	else if (exepath_find_data("slurm/llmd-agents.sbatch", tpath, sizeof(tpath)) < 0) {
		fprintf(stderr, "error: the batch template slurm/llmd-agents.sbatch is not installed\n");
		goto out;
	}
	if (read_file(tpath, &tmpl) < 0) {
		fprintf(stderr, "error: %s: %s\n", tpath, strerror(errno));
		goto out;
	}
	buf_addf(&path, "%s", s.work_dir);
	for (char *p = path.buf + 1; ; p++) {   /* mkdir -p */
		char c = *p;

		if (c == '/' || c == '\0') {
			*p = '\0';
			mkdir(path.buf, 0700);
			*p = c;
		}
		if (c == '\0')
			break;
	}
	if ((rc = join_token(a, s.token_ttl, &token)) != 0)
		goto out;
	snprintf(stamp, sizeof(stamp), "%lld-%d", (long long)(wall_ms() / 1000), (int)getpid());
	snprintf(s.token_file, sizeof(s.token_file), "%s/join-token-%s", s.work_dir, stamp);
	buf_addf(&out, "%s\n", token ? token : "");
	if ((rc = write_private(s.token_file, out.buf, 0600)) != 0)
		goto out;
	render(&s, tmpl.buf ? tmpl.buf : "", &script);
	buf_reset(&path);
	buf_addf(&path, "%s/llmd-agents-%s.sbatch", s.work_dir, stamp);
	if ((rc = write_private(path.buf, script.buf, 0700)) != 0)
		goto out;
	buf_reset(&out);
	{
		char *sb[] = { (char *)"sbatch", (char *)"--parsable", path.buf, NULL };

		rc = run_child(sb, &out);
	}
	if (rc != 0) {
		fprintf(stderr, "error: sbatch %s failed (exit status %d)\n", path.buf, rc);
		rc = 1;
		goto out;
	}
	if (out.buf == NULL || !*out.buf) {
		fprintf(stderr, "error: sbatch printed no job id\n");
		rc = 1;
		goto out;
	}
	out.buf[strcspn(out.buf, ";\n")] = '\0';
	record_nodepool(a, out.buf, &s);
	fprintf(stderr, "Slurm job %s submitted: %s node(s) x %s GPU(s), script %s; its nodes "
	    "join as slurm-%s-NODE (llmd.io/nodepool=slurm-%s)\n", out.buf, s.nodes,
	    s.gpus ? s.gpus : "0", path.buf, out.buf, out.buf);
	printf("%s\n", out.buf);
	rc = 0;
out:
	if (token != NULL) {
		memset(token, 0, strlen(token));
		free(token);
	}
	free(s.agent_args);
	buf_release(&tmpl);
	buf_release(&script);
	buf_release(&path);
	buf_release(&out);
	return rc;
}

/* The NodePool object that tracks a submitted job (`llmd-admin get nodepools`). */
static void
record_nodepool(struct admin *a, const char *job, const struct submit *s)
{
	cJSON *o = cJSON_CreateObject(), *md, *spec, *labels;
	struct admin_resp resp;
	struct buf b = BUF_INIT, name = BUF_INIT;

	buf_addf(&name, "slurm-%s", job);
	cJSON_AddStringToObject(o, "apiVersion", "llmd.ai/v1alpha1");
	cJSON_AddStringToObject(o, "kind", "NodePool");
	md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name.buf);
	labels = cJSON_AddObjectToObject(md, "labels");
	cJSON_AddStringToObject(labels, JOB_LABEL, job);
	spec = cJSON_AddObjectToObject(o, "spec");
	cJSON_AddStringToObject(spec, "provider", "slurm");
	cJSON_AddStringToObject(spec, "jobId", job);
	cJSON_AddStringToObject(spec, "jobName", s->job_name);
	cJSON_AddStringToObject(spec, "nodes", s->nodes);
	cJSON_AddStringToObject(spec, "gpusPerNode", s->gpus ? s->gpus : "0");
	if (s->partition)
		cJSON_AddStringToObject(spec, "partition", s->partition);
	if (s->time)
		cJSON_AddStringToObject(spec, "timeLimit", s->time);
	cJSON_AddStringToObject(spec, "nodeSelector", JOB_LABEL);
	json_print_compact(o, &b);
	cJSON_Delete(o);
	if (admin_call(a, "POST", "/apis/llmd.ai/v1alpha1/nodepools", "application/json", b.buf, b.len,
	    &resp) == 0) {
		if (resp.code != 201 && resp.code != 409)
			admin_server_error(&resp);
		admin_resp_release(&resp);
	}
	buf_release(&b);
	buf_release(&name);
}

static void
forget_nodepool(struct admin *a, const char *job)
{
	struct admin_resp resp;
	struct buf path = BUF_INIT;

	buf_addf(&path, "/apis/llmd.ai/v1alpha1/nodepools/slurm-%s", job);
	if (admin_call(a, "DELETE", path.buf, NULL, NULL, 0, &resp) == 0)
		admin_resp_release(&resp);
	buf_release(&path);
}

/* Nodes labelled with job id (an array, possibly empty); NULL when the API failed. */
static cJSON *
job_nodes(struct admin *a, const char *job)
{
	struct admin_resp resp;
	struct buf path = BUF_INIT, sel = BUF_INIT;
	cJSON *o, *items;
	char *q;

	buf_addf(&sel, JOB_LABEL "=%s", job);
	q = evhttp_encode_uri(sel.buf);
	buf_addf(&path, "/api/v1/nodes?labelSelector=%s", q);
	free(q);
	buf_release(&sel);
	if (admin_call(a, "GET", path.buf, NULL, NULL, 0, &resp) < 0) {
		buf_release(&path);
		return NULL;
	}
	buf_release(&path);
	if (resp.code != 200) {
		admin_server_error(&resp);
		admin_resp_release(&resp);
		return NULL;
	}
	o = admin_resp_json(&resp);
	admin_resp_release(&resp);
	items = cJSON_DetachItemFromObjectCaseSensitive(o, "items");
	cJSON_Delete(o);
	return items ? items : cJSON_CreateArray();
}

static int
node_ready(const cJSON *n)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(n, "status"), "conditions")) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));
		const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));

		if (t && st && strcmp(t, "Ready") == 0)
			return strcmp(st, "True") == 0;
	}
	return 0;
}

static int
do_list(struct admin *a, const char *job_name)
{
	char *sq[] = { (char *)"squeue", (char *)"-h", (char *)"-n", (char *)job_name,
	    (char *)"-o", (char *)"%i %T %D %M %l", NULL };
	struct buf out = BUF_INIT;
	struct table t;
	char *save = NULL, *line;
	int rc;

	if ((rc = run_child(sq, &out)) != 0) {
		fprintf(stderr, "error: squeue failed (exit status %d)\n", rc);
		buf_release(&out);
		return 1;
	}
	table_init(&t, 7);
	table_add(&t, (const char *const[]){ "POOL", "JOB", "STATE", "NODES", "READY", "TIME",
	    "LIMIT" });
	for (line = strtok_r(out.buf ? out.buf : (char *)"", "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		char id[32], st[32], nn[16], tm[32], lim[32], pool[48], ready[16];
		cJSON *nodes, *n;
		int r = 0;

		if (sscanf(line, "%31s %31s %15s %31s %31s", id, st, nn, tm, lim) != 5)
			continue;
		if ((nodes = job_nodes(a, id)) != NULL) {
			cJSON_ArrayForEach(n, nodes)
				r += node_ready(n);
			cJSON_Delete(nodes);
		}
		snprintf(pool, sizeof(pool), "slurm-%s", id);
		snprintf(ready, sizeof(ready), "%d", r);
		table_add(&t, (const char *const[]){ pool, id, st, nn, ready, tm, lim });
	}
	table_print(stdout, &t);
	table_release(&t);
	buf_release(&out);
	return 0;
}

static int
do_cancel(struct admin *a, const char *job, int64_t drain_timeout_ms)
{
	char *sc[] = { (char *)"scancel", (char *)job, NULL };
	char *sq[] = { (char *)"squeue", (char *)"-h", (char *)"-j", (char *)job, (char *)"-o",
	    (char *)"%T", NULL };
	cJSON *nodes, *n;
	int rc = 0;

	if (strspn(job, "0123456789") != strlen(job) || !*job) {
		fprintf(stderr, "error: \"%s\" is not a Slurm job id\n", job);
		return EXIT_USAGE;
	}
	if ((nodes = job_nodes(a, job)) == NULL)
		return 1;
	/* pods move first: replacements elsewhere Ready, then these stop */
	{
		char **names = xcalloc((size_t)cJSON_GetArraySize(nodes) + 1, sizeof(*names));
		int nn = 0;

		cJSON_ArrayForEach(n, nodes) {
			char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(n, "metadata"), "name"));

			if (name != NULL && node_drain_start(a, name, 0) == 0)
				names[nn++] = name;
			else
				rc = 1;
		}
		if (node_drain_wait(a, names, nn, drain_timeout_ms) != 0)
			fprintf(stderr, "warning: slurm job %s: pods still on its nodes; "
			    "cancelling anyway\n", job);
		free(names);
	}
	if (run_child(sc, NULL) != 0) {
		fprintf(stderr, "error: scancel %s failed\n", job);
		cJSON_Delete(nodes);
		return 1;
	}
	for (int i = 0; i < 300; i++) {
		struct buf out = BUF_INIT;
		int qrc = run_child(sq, &out), gone = qrc != 0 || out.len == 0 ||
		    (strstr(out.buf, "RUNNING") == NULL && strstr(out.buf, "PENDING") == NULL &&
		    strstr(out.buf, "COMPLETING") == NULL);

		buf_release(&out);
		if (gone)
			break;
		usleep(100 * 1000);
	}
	cJSON_ArrayForEach(n, nodes) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(n, "metadata"), "name"));
		struct buf path = BUF_INIT;
		struct admin_resp resp;

		if (name == NULL)
			continue;
		buf_addf(&path, "/api/v1/nodes/%s", name);
		if (admin_call(a, "DELETE", path.buf, NULL, NULL, 0, &resp) == 0) {
			if (resp.code != 200 && resp.code != 404)
				rc = admin_server_error(&resp);
			admin_resp_release(&resp);
		} else {
			rc = 1;
		}
		buf_release(&path);
	}
	forget_nodepool(a, job);
	printf("slurm job %s cancelled, %d node(s) removed\n", job, cJSON_GetArraySize(nodes));
	cJSON_Delete(nodes);
	return rc;
}

static int
cmd_slurm_exec(struct admin *a, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "submit") == 0)
		return do_submit(a, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "list") == 0) {
		if (argc == 4 && strcmp(argv[2], "--job-name") == 0)
			return do_list(a, argv[3]);
		if (argc == 2)
			return do_list(a, "llmd-agents");
	}
	if (argc == 3 && strcmp(argv[1], "cancel") == 0)
		return do_cancel(a, argv[2], 120000);
	if (argc == 5 && strcmp(argv[1], "cancel") == 0 &&
	    strcmp(argv[3], "--drain-timeout") == 0) {
		int64_t ms;

		if (parse_duration_ms(argv[4], &ms) < 0 || ms < 0) {
			fprintf(stderr, "error: invalid --drain-timeout \"%s\"\n", argv[4]);
			return EXIT_USAGE;
		}
		return do_cancel(a, argv[2], ms);
	}
	fprintf(stderr, "error: USAGE: slurm submit --nodes N [--gpus-per-node G] [--partition P] "
	    "[--time T] [--account A] [--job-name NAME] [--work-dir DIR] [--agent-server URL] "
	    "[--drain-margin D] [--token-ttl D] [--template FILE] [--agent-arg ARG]... | slurm list "
	    "[--job-name NAME] | slurm cancel JOBID [--drain-timeout D]\n");
	return EXIT_USAGE;
}

const struct cmd_entry cmd_slurm_entry = {
	.name = "slurm", .alias = NULL, .usage = "submit --nodes N ... | list | cancel JOBID",
	.exec = cmd_slurm_exec,
};
