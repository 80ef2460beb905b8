/*
 * agent/main.c - llmd-agent entry point: the per-GPU-host agent. Parses the
 * flags, discovers GPUs, starts its HTTP server (logs), registers the node
 * with the daemon, re-adopts processes of a previous run and drives the
 * loop: pod list/watch, heartbeats, process reaping and the pod tick.
 * Also `llmd-agent storage-init URI` (the storage initializer by hand).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "agent/agent.h"
#include "agent/slurm-agent.h"
#include "agent/tls-join.h"
#include "lib/watchdog.h"
#include "lib/cli.h"
#include "lib/exepath.h"
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "lib/util.h"
#include "lib/workpool.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmd-agent --server URL --token-file FILE --node-name NAME "
	    "--data-dir DIR [OPTIONS]\n"
	    "       llmd-agent storage-init URI [--cache DIR] [--pvc NAME=PATH]\n\n"
	    "The per-GPU-host agent: registers the node, runs its pods' processes.\n\n"
	    "Options:\n"
	    "  --server URL              the llmd API (http://HOST:PORT)\n"
	    "  --token-file FILE         join token from `llmd-admin node token create`\n"
	    "  --node-name NAME          this node's name\n"
	    "  --data-dir DIR            state, logs, model cache\n"
	    "  --labels k=v,...          node labels\n"
	    "  --address IP              address pods are reached at (default: the one this\n"
	    "                            host reaches --server from)\n"
	    "  --listen HOST:PORT        the agent's HTTP server (ADDRESS:0)\n"
	    "  --fake-gpus SPEC          e.g. 8xH100-80GB instead of NVML\n"
	    "  --port-range LO-HI        host ports for pods (30000-32767)\n"
	    "  --pvc NAME=PATH           a volume claim's host path (repeatable)\n"
	    "  --engine-arg ARG          appended to every engine command (repeatable)\n"
	    "  --backoff-initial D       first restart delay (10s), doubling to\n"
	    "  --backoff-max D           (5m), reset after running for\n"
	    "  --backoff-reset D         (10m)\n"
	    "  --probe-period D          readiness/liveness probes (1s)\n"
	    "  --heartbeat-interval D    (5s)\n"
	    "  --sync-interval D         full pod list besides the watch (2s)\n"
	    "  --grace-period D          SIGTERM->SIGKILL (the pod's terminationGracePeriodSeconds)\n"
	    "  --slurm                   run as a task of a Slurm job step: node name, labels\n"
	    "                            and GPUs from the job; drain before it ends, and on SIGTERM\n"
	    "  --slurm-drain-margin D    drain this long before the job's end time (5m)\n"
	    "  --slurm-drain-wait D      on SIGTERM, serve until the daemon has moved the pods\n"
	    "                            (their replacements Ready), at most this long (25s;\n"
	    "                            keep it below Slurm's KillWait)\n"
	    "  --ca FILE                 the cluster CA verifying an https:// server ($LLMD_CA);\n"
	    "                            the agent then gets a client certificate (mTLS)\n"
	    "  -h, --help                show this help and exit\n"
	    "  -V, --version             show the version and exit\n"
	    "Environment: LLMD_LOG_LEVEL=error|warn|info|debug, HF_ENDPOINT, HF_TOKEN\n");
}

static struct agent A;
static int slurm_mode;                    /* --slurm */
static int64_t slurm_margin_ms = 300000;  /* --slurm-drain-margin */
static int64_t slurm_wait_ms = 25000;     /* --slurm-drain-wait */
static uint64_t drain_exit_at;            /* SIGTERM in Slurm: exit by then */
static struct watchdog *wd;               /* systemd WatchdogSec keep-alives */

