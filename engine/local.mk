# engine/local.mk - llmd-engine, the inference engine.
# Engine code lives in engine/libengine.a (so unit tests link it); each part
# of the engine appends its sources from its own fragment below.
noinst_LIBRARIES += engine/libengine.a
engine_libengine_a_SOURCES = engine/commands.h engine/tensor.h engine/kernels.h \
	engine/cmd-stubs.c
engine_libengine_a_CFLAGS = $(AM_CFLAGS) $(PCRE2_CFLAGS) $(UTF8PROC_CFLAGS)
ENGINE_LIBS = engine/libengine.a rdma/librdmakv.a $(IBVERBS_LIBS) $(PCRE2_LIBS) $(UTF8PROC_LIBS) $(LLMD_LIBS)

# the tiny-model fixture of the engine's unit tests (plain C)
ENGINE_FIXTURE = tests/unit/engine-fixture.c tests/unit/engine-fixture.h

bin_PROGRAMS += llmd-engine
llmd_engine_SOURCES = engine/main.c
llmd_engine_LDADD = $(ENGINE_LIBS)

include engine/model.mk
include engine/kernels.mk
include engine/tokenizer.mk
include engine/jinja.mk
include engine/serve.mk
include engine/sched.mk
include engine/cuda.mk
include engine/tp.mk
