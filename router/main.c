/*
 * router/main.c - llmd-router entry point: flags, the configuration source
 * (--config FILE, reloaded on SIGHUP), the gateway listener, readiness
 * notification and graceful shutdown.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/cli.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "lib/util.h"
#include "router/router-config.h"
#include "router/gateway.h"
#include "router/sidecar.h"
#include "router/source-daemon.h"
#include "router/tls.h"

struct main_ctx {
	struct gateway *gw;
	const char *config_path;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmd-router (--config FILE | --server URL --name GATEWAY) [OPTIONS]\n"
	    "       llmd-router sidecar [OPTIONS]   (the decode-side P/D coordinator; see --help there)\n\n"
	    "The gateway and endpoint picker in front of llmd-engine pools.\n\n"
	    "Options:\n"
	    "  --config FILE            pools and routes (YAML/JSON; reloaded on SIGHUP)\n"
	    "  --listen HOST:PORT       listen address (default 0.0.0.0:8080; port 0 picks one\n"
	    "                           and prints it on stdout)\n"
	    "  --max-body BYTES         request body limit (default 4MiB)\n"
	    "  --max-headers BYTES      request header limit (default 64KiB)\n"
	    "  --client-timeout DUR     client connection idle timeout (default 60s)\n"
	    "  --scrape-interval DUR    engine /metrics polling period (default 50ms)\n"
	    "  --shutdown-grace DUR     in-flight requests get this long on SIGTERM (30s)\n"
	    "  --max-conns N            connections per endpoint (default 1024)\n"
	    "  --tls-cert FILE, --tls-key FILE\n"
	    "                           serve HTTPS with this PEM certificate chain and key\n"
	    "  --no-access-log          do not log one line per request\n"
	    "  --server URL             the llmd daemon as the source (instead of --config)\n"
	    "  --token-file FILE        bearer token for the daemon's API\n"
	    "  --name [NAMESPACE/]NAME  this router's Gateway object (namespace llmd-system)\n"
	    "  -h, --help               show this help and exit\n"
	    "  -V, --version            show the version and exit\n"
	    "Environment: LLMD_LOG_LEVEL=error|warn|info|debug\n");
}

static void
on_hup(evutil_socket_t fd, short what, void *arg)
{
	struct main_ctx *m = arg;
	struct router_config cfg;
	struct llmd_err e = LLMD_ERR_INIT;
	char msg[800];

	(void)fd;
	(void)what;
	if (router_config_load(m->config_path, &cfg, &e) < 0) {
		log_warnx("reload: %s (keeping the current config)", err_str(&e, msg, sizeof(msg)));
		return;
	}
	gateway_apply(m->gw, &cfg);
	log_info("reloaded %s", m->config_path);
}

/* The first line of a token file, without the newline; NULL (logged) on error. */
static char *
read_token(const char *path)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		log_warn("%s", path);
		return NULL;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0) {
		log_warnx("%s: empty token file", path);
		return NULL;
	}
	return xstrdup(line);
}

static int64_t
dur_arg(const char *flag, const char *v)
{
	int64_t ms;

	if (parse_duration_ms(v, &ms) < 0)
		cli_usage_error("llmd-router", "%s: bad duration '%s'", flag, v);
	return ms;
}

static size_t
size_arg(const char *flag, const char *v)
{
	uint64_t n;

	if (parse_size(v, &n) < 0 || n == 0)
		cli_usage_error("llmd-router", "%s: bad size '%s'", flag, v);
	return (size_t)n;
}

