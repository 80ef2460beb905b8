/*
 * daemon/main.c - llmd entry point: the llmd control plane daemon
 * (LLMInferenceService API, reconciler, placement). Parses flags and the
 * optional config file, opens the store, starts the API, the watch hub and
 * the reconciler on one libevent loop, and writes the bound address to
 * DATA_DIR/llmd.addr.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/api-metrics.h"
#include "daemon/api.h"
#include "daemon/api-certs.h"
#include "daemon/api-tls.h"
#include "daemon/reconcile.h"
#include "daemon/reconciler.h"
#include "daemon/nodes.h"
#include "daemon/store.h"
#include "daemon/watch.h"
#include "lib/cli.h"
#include "lib/exepath.h"
#include "lib/ca.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "lib/watchdog.h"
#include "lib/util.h"
#include "lib/workpool.h"
#include "lib/yaml.h"

struct opts {
	char *listen;
	char *data_dir;
	char *token_file;
	char *config;
	char *presets_dir;
	uint64_t max_body;
	int64_t event_history;
	int64_t busy_timeout_ms;
	int64_t http_timeout_ms;
	int64_t resync_ms;
	int64_t node_grace_ms, node_eviction_ms, node_period_ms;
	int allow_network_fs;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmd [OPTIONS]\n\nthe llmd control plane daemon (LLMInferenceService API, reconciler, placement).\n\n"
	    "Options:\n"
	    "  -l, --listen HOST:PORT      API address (default 127.0.0.1:7480; port 0 picks one)\n"
	    "  -d, --data-dir DIR          store directory (default /var/lib/llmd)\n"
	    "  -t, --token-file FILE       first line is the admin bearer token\n"
	    "  -c, --config FILE           YAML config (keys: listen, dataDir, tokenFile,\n"
	    "                              maxBody, eventHistory, busyTimeout, httpTimeout,\n"
	    "                              resyncInterval); flags win\n"
	    "      --max-body SIZE         largest request body (default 3MiB)\n"
	    "      --event-history N       events kept for WATCH resumption (default 10000)\n"
	    "      --busy-timeout DUR      SQLite busy timeout (default 5s)\n"
	    "      --http-timeout DUR      idle timeout of API connections (default 60s)\n"
	    "      --resync-interval DUR   reconcile every service this often (default 30s)\n"
	    "      --node-grace DUR        a node without heartbeats is NotReady after this (10s)\n"
	    "      --node-eviction DUR     ... and its pods move to other nodes after this (15s)\n"
	    "      --node-monitor-period DUR  how often nodes are checked (1s)\n"
	    "      --allow-network-fs      do not refuse a data dir on NFS/CIFS/FUSE\n"
	    "      --presets-dir DIR       well-known configs installed into " LLMD_SYSTEM_NAMESPACE "\n"
	    "                              when absent (default: the shipped presets)\n"
	    API_TLS_USAGE
	    "  -h, --help                  show this help and exit\n"
	    "  -V, --version               show the version and exit\n"
	    "Environment: LLMD_LOG_LEVEL=error|warn|info|debug\n");
}

static struct event_base *loop_base;

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	log_info("signal %d: shutting down", (int)sig);
	notify_stopping();
	api_shutdown(arg);
}

static void
end_watches(void *arg)
{
	watch_hub_end_streams(arg);
}

static char *
read_token(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t n;

	if (f == NULL)
		fatal("--token-file %s", path);
	if (fgets(line, sizeof(line), f) == NULL)
		fatalx("--token-file %s: empty", path);
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n < 8)
		fatalx("--token-file %s: the token must be at least 8 characters", path);
	return xstrdup(line);
}

static void
dur_opt(const char *flag, const char *v, int64_t *out)
{
	if (parse_duration_ms(v, out) < 0 || *out < 0)
		cli_usage_error("llmd", "%s: invalid duration \"%s\"", flag, v);
}

/* Fills unset options from the YAML config file. */
static void
load_config(struct opts *o)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON **docs = NULL, *v;
	size_t n = 0;
	char buf[600];

	if (yaml_parse_file(o->config, &docs, &n, &e) < 0)
		fatalx("%s", err_str(&e, buf, sizeof(buf)));
	if (n != 1 || !cJSON_IsObject(docs[0]))
		fatalx("%s: expected one mapping", o->config);
	cJSON_ArrayForEach(v, docs[0]) {
		const char *k = v->string, *s = cJSON_GetStringValue(v);
		char num[32];

		if (cJSON_IsNumber(v)) {
			snprintf(num, sizeof(num), "%.0f", v->valuedouble);
			s = num;
		}
		if (s == NULL)
			fatalx("%s: %s: expected a string or number", o->config, k);
		if (strcmp(k, "listen") == 0 && !o->listen)
			o->listen = xstrdup(s);
		else if (strcmp(k, "dataDir") == 0 && !o->data_dir)
			o->data_dir = xstrdup(s);
		else if (strcmp(k, "tokenFile") == 0 && !o->token_file)
			o->token_file = xstrdup(s);
		else if (strcmp(k, "maxBody") == 0 && !o->max_body) {
			if (parse_size(s, &o->max_body) < 0)
				fatalx("%s: maxBody: invalid size", o->config);
		} else if (strcmp(k, "eventHistory") == 0 && !o->event_history) {
			long l;

			if (parse_long(s, 10, 100000000, &l) < 0)
				fatalx("%s: eventHistory: invalid", o->config);
			o->event_history = l;
		} else if (strcmp(k, "busyTimeout") == 0 && !o->busy_timeout_ms)
			dur_opt(k, s, &o->busy_timeout_ms);
		else if (strcmp(k, "httpTimeout") == 0 && !o->http_timeout_ms)
			dur_opt(k, s, &o->http_timeout_ms);
		else if (strcmp(k, "resyncInterval") == 0 && !o->resync_ms)
			dur_opt(k, s, &o->resync_ms);
		else if (strcmp(k, "listen") && strcmp(k, "dataDir") && strcmp(k, "tokenFile") &&
		    strcmp(k, "maxBody") && strcmp(k, "eventHistory") &&
		    strcmp(k, "busyTimeout") && strcmp(k, "httpTimeout") &&
		    strcmp(k, "resyncInterval"))
			fatalx("%s: unknown key \"%s\"", o->config, k);
	}
	yaml_docs_free(docs, n);
}

