/*
 * cli/cmd-node-ssh.c - "node add HOST" and "node remove HOST": bootstrap
 * (and tear down) a GPU host over SSH (cli/ssh.c, libssh2).
 *
 * add: connect (known_hosts checked; --accept-host-key SHA256:... records an
 * unknown key), probe the host (architecture, host name, systemd), create a
 * join token through the API, upload the agent binary (the llmd-agent next
 * to llmd-admin), its environment file, the join token and a start script
 * into --remote-dir (default /opt/llmd), with llmd-engine and llmd-router
 * when they sit next to llmd-admin too, start the agent (a systemd unit
 * when the host runs systemd, else a setsid'd restart loop with a pid
 * file), and wait until the Node is Ready. Running it again converges: the
 * files are replaced and the agent restarted (it keeps its credential in
 * DIR/data).
 * remove: drain the node, stop the agent, delete DIR (and the unit), delete
 * the Node object. Missing pieces are not errors.
 * Every failure is printed as "node add HOST: STEP: message".
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cli/admin.h"
#include "cli/ssh.h"
#include "lib/cli.h"
#include "lib/exepath.h"
#include "lib/util.h"

#define UNIT_PATH "/etc/systemd/system/llmd-agent.service"

struct node_ssh {
	const char *verb;            /* "add" / "remove" */
	const char *host;
	struct ssh_opts ssh;
	const char *node_name;
	const char *labels;
	const char *remote_dir;
	const char *agent_server;
	const char *ca_file;         /* llmd-admin's CA: uploaded, the agent's --ca */
	const char **agent_args;
	size_t nagent_args;
	int64_t wait_ms;
	int no_systemd;
	/* found on the host */
	char name[256];
	char arch[64];
	int systemd;
};

static int
step_fail(const struct node_ssh *n, const char *step, const struct llmd_err *e)
{
	fprintf(stderr, "error: node %s %s: %s: %s\n", n->verb, n->host,
	    step ? step : (e && *e->field ? e->field : "?"), e ? e->msg : "failed");
	return 1;
}

static int
step_failf(const struct node_ssh *n, const char *step, const char *fmt, ...)
    LLMD_PRINTF(3, 4);

static int
step_failf(const struct node_ssh *n, const char *step, const char *fmt, ...)
{
	struct llmd_err e = LLMD_ERR_INIT;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	return step_fail(n, step, &e);
}

/* Runs cmd; a non-zero exit is a failure of step with the output. */
static int
run(struct ssh_conn *c, const struct node_ssh *n, const char *step, const char *cmd,
    struct buf *out)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct buf tmp = BUF_INIT;
	struct buf *o = out ? out : &tmp;
	int status, rc;

	rc = ssh_exec(c, cmd, o, &status, &e);
	if (rc < 0) {
		buf_release(&tmp);
		return step_fail(n, step, &e);
	}
	if (status != 0) {
		while (o->len > 0 && (o->buf[o->len - 1] == '\n' || o->buf[o->len - 1] == '\r'))
			o->buf[--o->len] = '\0';
		rc = step_failf(n, step, "exit status %d: %.400s", status, o->len ? o->buf : "");
		buf_release(&tmp);
		return rc;
	}
	buf_release(&tmp);
	return 0;
}

