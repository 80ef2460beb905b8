/*
 * cli/main.c - llmd-admin entry point: the kubectl-like command-line client
 * of the llmd API. Global options (--server, --token, -n), then a command
 * from cli/cmd.c's table; settings not given as flags come from the
 * environment, then the config file (cli/admin-config.c). Exit status: 0
 * success, 1 failure, 2 usage (a bad config file included).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <curl/curl.h>

#include "cli/admin-config.h"
#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/util.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmd-admin [OPTIONS] COMMAND [ARGS...]\n\nthe kubectl-like command-line client of the llmd API.\n\n"
	    "Options:\n"
	    "  -s, --server URL     llmd API (default $LLMD_SERVER or http://127.0.0.1:7480)\n"
	    "      --token TOKEN    bearer token (default $LLMD_TOKEN)\n"
	    "      --token-file F   read the bearer token from the first line of F\n"
	    "  -n, --namespace NS   default namespace of the command (default \"default\")\n"
	    "      --certificate-authority FILE\n"
	    "                       CA verifying an https:// server (default $LLMD_CA;\n"
	    "                       llmd's is DATA_DIR/pki/ca.crt)\n"
	    "      --config FILE    config file (default $LLMD_CONFIG or\n"
	    "                       ~/.config/llmd/config.yaml): server, token or tokenFile,\n"
	    "                       certificateAuthority or certificateAuthorityData;\n"
	    "                       flags win over the environment, which wins over it\n"
	    "  -h, --help           show this help and exit\n"
	    "  -V, --version        show the version and exit\n");
	cmd_print_usage(f);
	fprintf(f, "Kinds: llmisvc, llmisvcconfig, pods, nodes, events, deployments, "
	    "leaderworkersets,\n  services, httproutes, inferencepools, inferencemodels, "
	    "gateways, ingresses, secrets\n"
	    "Environment: LLMD_SERVER, LLMD_TOKEN, LLMD_CA, LLMD_CONFIG,\n"
	    "  LLMD_LOG_LEVEL=error|warn|info|debug\n");
}

static char *
read_token_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];

	if (f == NULL || fgets(line, sizeof(line), f) == NULL)
		cli_usage_error("llmd-admin", "token file %s: cannot read", path);
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	return xstrdup(line);
}

/* The inline CA of the config file, written for libcurl; removed at exit. */
static char *ca_temp;

static void
remove_ca_temp(void)
{
	if (ca_temp)
		unlink(ca_temp);
	free(ca_temp);
	ca_temp = NULL;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "certificate-authority", required_argument, NULL, 'C' },
		{ "config", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct admin a = { 0 };
	struct admin_source flags = { 0 }, env = { 0 }, use;
	struct admin_config cfg;
	struct llmd_err e = LLMD_ERR_INIT;
	const struct cmd_entry *ce;
	const char *config_flag = NULL, *config_path;
	char *cause = NULL, *token = NULL, *server, pathbuf[4096], ebuf[1024];
	size_t n;
	int c, rc, explicit;

	log_init("llmd-admin", LOG_LVL_WARN);
	env.server = getenv("LLMD_SERVER");
	env.token = getenv("LLMD_TOKEN");
	env.ca_file = getenv("LLMD_CA");
	while ((c = getopt_long(argc, argv, "+s:n:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's': flags.server = optarg; break;
		case 't': flags.token = optarg; flags.token_file = NULL; break;
		case 'T': flags.token_file = optarg; flags.token = NULL; break;
		case 'n': a.ns = optarg; break;
		case 'C': flags.ca_file = optarg; break;
		case 'F': config_flag = optarg; break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_print_version("llmd-admin");
			return 0;
		default:
			fprintf(stderr, "Try 'llmd-admin --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((ce = cmd_find(argv[optind], &cause)) == NULL) {
		fprintf(stderr, "llmd-admin: %s\nTry 'llmd-admin --help' for more "
		    "information.\n", cause);
		free(cause);
		return EXIT_USAGE;
	}
	config_path = admin_config_path(config_flag, pathbuf, sizeof(pathbuf), &explicit);
	if (admin_config_load(config_path, explicit, &cfg, &e) < 0) {
		fprintf(stderr, "llmd-admin: %s\n", err_str(&e, ebuf, sizeof(ebuf)));
		return EXIT_USAGE;
	}
	a.config = &cfg;
	admin_config_merge(&flags, &env, &cfg, &use);
	a.server = use.server;
	a.token = use.token;
	if (use.token_file)
		a.token = token = read_token_file(use.token_file);
	a.ca_file = use.ca_file;
	if (use.ca_data) {
		if (admin_config_ca_tempfile(use.ca_data, &ca_temp, &e) < 0) {
			fprintf(stderr, "llmd-admin: certificateAuthorityData: %s\n",
			    err_str(&e, ebuf, sizeof(ebuf)));
			admin_config_release(&cfg);
			return 1;
		}
		atexit(remove_ca_temp);
		a.ca_file = ca_temp;
	}
	if (a.server == NULL || !*a.server)
		a.server = "http://127.0.0.1:7480";
	/* "host:port" alone means http://host:port; no trailing slash. */
	n = strlen(a.server);
	server = xmalloc(n + 8);
	if (strstr(a.server, "://") == NULL)
		sprintf(server, "http://%s", a.server);
	else
		strcpy(server, a.server);
	n = strlen(server);
	while (n > 0 && server[n - 1] == '/')
		server[--n] = '\0';
	a.server = server;
	if (a.token && !*a.token)
		a.token = NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = ce->exec(&a, argc - optind, argv + optind);
	curl_global_cleanup();
	free(server);
	free(token);
	admin_config_release(&cfg);
	return rc;
}
