# agent/local.mk - llmd-agent, the per-GPU-host agent.
bin_PROGRAMS += llmd-agent
llmd_agent_SOURCES = agent/main.c agent/agent.h agent/gpu.c agent/translate.c \
	agent/storage.c agent/secrets.c agent/pods.c agent/control.c agent/logs.c \
	agent/slurm.c agent/slurm.h agent/slurm-agent.c agent/slurm-agent.h \
	agent/tls-join.c agent/tls-join.h agent/hostaddr.c agent/daemon-call.c
llmd_agent_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
llmd_agent_LDADD = $(LLMD_LIBS) $(CURL_LIBS) -ldl

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-agent
TESTS += tests/unit/test-agent
tests_unit_test_agent_SOURCES = tests/unit/test-agent-translate.c \
	tests/unit/test-agent-nodes.c tests/unit/test-agent-secrets.c \
	agent/translate.c agent/gpu.c agent/secrets.c agent/daemon-call.c agent/agent.h \
	daemon/nodes.c daemon/nodes.h daemon/store.c daemon/store.h
tests_unit_test_agent_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_agent_LDADD = $(LLMD_LIBS) $(SQLITE_LIBS) $(CRITERION_LIBS) -ldl

check_PROGRAMS += tests/unit/test-slurm
TESTS += tests/unit/test-slurm
tests_unit_test_slurm_SOURCES = tests/unit/test-slurm.c agent/slurm.c agent/slurm.h
tests_unit_test_slurm_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_slurm_LDADD = $(LLMD_LIBS) $(CRITERION_LIBS)
endif


TESTS += tests/integration/agent-stack.sh
EXTRA_DIST += tests/integration/agent-stack.sh
TESTS += tests/integration/agent-storage.sh
EXTRA_DIST += tests/integration/agent-storage.sh
TESTS += tests/integration/agent-secrets.sh
EXTRA_DIST += tests/integration/agent-secrets.sh