static int
is_ip(const char *h)
{
	unsigned char a[16];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

static int
probe(struct ssh_conn *c, struct node_ssh *n)
{
	struct buf out = BUF_INIT;
	char *save = NULL, *line;
	int rc;

	rc = run(c, n, "probe", "uname -m; hostname -s 2>/dev/null || hostname; "
	    "if test -d /run/systemd/system && command -v systemctl >/dev/null; "
	    "then echo systemd; else echo no-systemd; fi", &out);
	if (rc != 0) {
		buf_release(&out);
		return rc;
	}
	line = strtok_r(out.buf ? out.buf : (char *)"", "\n", &save);
	snprintf(n->arch, sizeof(n->arch), "%s", line ? line : "");
	line = strtok_r(NULL, "\n", &save);
	if (n->node_name == NULL)
		snprintf(n->name, sizeof(n->name), "%s", line ? line : "");
	else
		snprintf(n->name, sizeof(n->name), "%s", n->node_name);
	line = strtok_r(NULL, "\n", &save);
	n->systemd = !n->no_systemd && line && strcmp(line, "systemd") == 0;
	buf_release(&out);
	for (char *p = n->name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (!*n->name)
		return step_failf(n, "probe", "cannot tell the host name: pass --node-name");
	return 0;
}

static int
join_token(struct admin *a, const struct node_ssh *n, char **out)
{
	struct admin_resp resp;
	cJSON *o;
	const char *t;
	static const char body[] = "{\"ttl\":\"1h\"}";

	if (admin_call(a, "POST", "/agent/v1/tokens", "application/json", body,
	    sizeof(body) - 1, &resp) < 0)
		return step_failf(n, "join token", "the llmd API at %s is unreachable", a->server);
	if (resp.code != 200 && resp.code != 201) {
		fprintf(stderr, "error: node %s %s: join token: ", n->verb, n->host);
		admin_server_error(&resp);
		admin_resp_release(&resp);
		return 1;
	}
	o = admin_resp_json(&resp);
	admin_resp_release(&resp);
	t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "token"));
	if (t == NULL) {
		cJSON_Delete(o);
		return step_failf(n, "join token", "unexpected answer from the server");
	}
	*out = xstrdup(t);
	cJSON_Delete(o);
	return 0;
}

/* DIR/bin/run-agent: exec llmd-agent with every argument quoted. */
static void
start_script(const struct node_ssh *n, struct buf *s)
{
	const char *d = n->remote_dir;

	buf_adds(s, "#!/bin/sh\n# written by llmd-admin node add\nexec ");
	buf_addf(s, "%s/bin/llmd-agent --server ", d);
	ssh_quote(s, n->agent_server);
	buf_addf(s, " --token-file %s/join-token --data-dir %s/data --node-name ", d, d);
	ssh_quote(s, n->name);
	if (n->labels) {
		buf_adds(s, " --labels ");
		ssh_quote(s, n->labels);
	}
	if (is_ip(n->host)) {
		buf_adds(s, " --address ");
		ssh_quote(s, n->host);
	}
	if (n->ca_file)
		buf_addf(s, " --ca %s/ca.crt", d);
	for (size_t i = 0; i < n->nagent_args; i++) {
		buf_adds(s, " ");
		ssh_quote(s, n->agent_args[i]);
	}
	buf_adds(s, " \"$@\"\n");
}

static void
unit_file(const struct node_ssh *n, struct buf *u)
{
	buf_addf(u, "# written by llmd-admin node add\n"
	    "[Unit]\nDescription=llmd GPU host agent\n"
	    "After=network-online.target\nWants=network-online.target\n\n"
	    "[Service]\nType=notify\nNotifyAccess=main\n"
	    "EnvironmentFile=-%s/agent.env\n"
	    "ExecStart=/bin/sh %s/bin/run-agent\n"
	    "Restart=always\nRestartSec=2s\nKillMode=mixed\nTimeoutStopSec=60s\n"
	    "LimitMEMLOCK=infinity\nLimitNOFILE=1048576\nProtectHome=read-only\n"
	    "PrivateTmp=yes\n\n[Install]\nWantedBy=multi-user.target\n",
	    n->remote_dir, n->remote_dir);
}

/* Shell: stop the supervised agent of DIR (pid file), if any. */
static void
stop_cmd(const struct node_ssh *n, struct buf *c)
{
	struct buf d = BUF_INIT;

	ssh_quote(&d, n->remote_dir);
	buf_addf(c, "if test -s %s/agent.pid; then p=$(cat %s/agent.pid); "
	    "if kill -0 \"$p\" 2>/dev/null; then kill -TERM -- -\"$p\" 2>/dev/null; "
	    "i=0; while kill -0 \"$p\" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; "
	    "i=$((i+1)); done; kill -KILL -- -\"$p\" 2>/dev/null; fi; "
	    "rm -f %s/agent.pid; fi", d.buf, d.buf, d.buf);
	buf_release(&d);
}

