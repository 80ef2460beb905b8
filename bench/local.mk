# bench/local.mk - benchmarks (run by hand or by scripts/bench; never timed in tests).
EXTRA_DIST += bench
# Streaming read bandwidth (the ceiling of batch-1 decode) and the CPU matmul
# kernels alone; bench/engine-cpu builds and runs them.
noinst_PROGRAMS += bench/membw
bench_membw_SOURCES = bench/membw.c
bench_membw_LDADD = $(LLMD_LIBS)
noinst_PROGRAMS += bench/kernels-bench
bench_kernels_bench_SOURCES = bench/kernels-bench.c
bench_kernels_bench_LDADD = $(ENGINE_LIBS)
include bench/cp.mk