int
main(int argc, char **argv)
{
	enum { O_CONFIG = 256, O_LISTEN, O_MAXBODY, O_MAXHDR, O_CTMO, O_SCRAPE, O_GRACE,
	    O_NOLOG, O_SERVER, O_TOKEN, O_NAME, O_MAXCONNS, O_CERT, O_KEY };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, O_CONFIG },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "max-body", required_argument, NULL, O_MAXBODY },
		{ "max-headers", required_argument, NULL, O_MAXHDR },
		{ "client-timeout", required_argument, NULL, O_CTMO },
		{ "scrape-interval", required_argument, NULL, O_SCRAPE },
		{ "shutdown-grace", required_argument, NULL, O_GRACE },
		{ "max-conns", required_argument, NULL, O_MAXCONNS },
		{ "no-access-log", no_argument, NULL, O_NOLOG },
		{ "server", required_argument, NULL, O_SERVER },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "name", required_argument, NULL, O_NAME },
		{ "tls-cert", required_argument, NULL, O_CERT },
		{ "tls-key", required_argument, NULL, O_KEY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct gateway_opts go = { .access_log = 1 };
	const char *listen = "0.0.0.0:8080", *server = NULL, *token_file = NULL;
	const char *gw_name = "kserve-ingress-gateway", *tls_cert = NULL, *tls_key = NULL;
	struct router_tls *tls = NULL;
	char *token = NULL;
	struct daemon_source *src = NULL;
	struct main_ctx m = { 0 };
	struct router_config cfg;
	struct llmd_err e = LLMD_ERR_INIT;
	struct event_base *base;
	struct event *hup;
	char msg[800], status[300];
	long n;
	int c, port;

	log_init("llmd-router", LOG_LVL_INFO);
	if (argc > 1 && strcmp(argv[1], "sidecar") == 0)
		return sidecar_main(argc - 1, argv + 1);   /* the decode-side P/D coordinator */
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG: m.config_path = optarg; break;
		case O_LISTEN: listen = optarg; break;
		case O_MAXBODY: go.max_body = size_arg("--max-body", optarg); break;
		case O_MAXHDR: go.max_headers = size_arg("--max-headers", optarg); break;
		case O_CTMO: go.client_timeout_ms = dur_arg("--client-timeout", optarg); break;
		case O_SCRAPE: go.scrape_interval_ms = dur_arg("--scrape-interval", optarg); break;
		case O_GRACE: go.shutdown_grace_ms = dur_arg("--shutdown-grace", optarg); break;
		case O_NOLOG: go.access_log = 0; break;
		case O_MAXCONNS:
			if (parse_long(optarg, 1, 65536, &n) < 0)
				cli_usage_error("llmd-router", "--max-conns: bad number '%s'", optarg);
			go.max_conns_per_endpoint = (int)n;
			break;
		case O_SERVER: server = optarg; break;
		case O_TOKEN: token_file = optarg; break;
		case O_NAME: gw_name = optarg; break;
		case O_CERT: tls_cert = optarg; break;
		case O_KEY: tls_key = optarg; break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_print_version("llmd-router");
			return 0;
		default:
			fprintf(stderr, "Try 'llmd-router --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		cli_usage_error("llmd-router", "unexpected argument '%s'", argv[optind]);
	if ((server == NULL) == (m.config_path == NULL))
		cli_usage_error("llmd-router", "one of --config FILE and --server URL is required");
	if (token_file != NULL && (token = read_token(token_file)) == NULL)
		return 1;
	memset(&cfg, 0, sizeof(cfg));
	if (m.config_path != NULL && router_config_load(m.config_path, &cfg, &e) < 0) {
		fprintf(stderr, "llmd-router: %s\n", err_str(&e, msg, sizeof(msg)));
		return 1;
	}
	if ((tls_cert == NULL) != (tls_key == NULL))
		cli_usage_error("llmd-router", "--tls-cert and --tls-key go together");
	if (tls_cert != NULL) {
		tls = router_tls_new(tls_cert, tls_key, &e);
		if (tls == NULL) {
			fprintf(stderr, "llmd-router: %s\n", err_str(&e, msg, sizeof(msg)));
			router_config_release(&cfg);
			return 1;
		}
		go.make_bev = router_tls_bev;
		go.make_bev_arg = tls;
	}
	signal(SIGPIPE, SIG_IGN);
	{
		/*
		 * epoll changelist: an fd's event changes within one loop turn are
		 * coalesced into one epoll_ctl (libevent otherwise adds and removes
		 * EV_WRITE around every response).
		 */
		struct event_config *ec = event_config_new();
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (base == NULL)
		fatalx("event_base_new failed");
	m.gw = gateway_new(base, &go, &e);
	if (m.gw == NULL)
		fatalx("%s", err_str(&e, msg, sizeof(msg)));
	gateway_apply(m.gw, &cfg);
	port = gateway_listen(m.gw, listen, &e);
	if (port < 0)
		fatalx("listen %s: %s", listen, err_str(&e, msg, sizeof(msg)));
	http_server_handle_signals(gateway_server(m.gw));
	hup = evsignal_new(base, SIGHUP, on_hup, &m);
	if (m.config_path != NULL)
		event_add(hup, NULL);
	if (server != NULL) {
		char ns[256] = "llmd-system", name[256], host[256], addr[300];
		const char *slash = strchr(gw_name, '/');
		int lp;

		if (slash != NULL)
			snprintf(ns, sizeof(ns), "%.*s", (int)(slash - gw_name), gw_name);
		snprintf(name, sizeof(name), "%s", slash != NULL ? slash + 1 : gw_name);
		if (http_parse_hostport(listen, host, sizeof(host), &lp) < 0 || host[0] == '\0' ||
		    strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
			if (gethostname(host, sizeof(host)) < 0)
				snprintf(host, sizeof(host), "localhost");
		}
		snprintf(addr, sizeof(addr), "%s", host);
		src = daemon_source_new(base, m.gw, server, token, ns, name, addr, port, tls != NULL,
		    &e);
		if (src == NULL)
			fatalx("%s", err_str(&e, msg, sizeof(msg)));
	}
	printf("%d\n", port);
	fflush(stdout);
	snprintf(status, sizeof(status), "listening on port %d", port);
	if (server == NULL)
		notify_ready(status);   /* the daemon source notifies after its first sync */
	event_base_dispatch(base);
	notify_stopping();
	event_free(hup);
	daemon_source_free(src);
	gateway_free(m.gw);
	free(token);
	router_tls_free(tls);
	event_base_free(base);
	return 0;
}