static int
install(struct ssh_conn *c, struct node_ssh *n, const char *token)
{
	static const char *const companions[] = { "llmd-engine", "llmd-router" };
	struct llmd_err e = LLMD_ERR_INIT;
	struct buf cmd = BUF_INIT, d = BUF_INIT, s = BUF_INIT, path = BUF_INIT;
	char agent[4096];
	int rc = 1;

	if (exepath_find_sibling("llmd-agent", agent, sizeof(agent)) < 0) {
		rc = step_failf(n, "upload", "no llmd-agent next to llmd-admin or on PATH");
		goto out;
	}
	ssh_quote(&d, n->remote_dir);
	buf_addf(&cmd, "mkdir -p %s/bin %s/data && chmod 700 %s 2>&1", d.buf, d.buf, d.buf);
	if ((rc = run(c, n, "mkdir", cmd.buf, NULL)) != 0)
		goto out;
	buf_addf(&path, "%s/bin/.llmd-agent.tmp", n->remote_dir);
	if (ssh_upload_file(c, agent, path.buf, 0755, &e) < 0) {
		rc = step_fail(n, "upload", &e);
		goto out;
	}
	/* the programs the agent runs, when they sit next to llmd-admin */
	for (size_t i = 0; i < ARRAY_SIZE(companions); i++) {
		char local[4096];

		if (exepath_find_sibling(companions[i], local, sizeof(local)) < 0 ||
		    strchr(local, '/') == NULL)
			continue;
		buf_reset(&path);
		buf_addf(&path, "%s/bin/.%s.tmp", n->remote_dir, companions[i]);
		if (ssh_upload_file(c, local, path.buf, 0755, &e) < 0) {
			rc = step_fail(n, "upload", &e);
			goto out;
		}
		buf_reset(&cmd);
		buf_addf(&cmd, "mv -f %s/bin/.%s.tmp %s/bin/%s 2>&1", d.buf, companions[i], d.buf,
		    companions[i]);
		if ((rc = run(c, n, "upload", cmd.buf, NULL)) != 0)
			goto out;
	}
	buf_reset(&path);
	buf_addf(&path, "%s/join-token", n->remote_dir);
	buf_addf(&s, "%s\n", token);
	if (ssh_upload_data(c, s.buf, s.len, path.buf, 0600, &e) < 0) {
		rc = step_fail(n, "upload", &e);
		goto out;
	}
	if (n->ca_file) {
		buf_reset(&path);
		buf_addf(&path, "%s/ca.crt", n->remote_dir);
		if (ssh_upload_file(c, n->ca_file, path.buf, 0644, &e) < 0) {
			rc = step_fail(n, "upload", &e);
			goto out;
		}
	}
	buf_reset(&s);
	start_script(n, &s);
	buf_reset(&path);
	buf_addf(&path, "%s/bin/run-agent", n->remote_dir);
	if (ssh_upload_data(c, s.buf, s.len, path.buf, 0700, &e) < 0) {
		rc = step_fail(n, "upload", &e);
		goto out;
	}
	buf_reset(&s);
	buf_adds(&s, "LLMD_SERVER=");
	ssh_quote(&s, n->agent_server);
	buf_addf(&s, "\nLLMD_NODE_NAME=%s\n", n->name);
	buf_reset(&path);
	buf_addf(&path, "%s/agent.env", n->remote_dir);
	if (ssh_upload_data(c, s.buf, s.len, path.buf, 0600, &e) < 0) {
		rc = step_fail(n, "upload", &e);
		goto out;
	}
	/* replace the binary atomically (a running agent keeps its old inode) */
	buf_reset(&cmd);
	buf_addf(&cmd, "mv -f %s/bin/.llmd-agent.tmp %s/bin/llmd-agent 2>&1", d.buf, d.buf);
	if ((rc = run(c, n, "upload", cmd.buf, NULL)) != 0)
		goto out;
	buf_reset(&cmd);
	if (n->systemd) {
		buf_reset(&s);
		unit_file(n, &s);
		if (ssh_upload_data(c, s.buf, s.len, UNIT_PATH, 0644, &e) < 0) {
			rc = step_fail(n, "unit", &e);
			goto out;
		}
		buf_addf(&cmd, "systemctl daemon-reload && systemctl enable llmd-agent && "
		    "systemctl restart llmd-agent 2>&1");
	} else {
		stop_cmd(n, &cmd);
		/* setsid: its own session and process group (stopped as a group); the
		 * redirections let the SSH channel close */
		buf_addf(&cmd, "; cd %s || exit 1; setsid sh -c 'while :; do sh %s/bin/run-agent; "
		    "sleep 2; done' >> %s/agent.log 2>&1 < /dev/null & echo $! > %s/agent.pid",
		    d.buf, n->remote_dir, d.buf, d.buf);
	}
	rc = run(c, n, "start", cmd.buf, NULL);
out:
	buf_release(&cmd);
	buf_release(&d);
	buf_release(&s);
	buf_release(&path);
	return rc;
}

