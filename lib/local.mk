# lib/local.mk - libllmd.a: internal code shared by every program.
noinst_LIBRARIES += lib/libllmd.a
lib_libllmd_a_SOURCES = \
	lib/log.c lib/log.h \
	lib/err.c lib/err.h \
	lib/buf.c lib/buf.h \
	lib/util.c lib/util.h \
	lib/exepath.c lib/exepath.h \
	lib/cli.c lib/cli.h \
	lib/metrics.c lib/metrics.h \
	lib/notify.c lib/notify.h \
	lib/secret.c lib/secret.h \
	lib/json.c lib/json.h \
	lib/yaml.c lib/yaml.h \
	lib/workpool.c lib/workpool.h \
	lib/http_server.c lib/http_server.h \
	lib/http_client.c lib/http_client.h \
	lib/tls.c lib/tls.h \
	lib/ca.c lib/ca.h \
	lib/watchdog.c lib/watchdog.h

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-lib
TESTS += tests/unit/test-lib
tests_unit_test_lib_SOURCES = \
	tests/unit/test-log.c \
	tests/unit/test-err.c \
	tests/unit/test-buf.c \
	tests/unit/test-exepath.c \
	tests/unit/test-metrics.c \
	tests/unit/test-notify.c \
	tests/unit/test-json.c \
	tests/unit/test-yaml.c \
	tests/unit/test-workpool.c \
	tests/unit/test-http.c
tests_unit_test_lib_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_lib_LDADD = $(LLMD_LIBS) $(CRITERION_LIBS)

check_PROGRAMS += tests/unit/test-tls
TESTS += tests/unit/test-tls
tests_unit_test_tls_SOURCES = tests/unit/test-tls.c tests/unit/test-watchdog.c
tests_unit_test_tls_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_tls_LDADD = $(LLMD_LIBS) $(CRITERION_LIBS)
endif