/*
 * Creates the well-known LLMInferenceServiceConfigs of the .yaml files in DIR in the
 * system namespace when absent (an operator's edits are kept).
 */
static void
seed_presets(struct store *s, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int created = 0;

	if (d == NULL) {
		log_warnx("presets: %s: %s (services that need presets will not be ready)",
		    dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct llmd_err e = LLMD_ERR_INIT;
		char path[4096], ebuf[800];
		cJSON **docs = NULL;
		size_t n = 0, i;
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (yaml_parse_file(path, &docs, &n, &e) < 0) {
			log_warnx("presets: %s", err_str(&e, ebuf, sizeof(ebuf)));
			continue;
		}
		for (i = 0; i < n; i++) {
			cJSON *md = cJSON_GetObjectItemCaseSensitive(docs[i], "metadata");

			if (!cJSON_IsObject(md))
				continue;
			cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
			cJSON_AddStringToObject(md, "namespace", LLMD_SYSTEM_NAMESPACE);
			if (store_create(s, "llminferenceserviceconfigs", docs[i], NULL, &e) == 0)
				created++;
		}
		yaml_docs_free(docs, n);
	}
	closedir(d);
	if (created)
		log_info("presets: installed %d configs from %s into namespace %s", created,
		    dir, LLMD_SYSTEM_NAMESPACE);
}

static void
write_addr_file(const char *dir, const char *addr)
{
	char path[4096], tmp[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/llmd.addr", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL) {
		log_warn("%s", tmp);
		return;
	}
	fprintf(f, "%s\n", addr);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		log_warn("%s", path);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "token-file", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "max-body", required_argument, NULL, 1 },
		{ "event-history", required_argument, NULL, 2 },
		{ "busy-timeout", required_argument, NULL, 3 },
		{ "http-timeout", required_argument, NULL, 4 },
		{ "resync-interval", required_argument, NULL, 5 },
		{ "allow-network-fs", no_argument, NULL, 6 },
		{ "presets-dir", required_argument, NULL, 7 },
		{ "node-grace", required_argument, NULL, 8 },
		{ "node-eviction", required_argument, NULL, 9 },
		{ "node-monitor-period", required_argument, NULL, 10 },
		API_TLS_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 0 };
	struct llmd_err e = LLMD_ERR_INIT;
	struct store_opts so = { 0 };
	struct api_opts ao = { 0 };
	struct api_tls_opts tlso = { 0 };
	struct watchdog *wd;
	struct ca *cluster_ca = NULL;
	SSL_CTX *tls_ctx = NULL;
	struct store *store = NULL;
	struct watch_hub *hub;
	struct workpool *wp;
	struct reconciler *rec;
	struct api *api = NULL;
	struct event *sigterm, *sigint;
	char *token = NULL, ebuf[800];
	long l;
	int c;

	log_init("llmd", LOG_LVL_INFO);
	while ((c = getopt_long(argc, argv, "l:d:t:c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o.listen = xstrdup(optarg); break;
		case 'd': o.data_dir = xstrdup(optarg); break;
		case 't': o.token_file = xstrdup(optarg); break;
		case 'c': o.config = xstrdup(optarg); break;
		case 1:
			if (parse_size(optarg, &o.max_body) < 0 || o.max_body < 1024)
				cli_usage_error("llmd", "--max-body: invalid size \"%s\"", optarg);
			break;
		case 2:
			if (parse_long(optarg, 10, 100000000, &l) < 0)
				cli_usage_error("llmd", "--event-history: invalid \"%s\"", optarg);
			o.event_history = l;
			break;
		case 3: dur_opt("--busy-timeout", optarg, &o.busy_timeout_ms); break;
		case 4: dur_opt("--http-timeout", optarg, &o.http_timeout_ms); break;
		case 5: dur_opt("--resync-interval", optarg, &o.resync_ms); break;
		case 6: o.allow_network_fs = 1; break;
		case 7: o.presets_dir = xstrdup(optarg); break;
		case 8: dur_opt("--node-grace", optarg, &o.node_grace_ms); break;
		case 9: dur_opt("--node-eviction", optarg, &o.node_eviction_ms); break;
		case 10: dur_opt("--node-monitor-period", optarg, &o.node_period_ms); break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_print_version("llmd");
			return 0;
		default:
			if (api_tls_option(&tlso, c, optarg))
				break;
			fprintf(stderr, "Try 'llmd --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		cli_usage_error("llmd", "unexpected argument \"%s\"", argv[optind]);
	if (o.config)
		load_config(&o);
	if (!o.listen)
		o.listen = xstrdup("127.0.0.1:7480");
	if (!o.data_dir)
		o.data_dir = xstrdup("/var/lib/llmd");
	if (o.token_file)
		token = read_token(o.token_file);

	signal(SIGPIPE, SIG_IGN);
	/*
	 * Replies of LISTs (100s of KiB) get their own mappings, returned when
	 * sent, instead of fragmenting the heap: RSS falls back after a burst.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	so.allow_network_fs = o.allow_network_fs;
	so.busy_timeout_ms = (int)o.busy_timeout_ms;
	so.event_keep = o.event_history;
	if (store_open(&store, o.data_dir, &so, &e) < 0)
		fatalx("%s", err_str(&e, ebuf, sizeof(ebuf)));
	if (o.presets_dir == NULL) {
		char p[4096];

		exepath_find_data("presets", p, sizeof(p));
		o.presets_dir = xstrdup(p);
	}
	seed_presets(store, o.presets_dir);
	loop_base = event_base_new();
	if (loop_base == NULL)
		fatalx("event_base_new failed");
	if ((wp = workpool_new(loop_base, 1, 0)) == NULL)
		fatal("workpool_new");
	hub = watch_hub_new(loop_base, store);
	ao.listen = o.listen;
	ao.token = token;
	ao.max_body = o.max_body;
	ao.write_timeout_s = o.http_timeout_ms ? (int)((o.http_timeout_ms + 999) / 1000) : 0;
	ao.workpool = wp;
	if (api_tls_setup(&tlso, o.listen, o.data_dir, &tls_ctx, &cluster_ca, &e) < 0)
		fatalx("%s", err_str(&e, ebuf, sizeof(ebuf)));
	ao.tls_ctx = tls_ctx;
	api_certs_set_ca(cluster_ca);
	if (api_start(&api, loop_base, store, hub, &ao, &e) < 0)
		fatalx("%s", err_str(&e, ebuf, sizeof(ebuf)));
	rec = reconciler_new(loop_base, store, hub, wp, o.resync_ms ? o.resync_ms : 30000);
	{
		struct nodes_opts no;

		nodes_opts_from_env(&no);
		no.metrics = api_metrics_registry();
		no.wp = wp;
		if (o.node_grace_ms > 0)
			no.grace_ms = o.node_grace_ms;
		if (o.node_eviction_ms > 0)
			no.eviction_ms = o.node_eviction_ms;
		if (o.node_period_ms > 0)
			no.period_ms = o.node_period_ms;
		nodes_start(loop_base, store, hub, &no);
	}
	write_addr_file(o.data_dir, api_bound_address(api));
	api_on_shutdown(api, end_watches, hub);
	/* Heartbeats keep watch streams inside the idle timeout. */
	watch_hub_set_heartbeat(hub, (o.http_timeout_ms ? o.http_timeout_ms : 60000) / 3);
	sigterm = evsignal_new(loop_base, SIGTERM, on_signal, api);
	sigint = evsignal_new(loop_base, SIGINT, on_signal, api);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	api_set_ready(api, 1);
	notify_ready("serving the API");   /* Type=notify units */
	wd = watchdog_start(loop_base);
	log_info("llmd %s serving the API on %s, data in %s (store schema %d, "
	    "resourceVersion %lld)", PACKAGE_VERSION, api_bound_address(api),
	    o.data_dir, store_schema_version(store), (long long)store_current_rv(store));
	event_base_dispatch(loop_base);

	/* Drain the writes first: their done callbacks reply and pump the hub. */
	workpool_free(wp);
	api_stop(api);
	reconciler_free(rec);
	nodes_stop();
	watch_hub_free(hub);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(loop_base);
	store_close(store);
	watchdog_stop(wd);
	SSL_CTX_free(tls_ctx);
	ca_free(cluster_ca);
	api_tls_opts_release(&tlso);
	free(token);
	free(o.listen);
	free(o.data_dir);
	free(o.token_file);
	free(o.config);
	free(o.presets_dir);
	return 0;
}