static const cJSON *
ready_condition(const cJSON *node)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(node, "status"), "conditions")) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));

		if (t && strcmp(t, "Ready") == 0)
			return c;
	}
	return NULL;
}

static int
wait_ready(struct admin *a, struct ssh_conn *c, const struct node_ssh *n)
{
	const struct api_resource *r = admin_resource("nodes");
	uint64_t deadline = now_ms() + (uint64_t)n->wait_ms;
	struct buf cmd = BUF_INIT, log = BUF_INIT;
	int status;

	for (;;) {
		cJSON *o = NULL;
		const char *st = NULL;

		if (admin_get_obj(a, r, NULL, n->name, &o, 1) == 0) {
			st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			    ready_condition(o), "status"));
			if (st && strcmp(st, "True") == 0) {
				cJSON_Delete(o);
				return 0;
			}
		}
		cJSON_Delete(o);
		if (now_ms() >= deadline)
			break;
		usleep(250 * 1000);
	}
	if (n->systemd)
		buf_adds(&cmd, "journalctl -u llmd-agent -n 15 --no-pager 2>&1");
	else {
		buf_adds(&cmd, "tail -n 15 ");
		ssh_quote(&cmd, n->remote_dir);
		buf_adds(&cmd, "/agent.log 2>&1");
	}
	ssh_exec(c, cmd.buf, &log, &status, NULL);
	step_failf(n, "wait", "node %s not Ready after %lld s; the agent's log ends:\n%s",
	    n->name, (long long)(n->wait_ms / 1000), log.buf ? log.buf : "");
	buf_release(&cmd);
	buf_release(&log);
	return 1;
}

static int
do_add(struct admin *a, struct node_ssh *n)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct ssh_conn *c;
	struct utsname u;
	char *token = NULL;
	int rc;

	if ((c = ssh_connect(&n->ssh, &e)) == NULL)
		return step_fail(n, NULL, &e);
	if ((rc = probe(c, n)) != 0)
		goto out;
	if (uname(&u) == 0 && strcmp(u.machine, n->arch) != 0) {
		rc = step_failf(n, "probe", "the host is %s, this llmd-agent is %s", n->arch,
		    u.machine);
		goto out;
	}
	fprintf(stderr, "node %s: host key %s, %s, %s\n", n->name, ssh_fingerprint(c), n->arch,
	    n->systemd ? "systemd" : "no systemd (supervised background process)");
	if ((rc = join_token(a, n, &token)) != 0 || (rc = install(c, n, token)) != 0)
		goto out;
	fprintf(stderr, "node %s: agent started, waiting for Ready\n", n->name);
	if ((rc = wait_ready(a, c, n)) == 0)
		printf("node/%s added\n", n->name);
out:
	if (token != NULL) {
		memset(token, 0, strlen(token));
		free(token);
	}
	ssh_close(c);
	return rc;
}

static int
do_remove(struct admin *a, struct node_ssh *n)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const struct api_resource *r = admin_resource("nodes");
	struct buf cmd = BUF_INIT, d = BUF_INIT, path = BUF_INIT;
	struct admin_resp resp;
	struct ssh_conn *c;
	cJSON *o = NULL;
	int rc;

	if ((c = ssh_connect(&n->ssh, &e)) == NULL)
		return step_fail(n, NULL, &e);
	if ((rc = probe(c, n)) != 0)
		goto out;
	if (admin_get_obj(a, r, NULL, n->name, &o, 1) == 0) {
		char *argv[] = { (char *)"drain", n->name, NULL };

		if ((rc = cmd_drain_entry.exec(a, 2, argv)) != 0) {
			rc = step_failf(n, "drain", "draining node %s failed", n->name);
			goto out;
		}
	}
	ssh_quote(&d, n->remote_dir);
	if (n->systemd)
		buf_addf(&cmd, "if test -f " UNIT_PATH "; then systemctl disable --now llmd-agent; "
		    "rm -f " UNIT_PATH "; systemctl daemon-reload; fi; ");
	stop_cmd(n, &cmd);
	buf_adds(&cmd, " 2>&1");
	if ((rc = run(c, n, "stop", cmd.buf, NULL)) != 0)
		goto out;
	buf_reset(&cmd);
	buf_addf(&cmd, "rm -rf %s 2>&1", d.buf);
	if ((rc = run(c, n, "uninstall", cmd.buf, NULL)) != 0)
		goto out;
	buf_addf(&path, "/api/v1/nodes/%s", n->name);
	if (admin_call(a, "DELETE", path.buf, NULL, NULL, 0, &resp) < 0) {
		rc = step_failf(n, "delete", "the llmd API at %s is unreachable", a->server);
		goto out;
	}
	if (resp.code != 200 && resp.code != 202 && resp.code != 404) {
		fprintf(stderr, "error: node remove %s: delete: ", n->host);
		rc = admin_server_error(&resp);
		admin_resp_release(&resp);
		goto out;
	}
	admin_resp_release(&resp);
	printf("node/%s removed\n", n->name);
