# rdma/local.mk - librdmakv: KV-cache block transfer between engines (TCP
# always; verbs when libibverbs is found).
noinst_LIBRARIES += rdma/librdmakv.a
rdma_librdmakv_a_SOURCES = rdma/kvxfer.c rdma/kvxfer.h rdma/verbs.h rdma/verbs-plan.c
if HAVE_IBVERBS
rdma_librdmakv_a_SOURCES += rdma/verbs.c
else
rdma_librdmakv_a_SOURCES += rdma/verbs-none.c
endif
rdma_librdmakv_a_CFLAGS = $(AM_CFLAGS) $(IBVERBS_CFLAGS)
RDMA_LIBS = rdma/librdmakv.a $(IBVERBS_LIBS)

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-kvxfer
TESTS += tests/unit/test-kvxfer
tests_unit_test_kvxfer_SOURCES = tests/unit/test-kvxfer.c
tests_unit_test_kvxfer_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_kvxfer_LDADD = $(RDMA_LIBS) $(LLMD_LIBS) $(CRITERION_LIBS)

check_PROGRAMS += tests/unit/test-kvxfer-verbs
TESTS += tests/unit/test-kvxfer-verbs
tests_unit_test_kvxfer_verbs_SOURCES = tests/unit/test-kvxfer-verbs.c
tests_unit_test_kvxfer_verbs_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_kvxfer_verbs_LDADD = $(RDMA_LIBS) $(LLMD_LIBS) $(CRITERION_LIBS)
endif

noinst_PROGRAMS += bench/kvxfer-bench
bench_kvxfer_bench_SOURCES = bench/kvxfer-bench.c
bench_kvxfer_bench_LDADD = $(RDMA_LIBS) $(LLMD_LIBS)
