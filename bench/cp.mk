# bench/cp.mk - the control-plane benchmark's load client (bench/control-plane runs it).
noinst_PROGRAMS += bench/cp-load
bench_cp_load_SOURCES = bench/cp-load.c
bench_cp_load_LDADD = $(LLMD_LIBS)