/* Stops the pods (after the loop) and exits. */
static void
stop_now(struct agent *a)
{
	notify_stopping();
	a->stopping = 1;
	event_base_loopexit(a->base, NULL);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	pods_tick(a);
	/* Draining on SIGTERM: done once the daemon has taken our pods away. */
	if (drain_exit_at && !a->stopping && (a->pods == NULL || now_ms() >= drain_exit_at)) {
		if (a->pods != NULL)
			log_warnx("drain: pods still here after --slurm-drain-wait; stopping them");
		else
			log_info("drain: every pod moved elsewhere; exiting");
		stop_now(a);
	}
}

static void
on_sigchld(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pods_reap(arg);
}

static void
on_term(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)what;
	/*
	 * scancel / preemption / the time limit: the node drains, and the pods
	 * keep serving until the daemon deletes them, which it does once each
	 * one's replacement elsewhere is Ready (surge, then stop). A second
	 * signal, or --slurm-drain-wait, cuts it short.
	 */
	if (slurm_mode && !drain_exit_at && a->pods != NULL && slurm_wait_ms > 0) {
		log_info("signal %d: draining the node; serving until the pods have moved "
		    "(at most %lld ms)", (int)fd, (long long)slurm_wait_ms);
		slurm_agent_drain(a, "SIGTERM from Slurm");
		drain_exit_at = now_ms() + (uint64_t)slurm_wait_ms;
		return;
	}
	log_info("signal %d: stopping the pods and exiting", (int)fd);
	stop_now(a);
}

static void
dur(const char *flag, const char *v, int64_t *out)
{
	if (parse_duration_ms(v, out) < 0 || *out < 0)
		cli_usage_error("llmd-agent", "%s: invalid duration \"%s\"", flag, v);
}

static void
add_str(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 2, sizeof(char *));
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

static int
storage_init_main(int argc, char **argv)
{
	char **pvcs = NULL, *out = NULL, cache[4096];
	size_t npvcs = 0;
	const char *cdir = NULL;
	struct storage_opts o;
	struct llmd_err e = LLMD_ERR_INIT;
	int i;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--cache") == 0 && i + 1 < argc)
			cdir = argv[++i];
		else if (strcmp(argv[i], "--pvc") == 0 && i + 1 < argc)
			add_str(&pvcs, &npvcs, argv[++i]);
		else if (argv[i][0] == '-' || i != 2)
			cli_usage_error("llmd-agent", "storage-init: unexpected \"%s\"", argv[i]);
	}
	if (argc < 3)
		cli_usage_error("llmd-agent", "storage-init: URI required");
	snprintf(cache, sizeof(cache), "%s", cdir ? cdir : "./llmd-models");
	o.cache_dir = cache;
	o.pvcs = (const char *const *)pvcs;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (storage_fetch(argv[2], &o, &out, NULL, NULL, &e) < 0) {
		fprintf(stderr, "llmd-agent: storage-init: %s\n", e.msg);
		return 1;
	}
	printf("%s\n", out);
	free(out);
	return 0;
}

