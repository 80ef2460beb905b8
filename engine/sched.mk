# engine/sched.mk - serving-mode KV block manager (prefix caching) and the
# continuous-batching scheduler (appends to engine_libengine_a_SOURCES).
engine_libengine_a_SOURCES += engine/blockmgr.c engine/blockmgr.h \
	engine/scheduler.c engine/scheduler.h

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-sched
TESTS += tests/unit/test-sched
tests_unit_test_sched_SOURCES = tests/unit/test-blockmgr.c tests/unit/test-scheduler.c
tests_unit_test_sched_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_sched_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif
