# daemon/local.mk - llmd: store, REST API, watch, reconciler loop.
bin_PROGRAMS += llmd
llmd_SOURCES = daemon/main.c \
	daemon/store.c daemon/store.h \
	daemon/api.c daemon/api.h daemon/api-internal.h \
	daemon/api-verbs.c daemon/api-reply.c daemon/api-body.c \
	daemon/api-resources.c daemon/api-selector.c daemon/api-discovery.c \
	daemon/watch.c daemon/watch.h \
	daemon/reconciler.c daemon/reconciler.h \
	daemon/nodes.c daemon/nodes.h daemon/api-agent.c \
	daemon/api-tls.c daemon/api-tls.h daemon/api-certs.c daemon/api-certs.h \
	daemon/auth.c daemon/auth.h daemon/api-tokens.c daemon/api-tokens.h \
	daemon/api-drain.c daemon/api-drain.h daemon/api-metrics.c daemon/api-metrics.h \
	daemon/api-podsecrets.c daemon/api-podsecrets.h
llmd_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
llmd_LDADD = daemon/libdaemon.a $(LLMD_LIBS) $(SQLITE_LIBS)

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-store
TESTS += tests/unit/test-store
tests_unit_test_store_SOURCES = tests/unit/test-store.c daemon/store.c daemon/store.h
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_store_LDADD = $(LLMD_LIBS) $(SQLITE_LIBS) $(CRITERION_LIBS)

check_PROGRAMS += tests/unit/test-api
TESTS += tests/unit/test-api
tests_unit_test_api_SOURCES = tests/unit/test-api.c daemon/api-selector.c \
	daemon/api-body.c daemon/api-resources.c daemon/api.h
tests_unit_test_api_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_api_LDADD = $(LLMD_LIBS) $(CRITERION_LIBS)
endif

TESTS += tests/integration/daemon-api.sh
EXTRA_DIST += tests/integration/daemon-api.sh
TESTS += tests/integration/daemon-tls.sh
EXTRA_DIST += tests/integration/daemon-tls.sh
TESTS += tests/integration/daemon-group-commit.sh
EXTRA_DIST += tests/integration/daemon-group-commit.sh
TESTS += tests/integration/daemon-auth.sh
EXTRA_DIST += tests/integration/daemon-auth.sh
TESTS += tests/integration/daemon-observe.sh
EXTRA_DIST += tests/integration/daemon-observe.sh
include daemon/logic.mk
