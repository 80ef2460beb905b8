# daemon/logic.mk - libdaemon.a: the pure LLMInferenceService logic
# (validation, presets merge, templates, naming, derived children, placement,
# status conditions). Included at the end of daemon/local.mk; the daemon's own
# files append to daemon_libdaemon_a_SOURCES with += after that include.
noinst_LIBRARIES += daemon/libdaemon.a
daemon_libdaemon_a_SOURCES = \
	daemon/reconcile.h \
	daemon/reconcile.c \
	daemon/validate.c daemon/validate.h \
	daemon/merge.c daemon/merge.h \
	daemon/template.c daemon/template.h \
	daemon/naming.c daemon/naming.h \
	daemon/derive.c daemon/derive.h \
	daemon/placement.c daemon/placement.h \
	daemon/conditions.c daemon/conditions.h \
	daemon/surge.c daemon/surge-rules.c daemon/surge.h


if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-daemon-logic
TESTS += tests/unit/test-daemon-logic
tests_unit_test_daemon_logic_SOURCES = \
	tests/unit/daemon-fixtures.c tests/unit/daemon-fixtures.h \
	tests/unit/test-daemon-validate.c \
	tests/unit/test-daemon-merge.c \
	tests/unit/test-daemon-template.c \
	tests/unit/test-daemon-naming.c \
	tests/unit/test-daemon-derive.c \
	tests/unit/test-daemon-placement.c \
	tests/unit/test-daemon-conditions.c \
	tests/unit/test-daemon-surge.c
tests_unit_test_daemon_logic_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_daemon_logic_LDADD = daemon/libdaemon.a $(LLMD_LIBS) $(CRITERION_LIBS)
endif
