# engine/cuda.mk - the CUDA backend (engine/backend-cuda.cu and its kernels),
# built only with --with-cuda (HAVE_CUDA). automake does not know .cu, so the
# objects come from a suffix rule and join engine/libengine.a through LIBADD;
# everything linking ENGINE_LIBS then also links cudart and cuBLASLt.
# The test program is plain C and built in every configuration: without CUDA
# or without a GPU it exits 77 (SKIP) and says why.
ENGINE_CUDA_SRC = engine/backend-cuda.cu engine/cuda-kernels.cu engine/cuda-attention.cu \
	engine/cuda-gemm.cu engine/cuda-sample.cu
ENGINE_CUDA_HDR = engine/cuda-common.cuh
EXTRA_DIST += $(ENGINE_CUDA_SRC) $(ENGINE_CUDA_HDR) docs/cuda.md tests/integration/engine-cuda.sh \
	tests/ref/cuda_attention_sim.py
SUFFIXES = .cu

if HAVE_CUDA
ENGINE_CUDA_OBJ = $(ENGINE_CUDA_SRC:.cu=.o)
engine_libengine_a_LIBADD = $(ENGINE_CUDA_OBJ)
EXTRA_engine_libengine_a_DEPENDENCIES = $(ENGINE_CUDA_OBJ)
ENGINE_LIBS += $(CUDA_LIBS) -lstdc++
CLEANFILES += $(ENGINE_CUDA_OBJ)

$(ENGINE_CUDA_OBJ): $(top_srcdir)/engine/cuda-common.cuh $(top_srcdir)/engine/forward.h \
	$(top_srcdir)/engine/kvcache.h $(top_srcdir)/engine/model.h config.h

.cu.o:
	@$(MKDIR_P) $(@D)
	$(AM_V_GEN)$(NVCC) $(NVCC_FLAGS) -Xcompiler -Wall,-Wextra,-Wno-unused-parameter \
	    $(CUDA_CFLAGS) -I$(top_srcdir) -I$(top_builddir) -c $< -o $@
endif

check_PROGRAMS += tests/unit/test-cuda-backend
TESTS += tests/unit/test-cuda-backend tests/integration/engine-cuda.sh
tests_unit_test_cuda_backend_SOURCES = tests/unit/test-cuda-backend.c $(ENGINE_FIXTURE)
tests_unit_test_cuda_backend_CFLAGS = $(AM_CFLAGS) $(CUDA_CFLAGS)
tests_unit_test_cuda_backend_LDADD = $(ENGINE_LIBS)

# forward_batch_greedy (engine/forward.c) on the CPU: the path without argmax_rows
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-forward-greedy
TESTS += tests/unit/test-forward-greedy
tests_unit_test_forward_greedy_SOURCES = tests/unit/test-forward-greedy.c $(ENGINE_FIXTURE)
tests_unit_test_forward_greedy_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_forward_greedy_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif

# sampling on the GPU: the kernel's algorithm in C (engine/sample-ref.c, built
# in every configuration: forward.c's host path and the kernel's oracle) and
# its test against engine/sampler.c
engine_libengine_a_SOURCES += engine/sample-ref.c engine/sample-ref.h
if HAVE_CUDA
engine/cuda-sample.o: $(top_srcdir)/engine/sample-ref.h $(top_srcdir)/engine/sampler.h
endif
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-sample-gpu-ref
TESTS += tests/unit/test-sample-gpu-ref
tests_unit_test_sample_gpu_ref_SOURCES = tests/unit/test-sample-gpu-ref.c $(ENGINE_FIXTURE)
tests_unit_test_sample_gpu_ref_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_sample_gpu_ref_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif
