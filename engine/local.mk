# engine/local.mk - llmd-engine, the inference engine.
bin_PROGRAMS += llmd-engine
llmd_engine_SOURCES = \
	engine/main.c engine/commands.h \
	engine/cmd-stubs.c
llmd_engine_LDADD = $(LLMD_LIBS)
