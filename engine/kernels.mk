# engine/kernels.mk - engine kernels sources and tests (appends to engine_libengine_a_SOURCES).
engine_libengine_a_SOURCES += engine/tensor.c engine/threadpool.c \
	engine/kernels-impl.h engine/kernels-matmul.c engine/kernels-scalar.c \
	engine/kernels-simd.h engine/kernels-exp.h engine/kernels-avx2.c engine/kernels-avx512.c \
	engine/sampler.c engine/sampler.h

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-engine-kernels
TESTS += tests/unit/test-engine-kernels
tests_unit_test_engine_kernels_SOURCES = tests/unit/test-kernels.c tests/unit/test-sampler.c
tests_unit_test_engine_kernels_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_engine_kernels_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
check_PROGRAMS += tests/unit/test-engine-attention
TESTS += tests/unit/test-engine-attention
tests_unit_test_engine_attention_SOURCES = tests/unit/test-attention.c
tests_unit_test_engine_attention_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_engine_attention_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif
