# cli/local.mk - llmd-admin, the kubectl-like client of the llmd API.
bin_PROGRAMS += llmd-admin
llmd_admin_SOURCES = cli/main.c cli/admin.h cli/cmd.c \
	cli/client.c cli/util.c cli/print.c \
	cli/cmd-apply.c cli/cmd-get.c cli/cmd-describe.c cli/cmd-delete.c \
	cli/cmd-wait.c cli/cmd-patch.c cli/cmd-create.c cli/cmd-node.c \
	cli/cmd-token.c cli/cmd-logs.c cli/cmd-apitoken.c \
	cli/cmd-node-ssh.c cli/ssh.c cli/ssh.h cli/cmd-slurm.c cli/cmd-top.c \
	cli/admin-config.c cli/admin-config.h cli/cmd-config.c \
	daemon/api-resources.c daemon/api.h daemon/surge-rules.c daemon/surge.h
llmd_admin_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(SSH2_CFLAGS)
llmd_admin_LDADD = $(LLMD_LIBS) $(CURL_LIBS) $(SSH2_LIBS)

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-cli-config
TESTS += tests/unit/test-cli-config
tests_unit_test_cli_config_SOURCES = tests/unit/test-cli-config.c \
	cli/admin-config.c cli/admin-config.h
tests_unit_test_cli_config_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_cli_config_LDADD = $(LLMD_LIBS) $(CRITERION_LIBS)
endif

TESTS += tests/integration/cli-config.sh
EXTRA_DIST += tests/integration/cli-config.sh
TESTS += tests/integration/daemon-cli.sh
EXTRA_DIST += tests/integration/daemon-cli.sh
TESTS += tests/integration/node-ssh.sh
EXTRA_DIST += tests/integration/node-ssh.sh
TESTS += tests/integration/slurm.sh
EXTRA_DIST += tests/integration/slurm.sh
