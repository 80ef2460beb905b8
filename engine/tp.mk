# engine/tp.mk - tensor parallelism (appends to engine_libengine_a_SOURCES):
# the shard plan, the backend that fans ops out over N ranks, and on CUDA
# builds engine/cuda-tp.cu (NCCL communicator; built by cuda.mk's .cu rule).
# Included after engine/cuda.mk.
engine_libengine_a_SOURCES += engine/tp-plan.c engine/tp-plan.h \
	engine/backend-tp.c engine/backend-tp.h
EXTRA_DIST += engine/cuda-tp.cu

if HAVE_CUDA
ENGINE_TP_CUDA_OBJ = engine/cuda-tp.o
engine_libengine_a_LIBADD += $(ENGINE_TP_CUDA_OBJ)
EXTRA_engine_libengine_a_DEPENDENCIES += $(ENGINE_TP_CUDA_OBJ)
CLEANFILES += $(ENGINE_TP_CUDA_OBJ)
$(ENGINE_TP_CUDA_OBJ): $(top_srcdir)/engine/cuda-common.cuh $(top_srcdir)/engine/backend-tp.h \
	$(top_srcdir)/engine/tp-plan.h $(top_srcdir)/engine/forward.h config.h
engine/backend-cuda.o: $(top_srcdir)/engine/backend-tp.h
endif

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-tp-plan
TESTS += tests/unit/test-tp-plan
tests_unit_test_tp_plan_SOURCES = tests/unit/test-tp-plan.c tests/unit/test-tp-forward.c \
	$(ENGINE_FIXTURE)
tests_unit_test_tp_plan_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_tp_plan_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif

# the CUDA TP backend against the one-GPU backend; plain C, built in every
# configuration, exits 77 (SKIP) without CUDA+NCCL or 2 GPUs
check_PROGRAMS += tests/unit/test-cuda-tp
TESTS += tests/unit/test-cuda-tp
tests_unit_test_cuda_tp_SOURCES = tests/unit/test-cuda-tp.c $(ENGINE_FIXTURE)
tests_unit_test_cuda_tp_CFLAGS = $(AM_CFLAGS)
tests_unit_test_cuda_tp_LDADD = $(ENGINE_LIBS)