static int
router_has_sidecar(const char *path)
{
	char cmd[4200], line[512];
	FILE *f;
	int yes = 0;

	snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", path);
	if ((f = popen(cmd, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "sidecar"))
			yes = 1;
	pclose(f);
	return yes;
}

int
main(int argc, char **argv)
{
	enum { O_SERVER = 1, O_TOKEN, O_NODE, O_DATA, O_LABELS, O_FAKE, O_ADDR, O_LISTEN,
	    O_PORTS, O_PVC, O_EARG, O_BI, O_BM, O_BR, O_PROBE, O_HB, O_SYNC, O_GRACE,
	    O_SLURM, O_SLURM_MARGIN, O_SLURM_WAIT, O_CA };
	static const struct option opts[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "node-name", required_argument, NULL, O_NODE },
		{ "data-dir", required_argument, NULL, O_DATA },
		{ "labels", required_argument, NULL, O_LABELS },
		{ "fake-gpus", required_argument, NULL, O_FAKE },
		{ "address", required_argument, NULL, O_ADDR },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "port-range", required_argument, NULL, O_PORTS },
		{ "pvc", required_argument, NULL, O_PVC },
		{ "engine-arg", required_argument, NULL, O_EARG },
		{ "backoff-initial", required_argument, NULL, O_BI },
		{ "backoff-max", required_argument, NULL, O_BM },
		{ "backoff-reset", required_argument, NULL, O_BR },
		{ "probe-period", required_argument, NULL, O_PROBE },
		{ "heartbeat-interval", required_argument, NULL, O_HB },
		{ "sync-interval", required_argument, NULL, O_SYNC },
		{ "grace-period", required_argument, NULL, O_GRACE },
		{ "slurm", no_argument, NULL, O_SLURM },
		{ "slurm-drain-margin", required_argument, NULL, O_SLURM_MARGIN },
		{ "slurm-drain-wait", required_argument, NULL, O_SLURM_WAIT },
		{ "ca", required_argument, NULL, O_CA },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent *a = &A;
	const char *fake = NULL, *ca_file = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	char ebuf[800], path[4096];
	struct timeval tick = { 0, 200 * 1000 };
	int c;

	log_init("llmd-agent", LOG_LVL_INFO);
	if (argc >= 2 && strcmp(argv[1], "storage-init") == 0)
		return storage_init_main(argc, argv);
	a->port_lo = 30000;
	a->port_hi = 32767;
	a->t.backoff_initial_ms = 10000;
	a->t.backoff_max_ms = 300000;
	a->t.backoff_reset_ms = 600000;
	a->t.probe_period_ms = 1000;
	a->t.heartbeat_ms = 5000;
	a->t.sync_ms = 2000;
	a->t.grace_ms = -1;
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case O_SERVER: a->server = xstrdup(optarg); break;
		case O_TOKEN: a->token_file = xstrdup(optarg); break;
		case O_NODE: a->node = xstrdup(optarg); break;
		case O_DATA: a->data_dir = xstrdup(optarg); break;
		case O_LABELS: a->labels = xstrdup(optarg); break;
		case O_FAKE: fake = optarg; break;
		case O_ADDR: a->address = xstrdup(optarg); break;
		case O_LISTEN: a->listen = xstrdup(optarg); break;
		case O_PORTS:
			if (sscanf(optarg, "%d-%d", &a->port_lo, &a->port_hi) != 2 ||
			    a->port_lo < 1 || a->port_hi > 65535 || a->port_lo > a->port_hi)
				cli_usage_error("llmd-agent", "--port-range: expected LO-HI");
			break;
		case O_PVC: add_str(&a->pvcs, &a->npvcs, optarg); break;
		case O_EARG: add_str(&a->engine_args, &a->nengine_args, optarg); break;
		case O_BI: dur("--backoff-initial", optarg, &a->t.backoff_initial_ms); break;
		case O_BM: dur("--backoff-max", optarg, &a->t.backoff_max_ms); break;
		case O_BR: dur("--backoff-reset", optarg, &a->t.backoff_reset_ms); break;
		case O_PROBE: dur("--probe-period", optarg, &a->t.probe_period_ms); break;
		case O_HB: dur("--heartbeat-interval", optarg, &a->t.heartbeat_ms); break;
		case O_SYNC: dur("--sync-interval", optarg, &a->t.sync_ms); break;
		case O_GRACE: dur("--grace-period", optarg, &a->t.grace_ms); break;
		case O_SLURM: slurm_mode = 1; break;
		case O_SLURM_MARGIN: dur("--slurm-drain-margin", optarg, &slurm_margin_ms); break;
		case O_SLURM_WAIT: dur("--slurm-drain-wait", optarg, &slurm_wait_ms); break;
		case O_CA: ca_file = optarg; break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_print_version("llmd-agent");
			return 0;
		default:
			fprintf(stderr, "Try 'llmd-agent --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		cli_usage_error("llmd-agent", "unexpected argument \"%s\"", argv[optind]);
	a->slurm = slurm_mode;
	if (slurm_mode && slurm_agent_setup(a, &fake, &e) < 0)
		cli_usage_error("llmd-agent", "--slurm: %s", err_str(&e, ebuf, sizeof(ebuf)));
	if (!a->server || !a->token_file || !a->node || !a->data_dir)
		cli_usage_error("llmd-agent", "--server, --token-file, --node-name and "
		    "--data-dir are required");
	if (a->t.probe_period_ms <= 0 || a->t.heartbeat_ms <= 0 || a->t.sync_ms <= 0)
		cli_usage_error("llmd-agent", "intervals must be > 0");
	if (!a->address) {   /* where this host reaches the daemon from */
		char ip[64];

		a->address = xstrdup(agent_route_address(a->server, ip, sizeof(ip)) == 0 ?
		    ip : "127.0.0.1");
	}
	if (!a->listen) {
		snprintf(path, sizeof(path), strchr(a->address, ':') ? "[%s]:0" : "%s:0",
		    a->address);
		a->listen = xstrdup(path);
	}
	if (fake) {
		if (gpu_parse_fake(fake, a->gpus, AGENT_MAX_GPUS, &a->ngpus, &e) < 0)
			cli_usage_error("llmd-agent", "%s", err_str(&e, ebuf, sizeof(ebuf)));
	} else {
		gpu_discover_nvml(a->gpus, AGENT_MAX_GPUS, &a->ngpus);
	}
	if (exepath_find_sibling("llmd-engine", a->engine_path, sizeof(a->engine_path)) < 0)
		snprintf(a->engine_path, sizeof(a->engine_path), "llmd-engine");
	if (exepath_find_sibling("llmd-router", a->router_path, sizeof(a->router_path)) == 0)
		a->router_has_sidecar = router_has_sidecar(a->router_path);
	mkdir(a->data_dir, 0755);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (agent_tls_setup(a, ca_file, &e) < 0)   /* before any call to the daemon */
		fatalx("%s", err_str(&e, ebuf, sizeof(ebuf)));
	if ((a->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	a->hc = http_client_new(a->base, &(struct http_client_config){ .timeout_ms = 10000 });
	if ((a->wp = workpool_new(a->base, 2, 0)) == NULL)
		fatal("workpool_new");
	if (logs_start(a, &e) < 0)
		fatalx("%s", err_str(&e, ebuf, sizeof(ebuf)));
	if (control_register(a, &e) < 0)
		fatalx("%s", err_str(&e, ebuf, sizeof(ebuf)));
	pods_adopt(a);
	a->sigchld = evsignal_new(a->base, SIGCHLD, on_sigchld, a);
	a->sigterm = evsignal_new(a->base, SIGTERM, on_term, a);
	a->sigint = evsignal_new(a->base, SIGINT, on_term, a);
	evsignal_add(a->sigchld, NULL);
	evsignal_add(a->sigterm, NULL);
	evsignal_add(a->sigint, NULL);
	a->tick = event_new(a->base, -1, EV_PERSIST, on_tick, a);
	event_add(a->tick, &tick);
	control_start(a);
	if (slurm_mode)
		slurm_agent_start(a, slurm_margin_ms);
	notify_ready("registered");
	wd = watchdog_start(a->base);
	log_info("llmd-agent %s: node %s, %d GPU(s), engine %s%s", PACKAGE_VERSION, a->node,
	    a->ngpus, a->engine_path, a->router_has_sidecar ? ", router sidecar" : "");
	event_base_dispatch(a->base);

	slurm_agent_stop();
	watchdog_stop(wd);
	control_stop(a);
	pods_stop_all(a);
	logs_stop(a);
	event_free(a->tick);
	event_free(a->sigchld);
	event_free(a->sigterm);
	event_free(a->sigint);
	workpool_free(a->wp);
	http_client_free(a->hc);
	event_base_free(a->base);
	curl_global_cleanup();
	return 0;
}
