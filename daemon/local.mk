# daemon/local.mk - llmd: store, REST API, watch, reconciler loop.
bin_PROGRAMS += llmd
llmd_SOURCES = daemon/main.c \
	daemon/store.c daemon/store.h
llmd_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
llmd_LDADD = $(LLMD_LIBS) $(SQLITE_LIBS)

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-store
TESTS += tests/unit/test-store
tests_unit_test_store_SOURCES = tests/unit/test-store.c daemon/store.c daemon/store.h
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_store_LDADD = $(LLMD_LIBS) $(SQLITE_LIBS) $(CRITERION_LIBS)
endif
include daemon/logic.mk
