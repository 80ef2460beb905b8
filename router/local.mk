# router/local.mk - llmd-router: gateway, proxy and in-process endpoint picker.
noinst_LIBRARIES += router/librouter.a
router_librouter_a_SOURCES = \
	router/router-config.c router/router-config.h \
	router/source-static.c \
	router/source-daemon.c router/source-daemon.h \
	router/prefix.c router/prefix.h \
	router/pool.c router/pool.h \
	router/picker.c router/picker.h \
	router/scorer-load.c \
	router/scorer-prefix.c \
	router/scorer-lora.c \
	router/scorer-session.c \
	router/saturation.c \
	router/proxy.c router/proxy.h \
	router/gateway.c router/gateway.h \
	router/tls.c router/tls.h

bin_PROGRAMS += llmd-router
llmd_router_SOURCES = router/main.c router/sidecar.c router/sidecar.h
llmd_router_LDADD = router/librouter.a $(LLMD_LIBS)

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-router
TESTS += tests/unit/test-router
tests_unit_test_router_SOURCES = \
	tests/unit/test-router-prefix.c \
	tests/unit/test-router-picker.c \
	tests/unit/test-router-config.c \
	tests/unit/test-router-daemon.c
tests_unit_test_router_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_router_LDADD = router/librouter.a $(LLMD_LIBS) $(CRITERION_LIBS)
endif


TESTS += tests/integration/router-routing.sh tests/integration/router-resilience.sh \
	tests/integration/router-daemon.sh tests/integration/router-backpressure.sh \
	tests/integration/router-sidecar.sh