out:
	cJSON_Delete(o);
	buf_release(&cmd);
	buf_release(&d);
	buf_release(&path);
	ssh_close(c);
	return rc;
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

int
cmd_node_ssh(struct admin *a, int argc, char **argv)
{
	struct node_ssh n = { 0 };
	const char *v;
	long l;
	int rc;

	n.verb = argv[1];
	n.remote_dir = "/opt/llmd";
	n.agent_server = a->server;
	n.ca_file = a->ca_file && *a->ca_file ? a->ca_file : NULL;
	n.wait_ms = 120000;
	n.ssh.user = "root";
	for (int i = 2; i < argc; i++) {
		if ((v = flag_value(argc, argv, &i, "--user")) != NULL)
			n.ssh.user = v;
		else if ((v = flag_value(argc, argv, &i, "--port")) != NULL) {
			if (parse_long(v, 1, 65535, &l) < 0)
				goto usage;
			n.ssh.port = (int)l;
		} else if ((v = flag_value(argc, argv, &i, "--identity")) != NULL)
			n.ssh.identity = v;
		else if ((v = flag_value(argc, argv, &i, "--known-hosts")) != NULL)
			n.ssh.known_hosts = v;
		else if ((v = flag_value(argc, argv, &i, "--accept-host-key")) != NULL)
			n.ssh.accept_fingerprint = v;
		else if ((v = flag_value(argc, argv, &i, "--labels")) != NULL)
			n.labels = v;
		else if ((v = flag_value(argc, argv, &i, "--node-name")) != NULL)
			n.node_name = v;
		else if ((v = flag_value(argc, argv, &i, "--remote-dir")) != NULL)
			n.remote_dir = v;
		else if ((v = flag_value(argc, argv, &i, "--agent-server")) != NULL)
			n.agent_server = v;
		else if ((v = flag_value(argc, argv, &i, "--agent-arg")) != NULL) {
			n.agent_args = xreallocarray(n.agent_args, n.nagent_args + 1,
			    sizeof(*n.agent_args));
			n.agent_args[n.nagent_args++] = v;
		} else if ((v = flag_value(argc, argv, &i, "--timeout")) != NULL) {
			if (parse_duration_ms(v, &n.wait_ms) < 0 || n.wait_ms <= 0)
				goto usage;
		} else if (strcmp(argv[i], "--no-systemd") == 0)
			n.no_systemd = 1;
		else if (argv[i][0] != '-' && n.host == NULL)
			n.host = argv[i];
		else {
			fprintf(stderr, "error: unexpected argument \"%s\"\n", argv[i]);
			goto usage;
		}
	}
	if (n.host == NULL || n.remote_dir[0] != '/' || strstr(n.remote_dir, "..") != NULL ||
	    strspn(n.remote_dir, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._/-") != strlen(n.remote_dir))
		goto usage;
	n.ssh.host = n.host;
	rc = strcmp(n.verb, "add") == 0 ? do_add(a, &n) : do_remove(a, &n);
	free(n.agent_args);
	return rc;
usage:
	free(n.agent_args);
	fprintf(stderr, "error: USAGE: node add|remove HOST [--user U] [--port P] "
	    "[--identity KEY] [--known-hosts FILE] [--accept-host-key SHA256:...] "
	    "[--labels k=v,...] [--node-name NAME] [--remote-dir /ABS/DIR] "
	    "[--agent-server URL] [--agent-arg ARG]... [--timeout D] [--no-systemd]\n");
	return EXIT_USAGE;
}
