# cli/local.mk - llmd-admin, the kubectl-like client of the llmd API.
bin_PROGRAMS += llmd-admin
llmd_admin_SOURCES = cli/main.c cli/admin.h cli/cmd.c \
	cli/client.c cli/util.c cli/print.c \
	cli/cmd-apply.c cli/cmd-get.c cli/cmd-describe.c cli/cmd-delete.c \
	cli/cmd-wait.c cli/cmd-patch.c cli/cmd-create.c cli/cmd-node.c \
	cli/cmd-token.c cli/cmd-logs.c cli/cmd-apitoken.c \
	cli/cmd-node-ssh.c cli/ssh.c cli/ssh.h cli/cmd-slurm.c cli/cmd-top.c \
	daemon/api-resources.c daemon/api.h
llmd_admin_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(SSH2_CFLAGS)
llmd_admin_LDADD = $(LLMD_LIBS) $(CURL_LIBS) $(SSH2_LIBS)

TESTS += tests/integration/daemon-cli.sh
EXTRA_DIST += tests/integration/daemon-cli.sh
TESTS += tests/integration/node-ssh.sh
EXTRA_DIST += tests/integration/node-ssh.sh
TESTS += tests/integration/slurm.sh
EXTRA_DIST += tests/integration/slurm.sh
